use hooks::prelude::*;

#[derive(Debug, Clone, Entity)]
pub struct Contact {
    pub email: String,
}

#[before_create("Contact", priority = )]
fn no_priority(_contact: &mut Contact) {}

#[before_create("Contact", priority = -, client_only)]
fn only_a_minus(_contact: &mut Contact) {}

#[before_create("Contact", timeout = )]
fn no_timeout(_contact: &mut Contact) {}

fn main() {}
