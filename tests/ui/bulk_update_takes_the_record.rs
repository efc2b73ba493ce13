use hooks::prelude::*;

#[derive(Debug, Clone, Serialize, Deserialize, Entity)]
pub struct Contact {
    pub email: String,
}

// A bulk update's input is the query and the changes, not one record.
#[before_bulk_update("Contact")]
fn normalise(_contact: &mut Contact) {}

fn main() {}
