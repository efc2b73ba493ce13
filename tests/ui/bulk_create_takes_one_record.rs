use hooks::prelude::*;

#[derive(Debug, Clone, Serialize, Deserialize, Entity)]
pub struct Contact {
    pub email: String,
}

// A bulk create's input is every new record.
#[before_bulk_create("Contact")]
fn check(_contact: &Contact) -> Result<(), HookError> {
    Ok(())
}

fn main() {}
