use hooks::prelude::*;

#[derive(Debug, Clone, Entity)]
pub struct Contact {
    pub email: String,
}

#[before_create("Contact", priority = 300u8)]
fn suffixed_priority(_contact: &mut Contact) {}

#[before_create("Contact", timeout = "2s"ms)]
fn suffixed_timeout(_contact: &mut Contact) {}

fn main() {}
