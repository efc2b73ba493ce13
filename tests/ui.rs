//! Compile-time diagnostics: each case under `tests/ui/` must fail to compile with the message in
//! its `.stderr` file.

#[test]
fn misuses_are_compile_errors_with_clear_messages() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
}
