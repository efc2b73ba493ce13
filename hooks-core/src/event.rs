//! The event model's ground floor: the [`Operation`] trait, the [`Phase`] of a handler, where a call
//! came from ([`Origin`]) and what a before handler decides ([`Flow`]).

use crate::table::SlotCache;

/// An API operation that handlers can hook: a name, what before handlers see (`Input`) and what after
/// handlers see (`Output`).
///
/// The standard catalog lives in [`crate::ops`]; a service can declare its own operations by
/// implementing this trait.
pub trait Operation: 'static {
    /// What before handlers see and may change, and what the default logic receives.
    type Input: Send + 'static;
    /// What the default logic produces and after handlers see and may change.
    type Output: Send + 'static;
    /// The operation's name, such as `"data.create"`.
    const NAME: &'static str;
    /// The asset (table, collection, channel) the operation is about, such as `"Contact"`.
    const ASSET: &'static str;

    /// A per-type cache of this operation's slot in the global table, when the type can offer one.
    #[doc(hidden)]
    fn slot_cache() -> Option<&'static SlotCache> {
        None
    }
}

/// When a handler runs relative to the default logic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// Before the default logic: may change the input, answer early or reject.
    Before,
    /// After the default logic (or after a short-circuit or a rejection): may change the result.
    After,
}

impl Phase {
    /// `"before"` or `"after"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Before => "before",
            Phase::After => "after",
        }
    }
}

/// Where a call came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    /// A client of the service (an HTTP request, an SDK call).
    #[default]
    Client,
    /// Server code, such as a handler calling the API itself.
    Server,
}

/// What a before handler decided: go on, or answer the call itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Flow<T> {
    /// Run the remaining before handlers and then the default logic.
    Continue,
    /// Skip the remaining before handlers and the default logic; this is the call's result (the
    /// after handlers still run on it).
    Return(T),
}
