//! Two entity types that share a table name cannot both have handlers for one operation: the table
//! build reports every handler involved, and a call whose type does not fit fails closed.

use hooks::prelude::*;
use hooks::{Table, registration::registered};

#[derive(Debug, Clone, Entity)]
#[entity(table = "shared")]
pub struct First {
    pub id: u32,
}

#[derive(Debug, Clone, Entity)]
#[entity(table = "shared")]
pub struct Second {
    pub id: u32,
}

#[before_create("shared")]
fn on_first(_: &mut First) {}

#[after_create("shared")]
fn on_second(_: &mut Second) {}

#[test]
fn handlers_that_disagree_on_the_type_fail_the_table_build_naming_each() {
    let err = Hooks::new().unwrap_err();
    let handlers: Vec<_> = err.problems.iter().map(|p| p.handler.as_str()).collect();
    assert_eq!(
        handlers,
        ["type_mismatch::on_first", "type_mismatch::on_second"]
    );
    let text = err.to_string();
    assert!(text.contains("tests/type_mismatch.rs"), "{text}");
    assert!(text.contains("disagree on the type"), "{text}");
    assert!(
        text.contains("Create<type_mismatch::First>")
            && text.contains("Create<type_mismatch::Second>"),
        "{text}"
    );
}

#[tokio::test]
async fn a_call_whose_type_does_not_fit_its_handlers_fails_closed_naming_the_handler() {
    // A table of `First`'s handler only: valid on its own.
    let table =
        Table::from_registrations(registered().filter(|r| r.id().ends_with("on_first"))).unwrap();
    let hooks = Hooks::with_table(table);
    let mut ran = false;
    let err = hooks
        .create(&mut Context::client(), Second { id: 1 }, |s| {
            ran = true;
            async move { Ok(s) }
        })
        .await
        .unwrap_err();
    assert!(!ran, "the default must not run");
    assert_eq!(err.status(), 500);
    assert!(err.message().contains("type_mismatch::on_first"), "{err}");
    assert!(err.message().contains("tests/type_mismatch.rs"), "{err}");
}
