//! Parses a hook attribute's arguments: `("Contact", priority = 10)`.

use proc_macro2::{Span, TokenStream};
use syn::parse::{ParseStream, Parser};
use syn::{Ident, LitInt, LitStr, Token};

use crate::errors::Errors;

/// The options every hook attribute accepts, for messages.
const OPTIONS: &str = "`priority = N`";

pub(crate) struct HookArgs {
    pub(crate) asset: Option<LitStr>,
    pub(crate) priority: i32,
}

pub(crate) fn parse(attr: &str, tokens: TokenStream, errors: &mut Errors) -> HookArgs {
    let mut out = HookArgs {
        asset: None,
        priority: 0,
    };
    let parser = |input: ParseStream| -> syn::Result<()> {
        if input.is_empty() {
            errors.at(
                Span::call_site(),
                format!("missing asset: write #[{attr}(\"Contact\")], naming the table"),
            );
            return Ok(());
        }
        if input.peek(LitStr) {
            let lit: LitStr = input.parse()?;
            check_asset(&lit, errors);
            out.asset = Some(lit);
        } else {
            let tt: proc_macro2::TokenTree = input.parse()?;
            errors.spanned(
                &tt,
                format!("the first argument is the asset, a string: #[{attr}(\"Contact\")]"),
            );
            // Skip to the options so that they are still checked.
            while !input.is_empty() && !input.peek(Token![,]) {
                input.parse::<proc_macro2::TokenTree>()?;
            }
        }
        let mut seen: Vec<String> = Vec::new();
        while !input.is_empty() {
            input.parse::<Token![,]>()?;
            if input.is_empty() {
                break;
            }
            let key: Ident = input.parse()?;
            let name = key.to_string();
            if seen.contains(&name) {
                errors.spanned(&key, format!("`{name}` is given twice"));
            }
            seen.push(name.clone());
            match name.as_str() {
                "priority" => {
                    input.parse::<Token![=]>()?;
                    if let Some(p) = parse_priority(input, errors)? {
                        out.priority = p;
                    }
                }
                _ => {
                    errors.spanned(
                        &key,
                        format!("unknown option `{name}` of #[{attr}]; the options are {OPTIONS}"),
                    );
                    // Skip the option's value, if any.
                    while !input.is_empty() && !input.peek(Token![,]) {
                        input.parse::<proc_macro2::TokenTree>()?;
                    }
                }
            }
        }
        Ok(())
    };
    if let Err(e) = parser.parse2(tokens) {
        errors.push(e);
    }
    out
}

fn check_asset(lit: &LitStr, errors: &mut Errors) {
    let value = lit.value();
    if value.trim().is_empty() {
        errors.spanned(lit, "the asset is empty: name a table, such as \"Contact\"");
    } else if value == "*" {
        errors.spanned(
            lit,
            "wildcard assets are not supported by the data attributes yet: name one table",
        );
    } else if value.trim() != value {
        errors.spanned(
            lit,
            "the asset has leading or trailing spaces: write the bare table name",
        );
    }
}

fn parse_priority(input: ParseStream, errors: &mut Errors) -> syn::Result<Option<i32>> {
    let negative = input.parse::<Option<Token![-]>>()?.is_some();
    if !input.peek(LitInt) {
        let tt: proc_macro2::TokenTree = input.parse()?;
        errors.spanned(&tt, "`priority` takes an integer, such as `priority = 10`");
        return Ok(None);
    }
    let lit: LitInt = input.parse()?;
    let magnitude = match lit.base10_parse::<i64>() {
        Ok(v) => v,
        Err(_) => {
            errors.spanned(&lit, "`priority` must be an integer within i32");
            return Ok(None);
        }
    };
    let value = if negative { -magnitude } else { magnitude };
    match i32::try_from(value) {
        Ok(v) => Ok(Some(v)),
        Err(_) => {
            errors.spanned(&lit, "`priority` must be an integer within i32");
            Ok(None)
        }
    }
}
