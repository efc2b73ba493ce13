//! Wildcard handlers (`"*"`) see every table through the dynamic field view; dynamic records
//! (tables with no Rust type) go through the same operations.

use std::sync::Mutex;

use hooks::prelude::*;
use hooks::testing::Chain;
use serde_json::json;

fn hooks() -> Hooks {
    Hooks::new().expect("the handlers of this test binary form a valid table")
}

pub static ORDER: Mutex<Vec<String>> = Mutex::new(Vec::new());

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Entity)]
pub struct Contact {
    pub name: String,
    pub owner: Option<String>,
    pub stamped: bool,
    #[entity(skip)]
    #[serde(skip)]
    pub cache: Option<std::sync::Arc<Vec<u8>>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Entity)]
#[entity(table = "tasks")]
pub struct Task {
    pub title: String,
    pub owner: Option<String>,
    pub stamped: bool,
}

/// A table without an `owner` field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Entity)]
pub struct Setting {
    pub key: String,
    pub stamped: bool,
}

/// Stamp every record of every table, whatever its type.
#[before_create("*", priority = -1)]
fn stamp(record: &mut dyn Record) -> Result<(), HookError> {
    ORDER
        .lock()
        .unwrap()
        .push(format!("stamp {}", record.table()));
    record.set("stamped", json!(true))
}

/// Set the owner on every table; fails on a table that has no `owner` field.
#[before_create("*", priority = 1)]
async fn own(record: &mut dyn Record, ctx: &Context) -> Result<(), HookError> {
    ORDER
        .lock()
        .unwrap()
        .push(format!("own {}", record.table()));
    if record.table() == "Setting" || record.table() == "kv" {
        // Settings are shared: leave them alone, except to show the error on purpose.
        if ctx.param("strict").is_none() && ctx.request_id() != Some("strict") {
            return Ok(());
        }
    }
    let owner = ctx.user().map(|u| u.id.clone());
    record.set("owner", json!(owner))
}

#[before_create("Contact")]
fn contact_only(contact: &mut Contact) {
    ORDER
        .lock()
        .unwrap()
        .push(format!("contact_only {}", contact.name));
}

/// Hide the owner of every record found, in any table.
#[after_find("*")]
fn hide_owner(record: &mut dyn Record) -> Result<(), HookError> {
    if record.has_field("owner") {
        record.set("owner", serde_json::Value::Null)?;
    }
    Ok(())
}

#[before_create("notes")]
fn notes_need_text(note: &mut DynRecord) -> Result<(), HookError> {
    match note.fields().get("text") {
        Some(serde_json::Value::String(t)) if !t.is_empty() => Ok(()),
        _ => Err(HookError::rejected("a note needs a text")),
    }
}

#[before_update("notes")]
fn notes_keep_their_text(changes: &mut Changes<DynRecord>) -> Result<(), HookError> {
    match changes.record.fields().get("text") {
        Some(serde_json::Value::String(t)) if !t.is_empty() => Ok(()),
        _ => Err(HookError::rejected("a note keeps its text")),
    }
}

#[tokio::test]
async fn wildcard_and_specific_handlers_merge_into_one_order_across_tables() {
    let hooks = hooks();
    let mut ctx = Context::client()
        .with_user(User::new("ada"))
        .with_request_id("order");
    let contact = Contact {
        name: "Bob".into(),
        owner: None,
        stamped: false,
        cache: None,
    };
    let c = hooks
        .create(&mut ctx, contact, |c| async move { Ok(c) })
        .await
        .unwrap();
    assert_eq!((c.owner.as_deref(), c.stamped), (Some("ada"), true));
    let t = hooks
        .create(
            &mut ctx,
            Task {
                title: "write".into(),
                owner: None,
                stamped: false,
            },
            |t| async move { Ok(t) },
        )
        .await
        .unwrap();
    assert_eq!((t.owner.as_deref(), t.stamped), (Some("ada"), true));
    let order = std::mem::take(&mut *ORDER.lock().unwrap());
    let mine: Vec<_> = order
        .iter()
        .filter(|l| l.contains("Contact") || l.contains("Bob") || l.contains("tasks"))
        .collect();
    assert_eq!(
        mine,
        [
            "stamp Contact",
            "contact_only Bob",
            "own Contact",
            "stamp tasks",
            "own tasks"
        ]
    );
}

#[tokio::test]
async fn a_wildcard_handler_setting_a_field_the_table_lacks_gets_a_clear_error() {
    let hooks = hooks();
    let mut ctx = Context::client()
        .with_user(User::new("ada"))
        .with_request_id("strict");
    let err = hooks
        .create(
            &mut ctx,
            Setting {
                key: "theme".into(),
                stamped: false,
            },
            |s| async move { Ok(s) },
        )
        .await
        .unwrap_err();
    assert_eq!((err.status(), err.code()), (400, "unknown_field"));
    assert_eq!(err.message(), "Setting has no field `owner`");
}

#[tokio::test]
async fn wildcard_after_handlers_see_each_record_a_find_returns() {
    let hooks = hooks();
    let found = hooks
        .find(
            &mut Context::client(),
            Query::all(),
            |_: Query<Task>| async {
                Ok(vec![
                    Task {
                        title: "a".into(),
                        owner: Some("ada".into()),
                        stamped: true,
                    },
                    Task {
                        title: "b".into(),
                        owner: Some("bob".into()),
                        stamped: true,
                    },
                ])
            },
        )
        .await
        .unwrap();
    assert!(found.iter().all(|t| t.owner.is_none()), "{found:?}");
}

#[test]
fn the_derived_dynamic_view_reads_and_writes_fields_as_json() {
    let mut c = Contact {
        name: "Ada".into(),
        owner: None,
        stamped: false,
        cache: None,
    };
    assert_eq!(
        c.field_names(),
        ["name", "owner", "stamped"],
        "skipped fields are not in the view"
    );
    assert_eq!(c.get("name").unwrap(), json!("Ada"));
    c.set("name", json!("Grace")).unwrap();
    assert_eq!(c.name, "Grace");
    let wrong = c.set("stamped", json!("yes")).unwrap_err();
    assert_eq!((wrong.status(), wrong.code()), (400, "invalid_field"));
    assert!(
        wrong.message().starts_with("field `stamped` of Contact"),
        "{wrong}"
    );
    assert_eq!(c.get("cache").unwrap_err().code(), "unknown_field");
    assert_eq!(
        c.to_json().unwrap(),
        json!({"name": "Grace", "owner": null, "stamped": false})
    );
}

#[tokio::test]
async fn dynamic_records_go_through_the_same_operations_and_handlers() {
    let hooks = hooks();
    let mut ctx = Context::client()
        .with_user(User::new("ada"))
        .with_request_id("dyn");
    let note = hooks.record("notes", json!({"text": "hello"})).unwrap();
    let saved = hooks
        .create(&mut ctx, note, |n| async move { Ok(n) })
        .await
        .unwrap();
    // The "notes" handler and both wildcard handlers ran.
    assert_eq!(
        saved.clone().into_json(),
        json!({"text": "hello", "stamped": true, "owner": "ada"})
    );
    let empty = hooks.record("notes", json!({"text": ""})).unwrap();
    let err = hooks
        .create(&mut ctx, empty, |n| async move { Ok(n) })
        .await
        .unwrap_err();
    assert_eq!(err.message(), "a note needs a text");
    // Other operations name the table.
    let found = hooks
        .run_on::<ops::data::Find<DynRecord>, _, _>(
            &mut ctx,
            "notes",
            Query::all(),
            |_| async move { Ok(vec![saved]) },
        )
        .await
        .unwrap();
    assert_eq!(
        found[0].fields().get("owner"),
        Some(&serde_json::Value::Null)
    );
}

#[tokio::test]
async fn run_and_run_sync_route_a_dynamic_record_by_the_table_it_names() {
    let hooks = hooks();
    let mut ctx = Context::client().with_user(User::new("ada"));
    let empty = || hooks.record("notes", json!({"text": ""})).unwrap();
    // The generic entry points, as `create` and `update`: the "notes" handlers run.
    let err = hooks
        .run::<ops::data::Create<DynRecord>, _, _>(&mut ctx, empty(), |n| async move { Ok(n) })
        .await
        .unwrap_err();
    assert_eq!(err.message(), "a note needs a text");
    let err = hooks
        .run::<ops::data::Update<DynRecord>, _, _>(
            &mut ctx,
            Changes::new(1, empty()),
            |c| async move { Ok(c.record) },
        )
        .await
        .unwrap_err();
    assert_eq!(err.message(), "a note keeps its text");
    // A record of another table does not meet them.
    let kv = hooks.record("kv", json!({"text": ""})).unwrap();
    let saved = hooks
        .run::<ops::data::Update<DynRecord>, _, _>(&mut ctx, Changes::new(1, kv), |c| async move {
            Ok(c.record)
        })
        .await
        .unwrap();
    assert_eq!(saved.table(), "kv");
    // On a sync call, through the testing kit's chain of the handler alone.
    let chain = Chain::<ops::data::Create<DynRecord>>::only(&["notes_need_text"]);
    let err = chain.run_sync(&mut ctx, empty(), Ok).unwrap_err();
    assert_eq!(err.message(), "a note needs a text");
    assert_eq!(chain.ran_lines(), ["wildcards::notes_need_text rejected"]);
    let chain = Chain::<ops::data::Update<DynRecord>>::only(&["notes_keep_their_text"]);
    let err = chain
        .run_sync(&mut ctx, Changes::new(1, empty()), |c| Ok(c.record))
        .unwrap_err();
    assert_eq!(err.message(), "a note keeps its text");
}

#[tokio::test]
async fn a_dynamic_record_of_a_typed_table_is_a_bad_request() {
    let hooks = hooks();
    let mut ctx = Context::client();
    let record = hooks
        .record(
            "Contact",
            json!({"name": "Bob", "owner": null, "stamped": false}),
        )
        .unwrap();
    let err = hooks
        .create(&mut ctx, record, |r| async move { Ok(r) })
        .await
        .unwrap_err();
    assert_eq!(
        (err.status(), err.code(), err.message()),
        (
            400,
            "typed_table",
            "the table `Contact` has a type of its own (`Contact`): its records are created and \
             changed as that type, not as dynamic records"
        )
    );
}

#[tokio::test]
async fn a_chain_names_the_dynamic_table_of_a_find() {
    let hooks = hooks();
    let mut ctx = Context::client();
    let note = hooks
        .record("notes", json!({"text": "hi", "owner": "ada"}))
        .unwrap();
    let chain = Chain::<ops::data::Find<DynRecord>>::only(&["hide_owner"]);
    let found = chain
        .run_sync_on(&mut ctx, "notes", Query::all(), |_| Ok(vec![note.clone()]))
        .unwrap();
    assert_eq!(
        found[0].fields().get("owner"),
        Some(&serde_json::Value::Null)
    );
    assert_eq!(chain.ran_lines(), ["wildcards::hide_owner done"]);
    let found = chain
        .run_on(&mut ctx, "notes", Query::all(), |_| async move {
            Ok(vec![note])
        })
        .await
        .unwrap();
    assert_eq!(
        found[0].fields().get("owner"),
        Some(&serde_json::Value::Null)
    );
}

#[test]
fn a_dynamic_record_must_be_a_json_object_within_the_payload_limit() {
    let hooks = Hooks::builder().max_payload_bytes(32).build().unwrap();
    let err = hooks.record("notes", json!([1, 2])).unwrap_err();
    assert_eq!(
        (err.status(), err.message()),
        (400, "a record of notes must be a JSON object, not an array")
    );
    let err = hooks
        .record("notes", json!({"text": "x".repeat(64)}))
        .unwrap_err();
    assert_eq!(err.status(), 413);
    assert_eq!(hooks.record("*", json!({})).unwrap_err().status(), 400);
    assert!(hooks.record("notes", json!({"text": "ok"})).is_ok());
}

#[test]
fn a_dynamic_table_is_named_by_a_plain_name() {
    let hooks = hooks();
    for bad in [
        "",
        "*",
        "a b",
        "a\nb",
        " notes",
        "notes\t",
        "\u{7}",
        &"x".repeat(129),
    ] {
        let err = hooks.record(bad, json!({})).unwrap_err();
        assert_eq!((err.status(), err.code()), (400, "bad_request"), "{bad:?}");
        assert!(err.message().len() < 200, "the name is cut short: {err}");
    }
    for good in [
        "notes",
        "user_notes",
        "notes-2026",
        "données",
        &"x".repeat(128),
    ] {
        assert!(hooks.record(good, json!({})).is_ok(), "{good:?}");
    }
}
