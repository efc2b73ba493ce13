//! The standard operations that handlers hook. Each is a marker type implementing
//! [`Operation`](crate::Operation); the attribute macros name them for you.

pub mod data;
