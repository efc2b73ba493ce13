use hooks::prelude::*;

#[derive(Debug, Clone, Entity)]
pub struct Marker;

fn main() {}
