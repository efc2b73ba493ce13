use hooks::prelude::*;

#[derive(Debug, Clone, Entity)]
pub struct Contact {
    pub email: String,
}

#[before_create("Contact")]
fn boxed(_contact: Box<Contact>) {}

fn main() {}
