use hooks::prelude::*;

#[derive(Debug, Clone, Entity)]
pub struct Contact {
    pub email: String,
}

#[before_create("Contact", priority = 1, priority = 2)]
fn check(_contact: &mut Contact) {}

fn main() {}
