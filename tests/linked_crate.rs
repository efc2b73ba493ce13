//! Handlers defined in another crate are collected once the binary names that crate.

// The one line that links the crate, and every handler in it, into this binary
// (the same as `use extra_handlers as _;`).
hooks::link!(extra_handlers);

use hooks::prelude::*;

#[test]
fn handlers_of_a_named_crate_are_in_the_table() {
    let hooks = Hooks::new().unwrap();
    let ids: Vec<_> = hooks
        .table()
        .handlers("data.create", "invoices")
        .iter()
        .map(|r| r.id())
        .collect();
    assert_eq!(
        ids,
        [
            "extra_handlers::refuse_negative",
            "extra_handlers::number_invoice"
        ]
    );
}

#[tokio::test]
async fn handlers_of_a_named_crate_run_around_calls() {
    use extra_handlers::Invoice;
    let hooks = Hooks::new().unwrap();
    let mut ctx = Context::client();
    let ok = hooks
        .create(
            &mut ctx,
            Invoice {
                cents: 1250,
                number: None,
            },
            |i| async move { Ok(i) },
        )
        .await;
    assert_eq!(ok.unwrap().number.as_deref(), Some("INV-01250"));
    let err = hooks
        .create(
            &mut ctx,
            Invoice {
                cents: -1,
                number: None,
            },
            |i| async move { Ok(i) },
        )
        .await;
    assert_eq!(err.unwrap_err().code(), "rejected");
}

#[test]
fn the_test_kit_and_the_start_up_check_see_the_linked_crate() {
    assert_eq!(hooks::testing::assert_handlers_from("extra_handlers"), 2);
    // As Cargo.toml names it, too.
    assert_eq!(hooks::testing::assert_handlers_from("extra-handlers"), 2);
    assert!(
        Hooks::builder()
            .require_handlers_from(&["extra-handlers"])
            .build()
            .is_ok()
    );
    assert!(
        Hooks::builder()
            .require_handlers_from(&["extra_handlers"])
            .build()
            .is_ok()
    );
}
