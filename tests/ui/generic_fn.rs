use hooks::prelude::*;

#[before_create("Contact")]
fn check<T: Entity>(_record: &mut T) {}

fn main() {}
