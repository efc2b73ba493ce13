use hooks::prelude::*;

#[derive(Serialize, Event)]
pub struct Changed<T> {
    pub value: T,
}

// The mistake is reported once, on the parameter: the handlers of the event add no error.
#[on_event]
fn log(_: &Changed<u32>) {}

#[on_event]
fn audit(_: &Changed<String>) {}

fn main() {}
