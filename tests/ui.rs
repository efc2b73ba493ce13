//! Compile-time diagnostics: each case under `tests/ui/` must fail to compile with the message in
//! its `.stderr` file, one misuse per case, named after it.
//!
//! After changing a message, regenerate with `TRYBUILD=overwrite cargo test --test ui` and read
//! every changed `.stderr`: the error must say what is wrong and how to fix it, on the token that
//! is wrong, and a mistake must not cascade into other errors.

#[test]
fn misuses_are_compile_errors_with_clear_messages() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
}
