//! The quickstart: three handlers around the creation of a `Contact`.
//!
//! - `normalise_email` (before) changes the input;
//! - `require_email` (before) rejects a contact without an email;
//! - `redact_email` (after) changes the output the caller sees.
//!
//! Run it with `cargo run --example quickstart`.

use std::sync::Mutex;

use hooks::prelude::*;

#[derive(Debug, Clone, Serialize, Deserialize, Entity)]
pub struct Contact {
    pub id: Option<i64>,
    pub name: String,
    pub email: String,
}

/// Reject a contact without an email (runs first: priority -10).
#[before_create("Contact", priority = -10)]
fn require_email(contact: &Contact) -> Result<(), HookError> {
    if contact.email.trim().is_empty() {
        return Err(HookError::rejected(format!(
            "{}: an email is required",
            contact.name
        )));
    }
    Ok(())
}

/// Store emails in lower case, without surrounding spaces.
#[before_create("Contact")]
fn normalise_email(contact: &mut Contact) {
    contact.email = contact.email.trim().to_lowercase();
}

/// Clients see only the email's domain.
#[after_create("Contact")]
fn redact_email(contact: &mut Contact, ctx: &Context) {
    if ctx.is_client()
        && let Some((_, domain)) = contact.email.split_once('@')
    {
        contact.email = format!("***@{domain}");
    }
}

/// A stand-in for the service's database.
static TABLE: Mutex<Vec<Contact>> = Mutex::new(Vec::new());

async fn store(mut contact: Contact) -> Result<Contact, HookError> {
    let mut table = TABLE
        .lock()
        .map_err(|_| HookError::internal("the table lock is poisoned"))?;
    contact.id = Some(table.len() as i64 + 1);
    table.push(contact.clone());
    Ok(contact)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let hooks = Hooks::new()?;
    println!("handlers of data.create on Contact, in run order:");
    for reg in hooks.table().handlers("data.create", "Contact") {
        println!(
            "  {:<6} {:>4}  {}  ({}:{})",
            reg.phase().as_str(),
            reg.priority(),
            reg.id(),
            reg.file(),
            reg.line()
        );
    }

    let mut ctx = Context::client();
    for (name, email) in [("Ada", "  ADA@Example.COM "), ("Bob", "")] {
        let contact = Contact {
            id: None,
            name: name.into(),
            email: email.into(),
        };
        match hooks.create(&mut ctx, contact, store).await {
            Ok(saved) => println!("created  {saved:?}"),
            Err(e) => println!(
                "rejected {name}: {} {} \"{}\"",
                e.status(),
                e.code(),
                e.message()
            ),
        }
    }
    let stored = TABLE.lock().map_err(|_| "the table lock is poisoned")?;
    println!("stored   {:?}", *stored);
    Ok(())
}
