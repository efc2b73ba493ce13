use hooks::prelude::*;

#[before_find("*")]
fn narrow(_record: &mut dyn Record) {}

#[before_bulk_update("*")]
fn stamp(_record: &mut dyn Record) {}

#[after_bulk_delete("*")]
fn count(_record: &mut dyn Record) {}

fn main() {}
