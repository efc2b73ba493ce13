use hooks::prelude::*;

#[derive(Debug, Clone, Entity)]
pub struct Contact {
    pub email: String,
}

#[before_create("Contact")]
fn every_table(_record: &mut dyn Record) {}

fn main() {}
