//! Parses a hook attribute's arguments: the asset, then options such as `priority = 10`,
//! `timeout = "2s"`, `background`, `client_only` and `params(key = "value")`.

use proc_macro2::{Span, TokenStream, TokenTree};
use syn::ext::IdentExt;
use syn::parse::{ParseStream, Parser};
use syn::{Ident, LitInt, LitStr, Token};

use crate::errors::Errors;

/// The options every hook attribute accepts, for messages.
const OPTIONS: &str = "`priority = N`, `timeout = \"2s\"`, `background`, `client_only`, `params(key = \"value\", ...)`";

pub(crate) struct HookArgs {
    pub(crate) op: Option<syn::Type>,
    pub(crate) asset: Option<LitStr>,
    pub(crate) priority: i32,
    pub(crate) timeout_ms: Option<u64>,
    pub(crate) background: Option<Ident>,
    pub(crate) client_only: bool,
    pub(crate) params: Vec<(String, String)>,
}

/// What comes before the options.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Leading {
    /// An asset string (the data attributes).
    Asset,
    /// An asset string or nothing (messaging: a channel, or every channel).
    OptionalAsset,
    /// An operation type, then optionally an asset string (`before(Op)`).
    Operation,
    /// Nothing (attributes whose operation is fixed).
    Nothing,
}

pub(crate) fn parse(
    attr: &str,
    leading: Leading,
    tokens: TokenStream,
    errors: &mut Errors,
) -> HookArgs {
    let mut out = HookArgs {
        op: None,
        asset: None,
        priority: 0,
        timeout_ms: None,
        background: None,
        client_only: false,
        params: Vec::new(),
    };
    let parser = |input: ParseStream| -> syn::Result<()> {
        if leading == Leading::Asset {
            if input.is_empty() {
                errors.at(
                    Span::call_site(),
                    format!("missing asset: write #[{attr}(\"Contact\")], naming the table"),
                );
                return Ok(());
            }
            if input.peek(LitStr) {
                let lit: LitStr = input.parse()?;
                check_asset(&lit, true, errors);
                out.asset = Some(lit);
            } else {
                let tt: TokenTree = input.parse()?;
                errors.spanned(
                    &tt,
                    format!(
                        "the first argument is the asset, a string literal (a constant or a path \
                         is not read): #[{attr}(\"Contact\")]"
                    ),
                );
                skip_value(input)?;
            }
        }
        let mut first = leading == Leading::Nothing;
        if leading == Leading::Operation {
            if input.is_empty() {
                errors.at(
                    Span::call_site(),
                    format!("missing operation: write #[{attr}(MyOperation)], naming its type"),
                );
                return Ok(());
            }
            if input.peek(LitStr) {
                let lit: LitStr = input.parse()?;
                errors.spanned(
                    &lit,
                    format!("#[{attr}] names an operation type first: #[{attr}(MyOperation)]"),
                );
            } else {
                out.op = Some(input.parse()?);
            }
            if input.peek(Token![,]) && input.peek2(LitStr) {
                input.parse::<Token![,]>()?;
                let lit: LitStr = input.parse()?;
                check_asset(&lit, true, errors);
                out.asset = Some(lit);
            }
        }
        if leading == Leading::OptionalAsset {
            first = true;
            if input.peek(LitStr) {
                let lit: LitStr = input.parse()?;
                check_asset(&lit, true, errors);
                out.asset = Some(lit);
                first = false;
            }
        }
        let mut seen: Vec<String> = Vec::new();
        while !input.is_empty() {
            if !first {
                input.parse::<Token![,]>()?;
                if input.is_empty() {
                    break;
                }
            }
            first = false;
            if !input.peek(Ident) {
                let tt: TokenTree = input.parse()?;
                let message = match (&tt, leading) {
                    (TokenTree::Literal(_), Leading::Nothing) => format!(
                        "#[{attr}] takes no asset: its operation names one. Its options are {OPTIONS}"
                    ),
                    _ => format!("expected an option of #[{attr}]: {OPTIONS}"),
                };
                errors.spanned(&tt, message);
                skip_value(input)?;
                continue;
            }
            let key: Ident = input.parse()?;
            let name = key.unraw().to_string();
            if seen.contains(&name) {
                errors.spanned(&key, format!("`{name}` is given twice: keep one"));
            }
            seen.push(name.clone());
            match name.as_str() {
                "priority" => {
                    expect_eq(input, &key, "priority = 10", errors)?;
                    if let Some(p) = parse_priority(input, &key, errors)? {
                        out.priority = p;
                    }
                }
                "timeout" => {
                    expect_eq(input, &key, "timeout = \"2s\"", errors)?;
                    out.timeout_ms = parse_timeout(input, &key, errors)?;
                }
                "background" => {
                    flag(input, &key, errors)?;
                    out.background = Some(key);
                }
                "client_only" => {
                    flag(input, &key, errors)?;
                    out.client_only = true;
                }
                "params" => parse_params(input, &key, &mut out.params, errors)?,
                _ => {
                    errors.spanned(
                        &key,
                        format!("unknown option `{name}` of #[{attr}]; the options are {OPTIONS}"),
                    );
                    skip_value(input)?;
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

/// Skip to the next top-level comma.
fn skip_value(input: ParseStream) -> syn::Result<()> {
    while !input.is_empty() && !input.peek(Token![,]) {
        input.parse::<TokenTree>()?;
    }
    Ok(())
}

/// A flag takes no value: report `background = true` on the value, and skip it.
fn flag(input: ParseStream, key: &Ident, errors: &mut Errors) -> syn::Result<()> {
    if input.peek(Token![=]) {
        let eq: Token![=] = input.parse()?;
        let mut value = quote::quote!(#eq);
        while !input.is_empty() && !input.peek(Token![,]) {
            let tt: TokenTree = input.parse()?;
            value.extend([tt]);
        }
        errors.spanned(
            value,
            format!("`{key}` is a flag and takes no value: write `{key}` alone, or leave it out"),
        );
    }
    Ok(())
}

fn expect_eq(
    input: ParseStream,
    key: &Ident,
    example: &str,
    errors: &mut Errors,
) -> syn::Result<()> {
    if input.peek(Token![=]) {
        input.parse::<Token![=]>()?;
    } else {
        errors.spanned(key, format!("`{key}` takes a value: `{example}`"));
    }
    Ok(())
}

/// A literal written with a suffix (`10u8`, `"2s"x`): the attribute reads the value alone, so
/// the suffix would be ignored; say so instead.
fn no_suffix(lit: &impl LitSuffix, errors: &mut Errors) -> bool {
    let suffix = lit.suffix();
    if !suffix.is_empty() {
        errors.at(
            lit.span(),
            format!("remove the suffix `{suffix}`: the attribute reads the value alone"),
        );
    }
    suffix.is_empty()
}

/// The literals whose suffix [`no_suffix`] checks.
trait LitSuffix {
    fn suffix(&self) -> &str;
    fn span(&self) -> Span;
}

impl LitSuffix for LitStr {
    fn suffix(&self) -> &str {
        LitStr::suffix(self)
    }
    fn span(&self) -> Span {
        LitStr::span(self)
    }
}

impl LitSuffix for LitInt {
    fn suffix(&self) -> &str {
        LitInt::suffix(self)
    }
    fn span(&self) -> Span {
        LitInt::span(self)
    }
}

/// A value that is missing (`priority = ,`): reported on the option's name, once.
fn missing_value(input: ParseStream, key: &Ident, example: &str, errors: &mut Errors) -> bool {
    let missing = input.is_empty() || input.peek(Token![,]);
    if missing {
        errors.spanned(key, format!("`{key}` takes a value: `{example}`"));
    }
    missing
}

fn check_asset(lit: &LitStr, wildcard_ok: bool, errors: &mut Errors) {
    if !no_suffix(lit, errors) {
        return;
    }
    let value = lit.value();
    if value.trim().is_empty() {
        errors.spanned(lit, "the asset is empty: name a table, such as \"Contact\"");
    } else if value == "*" && !wildcard_ok {
        errors.spanned(lit, "`*` is not an asset here: name one");
    } else if value.trim() != value {
        errors.spanned(
            lit,
            "the asset has leading or trailing spaces: write the bare table name",
        );
    }
}

fn parse_priority(
    input: ParseStream,
    key: &Ident,
    errors: &mut Errors,
) -> syn::Result<Option<i32>> {
    let negative = input.parse::<Option<Token![-]>>()?.is_some();
    if missing_value(input, key, "priority = 10", errors) {
        return Ok(None);
    }
    if !input.peek(LitInt) {
        if !input.is_empty() && !input.peek(Token![,]) {
            let tt: TokenTree = input.parse()?;
            errors.spanned(&tt, "`priority` takes an integer, such as `priority = 10`");
            skip_value(input)?;
        }
        return Ok(None);
    }
    let lit: LitInt = input.parse()?;
    if !no_suffix(&lit, errors) {
        return Ok(None);
    }
    let value = lit
        .base10_parse::<i64>()
        .ok()
        .map(|m| if negative { -m } else { m });
    match value.and_then(|v| i32::try_from(v).ok()) {
        Some(v) => Ok(Some(v)),
        None => {
            errors.spanned(
                &lit,
                "`priority` must fit in an i32, from -2147483648 to 2147483647; lower runs first",
            );
            Ok(None)
        }
    }
}

/// The longest timeout an attribute takes: a day. A longer one is a typo, or a wish for no
/// timeout at all, which an `async fn` handler that may wait for ever should not have.
const MAX_TIMEOUT_MS: u64 = 24 * 3_600_000;

/// Why a timeout's text is not one.
#[derive(Debug, PartialEq, Eq)]
enum BadTimeout {
    /// Not a whole number and a unit.
    Form,
    /// Zero.
    Zero,
    /// Over [`MAX_TIMEOUT_MS`].
    TooLong,
}

/// `"250ms"`, `"2s"`, `"1m"`, `"1h"`: a positive whole number and a unit, at most a day.
fn parse_duration_ms(text: &str) -> Result<u64, BadTimeout> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or(BadTimeout::Form)?;
    let (number, unit) = text.split_at(split);
    if number.is_empty() {
        return Err(BadTimeout::Form);
    }
    let scale = match unit.trim() {
        "ms" => 1,
        "s" => 1_000,
        "m" | "min" => 60_000,
        "h" => 3_600_000,
        _ => return Err(BadTimeout::Form),
    };
    // Digits alone that do not fit in a u64 are too long a timeout, not a malformed one.
    let ms = number
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(scale))
        .ok_or(BadTimeout::TooLong)?;
    match ms {
        0 => Err(BadTimeout::Zero),
        ms if ms > MAX_TIMEOUT_MS => Err(BadTimeout::TooLong),
        ms => Ok(ms),
    }
}

fn parse_timeout(input: ParseStream, key: &Ident, errors: &mut Errors) -> syn::Result<Option<u64>> {
    if missing_value(input, key, "timeout = \"2s\"", errors) {
        return Ok(None);
    }
    if !input.peek(LitStr) {
        if !input.is_empty() && !input.peek(Token![,]) {
            let tt: TokenTree = input.parse()?;
            errors.spanned(
                &tt,
                "`timeout` takes a string such as \"250ms\", \"2s\" or \"1m\"",
            );
            skip_value(input)?;
        }
        return Ok(None);
    }
    let lit: LitStr = input.parse()?;
    if !no_suffix(&lit, errors) {
        return Ok(None);
    }
    let problem = match parse_duration_ms(&lit.value()) {
        Ok(ms) => return Ok(Some(ms)),
        Err(BadTimeout::Form) => {
            "write a positive whole number and a unit (ms, s, m, h), such as \"250ms\", \"2s\" \
             or \"1m\""
        }
        Err(BadTimeout::Zero) => {
            "a handler needs some time: write a positive number, such as \"250ms\" or \"2s\""
        }
        Err(BadTimeout::TooLong) => "the longest timeout is a day, \"24h\"",
    };
    errors.spanned(
        &lit,
        format!("invalid timeout {:?}: {problem}", lit.value()),
    );
    Ok(None)
}

fn parse_params(
    input: ParseStream,
    key: &Ident,
    params: &mut Vec<(String, String)>,
    errors: &mut Errors,
) -> syn::Result<()> {
    if !input.peek(syn::token::Paren) {
        errors.spanned(
            key,
            "`params` takes a list: `params(region = \"eu\", limit = \"5\")`",
        );
        return skip_value(input);
    }
    let content;
    syn::parenthesized!(content in input);
    while !content.is_empty() {
        // Any identifier, keywords included (`type = "..."`), read as the name it stands for
        // (`r#type` is `type`), which is what `ctx.param("type")` asks for.
        let name = content.call(Ident::parse_any)?.unraw();
        content.parse::<Token![=]>()?;
        if content.peek(LitStr) {
            let value: LitStr = content.parse()?;
            no_suffix(&value, errors);
            if params.iter().any(|(k, _)| name == k) {
                errors.spanned(&name, format!("param `{name}` is given twice"));
            } else {
                params.push((name.to_string(), value.value()));
            }
        } else {
            let tt: TokenTree = content.parse()?;
            errors.spanned(
                &tt,
                format!("param `{name}` takes a string value: `{name} = \"...\"`"),
            );
            while !content.is_empty() && !content.peek(Token![,]) {
                content.parse::<TokenTree>()?;
            }
        }
        if content.is_empty() {
            break;
        }
        content.parse::<Token![,]>()?;
    }
    Ok(())
}
