use hooks::prelude::*;

#[derive(Debug, Clone, Event)]
pub struct InvoicePaid {
    pub cents: u64,
}

fn main() {}
