use hooks::prelude::*;

#[before_create("Contact")]
fn check(_email: &mut String) {}

fn main() {}
