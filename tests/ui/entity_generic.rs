use hooks::prelude::*;

#[derive(Debug, Clone, Serialize, Deserialize, Entity)]
pub struct Generic<T> {
    pub value: T,
}

// The mistake is reported once, on the parameter: a handler of the type adds no error.
#[before_create("Generic")]
fn check(_: &mut Generic<u32>) {}

fn main() {}
