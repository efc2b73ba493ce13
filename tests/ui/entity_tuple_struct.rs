use hooks::prelude::*;

#[derive(Debug, Clone, Serialize, Deserialize, Entity)]
pub struct Score(pub u32);

fn main() {}
