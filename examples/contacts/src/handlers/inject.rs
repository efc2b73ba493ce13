//! Use case: **injecting properties before save.** Whatever the client sent, a new record belongs
//! to the user who created it and carries its creation time, and a change carries its change time;
//! an update keeps the owner and the creation time; and fields are stored in one normal form
//! (trimmed names, lower-case emails, phone numbers as `+` and digits).
//!
//! The stamps are the same on every table, so they are wildcard handlers (`"*"`): they see each
//! record through `hooks::Record`, its dynamic field view, and set the fields the table has. What
//! an update keeps from the stored version is per table: a wildcard handler of an update sees the
//! new version only, not the [`Changes`] with its original. Normal forms are per table too.

use hooks::prelude::*;
use serde_json::{Value, json};

use crate::db::now_ms;
use crate::model::{Contact, Note};

/// Set `field` to `value` when the record's table has it.
fn set_if_present(record: &mut dyn Record, field: &str, value: Value) -> Result<(), HookError> {
    if record.has_field(field) {
        record.set(field, value)?;
    }
    Ok(())
}

/// A new record on any table: no client-chosen id, owned by its creator, stamped with its
/// creation time.
#[before_create("*", priority = -200)]
pub fn stamp_new_record(record: &mut dyn Record, ctx: &Context) -> Result<(), HookError> {
    let user = ctx.require_user()?;
    let now = now_ms();
    set_if_present(record, "id", Value::Null)?;
    set_if_present(record, "owner", json!(user.id))?;
    set_if_present(record, "created", json!(now))?;
    set_if_present(record, "updated", json!(now))?;
    Ok(())
}

/// A changed record on any table: stamped with its change time.
#[before_update("*", priority = -200)]
pub fn stamp_change(record: &mut dyn Record) -> Result<(), HookError> {
    set_if_present(record, "updated", json!(now_ms()))
}

/// Trim `s` and collapse inner runs of whitespace; `None` when nothing is left.
fn tidy(s: &str) -> Option<String> {
    let tidy = s.split_whitespace().collect::<Vec<_>>().join(" ");
    (!tidy.is_empty()).then_some(tidy)
}

/// Put a contact's fields into their normal form.
pub fn normalise(contact: &mut Contact) {
    contact.name = tidy(&contact.name).unwrap_or_default();
    contact.email = contact.email.trim().to_lowercase();
    contact.phone = contact.phone.as_deref().and_then(|p| {
        let digits: String = p.chars().filter(char::is_ascii_digit).collect();
        match (p.trim_start().starts_with('+'), digits.is_empty()) {
            (_, true) => None,
            (true, false) => Some(format!("+{digits}")),
            (false, false) => Some(digits),
        }
    });
    contact.company = contact.company.as_deref().and_then(tidy);
    contact.notes = contact
        .notes
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(str::to_owned);
}

/// A new contact is stored in its normal form.
#[before_create("Contact", priority = -200)]
pub fn normalise_new_contact(contact: &mut Contact) {
    normalise(contact);
}

/// An update keeps the contact's id, owner and creation time, and is normalised.
#[before_update("Contact", priority = -200)]
pub fn keep_contact_identity(changes: &mut Changes<Contact>) {
    let record = &mut changes.record;
    if let Some(original) = &changes.original {
        record.owner.clone_from(&original.owner);
        record.created = original.created;
    }
    record.id = Some(changes.id.clone());
    normalise(record);
}

/// A new note is stored trimmed.
#[before_create("Note", priority = -200)]
pub fn normalise_new_note(note: &mut Note) {
    note.body = note.body.trim().to_owned();
}

/// An update of a note keeps its id, its writer and its creation time, and is trimmed.
#[before_update("Note", priority = -200)]
pub fn keep_note_identity(changes: &mut Changes<Note>) {
    let record = &mut changes.record;
    if let Some(original) = &changes.original {
        record.owner.clone_from(&original.owner);
        record.created = original.created;
    }
    record.id = Some(changes.id.clone());
    record.body = record.body.trim().to_owned();
}

#[cfg(test)]
mod tests {
    use super::*;
    use hooks::testing::Chain;

    fn sent_by_a_sneaky_client() -> Contact {
        Contact {
            id: Some(Id::Int(99)),
            owner: Some("someone else".into()),
            name: "  Ada   Lovelace ".into(),
            email: " ADA@Example.com".into(),
            phone: Some("+44 (20) 7946-0958".into()),
            company: Some("   ".into()),
            created: Some(1),
            ..Contact::default()
        }
    }

    #[test]
    fn a_new_record_of_any_table_gets_its_owner_and_times_whatever_the_client_sent() {
        let ctx = Context::client().with_user(User::new("7"));
        let mut c = sent_by_a_sneaky_client();
        stamp_new_record(&mut c, &ctx).unwrap();
        assert_eq!(c.id, None);
        assert_eq!(c.owner.as_deref(), Some("7"));
        assert!(c.created.is_some_and(|t| t > 1));
        assert_eq!(c.created, c.updated);
        // A note has no `updated`: the handler sets only what the table has.
        let mut note = Note {
            owner: Some("someone else".into()),
            ..Note::default()
        };
        stamp_new_record(&mut note, &ctx).unwrap();
        assert_eq!(note.owner.as_deref(), Some("7"));
        assert!(note.created.is_some());
        assert_eq!(
            stamp_new_record(&mut c, &Context::client())
                .unwrap_err()
                .status(),
            401
        );
    }

    #[test]
    fn the_stamps_and_the_normal_form_run_together_through_the_runtime() {
        let chain = Chain::<ops::data::Create<Contact>>::only(&[
            "stamp_new_record",
            "normalise_new_contact",
        ]);
        let ctx = &mut Context::client().with_user(User::new("7"));
        let stored = chain.run_sync(ctx, sent_by_a_sneaky_client(), Ok).unwrap();
        assert_eq!((stored.id, stored.owner.as_deref()), (None, Some("7")));
        assert_eq!(stored.name, "Ada Lovelace");
        assert_eq!(stored.email, "ada@example.com");
        assert_eq!(stored.phone.as_deref(), Some("+442079460958"));
        assert_eq!(stored.company, None);
        assert_eq!(
            chain.ran_lines(),
            [
                "contacts::handlers::inject::normalise_new_contact continued",
                "contacts::handlers::inject::stamp_new_record continued",
            ]
        );
        // The wildcard handler runs on notes too.
        let notes = Chain::<ops::data::Create<Note>>::only(&["stamp_new_record"]);
        let note = notes.run_sync(ctx, Note::default(), Ok).unwrap();
        assert_eq!(note.owner.as_deref(), Some("7"));
    }

    #[test]
    fn an_update_keeps_the_owner_and_creation_time_and_stamps_the_change() {
        let original = Contact {
            owner: Some("7".into()),
            created: Some(5),
            updated: Some(5),
            ..Contact::default()
        };
        let sneaky = Contact {
            owner: Some("8".into()),
            created: Some(6),
            updated: Some(6),
            ..Contact::default()
        };
        let chain =
            Chain::<ops::data::Update<Contact>>::only(&["stamp_change", "keep_contact_identity"]);
        let changes = Changes::new(3, sneaky).with_original(original);
        let stored = chain
            .run_sync(&mut Context::client(), changes, |c| Ok(c.record))
            .unwrap();
        assert_eq!(stored.owner.as_deref(), Some("7"));
        assert_eq!(stored.created, Some(5));
        assert_eq!(stored.id, Some(Id::Int(3)));
        assert!(stored.updated.is_some_and(|t| t > 6));
    }

    #[test]
    fn a_note_update_keeps_its_writer() {
        let original = Note {
            owner: Some("7".into()),
            created: Some(5),
            ..Note::default()
        };
        let sneaky = Note {
            owner: Some("8".into()),
            body: " new text ".into(),
            ..Note::default()
        };
        let mut changes = Changes::new(3, sneaky).with_original(original);
        keep_note_identity(&mut changes);
        assert_eq!(changes.record.owner.as_deref(), Some("7"));
        assert_eq!(changes.record.created, Some(5));
        assert_eq!(changes.record.body, "new text");
        // A note has no `updated` field: the wildcard stamp leaves it alone.
        assert!(stamp_change(&mut changes.record).is_ok());
    }
}
