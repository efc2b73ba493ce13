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
