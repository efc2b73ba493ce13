//! Glue written as Rust source text and lexed by the compiler in one call
//! ([`TokenStream::from_str`]), for the parts of the glue where no error can be reported and
//! whose tokens' spans therefore do not matter: the handler's site (its names, its options, its
//! source position and its doc line), values the glue only hands over.
//!
//! A token built with `quote!` is made, checked and encoded one by one in the proc-macro, then
//! sent through the compiler's bridge and decoded there (about 2,500 instructions a token in the
//! debug build of this crate that cargo makes by default, ~1,500 built optimised); text is
//! lexed by the compiler itself (~600 a token). Text carries the call site's span: spans that
//! an error may point at (the payload, the operation, the constructor's call) stay with
//! `quote_spanned!`, and so does every token a user wrote, interpolated with [`Text::tokens`].

use std::fmt::Write;
use std::str::FromStr;

use proc_macro2::TokenStream;
use quote::{ToTokens, quote};

/// Tokens gathered as text, with token streams interpolated between runs of text. Each run must
/// hold whole groups: a bracket opened in one run cannot be closed in another.
#[derive(Default)]
pub(crate) struct Text {
    text: String,
    tokens: TokenStream,
}

impl Text {
    /// Rust source, as it is.
    pub(crate) fn push(&mut self, source: &str) -> &mut Self {
        self.text.push_str(source);
        self
    }

    /// `value` as a string literal: its `Debug` form, which escapes what a literal must.
    pub(crate) fn str(&mut self, value: &str) -> &mut Self {
        // Writing into a `String` cannot fail.
        let _ = write!(self.text, "{value:?}");
        self
    }

    /// `value` as source (an integer with its suffix, `true`, ...).
    pub(crate) fn value(&mut self, value: impl std::fmt::Display) -> &mut Self {
        let _ = write!(self.text, "{value}");
        self
    }

    /// Tokens as they are, spans kept: what a user wrote, or glue an error may point at.
    pub(crate) fn tokens(&mut self, tokens: &impl ToTokens) -> &mut Self {
        self.flush();
        tokens.to_tokens(&mut self.tokens);
        self
    }

    /// The text gathered so far, lexed and appended to the tokens.
    fn flush(&mut self) {
        if self.text.is_empty() {
            return;
        }
        match lex(&self.text) {
            // A stream appended as one: extended with its trees, it would be taken apart
            // through the bridge and sent back token by token.
            Ok(lexed) => self.tokens.extend(std::iter::once(lexed)),
            // The text is the glue's own: this is a bug in this crate, reported as one.
            Err(e) => {
                let message = format!("hooks: the attribute wrote glue that does not lex ({e})");
                self.tokens.extend(quote!(::core::compile_error!(#message)));
            }
        }
        self.text.clear();
    }

    /// Every token gathered.
    pub(crate) fn finish(mut self) -> TokenStream {
        self.flush();
        self.tokens
    }
}

/// `source` lexed by the compiler when this runs in a proc-macro; elsewhere (this crate's unit
/// tests), by proc_macro2's lexer. proc_macro2's own `from_str` first checks the text with its
/// own lexer, because the compiler cannot report every lexing error as an `Err` (some stop the
/// compilation instead): here that check would cost ~200,000 instructions a call in the debug
/// build, more than the text saves. The text is this crate's own, fragments written here and
/// strings escaped by [`Text::str`], so it lexes: a failure would be a bug of this crate.
fn lex(source: &str) -> Result<TokenStream, String> {
    if proc_macro::is_available() {
        proc_macro::TokenStream::from_str(source)
            .map(TokenStream::from)
            .map_err(|e| e.to_string())
    } else {
        TokenStream::from_str(source).map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(f: impl FnOnce(&mut Text)) -> String {
        let mut t = Text::default();
        f(&mut t);
        t.finish().to_string()
    }

    #[test]
    fn text_and_interpolated_tokens_come_out_in_order() {
        let ident = proc_macro2::Ident::new("on_error", proc_macro2::Span::call_site());
        let out = text(|t| {
            t.push("f(")
                .value(3u32)
                .push("u32, ")
                .str("a \"b\"\n")
                .push(")")
                .push(", ")
                .tokens(&ident)
                .push(", ")
                .value(true);
        });
        assert_eq!(out, r#"f (3u32 , "a \"b\"\n") , on_error , true"#);
    }

    #[test]
    fn any_string_becomes_a_literal_of_the_same_value() {
        for s in [
            "",
            "plain",
            "quote \" and \\ backslash",
            "tab\tnew\nline",
            "é ü \u{200b} \0",
        ] {
            let out = text(|t| {
                t.str(s);
            });
            let lit: syn::LitStr = syn::parse_str(&out).expect("a string literal");
            assert_eq!(lit.value(), s);
        }
    }

    #[test]
    fn text_that_does_not_lex_is_a_compile_error_not_a_panic() {
        let out = text(|t| {
            t.push("f(");
        });
        assert!(out.contains("compile_error"), "{out}");
    }
}
