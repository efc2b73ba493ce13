use hooks::prelude::*;

#[before_login("User")]
fn check(_credentials: &mut Credentials) {}

fn main() {}
