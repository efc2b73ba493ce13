use hooks::prelude::*;

/// Not the built-in create.
#[derive(Serialize, Event)]
#[event(name = "data.create")]
pub struct Created {
    pub id: u32,
}

// The event keeps its impl (under its type's name), so its handlers add no error.
#[on_event]
fn log(_: &Created) {}

fn main() {}
