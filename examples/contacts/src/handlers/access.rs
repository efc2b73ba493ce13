//! Use case: **who may change what** (validation that depends on the caller). Every signed-in
//! user reads every contact and note, but only its owner changes or deletes it: a 403 otherwise.
//! And a contact's owner deletes it with the notes that are hers, never with another user's: while
//! someone else has a note on it, the delete is a 409 (they delete their notes first).
//!
//! A bulk update or delete never reaches another user's record: its query is narrowed to the
//! caller's records ([`narrow_to_owner`]) before anything else runs, whatever `where` the client
//! sent. And a bulk delete of contacts keeps the 409 rule for each contact it selects.

use hooks::Condition;
use hooks::prelude::*;
use serde_json::json;

use crate::db;
use crate::handlers::{selected, work};
use crate::model::{Contact, Note, Owned};

/// `Ok` when the current user owns `record` (or the record is not known, so the default answers
/// with its 404); a 403 otherwise.
pub fn check_owner<R: Owned>(record: Option<&R>, ctx: &Context) -> Result<(), HookError> {
    let user = ctx.require_user()?;
    match record {
        None => Ok(()),
        Some(r) if r.owner() == Some(user.id.as_str()) => Ok(()),
        Some(_) => Err(HookError::forbidden(
            "only the record's owner may change or delete it",
        )),
    }
}

/// Only a contact's owner may change it.
#[before_update("Contact", priority = -300)]
pub fn only_owner_updates(changes: &Changes<Contact>, ctx: &Context) -> Result<(), HookError> {
    check_owner(changes.original.as_ref(), ctx)
}

/// Only a contact's owner may delete it.
#[before_delete("Contact", priority = -300)]
pub fn only_owner_deletes(key: &Key<Contact>, ctx: &Context) -> Result<(), HookError> {
    check_owner(key.record.as_ref(), ctx)
}

/// A contact is deleted with its owner's notes on it (the foreign key's cascade), but never with
/// another user's: while one has a note on it, the delete is a 409. The count runs in the call's
/// write transaction, so no note can be written between it and the delete (a note racing the
/// delete finds its contact gone: a 4xx, see `db::error`).
#[before_delete("Contact", priority = -250)]
pub async fn others_notes_keep_a_contact(
    key: &Key<Contact>,
    ctx: &Context,
) -> Result<(), HookError> {
    let (user, Id::Int(id)) = (ctx.require_user()?, &key.id) else {
        return Ok(()); // no such contact: the default answers 404
    };
    let mut tx = work(ctx)?.tx().await?;
    let theirs: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM notes WHERE contact_id = ? AND owner IS NOT ?")
            .bind(id)
            .bind(&user.id)
            .fetch_one(tx.conn()?)
            .await
            .map_err(db::error)?;
    if theirs > 0 {
        return Err(HookError::conflict(format!(
            "contact {id} has {theirs} note{} by other users; it can be deleted once they have \
             deleted them",
            if theirs == 1 { "" } else { "s" }
        )));
    }
    Ok(())
}

/// Narrow `query` to the current user's records (401 for an anonymous call): the condition
/// `owner = <user>` joins its others with AND. The storage keeps each condition whole (in SQL,
/// each in its own parentheses: `db::find`), and a client's `where` has no OR, so no clause a
/// client writes selects a record outside the caller's, and one that names another owner
/// selects nothing.
pub fn narrow_to_owner<E>(query: &mut Query<E>, ctx: &Context) -> Result<(), HookError> {
    let user = ctx.require_user()?;
    query.filter.push(Condition {
        field: "owner".into(),
        op: Op::Eq,
        value: json!(user.id),
    });
    Ok(())
}

/// A bulk update of contacts changes only the caller's own.
#[before_bulk_update("Contact", priority = -300)]
pub fn only_own_contacts_bulk_updated(
    changes: &mut BulkChanges<Contact>,
    ctx: &Context,
) -> Result<(), HookError> {
    narrow_to_owner(&mut changes.query, ctx)
}

/// A bulk delete of contacts deletes only the caller's own.
#[before_bulk_delete("Contact", priority = -300)]
pub fn only_own_contacts_bulk_deleted(
    query: &mut Query<Contact>,
    ctx: &Context,
) -> Result<(), HookError> {
    narrow_to_owner(query, ctx)
}

/// A bulk delete keeps the 409 of a single one for each contact it selects.
///
/// While another user has a note on one of them ([`others_notes_keep_a_contact`]), the whole
/// delete is a 409 that names it, and nothing is deleted.
#[before_bulk_delete("Contact", priority = -250)]
pub async fn others_notes_keep_bulk_deleted_contacts(
    query: &Query<Contact>,
    ctx: &Context,
) -> Result<(), HookError> {
    for contact in selected(query, ctx).await?.iter() {
        if let Some(id) = &contact.id {
            let key = Key::new(id.clone()).with_record(contact.clone());
            others_notes_keep_a_contact(&key, ctx).await?;
        }
    }
    Ok(())
}

/// Only a note's writer may change it.
#[before_update("Note", priority = -300)]
pub fn only_owner_updates_note(changes: &Changes<Note>, ctx: &Context) -> Result<(), HookError> {
    check_owner(changes.original.as_ref(), ctx)
}

/// Only a note's writer may delete it.
#[before_delete("Note", priority = -300)]
pub fn only_owner_deletes_note(key: &Key<Note>, ctx: &Context) -> Result<(), HookError> {
    check_owner(key.record.as_ref(), ctx)
}

/// A bulk update of notes changes only the caller's own.
#[before_bulk_update("Note", priority = -300)]
pub fn only_own_notes_bulk_updated(
    changes: &mut BulkChanges<Note>,
    ctx: &Context,
) -> Result<(), HookError> {
    narrow_to_owner(&mut changes.query, ctx)
}

/// A bulk delete of notes deletes only the caller's own.
#[before_bulk_delete("Note", priority = -300)]
pub fn only_own_notes_bulk_deleted(
    query: &mut Query<Note>,
    ctx: &Context,
) -> Result<(), HookError> {
    narrow_to_owner(query, ctx)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::handlers::testing;
    use hooks::ops::data::{BulkDelete, BulkUpdate};
    use hooks::testing::Chain;

    fn owned_by(owner: &str) -> Contact {
        Contact {
            owner: Some(owner.into()),
            ..Contact::default()
        }
    }

    #[test]
    fn only_the_owner_may_update_or_delete_a_contact() {
        let ada = Context::client().with_user(User::new("1"));
        let bob = Context::client().with_user(User::new("2"));
        let changes = Changes::new(7, owned_by("1")).with_original(owned_by("1"));
        assert!(only_owner_updates(&changes, &ada).is_ok());
        assert_eq!(
            only_owner_updates(&changes, &bob).unwrap_err().status(),
            403
        );
        let key = Key::new(7).with_record(owned_by("1"));
        assert!(only_owner_deletes(&key, &ada).is_ok());
        assert_eq!(only_owner_deletes(&key, &bob).unwrap_err().status(), 403);
        assert_eq!(
            only_owner_deletes(&key, &Context::client())
                .unwrap_err()
                .status(),
            401
        );
    }

    #[test]
    fn only_the_writer_may_update_or_delete_a_note() {
        let note = Note {
            owner: Some("1".into()),
            ..Note::default()
        };
        let ada = Context::client().with_user(User::new("1"));
        let bob = Context::client().with_user(User::new("2"));
        let changes = Changes::new(3, note.clone()).with_original(note.clone());
        assert!(only_owner_updates_note(&changes, &ada).is_ok());
        assert_eq!(
            only_owner_updates_note(&changes, &bob)
                .unwrap_err()
                .status(),
            403
        );
        let key = Key::new(3).with_record(note);
        assert_eq!(
            only_owner_deletes_note(&key, &bob).unwrap_err().status(),
            403
        );
    }

    #[test]
    fn a_bulk_query_is_narrowed_to_the_callers_records_whatever_else_it_says() {
        let ada = Context::client().with_user(User::new("1"));
        let mut query = Query::<Contact>::all().filter("owner", Op::Eq, "2");
        narrow_to_owner(&mut query, &ada).unwrap();
        let conditions: Vec<_> = query
            .filter
            .iter()
            .map(|c| (c.field.as_str(), c.op, c.value.clone()))
            .collect();
        assert_eq!(
            conditions,
            [("owner", Op::Eq, json!("2")), ("owner", Op::Eq, json!("1"))],
            "the client's condition stays, and the caller's joins it"
        );
        let err = narrow_to_owner(&mut query, &Context::client()).unwrap_err();
        assert_eq!(err.status(), 401);
    }

    #[test]
    fn bulk_updates_and_deletes_of_both_tables_run_narrowed() {
        let ctx = &mut Context::client().with_user(User::new("1"));
        let chain = Chain::<BulkDelete<Contact>>::only(&["only_own_contacts_bulk_deleted"]);
        let out = chain.run_sync(ctx, Query::all(), |q| {
            assert_eq!(q.filter.len(), 1);
            assert_eq!(q.filter[0].value, json!("1"));
            Ok(Affected::new(0))
        });
        assert!(out.is_ok());
        let chain = Chain::<BulkUpdate<Note>>::only(&["only_own_notes_bulk_updated"]);
        let changes = BulkChanges::from_json(Query::all(), json!({ "body": "x" })).unwrap();
        let out = chain.run_sync(ctx, changes, |c| {
            assert_eq!(c.query.filter[0].value, json!("1"));
            Ok(Affected::new(0))
        });
        assert!(out.is_ok());
        // An anonymous call is refused before the default runs.
        let chain = Chain::<BulkDelete<Note>>::only(&["only_own_notes_bulk_deleted"]);
        let err = chain
            .run_sync(&mut Context::client(), Query::all(), |_| {
                panic!("the default must not run")
            })
            .unwrap_err();
        assert_eq!(err.status(), 401);
    }

    #[tokio::test]
    async fn a_bulk_delete_of_contacts_keeps_the_409_of_each_contact_it_selects() {
        let app = testing::app(Config::for_tests()).await;
        let (ctx, _work) = testing::ctx(&app, Some("1"));
        {
            let mut tx = work(&ctx).unwrap().tx().await.unwrap();
            for owner in ["1", "1"] {
                db::insert(tx.conn().unwrap(), owned_by(owner))
                    .await
                    .unwrap();
            }
            let theirs = Note {
                owner: Some("2".into()),
                contact_id: 2,
                body: "theirs".into(),
                ..Note::default()
            };
            db::insert(tx.conn().unwrap(), theirs).await.unwrap();
        }
        let mine = Query::<Contact>::all().filter("owner", Op::Eq, "1");
        let err = others_notes_keep_bulk_deleted_contacts(&mine, &ctx)
            .await
            .unwrap_err();
        assert_eq!(err.status(), 409);
        assert!(err.message().starts_with("contact 2 has 1 note"), "{err}");
        let first = Query::<Contact>::all().filter("id", Op::Eq, 1);
        assert!(
            others_notes_keep_bulk_deleted_contacts(&first, &ctx)
                .await
                .is_ok()
        );
    }
}
