use hooks::prelude::*;

#[derive(Debug, Clone, Entity)]
pub struct Contact {
    pub email: String,
}

#[before_create("Contact")]
fn check(contact: &mut Contact) -> String {
    contact.email.clone()
}

fn main() {}
