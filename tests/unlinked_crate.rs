//! The linker's rule, shown: a handlers crate that is a dependency but is never named in the binary
//! contributes no handlers. (`linked_crate.rs` shows the fix: `use extra_handlers as _;`.)

use hooks::Hooks;

#[test]
fn handlers_of_a_crate_the_binary_never_names_are_not_linked() {
    let hooks = Hooks::new().unwrap();
    assert!(
        hooks.table().handlers("data.create", "invoices").is_empty(),
        "this binary does not name extra_handlers, so the linker drops its handlers"
    );
}

#[test]
fn the_start_up_check_names_a_required_crate_that_is_not_linked() {
    let err = Hooks::builder()
        .require_handlers_from(&["extra_handlers"])
        .build()
        .unwrap_err();
    assert_eq!(err.problems.len(), 1);
    assert!(
        err.problems[0].problem.contains("use extra_handlers as _;"),
        "{err}"
    );
}

#[test]
fn a_crate_named_as_cargo_toml_names_it_gets_advice_in_rust() {
    let err = Hooks::builder()
        .require_handlers_from(&["extra-handlers"])
        .build()
        .unwrap_err();
    let problem = &err.problems[0].problem;
    assert!(problem.contains("use extra_handlers as _;"), "{problem}");
    assert!(!problem.contains("extra-handlers"), "{problem}");
    // The test kit's check says the same.
    let failure =
        std::panic::catch_unwind(|| hooks::testing::assert_handlers_from("extra-handlers"))
            .unwrap_err();
    let message = failure.downcast_ref::<String>().unwrap();
    assert!(message.contains("use extra_handlers as _;"), "{message}");
}
