//! The testing kit, used as a service's tests would: one unit test per handler, a chain with a fake
//! default, restricted to chosen handlers, with a record of what ran; and a snapshot of the set of
//! handlers.

use hooks::prelude::*;
use hooks::testing::{Chain, assert_catalog_snapshot};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Entity)]
pub struct Contact {
    pub name: String,
    pub email: String,
}

/// Reject contacts without an email; normalise the rest.
#[before_create("Contact")]
fn check_email(contact: &mut Contact) -> Result<(), HookError> {
    if contact.email.is_empty() {
        return Err(HookError::rejected("email is required"));
    }
    contact.email = contact.email.to_lowercase();
    Ok(())
}

/// Only signed-in users create contacts.
#[before_create("Contact", priority = -1)]
fn signed_in(_contact: &Contact, ctx: &Context) -> Result<(), HookError> {
    ctx.require_user().map(drop)
}

#[after_create("Contact")]
fn greet(contact: &mut Contact, ctx: &Context) {
    contact.name = format!(
        "{} ({})",
        contact.name,
        ctx.param("greeting").unwrap_or("hi")
    );
}

fn ada() -> Contact {
    Contact {
        name: "Ada".into(),
        email: "ADA@X.ORG".into(),
    }
}

// One unit test per handler: a handler is a plain function, callable as written.
#[test]
fn check_email_lowercases_and_rejects_empty_emails() {
    let mut c = ada();
    assert_eq!(check_email(&mut c), Ok(()));
    assert_eq!(c.email, "ada@x.org");
    let mut empty = Contact {
        name: "Bob".into(),
        email: String::new(),
    };
    assert_eq!(
        check_email(&mut empty).unwrap_err().message(),
        "email is required"
    );
}

// The same handler through exactly the adapter and policies the runtime uses, alone.
#[test]
fn one_handler_runs_alone_through_the_runtime_adapter() {
    let chain = Chain::<ops::data::Create<Contact>>::only(&["check_email"]);
    let out = chain.run_sync(&mut Context::client(), ada(), Ok).unwrap();
    assert_eq!(out.email, "ada@x.org");
    assert_eq!(chain.ran_lines(), ["testing_kit::check_email continued"]);
}

#[tokio::test]
async fn a_whole_chain_runs_with_a_fake_default_and_records_what_ran() {
    let chain = Chain::<ops::data::Create<Contact>>::all();
    let mut anonymous = Context::client();
    let err = chain
        .run(&mut anonymous, ada(), |c| async move { Ok(c) })
        .await
        .unwrap_err();
    assert_eq!(err.status(), 401);
    let ran = chain.ran();
    assert_eq!(
        ran.len(),
        1,
        "the rejection stops the chain; `greet` takes only values: {ran:?}"
    );
    assert_eq!(ran[0].handler, "testing_kit::signed_in");
    assert_eq!(ran[0].step, hooks::Step::Rejected(err));

    let mut ctx = Context::client().with_user(User::new("u1"));
    let out = chain
        .run(&mut ctx, ada(), |c| async move { Ok(c) })
        .await
        .unwrap();
    assert_eq!(out.name, "Ada (hi)");
    assert_eq!(
        chain.ran_lines(),
        [
            "testing_kit::signed_in continued",
            "testing_kit::check_email continued",
            "testing_kit::greet done"
        ]
    );
}

#[test]
fn a_context_with_user_origin_params_and_extensions_is_one_line() {
    struct Pool(&'static str);
    let ctx = Context::server()
        .with_user(User::new("u1"))
        .with_params(&[("greeting", "hello")])
        .with_extension(Pool("db"));
    let mut c = ada();
    greet(&mut c, &ctx);
    assert_eq!(c.name, "Ada (hello)");
    assert_eq!(ctx.extension::<Pool>().map(|p| p.0), Some("db"));
    assert!(!ctx.is_client());
}

#[test]
#[should_panic(expected = "no handler of data.create on \"Contact\" answers to \"nope\"")]
fn naming_a_handler_that_does_not_exist_fails_the_test_clearly() {
    let _ = Chain::<ops::data::Create<Contact>>::only(&["nope"]);
}

// A change in the set of handlers shows up in review: this file is checked in.
#[test]
fn the_set_of_handlers_matches_the_checked_in_snapshot() {
    assert_catalog_snapshot("tests/snapshots/testing_kit.hooks");
}

#[test]
fn a_changed_set_of_handlers_fails_the_snapshot_check_with_the_difference() {
    let dir = std::env::temp_dir().join(format!("hooks-snapshot-{}", std::process::id()));
    let path = dir.join("stale.hooks");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        &path,
        "data.create Contact before testing_kit::removed_handler priority=0 tests/testing_kit.rs\n",
    )
    .unwrap();
    let failure = std::panic::catch_unwind(|| assert_catalog_snapshot(&path)).unwrap_err();
    let message = failure.downcast_ref::<String>().unwrap();
    assert!(
        message.contains("- data.create Contact before testing_kit::removed_handler"),
        "{message}"
    );
    assert!(
        message.contains("+ data.create Contact before testing_kit::check_email priority=0"),
        "{message}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A directory of this test's own for snapshot files, removed at the end.
struct Scratch(std::path::PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("hooks-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn a_snapshot_that_cannot_be_read_fails_the_check_and_is_kept() {
    let dir = Scratch::new("unreadable-snapshot");
    let path = dir.0.join("binary.hooks");
    std::fs::write(&path, [0xff, 0xfe, 0x00]).unwrap();
    let failure = std::panic::catch_unwind(|| assert_catalog_snapshot(&path)).unwrap_err();
    let message = failure.downcast_ref::<String>().unwrap();
    assert!(message.contains("cannot read the snapshot"), "{message}");
    assert_eq!(std::fs::read(&path).unwrap(), [0xff, 0xfe, 0x00]);
}

#[test]
fn a_snapshot_reads_the_same_with_crlf_line_ends_or_no_last_line_break() {
    let dir = Scratch::new("line-ends");
    let path = dir.0.join("fresh.hooks");
    // A missing file is written.
    assert_catalog_snapshot(&path);
    let written = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, written.replace('\n', "\r\n")).unwrap();
    assert_catalog_snapshot(&path);
    std::fs::write(&path, written.trim_end()).unwrap();
    assert_catalog_snapshot(&path);
}

#[test]
fn a_snapshot_with_a_line_twice_fails_naming_the_extra_line() {
    let dir = Scratch::new("twice");
    let path = dir.0.join("twice.hooks");
    assert_catalog_snapshot(&path);
    let written = std::fs::read_to_string(&path).unwrap();
    let first = written.lines().next().unwrap().to_owned();
    std::fs::write(&path, format!("{first}\n{written}")).unwrap();
    let failure = std::panic::catch_unwind(|| assert_catalog_snapshot(&path)).unwrap_err();
    let message = failure.downcast_ref::<String>().unwrap();
    assert!(message.contains(&format!("- {first}\n")), "{message}");
    assert!(!message.contains("another order"), "{message}");
}

/// Notes and memos, tables with no Rust type, get one stamp from one function.
#[before_create("notes")]
#[before_create("memos")]
fn stamp_notes_and_memos(record: &mut DynRecord) -> Result<(), HookError> {
    record.set("stamped", serde_json::json!(true))
}

#[test]
fn a_function_on_two_tables_is_chosen_by_its_one_name() {
    // Named twice, as its last segment and its whole id: one function, chosen once.
    let chain = Chain::<ops::data::Create<DynRecord>>::only(&[
        "stamp_notes_and_memos",
        "testing_kit::stamp_notes_and_memos",
    ]);
    for table in ["notes", "memos"] {
        let record = chain.hooks().record(table, serde_json::json!({})).unwrap();
        let out = chain.run_sync(&mut Context::client(), record, Ok).unwrap();
        assert_eq!(out.fields()["stamped"], serde_json::json!(true));
    }
    assert_eq!(
        chain.ran_lines(),
        ["testing_kit::stamp_notes_and_memos continued"; 2]
    );
}
