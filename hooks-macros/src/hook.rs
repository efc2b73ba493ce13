//! The hook attributes (`#[before_create("Contact")]`, ...): check the function, then emit it
//! unchanged together with its registration, which names the handler's adapter: for a plain sync
//! handler one of its attribute's generic adapters in hooks-core, paired with the handler's fn
//! pointer, and for the rest (async, background, wildcard) an adapter function the glue writes out.

use proc_macro2::{Delimiter, Ident, Span, TokenStream, TokenTree};
use quote::{ToTokens, format_ident, quote, quote_spanned};
use syn::parse::{Parse, ParseStream};
use syn::spanned::Spanned;
use syn::{FnArg, Signature, Type, Visibility};

use crate::args::{self, HookArgs};
use crate::errors::Errors;
use crate::text::Text;

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    Before,
    After,
}

/// Where an attribute's operation type comes from.
#[derive(Clone, Copy)]
pub(crate) enum OpSource {
    /// A data operation (`"Create"`, ...) on the payload's entity; the asset is required and must
    /// match the entity's table.
    Data(&'static str),
    /// A fixed operation under `ops` (`"users::Login"`); `true` when an asset (a channel) may be
    /// named.
    Fixed(&'static str, bool),
    /// The type named in the attribute: `before(MyOperation)`.
    Named,
    /// The custom event the payload is: `on_event`.
    Event,
}

/// What one attribute stands for: its name, its operation, the phase.
pub(crate) struct HookSpec {
    pub(crate) attr: &'static str,
    pub(crate) op: OpSource,
    pub(crate) phase: Phase,
}

/// A handler function as the attribute reads it: the first line of its doc comment and its
/// signature. The body is the user's own code, which the glue never looks into, so it is not
/// parsed, nor even read: the attribute parses the tokens before it ([`HandlerFn::read`]), and
/// emits the function as its tokens came. A large body then costs nothing here, where syn would
/// walk every one of its tokens through the compiler's bridge to build its buffer, and parse them.
struct HandlerFn {
    /// The first non-empty line of the doc comment (empty when there is none).
    doc: String,
    /// Whether the function is `#[deprecated]`: the glue that names it then allows that.
    deprecated: bool,
    sig: Signature,
}

impl HandlerFn {
    /// The handler in `item`: its last token tree must be a body in braces, and what comes before
    /// it attributes, a visibility and a signature. `None` for anything else.
    ///
    /// The attributes are stepped over here, token by token, and only the doc comment's text is
    /// read: the glue needs nothing else of them, the function is emitted with them as they came,
    /// and syn would parse each one's meta (in the debug build of this crate that cargo makes by
    /// default, ~2% of a dev rebuild of 1,000 handlers).
    fn read(item: &TokenStream) -> Option<HandlerFn> {
        let mut head: Vec<TokenTree> = item.clone().into_iter().collect();
        match head.pop() {
            Some(TokenTree::Group(body)) if body.delimiter() == Delimiter::Brace => {}
            _ => return None,
        }
        let mut doc = None;
        let mut deprecated = false;
        let mut rest = &head[..];
        while let [TokenTree::Punct(pound), TokenTree::Group(attr), tail @ ..] = rest
            && pound.as_char() == '#'
            && attr.delimiter() == Delimiter::Bracket
        {
            if doc.is_none() {
                doc = doc_text(attr);
            }
            deprecated |= matches!(
                attr.stream().into_iter().next(),
                Some(TokenTree::Ident(name)) if name == "deprecated"
            );
            rest = tail;
        }
        let HandlerSig(sig) = syn::parse2(rest.iter().cloned().collect()).ok()?;
        Some(HandlerFn {
            doc: doc.unwrap_or_default(),
            deprecated,
            sig,
        })
    }
}

/// The item type of `Vec<T>`, written as a plain path: a handler that reads a list takes it as
/// a slice (`&[T]`), as clippy's `ptr_arg` asks.
fn vec_item(ty: &Type) -> Option<&Type> {
    let Type::Path(path) = ty else { return None };
    let last = path.path.segments.last()?;
    let syn::PathArguments::AngleBracketed(args) = &last.arguments else {
        return None;
    };
    match (last.ident == "Vec", args.args.first(), args.args.len()) {
        (true, Some(syn::GenericArgument::Type(item)), 1) => Some(item),
        _ => None,
    }
}

/// What the payload of data operation `op` holds in `phase` when it can hold no record for a
/// wildcard handler to see (`None` when it can): a query, a bulk update's changes, a count.
fn no_records(op: &str, phase: Phase) -> Option<&'static str> {
    match (op, phase) {
        ("Find", Phase::Before) => Some("a find's query holds none"),
        ("BulkUpdate", Phase::Before) => Some("a bulk update's changes hold none"),
        ("BulkDelete", Phase::Before) => Some("a bulk delete's query holds none"),
        ("BulkUpdate" | "BulkDelete", Phase::After) => {
            Some("its result is a count (`Affected`), which holds none")
        }
        _ => None,
    }
}

/// The first non-empty line of the attribute `[doc = "..."]`; `None` for any other attribute.
fn doc_text(attr: &proc_macro2::Group) -> Option<String> {
    let mut tokens = attr.stream().into_iter();
    let (
        Some(TokenTree::Ident(name)),
        Some(TokenTree::Punct(eq)),
        Some(TokenTree::Literal(lit)),
        None,
    ) = (tokens.next(), tokens.next(), tokens.next(), tokens.next())
    else {
        return None;
    };
    if name != "doc" || eq.as_char() != '=' {
        return None;
    }
    // A doc comment's literal as rustc writes it: in quotes, most often with nothing escaped, so
    // its text is what lies between them. syn unescapes the others.
    let repr = lit.to_string();
    match repr.strip_prefix('"').and_then(|r| r.strip_suffix('"')) {
        Some(text) if !text.contains('\\') => first_line(text),
        _ => match syn::Lit::new(lit) {
            syn::Lit::Str(s) => first_line(&s.value()),
            _ => None,
        },
    }
}

/// The first line of `text` with something on it, trimmed.
fn first_line(text: &str) -> Option<String> {
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .map(str::to_owned)
}

/// A visibility and a signature, and nothing after them: the tokens of a handler between its
/// attributes and its body.
struct HandlerSig(Signature);

impl Parse for HandlerSig {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        input.parse::<Visibility>()?;
        let sig = input.parse()?;
        if !input.is_empty() {
            return Err(input.error("expected a function body"));
        }
        Ok(HandlerSig(sig))
    }
}

/// A checked handler signature.
struct Handler<'a> {
    func: &'a HandlerFn,
    payload: &'a Type,
    payload_mut: bool,
    /// The payload's reference as written (`&mut Contact`), for errors about its borrow.
    payload_ref: &'a syn::TypeReference,
    /// The type of the second parameter (`&Context`), when the handler takes one.
    context: Option<&'a Type>,
    is_async: bool,
    /// `#[before(Op)]` or `#[after(Op)]`: the checks name the operation, so they take it as their
    /// first parameter.
    named: bool,
}

pub(crate) fn expand(spec: &HookSpec, args: TokenStream, item: TokenStream) -> TokenStream {
    let mut errors = Errors::default();
    let leading = match spec.op {
        OpSource::Data(_) => args::Leading::Asset,
        OpSource::Fixed(_, true) => args::Leading::OptionalAsset,
        OpSource::Fixed(_, false) | OpSource::Event => args::Leading::Nothing,
        OpSource::Named => args::Leading::Operation,
    };
    let args = args::parse(spec.attr, leading, args, &mut errors);
    if let (Phase::Before, Some(bg)) = (spec.phase, &args.background) {
        errors.spanned(
            bg,
            format!(
                "a before handler cannot run in the background: it decides the call. Use an after \
                 handler: #[{}(..., background)]",
                spec.attr.replacen("before", "after", 1)
            ),
        );
    }
    let func = match HandlerFn::read(&item) {
        Some(func) => func,
        None => {
            let what = match syn::parse2::<syn::Item>(item.clone()) {
                Ok(syn::Item::Struct(_)) => "a struct",
                Ok(syn::Item::Enum(_)) => "an enum",
                Ok(syn::Item::Impl(_)) => "an `impl` block",
                Ok(syn::Item::Mod(_)) => "a module",
                Ok(syn::Item::Static(_) | syn::Item::Const(_)) => "a static or a constant",
                _ => "this item",
            };
            errors.at(
                first_span(&item),
                format!(
                    "#[{}] goes on a handler function, not on {what}: \
                     `fn check(record: &mut Contact) {{ ... }}`",
                    spec.attr
                ),
            );
            let errors = errors.into_compile_errors();
            return quote!(#item #errors);
        }
    };
    let handler = check(spec, &func, &mut errors);
    if let (OpSource::Data(op), Some(asset), Some(h)) = (spec.op, &args.asset, &handler)
        && asset.value() == "*"
    {
        if let Some(holds) = no_records(op, spec.phase) {
            errors.spanned(
                asset,
                format!(
                    "a wildcard handler sees records, and {holds}: #[{}(\"*\")] would never \
                     run. Name a table, as in #[{}(\"Contact\")]",
                    spec.attr, spec.attr
                ),
            );
        } else if !is_dyn_record(h.payload) {
            errors.spanned(
                h.payload,
                format!(
                    "a wildcard handler (#[{}(\"*\")]) sees every table through the dynamic view: \
                     take `&mut dyn Record`",
                    spec.attr
                ),
            );
        }
        if let Some(bg) = &args.background {
            errors.spanned(
                bg,
                "a wildcard handler cannot run in the background: it works on the records in \
                 place. Remove `background`, or name the table to get an owned copy",
            );
        }
    } else if let (OpSource::Data(_), Some(asset), Some(h)) = (spec.op, &args.asset, &handler)
        && is_dyn_record(h.payload)
    {
        errors.spanned(
            h.payload,
            format!(
                "`dyn Record` is the view of every table, for a wildcard handler: take the \
                 entity of {:?}, such as `&mut Contact` (or `&mut DynRecord` for a table with \
                 no Rust type), or write #[{}(\"*\")] to handle every table",
                asset.value(),
                spec.attr
            ),
        );
    }
    // A background handler gets a copy of the result of its own, after the call has returned.
    if let (Some(_), Some(h)) = (&args.background, &handler)
        && h.payload_mut
        && spec.phase == Phase::After
        && args.asset.as_ref().is_none_or(|asset| asset.value() != "*")
    {
        let (and, mutability, elem) = (
            &h.payload_ref.and_token,
            &h.payload_ref.mutability,
            &h.payload_ref.elem,
        );
        errors.spanned(
            quote!(#and #mutability),
            format!(
                "a background handler runs on its own copy of the result, after the call has \
                 returned: what it changes is lost. Take `&{}`",
                match vec_item(elem) {
                    Some(item) => format!("[{}]", compact(&quote!(#item).to_string())),
                    None => compact(&quote!(#elem).to_string()),
                }
            ),
        );
    }
    let complete = match spec.op {
        OpSource::Data(_) => args.asset.is_some(),
        OpSource::Named => args.op.is_some(),
        OpSource::Fixed(..) | OpSource::Event => true,
    };
    match handler {
        Some(handler) if complete && errors.is_empty() => {
            let glue = emit(spec, &args, &handler);
            quote!(#item #glue)
        }
        // Keep the function as written, so one mistake does not cascade into many.
        _ => {
            let errors = errors.into_compile_errors();
            quote!(#item #errors)
        }
    }
}

fn first_span(tokens: &TokenStream) -> Span {
    tokens
        .clone()
        .into_iter()
        .next()
        .map_or_else(Span::call_site, |t| t.span())
}

fn check<'a>(spec: &HookSpec, func: &'a HandlerFn, errors: &mut Errors) -> Option<Handler<'a>> {
    let sig = &func.sig;
    let attr = spec.attr;
    let a = article(attr);
    if let Some(c) = &sig.constness {
        errors.spanned(
            c,
            format!("{a} #[{attr}] handler cannot be a `const fn`: remove `const`"),
        );
    }
    if let syn::Safety::Unsafe(u) = &sig.safety {
        errors.spanned(
            u,
            format!(
                "{a} #[{attr}] handler cannot be `unsafe`: the runtime calls it with no safety \
                 contract. Remove `unsafe` (use an `unsafe` block inside if you need one)"
            ),
        );
    }
    if let Some(abi) = &sig.abi {
        errors.spanned(
            abi,
            format!(
                "{a} #[{attr}] handler cannot be `{}`: the runtime calls a Rust fn; remove the ABI",
                quote!(#abi)
            ),
        );
    }
    let lifetimes_only = sig
        .generics
        .params
        .iter()
        .all(|p| matches!(p, syn::GenericParam::Lifetime(_)));
    if !sig.generics.params.is_empty() && lifetimes_only && sig.generics.where_clause.is_none() {
        errors.spanned(
            &sig.generics,
            format!(
                "{a} #[{attr}] handler names no lifetimes: remove `{}` and let them be \
                 elided, as in `record: &mut Contact, ctx: &Context`",
                {
                    let generics = &sig.generics;
                    quote!(#generics).to_string().replace(' ', "")
                }
            ),
        );
    } else if let Some(clause) = &sig.generics.where_clause
        && sig.generics.params.is_empty()
    {
        errors.spanned(
            clause,
            format!(
                "{a} #[{attr}] handler cannot have a `where` clause: the attribute registers one \
                 function with the types it names; remove it"
            ),
        );
    } else if !sig.generics.params.is_empty() {
        errors.spanned(
            &sig.generics,
            format!(
                "{a} #[{attr}] handler cannot be generic: the attribute registers one function, so \
                 name the payload type, such as `&mut Contact`"
            ),
        );
    }
    if let Some(variadic) = &sig.variadic {
        errors.spanned(
            variadic,
            format!("{a} #[{attr}] handler cannot be variadic"),
        );
    }
    // A receiver is reported once and then set aside, so the parameters after it are checked as
    // the payload and the context they were meant to be.
    let mut inputs = Vec::new();
    for arg in &sig.inputs {
        match arg {
            FnArg::Receiver(r) => errors.spanned(
                r,
                format!(
                    "{a} #[{attr}] handler is a free function, not a method: remove `self` and \
                     move the function out of the `impl` block"
                ),
            ),
            FnArg::Typed(pat) => {
                if let Some(cfg) = pat
                    .attrs
                    .iter()
                    .find(|a| a.path().is_ident("cfg") || a.path().is_ident("cfg_attr"))
                {
                    errors.spanned(
                        cfg,
                        format!(
                            "{a} #[{attr}] handler's parameters cannot be configured out: the \
                             attribute reads them before `cfg` applies. Write two handlers, each \
                             under its own `#[cfg(...)]`"
                        ),
                    );
                }
                inputs.push((arg, peeled(&pat.ty)));
            }
        }
    }
    // `fn f(ctx: &Context, record: &mut Contact)`: said once, on the context, rather than as a
    // context that is not an entity and a payload that is not a context.
    if let [(ctx_arg, ctx_ty), (_, payload_ty)] = inputs.as_slice()
        && is_context(ctx_ty)
        && !is_context(payload_ty)
    {
        errors.spanned(
            ctx_arg,
            format!(
                "{a} #[{attr}] handler takes its payload first and the context second: swap \
                 the two parameters"
            ),
        );
        return None;
    }
    let mut inputs = inputs.into_iter();
    let payload = match inputs.next().map(|(_, ty)| ty) {
        None => {
            let hint = match (spec.op, spec.phase) {
                (OpSource::Event, _) => "the event, such as `event: &InvoicePaid`",
                (OpSource::Data(_), Phase::Before) => "the record, such as `record: &mut Contact`",
                (OpSource::Data(_), Phase::After) => {
                    "the record, such as `record: &mut Contact`, or the whole result, \
                     `result: &mut Result<Contact, HookError>`"
                }
                (_, Phase::Before) => "the operation's input, `input: &mut Input`",
                (_, Phase::After) => {
                    "the operation's output, `output: &mut Output`, or the whole result, \
                     `result: &mut Result<Output, HookError>`"
                }
            };
            errors.spanned(
                &sig.ident,
                format!("{a} #[{attr}] handler takes its payload first: {hint}"),
            );
            None
        }
        Some(Type::Reference(r)) => {
            if let Type::ImplTrait(it) = peeled(&r.elem) {
                errors.spanned(
                    it,
                    format!(
                        "{a} #[{attr}] handler cannot be generic: the attribute registers one \
                         function, so name the payload type, such as `&mut Contact`"
                    ),
                );
                None
            } else {
                Some((peeled(&r.elem), r))
            }
        }
        Some(other) => {
            errors.spanned(
                other,
                format!(
                    "{a} #[{attr}] handler borrows its payload: take `&mut {ty}` to change it, or \
                     `&{ty}` to read it",
                    ty = {
                        let inner = borrowed_for(other);
                        compact(&quote!(#inner).to_string())
                    }
                ),
            );
            None
        }
    };
    let mut context = None;
    if let Some((_, ty)) = inputs.next() {
        match ty {
            Type::Reference(r) if r.mutability.is_none() => context = Some(ty),
            Type::Reference(r) => errors.spanned(
                {
                    let (and, mutability) = (&r.and_token, &r.mutability);
                    quote!(#and #mutability)
                },
                "the context is shared by every handler of the call and is read-only: take \
                 `ctx: &Context`, not `&mut Context`",
            ),
            other => errors.spanned(
                other,
                "the second parameter is the call's context, borrowed: `ctx: &Context`",
            ),
        }
    }
    for (extra, _) in inputs {
        errors.spanned(
            extra,
            format!(
                "{a} #[{attr}] handler takes at most two parameters, the payload and `ctx: &Context`: \
                 remove this one (read shared state from the context's extensions)"
            ),
        );
    }
    let (payload, payload_ref) = payload?;
    Some(Handler {
        func,
        payload,
        payload_mut: payload_ref.mutability.is_some(),
        payload_ref,
        context,
        is_async: sig.asyncness.is_some(),
        named: matches!(spec.op, OpSource::Named),
    })
}

/// What a payload written by value or in a wrapper should borrow: the record itself, not the
/// `Box`, `Arc`, `Rc`, `Option` or reference around it.
fn borrowed_for(ty: &Type) -> &Type {
    match peeled(ty) {
        Type::Reference(r) => borrowed_for(&r.elem),
        Type::Path(p) if p.qself.is_none() => {
            let Some(last) = p.path.segments.last() else {
                return ty;
            };
            let wrapper = ["Box", "Arc", "Rc", "Option"]
                .iter()
                .any(|w| last.ident == w);
            match &last.arguments {
                syn::PathArguments::AngleBracketed(args) if wrapper && args.args.len() == 1 => {
                    match args.args.first() {
                        Some(syn::GenericArgument::Type(inner)) => borrowed_for(inner),
                        _ => ty,
                    }
                }
                _ => ty,
            }
        }
        other => other,
    }
}

/// Type tokens as they are written: `Box<Contact>`, not `Box < Contact >`.
fn compact(tokens: &str) -> String {
    let mut out = String::with_capacity(tokens.len());
    let mut chars = tokens.chars().peekable();
    while let Some(c) = chars.next() {
        if c == ' ' {
            let prev = out.chars().last();
            let next = chars.peek().copied();
            // A space stays only between two words (`dyn Record`, `mut Contact`) and after a
            // comma.
            let word = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
            if (word(prev) && word(next))
                || prev == Some(',')
                || (prev == Some('+') || next == Some('+'))
            {
                out.push(' ');
            }
            continue;
        }
        out.push(c);
    }
    out
}

/// `ty` without the invisible group a macro's `$t:ty` fragment wraps it in, or parentheses:
/// `&mut Contact` passed through `macro_rules!` is read as `&mut Contact`.
fn peeled(ty: &Type) -> &Type {
    match ty {
        Type::Group(g) => peeled(&g.elem),
        Type::Paren(p) => peeled(&p.elem),
        other => other,
    }
}

/// Whether `ty` reads as the call's context: `&Context`, by any path.
fn is_context(ty: &Type) -> bool {
    match peeled(ty) {
        Type::Reference(r) => match peeled(&r.elem) {
            Type::Path(p) => {
                p.qself.is_none() && p.path.segments.last().is_some_and(|s| s.ident == "Context")
            }
            _ => false,
        },
        _ => false,
    }
}

/// The first non-empty line of the doc comment in `attrs`.
pub(crate) fn doc_of(attrs: &[syn::Attribute]) -> String {
    for attr in attrs {
        if !attr.path().is_ident("doc") {
            continue;
        }
        if let syn::Meta::NameValue(nv) = &attr.meta
            && let syn::Expr::Lit(syn::ExprLit {
                lit: syn::Lit::Str(s),
                ..
            }) = &nv.value
            && let Some(line) = first_line(&s.value())
        {
            return line;
        }
    }
    String::new()
}

/// A piece of the glue that is one token, or a few: one token is pushed as it is, or written as
/// text ([`Text`]), where a token stream interpolated into another costs a trip through the
/// compiler's bridge.
enum Glue {
    Ident(Ident),
    /// A string literal's value.
    Str(String),
    Tokens(TokenStream),
}

impl ToTokens for Glue {
    fn to_tokens(&self, tokens: &mut TokenStream) {
        match self {
            Glue::Ident(i) => i.to_tokens(tokens),
            Glue::Str(s) => proc_macro2::Literal::string(s).to_tokens(tokens),
            Glue::Tokens(t) => t.to_tokens(tokens),
        }
    }
}

/// The glue of a checked handler.
fn emit(spec: &HookSpec, args: &HookArgs, h: &Handler<'_>) -> TokenStream {
    let name = &h.func.sig.ident;
    // A raw identifier's id is the name it stands for: `fn r#type` is `module::type`.
    let name_str = syn::ext::IdentExt::unraw(name).to_string();
    let payload = h.payload;
    let payload_str = quote!(#payload).to_string();
    let doc = &h.func.doc;
    let payload_span = located(payload.span());
    // Where a problem with the operation lands: on the operation type of `before(Op)`, else on the
    // payload (whose type decides the operation of data and event handlers). Every token that
    // names the operation carries this span, so rustc reports such a problem once.
    let anchor = match spec.op {
        OpSource::Named => args
            .op
            .as_ref()
            .map_or_else(Span::call_site, |op| located(op.span())),
        OpSource::Data(_) | OpSource::Event | OpSource::Fixed(..) => payload_span,
    };
    // The runtime's paths, through one alias in the glue's block (`__p`): three tokens a path
    // instead of eight, and the glue names it some thirty times.
    // An `Ident`, not a `TokenStream`: interpolating a stream into `quote!` flushes the tokens
    // gathered so far through the compiler's bridge (~4,000 instructions each time in a debug
    // build of this crate, as cargo builds proc-macros by default), and the glue names `__p`
    // some twenty times; an ident is one token pushed.
    let p = Ident::new("__p", anchor);
    let op_path = quote_spanned!(anchor=> <__HooksOp as #p::Operation>);

    // The operation, the asset, the items that check them, and for a data operation the
    // constructor that checks the asset, with its first arguments.
    let (op, asset, checks, check) = match spec.op {
        OpSource::Data(op) => {
            let op_ident = format_ident!("{}", op, span = anchor);
            let asset = args.asset.as_ref().map(|a| a.value()).unwrap_or_default();
            let asset_span = args
                .asset
                .as_ref()
                .map_or_else(Span::call_site, |a| a.span());
            // The entity, named through `EntityOf` inside the operation's alias: a payload that
            // is no entity is reported there, and an alias of its own would be one more item per
            // handler for the compiler.
            let checks = None;
            // The constructor checks the asset against the entity's table, at compile time (the
            // registration's static is evaluated then), by the asset's key, computed here, against
            // the operation's (`Registration::of_data`); it tracks its caller, so a failed check
            // is reported in the glue, not inside hooks-core.
            let mut key = proc_macro2::Literal::u128_suffixed(asset_key(&asset));
            key.set_span(anchor);
            let check = (asset_span, key);
            let op = quote_spanned!(anchor=>
                #p::ops::data::#op_ident<<#payload as #p::EntityOf>::Entity>
            );
            (op, Glue::Str(asset), checks, Some(check))
        }
        OpSource::Fixed(path, _) => {
            let path: syn::Path = match syn::parse_str(path) {
                Ok(path) => path,
                Err(e) => return e.to_compile_error(),
            };
            (
                quote!(#p::ops::#path),
                Glue::Tokens(named_asset(&op_path, args)),
                None,
                None,
            )
        }
        OpSource::Named => {
            let op = &args.op;
            let is_a = quote_spanned!(anchor=> #p::diag::IsOperation);
            let check = is_a_check(anchor, quote!(#op), &is_a);
            let op = quote_spanned!(anchor=> <#op as #is_a>::Is);
            (
                op,
                Glue::Tokens(named_asset(&op_path, args)),
                Some(check),
                None,
            )
        }
        OpSource::Event => {
            let is_a = quote_spanned!(anchor=> #p::diag::IsEvent);
            let check = is_a_check(anchor, quote!(#payload), &is_a);
            let op = quote_spanned!(anchor=> #p::ops::events::Emit<<#payload as #is_a>::Is>);
            (
                op,
                Glue::Tokens(quote_spanned!(anchor=> #op_path::ASSET)),
                Some(check),
                None,
            )
        }
    };

    let output_ty = quote_spanned!(anchor=> #op_path::Output);
    let wildcard = matches!(spec.op, OpSource::Data(_))
        && args.asset.as_ref().is_some_and(|a| a.value() == "*");

    // A plain sync handler takes one of its attribute's generic adapters (in `hooks_core::diag`),
    // named with the handler itself; the rest get an adapter function of their own.
    let generic = generic_shape(h).filter(|_| !wildcard && args.background.is_none());
    // A generic adapter's constructor checks the return type as a bound, and its glue names the
    // check only for a type other than `Result<(), HookError>` (see `generic_registration`): the
    // import is left out when nothing names it, one item fewer for the compiler per handler.
    let names_return = generic.is_none()
        || matches!(&h.func.sig.output, syn::ReturnType::Type(_, ty) if !is_unit_result(ty));
    let names = check_names(
        spec,
        h,
        &p,
        anchor,
        wildcard,
        generic.is_some(),
        names_return,
    );
    // The operation, first parameter of the checks of `before(Op)` and `after(Op)`.
    let op_arg = h.named.then(|| quote_spanned!(anchor=> __HooksOp,));
    // Idents rather than token streams where the glue can spell the rest out: each stream
    // interpolated into another costs a trip through the compiler's bridge (see `p`).
    let phase = match spec.phase {
        Phase::Before => Ident::new("Before", anchor),
        Phase::After => Ident::new("After", anchor),
    };
    let kind = Ident::new(if h.is_async { "Async" } else { "Sync" }, anchor);
    // An after handler's: the same path as the adapter's, so a payload the operation does not
    // have is reported once, on the payload. With a generic adapter, whose constructor has the
    // same check as a bound, it comes first, bound to a name, so that rustc reports the path's
    // failure (plainly) and drops the bound's (which would add a note on where the bound is).
    let (on_error, on_error_first) = match spec.phase {
        _ if wildcard => (Glue::Ident(Ident::new("false", Span::call_site())), None),
        Phase::Before => (Glue::Ident(Ident::new("false", Span::call_site())), None),
        Phase::After => {
            // A generic adapter's glue imports no check (see `check_names`): it names this one by
            // its path.
            let takes = match generic {
                Some(_) => {
                    let diag = format_ident!("{}", spec.attr, span = anchor);
                    quote_spanned!(payload_span=> #p::diag::#diag::Takes)
                }
                None => quote_spanned!(payload_span=> __HooksAfterPayload),
            };
            let path = quote_spanned! {payload_span=>
                <#payload as #takes<#op_arg #output_ty>>::__ON_ERROR
            };
            if generic.is_some() {
                let name = Ident::new("__hooks_on_error", anchor);
                let first = quote_spanned!(anchor=> let #name: bool = #path;);
                (Glue::Ident(name), Some(first))
            } else {
                (Glue::Tokens(path), None)
            }
        }
    };
    let context = h.context.is_some();

    // The attribute's file and line, as `file!()` and `line!()` would give them in the glue, as
    // literals: two macro expansions fewer per handler for the compiler. (`unwrap` here is
    // proc_macro2's conversion to the compiler's span, which exists inside a proc-macro, where
    // this runs; it involves no `Option`.)
    let here = Span::call_site().unwrap();
    // What the attribute writes down about the handler: a tuple struct, a value rather than a
    // call in the registration's static. Its fields are values no error is reported on, written
    // as text ([`Text`]); what a user wrote, or what names the operation, keeps its tokens.
    let mut fields = Text::default();
    fields
        .push("::core::concat!(::core::module_path!(), \"::\", ")
        .str(&name_str)
        .push("), ");
    match &asset {
        Glue::Str(s) => fields.str(s),
        other => fields.tokens(other),
    };
    fields.push(", ");
    match &on_error {
        Glue::Ident(i) => fields.value(i),
        other => fields.tokens(other),
    };
    fields.push(", ").value(context).push(", ");
    site_options(&mut fields, args);
    fields
        .push(", ")
        .str(&here.file())
        .push(", ")
        .value(u32::try_from(here.line()).unwrap_or(u32::MAX))
        .push("u32, ")
        .str(doc)
        .push(", ")
        .str(&payload_str);
    let fields = fields.finish();
    let site = quote_spanned!(anchor=> #p::Site(#fields));
    // The registration's static evaluates one call of a `const fn`: for a plain sync handler its
    // generic adapter's constructor, which also makes the registration and, for a data operation,
    // checks the asset; for the rest `Registration::new`, wrapped in `Registration::of_data` for a
    // data operation. The call that checks the asset tracks its caller, and its path and
    // parentheses keep the asset's own span, not the macro code's (`located`): a failed check is
    // then reported on the asset, with no note from inside hooks-core. That static has the same
    // name under either collection backend, and so has the check's error.
    let (registration, adapter) = match generic {
        Some(shape) => {
            let (call_span, key) = match &check {
                Some((at, key)) => (*at, key.clone()),
                None => (anchor, proc_macro2::Literal::u128_unsuffixed(0)),
            };
            let registration = generic_registration(
                spec,
                shape,
                h,
                &p,
                op_arg.as_ref(),
                &output_ty,
                anchor,
                (call_span, key),
                (on_error_first, &site),
            );
            (registration, None)
        }
        None => {
            let (sig_ty, adapter) = own_adapter(
                spec,
                args,
                h,
                &p,
                op_arg.as_ref(),
                &output_ty,
                anchor,
                wildcard,
            );
            let new = quote_spanned! {anchor=>
                #p::Registration::new::<__HooksOp>(
                    #site,
                    #p::Phase::#phase,
                    #p::Kind::#kind,
                    #p::Adapter::own(&(__hooks_adapter as #sig_ty)),
                )
            };
            let registration = match check {
                Some((at, key)) => {
                    // The operation keeps the payload's span, as every other mention of it: a
                    // payload that is no entity is then reported once.
                    let op = quote_spanned!(anchor=> __HooksOp);
                    let attr = spec.attr;
                    quote_spanned!(at=> #p::Registration::of_data::<#op>(#attr, #key, #new))
                }
                None => new,
            };
            let registration = quote_spanned!(anchor=> #p::RegistrationCell::new(#registration));
            (registration, Some(adapter))
        }
    };
    // Spanned on the name: a handler written inside an `impl` block (where the macro cannot see
    // it is) is then reported on the function, next to "cannot find function".
    let konst = quote_spanned!(located(name.span())=> const _: () =);
    // The glue names the handler; a deprecated one is still the handler.
    let konst = if h.func.deprecated {
        quote!(#[allow(deprecated)] #konst)
    } else {
        konst
    };
    let glue = quote_spanned! {anchor=>
        #konst {
            use ::hooks::__private as __p;
            type __HooksOp = #op;
            #checks
            #names
            #adapter
            #p::register!(#registration);
        };
    };
    glue
}

/// The site's options, as text: the shared constant when the attribute sets none, as most do.
fn site_options(text: &mut Text, args: &HookArgs) {
    if args.priority == 0
        && args.background.is_none()
        && args.timeout_ms.is_none()
        && !args.client_only
        && args.params.is_empty()
    {
        text.push("__p::Options::DEFAULT");
        return;
    }
    let mode = if args.background.is_some() {
        "Background"
    } else {
        "Blocking"
    };
    text.push("__p::Options { priority: ")
        .value(args.priority)
        .push("i32, mode: __p::Mode::")
        .push(mode)
        .push(", timeout: ");
    match args.timeout_ms {
        Some(ms) => text
            .push("__p::Option::Some(__p::Duration::from_millis(")
            .value(ms)
            .push("u64))"),
        None => text.push("__p::Option::None"),
    };
    text.push(", client_only: ")
        .value(args.client_only)
        .push(", params: &[");
    for (k, v) in &args.params {
        text.push("(").str(k).push(", ").str(v).push("), ");
    }
    text.push("] }");
}

/// The adapter function of a handler that takes no generic adapter (see [`generic_shape`]), and
/// its type: async handlers, background and wildcard ones, and those whose signature names a
/// lifetime, `impl Trait` or a context type not written `&Context`.
#[allow(clippy::too_many_arguments)]
fn own_adapter(
    spec: &HookSpec,
    args: &HookArgs,
    h: &Handler<'_>,
    p: &Ident,
    op_arg: Option<&TokenStream>,
    output_ty: &TokenStream,
    anchor: Span,
    wildcard: bool,
) -> (TokenStream, TokenStream) {
    if wildcard {
        return wildcard_adapter(p, h, anchor);
    }
    let payload = h.payload;
    let payload_span = located(payload.span());
    let op_path = quote_spanned!(anchor=> <__HooksOp as #p::Operation>);
    let input_ty = quote_spanned!(anchor=> #op_path::Input);
    let result_ty = quote_spanned!(anchor=> #p::Result<#output_ty, #p::HookError>);
    let ctx = local("ctx", anchor);
    let ctx_name = if h.context.is_some() {
        ctx.clone()
    } else {
        local("_ctx", anchor)
    };
    let (input, early, result) = (
        local("input", anchor),
        local("early", anchor),
        local("result", anchor),
    );
    let ctx = quote!(#ctx);
    match spec.phase {
        Phase::Before => {
            let take = quote_spanned! {payload_span=>
                <#payload as __HooksPayload<#op_arg _>>::__take(#input)
            };
            // A sync adapter hands its verdict on as a `bool`, with an answer or a rejection
            // in the `early` slot (see `SyncBefore`), and takes its three arguments behind
            // one pointer (`BeforeArgs`), which saves its loop two moves per handler; an
            // async one puts the handler's future into the dispatcher's slot (see
            // `AsyncBefore`).
            let (ty, adapter) = if h.is_async {
                let invoke = invocation(h, take, ctx.clone(), anchor);
                let (ret, convert) = conversion(h, Some(output_ty), anchor);
                let settle = quote_spanned!(anchor=> #p::settle_async(#convert, #early));
                let first = first_poll(invoke, ret, settle, anchor);
                let (fut, cx) = (local("fut", anchor), local("cx", anchor));
                let adapter = quote_spanned! {anchor=>
                    fn __hooks_adapter<'a, 's, 'c, 'w>(
                        #input: &'a mut #input_ty,
                        #ctx_name: &'a #p::Context,
                        #early: &'a mut #p::Early<#output_ty>,
                        #fut: #p::Pin<&'s mut #p::FutureSlot<'a, #p::Result<bool, #p::HookError>>>,
                        #cx: &'c mut #p::TaskContext<'w>,
                    ) -> #p::Polled
                    {
                        #p::Polled::before(#first)
                    }
                };
                (quote_spanned!(anchor=> #p::AsyncBefore<__HooksOp>), adapter)
            } else {
                let call = call(h, take, ctx.clone(), Some(output_ty), anchor);
                let args = local("args", anchor);
                let adapter = quote_spanned! {anchor=>
                    fn __hooks_adapter(
                        #args: &mut #p::BeforeArgs<'_, #input_ty, #output_ty>,
                        _: &'static #p::Registration,
                    ) -> bool {
                        let (#input, #ctx_name, #early) = #args.parts();
                        #p::settle(#call, #early)
                    }
                };
                (quote_spanned!(anchor=> #p::SyncBefore<__HooksOp>), adapter)
            };
            (ty, adapter)
        }
        Phase::After if args.background.is_some() => {
            background_adapter(p, h, &result_ty, output_ty, anchor)
        }
        Phase::After => {
            let payload_arg = local("payload", anchor).into_token_stream();
            let project = quote_spanned! {payload_span=>
                <#payload as __HooksAfterPayload<#op_arg #output_ty>>::__project(#result)
            };
            let (ty, out, ret, body) = if h.is_async {
                // No payload (the result is not the one the handler takes): done at once, with
                // nothing put in the slot.
                let invoke = invocation(h, payload_arg.clone(), ctx.clone(), anchor);
                let (ret, convert) = conversion(h, None, anchor);
                let first = first_poll(invoke, ret, convert, anchor);
                let (fut, cx) = (local("fut", anchor), local("cx", anchor));
                (
                    quote_spanned!(anchor=> #p::AsyncAfter<__HooksOp>),
                    quote_spanned!(anchor=>
                        #fut: #p::Pin<&'s mut #p::FutureSlot<'a, #p::Result<(), #p::HookError>>>,
                        #cx: &'c mut #p::TaskContext<'w>,),
                    quote_spanned!(anchor=> #p::Polled),
                    quote_spanned! {anchor=>
                        #p::Polled::after(match #project {
                            #p::Option::Some(#payload_arg) => #first,
                            #p::Option::None => #p::Poll::Ready(#p::Result::Ok(())),
                        })
                    },
                )
            } else {
                let call = call(h, payload_arg.clone(), ctx.clone(), None, anchor);
                (
                    quote_spanned!(anchor=> #p::SyncAfter<__HooksOp>),
                    quote_spanned!(anchor=> _: &'static #p::Registration,),
                    quote_spanned!(anchor=> #p::Result<(), #p::HookError>),
                    quote_spanned! {anchor=>
                        match #project {
                            #p::Option::Some(#payload_arg) => #call,
                            #p::Option::None => #p::Result::Ok(()),
                        }
                    },
                )
            };
            let adapter = quote_spanned! {anchor=>
                fn __hooks_adapter<'a, 's, 'c, 'w>(
                    #result: &'a mut #result_ty,
                    #ctx_name: &'a #p::Context,
                    #out
                ) -> #ret
                {
                    #body
                }
            };
            (ty, adapter)
        }
    }
}

/// The registration of a plain sync handler, by its generic adapter's constructor, from the
/// attribute's module of `hooks_core::diag`, named with the handler: `shape` is the handler's (see
/// [`generic_shape`]), `key` the asset's key (`0` for an operation that checks no asset), on
/// whose span (`call_span`) a failed asset check is reported, and `site` what the attribute
/// writes down about the handler. The constructor takes the handler as a fn pointer of its own
/// signature and pairs it with the adapter, one function for every handler of the shape, which
/// calls it through that pointer; the pointer is also what the fast loops call when the signature
/// is one of the operation's bare shapes (`Direct` in hooks-core); a before handler that may
/// answer the call takes the constructor that names the loop of such handlers, and one whose
/// result is its own (its own error type, a `Flow` alone: see [`Written`]) the constructor
/// that names the loop of its output and result types. The constructor's
/// bounds are the attribute's checks of the payload and
/// return types, which the glue names with the handler's own tokens. The same checks come first as
/// paths of their own, as an adapter of the handler's own would call them: rustc reports a failed
/// check there, plainly, and drops the constructor's report of it, which is the same check on the
/// same token (with a note on where the bound is). An after handler's payload is checked first by
/// its registration's `on_error`, and a return type written `Result<(), HookError>` passes every
/// attribute's check, so neither is named twice.
#[allow(clippy::too_many_arguments)]
fn generic_registration(
    spec: &HookSpec,
    shape: &str,
    h: &Handler<'_>,
    p: &Ident,
    op_arg: Option<&TokenStream>,
    output_ty: &TokenStream,
    anchor: Span,
    (call_span, key): (Span, proc_macro2::Literal),
    (on_error_first, site): (Option<TokenStream>, &TokenStream),
) -> TokenStream {
    let name = &h.func.sig.ident;
    let payload = h.payload;
    let payload_span = located(payload.span());
    let diag = format_ident!("{}", spec.attr, span = anchor);
    // A result of its own (its own error type, a `Flow` alone) brings the loop of its result
    // type (`owns_*`), in either phase; so does a result the tokens do not tell, which the table
    // may yet find to be a bare shape's (`either_*`).
    let output = &h.func.sig.output;
    let written = match output {
        syn::ReturnType::Default => Written::Bare,
        syn::ReturnType::Type(_, ty) => written(ty),
    };
    // An after handler's payload is checked before this, by the registration's `on_error`.
    let (make, payload_check) = match spec.phase {
        Phase::Before => {
            let input_ty = quote_spanned!(anchor=> <__HooksOp as #p::Operation>::Input);
            // A handler that may answer the call comes with the loop that runs such handlers
            // for its output type, which only such handlers make the service compile.
            let verb = match written {
                Written::Own => "owns",
                Written::Unread => "either",
                Written::Bare if answers(output) => "answers",
                Written::Bare => "before",
            };
            (
                format_ident!("{}_{}", verb, shape, span = anchor),
                Some(quote_spanned!(payload_span=>
                    let _ = <#payload as #p::diag::#diag::Takes<#op_arg #input_ty>>::__take;)),
            )
        }
        Phase::After => {
            let verb = match written {
                Written::Own => "owns",
                Written::Unread => "either",
                Written::Bare => "after",
            };
            (
                format_ident!("{}_{}", verb, shape, span = anchor),
                on_error_first,
            )
        }
    };
    // `Result<(), HookError>`, which every attribute accepts, is not checked twice. The return
    // type is interpolated as itself (its own tokens pushed), not through a stream of its own.
    let (ret, return_check) = match &h.func.sig.output {
        syn::ReturnType::Default => (Ret::Unit(anchor), None),
        syn::ReturnType::Type(_, ty) => (
            Ret::Type(ty),
            (!is_unit_result(ty)).then(|| {
                let generic = match spec.phase {
                    Phase::Before => Some(quote!(<#op_arg #output_ty>)),
                    Phase::After => op_arg.map(|op| quote!(<#op>)),
                };
                quote_spanned!(located(ty.span())=>
                    let _ = <#ty as __HooksReturn #generic>::__into;)
            }),
        ),
    };
    // The operation keeps the payload's span, as every other mention of it: a payload that is no
    // entity is then reported once.
    let op = Ident::new("__HooksOp", anchor);
    let call = quote_spanned! {call_span=>
        #p::diag::#diag::#make::<#op, #payload, #ret>(#name, #key, #site)
    };
    quote_spanned! {anchor=>
        {
            #payload_check
            #return_check
            #call
        }
    }
}

/// A handler's return type in its generic adapter's constructor: `()` when it writes none.
enum Ret<'a> {
    Unit(Span),
    Type(&'a Type),
}

impl ToTokens for Ret<'_> {
    fn to_tokens(&self, tokens: &mut TokenStream) {
        match self {
            Ret::Unit(span) => {
                let mut unit = proc_macro2::Group::new(
                    proc_macro2::Delimiter::Parenthesis,
                    TokenStream::new(),
                );
                unit.set_span(*span);
                tokens.extend([proc_macro2::TokenTree::Group(unit)]);
            }
            Ret::Type(ty) => ty.to_tokens(tokens),
        }
    }
}

/// Whether a return type is written `Result<(), HookError>`.
fn is_unit_result(ty: &Type) -> bool {
    let Type::Path(path) = ty else {
        return false;
    };
    let Some(last) = path.path.segments.last() else {
        return false;
    };
    let syn::PathArguments::AngleBracketed(args) = &last.arguments else {
        return false;
    };
    last.ident == "Result"
        && args.args.len() == 2
        && matches!(args.args.first(),
            Some(syn::GenericArgument::Type(Type::Tuple(t))) if t.elems.is_empty())
        && matches!(args.args.get(1),
            Some(syn::GenericArgument::Type(Type::Path(e))) if last_ident_is(e, "HookError"))
}

/// The checks through which the adapter takes the payload and the context and converts the return
/// value, as the names the glue uses: the attribute's own traits in `hooks_core::diag`, whose
/// messages name the attribute, so that a mismatch is reported once, in its words.
fn check_names(
    spec: &HookSpec,
    h: &Handler<'_>,
    p: &Ident,
    anchor: Span,
    wildcard: bool,
    generic: bool,
    names_return: bool,
) -> Option<TokenStream> {
    let diag = format_ident!("{}", spec.attr, span = anchor);
    let returns = match wildcard {
        _ if !names_return => None,
        true => Some(quote_spanned!(anchor=> WildReturn as __HooksReturn,)),
        false => Some(quote_spanned!(anchor=> Return as __HooksReturn,)),
    };
    // A generic adapter's glue names its payload check by its path, once: an import would be one
    // more item per handler for the compiler.
    let takes = match spec.phase {
        _ if wildcard || generic => None,
        Phase::Before => Some(quote_spanned!(anchor=> Takes as __HooksPayload)),
        Phase::After => Some(quote_spanned!(anchor=> Takes as __HooksAfterPayload)),
    };
    // A generic adapter takes the context as `&Context`, which its handler's type says.
    let context = h
        .context
        .filter(|_| !generic)
        .map(|_| quote_spanned!(anchor=> use #p::diag::IsContext as __HooksContext;));
    // `None` rather than an empty stream when there is nothing to name (a plain sync handler):
    // even an empty stream costs the glue a trip through the compiler's bridge.
    let import = (returns.is_some() || takes.is_some())
        .then(|| quote_spanned!(anchor=> use #p::diag::#diag::{#returns #takes};));
    match (import, context) {
        (None, None) => None,
        (import, context) => Some(quote_spanned! {anchor=>
            #import
            #context
        }),
    }
}

/// The key of an asset's name for the compile-time asset check, as `hooks_core`'s `asset_key`
/// computes it from the entity's table: up to fifteen bytes, the first lowest, with the length in
/// the top byte; a longer name is `u128::MAX`, which the check compares by its bytes.
fn asset_key(name: &str) -> u128 {
    let bytes = name.as_bytes();
    if bytes.len() > 15 {
        return u128::MAX;
    }
    bytes
        .iter()
        .enumerate()
        .fold((bytes.len() as u128) << 120, |key, (i, &b)| {
            key | (u128::from(b) << (8 * i))
        })
}

/// A span at `span`'s place in the source that resolves, and counts for lints, as the macro's own
/// code: errors land on the user's token, while rustc and clippy lints skip the generated code.
fn located(span: Span) -> Span {
    span.resolved_at(Span::call_site())
}

/// How a plain sync handler takes its payload and context, when it takes them in one of the ways
/// the generic adapters and `Direct` (both in hooks-core) are written for: `"mut"` (`&mut P`),
/// `"ref"` (`&P`), `"mut_ctx"` or `"ref_ctx"` (the same, then `&Context`); the glue names the
/// payload and return types with the handler's own tokens. `None` for every other handler: an async one, one with `impl` or a
/// lifetime in its payload or return type, and one whose context is not written `&Context` (which
/// its own adapter's check then reports, once).
fn generic_shape(h: &Handler<'_>) -> Option<&'static str> {
    let sig = &h.func.sig;
    if h.is_async {
        return None;
    }
    if let syn::ReturnType::Type(_, ret) = &sig.output
        && !plain_type(ret, true)
    {
        return None;
    }
    if !plain_type(h.payload, false) {
        return None;
    }
    let ctx = match h.context {
        None => false,
        Some(Type::Reference(r))
            if r.mutability.is_none()
                && r.lifetime.is_none()
                && matches!(peeled(&r.elem), Type::Path(p)
                    if p.qself.is_none()
                        && p.path.segments.last().is_some_and(|s|
                            s.ident == "Context" && s.arguments.is_none())) =>
        {
            true
        }
        Some(_) => return None,
    };
    Some(match (h.payload_mut, ctx) {
        (true, false) => "mut",
        (false, false) => "ref",
        (true, true) => "mut_ctx",
        (false, true) => "ref_ctx",
    })
}

/// What a handler's return type is, as far as its tokens tell.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Written {
    /// One of the bare shapes' results: `()`, `Result<(), HookError>` or
    /// `Result<Flow<O>, HookError>`. The shared loops call such a handler as itself.
    Bare,
    /// A result of its own: `Flow<..>` alone, `Result<T, ..>` with any `T` but `()` or a
    /// `Flow<..>`, or `Result<_, E>` with an error type named otherwise than `HookError` (a
    /// service's own error type). The shared loops never call such a handler as itself, so it
    /// brings a loop compiled for its result type (`owns_*` in `hooks_core::diag`), which runs a
    /// slot whose handlers all return that type.
    Own,
    /// A type the tokens do not tell: an alias (`-> MyResult`, `-> crate::Result<()>`, whose error
    /// type is the alias's), or a type from a macro's fragment. It may be anything, so the handler
    /// brings the loop of its result as an [`Own`](Written::Own) one does, and the table, which
    /// sees the type, takes it as a bare shape instead if it turns out to be one (`either_*`).
    Unread,
}

/// What the handler's return type `ret` is written as (see [`Written`]).
fn written(ret: &Type) -> Written {
    let path = match ret {
        Type::Path(path) => path,
        // `-> ()`, written out; any other tuple is no handler's result.
        Type::Tuple(t) if t.elems.is_empty() => return Written::Bare,
        // A type from a `macro_rules!` fragment, or in parentheses.
        Type::Group(g) => return written(&g.elem),
        Type::Paren(p) => return written(&p.elem),
        _ => return Written::Own,
    };
    let Some(last) = path.path.segments.last() else {
        return Written::Unread;
    };
    if last.ident == "Flow" {
        return Written::Own;
    }
    if last.ident != "Result" {
        return Written::Unread;
    }
    let syn::PathArguments::AngleBracketed(args) = &last.arguments else {
        return Written::Unread;
    };
    let ok = match args.args.first() {
        Some(syn::GenericArgument::Type(Type::Tuple(t))) => t.elems.is_empty(),
        Some(syn::GenericArgument::Type(Type::Path(ok))) => last_ident_is(ok, "Flow"),
        _ => false,
    };
    // The error type: only `HookError` fits a bare shape; an alias with one parameter
    // (`crate::Result<()>`) names its own.
    match args.args.iter().nth(1) {
        Some(syn::GenericArgument::Type(Type::Path(e))) if !last_ident_is(e, "HookError") => {
            Written::Own
        }
        Some(syn::GenericArgument::Type(Type::Path(_))) if ok => Written::Bare,
        Some(syn::GenericArgument::Type(Type::Path(_))) => Written::Own,
        _ if !ok => Written::Own,
        _ => Written::Unread,
    }
}

/// Whether a handler's return type is written `Result<Flow<..>, ..>`: the shape of a before handler
/// that may answer the call (see [`written`] for the rest of its check).
fn answers(ret: &syn::ReturnType) -> bool {
    fn flow(ty: &Type) -> bool {
        match ty {
            Type::Group(g) => flow(&g.elem),
            Type::Paren(p) => flow(&p.elem),
            Type::Path(path) => path.path.segments.last().is_some_and(|last| {
                last.ident == "Result"
                    && matches!(&last.arguments, syn::PathArguments::AngleBracketed(args)
                        if matches!(args.args.first(),
                            Some(syn::GenericArgument::Type(Type::Path(ok)))
                                if last_ident_is(ok, "Flow")))
            }),
            _ => false,
        }
    }
    matches!(ret, syn::ReturnType::Type(_, ty) if flow(ty))
}

/// Whether the last segment of a path type is `name`.
fn last_ident_is(ty: &syn::TypePath, name: &str) -> bool {
    ty.path.segments.last().is_some_and(|s| s.ident == name)
}

/// Whether a type names no lifetime anywhere (elided ones are fine) and, when `no_impl`, no
/// `impl Trait`: what a generic adapter's fn pointer type can be written with. Walks the syn tree:
/// printing the type to tokens to scan them would cost a trip through the compiler's bridge per
/// type, which a debug build of this crate makes slow.
fn plain_type(ty: &Type, no_impl: bool) -> bool {
    let plain = |ty: &Type| plain_type(ty, no_impl);
    match ty {
        Type::Reference(r) => r.lifetime.is_none() && plain(&r.elem),
        Type::Path(p) => {
            p.qself.as_ref().is_none_or(|q| plain(&q.ty)) && plain_path(&p.path, no_impl)
        }
        Type::Tuple(t) => t.elems.iter().all(plain),
        Type::Array(a) => plain(&a.elem),
        Type::Slice(s) => plain(&s.elem),
        Type::Ptr(p) => plain(&p.elem),
        Type::Paren(p) => plain(&p.elem),
        Type::Group(g) => plain(&g.elem),
        Type::ImplTrait(_) => !no_impl,
        Type::TraitObject(t) => t.bounds.iter().all(|b| plain_bound(b, no_impl)),
        Type::FnPtr(f) => {
            f.lifetimes.is_none()
                && f.inputs.iter().all(|a| plain(&a.ty))
                && match &f.output {
                    syn::ReturnType::Default => true,
                    syn::ReturnType::Type(_, t) => plain(t),
                }
        }
        Type::Never(_) | Type::Infer(_) => true,
        // A macro's or unparsed tokens: scan them.
        other => {
            let tokens = other.to_token_stream();
            !(has_lifetime(tokens.clone()) || (no_impl && impl_token(tokens)))
        }
    }
}

/// [`plain_type`] of the generic arguments along a path.
fn plain_path(path: &syn::Path, no_impl: bool) -> bool {
    path.segments.iter().all(|seg| match &seg.arguments {
        syn::PathArguments::None => true,
        syn::PathArguments::AngleBracketed(args) => args.args.iter().all(|arg| match arg {
            syn::GenericArgument::Lifetime(_) => false,
            syn::GenericArgument::Type(t) => plain_type(t, no_impl),
            syn::GenericArgument::AssocType(a) => plain_type(&a.ty, no_impl),
            syn::GenericArgument::Constraint(c) => c.bounds.iter().all(|b| plain_bound(b, no_impl)),
            _ => true,
        }),
        syn::PathArguments::Parenthesized(args) => {
            args.inputs.iter().all(|a| plain_type(&a.ty, no_impl))
                && match &args.output {
                    syn::ReturnType::Default => true,
                    syn::ReturnType::Type(_, t) => plain_type(t, no_impl),
                }
        }
    })
}

/// [`plain_type`] of a bound of `dyn Trait`.
fn plain_bound(bound: &syn::TypeParamBound, no_impl: bool) -> bool {
    match bound {
        syn::TypeParamBound::Trait(t) => t.lifetimes.is_none() && plain_path(&t.path, no_impl),
        syn::TypeParamBound::Lifetime(_) => false,
        _ => true,
    }
}

/// Whether a type uses `impl Trait` anywhere.
fn mentions_impl(ty: &Type) -> bool {
    impl_token(ty.to_token_stream())
}

/// Whether `tokens` name a lifetime anywhere.
fn has_lifetime(tokens: TokenStream) -> bool {
    any_leaf(
        tokens,
        &|t| matches!(t, proc_macro2::TokenTree::Punct(p) if p.as_char() == '\''),
    )
}

/// Whether `tokens` use `impl Trait` anywhere.
fn impl_token(tokens: TokenStream) -> bool {
    any_leaf(
        tokens,
        &|t| matches!(t, proc_macro2::TokenTree::Ident(i) if i == "impl"),
    )
}

/// Whether any token of `tokens`, inside groups too, is one that `is` accepts.
fn any_leaf(tokens: TokenStream, is: &impl Fn(&proc_macro2::TokenTree) -> bool) -> bool {
    tokens.into_iter().any(|t| match &t {
        proc_macro2::TokenTree::Group(g) => any_leaf(g.stream(), is),
        leaf => is(leaf),
    })
}

/// "a" or "an", for "a `#[before_create]` handler" and "an `#[after_create]` handler".
pub(crate) fn article(attr: &str) -> &'static str {
    if attr.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    }
}

/// A check that `ty` is what `is_a` (`IsOperation`, `IsEvent` of `hooks_core::diag`) says, reported
/// on `ty`'s token. The glue then names the type as `<ty as is_a>::Is`, so that when the check
/// fails the type is an error rustc reports once, without a list of every implementor.
fn is_a_check(span: Span, ty: TokenStream, is_a: &TokenStream) -> TokenStream {
    quote_spanned! {span=>
        const _: fn() = <#ty as #is_a>::__check;
    }
}

/// A local name of the glue (a parameter of an adapter, a binding in its body), at `anchor` but
/// resolved as the macro's own: a handler named like it (`fn record`, `fn result`) is still the
/// handler in the glue's call, not the local.
fn local(name: &str, anchor: Span) -> Ident {
    Ident::new(name, Span::mixed_site().located_at(anchor))
}

/// The handler's call, `name(payload, ctx)`, awaited when async and converted to the adapter's
/// return type; the context and the return value are each checked on their own token.
fn call(
    h: &Handler<'_>,
    payload: TokenStream,
    ctx: TokenStream,
    flow_of: Option<&TokenStream>,
    anchor: Span,
) -> TokenStream {
    let invoke = invocation(h, payload, ctx, anchor);
    let awaited = if h.is_async {
        quote_spanned!(anchor=> .await)
    } else {
        quote!()
    };
    let (ret, convert) = conversion(h, flow_of, anchor);
    quote_spanned! {anchor=>
        {
            let #ret = #invoke #awaited;
            #convert
        }
    }
}

/// The handler's call, `name(payload, ctx)`, as it is written (an `async fn` handler's is its
/// future); the context is checked on its own token.
fn invocation(
    h: &Handler<'_>,
    payload: TokenStream,
    ctx: TokenStream,
    anchor: Span,
) -> TokenStream {
    let name = &h.func.sig.ident;
    let borrow = if h.payload_mut {
        quote!()
    } else {
        quote_spanned!(anchor=> &*)
    };
    let ctx_arg = h
        .context
        .map(|ty| quote_spanned!(located(ty.span())=> , <#ty as __HooksContext<'_>>::__from(#ctx)));
    quote_spanned!(anchor=> #name(#borrow #payload #ctx_arg))
}

/// The name the handler's return value is bound to, and its conversion to the adapter's return
/// type, checked on the return type's token.
fn conversion(
    h: &Handler<'_>,
    flow_of: Option<&TokenStream>,
    anchor: Span,
) -> (TokenStream, TokenStream) {
    let ret_span = located(match &h.func.sig.output {
        syn::ReturnType::Default => h.func.sig.ident.span(),
        syn::ReturnType::Type(_, ty) => ty.span(),
    });
    let ret = quote_spanned!(ret_span=> __hooks_ret);
    let op_arg = h.named.then(|| quote_spanned!(anchor=> __HooksOp,));
    let generic = match flow_of {
        Some(o) => Some(quote!(<#op_arg #o>)),
        None => op_arg.map(|op| quote!(<#op>)),
    };
    // Naming the return type as written makes rustc underline all of it (`Flow<Contact>`, not
    // `Flow`); a type with `impl` in it cannot be named in a path, so it is inferred instead.
    let self_ty = match &h.func.sig.output {
        syn::ReturnType::Type(_, ty) if !mentions_impl(ty) => quote!(#ty),
        _ => quote_spanned!(ret_span=> _),
    };
    let convert = quote_spanned!(ret_span=> <#self_ty as __HooksReturn #generic>::__into(#ret));
    (ret, convert)
}

/// An `async fn` handler's first poll in its adapter: its future made in the dispatcher's slot
/// (`FutureSlot::put_poll_map`), and its output, bound to `ret` (see [`conversion`]), turned by
/// `settle` once it finishes. The call is made in a closure, not awaited in an `async` block,
/// which would copy the future into the block's own state first.
fn first_poll(
    invoke: TokenStream,
    ret: TokenStream,
    settle: TokenStream,
    anchor: Span,
) -> TokenStream {
    let (fut, cx) = (local("fut", anchor), local("cx", anchor));
    quote_spanned! {anchor=>
        #fut.put_poll_map(move || #invoke, move |#ret| #settle, #cx)
    }
}

/// The adapter of a wildcard data handler: it takes each record as `&mut dyn Record`.
fn wildcard_adapter(p: &Ident, h: &Handler<'_>, anchor: Span) -> (TokenStream, TokenStream) {
    let (ctx, record) = (local("ctx", anchor), local("record", anchor));
    let ctx_name = if h.context.is_some() {
        ctx.clone()
    } else {
        local("_ctx", anchor)
    };
    let call = call(h, quote!(#record), quote!(#ctx), None, anchor);
    let (ty, ret, body) = if h.is_async {
        (
            quote_spanned!(anchor=> #p::WildAsync),
            quote_spanned!(anchor=> #p::BoxFuture<'a, #p::Result<(), #p::HookError>>),
            quote_spanned!(anchor=> #p::Box::pin(async move { #call })),
        )
    } else {
        (
            quote_spanned!(anchor=> #p::WildSync),
            quote_spanned!(anchor=> #p::Result<(), #p::HookError>),
            call,
        )
    };
    let adapter = quote_spanned! {anchor=>
        fn __hooks_adapter<'a>(#record: &'a mut dyn #p::Record, #ctx_name: &'a #p::Context) -> #ret {
            #body
        }
    };
    (ty, adapter)
}

/// Whether `ty` is `dyn Record` (any path ending in `Record`).
fn is_dyn_record(ty: &Type) -> bool {
    let Type::TraitObject(obj) = peeled(ty) else {
        return false;
    };
    obj.bounds.iter().any(|b| match b {
        syn::TypeParamBound::Trait(t) => {
            t.path.segments.last().is_some_and(|s| s.ident == "Record")
        }
        _ => false,
    })
}

/// The registration's asset: the one the attribute names, or the operation's own.
fn named_asset(op_path: &TokenStream, args: &HookArgs) -> TokenStream {
    match &args.asset {
        Some(lit) => quote!(#lit),
        None => quote!(#op_path::ASSET),
    }
}

/// The adapter of a background after handler: clone the result, detach the context, and return
/// the owned job (or `None` when the handler does not run on this result).
fn background_adapter(
    p: &Ident,
    h: &Handler<'_>,
    result_ty: &TokenStream,
    output_ty: &TokenStream,
    anchor: Span,
) -> (TokenStream, TokenStream) {
    let payload = h.payload;
    let payload_span = located(payload.span());
    let payload_arg = local("payload", anchor).into_token_stream();
    let (ctx, result, owned) = (
        local("ctx", anchor),
        local("result", anchor),
        local("owned", anchor),
    );
    let call = call(h, payload_arg.clone(), quote!(&#ctx), None, anchor);
    // The job owns a detached copy of the context, when the handler takes one.
    let (ctx_name, detach) = if h.context.is_some() {
        (
            ctx.clone(),
            quote_spanned!(anchor=> let #ctx = #ctx.detached();),
        )
    } else {
        (local("_ctx", anchor), quote!())
    };
    let clone = quote_spanned! {payload_span=>
        #p::Clone::clone(#result)
    };
    let op_arg = h.named.then(|| quote_spanned!(anchor=> __HooksOp,));
    let runs_on = quote_spanned! {payload_span=>
        <#payload as __HooksAfterPayload<#op_arg #output_ty>>::__runs_on(#result)
    };
    let project = quote_spanned! {payload_span=>
        <#payload as __HooksAfterPayload<#op_arg #output_ty>>::__project(&mut #owned)
    };
    let run = quote_spanned! {anchor=>
        match #project {
            #p::Option::Some(#payload_arg) => #call,
            #p::Option::None => #p::Result::Ok(()),
        }
    };
    // A sync handler runs on a thread of its own (`run_blocking`): one that blocks does not hold
    // up the other background jobs.
    let job = if h.is_async {
        quote_spanned!(anchor=> async move { #run })
    } else {
        quote_spanned!(anchor=> #p::run_blocking(move || #run))
    };
    let adapter = quote_spanned! {anchor=>
        fn __hooks_adapter<'a>(
            #result: &'a #result_ty,
            #ctx_name: &'a #p::Context,
        ) -> #p::Option<#p::BoxFuture<'static, #p::Result<(), #p::HookError>>> {
            if !#runs_on {
                return #p::Option::None;
            }
            let mut #owned: #result_ty = #clone;
            #detach
            #p::Option::Some(#p::Box::pin(#job))
        }
    };
    (
        quote_spanned!(anchor=> #p::BackgroundAfter<__HooksOp>),
        adapter,
    )
}

#[cfg(test)]
mod tests {
    use super::{HandlerFn, Written, asset_key, compact, plain_type, written};
    use proc_macro2::TokenStream;
    use quote::quote;

    #[test]
    fn types_in_messages_are_written_as_a_user_writes_them() {
        let shown = |ty: &str| {
            let ty: syn::Type = syn::parse_str(ty).expect("a type");
            compact(&quote!(#ty).to_string())
        };
        assert_eq!(shown("Box<Contact>"), "Box<Contact>");
        assert_eq!(shown("Option<&mut Contact>"), "Option<&mut Contact>");
        assert_eq!(shown("&'a mut crate::Contact"), "&'a mut crate::Contact");
        assert_eq!(shown("(Contact, u32)"), "(Contact, u32)");
        assert_eq!(shown("Box<dyn Record + Send>"), "Box<dyn Record + Send>");
    }

    fn plain(ty: &str, no_impl: bool) -> bool {
        plain_type(&syn::parse_str(ty).expect("a type"), no_impl)
    }

    fn doc(item: TokenStream) -> Option<String> {
        HandlerFn::read(&item).map(|f| f.doc)
    }

    // The attributes are stepped over token by token: the doc line is the first non-empty line
    // of the first `doc` attribute that has one, whatever attributes come around it, and a
    // handler with no literal doc has none; anything that is not a function with a body is not
    // read at all.
    #[test]
    fn the_doc_line_is_the_first_non_empty_line_of_the_doc_comment() {
        assert_eq!(
            doc(quote! {
                #[inline]
                #[doc = "   "]
                #[doc = "  First line.  \n  Second line."]
                #[doc = "Third."]
                pub fn h(x: &mut T) {}
            }),
            Some("First line.".to_owned())
        );
        assert_eq!(
            doc(quote! { #[doc = "Say \"hi\" \u{2014} twice."] fn h(x: &mut T) {} }),
            Some("Say \"hi\" \u{2014} twice.".to_owned())
        );
        assert_eq!(
            doc(quote! { #[doc = r"A raw \n string."] fn h(x: &mut T) {} }),
            Some("A raw \\n string.".to_owned())
        );
        assert_eq!(
            doc(quote! { #[doc = concat!("a")] fn h(x: &mut T) {} }),
            Some(String::new())
        );
        assert_eq!(
            doc(quote! { #[cfg(test)] async fn h(x: &T) -> Result<(), E> {} }),
            Some(String::new())
        );
        assert_eq!(doc(quote! { #[inline] fn h(x: &mut T); }), None);
        assert_eq!(doc(quote! { #[doc = "A struct."] struct S {} }), None);
        assert_eq!(doc(quote! { fn h(x: &mut T) {} fn g() {} }), None);
    }

    fn written_as(ty: &str) -> Written {
        written(&syn::parse_str(ty).expect("a type"))
    }

    // What the tokens of a return type tell: a bare shape's result, one of the handler's own, or
    // nothing (an alias), which the table decides by the type.
    #[test]
    fn a_return_type_is_read_as_bare_own_or_unread_by_its_tokens() {
        for bare in [
            "()",
            "Result<(), HookError>",
            "hooks::Result<(), hooks::HookError>",
            "Result<Flow<Contact>, HookError>",
            "(Result<(), HookError>)",
        ] {
            assert_eq!(written_as(bare), Written::Bare, "{bare}");
        }
        for own in [
            "Flow<Contact>",
            "Result<(), Refused>",
            "Result<Flow<Contact>, app::Error>",
            "Result<Contact, HookError>",
            "Result<Contact>",
            "(u8, u8)",
            "&'static str",
        ] {
            assert_eq!(written_as(own), Written::Own, "{own}");
        }
        for unread in [
            "Outcome",
            "Outcome<()>",
            "app::Result<()>",
            "Result<Flow<Contact>>",
            "Result",
            "Result<(), [u8; 2]>",
        ] {
            assert_eq!(written_as(unread), Written::Unread, "{unread}");
        }
    }

    // A generic adapter's fn pointer type is written with the handler's payload and return types:
    // a named lifetime cannot appear there (it would be unbound), nor, in the return type,
    // `impl Trait`; an elided lifetime can.
    #[test]
    fn a_type_naming_a_lifetime_or_impl_takes_no_generic_adapter() {
        for ok in [
            "Contact",
            "Result<(), HookError>",
            "Result<Flow<Contact>, MyError>",
            "Key<Contact>",
            "&str",
            "Box<dyn std::error::Error + Send>",
            "Vec<[u8; 4]>",
            "fn(&str) -> bool",
            "<T as Trait>::Out",
            "Box<dyn Fn(&str) -> u32>",
        ] {
            assert!(plain(ok, true), "{ok}");
        }
        for lifetime in [
            "Cow<'static, str>",
            "&'a Contact",
            "Result<(), Box<dyn Error + 'static>>",
            "Option<&'a [u8]>",
            "Box<dyn for<'a> Fn(&'a str)>",
            "for<'a> fn(&'a str)",
        ] {
            assert!(!plain(lifetime, false), "{lifetime}");
        }
        assert!(!plain("Result<impl Into<Flow<Contact>>, HookError>", true));
        assert!(plain("Result<impl Into<Flow<Contact>>, HookError>", false));
        assert!(!plain("Box<dyn Iterator<Item = impl Sized>>", true));
    }

    // The figures of `hooks_core::registration`'s test of its `asset_key`: the two must agree
    // for the asset check to take its fast path.
    #[test]
    fn the_attributes_asset_key_is_the_one_hooks_core_computes() {
        assert_eq!(
            asset_key("Contact"),
            0x0700_0000_0000_0000_0074_6361_746e_6f43
        );
        assert_eq!(asset_key("a"), 0x0100_0000_0000_0000_0000_0000_0000_0061);
        assert_eq!(asset_key(""), 0);
        assert_eq!(
            asset_key("line_items_2026"),
            0x0f36_3230_325f_736d_6574_695f_656e_696c
        );
        assert_eq!(asset_key("line_items_of_2026"), u128::MAX);
    }
}
