use hooks::prelude::*;

#[derive(Debug, Clone, Entity)]
pub struct Contact {
    pub email: String,
}

// The handler would change a copy that nobody sees.
#[after_create("Contact", background)]
async fn audit(contact: &mut Contact) {
    contact.email.clear();
}

fn main() {}
