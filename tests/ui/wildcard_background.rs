use hooks::prelude::*;

#[after_create("*", background)]
fn audit(_record: &mut dyn Record) {}

fn main() {}
