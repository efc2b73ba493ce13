use hooks::prelude::*;

#[derive(Debug, Clone, Entity)]
pub struct Contact {
    pub email: String,
}

#[before_create("Contact")]
fn configured(_contact: &mut Contact, #[cfg(any())] _ctx: &Context) {}

fn main() {}
