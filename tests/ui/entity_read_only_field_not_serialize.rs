use hooks::prelude::*;

/// Accepted by the API, never read back from a client: only `Serialize` is needed, and it is
/// missing.
#[derive(Debug, Clone, Default)]
pub struct Counter(u64);

#[derive(Debug, Clone, Deserialize, Entity)]
pub struct Post {
    pub title: String,
    #[serde(skip_deserializing)]
    pub views: Counter,
}

fn main() {}
