use hooks::prelude::*;

#[derive(Debug, Clone, Serialize, Deserialize, Entity)]
pub struct Contact {
    pub email: String,
}

// The count of a bulk delete names its table: `Affected<Contact>`.
#[after_bulk_delete("Contact")]
fn audit(_deleted: &mut u64) {}

fn main() {}
