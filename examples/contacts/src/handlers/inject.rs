//! Use case: **injecting properties before save.** Whatever the client sent, a new record belongs
//! to the user who created it and carries its creation time, and a change carries its change time;
//! an update keeps the owner and the creation time; and fields are stored in one normal form
//! (trimmed names, lower-case emails, phone numbers as `+` and digits).
//!
//! The stamps are the same on every table, so they are wildcard handlers (`"*"`): they see each
//! record through `hooks::Record`, its dynamic field view, and set the fields the table has. What
//! an update keeps from the stored version is per table: a wildcard handler of an update sees the
//! new version only, not the [`Changes`] with its original. Normal forms are per table too.
//!
//! Bulk calls keep the same rules: a bulk create stamps and normalises each record (the
//! wildcard stamp runs once per record of a bulk create, as the runtime runs a wildcard over
//! each); a bulk update drops the fields an update keeps ([`KEPT_BY_UPDATES`]) from its changes,
//! stamps the change time, and stores its values in their normal form.

use hooks::prelude::*;
use serde_json::{Value, json};

use crate::db::{Stored, now_ms};
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

/// Stamp each new record of a bulk create, on any table, as a single new record is stamped.
///
/// The runtime runs a wildcard handler of a bulk create once per record: this is
/// [`stamp_new_record`] on each.
#[before_bulk_create("*", priority = -200)]
pub fn stamp_new_records(record: &mut dyn Record, ctx: &Context) -> Result<(), HookError> {
    stamp_new_record(record, ctx)
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

/// Each new contact of a bulk create is stored in its normal form.
#[before_bulk_create("Contact", priority = -200)]
pub fn normalise_new_contacts(contacts: &mut [Contact]) {
    contacts.iter_mut().for_each(normalise);
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

/// Put a note's fields into their normal form (its body trimmed).
pub fn normalise_note(note: &mut Note) {
    note.body = note.body.trim().to_owned();
}

/// A new note is stored trimmed.
#[before_create("Note", priority = -200)]
pub fn normalise_new_note(note: &mut Note) {
    normalise_note(note);
}

/// Each new note of a bulk create is stored trimmed.
#[before_bulk_create("Note", priority = -200)]
pub fn normalise_new_notes(notes: &mut [Note]) {
    notes.iter_mut().for_each(normalise_note);
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
    normalise_note(record);
}

/// The fields an update keeps from the stored record, whatever the client sent: a single
/// update copies them back from the original ([`keep_contact_identity`],
/// [`keep_note_identity`]); a bulk update drops them from its changes.
pub const KEPT_BY_UPDATES: &[&str] = &["id", "owner", "created"];

/// What every bulk update of `E` does to its changes: drop the changes of the fields an update
/// keeps ([`KEPT_BY_UPDATES`]), put the values of the others in their normal form (`normalise`,
/// the function a single record goes through), and stamp the change time when `E` has one (as
/// [`stamp_change`] does to a single record). A value of the wrong type for its field is 400
/// `invalid_field`.
///
/// Each normal form depends only on its own field's value, so the changes are normalised once
/// for every record: made to a blank record, normalised there, and read back.
pub fn keep_identity_and_normalise<E: Stored>(
    changes: &mut BulkChanges<E>,
    normalise: fn(&mut E),
) -> Result<(), HookError> {
    for field in KEPT_BY_UPDATES {
        changes.remove(field);
    }
    let mut blank = E::default();
    // The framework's error quotes the value it could not take: cut short.
    changes.apply(&mut blank).map_err(crate::db::echoed)?;
    normalise(&mut blank);
    let fields: Vec<String> = changes.changes().keys().cloned().collect();
    for field in fields {
        changes.set(&field, blank.get(&field)?)?;
    }
    if blank.has_field("updated") {
        changes.set("updated", json!(now_ms()))?;
    }
    Ok(())
}

/// A bulk update of contacts keeps what a single one keeps, and is normalised and stamped.
///
/// Its changes of the id, owner and creation time are dropped, its values stored in their
/// normal form, and the change time set ([`keep_identity_and_normalise`]).
#[before_bulk_update("Contact", priority = -200)]
pub fn keep_contact_identity_in_bulk(changes: &mut BulkChanges<Contact>) -> Result<(), HookError> {
    keep_identity_and_normalise(changes, normalise)
}

/// A bulk update of notes keeps what a single one keeps, and is trimmed.
///
/// Its changes of the id, writer and creation time are dropped, and its body is stored trimmed
/// ([`keep_identity_and_normalise`]).
#[before_bulk_update("Note", priority = -200)]
pub fn keep_note_identity_in_bulk(changes: &mut BulkChanges<Note>) -> Result<(), HookError> {
    keep_identity_and_normalise(changes, normalise_note)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hooks::ops::data::BulkCreate;
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

    #[test]
    fn the_wildcard_stamp_runs_on_each_record_of_a_bulk_create() {
        let chain = Chain::<BulkCreate<Contact>>::only(&["stamp_new_records"]);
        let ctx = &mut Context::client().with_user(User::new("7"));
        let sent = vec![sent_by_a_sneaky_client(), sent_by_a_sneaky_client()];
        let stored = chain.run_sync(ctx, sent, Ok).unwrap();
        for c in &stored {
            assert_eq!((c.id.as_ref(), c.owner.as_deref()), (None, Some("7")));
            assert!(c.created.is_some_and(|t| t > 1));
        }
        assert_eq!(
            chain.ran_lines(),
            ["contacts::handlers::inject::stamp_new_records continued"]
        );
    }

    #[test]
    fn the_fields_a_bulk_update_drops_are_those_a_single_update_keeps() {
        let original = Contact {
            id: Some(Id::Int(3)),
            owner: Some("7".into()),
            created: Some(5),
            ..Contact::default()
        };
        let sneaky = Contact {
            id: Some(Id::Int(99)),
            ..sent_by_a_sneaky_client()
        };
        let mut changes = Changes::new(3, sneaky.clone()).with_original(original.clone());
        keep_contact_identity(&mut changes);
        let kept: Vec<&str> = ["id", "owner", "created", "name", "email", "phone"]
            .into_iter()
            .filter(|f| {
                let (got, sent, was) = (
                    changes.record.get(f).unwrap(),
                    sneaky.get(f).unwrap(),
                    original.get(f).unwrap(),
                );
                got == was && got != sent
            })
            .collect();
        assert_eq!(kept, KEPT_BY_UPDATES);
    }

    #[test]
    fn a_bulk_update_of_contacts_drops_the_kept_fields_normalises_and_stamps_the_change() {
        let sent = json!({
            "id": 99, "owner": "8", "created": 1, "updated": 1,
            "name": "  Ada   Lovelace ", "email": " ADA@Example.com", "phone": "+44 (20) 7946-0958",
        });
        let mut changes = BulkChanges::<Contact>::from_json(Query::all(), sent).unwrap();
        keep_contact_identity_in_bulk(&mut changes).unwrap();
        let mut fields: Vec<&str> = changes.changes().keys().map(String::as_str).collect();
        fields.sort_unstable();
        assert_eq!(fields, ["email", "name", "phone", "updated"]);
        assert_eq!(changes.get("name"), Some(&json!("Ada Lovelace")));
        assert_eq!(changes.get("email"), Some(&json!("ada@example.com")));
        assert_eq!(changes.get("phone"), Some(&json!("+442079460958")));
        assert!(changes.get("updated").and_then(Value::as_i64) > Some(1));
        // A value of the wrong type for its field is refused here.
        let mut bad =
            BulkChanges::<Contact>::from_json(Query::all(), json!({ "vip": "yes" })).unwrap();
        let err = keep_contact_identity_in_bulk(&mut bad).unwrap_err();
        assert_eq!((err.status(), err.code()), (400, "invalid_field"));
    }

    #[test]
    fn a_bulk_update_of_notes_keeps_the_writer_trims_the_body_and_has_no_change_time() {
        let sent = json!({ "owner": "8", "body": "  new text " });
        let mut changes = BulkChanges::<Note>::from_json(Query::all(), sent).unwrap();
        keep_note_identity_in_bulk(&mut changes).unwrap();
        assert_eq!(changes.changes().len(), 1, "{:?}", changes.changes());
        assert_eq!(changes.get("body"), Some(&json!("new text")));
    }
}
