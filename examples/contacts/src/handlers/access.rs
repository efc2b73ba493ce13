//! Use case: **who may change what** (validation that depends on the caller). Every signed-in
//! user reads every contact and note, but only its owner changes or deletes it: a 403 otherwise.
//! And a contact's owner deletes it with the notes that are hers, never with another user's: while
//! someone else has a note on it, the delete is a 409 (they delete their notes first).

use hooks::prelude::*;

use crate::db;
use crate::handlers::work;
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
