use hooks::prelude::*;

#[before(NoSuchOp)]
fn check(_input: &mut String) {}

fn main() {}
