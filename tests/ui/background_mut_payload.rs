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

// The same for a list: the advice names the type as it is written.
#[after_bulk_create("Contact", background)]
fn audit_all(contacts: &mut Vec<Contact>) {
    contacts.clear();
}

fn main() {}
