use hooks::prelude::*;

#[derive(Debug, Clone, Entity)]
pub struct Contact {
    pub email: String,
}

#[before_create("Contact", priority = 3000000000)]
fn check(_contact: &mut Contact) {}

fn main() {}
