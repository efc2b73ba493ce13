//! Use case: **monitoring changes.** After handlers write one row to the `audit` table for every
//! create, update and delete of a contact: who, when, and each changed field with its old and new
//! value. The row is written in the call's transaction, so there is never a change without its
//! audit row, nor an audit row for a change that was rolled back.
//!
//! An after handler sees only the stored record; the version before the update reaches it through
//! the call's per-call state, left there by [`remember_original`] from the `Changes` the before
//! handlers see.
//!
//! Bulk calls are audited record by record, with the same rows: one per contact a bulk create
//! made, a bulk update changed or a bulk delete removed, written in one multi-row INSERT per
//! call ([`record_all`]). The after handlers of a bulk update or
//! delete see only a count; the records reach them as the versions the call selected, which
//! [`remember_bulk_originals`] and [`remember_bulk_deleted`] keep in the per-call state (read
//! in the call's transaction, so exactly the records the default then changes or deletes), and
//! for an update the stored versions, read back by id in the same transaction
//! ([`bulk_updated`]).

use std::sync::Arc;

use hooks::prelude::*;
use serde_json::{Map, Value, json};

use crate::db::{self, Stored, now_ms};
use crate::handlers::{selected, work};
use crate::model::Contact;

/// The stored version of the record an update changes, for the update's after handlers.
#[derive(Debug, Clone)]
pub struct Original<E>(pub E);

/// Keep the stored version of the contact for this update's after handlers.
#[before_update("Contact", priority = 1000)]
pub fn remember_original(changes: &Changes<Contact>, ctx: &Context) {
    if let Some(original) = &changes.original {
        ctx.set_state(Original(original.clone()));
    }
}

/// The stored versions of the records a bulk update or delete selected, for its after handlers.
#[derive(Debug, Clone)]
pub struct Originals<E>(pub Arc<[E]>);

/// Each record a bulk update changed: its version before the update and the stored one after.
#[derive(Debug, Clone)]
pub struct Updated<E>(pub Arc<[(E, E)]>);

/// Keep the contacts a bulk update selects, as stored, for its after handlers.
///
/// It runs last among the before handlers, on the query they have narrowed.
#[before_bulk_update("Contact", priority = 1000)]
pub async fn remember_bulk_originals(
    changes: &BulkChanges<Contact>,
    ctx: &Context,
) -> Result<(), HookError> {
    ctx.set_state(Originals(selected(&changes.query, ctx).await?));
    Ok(())
}

/// Keep the contacts a bulk delete selects, as stored, for its after handlers.
///
/// It runs last among the before handlers, on the query they have narrowed.
#[before_bulk_delete("Contact", priority = 1000)]
pub async fn remember_bulk_deleted(query: &Query<Contact>, ctx: &Context) -> Result<(), HookError> {
    ctx.set_state(Originals(selected(query, ctx).await?));
    Ok(())
}

/// Each record this bulk update changed, before and after ([`Updated`]): the versions
/// [`remember_bulk_originals`] kept, each with the stored one read back in the call's
/// transaction. Read once per call; the after handlers that need them share it.
pub async fn bulk_updated<E: Stored>(ctx: &Context) -> Result<Updated<E>, HookError> {
    if let Some(updated) = ctx.state::<Updated<E>>() {
        return Ok(updated);
    }
    let originals = ctx.state::<Originals<E>>().map(|o| o.0).unwrap_or_default();
    let mut pairs = Vec::with_capacity(originals.len());
    {
        let mut tx = work(ctx)?.tx().await?;
        for original in originals.iter() {
            let Some(id) = original.id() else { continue };
            if let Some(stored) = db::get::<E>(tx.conn()?, id).await? {
                pairs.push((original.clone(), stored));
            }
        }
    }
    let updated = Updated(pairs.into());
    ctx.set_state(updated.clone());
    Ok(updated)
}

/// The stored fields that differ between `before` and `after`, as `{field: {from, to}}`; the
/// change time itself is left out.
pub fn changed_fields<E: Stored>(before: Option<&E>, after: Option<&E>) -> Map<String, Value> {
    let fields = |r: Option<&E>| match r.map(serde_json::to_value) {
        Some(Ok(Value::Object(map))) => map,
        _ => Map::new(),
    };
    let (before, after) = (fields(before), fields(after));
    let mut changes = Map::new();
    for column in E::COLUMNS.iter().filter(|c| c.name != "updated") {
        let from = before.get(column.name).unwrap_or(&Value::Null);
        let to = after.get(column.name).unwrap_or(&Value::Null);
        if from != to {
            changes.insert(column.name.to_owned(), json!({ "from": from, "to": to }));
        }
    }
    changes
}

/// One row of the audit table: what was done to which record, and the fields it changed.
#[derive(Debug, Clone)]
pub struct AuditRow {
    /// `create`, `update` or `delete`.
    pub action: &'static str,
    /// The record's id.
    pub id: Option<Id>,
    /// Each changed field's old and new value ([`changed_fields`]).
    pub changes: Map<String, Value>,
}

/// The most rows one INSERT writes: 6 values each, well under SQLite's bound on the values of
/// one statement (32,766).
pub const ROWS_PER_INSERT: usize = 500;

/// Write an audit row in the call's transaction.
pub async fn record<E: Stored>(
    ctx: &Context,
    action: &'static str,
    id: Option<&Id>,
    changes: Map<String, Value>,
) -> Result<(), HookError> {
    let row = AuditRow {
        action,
        id: id.cloned(),
        changes,
    };
    record_all::<E>(ctx, vec![row]).await
}

/// Write the audit rows of a call on records of `E`, in order, in the call's transaction: one
/// multi-row INSERT for up to [`ROWS_PER_INSERT`] of them, so a bulk call writes its rows in one
/// statement rather than one statement a record.
pub async fn record_all<E: Stored>(ctx: &Context, rows: Vec<AuditRow>) -> Result<(), HookError> {
    if rows.is_empty() {
        return Ok(());
    }
    let at = now_ms();
    let user = ctx.user().map(|u| u.id.clone());
    let mut tx = work(ctx)?.tx().await?;
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let chunk: Vec<AuditRow> = rows.by_ref().take(ROWS_PER_INSERT).collect();
        let values = vec!["(?, ?, ?, ?, ?, ?)"; chunk.len()].join(", ");
        // Assembled from fixed text only: every value is bound.
        let sql = format!(
            "INSERT INTO audit (at, user_id, action, table_name, record_id, changes) \
             VALUES {values}"
        );
        let mut insert = sqlx::query(sqlx::AssertSqlSafe(sql));
        for row in chunk {
            insert = insert
                .bind(at)
                .bind(user.clone())
                .bind(row.action)
                .bind(E::TABLE)
                .bind(row.id.map(|id| id.to_string()).unwrap_or_default())
                .bind(Value::Object(row.changes).to_string());
        }
        insert.execute(tx.conn()?).await.map_err(db::error)?;
    }
    Ok(())
}

/// Record every new contact in the audit table, with its fields.
#[after_create("Contact")]
pub async fn audit_contact_created(contact: &mut Contact, ctx: &Context) -> Result<(), HookError> {
    let changes = changed_fields(None, Some(&*contact));
    record::<Contact>(ctx, "create", contact.id.as_ref(), changes).await
}

/// Write the audit row of one update of `stored`, whose version before it was `original`.
pub async fn record_update<E: Stored>(
    ctx: &Context,
    original: Option<&E>,
    stored: &E,
) -> Result<(), HookError> {
    let changes = changed_fields(original, Some(stored));
    record::<E>(ctx, "update", stored.id(), changes).await
}

/// Record every change of a contact in the audit table, with the fields that changed.
#[after_update("Contact")]
pub async fn audit_contact_updated(contact: &mut Contact, ctx: &Context) -> Result<(), HookError> {
    let original = ctx.state::<Original<Contact>>().map(|o| o.0);
    record_update(ctx, original.as_ref(), contact).await
}

/// Record every deleted contact in the audit table, with the fields it had.
#[after_delete("Contact")]
pub async fn audit_contact_deleted(key: &mut Key<Contact>, ctx: &Context) -> Result<(), HookError> {
    let changes = changed_fields(key.record.as_ref(), None);
    record::<Contact>(ctx, "delete", Some(&key.id), changes).await
}

/// Record each contact of a bulk create in the audit table, as a single create does.
///
/// One audit row per contact, with its fields, all written in one statement.
#[after_bulk_create("Contact")]
pub async fn audit_contacts_created(contacts: &[Contact], ctx: &Context) -> Result<(), HookError> {
    let rows = contacts
        .iter()
        .map(|contact| AuditRow {
            action: "create",
            id: contact.id.clone(),
            changes: changed_fields(None, Some(contact)),
        })
        .collect();
    record_all::<Contact>(ctx, rows).await
}

/// Record each contact a bulk update changed, as a single update does.
///
/// One audit row per contact, with each changed field's old and new value, all written in one
/// statement.
#[after_bulk_update("Contact")]
pub async fn audit_contacts_updated(
    _affected: &mut Affected<Contact>,
    ctx: &Context,
) -> Result<(), HookError> {
    let rows = bulk_updated::<Contact>(ctx)
        .await?
        .0
        .iter()
        .map(|(original, stored)| AuditRow {
            action: "update",
            id: stored.id.clone(),
            changes: changed_fields(Some(original), Some(stored)),
        })
        .collect();
    record_all::<Contact>(ctx, rows).await
}

/// Record each contact a bulk delete removed, as a single delete does.
///
/// One audit row per contact, with the fields it had, all written in one statement.
#[after_bulk_delete("Contact")]
pub async fn audit_contacts_deleted(
    _affected: &mut Affected<Contact>,
    ctx: &Context,
) -> Result<(), HookError> {
    let originals = ctx
        .state::<Originals<Contact>>()
        .map(|o| o.0)
        .unwrap_or_default();
    let rows = originals
        .iter()
        .filter(|contact| contact.id.is_some())
        .map(|contact| AuditRow {
            action: "delete",
            id: contact.id.clone(),
            changes: changed_fields(Some(contact), None),
        })
        .collect();
    record_all::<Contact>(ctx, rows).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::handlers::testing;
    use hooks::ops::data::{BulkDelete, BulkUpdate};
    use hooks::testing::Chain;

    /// Store `names` as contacts of user 1, the VIPs among them as such, in `ctx`'s transaction.
    async fn store(ctx: &Context, names: &[(&str, bool)]) {
        let mut tx = work(ctx).unwrap().tx().await.unwrap();
        for (name, vip) in names {
            let contact = Contact {
                owner: Some("1".into()),
                name: (*name).into(),
                vip: *vip,
                ..Contact::default()
            };
            db::insert(tx.conn().unwrap(), contact).await.unwrap();
        }
    }

    async fn audit_rows(app: &crate::App) -> Vec<(String, String, Value)> {
        let rows: Vec<(String, String, String)> =
            sqlx::query_as("SELECT action, record_id, changes FROM audit ORDER BY id")
                .fetch_all(&app.pool)
                .await
                .unwrap();
        rows.into_iter()
            .map(|(a, r, c)| (a, r, serde_json::from_str(&c).unwrap()))
            .collect()
    }

    #[test]
    fn only_changed_fields_are_listed_with_old_and_new_values() {
        let before = Contact {
            name: "Ada".into(),
            email: "ada@x.io".into(),
            updated: Some(1),
            ..Contact::default()
        };
        let after = Contact {
            email: "ada@y.io".into(),
            updated: Some(2),
            ..before.clone()
        };
        let changes = changed_fields(Some(&before), Some(&after));
        assert_eq!(
            Value::Object(changes),
            json!({ "email": { "from": "ada@x.io", "to": "ada@y.io" } })
        );
    }

    #[tokio::test]
    async fn an_update_writes_an_audit_row_with_the_changed_fields() {
        let app = testing::app(Config::for_tests()).await;
        let (mut ctx, work) = testing::ctx(&app, Some("1"));
        // Through the runtime: the before handler leaves the original in the per-call state, and
        // the after handler of the same call reads it.
        let chain = Chain::<ops::data::Update<Contact>>::only(&[
            "remember_original",
            "audit_contact_updated",
        ]);
        let before = Contact {
            name: "Ada".into(),
            ..Contact::default()
        };
        let after = Contact {
            name: "Ada L.".into(),
            ..before.clone()
        };
        let changes = Changes::new(5, after).with_original(before);
        let result = chain
            .run(&mut ctx, changes, |c| async move {
                let mut stored = c.record;
                stored.id = Some(c.id);
                Ok(stored)
            })
            .await;
        work.finish(result).await.unwrap();
        let (action, record_id, changes): (String, String, String) =
            sqlx::query_as("SELECT action, record_id, changes FROM audit")
                .fetch_one(&app.pool)
                .await
                .unwrap();
        assert_eq!((action.as_str(), record_id.as_str()), ("update", "5"));
        let changes: Value = serde_json::from_str(&changes).unwrap();
        assert_eq!(
            changes,
            json!({ "name": { "from": "Ada", "to": "Ada L." } })
        );
    }

    #[tokio::test]
    async fn a_rolled_back_call_leaves_no_audit_row() {
        let app = testing::app(Config::for_tests()).await;
        let (ctx, work) = testing::ctx(&app, Some("1"));
        let mut contact = Contact {
            id: Some(Id::Int(1)),
            ..Contact::default()
        };
        audit_contact_created(&mut contact, &ctx).await.unwrap();
        let _ = work.finish::<()>(Err(HookError::rejected("no"))).await;
        let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit")
            .fetch_one(&app.pool)
            .await
            .unwrap();
        assert_eq!(rows, 0);
    }

    #[tokio::test]
    async fn a_bulk_update_writes_one_audit_row_per_changed_record_with_old_and_new_values() {
        let app = testing::app(Config::for_tests()).await;
        let (mut ctx, work) = testing::ctx(&app, Some("1"));
        store(&ctx, &[("Ann", true), ("Bea", false), ("Cy", false)]).await;
        let chain = Chain::<BulkUpdate<Contact>>::only(&[
            "remember_bulk_originals",
            "audit_contacts_updated",
            "notify_promoted_vips",
        ]);
        let query = Query::all().filter("name", Op::Ne, "Cy");
        let changes = BulkChanges::from_json(query, json!({ "vip": true })).unwrap();
        let w = super::work(&ctx).unwrap().clone();
        let result = chain
            .run(&mut ctx, changes, |changes| async move {
                let mut tx = w.tx().await?;
                let n =
                    db::update_where(tx.conn()?, &changes.query, changes.changes(), None).await?;
                Ok(Affected::new(n))
            })
            .await;
        assert_eq!(work.finish(result).await.unwrap().count, 2);
        assert_eq!(
            audit_rows(&app).await,
            [
                ("update".into(), "1".into(), json!({})),
                (
                    "update".into(),
                    "2".into(),
                    json!({ "vip": { "from": false, "to": true } })
                ),
            ]
        );
        let outbox: Vec<String> = sqlx::query_scalar("SELECT payload FROM outbox")
            .fetch_all(&app.pool)
            .await
            .unwrap();
        assert_eq!(outbox.len(), 1, "only Bea became a VIP: {outbox:?}");
        assert!(outbox[0].contains("Bea"), "{outbox:?}");
    }

    #[tokio::test]
    async fn a_bulk_delete_writes_one_audit_row_per_deleted_record_with_its_fields() {
        let app = testing::app(Config::for_tests()).await;
        let (mut ctx, work) = testing::ctx(&app, Some("1"));
        store(&ctx, &[("Ann", false), ("Bea", false)]).await;
        let chain = Chain::<BulkDelete<Contact>>::only(&[
            "remember_bulk_deleted",
            "audit_contacts_deleted",
        ]);
        let w = super::work(&ctx).unwrap().clone();
        let result = chain
            .run(&mut ctx, Query::all(), |q| async move {
                let mut tx = w.tx().await?;
                Ok(Affected::new(db::delete_where(tx.conn()?, &q, None).await?))
            })
            .await;
        assert_eq!(work.finish(result).await.unwrap().count, 2);
        let rows = audit_rows(&app).await;
        let summary: Vec<(&str, &str, &Value)> = rows
            .iter()
            .map(|(a, r, c)| (a.as_str(), r.as_str(), &c["name"]))
            .collect();
        assert_eq!(
            summary,
            [
                ("delete", "1", &json!({ "from": "Ann", "to": null })),
                ("delete", "2", &json!({ "from": "Bea", "to": null })),
            ]
        );
    }

    #[tokio::test]
    async fn a_bulk_update_whose_audit_times_out_fails_and_commits_nothing() {
        // The service's own runtime settings, with a short timeout to run into.
        let config = Config::for_tests();
        let hooks = crate::hooks_builder(&config)
            .unwrap()
            .default_timeout(std::time::Duration::from_millis(200))
            .build()
            .unwrap();
        let app = crate::App::with_hooks(config, hooks).await.unwrap();
        let (ctx, stored) = testing::ctx(&app, Some("1"));
        {
            let mut tx = work(&ctx).unwrap().tx().await.unwrap();
            for name in ["Ann", "Bea"] {
                let contact = Contact {
                    owner: Some("1".into()),
                    name: name.into(),
                    email: format!("{name}@example.com"),
                    ..Contact::default()
                };
                db::insert(tx.conn().unwrap(), contact).await.unwrap();
            }
        }
        stored.finish(Ok(())).await.unwrap();

        let (mut ctx, guard) = testing::ctx(&app, Some("1"));
        let w = work(&ctx).unwrap().clone();
        let changes = BulkChanges::<Contact>::from_json(
            Query::all().filter("id", Op::Gt, 0),
            json!({ "vip": true }),
        )
        .unwrap();
        let result = app
            .hooks
            .bulk_update(&mut ctx, changes, |changes| async move {
                let n = {
                    let mut tx = w.tx().await?;
                    db::update_where(tx.conn()?, &changes.query, changes.changes(), Some("1"))
                        .await?
                };
                // Something holds the call's transaction past the after handlers' timeout:
                // the audit cannot write its rows in time (as with tens of thousands of rows).
                let (held, holding) = tokio::sync::oneshot::channel();
                tokio::spawn(async move {
                    let _tx = w.tx().await;
                    let _ = held.send(());
                    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
                });
                let _ = holding.await;
                Ok(Affected::new(n))
            })
            .await;
        let err = guard.finish(result).await.unwrap_err();
        assert_eq!(
            (err.status(), err.code()),
            (504, "handler_timeout"),
            "{err}"
        );
        assert!(audit_rows(&app).await.is_empty());
        let vips: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM contacts WHERE vip = 1")
            .fetch_one(&app.pool)
            .await
            .unwrap();
        assert_eq!(
            vips, 0,
            "the change rolled back with its missing audit rows"
        );
    }

    #[tokio::test]
    async fn the_audit_rows_of_a_bulk_call_are_all_written_in_order_however_many() {
        let app = testing::app(Config::for_tests()).await;
        let (ctx, work) = testing::ctx(&app, Some("1"));
        let n = 2 * ROWS_PER_INSERT + 1;
        let contacts: Vec<Contact> = (1..=n)
            .map(|i| Contact {
                id: Some(Id::Int(i64::try_from(i).unwrap())),
                name: format!("C{i}"),
                ..Contact::default()
            })
            .collect();
        audit_contacts_created(&contacts, &ctx).await.unwrap();
        work.finish(Ok(())).await.unwrap();
        let rows = audit_rows(&app).await;
        assert_eq!(rows.len(), n);
        for (i, (action, id, changes)) in rows.iter().enumerate() {
            assert_eq!(
                (action.as_str(), id.clone()),
                ("create", (i + 1).to_string())
            );
            assert_eq!(changes["name"]["to"], format!("C{}", i + 1));
        }
    }

    #[tokio::test]
    async fn a_bulk_create_writes_one_audit_row_per_new_record() {
        let app = testing::app(Config::for_tests()).await;
        let (ctx, work) = testing::ctx(&app, Some("1"));
        let contacts: Vec<Contact> = (1..=3)
            .map(|i| Contact {
                id: Some(Id::Int(i)),
                name: format!("C{i}"),
                ..Contact::default()
            })
            .collect();
        audit_contacts_created(&contacts, &ctx).await.unwrap();
        work.finish(Ok(())).await.unwrap();
        let ids: Vec<String> = audit_rows(&app)
            .await
            .into_iter()
            .map(|(_, r, _)| r)
            .collect();
        assert_eq!(ids, ["1", "2", "3"]);
    }
}
