//! Use case: **monitoring changes.** After handlers write one row to the `audit` table for every
//! create, update and delete of a contact: who, when, and each changed field with its old and new
//! value. The row is written in the call's transaction, so there is never a change without its
//! audit row, nor an audit row for a change that was rolled back.
//!
//! An after handler sees only the stored record; the version before the update reaches it through
//! the call's per-call state, left there by [`remember_original`] from the `Changes` the before
//! handlers see.

use hooks::prelude::*;
use serde_json::{Map, Value, json};

use crate::db::{self, Stored, now_ms};
use crate::handlers::work;
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

/// Write an audit row in the call's transaction.
pub async fn record<E: Stored>(
    ctx: &Context,
    action: &str,
    id: Option<&Id>,
    changes: Map<String, Value>,
) -> Result<(), HookError> {
    let mut tx = work(ctx)?.tx().await?;
    sqlx::query(
        "INSERT INTO audit (at, user_id, action, table_name, record_id, changes) \
         VALUES (?, ?, ?, ?, ?, ?)",
    )
    .bind(now_ms())
    .bind(ctx.user().map(|u| u.id.clone()))
    .bind(action)
    .bind(E::TABLE)
    .bind(id.map(ToString::to_string).unwrap_or_default())
    .bind(Value::Object(changes).to_string())
    .execute(tx.conn()?)
    .await
    .map_err(db::error)?;
    Ok(())
}

/// Record every new contact in the audit table, with its fields.
#[after_create("Contact")]
pub async fn audit_contact_created(contact: &mut Contact, ctx: &Context) -> Result<(), HookError> {
    let changes = changed_fields(None, Some(&*contact));
    record::<Contact>(ctx, "create", contact.id.as_ref(), changes).await
}

/// Record every change of a contact in the audit table, with the fields that changed.
#[after_update("Contact")]
pub async fn audit_contact_updated(contact: &mut Contact, ctx: &Context) -> Result<(), HookError> {
    let original = ctx.state::<Original<Contact>>().map(|o| o.0);
    let changes = changed_fields(original.as_ref(), Some(&*contact));
    record::<Contact>(ctx, "update", contact.id.as_ref(), changes).await
}

/// Record every deleted contact in the audit table, with the fields it had.
#[after_delete("Contact")]
pub async fn audit_contact_deleted(key: &mut Key<Contact>, ctx: &Context) -> Result<(), HookError> {
    let changes = changed_fields(key.record.as_ref(), None);
    record::<Contact>(ctx, "delete", Some(&key.id), changes).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::handlers::testing;
    use hooks::testing::Chain;

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
}
