//! The service's hook handlers, one module per use case (the list Backendless gives for its event
//! handlers). Each module opens with what it shows and has unit tests that call the handlers as
//! the plain functions they are and, where the flow matters (order, per-call state, background),
//! run them through the runtime's own adapter (`hooks::testing::Chain`).
//!
//! | module | use case | handlers |
//! |---|---|---|
//! | [`validation`] | validating data before it is saved | before create/update and bulk create/update of `Contact` and `Note` (each record); before bulk update/delete: at most `--bulk-max` records selected; before register; before the reset confirm |
//! | [`access`] | who may change what | before update/delete of `Contact` and `Note`; before their bulk update/delete: the query narrowed to the caller's records, and the 409 of each contact |
//! | [`login_policy`] | a login policy | before register (banned domains); before and after login (lock-out) |
//! | [`audit`] | monitoring changes | after create/update/delete and their bulk forms of `Contact`, into `audit`, a row per record, a bulk call's in one statement (before bulk update/delete: the records selected) |
//! | [`inject`] | injecting properties before save | before create, bulk create and update of every table (`"*"`): id, owner, times; of `Contact` and `Note`: what an update or bulk update keeps, normalised fields |
//! | [`responses`] | injecting properties into responses | after handlers (bulk create too): a computed field, private fields redacted |
//! | [`notify`] | a notification on a condition | after create/update and bulk create/update of a VIP `Contact`, into `outbox`, a message per VIP |
//! | [`integration`] | integrating with a third-party service | after create and bulk create of `Contact`, in the background: an HTTP call per contact once committed, a few at a time, inside the handler |
//!
//! Run order within one slot is priority, then id: access (-300), the bound on what a bulk update
//! or delete selects (validation, -290: once the query is narrowed, before anything reads the
//! records), inject (-200), validation (-100), then the rest (0); among the after handlers, responses run last (100), so audit and
//! notification see the record before it is redacted. The background handler gets its own copy,
//! taken after every blocking after handler has run. The audit keeps the records a bulk update
//! or delete selects last among its before handlers (1000), once the query is narrowed.
//!
//! The data handlers of one call share its [`UnitOfWork`] (an extension of
//! the context): what they write commits or rolls back with the change itself.
//!
//! ## Bulk calls
//!
//! Every rule of a single create, update or delete holds for the bulk ones
//! (`POST`/`PUT`/`DELETE /data/bulk/{table}`), through handlers of the bulk operations that call
//! the per-record functions above: a bulk create's handlers run the single create's checks,
//! stamps, audit, notification and shaping on each record; a bulk update's and a bulk delete's
//! handlers first narrow the query to the caller's records (access, -300), refuse it when it
//! selects more than `--bulk-max` of them (validation, -290), then read the records it selects ([`selected`], in the call's transaction, once per call) to check,
//! audit and notify each. An error about one record names it ([`in_record`]): its index in a
//! bulk create's array, its table and id in a bulk update or delete; the whole call is
//! rejected and nothing is written.

pub mod access;
pub mod audit;
pub mod inject;
pub mod integration;
pub mod login_policy;
pub mod notify;
pub mod responses;
pub mod validation;

use std::fmt::Display;
use std::sync::Arc;

use hooks::{Context, HookError, Query};

use crate::App;
use crate::db::{self, Stored};
use crate::work::UnitOfWork;

/// The service's state, which every request's context carries.
pub fn app(ctx: &Context) -> Result<&App, HookError> {
    ctx.require_extension::<App>()
}

/// The call's unit of work.
pub fn work(ctx: &Context) -> Result<&UnitOfWork, HookError> {
    ctx.require_extension::<UnitOfWork>()
}

/// `err`, about one record of a bulk call: the same status and code, and a message that names
/// the record first (`records[2]: ...` in a bulk create, `Contact 7: ...` in a bulk update).
pub fn in_record(record: impl Display, err: HookError) -> HookError {
    HookError::new(
        err.status(),
        err.code().to_owned(),
        format!("{record}: {}", err.message()),
    )
}

/// How a record of a bulk update or delete is named in an error: its table and id.
pub fn record_name<E: Stored>(record: &E) -> String {
    match record.id() {
        Some(id) => format!("{} {id}", E::TABLE),
        None => E::TABLE.to_owned(),
    }
}

/// The records a query selected for this call, kept in the per-call state.
#[derive(Clone)]
struct Selection<E: Stored> {
    query: Query<E>,
    records: Arc<[E]>,
}

/// The records `query` selects for a bulk update or delete, as the caller sees them, read in
/// the call's transaction: the default, which runs in the same transaction (a write
/// transaction, so no other call writes in between), updates or deletes exactly these
/// ([`db::update_where`], [`db::delete_where`]). Read once per call and kept in its state, so
/// the handlers that need them (access, validation, audit) share one read; a query changed
/// since is read again.
pub async fn selected<E: Stored>(query: &Query<E>, ctx: &Context) -> Result<Arc<[E]>, HookError> {
    if let Some(kept) = ctx.state::<Selection<E>>()
        && kept.query.filter == query.filter
        && kept.query.sort == query.sort
        && (kept.query.limit, kept.query.offset) == (query.limit, query.offset)
    {
        return Ok(kept.records);
    }
    let viewer = ctx.user().map(|u| u.id.as_str());
    let records: Arc<[E]> = {
        let mut tx = work(ctx)?.tx().await?;
        db::find(tx.conn()?, query, viewer).await?.into()
    };
    ctx.set_state(Selection {
        query: query.clone(),
        records: Arc::clone(&records),
    });
    Ok(records)
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

#[cfg(test)]
mod tests {
    use hooks::{Id, Op};

    use super::*;
    use crate::config::Config;
    use crate::model::Contact;

    #[test]
    fn an_error_about_one_record_keeps_its_status_and_code_and_names_the_record() {
        let err = in_record("records[2]", HookError::conflict("taken"));
        assert_eq!(
            (err.status(), err.code(), err.message()),
            (409, "conflict", "records[2]: taken")
        );
        let ada = Contact {
            id: Some(Id::Int(7)),
            ..Contact::default()
        };
        assert_eq!(record_name(&ada), "Contact 7");
    }

    #[tokio::test]
    async fn the_selected_records_are_read_once_per_call_and_again_for_another_query() {
        let app = testing::app(Config::for_tests()).await;
        let (ctx, _work) = testing::ctx(&app, Some("1"));
        {
            let mut tx = work(&ctx).unwrap().tx().await.unwrap();
            for name in ["Ann", "Bea"] {
                let contact = Contact {
                    name: name.into(),
                    ..Contact::default()
                };
                db::insert(tx.conn().unwrap(), contact).await.unwrap();
            }
        }
        let all = Query::<Contact>::all();
        assert_eq!(selected(&all, &ctx).await.unwrap().len(), 2);
        // Kept: a record written since is not seen by the same query...
        {
            let mut tx = work(&ctx).unwrap().tx().await.unwrap();
            db::insert(tx.conn().unwrap(), Contact::default())
                .await
                .unwrap();
        }
        assert_eq!(selected(&all, &ctx).await.unwrap().len(), 2);
        // ...and another query reads again.
        let ann = Query::<Contact>::all().filter("name", Op::Eq, "Ann");
        let found = selected(&ann, &ctx).await.unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].name, "Ann");
    }
}
