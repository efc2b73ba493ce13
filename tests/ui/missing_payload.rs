use hooks::prelude::*;

#[derive(Debug, Clone, Entity)]
pub struct Contact {
    pub email: String,
}

#[after_create("Contact")]
fn audit() {}

fn main() {}
