use hooks::prelude::*;

// Names longer than fifteen bytes are compared byte by byte: these two share their first
// fifteen bytes and their length.
#[derive(Debug, Clone, Entity)]
#[entity(table = "line_items_of_2026")]
pub struct LineItem {
    pub sku: String,
}

#[before_create("line_items_of_2025")]
fn check(_item: &mut LineItem) {}

fn main() {}
