//! A tour beyond data: user handlers, a custom event, a wildcard handler over every table, a
//! dynamic table, a bulk update, and the catalog an operator sees.
//!
//! Run it with `cargo run --example tour`.

use std::time::Duration;

use hooks::prelude::*;
use serde_json::json;

#[derive(Debug, Clone, Serialize, Deserialize, Entity)]
pub struct Contact {
    pub name: String,
    pub updated_by: Option<String>,
}

/// Refuse weak passwords and banned domains at registration.
#[before_register]
fn check_registration(user: &NewUser) -> Result<(), HookError> {
    if user.password.len() < 10 {
        return Err(HookError::rejected(
            "the password needs at least 10 characters",
        ));
    }
    if user.email.ends_with("@mailinator.com") {
        return Err(HookError::forbidden(
            "disposable email domains are not accepted",
        ));
    }
    Ok(())
}

/// A bulk update may rename contacts, but the service alone says who wrote them.
#[before_bulk_update("Contact")]
fn guard_bulk_update(changes: &BulkChanges<Contact>) -> Result<(), HookError> {
    if changes.get("updated_by").is_some() {
        return Err(HookError::forbidden("`updated_by` is set by the service"));
    }
    Ok(())
}

/// Log every login; the session's token prints as `***`.
#[after_login]
fn log_login(session: &mut Session) {
    println!(
        "  [after_login] {} logged in with token {}",
        session.user.id, session.token
    );
}

/// Stamp who wrote a record, on every table that has the field.
#[before_create("*")]
fn stamp_writer(record: &mut dyn Record, ctx: &Context) -> Result<(), HookError> {
    if record.has_field("updated_by") {
        record.set("updated_by", json!(ctx.user().map(|u| u.id.clone())))?;
    }
    Ok(())
}

/// An invoice was paid.
#[derive(Debug, Clone, Serialize, Event)]
#[event(name = "invoice.paid")]
pub struct InvoicePaid {
    pub invoice: String,
    pub cents: i64,
}

/// Book the payment.
#[on_event]
fn book_payment(event: &InvoicePaid) {
    println!(
        "  [on_event] booked {} for {} cents",
        event.invoice, event.cents
    );
}

/// Send a receipt, in the background: the emitter does not wait.
#[on_event(background)]
async fn send_receipt(event: &InvoicePaid) {
    tokio::time::sleep(Duration::from_millis(20)).await;
    println!(
        "  [on_event, background] receipt sent for {}",
        event.invoice
    );
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let hooks = Hooks::new()?;
    let mut ctx = Context::client().with_user(User::new("ada"));

    println!("users:");
    let weak = NewUser {
        email: "bob@example.com".into(),
        password: Secret::new("short"),
        fields: Default::default(),
    };
    let result = hooks
        .run::<ops::users::Register, _, _>(
            &mut ctx,
            weak,
            |u| async move { Ok(User::new(u.email)) },
        )
        .await;
    println!(
        "  register with a weak password: {}",
        result.map(|u| u.id).unwrap_or_else(|e| e.to_string())
    );
    let creds = Credentials {
        login: "ada@example.com".into(),
        password: Secret::new("correct horse battery"),
    };
    hooks
        .run::<ops::users::Login, _, _>(&mut ctx, creds, |c| async move {
            Ok(Session {
                user: User::new(c.login),
                token: Secret::new("t-4f9a"),
            })
        })
        .await?;

    println!("wildcard, typed table and dynamic table:");
    let contact = hooks
        .create(
            &mut ctx,
            Contact {
                name: "Grace".into(),
                updated_by: None,
            },
            |c| async move { Ok(c) },
        )
        .await?;
    println!("  Contact: {contact:?}");
    let note = hooks.record("notes", json!({"text": "call Grace", "updated_by": null}))?;
    let note = hooks
        .create(&mut ctx, note, |n| async move { Ok(n) })
        .await?;
    println!("  notes:   {}", note.into_json());

    println!("bulk update:");
    // The changes are checked against the fields a client may write: a typo is a 400.
    let typo = BulkChanges::<Contact>::from_json(Query::all(), json!({"nmae": "Grace H."}));
    if let Err(e) = typo {
        println!("  a typo: {e}");
    }
    for changes in [
        json!({"name": "Grace H."}),
        json!({"updated_by": "mallory"}),
    ] {
        let changes = BulkChanges::<Contact>::from_json(Query::all(), changes)?;
        let result = hooks
            .bulk_update(&mut ctx, changes, |c| async move {
                // The service's own logic: `UPDATE contacts SET ...` from `c.changes()`.
                println!("  [default] would set {:?}", c.changes());
                Ok(Affected::new(3))
            })
            .await;
        match result {
            Ok(updated) => println!("  updated {} contacts", updated.count),
            Err(e) => println!("  refused: {e}"),
        }
    }

    println!("custom event:");
    hooks
        .emit(
            &mut ctx,
            InvoicePaid {
                invoice: "INV-7".into(),
                cents: 4200,
            },
        )
        .await?;
    println!("  emit returned");
    let queue = hooks.shutdown(Duration::from_secs(5))?;
    println!(
        "  background queue drained: {} of {} finished",
        queue.finished, queue.queued
    );

    println!("\ncatalog:\n{}", hooks.catalog());
    Ok(())
}
