//! A call runs the handlers of the asset it is about: a name given to `run_on` (often taken from
//! a client's URL) cannot steer it past them, and a message goes to its own channel's handlers
//! whichever way it is run.

use hooks::ops::data::{Create, Find};
use hooks::ops::messaging::{Message, Publish, Published};
use hooks::ops::users::{Credentials, Login, Session};
use hooks::prelude::*;
use hooks::testing::Chain;
use serde_json::json;

fn hooks() -> Hooks {
    Hooks::new().expect("the handlers of this test binary form a valid table")
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Entity)]
pub struct Guarded {
    pub name: String,
}

/// The guard of `Guarded`: no creates at all.
#[before_create("Guarded")]
fn no_creates(_: &mut Guarded) -> Result<(), HookError> {
    Err(HookError::forbidden("no creates"))
}

#[before_login]
fn logins_closed(_: &mut Credentials) -> Result<(), HookError> {
    Err(HookError::forbidden("logins are closed"))
}

#[before_publish("moderated")]
fn moderated(_: &mut Message) -> Result<(), HookError> {
    Err(HookError::forbidden("this channel is moderated"))
}

#[before_create("read_only")]
fn read_only(_: &mut DynRecord) -> Result<(), HookError> {
    Err(HookError::forbidden("the table is read-only"))
}

#[before_find("read_only")]
fn no_finds(_: &mut Query<DynRecord>) -> Result<(), HookError> {
    Err(HookError::forbidden("no finds here"))
}

hooks::operation! {
    /// Ship an order.
    pub Ship: "orders.ship" on "orders", u32 => u32
}

#[before(Ship)]
fn hold_shipping(_: &mut u32) -> Result<(), HookError> {
    Err(HookError::forbidden("shipping is on hold"))
}

thread_local! {
    /// The defaults run on this thread: each test runs on a thread of its own (and its async
    /// calls on a runtime of that thread), so tests running side by side do not see each
    /// other's.
    static DEFAULTS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// How many defaults ran on this test's thread.
fn defaults() -> usize {
    DEFAULTS.with(std::cell::Cell::get)
}

/// The default of every call here: counts its runs, and answers with what it got.
fn ran<T>(input: T) -> Result<T, HookError> {
    DEFAULTS.with(|d| d.set(d.get() + 1));
    Ok(input)
}

fn code<T: std::fmt::Debug>(result: Result<T, HookError>) -> String {
    match result {
        Ok(value) => format!("ok {value:?}"),
        Err(e) => format!("{} {}", e.status(), e.code()),
    }
}

fn message(channel: &str) -> Message {
    Message {
        channel: channel.into(),
        body: json!("hello"),
        headers: Default::default(),
    }
}

fn published(m: Message) -> Result<Published, HookError> {
    DEFAULTS.with(|d| d.set(d.get() + 1));
    Ok(Published {
        channel: m.channel,
        message_id: "1".into(),
    })
}

#[test]
fn a_typed_tables_call_cannot_run_on_another_asset() {
    let hooks = hooks();
    let before = defaults();
    for asset in ["Other", "*", "", "guarded"] {
        let mut ctx = Context::client();
        let out = hooks.run_sync_on::<Create<Guarded>, _>(
            &mut ctx,
            asset,
            Guarded { name: "a".into() },
            ran,
        );
        assert_eq!(code(out), "400 asset_mismatch", "asset {asset:?}");
    }
    assert_eq!(defaults(), before, "nothing ran, the default included");
    // Its own table is fine: the guard runs.
    let out = hooks.run_sync_on::<Create<Guarded>, _>(
        &mut Context::client(),
        "Guarded",
        Guarded { name: "a".into() },
        ran,
    );
    assert_eq!(code(out), "403 forbidden");
}

#[tokio::test]
async fn an_async_call_on_another_asset_fails_before_anything_runs() {
    let hooks = hooks();
    let before = defaults();
    let mut ctx = Context::client();
    let out = hooks
        .run_on::<Create<Guarded>, _, _>(
            &mut ctx,
            "Other",
            Guarded { name: "a".into() },
            |g| async move { ran(g) },
        )
        .await;
    assert_eq!(code(out), "400 asset_mismatch");
    let out = hooks
        .run_on::<Ship, _, _>(&mut ctx, "other", 3, |n| async move { ran(n) })
        .await;
    assert_eq!(code(out), "400 asset_mismatch");
    assert_eq!(defaults(), before);
    let out = hooks
        .run_on::<Ship, _, _>(&mut ctx, "orders", 3, |n| async move { ran(n) })
        .await;
    assert_eq!(
        code(out),
        "403 forbidden",
        "the operation's own asset runs its handlers"
    );
}

#[test]
fn a_users_call_runs_on_the_users_asset_alone() {
    let hooks = hooks();
    let credentials = || Credentials {
        login: "ada@example.com".into(),
        password: Secret::new("secret"),
    };
    let session = |_: Credentials| -> Result<Session, HookError> {
        Err(HookError::internal("the default ran"))
    };
    let out =
        hooks.run_sync_on::<Login, _>(&mut Context::client(), "users", credentials(), session);
    assert_eq!(code(out), "403 forbidden");
    let out = hooks.run_sync_on::<Login, _>(&mut Context::client(), "x", credentials(), session);
    assert_eq!(code(out), "400 asset_mismatch");
}

hooks::operation! {
    /// Ping anything: calls name what they ping.
    pub Ping: "tests.ping", u32 => u32
}

#[before(Ping)]
fn count_pings(n: &mut u32) {
    *n += 1;
}

#[test]
fn an_operation_without_an_asset_runs_its_handlers_on_any_asset_named() {
    let hooks = hooks();
    for asset in ["x", "*", ""] {
        let out = hooks.run_sync_on::<Ping, _>(&mut Context::client(), asset, 1, Ok);
        assert_eq!(code(out), "ok 2", "asset {asset:?}");
    }
}

#[tokio::test]
async fn a_message_runs_its_own_channels_handlers_however_it_is_run() {
    let hooks = hooks();
    let before = defaults();
    let sync =
        hooks.run_sync::<Publish, _>(&mut Context::client(), message("moderated"), published);
    assert_eq!(code(sync), "403 forbidden");
    let run = hooks
        .run::<Publish, _, _>(
            &mut Context::client(),
            message("moderated"),
            |m| async move { published(m) },
        )
        .await;
    assert_eq!(code(run), "403 forbidden");
    let publish = hooks
        .publish(
            &mut Context::client(),
            message("moderated"),
            |m| async move { published(m) },
        )
        .await;
    assert_eq!(code(publish), "403 forbidden");
    let chain = Chain::<Publish>::all();
    let chained = chain.run_sync(&mut Context::client(), message("moderated"), published);
    assert_eq!(code(chained), "403 forbidden");
    assert_eq!(chain.ran_lines(), ["assets::moderated rejected"]);
    assert_eq!(defaults(), before, "no default ran");
    // Another channel has no guard.
    let open = hooks.run_sync::<Publish, _>(&mut Context::client(), message("open"), published);
    assert!(open.is_ok(), "{open:?}");
}

#[test]
fn a_message_cannot_run_on_a_channel_other_than_its_own() {
    let hooks = hooks();
    let before = defaults();
    for asset in ["open", "*", ""] {
        let out = hooks.run_sync_on::<Publish, _>(
            &mut Context::client(),
            asset,
            message("moderated"),
            published,
        );
        assert_eq!(code(out), "400 asset_mismatch", "asset {asset:?}");
    }
    assert_eq!(defaults(), before);
    let out = hooks.run_sync_on::<Publish, _>(
        &mut Context::client(),
        "moderated",
        message("moderated"),
        published,
    );
    assert_eq!(code(out), "403 forbidden");
}

#[tokio::test]
async fn publishing_to_every_channel_at_once_is_refused() {
    let out = hooks()
        .publish(&mut Context::client(), message("*"), |m| async move {
            published(m)
        })
        .await;
    assert_eq!(code(out), "400 bad_request");
}

#[test]
fn a_dynamic_record_cannot_run_on_a_table_other_than_its_own() {
    let hooks = hooks();
    let before = defaults();
    for asset in ["other", "*", ""] {
        let record = hooks.record("read_only", json!({"a": 1})).unwrap();
        let out =
            hooks.run_sync_on::<Create<DynRecord>, _>(&mut Context::client(), asset, record, ran);
        assert_eq!(code(out), "400 asset_mismatch", "asset {asset:?}");
    }
    assert_eq!(defaults(), before);
    let record = hooks.record("read_only", json!({"a": 1})).unwrap();
    let out =
        hooks.run_sync_on::<Create<DynRecord>, _>(&mut Context::client(), "read_only", record, ran);
    assert_eq!(code(out), "403 forbidden");
}

#[test]
fn a_dynamic_tables_find_names_a_table() {
    let hooks = hooks();
    let before = defaults();
    for asset in ["*", ""] {
        let out = hooks.run_sync_on::<Find<DynRecord>, _>(
            &mut Context::client(),
            asset,
            Query::all(),
            |_| ran(Vec::new()),
        );
        assert_eq!(code(out), "400 asset_mismatch", "asset {asset:?}");
    }
    assert_eq!(defaults(), before);
    let out = hooks.run_sync_on::<Find<DynRecord>, _>(
        &mut Context::client(),
        "read_only",
        Query::all(),
        |_| ran(Vec::new()),
    );
    assert_eq!(code(out), "403 forbidden");
}

#[test]
fn a_bulk_create_cannot_carry_a_record_of_another_table() {
    let hooks = hooks();
    let before = defaults();
    let records = vec![
        hooks.record("elsewhere", json!({"a": 1})).unwrap(),
        hooks.record("read_only", json!({"a": 2})).unwrap(),
    ];
    let out = hooks.run_sync_on::<hooks::ops::data::BulkCreate<DynRecord>, _>(
        &mut Context::client(),
        "elsewhere",
        records,
        ran,
    );
    assert_eq!(code(out), "400 asset_mismatch");
    assert_eq!(defaults(), before);
}

#[test]
fn a_key_or_an_original_cannot_carry_a_record_of_another_table() {
    let hooks = hooks();
    let before = defaults();
    let secret = || hooks.record("secrets", json!({"a": 1})).unwrap();
    let key = Key::new(1).with_record(secret());
    let out = hooks.run_sync_on::<hooks::ops::data::Delete<DynRecord>, _>(
        &mut Context::client(),
        "notes",
        key,
        ran,
    );
    assert_eq!(code(out), "400 asset_mismatch");
    let mut changes = Changes::new(1, hooks.record("notes", json!({"a": 2})).unwrap());
    changes.original = Some(secret());
    let out = hooks.run_sync_on::<hooks::ops::data::Update<DynRecord>, _>(
        &mut Context::client(),
        "notes",
        changes,
        |c| ran(c.record),
    );
    assert_eq!(code(out), "400 asset_mismatch");
    assert_eq!(defaults(), before);
}

#[tokio::test]
async fn a_routed_update_cannot_carry_an_original_of_another_table() {
    let hooks = hooks();
    let before = defaults();
    let changes = || {
        let mut changes = Changes::new(1, hooks.record("notes", json!({"a": 2})).unwrap());
        changes.original = Some(hooks.record("secrets", json!({"a": 1})).unwrap());
        changes
    };
    let out = hooks.run_sync::<hooks::ops::data::Update<DynRecord>, _>(
        &mut Context::client(),
        changes(),
        |c| ran(c.record),
    );
    assert_eq!(code(out), "400 asset_mismatch");
    let out = hooks
        .update(&mut Context::client(), changes(), |c| async move {
            ran(c.record)
        })
        .await;
    assert_eq!(code(out), "400 asset_mismatch");
    let chain = Chain::<hooks::ops::data::Update<DynRecord>>::all();
    let out = chain.run_sync(&mut Context::client(), changes(), |c| ran(c.record));
    assert_eq!(code(out), "400 asset_mismatch");
    assert_eq!(defaults(), before);
}

#[tokio::test]
async fn a_call_that_names_its_asset_names_a_plain_one() {
    let hooks = hooks();
    let before = defaults();
    for asset in ["has space", "line\nbreak", &"x".repeat(129)] {
        let out = hooks.run_sync_on::<Find<DynRecord>, _>(
            &mut Context::client(),
            asset,
            Query::all(),
            |_| ran(Vec::new()),
        );
        assert_eq!(code(out), "400 bad_request", "{asset:?}");
    }
    for channel in ["", "has space"] {
        let out = hooks.run_sync::<Publish, _>(&mut Context::client(), message(channel), published);
        assert!(code(out).starts_with("400 "), "{channel:?}");
        let out = hooks
            .run::<Publish, _, _>(&mut Context::client(), message(channel), |m| async move {
                published(m)
            })
            .await;
        assert!(code(out).starts_with("400 "), "{channel:?}");
    }
    assert_eq!(defaults(), before);
}

/// A before handler that moves a message from the lobby to the staff channel, past the staff
/// channel's guard.
#[before_publish("lobby")]
fn to_staff(m: &mut Message) -> Result<(), HookError> {
    m.channel = "staff".into();
    Ok(())
}

/// The same move, by an `async fn` handler (the async flow).
#[before_publish("hall")]
async fn to_staff_later(m: &mut Message) -> Result<(), HookError> {
    m.channel = "staff".into();
    Ok(())
}

#[before_publish("staff")]
fn staff_only(_: &mut Message) -> Result<(), HookError> {
    Err(HookError::forbidden("staff only"))
}

/// A before handler of `drafts` that swaps the record for one of `secrets`.
#[before_create("drafts")]
fn to_secrets(record: &mut DynRecord) -> Result<(), HookError> {
    *record = DynRecord::new("secrets", json!({"a": 1}), 1024)?;
    Ok(())
}

#[tokio::test]
async fn a_before_handler_cannot_move_a_message_to_another_channel() {
    let hooks = hooks();
    let before = defaults();
    let sync = hooks.run_sync::<Publish, _>(&mut Context::client(), message("lobby"), published);
    assert_eq!(code(sync), "500 asset_moved");
    let err = hooks
        .run_sync::<Publish, _>(&mut Context::client(), message("lobby"), published)
        .unwrap_err();
    // The client is not told the names: the new one is the handler's choice (the log has both).
    assert!(!err.message().contains("staff"), "{}", err.message());
    // The async call of sync handlers, and the async flow of an `async fn` handler.
    for channel in ["lobby", "hall"] {
        let run = hooks
            .run::<Publish, _, _>(&mut Context::client(), message(channel), |m| async move {
                published(m)
            })
            .await;
        assert_eq!(code(run), "500 asset_moved", "{channel}");
        let publish = hooks
            .publish(&mut Context::client(), message(channel), |m| async move {
                published(m)
            })
            .await;
        assert_eq!(code(publish), "500 asset_moved", "{channel}");
    }
    let chain = Chain::<Publish>::all();
    let chained = chain.run_sync(&mut Context::client(), message("lobby"), published);
    assert_eq!(code(chained), "500 asset_moved");
    assert_eq!(chain.ran_lines(), ["assets::to_staff continued"]);
    assert_eq!(
        defaults(),
        before,
        "no default ran: the message never reached staff"
    );
    // Sent to staff, it meets the guard.
    let staff = hooks.run_sync::<Publish, _>(&mut Context::client(), message("staff"), published);
    assert_eq!(code(staff), "403 forbidden");
}

#[tokio::test]
async fn a_before_handler_cannot_swap_a_record_for_one_of_another_table() {
    let hooks = hooks();
    let before = defaults();
    let draft = || hooks.record("drafts", json!({"a": 1})).unwrap();
    let sync = hooks.run_sync::<Create<DynRecord>, _>(&mut Context::client(), draft(), ran);
    assert_eq!(code(sync), "500 asset_moved");
    let run = hooks
        .run::<Create<DynRecord>, _, _>(&mut Context::client(), draft(), |r| async move { ran(r) })
        .await;
    assert_eq!(code(run), "500 asset_moved");
    let on =
        hooks.run_sync_on::<Create<DynRecord>, _>(&mut Context::client(), "drafts", draft(), ran);
    assert_eq!(code(on), "500 asset_moved");
    assert_eq!(defaults(), before);
}

/// A bulk create's before handler that slips a record of `secrets` into the list.
#[before_bulk_create("drafts")]
fn smuggle_secret(records: &mut Vec<DynRecord>) -> Result<(), HookError> {
    records.push(DynRecord::new("secrets", json!({"a": 1}), 1024)?);
    Ok(())
}

#[test]
fn a_before_handler_cannot_slip_a_record_of_another_table_into_a_bulk_create() {
    let hooks = hooks();
    let before = defaults();
    let records = vec![hooks.record("drafts", json!({"a": 1})).unwrap()];
    let out = hooks.run_sync_on::<hooks::ops::data::BulkCreate<DynRecord>, _>(
        &mut Context::client(),
        "drafts",
        records,
        ran,
    );
    assert_eq!(code(out), "500 asset_moved");
    assert_eq!(defaults(), before);
}
