use hooks::prelude::*;

#[derive(Debug, Clone, Entity)]
pub struct Contact {
    pub email: String,
}

#[before_create("Contact")]
fn check(_contact: &mut Contact, _ctx: &Context, _extra: u32) {}

fn main() {}
