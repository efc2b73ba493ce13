use hooks::prelude::*;

#[derive(Debug, Clone, Entity)]
pub struct Borrowed<'a> {
    pub name: &'a str,
}

fn main() {}
