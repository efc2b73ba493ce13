use hooks::prelude::*;

#[derive(Debug, Clone, Entity)]
pub struct Contact {
    pub email: String,
}

#[before_create]
fn check(_contact: &mut Contact) {}

fn main() {}
