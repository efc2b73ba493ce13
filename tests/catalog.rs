//! The catalog: every event type with its description and subscriber count, every handler with
//! where it is and how it runs; as data, as a printed table and as JSON.

use hooks::prelude::*;

#[derive(Debug, Clone, Serialize, Deserialize, Entity)]
pub struct Contact {
    pub email: String,
}

/// Lower-case every email.
///
/// (Only the first line shows in the catalog.)
#[before_create("Contact", priority = 3, timeout = "2s", params(mode = "strict"))]
fn lower_email(contact: &mut Contact) {
    contact.email = contact.email.to_lowercase();
}

#[after_create("Contact", background, client_only)]
async fn announce(_contact: &Contact) {}

/// The line of the attribute below: a handler's site records where its attribute is.
const ESCAPED_LINE: u32 = line!() + 1;
#[before_update("Contact", priority = -7, params(note = "a \"quoted\" \\ value", path = "C:\\tmp\n"))]
/// Say "hi" \ to Émile — ✓ {braces} 'quotes' \u{41}
///
/// Only the first line shows.
fn escaped(_contact: &mut Contact) {}

/// A shipment left the warehouse.
#[derive(Debug, Clone, Serialize, Event)]
#[event(name = "shipment.sent")]
pub struct ShipmentSent {
    pub id: u64,
}

#[on_event]
fn track(_e: &ShipmentSent) {}

#[after_login]
fn audit_login(_s: &mut Session) {}

fn catalog() -> hooks::Catalog {
    Hooks::new().unwrap().catalog()
}

/// The catalog's entry of the handler with this id.
fn handler<'a>(catalog: &'a hooks::Catalog, id: &str) -> &'a hooks::HandlerEntry {
    catalog
        .handlers
        .iter()
        .find(|h| h.id == id)
        .unwrap_or_else(|| panic!("{id} listed"))
}

#[test]
fn the_catalog_lists_every_event_type_with_its_description_and_subscriber_count() {
    let catalog = catalog();
    let event = |name: &str| {
        catalog
            .events
            .iter()
            .find(|e| e.name == name)
            .unwrap_or_else(|| panic!("{name} listed"))
    };
    assert_eq!(event("data.create").subscribers, 2);
    assert_eq!(event("data.create").description, "Create a record.");
    assert_eq!(
        event("data.delete").subscribers,
        0,
        "declared events without handlers are listed too"
    );
    assert_eq!(event("users.login").subscribers, 1);
    assert_eq!(event("users.register").input, "NewUser");
    assert_eq!(
        event("messaging.publish").description,
        "Publish a message to a channel."
    );
    assert_eq!(event("files.upload").subscribers, 0);
    assert_eq!(
        event("shipment.sent").description,
        "A shipment left the warehouse."
    );
    assert_eq!(event("shipment.sent").subscribers, 1);
}

#[test]
fn the_catalog_lists_every_handler_with_its_settings_and_source() {
    let catalog = catalog();
    let lower = handler(&catalog, "catalog::lower_email");
    assert_eq!(
        (lower.event.as_str(), lower.asset.as_str(), lower.phase),
        ("data.create", "Contact", hooks::Phase::Before)
    );
    assert_eq!((lower.priority, lower.timeout_ms), (3, Some(2000)));
    assert_eq!(lower.params.get("mode").map(String::as_str), Some("strict"));
    assert_eq!(
        (lower.file.as_str(), lower.doc.as_str()),
        ("tests/catalog.rs", "Lower-case every email.")
    );
    assert!(lower.line > 0);
    let announce = handler(&catalog, "catalog::announce");
    assert_eq!(
        (announce.mode, announce.kind, announce.client_only),
        (hooks::Mode::Background, hooks::Kind::Async, true)
    );
}

#[test]
fn a_handlers_doc_line_and_params_reach_the_catalog_as_written_whatever_they_escape() {
    let catalog = catalog();
    let escaped = handler(&catalog, "catalog::escaped");
    assert_eq!(
        escaped.doc,
        "Say \"hi\" \\ to Émile — ✓ {braces} 'quotes' \\u{41}"
    );
    assert_eq!(
        escaped.params.get("note").map(String::as_str),
        Some("a \"quoted\" \\ value")
    );
    assert_eq!(
        escaped.params.get("path").map(String::as_str),
        Some("C:\\tmp\n")
    );
    assert_eq!(
        (escaped.priority, escaped.line, escaped.file.as_str()),
        (-7, ESCAPED_LINE, "tests/catalog.rs")
    );
    assert_eq!(
        (escaped.event.as_str(), escaped.asset.as_str()),
        ("data.update", "Contact")
    );
}

#[test]
fn the_catalog_prints_as_a_table_and_serializes_as_json() {
    let catalog = catalog();
    let table = catalog.to_string();
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("data.create") && l.contains(" 2  Create a record.")),
        "{table}"
    );
    // A handler's row has its settings and its history, and the line under it what does not
    // fit a column: the first line of its doc, whether it runs on client calls only, its params.
    let lines: Vec<&str> = table.lines().collect();
    let row = |id: &str| {
        lines
            .iter()
            .position(|l| l.starts_with(id))
            .unwrap_or_else(|| panic!("{id} has a row: {table}"))
    };
    let columns = |i: usize| lines[i].split_whitespace().collect::<Vec<_>>();
    assert!(
        lines
            .iter()
            .any(|l| l.split_whitespace().collect::<Vec<_>>()
                == [
                    "handler", "event", "phase", "prio", "mode", "timeout", "on", "calls",
                    "reject", "errors", "panics", "timeouts", "time", "source"
                ]),
        "{table}"
    );
    let lower = row("catalog::lower_email");
    assert_eq!(
        columns(lower)[..13],
        [
            "catalog::lower_email",
            "data.create:Contact",
            "before",
            "3",
            "sync",
            "2s",
            "on",
            "0",
            "0",
            "0",
            "0",
            "0",
            "-"
        ],
        "{table}"
    );
    assert!(
        columns(lower)[13].starts_with("tests/catalog.rs:"),
        "{table}"
    );
    assert_eq!(
        lines[lower + 1],
        "    Lower-case every email.; params: mode=\"strict\"",
        "{table}"
    );
    let announce = row("catalog::announce");
    assert_eq!(columns(announce)[4..6], ["background", "-"], "{table}");
    assert_eq!(lines[announce + 1], "    client calls only", "{table}");
    let json: serde_json::Value = serde_json::from_str(&catalog.to_json()).unwrap();
    let handler = json["handlers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["id"] == "catalog::announce")
        .unwrap();
    assert_eq!(handler["mode"], "background");
    assert_eq!(handler["phase"], "after");
    assert_eq!(handler["stats"]["calls"], 0);
    assert!(
        json["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["name"] == "users.logout")
    );
}
