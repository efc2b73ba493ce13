use hooks::prelude::*;

#[derive(Debug, Clone, Entity)]
pub struct Contact {
    pub email: String,
}

// A find's output is `Vec<Contact>`, not one record.
#[after_find("Contact")]
fn redact(_contact: &mut Contact) {}

fn main() {}
