use hooks::prelude::*;

#[derive(Debug, Clone, Entity)]
#[entity(table = "")]
pub struct Contact {
    pub email: String,
}

fn main() {}
