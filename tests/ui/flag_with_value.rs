use hooks::prelude::*;

#[derive(Debug, Clone, Entity)]
pub struct Contact {
    pub email: String,
}

#[after_create("Contact", background = true)]
fn audit(_contact: &Contact) {}

fn main() {}
