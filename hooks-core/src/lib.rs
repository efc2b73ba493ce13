//! The runtime of the `hooks` framework: the event model, the registrations that the attribute
//! macros emit, the dispatch table built from them, and the dispatcher ([`Hooks`]) that runs the
//! flow of one call. Use it through the `hooks` facade crate.
#![deny(missing_docs)]

pub mod background;
pub mod catalog;
pub mod context;
#[doc(hidden)]
pub mod diag;
pub mod dispatch;
pub mod entity;
pub mod error;
pub mod event;
pub mod future;
pub mod ops;
pub mod policy;
pub mod registration;
pub mod stats;
pub mod table;
pub mod testing;

pub use background::{BackgroundConfig, BackgroundStats, Backpressure};
pub use catalog::{Catalog, EventEntry, HandlerEntry};
pub use context::{Context, User};
pub use dispatch::{Hooks, HooksBuilder};
pub use entity::{
    Affected, BulkChanges, Changes, Condition, DynRecord, Entity, Id, Key, Op, Query, Record, Sort,
};
pub use error::{HookError, TableError, TableProblem};
pub use event::{Flow, Operation, OperationInfo, Origin, Phase};
pub use policy::AfterFailure;
pub use registration::{Kind, Mode, Registration};
pub use stats::{History, Ran, Stats, Step, Trace};
pub use table::Table;

/// Name handler crates so the linker keeps them: `hooks::link!(my_handlers, billing_handlers);`
/// is `use my_handlers as _; use billing_handlers as _;`. A library crate that the binary never
/// names is dropped by the linker, with every handler in it.
#[macro_export]
macro_rules! link {
    ($($krate:ident),+ $(,)?) => {
        $(
            #[allow(unused_imports)]
            use $krate as _;
        )+
    };
}

/// What the macros' generated code names. Not public API: it may change in any release.
#[doc(hidden)]
pub mod __private {
    pub use crate::__register as register;
    pub use crate::__register_operation as register_operation;
    pub use crate::background::run_blocking;
    pub use crate::diag;
    pub use crate::dispatch::run_answers;
    pub use crate::entity::{
        AnyRecord, DataSlots, EntityOf, Field, FieldGet, FieldSet, Record, fields_to_json,
        flat_get, flat_merge, flat_names, flat_set, flat_set_read_only, get_field, get_with,
        set_field, set_read_only_field, set_unknown_field, set_with, tag_value, unknown_field,
    };
    pub use crate::event::OperationInfo;
    pub use crate::event::{check_operation_asset, check_operation_name, doc_line, trim_doc};
    pub use crate::future::FutureSlot;
    pub use crate::ops::events::Event;
    #[cfg(feature = "inventory")]
    pub use crate::registration::Registered;
    pub use crate::registration::{
        Adapter, AfterPayload, Answers, AsyncAfter, AsyncBefore, BackgroundAfter, BeforeArgs,
        BoxFuture, Direct, Early, IntoAfter, IntoFlow, Options, Payload, Polled, Registration,
        RegistrationCell, Site, SyncAfter, SyncBefore, WildAsync, WildSync, settle, settle_async,
    };
    #[cfg(all(feature = "linkme", not(feature = "inventory")))]
    pub use crate::registration::{OPERATIONS, REGISTRY};
    pub use crate::stats::HandlerState;
    pub use crate::table::SlotCache;
    pub use crate::{Context, Entity, HookError, Operation, ops};
    pub use crate::{event::Flow, event::Phase, registration::Kind, registration::Mode};
    #[cfg(feature = "inventory")]
    pub use inventory;
    #[cfg(all(feature = "linkme", not(feature = "inventory")))]
    pub use linkme;
    pub use serde::Serialize;
    pub use serde_json;
    pub use std::any::{TypeId, type_name};
    pub use std::boxed::Box;
    pub use std::clone::Clone;
    pub use std::option::Option;
    pub use std::pin::Pin;
    pub use std::result::Result;
    pub use std::task::{Context as TaskContext, Poll};
    pub use std::time::Duration;
}
