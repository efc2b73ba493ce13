use hooks::prelude::*;

#[before(String)]
fn check(_input: &mut String) {}

fn main() {}
