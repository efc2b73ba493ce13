use hooks::prelude::*;

// Fifteen bytes each, differing in the last one: the check's key holds every byte.
#[derive(Debug, Clone, Entity)]
#[entity(table = "line_items_2026")]
pub struct LineItem {
    pub sku: String,
}

#[after_update("line_items_2025")]
fn check(_item: &mut LineItem) {}

fn main() {}
