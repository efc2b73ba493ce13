use hooks::prelude::*;

#[derive(Debug, Clone, Entity)]
pub struct Contact {
    pub email: String,
}

#[before_create("Contact", timeout = "99999999999999999999s")]
fn forever(_contact: &mut Contact) {}

#[before_create("Contact", timeout = "25h")]
fn over_a_day(_contact: &mut Contact) {}

fn main() {}
