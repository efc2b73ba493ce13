use hooks::prelude::*;

#[derive(Debug, Clone, Entity)]
pub struct Contact {
    pub email: String,
}

#[before_create("Contact")]
async fn check(contact: &mut Contact, _ctx: &Context) -> String {
    contact.email.clone()
}

fn main() {}
