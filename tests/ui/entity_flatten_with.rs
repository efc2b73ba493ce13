use hooks::prelude::*;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Address {
    pub city: String,
}

mod as_is {
    pub fn serialize<S: serde::Serializer, T: serde::Serialize>(v: &T, s: S) -> Result<S::Ok, S::Error> {
        v.serialize(s)
    }
    pub fn deserialize<'de, D: serde::Deserializer<'de>, T: serde::Deserialize<'de>>(d: D) -> Result<T, D::Error> {
        T::deserialize(d)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, Entity)]
pub struct Person {
    pub name: String,
    #[serde(flatten, with = "as_is")]
    pub address: Address,
}

fn main() {}
