use hooks::prelude::*;

pub struct InvoicePaid {
    pub cents: u64,
}

#[on_event]
fn notify(_invoice: &InvoicePaid) {}

fn main() {}
