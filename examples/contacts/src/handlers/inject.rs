//! Use case: **injecting properties before save.** Whatever the client sent, a new record belongs
//! to the user who created it and carries its creation time; an update keeps the owner and the
//! creation time and stamps the change time; and fields are stored in one normal form (trimmed
//! names, lower-case emails, phone numbers as `+` and digits).

use hooks::prelude::*;

use crate::db::now_ms;
use crate::model::{Contact, Note};

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

/// A new contact belongs to its creator, carries its creation time, and is normalised.
#[before_create("Contact", priority = -200)]
pub fn stamp_new_contact(contact: &mut Contact, ctx: &Context) -> Result<(), HookError> {
    let user = ctx.require_user()?;
    let now = now_ms();
    contact.id = None;
    contact.owner = Some(user.id.clone());
    contact.created = Some(now);
    contact.updated = Some(now);
    normalise(contact);
    Ok(())
}

/// An update keeps the owner and the creation time, stamps the change time, and is normalised.
#[before_update("Contact", priority = -200)]
pub fn stamp_contact_update(changes: &mut Changes<Contact>) {
    let record = &mut changes.record;
    if let Some(original) = &changes.original {
        record.owner.clone_from(&original.owner);
        record.created = original.created;
    }
    record.id = Some(changes.id.clone());
    record.updated = Some(now_ms());
    normalise(record);
}

/// A new note belongs to its writer and carries its creation time.
#[before_create("Note", priority = -200)]
pub fn stamp_new_note(note: &mut Note, ctx: &Context) -> Result<(), HookError> {
    note.id = None;
    note.owner = Some(ctx.require_user()?.id.clone());
    note.created = Some(now_ms());
    note.body = note.body.trim().to_owned();
    Ok(())
}

/// An update of a note keeps its writer, its creation time and its id.
#[before_update("Note", priority = -200)]
pub fn stamp_note_update(changes: &mut Changes<Note>) {
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

    #[test]
    fn a_new_contact_gets_its_owner_and_times_whatever_the_client_sent() {
        let ctx = Context::client().with_user(User::new("7"));
        let mut c = Contact {
            id: Some(Id::Int(99)),
            owner: Some("someone else".into()),
            name: "  Ada   Lovelace ".into(),
            email: " ADA@Example.com".into(),
            phone: Some("+44 (20) 7946-0958".into()),
            company: Some("   ".into()),
            created: Some(1),
            ..Contact::default()
        };
        stamp_new_contact(&mut c, &ctx).unwrap();
        assert_eq!(c.id, None);
        assert_eq!(c.owner.as_deref(), Some("7"));
        assert!(c.created.is_some_and(|t| t > 1));
        assert_eq!(c.created, c.updated);
        assert_eq!(c.name, "Ada Lovelace");
        assert_eq!(c.email, "ada@example.com");
        assert_eq!(c.phone.as_deref(), Some("+442079460958"));
        assert_eq!(c.company, None);
        assert_eq!(
            stamp_new_contact(&mut c, &Context::client())
                .unwrap_err()
                .status(),
            401
        );
    }

    #[test]
    fn an_update_keeps_the_owner_and_creation_time() {
        let original = Contact {
            owner: Some("7".into()),
            created: Some(5),
            ..Contact::default()
        };
        let sneaky = Contact {
            owner: Some("8".into()),
            created: Some(6),
            ..Contact::default()
        };
        let mut changes = Changes::new(3, sneaky).with_original(original);
        stamp_contact_update(&mut changes);
        assert_eq!(changes.record.owner.as_deref(), Some("7"));
        assert_eq!(changes.record.created, Some(5));
        assert_eq!(changes.record.id, Some(Id::Int(3)));
        assert!(changes.record.updated.is_some_and(|t| t > 5));
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
        stamp_note_update(&mut changes);
        assert_eq!(changes.record.owner.as_deref(), Some("7"));
        assert_eq!(changes.record.created, Some(5));
        assert_eq!(changes.record.body, "new text");
    }
}
