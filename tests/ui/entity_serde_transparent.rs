use hooks::prelude::*;

#[derive(Debug, Clone, Serialize, Deserialize, Entity)]
#[serde(transparent)]
pub struct Wrapped {
    pub value: String,
}

fn main() {}
