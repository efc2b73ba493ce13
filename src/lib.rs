//! # hooks
//!
//! Declarative before/after hook handlers for Rust services. Annotate a plain function with an
//! attribute such as `#[before_create("Contact")]`; it runs on every create of a `Contact` that the
//! service performs through [`Hooks`], with no registration call anywhere: the attribute registers
//! it at link time and the runtime builds a static dispatch table on first use.
//!
//! ```
//! use hooks::prelude::*;
//!
//! #[derive(Debug, Clone, Entity)]
//! pub struct Contact { pub id: Option<i64>, pub name: String, pub email: String }
//!
//! /// Reject contacts without an email; normalise the rest.
//! #[before_create("Contact")]
//! fn check_email(contact: &mut Contact) -> Result<(), HookError> {
//!     if contact.email.is_empty() {
//!         return Err(HookError::rejected("email is required"));
//!     }
//!     contact.email = contact.email.to_lowercase();
//!     Ok(())
//! }
//!
//! let hooks = Hooks::new().expect("a valid hook table");
//! let mut ctx = Context::client();
//! let new = Contact { id: None, name: "Ada".into(), email: "ADA@EXAMPLE.COM".into() };
//! let saved = hooks.run_sync::<ops::data::Create<Contact>, _>(&mut ctx, new, |mut c| {
//!     c.id = Some(1); // the service's own logic: store it
//!     Ok(c)
//! });
//! assert_eq!(saved.unwrap().email, "ada@example.com");
//! ```
//!
//! ## Handler signatures
//!
//! - Parameters: the payload by reference (`&mut T` to change it, `&T` to read it), then optionally
//!   `&Context`. Sync and `async` functions both work.
//! - Before handlers return `()`, `Result<(), E>` or `Result<Flow<Output>, E>` with
//!   `E: Into<HookError>`: `Err` rejects the call, `Flow::Return(output)` answers it.
//! - After handlers take `&mut Output` (run on success) or `&mut Result<Output, HookError>` (run on
//!   success and on error), and return `()` or `Result<(), E>`; an `Err` replaces the result.
//!
//! ## Linking handlers from another crate
//!
//! The linker drops a library crate that the binary never names, and its handlers with it. Name the
//! crate once in the binary: `use my_handlers as _;`.
#![deny(missing_docs)]

pub use hooks_core::operation;
pub use hooks_core::ops::events::Event;
pub use hooks_core::ops::files::FileInfo;
pub use hooks_core::ops::messaging::{Message, Published};
pub use hooks_core::ops::users::{Credentials, NewUser, ResetRequest, Secret, Session};
pub use hooks_core::{
    Affected, AfterFailure, BackgroundConfig, BackgroundStats, Backpressure, BulkChanges, Catalog,
    Changes, Condition, Context, DynRecord, Entity, EventEntry, Flow, HandlerEntry, History,
    HookError, Hooks, HooksBuilder, Id, Key, Kind, Mode, Op, Operation, Origin, Phase, Query, Ran,
    Record, Registration, Sort, Stats, Step, Table, TableError, TableProblem, Trace, User,
    background, catalog, context, dispatch, entity, error, event, link, ops, policy, registration,
    stats, table, testing,
};
pub use hooks_macros::{
    Entity, Event, after, after_bulk_create, after_bulk_delete, after_bulk_update, after_create,
    after_delete, after_file_delete, after_find, after_find_by_id, after_login, after_logout,
    after_password_reset, after_publish, after_register, after_update, after_upload,
    after_user_delete, after_user_update, before, before_bulk_create, before_bulk_delete,
    before_bulk_update, before_create, before_delete, before_file_delete, before_find,
    before_find_by_id, before_login, before_logout, before_password_reset, before_publish,
    before_register, before_update, before_upload, before_user_delete, before_user_update,
    on_event,
};

#[doc(hidden)]
pub use hooks_core::__private;

/// Everything a handler module needs: `use hooks::prelude::*;`.
pub mod prelude {
    pub use crate::ops;
    pub use crate::{
        Affected, BulkChanges, Changes, Context, DynRecord, Entity, Flow, HookError, Hooks, Id,
        Key, Op, Origin, Query, Record, User,
    };
    pub use crate::{
        Credentials, Event, FileInfo, Message, NewUser, Published, ResetRequest, Secret, Session,
    };
    pub use crate::{
        after, after_bulk_create, after_bulk_delete, after_bulk_update, after_create, after_delete,
        after_file_delete, after_find, after_find_by_id, after_login, after_logout,
        after_password_reset, after_publish, after_register, after_update, after_upload,
        after_user_delete, after_user_update, before, before_bulk_create, before_bulk_delete,
        before_bulk_update, before_create, before_delete, before_file_delete, before_find,
        before_find_by_id, before_login, before_logout, before_password_reset, before_publish,
        before_register, before_update, before_upload, before_user_delete, before_user_update,
        on_event, operation,
    };
    pub use serde::{Deserialize, Serialize};
}

/// The README's Rust examples, compiled and run as doctests so that they stay true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeExamples;
