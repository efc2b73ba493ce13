//! The bulk data operations (`data.bulk_create`, `data.bulk_update`, `data.bulk_delete`) through
//! their attributes, as a service writes them: before handlers change, answer or reject a bulk
//! call, after handlers change its result and see its error, wildcard handlers see every record
//! of a bulk create, and a dynamic table's bulk calls name their table with `run_on`.
//!
//! Each test works on a table of its own, so that the handlers of one do not run in another.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use hooks::Condition;
use hooks::ops::data::{BulkCreate, BulkDelete, BulkUpdate};
use hooks::prelude::*;
use hooks::testing::Chain;
use serde_json::json;

fn hooks() -> Hooks {
    Hooks::new().expect("the handlers of this test binary form a valid table")
}

// ---- bulk create -------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Entity)]
pub struct Item {
    pub id: Option<i64>,
    pub name: String,
    pub owner: Option<String>,
    pub stamped: bool,
}

fn item(name: &str) -> Item {
    Item {
        id: None,
        name: name.into(),
        owner: None,
        stamped: false,
    }
}

/// At most three items a call (a slice of the new records is enough to read them).
#[before_bulk_create("Item", priority = -10)]
fn at_most_three(items: &[Item]) -> Result<(), HookError> {
    if items.len() > 3 {
        return Err(HookError::new(
            413,
            "too_many_records",
            format!("at most 3 items a call, not {}", items.len()),
        ));
    }
    Ok(())
}

/// Trim every name, and own every item.
#[before_bulk_create("Item")]
fn trim_and_own(items: &mut Vec<Item>, ctx: &Context) {
    for item in items {
        item.name = item.name.trim().to_owned();
        item.owner = ctx.user().map(|u| u.id.clone());
    }
}

/// Stamp every record of a bulk create, in any table.
#[before_bulk_create("*", priority = 5)]
fn stamp_each(record: &mut dyn Record) -> Result<(), HookError> {
    record.set("stamped", json!(true))
}

static SEEN_AFTER: AtomicUsize = AtomicUsize::new(0);

/// Count every stored record a bulk create returns, in any table.
#[after_bulk_create("*")]
fn count_each(record: &mut dyn Record) {
    if record.table() == "Item" {
        SEEN_AFTER.fetch_add(1, Ordering::Relaxed);
    }
}

/// Clients do not see who owns what.
#[after_bulk_create("Item", priority = 10)]
fn hide_owners(items: &mut Vec<Item>, ctx: &Context) {
    if ctx.is_client() {
        for item in items {
            item.owner = None;
        }
    }
}

/// Store: number the records.
fn store(mut items: Vec<Item>) -> Result<Vec<Item>, HookError> {
    for (i, item) in items.iter_mut().enumerate() {
        item.id = Some(i as i64 + 1);
    }
    Ok(items)
}

#[tokio::test]
async fn before_bulk_create_handlers_change_every_record_and_after_handlers_the_stored_ones() {
    let hooks = hooks();
    let mut ctx = Context::client().with_user(User::new("u1"));
    let stored_owners = Mutex::new(Vec::new());
    let out = hooks
        .bulk_create(&mut ctx, vec![item(" Ada "), item("Bob  ")], |items| {
            stored_owners
                .lock()
                .unwrap()
                .extend(items.iter().map(|i| i.owner.clone()));
            async move { store(items) }
        })
        .await
        .unwrap();
    assert_eq!(
        out.iter().map(|i| i.name.as_str()).collect::<Vec<_>>(),
        ["Ada", "Bob"]
    );
    assert!(out.iter().all(|i| i.stamped), "the wildcard stamped each");
    assert!(
        out.iter().all(|i| i.owner.is_none()),
        "hidden from a client"
    );
    assert_eq!(out[1].id, Some(2));
    assert_eq!(
        *stored_owners.lock().unwrap(),
        [Some("u1".to_owned()), Some("u1".to_owned())],
        "the default stored what the before handlers made"
    );
}

#[test]
fn bulk_create_handlers_run_in_order_and_the_wildcard_sees_every_record() {
    let chain = Chain::<BulkCreate<Item>>::all();
    let ctx = &mut Context::server();
    let before = SEEN_AFTER.load(Ordering::Relaxed);
    let out = chain.run_sync(ctx, vec![item("a"), item("b"), item("c")], store);
    assert!(out.unwrap().iter().all(|i| i.stamped));
    assert_eq!(
        chain.ran_lines(),
        [
            "bulk::at_most_three continued",
            "bulk::trim_and_own continued",
            "bulk::stamp_each continued",
            "bulk::count_each done",
            "bulk::hide_owners done",
        ]
    );
    // Other tests create items too: at least these three were seen.
    assert!(SEEN_AFTER.load(Ordering::Relaxed) - before >= 3);
}

#[test]
fn a_rejected_bulk_create_stores_nothing() {
    let chain = Chain::<BulkCreate<Item>>::only(&["at_most_three", "trim_and_own"]);
    let ctx = &mut Context::client();
    let items = (0..4).map(|i| item(&i.to_string())).collect();
    let err = chain
        .run_sync(ctx, items, |_| panic!("the default must not run"))
        .unwrap_err();
    assert_eq!((err.status(), err.code()), (413, "too_many_records"));
    assert_eq!(chain.ran_lines(), ["bulk::at_most_three rejected"]);
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Entity)]
pub struct Tag {
    pub label: String,
    pub stamped: bool,
}

/// Every label unique within the call (an `async fn` may take the slice too).
#[before_bulk_create("Tag")]
async fn unique_labels(tags: &mut [Tag]) -> Result<(), HookError> {
    tags.sort_by(|a, b| a.label.cmp(&b.label));
    match tags.windows(2).find(|w| w[0].label == w[1].label) {
        Some(w) => Err(HookError::conflict(format!("`{}` twice", w[0].label))),
        None => Ok(()),
    }
}

#[tokio::test]
async fn an_async_handler_takes_the_new_records_as_a_slice() {
    let hooks = hooks();
    let tag = |l: &str| Tag {
        label: l.into(),
        stamped: false,
    };
    let out = hooks
        .bulk_create(
            &mut Context::client(),
            vec![tag("b"), tag("a")],
            |t| async { Ok(t) },
        )
        .await
        .unwrap();
    let labels: Vec<_> = out.iter().map(|t| t.label.as_str()).collect();
    assert_eq!(labels, ["a", "b"]);
    let err = hooks
        .bulk_create(
            &mut Context::client(),
            vec![tag("a"), tag("a")],
            |t| async { Ok(t) },
        )
        .await
        .unwrap_err();
    assert_eq!(err.status(), 409);
}

/// A label, whose stored records after handlers read as a slice.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Entity)]
pub struct Label {
    pub text: String,
    /// Set by `stamp_each`, the bulk creates' wildcard handler.
    pub stamped: bool,
}

thread_local! {
    /// What the labels' sync after handlers saw, on this test's thread.
    static LABELS_SEEN: std::cell::RefCell<Vec<String>> = const { std::cell::RefCell::new(Vec::new()) };
}

static LABELS_MAILED: AtomicUsize = AtomicUsize::new(0);

/// The stored labels, as a slice (what clippy's `ptr_arg` asks of a function that reads a `Vec`).
#[after_bulk_create("Label")]
fn saw_stored_labels(labels: &[Label]) {
    LABELS_SEEN.with(|s| s.borrow_mut().push(format!("created {}", labels.len())));
}

/// A slice may be changed in place, not grown.
#[after_bulk_create("Label", priority = 1)]
fn upper_case_labels(labels: &mut [Label]) {
    for label in labels {
        label.text = label.text.to_uppercase();
    }
}

/// The background handler's own copy, as a slice.
#[after_bulk_create("Label", background)]
async fn mail_labels(labels: &[Label]) {
    LABELS_MAILED.fetch_add(labels.len(), Ordering::SeqCst);
}

/// Found labels, as a slice.
#[after_find("Label")]
fn saw_found_labels(labels: &[Label], ctx: &Context) {
    let line = format!("found {} by {}", labels.len(), ctx.operation());
    LABELS_SEEN.with(|s| s.borrow_mut().push(line));
}

#[tokio::test]
async fn after_handlers_of_a_list_take_the_records_as_a_slice() {
    let hooks = hooks();
    let label = |t: &str| Label {
        text: t.into(),
        stamped: false,
    };
    let out = hooks
        .bulk_create(
            &mut Context::client(),
            vec![label("a"), label("b")],
            |l| async { Ok(l) },
        )
        .await
        .unwrap();
    let texts: Vec<_> = out.iter().map(|l| l.text.as_str()).collect();
    assert_eq!(texts, ["A", "B"]);
    let found = hooks
        .find(&mut Context::client(), Query::<Label>::all(), |_| async {
            Ok(vec![label("c")])
        })
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    // A failed create runs none of them: a slice handler runs on success only.
    let failed = hooks
        .bulk_create(&mut Context::client(), vec![label("d")], |_| async {
            Err(HookError::conflict("taken"))
        })
        .await;
    assert_eq!(failed.map_err(|e| e.status()), Err(409));
    assert_eq!(
        LABELS_SEEN.with(|s| s.borrow_mut().drain(..).collect::<Vec<_>>()),
        ["created 2", "found 1 by data.find"]
    );
    hooks
        .shutdown(std::time::Duration::from_secs(5))
        .expect("the mail job finishes");
    assert_eq!(LABELS_MAILED.load(Ordering::SeqCst), 2);
}

// ---- bulk update -------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Entity)]
pub struct Ticket {
    pub id: Option<i64>,
    pub title: String,
    pub owner: String,
    pub closed: bool,
    #[entity(skip)]
    #[serde(skip)]
    pub cache: Option<Vec<u8>>,
}

/// A client changes only its own tickets, and never their owner.
#[before_bulk_update("Ticket")]
fn own_tickets_only(changes: &mut BulkChanges<Ticket>, ctx: &Context) -> Result<(), HookError> {
    if changes.get("owner").is_some() {
        return Err(HookError::forbidden("the owner of a ticket cannot change"));
    }
    let user = ctx
        .user()
        .ok_or_else(|| HookError::new(401, "unauthenticated", "log in first"))?;
    changes.query.filter.push(Condition {
        field: "owner".into(),
        op: Op::Eq,
        value: json!(user.id),
    });
    Ok(())
}

/// Nothing to change: answer 0 without touching the table.
#[before_bulk_update("Ticket", priority = -1)]
fn nothing_to_do(changes: &mut BulkChanges<Ticket>) -> Result<Flow<Affected<Ticket>>, HookError> {
    Ok(match changes.is_empty() {
        true => Flow::Return(Affected::new(0)),
        false => Flow::Continue,
    })
}

/// A misspelt change made by a handler is refused, not dropped.
#[before_bulk_update("Ticket", priority = 1)]
fn touch(changes: &mut BulkChanges<Ticket>, ctx: &Context) -> Result<(), HookError> {
    if ctx.param("typo").is_some() || ctx.request_id() == Some("typo") {
        changes.set("titel", json!("x"))?;
    }
    Ok(())
}

/// A storage failure reaches clients as a 503 with a code of the service's.
#[after_bulk_update("Ticket")]
fn map_storage_errors(result: &mut Result<Affected<Ticket>, HookError>) {
    if let Err(e) = result
        && e.code() == "db_locked"
    {
        *e = HookError::new(503, "try_again", "the tickets are busy; try again");
    }
}

/// A count is never reported above what a client may know.
#[after_bulk_update("Ticket", priority = 1)]
fn cap_the_count(affected: &mut Affected<Ticket>) {
    affected.count = affected.count.min(100);
}

#[tokio::test]
async fn before_bulk_update_handlers_narrow_the_query_and_after_handlers_change_the_count() {
    let hooks = hooks();
    let mut ctx = Context::client().with_user(User::new("u7"));
    let changes = BulkChanges::from_json(
        Query::all().filter("closed", Op::Eq, false),
        json!({"closed": true}),
    )
    .unwrap();
    let seen = Mutex::new(None);
    let out = hooks
        .bulk_update(&mut ctx, changes, |changes: BulkChanges<Ticket>| {
            *seen.lock().unwrap() = Some(changes.clone());
            async { Ok(Affected::new(250)) }
        })
        .await
        .unwrap();
    assert_eq!(out.count, 100, "capped by the after handler");
    let seen = seen.lock().unwrap().take().unwrap();
    assert_eq!(seen.changes().get("closed"), Some(&json!(true)));
    assert_eq!(
        seen.query.filter,
        Query::<Ticket>::all()
            .filter("closed", Op::Eq, false)
            .filter("owner", Op::Eq, "u7")
            .filter,
        "the default saw the query narrowed to the caller's tickets"
    );
}

#[test]
fn a_before_handler_answers_an_empty_bulk_update_without_the_default() {
    let chain = Chain::<BulkUpdate<Ticket>>::all();
    let ctx = &mut Context::client().with_user(User::new("u7"));
    let out = chain.run_sync(ctx, BulkChanges::new(Query::all()), |_| {
        panic!("the default must not run")
    });
    assert_eq!(out.unwrap(), Affected::new(0));
    assert_eq!(
        chain.ran_lines(),
        [
            "bulk::nothing_to_do answered",
            "bulk::map_storage_errors done",
            "bulk::cap_the_count done",
        ],
        "after handlers run after an answer too"
    );
}

#[test]
fn a_bulk_update_of_the_owner_is_rejected_and_after_handlers_see_the_error() {
    let chain = Chain::<BulkUpdate<Ticket>>::all();
    let ctx = &mut Context::client().with_user(User::new("u7"));
    let changes = BulkChanges::from_json(Query::all(), json!({"owner": "u8"})).unwrap();
    let err = chain
        .run_sync(ctx, changes, |_| panic!("the default must not run"))
        .unwrap_err();
    assert_eq!((err.status(), err.code()), (403, "forbidden"));
    assert_eq!(
        chain.ran_lines(),
        [
            "bulk::nothing_to_do continued",
            "bulk::own_tickets_only rejected",
            "bulk::map_storage_errors done",
        ],
        "`cap_the_count` takes the count, so it does not run on an error"
    );
}

#[test]
fn after_bulk_update_handlers_map_the_defaults_error() {
    let chain = Chain::<BulkUpdate<Ticket>>::all();
    let ctx = &mut Context::client().with_user(User::new("u7"));
    let changes = BulkChanges::from_json(Query::all(), json!({"title": "same"})).unwrap();
    let err = chain
        .run_sync(ctx, changes, |_| {
            Err(HookError::new(500, "db_locked", "database is locked"))
        })
        .unwrap_err();
    assert_eq!((err.status(), err.code()), (503, "try_again"));
}

#[test]
fn an_unknown_change_field_is_a_400_not_a_silent_no_op() {
    // From a client's JSON: the first unknown field is named.
    let err =
        BulkChanges::<Ticket>::from_json(Query::all(), json!({"closed": true, "clsoed": false}))
            .unwrap_err();
    assert_eq!((err.status(), err.code()), (400, "unknown_field"));
    assert!(err.message().contains("clsoed"), "{}", err.message());
    // A field left out of the dynamic view is not one a bulk update can set.
    let err = BulkChanges::<Ticket>::from_json(Query::all(), json!({"cache": []})).unwrap_err();
    assert_eq!(err.code(), "unknown_field");
    // Not an object.
    let err = BulkChanges::<Ticket>::from_json(Query::all(), json!(["closed"])).unwrap_err();
    assert_eq!((err.status(), err.code()), (400, "bad_request"));
    // Set by a handler: the call is rejected with the same error.
    let chain = Chain::<BulkUpdate<Ticket>>::all();
    let ctx = &mut Context::client()
        .with_user(User::new("u7"))
        .with_request_id("typo");
    let changes = BulkChanges::from_json(Query::all(), json!({"closed": true})).unwrap();
    let err = chain
        .run_sync(ctx, changes, |_| panic!("the default must not run"))
        .unwrap_err();
    assert_eq!((err.status(), err.code()), (400, "unknown_field"));
}

#[test]
fn bulk_changes_apply_to_a_record_through_its_dynamic_view() {
    let mut changes = BulkChanges::<Ticket>::new(Query::all());
    changes.set("closed", json!(true)).unwrap();
    let mut ticket = Ticket {
        id: Some(1),
        title: "t".into(),
        owner: "u1".into(),
        closed: false,
        cache: None,
    };
    changes.apply(&mut ticket).unwrap();
    assert!(ticket.closed);
    changes.set("closed", json!("yes")).unwrap();
    assert_eq!(
        changes.apply(&mut ticket).unwrap_err().code(),
        "invalid_field"
    );
    assert_eq!(changes.remove("closed"), Some(json!("yes")));
    assert!(changes.is_empty());
}

// ---- bulk delete -------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Entity)]
#[entity(table = "logs")]
pub struct Log {
    pub id: i64,
    pub level: String,
}

/// Refuse to delete a whole table by accident: a bulk delete needs a filter.
#[before_bulk_delete("logs")]
fn needs_a_filter(query: &Query<Log>) -> Result<(), HookError> {
    if query.filter.is_empty() {
        return Err(HookError::bad_request(
            "a bulk delete needs a `where` filter",
        ));
    }
    Ok(())
}

static DELETED: AtomicUsize = AtomicUsize::new(0);

/// Audit what was deleted, off the caller's path.
#[after_bulk_delete("logs", background)]
async fn audit_deletes(affected: &Affected<Log>) {
    DELETED.fetch_add(affected.count as usize, Ordering::Relaxed);
}

#[tokio::test]
async fn bulk_delete_handlers_reject_an_unfiltered_delete_and_audit_the_others() {
    let hooks = hooks();
    let mut ctx = Context::client();
    let err = hooks
        .bulk_delete(&mut ctx, Query::<Log>::all(), |_| async {
            panic!("the default must not run")
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), "bad_request");
    let query = Query::all().filter("level", Op::Eq, "debug");
    let out = hooks
        .bulk_delete(&mut ctx, query, |q: Query<Log>| async move {
            assert_eq!(q.filter.len(), 1);
            Ok(Affected::new(42))
        })
        .await
        .unwrap();
    assert_eq!(out.count, 42);
    hooks
        .shutdown(std::time::Duration::from_secs(5))
        .expect("the audit job finishes");
    assert_eq!(DELETED.load(Ordering::Relaxed), 42);
}

// ---- dynamic tables ----------------------------------------------------------------------------

/// Notes are deleted only by their owner.
#[before_bulk_delete("notes")]
fn own_notes(query: &mut Query<DynRecord>, ctx: &Context) {
    let owner = ctx.user().map(|u| u.id.clone());
    query.filter.push(Condition {
        field: "owner".into(),
        op: Op::Eq,
        value: json!(owner),
    });
}

/// Each note records what the bulk update changed.
#[before_bulk_update("notes")]
fn mark_edited(changes: &mut BulkChanges<DynRecord>) -> Result<(), HookError> {
    changes.set("edited", json!(true))
}

#[tokio::test]
async fn a_dynamic_tables_bulk_calls_name_it_with_run_on() {
    let hooks = hooks();
    let mut ctx = Context::client().with_user(User::new("u3"));
    let out = hooks
        .run_on::<BulkDelete<DynRecord>, _, _>(&mut ctx, "notes", Query::all(), |q| async move {
            assert_eq!(q.filter[0].value, json!("u3"), "narrowed to the owner");
            Ok(Affected::new(2))
        })
        .await
        .unwrap();
    assert_eq!(out.count, 2);

    // A dynamic table has no schema: any field can change.
    let changes =
        BulkChanges::<DynRecord>::from_json(Query::all(), json!({"anything": 1})).unwrap();
    let out = hooks.run_sync_on::<BulkUpdate<DynRecord>, _>(&mut ctx, "notes", changes, |c| {
        assert_eq!(c.get("edited"), Some(&json!(true)));
        assert_eq!(c.get("anything"), Some(&json!(1)));
        Ok(Affected::new(c.changes().len() as u64))
    });
    assert_eq!(out.unwrap().count, 2);

    // Another table's calls do not run the handlers of "notes".
    let out = hooks
        .run_on::<BulkDelete<DynRecord>, _, _>(&mut ctx, "memos", Query::all(), |q| async move {
            assert!(q.filter.is_empty());
            Ok(Affected::new(0))
        })
        .await;
    assert_eq!(out.unwrap().count, 0);
}

#[test]
fn a_bulk_create_of_dynamic_records_runs_the_wildcards_on_each() {
    let chain = Chain::<BulkCreate<DynRecord>>::only(&["stamp_each"]);
    let hooks = chain.hooks();
    let records = vec![
        hooks.record("notes", json!({"text": "a"})).unwrap(),
        hooks.record("notes", json!({"text": "b"})).unwrap(),
    ];
    let out = chain
        .run_sync_on(&mut Context::client(), "notes", records, Ok)
        .unwrap();
    assert!(out.iter().all(|r| r.fields()["stamped"] == json!(true)));
    // One run of the handler, over every record.
    assert_eq!(chain.ran_lines(), ["bulk::stamp_each continued"]);
}

// ---- the catalog -------------------------------------------------------------------------------

#[test]
fn the_catalog_lists_the_bulk_operations_and_their_handlers() {
    let catalog = hooks().catalog();
    for (name, input, output) in [
        ("data.bulk_create", "Vec<E>", "Vec<E>"),
        ("data.bulk_update", "BulkChanges<E>", "Affected<E>"),
        ("data.bulk_delete", "Query<E>", "Affected<E>"),
    ] {
        let event = catalog
            .events
            .iter()
            .find(|e| e.name == name)
            .unwrap_or_else(|| panic!("{name} is not in the catalog"));
        assert_eq!(
            (event.input.as_str(), event.output.as_str()),
            (input, output)
        );
    }
    let handler = catalog
        .handlers
        .iter()
        .find(|h| h.id == "bulk::own_tickets_only")
        .unwrap();
    assert_eq!(
        (handler.event.as_str(), handler.asset.as_str()),
        ("data.bulk_update", "Ticket")
    );
}
