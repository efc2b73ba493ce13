use hooks::prelude::*;

#[derive(Debug, Clone, Entity)]
pub struct Contact {
    pub email: String,
}

#[after_create("Contact")]
fn audit(_contact: &mut Contact) -> Flow<Contact> {
    Flow::Continue
}

fn main() {}
