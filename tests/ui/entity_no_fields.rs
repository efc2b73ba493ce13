use hooks::prelude::*;

#[derive(Debug, Clone, Entity)]
pub struct Empty {}

fn main() {}
