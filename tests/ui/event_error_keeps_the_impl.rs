use hooks::prelude::*;

// The derive reports the unknown option but still implements `Event`, so the handler below
// compiles: the one error is the derive's.
#[derive(Debug, Clone, Serialize, Event)]
#[event(title = "invoice.paid")]
pub struct InvoicePaid {
    pub cents: u64,
}

#[on_event]
fn notify(_invoice: &InvoicePaid) {}

fn main() {}
