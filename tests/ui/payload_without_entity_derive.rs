use hooks::prelude::*;

// `Contact` lacks `#[derive(Entity)]`.
#[derive(Debug, Clone)]
pub struct Contact {
    pub email: String,
}

#[before_create("Contact")]
fn check(_contact: &mut Contact) {}

fn main() {}
