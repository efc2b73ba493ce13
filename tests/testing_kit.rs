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
