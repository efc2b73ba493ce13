use hooks::prelude::*;

pub struct Connection;

#[derive(Entity)]
pub struct Contact {
    pub email: String,
    pub connection: Connection,
}

fn main() {}
