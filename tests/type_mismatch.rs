//! Two entity types that share a table name cannot both have handlers for one operation: the table
//! build reports every handler involved, and a call whose type does not fit fails closed. Two
//! operations of one name fail the start-up too.

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
        [
            "type_mismatch::on_first",
            "type_mismatch::on_second",
            "orders.ship"
        ]
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

hooks::operation! {
    /// Ship an order.
    pub Ship: "orders.ship", u32 => u32
}

hooks::operation! {
    /// Ship a parcel, under the same name by mistake.
    pub ShipParcel: "orders.ship", String => String
}

#[test]
fn two_operations_of_one_name_fail_start_up_naming_both() {
    let err = Hooks::new().unwrap_err();
    let clash: Vec<_> = err
        .problems
        .iter()
        .filter(|p| p.handler == "orders.ship")
        .collect();
    assert_eq!(clash.len(), 1, "{err}");
    let problem = &clash[0].problem;
    assert!(
        problem.contains("`u32` => `u32` (\"Ship an order.\")")
            && problem.contains("`String` => `String`"),
        "{problem}"
    );
}

#[test]
fn start_up_reports_every_kind_of_problem_at_once() {
    let err = Hooks::builder()
        .max_subscribers(0)
        .require_handlers_from(&["no_such_handlers"])
        .build()
        .unwrap_err();
    let problems: Vec<_> = err
        .problems
        .iter()
        .map(|p| {
            let kind = if p.problem.contains("disagree on the type") {
                "type"
            } else if p.problem.contains("over the limit of 0") {
                "limit"
            } else if p.problem.contains("is linked") {
                "link"
            } else if p.problem.contains("are named") {
                "name"
            } else {
                "other"
            };
            format!("{kind} {}", p.handler)
        })
        .collect();
    assert_eq!(
        problems,
        [
            "type type_mismatch::on_first",
            "type type_mismatch::on_second",
            "limit type_mismatch::on_first",
            "limit type_mismatch::on_second",
            "link no_such_handlers::*",
            "name orders.ship",
        ],
        "{err}"
    );
}
