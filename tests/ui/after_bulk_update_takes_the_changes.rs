use hooks::prelude::*;

#[derive(Debug, Clone, Serialize, Deserialize, Entity)]
pub struct Contact {
    pub email: String,
}

// After handlers see the result (how many were updated), not the input.
#[after_bulk_update("Contact")]
fn audit(_changes: &BulkChanges<Contact>) {}

fn main() {}
