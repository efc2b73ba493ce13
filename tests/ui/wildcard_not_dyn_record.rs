use hooks::prelude::*;

#[derive(Debug, Clone, Entity)]
pub struct Contact {
    pub email: String,
}

#[before_create("*")]
fn stamp(_contact: &mut Contact) {}

fn main() {}
