use hooks::prelude::*;

#[derive(Debug, Clone, Entity)]
#[entity(collection = "contacts")]
pub struct Contact {
    pub email: String,
}

fn main() {}
