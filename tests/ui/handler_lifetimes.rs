use hooks::prelude::*;

#[derive(Debug, Clone, Entity)]
pub struct Contact {
    pub email: String,
}

#[before_create("Contact")]
fn named_lifetime<'a>(contact: &'a mut Contact, _ctx: &'a Context) {
    contact.email.clear();
}

#[before_create("Contact")]
fn bounded(_contact: &mut Contact)
where
    Contact: Clone,
{
}

fn main() {}
