use hooks::prelude::*;

#[derive(Debug, Clone, Entity)]
pub struct Contact {
    pub email: String,
}

#[before_create("Contact", prio = 1)]
fn check(_contact: &mut Contact) {}

fn main() {}
