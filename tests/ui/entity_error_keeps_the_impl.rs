use hooks::prelude::*;

// The derive reports the empty table name but still implements `Entity` (with the type's name as
// the table), so the handler below compiles: the one error is the derive's.
#[derive(Debug, Clone, Entity)]
#[entity(table = "")]
pub struct Contact {
    pub email: String,
}

#[before_create("Contact")]
fn check(contact: &mut Contact) {
    contact.email = contact.email.to_lowercase();
}

fn main() {
    let mut contact = Contact {
        email: "ADA@EXAMPLE.COM".into(),
    };
    check(&mut contact);
}
