use hooks::prelude::*;

#[derive(Debug, Clone, Entity)]
pub enum Contact {
    Person { email: String },
    Company { name: String },
}

fn main() {}
