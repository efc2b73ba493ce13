//! Use case: **validating data before it is saved.** Before handlers check a contact on create and
//! on update, a note on create (including that its contact exists, a check that reads the
//! database), a registration (`#[before_register]`), and the new password of a password reset
//! (`#[before(ResetPassword)]`, the service's own operation), and a password reset request
//! (`#[before_password_reset]`); a failed check rejects the call with a 400 that says what is
//! wrong, and nothing is written. Emails, names and companies may not contain control, invisible
//! or text-direction characters ([`is_hidden`]), notes no control characters but line breaks and
//! tabs.
//!
//! A bulk update or delete may select at most `--bulk-max` of the caller's records
//! ([`check_bulk_size`]): more is a 413 `too_many_records`, before any record is read.
//!
//! A bulk create checks each of its records as a single create does, and a bulk update each
//! record it selects as the update would leave it: the first record that breaks a rule rejects
//! the whole call, with the error a single call would get and the record named in front of the
//! message (`records[2]: ...`, `Contact 7: ...`).

use hooks::prelude::*;

use crate::db::{self, Stored, echo};
use crate::handlers::{app, in_record, record_name, selected, work};
use crate::model::{Contact, Note};
use crate::users::{NewPassword, ResetPassword, normalise_email};

/// The longest name accepted, in characters.
pub const MAX_NAME: usize = 200;
/// The longest note accepted, in characters.
pub const MAX_NOTE: usize = 2000;
/// The shortest password accepted, in characters.
pub const MIN_PASSWORD: usize = 8;

/// The longest email address accepted, in bytes (RFC 5321's limit on a path).
pub const MAX_EMAIL: usize = 254;

/// Whether `c` is a character that no email address, name or company has because it cannot be
/// seen, or changes how the text around it is shown: a control character (general category Cc:
/// NUL, escape, DEL, the C1 range, ...), a format character (Cf, as of Unicode 15: soft hyphen,
/// zero-width space and joiners, direction marks, embeddings, overrides and isolates, word
/// joiner and invisible operators, byte-order mark, interlinear annotation marks, tag
/// characters, and the format characters of Arabic, Syriac, Mongolian, Kaithi, Egyptian
/// hieroglyphs, shorthand and musical notation), the line and paragraph separators (Zl, Zp),
/// every other character of Unicode's `Default_Ignorable_Code_Point` set (the combining grapheme
/// joiner, the Khmer inherent vowels, the Mongolian free variation selectors, the variation
/// selectors U+FE00–FE0F and U+E0100–E01EF, the unassigned U+FFF0–FFF8 and the whole
/// U+E0000–E0FFF block), and the letters and symbols that show as a blank (the Hangul fillers,
/// the blank braille pattern U+2800, the musical null notehead U+1D159).
///
/// Such characters make one text look like another, or like something it is not (U+202E makes
/// `photo`, U+202E, `gpj.exe` read as `photoexe.jpg`). A name or a company may still hold a
/// variation selector right after a visible non-ASCII character (the emoji ❤️), and a
/// zero-width joiner or non-joiner between two visible characters (see [`check_line`]); an email
/// holds none.
pub fn is_hidden(c: char) -> bool {
    c.is_control()
        || is_variation_selector(c)
        || matches!(
            c,
            // Cf
            '\u{00AD}'
                | '\u{0600}'..='\u{0605}'
                | '\u{061C}'
                | '\u{06DD}'
                | '\u{070F}'
                | '\u{0890}'..='\u{0891}'
                | '\u{08E2}'
                | '\u{180E}'
                | '\u{200B}'..='\u{200F}'
                | '\u{202A}'..='\u{202E}'
                | '\u{2060}'..='\u{206F}'
                | '\u{FEFF}'
                | '\u{FFF9}'..='\u{FFFB}'
                | '\u{110BD}'
                | '\u{110CD}'
                | '\u{13430}'..='\u{1343F}'
                | '\u{1BCA0}'..='\u{1BCA3}'
                | '\u{1D173}'..='\u{1D17A}'
                // Zl, Zp
                | '\u{2028}'
                | '\u{2029}'
                // the rest of Default_Ignorable_Code_Point: combining grapheme joiner, Hangul
                // fillers, Khmer inherent vowels, Mongolian free variation selectors,
                // unassigned U+FFF0–FFF8, the tags block and what is reserved around it
                | '\u{034F}'
                | '\u{115F}'
                | '\u{1160}'
                | '\u{17B4}'..='\u{17B5}'
                | '\u{180B}'..='\u{180D}'
                | '\u{180F}'
                | '\u{3164}'
                | '\u{FFA0}'
                | '\u{FFF0}'..='\u{FFF8}'
                | '\u{E0000}'..='\u{E0FFF}'
                // blank: braille pattern blank, musical null notehead
                | '\u{2800}'
                | '\u{1D159}'
        )
}

/// Whether `c` is a variation selector (U+FE00–FE0F, U+E0100–E01EF): invisible itself, it picks
/// the glyph of the character before it, as in the emoji ❤️ (U+2764, U+FE0F).
fn is_variation_selector(c: char) -> bool {
    matches!(c, '\u{FE00}'..='\u{FE0F}' | '\u{E0100}'..='\u{E01EF}')
}

/// Whether `email` looks like an address: one `@`, something before it, a dotted domain after it,
/// no spaces, no control or invisible characters ([`is_hidden`]), at most [`MAX_EMAIL`] bytes.
/// The domain is ASCII letters, digits and hyphens (an international domain is written in its
/// `xn--` form): look-alikes such as a full-width dot, which mail systems may map to `.`, would
/// otherwise name a banned domain without matching it.
pub fn is_email(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && email.len() <= MAX_EMAIL
        && !domain.contains('@')
        && !email.contains(char::is_whitespace)
        && !email.contains(is_hidden)
        && domain.split('.').count() >= 2
        && domain.split('.').all(|label| {
            !label.is_empty()
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

/// Reject a name, company or other one-line text with a control character in it (NUL, escape,
/// DEL, line breaks, ...), which corrupts logs, terminals and whatever displays it, or an
/// invisible or text-direction one ([`is_hidden`]), which makes it look like another text.
/// Two exceptions, where writing needs them: a variation selector right after a visible
/// non-ASCII character (❤️), and a zero-width joiner or non-joiner between two visible
/// characters of which at least one is not ASCII (Persian and Indic spellings, 👩‍💻).
pub fn check_line(what: &str, text: &str) -> Result<(), HookError> {
    if hidden_in_line(text) {
        return Err(HookError::rejected(format!(
            "a {what} may not contain control, invisible or text-direction characters"
        )));
    }
    Ok(())
}

/// Whether `text`, a name or a company, holds a hidden character ([`is_hidden`]) that it does not
/// need. Two kinds are kept where writing needs them, and only there:
///
/// - a variation selector right after a visible non-ASCII character, whose glyph it picks (the
///   emoji ❤️, an ideograph's variant); after a Latin letter, a space or another hidden
///   character it changes nothing anyone sees;
/// - a zero-width joiner or non-joiner (U+200D, U+200C) between two visible characters, at least
///   one of them not ASCII: Persian and Indic spellings need them (`می‌خواهم`, a name in
///   Devanagari), and so do emoji sequences (👩‍💻, ❤️‍🔥, where the joiner follows a kept
///   variation selector). Between two ASCII characters (`Ad`, U+200D, `a`), at an end, or next to
///   another hidden character, they only make one name look like another.
fn hidden_in_line(text: &str) -> bool {
    let chars: Vec<char> = text.chars().collect();
    let visible = |c: char| !is_hidden(c) && !c.is_whitespace();
    let at = |i: Option<usize>| i.and_then(|i| chars.get(i)).copied();
    // The visible character that the character at `i` follows: the one before it, or, past a
    // kept variation selector, the one that selector dresses.
    let base_before = |i: usize| -> Option<char> {
        let before = at(i.checked_sub(1))?;
        if visible(before) {
            return Some(before);
        }
        let base = at(i.checked_sub(2))?;
        (is_variation_selector(before) && visible(base) && !base.is_ascii()).then_some(base)
    };
    chars.iter().enumerate().any(|(i, &c)| {
        if !is_hidden(c) {
            return false;
        }
        if is_variation_selector(c) {
            let after_non_ascii = at(i.checked_sub(1)).is_some_and(|b| visible(b) && !b.is_ascii());
            return !after_non_ascii;
        }
        if matches!(c, '\u{200C}' | '\u{200D}') {
            let joins = match (base_before(i), at(Some(i + 1))) {
                (Some(before), Some(after)) => {
                    visible(after) && !(before.is_ascii() && after.is_ascii())
                }
                _ => false,
            };
            return !joins;
        }
        true
    })
}

/// Reject free text (a note) with a control character other than a line break or a tab.
pub fn check_text(what: &str, text: &str) -> Result<(), HookError> {
    if text.contains(|c: char| c.is_control() && !matches!(c, '\n' | '\r' | '\t')) {
        return Err(HookError::rejected(format!(
            "a {what} may not contain control characters other than line breaks and tabs"
        )));
    }
    Ok(())
}

fn invalid_email(email: &str) -> HookError {
    HookError::new(
        400,
        "invalid_email",
        format!("`{}` is not an email address", echo(email)),
    )
}

/// The rules every stored contact keeps.
pub fn check_contact(contact: &Contact) -> Result<(), HookError> {
    let name = contact.name.trim();
    if name.is_empty() {
        return Err(HookError::rejected("a contact needs a name"));
    }
    if name.chars().count() > MAX_NAME {
        return Err(HookError::rejected(format!(
            "a name has at most {MAX_NAME} characters"
        )));
    }
    check_line("name", name)?;
    if !is_email(&contact.email) {
        return Err(invalid_email(&contact.email));
    }
    if let Some(company) = &contact.company {
        check_line("company", company)?;
        if company.chars().count() > MAX_NAME {
            return Err(HookError::rejected(format!(
                "a company name has at most {MAX_NAME} characters"
            )));
        }
    }
    if let Some(notes) = &contact.notes {
        check_text("contact's notes", notes)?;
        if notes.chars().count() > MAX_NOTE {
            return Err(HookError::rejected(format!(
                "a contact's notes have at most {MAX_NOTE} characters"
            )));
        }
    }
    if let Some(phone) = &contact.phone {
        let digits = phone.chars().filter(char::is_ascii_digit).count();
        if !(6..=15).contains(&digits) {
            return Err(HookError::rejected(format!(
                "`{}` is not a phone number (6 to 15 digits)",
                echo(phone)
            )));
        }
    }
    Ok(())
}

/// A new contact needs a name, an email address and, if it has one, a plausible phone number.
#[before_create("Contact", priority = -100)]
pub fn validate_new_contact(contact: &Contact) -> Result<(), HookError> {
    check_contact(contact)
}

/// A changed contact keeps the rules of a new one.
#[before_update("Contact", priority = -100)]
pub fn validate_contact_update(contact: &Contact) -> Result<(), HookError> {
    check_contact(contact)
}

/// Each contact of a bulk create keeps the rules of a new one.
///
/// The first that does not rejects the whole batch, named by its index in it.
#[before_bulk_create("Contact", priority = -100)]
pub fn validate_new_contacts(contacts: &[Contact]) -> Result<(), HookError> {
    for (i, contact) in contacts.iter().enumerate() {
        check_contact(contact).map_err(|e| in_record(format_args!("records[{i}]"), e))?;
    }
    Ok(())
}

/// Each record a bulk update selects, as the update would leave it (its changes made to a copy
/// of the stored record), with its name for an error ([`record_name`]). A change of the wrong
/// type for its field is 400 `invalid_field`.
pub async fn as_changed<E: Stored>(
    changes: &BulkChanges<E>,
    ctx: &Context,
) -> Result<Vec<(String, E)>, HookError> {
    let mut changed = Vec::new();
    for stored in selected(&changes.query, ctx).await?.iter() {
        let mut record = stored.clone();
        // The framework's error quotes the value it could not take: cut short.
        changes.apply(&mut record).map_err(db::echoed)?;
        changed.push((record_name(stored), record));
    }
    Ok(changed)
}

/// Each contact a bulk update changes keeps the rules of a new one.
///
/// The first that would not rejects the whole update, named by its id.
#[before_bulk_update("Contact", priority = -100)]
pub async fn validate_contact_bulk_update(
    changes: &BulkChanges<Contact>,
    ctx: &Context,
) -> Result<(), HookError> {
    for (name, contact) in as_changed(changes, ctx).await? {
        check_contact(&contact).map_err(|e| in_record(name, e))?;
    }
    Ok(())
}

/// Refuse a bulk update or delete (`what`) whose `query` selects more than `--bulk-max` records
/// ([`Config::bulk_max`](crate::Config::bulk_max), the bound of a bulk create too): a 413
/// `too_many_records`, before any record is read or written. The records are counted in the
/// call's write transaction, so the count holds until the call's write; and as the caller sees
/// them, on the query the access handlers have narrowed to the caller's own records, so other
/// users' records neither count nor show in the number.
///
/// Every record a bulk call selects is read, checked, audited and notified in the call's
/// transaction, which holds SQLite's write lock: without a bound, one call on tens of thousands
/// of records ran past its handlers' timeout and held every other writer off meanwhile.
pub async fn check_bulk_size<E: Stored>(
    what: &str,
    query: &Query<E>,
    ctx: &Context,
) -> Result<(), HookError> {
    let max = app(ctx)?.config.bulk_max;
    let viewer = ctx.user().map(|u| u.id.as_str());
    let selected = {
        let mut tx = work(ctx)?.tx().await?;
        db::count_where(tx.conn()?, query, viewer).await?
    };
    if selected > u64::try_from(max).unwrap_or(u64::MAX) {
        return Err(HookError::new(
            413,
            "too_many_records",
            format!(
                "a bulk {what} takes at most {max} records, and `where` selects {selected} of \
                 yours; narrow it and send several calls"
            ),
        ));
    }
    Ok(())
}

/// A bulk update of contacts changes at most `--bulk-max` of them.
///
/// It runs right after the query is narrowed to the caller's contacts, before any handler
/// reads them ([`check_bulk_size`]).
#[before_bulk_update("Contact", priority = -290)]
pub async fn cap_bulk_contact_update(
    changes: &BulkChanges<Contact>,
    ctx: &Context,
) -> Result<(), HookError> {
    check_bulk_size("update", &changes.query, ctx).await
}

/// A bulk delete of contacts deletes at most `--bulk-max` of them.
///
/// It runs right after the query is narrowed to the caller's contacts, before any handler
/// reads them ([`check_bulk_size`]).
#[before_bulk_delete("Contact", priority = -290)]
pub async fn cap_bulk_contact_delete(
    query: &Query<Contact>,
    ctx: &Context,
) -> Result<(), HookError> {
    check_bulk_size("delete", query, ctx).await
}

/// A bulk update of notes changes at most `--bulk-max` of them.
///
/// It runs right after the query is narrowed to the caller's notes ([`check_bulk_size`]).
#[before_bulk_update("Note", priority = -290)]
pub async fn cap_bulk_note_update(
    changes: &BulkChanges<Note>,
    ctx: &Context,
) -> Result<(), HookError> {
    check_bulk_size("update", &changes.query, ctx).await
}

/// A bulk delete of notes deletes at most `--bulk-max` of them.
///
/// It runs right after the query is narrowed to the caller's notes ([`check_bulk_size`]).
#[before_bulk_delete("Note", priority = -290)]
pub async fn cap_bulk_note_delete(query: &Query<Note>, ctx: &Context) -> Result<(), HookError> {
    check_bulk_size("delete", query, ctx).await
}

/// A note needs a text of at most 2000 characters, about a contact that exists.
#[before_create("Note", priority = -100)]
pub async fn validate_new_note(note: &Note, ctx: &Context) -> Result<(), HookError> {
    check_note(note, ctx).await
}

/// A changed note keeps the rules of a new one.
#[before_update("Note", priority = -100)]
pub async fn validate_note_update(note: &Note, ctx: &Context) -> Result<(), HookError> {
    check_note(note, ctx).await
}

/// Each note of a bulk create keeps the rules of a new one.
///
/// The first that does not rejects the whole batch, named by its index in it.
#[before_bulk_create("Note", priority = -100)]
pub async fn validate_new_notes(notes: &[Note], ctx: &Context) -> Result<(), HookError> {
    for (i, note) in notes.iter().enumerate() {
        check_note(note, ctx)
            .await
            .map_err(|e| in_record(format_args!("records[{i}]"), e))?;
    }
    Ok(())
}

/// Each note a bulk update changes keeps the rules of a new one.
///
/// The first that would not rejects the whole update, named by its id.
#[before_bulk_update("Note", priority = -100)]
pub async fn validate_note_bulk_update(
    changes: &BulkChanges<Note>,
    ctx: &Context,
) -> Result<(), HookError> {
    for (name, note) in as_changed(changes, ctx).await? {
        check_note(&note, ctx)
            .await
            .map_err(|e| in_record(name, e))?;
    }
    Ok(())
}

/// The rules every stored note keeps; reads the database to find its contact, in the call's
/// transaction: the contact found is still there when the note is written (a delete of it
/// waits for the call to end), and a bulk call, whose transaction is already open when its
/// notes are checked, reads on the connection it holds (an in-memory database has only one).
pub async fn check_note(note: &Note, ctx: &Context) -> Result<(), HookError> {
    let body = note.body.trim();
    if body.is_empty() {
        return Err(HookError::rejected("a note needs a body"));
    }
    if body.chars().count() > MAX_NOTE {
        return Err(HookError::rejected(format!(
            "a note has at most {MAX_NOTE} characters"
        )));
    }
    check_text("note", body)?;
    let mut tx = work(ctx)?.tx().await?;
    let exists: Option<i64> = sqlx::query_scalar("SELECT id FROM contacts WHERE id = ?")
        .bind(note.contact_id)
        .fetch_optional(tx.conn()?)
        .await
        .map_err(db::error)?;
    if exists.is_none() {
        return Err(HookError::rejected(format!(
            "contact {} does not exist",
            note.contact_id
        )));
    }
    Ok(())
}

/// Registrations need an email address, a name and a password of 8 characters or more.
#[before_register(priority = -100)]
pub fn validate_registration(user: &mut NewUser) -> Result<(), HookError> {
    user.email = normalise_email(&user.email);
    let name = match user.fields.get("name") {
        Some(serde_json::Value::String(name)) => name.trim().to_owned(),
        _ => String::new(),
    };
    if !is_email(&user.email) {
        return Err(invalid_email(&user.email));
    }
    if name.is_empty() {
        return Err(HookError::rejected("a user needs a name"));
    }
    check_line("name", &name)?;
    if name.chars().count() > MAX_NAME {
        return Err(HookError::rejected(format!(
            "a name has at most {MAX_NAME} characters"
        )));
    }
    user.fields.insert("name".into(), name.into());
    check_password(&user.password)
}

fn check_password(password: &Secret) -> Result<(), HookError> {
    if password.expose().chars().count() < MIN_PASSWORD {
        return Err(HookError::new(
            400,
            "weak_password",
            format!("a password has at least {MIN_PASSWORD} characters"),
        ));
    }
    Ok(())
}

/// A password reset request needs an email address: one that is missing or is no address is a
/// 400 (not the 202 every address gets), which says nothing about which addresses have accounts.
#[before_password_reset(priority = -100)]
pub fn validate_reset_request(request: &mut ResetRequest) -> Result<(), HookError> {
    request.email = normalise_email(&request.email);
    if request.email.is_empty() {
        return Err(HookError::new(
            400,
            "invalid_email",
            "a password reset needs the account's email",
        ));
    }
    if !is_email(&request.email) {
        return Err(invalid_email(&request.email));
    }
    Ok(())
}

/// A new password set by a reset keeps the rules of a registration.
#[before(ResetPassword, priority = -100)]
pub fn validate_new_password(input: &NewPassword) -> Result<(), HookError> {
    check_password(&input.password)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::handlers::testing;
    use hooks::testing::Chain;

    fn contact(name: &str, email: &str) -> Contact {
        Contact {
            name: name.into(),
            email: email.into(),
            ..Contact::default()
        }
    }

    #[test]
    fn a_contact_without_a_name_or_a_valid_email_is_rejected() {
        assert!(validate_new_contact(&contact("Ada", "ada@example.com")).is_ok());
        let err = validate_new_contact(&contact("  ", "ada@example.com")).unwrap_err();
        assert_eq!((err.status(), err.code()), (400, "rejected"));
        for bad in [
            "",
            "ada",
            "ada@",
            "@example.com",
            "ada@example",
            "a da@x.io",
            "a@b@c.io",
            "ada@example.com\u{0}",
            "ada@exa\u{7}mple.com",
            "ada\u{200b}@example.com",
            "ada@example\u{ff0e}com",
            "ada@-example.com",
            "ada@ex_ample.com",
        ] {
            let err = validate_contact_update(&contact("Ada", bad)).unwrap_err();
            assert_eq!(err.code(), "invalid_email", "{bad}");
        }
    }

    #[test]
    fn a_contact_with_control_characters_in_its_name_company_or_notes_is_rejected() {
        let mut c = contact("Ada\u{0}", "ada@example.com");
        assert_eq!(validate_new_contact(&c).unwrap_err().code(), "rejected");
        c.name = "Ada".into();
        c.company = Some("ACME\u{1b}[2J".into());
        assert_eq!(validate_new_contact(&c).unwrap_err().code(), "rejected");
        c.company = Some("ACME".into());
        c.notes = Some("a\u{8}b".into());
        assert_eq!(validate_new_contact(&c).unwrap_err().code(), "rejected");
        c.notes = Some("line one\r\n\tline two".into());
        assert!(validate_new_contact(&c).is_ok());
    }

    #[test]
    fn an_invalid_email_or_phone_is_quoted_short_in_its_error() {
        let long = "x".repeat(60_000);
        let too_long = "x".repeat(db::ECHO_MAX + 1);
        let err = validate_new_contact(&contact("Ada", &long)).unwrap_err();
        assert_eq!(err.code(), "invalid_email");
        assert!(
            !err.message().contains(&too_long),
            "{} bytes",
            err.message().len()
        );
        let mut c = contact("Ada", "ada@example.com");
        c.phone = Some(format!("12{long}"));
        let err = validate_new_contact(&c).unwrap_err();
        assert!(err.message().contains("is not a phone number"), "{err}");
        assert!(
            !err.message().contains(&too_long),
            "{} bytes",
            err.message().len()
        );
        let mut request = ResetRequest {
            email: long.clone(),
        };
        let err = validate_reset_request(&mut request).unwrap_err();
        assert!(
            !err.message().contains(&too_long),
            "{} bytes",
            err.message().len()
        );
        let mut user = NewUser {
            email: long,
            password: Secret::new("long enough"),
            fields: Default::default(),
        };
        let err = validate_registration(&mut user).unwrap_err();
        assert!(
            !err.message().contains(&too_long),
            "{} bytes",
            err.message().len()
        );
    }

    #[test]
    fn a_name_or_company_with_an_invisible_or_direction_character_is_rejected() {
        for hidden in [
            '\u{202E}',
            '\u{200B}',
            '\u{00AD}',
            '\u{FEFF}',
            '\u{2066}',
            '\u{2069}',
            '\u{2028}',
            '\u{E0041}',
            '\u{3164}',
            '\u{034F}',
            '\u{061C}',
        ] {
            let mut c = contact(&format!("Ada{hidden}Lovelace"), "ada@example.com");
            let err = validate_new_contact(&c).unwrap_err();
            assert_eq!(err.code(), "rejected", "{:?}", hidden);
            c.name = "Ada".into();
            c.company = Some(format!("{hidden}ACME"));
            assert!(validate_new_contact(&c).is_err(), "{:?}", hidden);
            let mut user = NewUser {
                email: "ada@example.com".into(),
                password: Secret::new("long enough"),
                fields: [("name".to_owned(), format!("Ada{hidden}L").into())]
                    .into_iter()
                    .collect(),
            };
            assert!(validate_registration(&mut user).is_err(), "{:?}", hidden);
        }
        // Letters of every script, marks and emoji (with their variation selector) stay.
        for name in [
            "Zoë Ådahl",
            "José Núñez",
            "李小龍",
            "Ольга",
            "नमस्ते",
            "Ada ❤\u{FE0F}",
        ] {
            assert!(
                validate_new_contact(&contact(name, "ada@example.com")).is_ok(),
                "{name}"
            );
        }
    }

    #[test]
    fn a_name_may_join_its_letters_with_zero_width_joiners_and_hides_nothing_else() {
        // Persian, Devanagari and emoji sequences need them between two characters.
        for ok in [
            "می\u{200C}خواهم",
            "क\u{094D}\u{200D}ष",
            "Ada \u{1F469}\u{200D}\u{1F4BB}",
            "Ada \u{2764}\u{FE0F}\u{200D}\u{1F525}",
        ] {
            assert_eq!(check_line("name", ok), Ok(()), "{ok:?}");
        }
        // At an end, next to another hidden character, or any other hidden character: refused.
        for bad in [
            "\u{200D}Ada",
            "Ada\u{200C}",
            "A\u{200D}\u{200D}da",
            "A\u{200B}da",
            "A\u{202E}da",
            "Ada \u{200D}\u{1F4BB}",
        ] {
            assert!(check_line("name", bad).is_err(), "{bad:?}");
        }
        // An email takes none of them.
        assert!(!is_email("a\u{200C}b@example.com"));
    }

    #[test]
    fn a_joiner_between_two_ascii_characters_is_refused() {
        for bad in ["Ad\u{200D}a", "Ada\u{200C}Lovelace", "Ada\u{200D}1"] {
            assert!(check_line("name", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_variation_selector_only_follows_a_visible_non_ascii_character() {
        for ok in ["Ada \u{2764}\u{FE0F}", "\u{845B}\u{E0100}", "Zoë\u{FE0E}"] {
            assert_eq!(check_line("name", ok), Ok(()), "{ok:?}");
        }
        for bad in [
            "Ada\u{FE0F}",
            "A\u{E0100}da",
            "\u{FE0F}Ada",
            "Ada \u{FE0F}",
            "\u{2764}\u{FE0F}\u{FE0F}",
            "\u{2764}\u{200B}\u{FE0F}",
        ] {
            assert!(check_line("name", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn every_default_ignorable_or_blank_character_is_hidden_in_a_name_and_an_email() {
        // The reviewer's cases, then the first and last of each range this rule added.
        for email in [
            "ada\u{17B4}@example.com",
            "ada\u{FE0F}@example.com",
            "ada\u{E0100}@example.com",
            "a\u{FFF0}b@example.com",
            "a\u{2800}b@example.com",
            "\u{2764}\u{FE0F}@example.com",
        ] {
            assert!(!is_email(email), "{email:?}");
        }
        for name in ["Ada\u{17B4}", "Ada\u{2800}", "Ada\u{FFF0}x", "A\u{E0100}da"] {
            assert!(check_line("name", name).is_err(), "{name:?}");
        }
        for code in [
            0x17B4, 0x17B5, 0x2800, 0xFE00, 0xFE0F, 0xFFF0, 0xFFF8, 0x1D159, 0xE0000, 0xE0002,
            0xE00FF, 0xE0100, 0xE01EF, 0xE01F0, 0xE0FFF,
        ] {
            let c = char::from_u32(code).unwrap();
            assert!(is_hidden(c), "U+{code:04X}");
            assert!(
                check_line("name", &format!("Ada{c}x")).is_err(),
                "U+{code:04X}"
            );
        }
    }

    #[test]
    fn every_format_character_is_hidden() {
        // The first and last character of each range of general category Cf (Unicode 15).
        let cf = [
            (0x00AD, 0x00AD),
            (0x0600, 0x0605),
            (0x061C, 0x061C),
            (0x06DD, 0x06DD),
            (0x070F, 0x070F),
            (0x0890, 0x0891),
            (0x08E2, 0x08E2),
            (0x180E, 0x180E),
            (0x200B, 0x200F),
            (0x202A, 0x202E),
            (0x2060, 0x2064),
            (0x2066, 0x206F),
            (0xFEFF, 0xFEFF),
            (0xFFF9, 0xFFFB),
            (0x110BD, 0x110BD),
            (0x110CD, 0x110CD),
            (0x13430, 0x1343F),
            (0x1BCA0, 0x1BCA3),
            (0x1D173, 0x1D17A),
            (0xE0001, 0xE0001),
            (0xE0020, 0xE007F),
        ];
        for (first, last) in cf {
            for code in [first, last] {
                let c = char::from_u32(code).unwrap();
                assert!(is_hidden(c), "U+{code:04X}");
            }
        }
        for visible in [
            'a',
            ' ',
            'é',
            '李',
            '\u{2764}',
            '\u{00A0}',
            '-',
            '\u{E1000}',
        ] {
            assert!(!is_hidden(visible), "{visible:?}");
        }
    }

    #[test]
    fn a_reset_request_needs_an_email_address() {
        for bad in ["", "  ", "ada", "ada@example.com\u{0}"] {
            let mut request = ResetRequest { email: bad.into() };
            let err = validate_reset_request(&mut request).unwrap_err();
            assert_eq!(
                (err.status(), err.code()),
                (400, "invalid_email"),
                "{bad:?}"
            );
        }
        let mut request = ResetRequest {
            email: " Ada@Example.com ".into(),
        };
        validate_reset_request(&mut request).unwrap();
        assert_eq!(request.email, "ada@example.com");
    }

    #[test]
    fn a_phone_number_needs_six_to_fifteen_digits() {
        let mut c = contact("Ada", "ada@example.com");
        c.phone = Some("12".into());
        assert!(validate_new_contact(&c).is_err());
        c.phone = Some("+44 20 7946 0958".into());
        assert!(validate_new_contact(&c).is_ok());
    }

    fn registration(email: &str, password: &str, name: &str) -> NewUser {
        let mut fields = serde_json::Map::new();
        fields.insert("name".into(), name.into());
        NewUser {
            email: email.into(),
            password: Secret::new(password),
            fields,
        }
    }

    #[test]
    fn a_registration_needs_an_email_a_name_and_a_long_enough_password() {
        let mut user = registration(" Ada@Example.COM ", "long enough", " Ada ");
        validate_registration(&mut user).unwrap();
        assert_eq!(user.email, "ada@example.com");
        assert_eq!(user.fields["name"], "Ada");
        user.password = Secret::new("short");
        assert_eq!(
            validate_registration(&mut user).unwrap_err().code(),
            "weak_password"
        );
        let mut nameless = registration("ada@example.com", "long enough", "  ");
        assert_eq!(
            validate_registration(&mut nameless).unwrap_err().code(),
            "rejected"
        );
    }

    #[tokio::test]
    async fn a_rejected_registration_never_reaches_the_default() {
        let chain = Chain::<ops::users::Register>::only(&["validate_registration"]);
        let weak = registration("ada@example.com", "short", "Ada");
        let result = chain
            .run(&mut Context::client(), weak, |_| async {
                panic!("the default must not run")
            })
            .await;
        assert_eq!(result.unwrap_err().code(), "weak_password");
        let ok = registration(" ADA@example.com", "long enough", "Ada");
        let user = chain
            .run(&mut Context::client(), ok, |u| async move {
                Ok(User {
                    email: Some(u.email),
                    ..User::new("1")
                })
            })
            .await;
        assert_eq!(user.unwrap().email.as_deref(), Some("ada@example.com"));
    }

    #[test]
    fn a_new_password_from_a_reset_is_as_long_as_a_registrations() {
        let chain = Chain::<ResetPassword>::only(&["validate_new_password"]);
        let short = NewPassword {
            token: Secret::new("t"),
            password: Secret::new("short"),
        };
        let err = chain
            .run_sync(&mut Context::client(), short, |_| Ok(()))
            .unwrap_err();
        assert_eq!((err.status(), err.code()), (400, "weak_password"));
        assert_eq!(
            chain.ran_lines(),
            ["contacts::handlers::validation::validate_new_password rejected"]
        );
    }

    #[tokio::test]
    async fn a_note_about_a_missing_contact_is_rejected() {
        let app = testing::app(Config::for_tests()).await;
        // The check reads in the call's unit of work: keep it open.
        let (ctx, _work) = testing::ctx(&app, Some("1"));
        let note = Note {
            contact_id: 42,
            body: "hello".into(),
            ..Note::default()
        };
        let err = validate_new_note(&note, &ctx).await.unwrap_err();
        assert!(err.message().contains("contact 42"), "{err}");
        let empty = Note::default();
        assert_eq!(
            validate_new_note(&empty, &ctx).await.unwrap_err().status(),
            400
        );
    }

    #[tokio::test]
    async fn a_bulk_call_may_select_at_most_bulk_max_of_the_callers_records() {
        let app = testing::app(Config {
            bulk_max: 2,
            ..Config::for_tests()
        })
        .await;
        let (ctx, _work) = testing::ctx(&app, Some("1"));
        {
            let mut tx = work(&ctx).unwrap().tx().await.unwrap();
            for owner in ["1", "1", "1", "2", "2"] {
                let c = Contact {
                    owner: Some(owner.into()),
                    ..contact("Ann", "ann@x.io")
                };
                db::insert(tx.conn().unwrap(), c).await.unwrap();
            }
        }
        let mine = Query::<Contact>::all().filter("owner", Op::Eq, "1");
        let err = cap_bulk_contact_delete(&mine, &ctx).await.unwrap_err();
        assert_eq!((err.status(), err.code()), (413, "too_many_records"));
        assert!(err.message().contains("selects 3"), "{err}");
        let changes = BulkChanges::from_json(mine.clone(), serde_json::json!({ "vip": true }));
        let err = cap_bulk_contact_update(&changes.unwrap(), &ctx)
            .await
            .unwrap_err();
        assert_eq!(err.status(), 413);
        let two = mine.filter("id", Op::Lt, 3);
        assert!(cap_bulk_contact_delete(&two, &ctx).await.is_ok());
        let theirs = Query::<Contact>::all().filter("owner", Op::Eq, "2");
        assert!(cap_bulk_contact_delete(&theirs, &ctx).await.is_ok());
    }

    #[test]
    fn each_contact_of_a_bulk_create_is_checked_and_the_first_bad_one_named_by_its_index() {
        let good = contact("Ada", "ada@example.com");
        assert!(validate_new_contacts(&[good.clone(), good.clone()]).is_ok());
        let batch = [good.clone(), contact("Bob", "bob"), contact("", "x@y.io")];
        let err = validate_new_contacts(&batch).unwrap_err();
        assert_eq!(
            (err.status(), err.code(), err.message()),
            (
                400,
                "invalid_email",
                "records[1]: `bob` is not an email address"
            )
        );
    }

    #[tokio::test]
    async fn each_record_a_bulk_update_selects_is_checked_as_the_update_would_leave_it() {
        let app = testing::app(Config::for_tests()).await;
        let (ctx, _work) = testing::ctx(&app, Some("1"));
        {
            let mut tx = work(&ctx).unwrap().tx().await.unwrap();
            for name in ["Ann", "Bea"] {
                let c = contact(name, &format!("{}@x.io", name.to_lowercase()));
                db::insert(tx.conn().unwrap(), c).await.unwrap();
            }
            let note = Note {
                contact_id: 1,
                body: "hi".into(),
                ..Note::default()
            };
            db::insert(tx.conn().unwrap(), note).await.unwrap();
        }
        let changes = |json| BulkChanges::<Contact>::from_json(Query::all(), json).unwrap();
        let fine = changes(serde_json::json!({ "company": "AE" }));
        assert!(validate_contact_bulk_update(&fine, &ctx).await.is_ok());
        let changed = as_changed(&fine, &ctx).await.unwrap();
        assert_eq!(changed.len(), 2);
        assert_eq!(changed[1].0, "Contact 2");
        assert_eq!(changed[1].1.company.as_deref(), Some("AE"));
        let bad = changes(serde_json::json!({ "phone": "12" }));
        let err = validate_contact_bulk_update(&bad, &ctx).await.unwrap_err();
        assert!(err.message().starts_with("Contact 1: `12`"), "{err}");
        let bad = changes(serde_json::json!({ "name": "  " }));
        assert_eq!(
            validate_contact_bulk_update(&bad, &ctx)
                .await
                .unwrap_err()
                .message(),
            "Contact 1: a contact needs a name"
        );
        // A note's contact must exist, in the call's transaction (the only connection of an
        // in-memory database, which the selection already holds).
        let moved =
            BulkChanges::<Note>::from_json(Query::all(), serde_json::json!({ "contact_id": 9 }))
                .unwrap();
        let err = validate_note_bulk_update(&moved, &ctx).await.unwrap_err();
        assert_eq!(err.message(), "Note 1: contact 9 does not exist");
    }
}
