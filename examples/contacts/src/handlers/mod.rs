//! The service's hook handlers, one module per use case (the list Backendless gives for its event
//! handlers). Each module opens with what it shows and has a unit test that calls the handlers as
//! the plain functions they are.
//!
//! | module | use case | handlers |
//! |---|---|---|
//! | [`validation`] | validating data before it is saved | before create/update of `Contact` and `Note`; registration |
//! | [`access`] | who may change what | before update/delete of `Contact` and `Note` |
//! | [`login_policy`] | a login policy | registration (banned domains), login (lock-out) |
//! | [`audit`] | monitoring changes | after create/update/delete of `Contact`, into `audit` |
//! | [`inject`] | injecting properties before save | before create/update of `Contact` and `Note`: owner, times, normalised fields |
//! | [`responses`] | injecting properties into responses | after handlers: a computed field, private fields redacted |
//! | [`notify`] | a notification on a condition | after create/update of a VIP `Contact`, into `outbox` |
//! | [`integration`] | integrating with a third-party service | after create of `Contact`: an HTTP call after commit |
//!
//! Run order within one slot is priority, then id: access (-300), inject (-200), validation (-100),
//! then the rest (0); among the after handlers, responses run last (100), so audit, notification and
//! integration see the record before it is redacted.
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

/// A handler the service calls by hand, because the framework has no attribute for its operation
/// yet (issue 3). Listed by `GET /hooks` next to the registered handlers.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Manual {
    /// The handler's path.
    pub id: &'static str,
    /// The operation it handles.
    pub operation: &'static str,
    /// The asset.
    pub asset: &'static str,
    /// `before` or `after`.
    pub phase: &'static str,
    /// What it does.
    pub doc: &'static str,
}

/// Every handler called by hand, in the order each operation calls them.
pub const MANUAL: &[Manual] = &[
    Manual {
        id: "contacts::handlers::validation::validate_registration",
        operation: "users.register",
        asset: "User",
        phase: "before",
        doc: "Registrations need an email address, a name and a password of 8 characters or more.",
    },
    Manual {
        id: "contacts::handlers::login_policy::reject_banned_domain",
        operation: "users.register",
        asset: "User",
        phase: "before",
        doc: "Addresses at a banned domain may not register.",
    },
    Manual {
        id: "contacts::handlers::validation::validate_new_password",
        operation: "users.password_reset_confirm",
        asset: "User",
        phase: "before",
        doc: "A new password set by a reset keeps the rules of a registration.",
    },
    Manual {
        id: "contacts::handlers::login_policy::reject_locked_account",
        operation: "users.login",
        asset: "User",
        phase: "before",
        doc: "A locked account cannot log in, even with the right password.",
    },
    Manual {
        id: "contacts::handlers::login_policy::count_failed_logins",
        operation: "users.login",
        asset: "User",
        phase: "after",
        doc: "Count failed logins in a row; lock the account when there are too many.",
    },
];

#[cfg(test)]
pub(crate) mod testing {
    //! A context like the one a request gets, on an in-memory database.

    use hooks::{Context, User};

    use crate::App;
    use crate::config::Config;
    use crate::work::UnitOfWork;

    /// A fresh service state on an in-memory database.
    pub async fn app(config: Config) -> App {
        App::open(config).await.unwrap()
    }

    /// A client context for `user` (if any), with the app and a fresh unit of work.
    pub fn ctx(app: &App, user: Option<&str>) -> (Context, UnitOfWork) {
        let work = UnitOfWork::new(app.pool.clone());
        let mut ctx = Context::client()
            .with_extension(app.clone())
            .with_extension(work.clone());
        if let Some(id) = user {
            ctx = ctx.with_user(User::new(id));
        }
        (ctx, work)
    }
}
