//! The service's hook handlers, one module per use case (the list Backendless gives for its event
//! handlers). Each module opens with what it shows and has unit tests that call the handlers as
//! the plain functions they are and, where the flow matters (order, per-call state, background),
//! run them through the runtime's own adapter (`hooks::testing::Chain`).
//!
//! | module | use case | handlers |
//! |---|---|---|
//! | [`validation`] | validating data before it is saved | before create/update of `Contact` and `Note`; before register; before the reset confirm |
//! | [`access`] | who may change what | before update/delete of `Contact` and `Note` |
//! | [`login_policy`] | a login policy | before register (banned domains); before and after login (lock-out) |
//! | [`audit`] | monitoring changes | after create/update/delete of `Contact`, into `audit` |
//! | [`inject`] | injecting properties before save | before create/update of every table (`"*"`): id, owner, times; of `Contact` and `Note`: what an update keeps, normalised fields |
//! | [`responses`] | injecting properties into responses | after handlers: a computed field, private fields redacted |
//! | [`notify`] | a notification on a condition | after create/update of a VIP `Contact`, into `outbox` |
//! | [`integration`] | integrating with a third-party service | after create of `Contact`, in the background: an HTTP call once committed |
//!
//! Run order within one slot is priority, then id: access (-300), inject (-200), validation (-100),
//! then the rest (0); among the after handlers, responses run last (100), so audit and
//! notification see the record before it is redacted. The background handler gets its own copy,
//! taken after every blocking after handler has run.
//!
//! The data handlers of one call share its [`UnitOfWork`] (an extension of
//! the context): what they write commits or rolls back with the change itself.

pub mod access;
pub mod audit;
pub mod inject;
pub mod integration;
pub mod login_policy;
pub mod notify;
pub mod responses;
pub mod validation;

use hooks::{Context, HookError};

use crate::App;
use crate::work::UnitOfWork;

/// The service's state, which every request's context carries.
pub fn app(ctx: &Context) -> Result<&App, HookError> {
    ctx.require_extension::<App>()
}

/// The call's unit of work.
pub fn work(ctx: &Context) -> Result<&UnitOfWork, HookError> {
    ctx.require_extension::<UnitOfWork>()
}

#[cfg(test)]
pub(crate) mod testing {
    //! A context like the one a request gets, on an in-memory database.

    use hooks::{Context, User};

    use crate::App;
    use crate::config::Config;
    use crate::work::{UnitOfWork, WorkGuard};

    /// A fresh service state on an in-memory database.
    pub async fn app(config: Config) -> App {
        App::open(config).await.unwrap()
    }

    /// A client context for `user` (if any), with the app and a fresh unit of work, and the
    /// guard that ends the unit of work.
    pub fn ctx(app: &App, user: Option<&str>) -> (Context, WorkGuard) {
        let (work, guard) = UnitOfWork::begin(app.pool.clone());
        let mut ctx = Context::client()
            .with_extension(app.clone())
            .with_extension(work);
        if let Some(id) = user {
            ctx = ctx.with_user(User::new(id));
        }
        (ctx, guard)
    }
}
