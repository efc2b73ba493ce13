use hooks::prelude::*;

#[derive(Debug, Clone, Serialize, Event)]
#[event(name = "")]
pub struct InvoicePaid {
    pub cents: u64,
}

fn main() {}
