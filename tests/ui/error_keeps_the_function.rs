use hooks::prelude::*;

#[derive(Debug, Clone, Entity)]
pub struct Contact {
    pub email: String,
}

// The attribute is wrong, but `check` is still emitted: `main` calls it and compiles, so the only
// error is the attribute's.
#[before_create("Contact", priority = "first")]
fn check(contact: &mut Contact) {
    contact.email = contact.email.to_lowercase();
}

fn main() {
    let mut contact = Contact {
        email: "ADA@EXAMPLE.COM".into(),
    };
    check(&mut contact);
}
