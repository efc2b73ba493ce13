//! The hook attributes (`#[before_create("Contact")]`, ...): check the function, then emit it
//! unchanged together with its adapter and its registration.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{FnArg, ItemFn, Type};

use crate::args::{self, HookArgs};
use crate::errors::Errors;

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

/// A checked handler signature.
struct Handler<'a> {
    func: &'a ItemFn,
    payload: &'a Type,
    payload_mut: bool,
    takes_context: bool,
    is_async: bool,
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
    let func: ItemFn = match syn::parse2(item.clone()) {
        Ok(func) => func,
        Err(_) => {
            errors.at(
                first_span(&item),
                format!(
                    "#[{}] goes on a function: `fn handler(record: &mut Contact)`",
                    spec.attr
                ),
            );
            let errors = errors.into_compile_errors();
            return quote!(#item #errors);
        }
    };
    let handler = check(spec, &func, &mut errors);
    if let (OpSource::Data(_), Some(asset), Some(h)) = (spec.op, &args.asset, &handler)
        && asset.value() == "*"
    {
        if !is_dyn_record(h.payload) {
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
            errors.spanned(bg, "a wildcard handler cannot run in the background");
        }
    }
    let complete = match spec.op {
        OpSource::Data(_) => args.asset.is_some(),
        OpSource::Named => args.op.is_some(),
        OpSource::Fixed(..) | OpSource::Event => true,
    };
    match handler {
        Some(handler) if complete && errors.is_empty() => {
            let glue = emit(spec, &args, &handler);
            quote!(#func #glue)
        }
        // Keep the function as written, so one mistake does not cascade into many.
        _ => {
            let errors = errors.into_compile_errors();
            quote!(#func #errors)
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

fn check<'a>(spec: &HookSpec, func: &'a ItemFn, errors: &mut Errors) -> Option<Handler<'a>> {
    let sig = &func.sig;
    let attr = spec.attr;
    if let Some(c) = &sig.constness {
        errors.spanned(c, format!("a #[{attr}] handler cannot be a `const fn`"));
    }
    if let syn::Safety::Unsafe(u) = &sig.safety {
        errors.spanned(
            u,
            format!("a #[{attr}] handler cannot be `unsafe`: the runtime calls it"),
        );
    }
    if let Some(abi) = &sig.abi {
        errors.spanned(
            abi,
            format!("a #[{attr}] handler cannot be `extern`: use a plain Rust fn"),
        );
    }
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        errors.spanned(
            &sig.generics,
            format!("a #[{attr}] handler cannot be generic: name the payload type, such as `&mut Contact`"),
        );
    }
    if let Some(variadic) = &sig.variadic {
        errors.spanned(variadic, format!("a #[{attr}] handler cannot be variadic"));
    }
    let mut inputs = sig.inputs.iter();
    let payload = match inputs.next() {
        None => {
            let hint = match spec.phase {
                Phase::Before => "`record: &mut Contact`",
                Phase::After => {
                    "`record: &mut Contact` or `result: &mut Result<Contact, HookError>`"
                }
            };
            errors.spanned(
                &sig.ident,
                format!("a #[{attr}] handler takes its payload first: {hint}"),
            );
            None
        }
        Some(FnArg::Receiver(r)) => {
            errors.spanned(
                r,
                format!("a #[{attr}] handler is a free function, not a method: remove `self`"),
            );
            None
        }
        Some(FnArg::Typed(pat)) => match &*pat.ty {
            Type::Reference(r) => Some((&*r.elem, r.mutability.is_some())),
            other => {
                errors.spanned(
                    other,
                    format!("take the payload by reference: `&mut {}`", quote!(#other)),
                );
                None
            }
        },
    };
    let mut takes_context = false;
    if let Some(arg) = inputs.next() {
        match arg {
            FnArg::Typed(pat) if matches!(&*pat.ty, Type::Reference(r) if r.mutability.is_none()) =>
            {
                takes_context = true;
            }
            FnArg::Typed(pat) => {
                errors.spanned(
                    &pat.ty,
                    "the second parameter is the call's context: `ctx: &Context`",
                );
            }
            FnArg::Receiver(r) => {
                errors.spanned(
                    r,
                    format!("a #[{attr}] handler is a free function: remove `self`"),
                );
            }
        }
    }
    for extra in inputs {
        errors.spanned(
            extra,
            format!("a #[{attr}] handler takes at most two parameters: the payload and `&Context`"),
        );
    }
    let (payload, payload_mut) = payload?;
    Some(Handler {
        func,
        payload,
        payload_mut,
        takes_context,
        is_async: sig.asyncness.is_some(),
    })
}

/// The first line of the function's doc comment.
fn doc_line(func: &ItemFn) -> String {
    doc_of(&func.attrs)
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
        {
            let text = s.value();
            if let Some(line) = text.lines().map(str::trim).find(|l| !l.is_empty()) {
                return line.to_owned();
            }
        }
    }
    String::new()
}

fn emit(spec: &HookSpec, args: &HookArgs, h: &Handler<'_>) -> TokenStream {
    let p = quote!(::hooks::__private);
    let name = &h.func.sig.ident;
    let name_str = name.to_string();
    let payload = h.payload;
    let payload_str = quote!(#payload).to_string();
    let priority = args.priority;
    let doc = doc_line(h.func);
    let payload_span = payload.span();

    let (op, asset, asset_check) = match spec.op {
        OpSource::Data(op) => {
            let op_ident = format_ident!("{}", op);
            let asset = args.asset.as_ref().map(|a| a.value()).unwrap_or_default();
            let asset_span = args
                .asset
                .as_ref()
                .map_or_else(Span::call_site, |a| a.span());
            let op = quote_spanned! {payload_span=>
                #p::ops::data::#op_ident<<#payload as #p::EntityOf>::Entity>
            };
            let mismatch = format!(
                "#[{}(\"{asset}\")] does not match the table of `{payload_str}`: use the name its \
                 `Entity` derive gives (the type's name, or #[entity(table = \"...\")])",
                spec.attr
            );
            let check = quote_spanned! {asset_span=>
                const _: () = if !<<#payload as #p::EntityOf>::Entity as #p::Entity>::DYNAMIC
                    && !#p::str_eq(<__HooksOp as #p::Operation>::ASSET, #asset)
                {
                    ::core::panic!(#mismatch)
                };
            };
            (op, quote!(#asset), check)
        }
        OpSource::Fixed(path, _) => {
            let path: syn::Path = match syn::parse_str(path) {
                Ok(path) => path,
                Err(e) => return e.to_compile_error(),
            };
            (quote!(#p::ops::#path), named_asset(&p, args), quote!())
        }
        OpSource::Named => {
            let op = &args.op;
            (quote!(#op), named_asset(&p, args), quote!())
        }
        OpSource::Event => {
            let op = quote_spanned! {payload_span=> #p::ops::events::Emit<#payload> };
            (op, quote!(<__HooksOp as #p::Operation>::ASSET), quote!())
        }
    };

    let ctx_arg = if h.takes_context {
        quote!(, ctx)
    } else {
        quote!()
    };
    let ctx_name = if h.takes_context {
        quote!(ctx)
    } else {
        quote!(_ctx)
    };
    let borrow = if h.payload_mut { quote!() } else { quote!(&*) };
    let awaited = if h.is_async { quote!(.await) } else { quote!() };
    let input_ty = quote!(<__HooksOp as #p::Operation>::Input);
    let output_ty = quote!(<__HooksOp as #p::Operation>::Output);
    let ret_span = match &h.func.sig.output {
        syn::ReturnType::Default => name.span(),
        syn::ReturnType::Type(_, ty) => ty.span(),
    };

    let (phase, sig_ty, adapter) = match spec.phase {
        Phase::Before => {
            let call = quote_spanned! {ret_span=>
                #p::IntoFlow::<#output_ty>::into_flow(
                    #name(#borrow <_ as #p::Payload<#payload>>::payload_mut(input) #ctx_arg) #awaited
                )
            };
            let (ty, adapter) = if h.is_async {
                (
                    quote!(#p::AsyncBefore<__HooksOp>),
                    quote! {
                        fn __hooks_adapter<'a>(input: &'a mut #input_ty, #ctx_name: &'a #p::Context)
                            -> #p::BoxFuture<'a, #p::Result<#p::Flow<#output_ty>, #p::HookError>>
                        {
                            #p::Box::pin(async move { #call })
                        }
                    },
                )
            } else {
                (
                    quote!(#p::SyncBefore<__HooksOp>),
                    quote! {
                        fn __hooks_adapter<'a>(input: &'a mut #input_ty, #ctx_name: &'a #p::Context)
                            -> #p::Result<#p::Flow<#output_ty>, #p::HookError>
                        {
                            #call
                        }
                    },
                )
            };
            (quote!(#p::Phase::Before), ty, adapter)
        }
        Phase::After => {
            let call = quote_spanned! {ret_span=>
                match <_ as #p::AfterPayload<#payload>>::project(result) {
                    #p::Option::Some(payload) => #p::IntoAfter::into_after(
                        #name(#borrow payload #ctx_arg) #awaited
                    ),
                    #p::Option::None => #p::Result::Ok(()),
                }
            };
            let (ty, adapter) = if h.is_async {
                (
                    quote!(#p::AsyncAfter<__HooksOp>),
                    quote! {
                        fn __hooks_adapter<'a>(
                            result: &'a mut #p::Result<#output_ty, #p::HookError>,
                            #ctx_name: &'a #p::Context,
                        ) -> #p::BoxFuture<'a, #p::Result<(), #p::HookError>> {
                            #p::Box::pin(async move { #call })
                        }
                    },
                )
            } else {
                (
                    quote!(#p::SyncAfter<__HooksOp>),
                    quote! {
                        fn __hooks_adapter<'a>(
                            result: &'a mut #p::Result<#output_ty, #p::HookError>,
                            #ctx_name: &'a #p::Context,
                        ) -> #p::Result<(), #p::HookError> {
                            #call
                        }
                    },
                )
            };
            (quote!(#p::Phase::After), ty, adapter)
        }
    };
    let wildcard = matches!(spec.op, OpSource::Data(_))
        && args.asset.as_ref().is_some_and(|a| a.value() == "*");
    let (sig_ty, adapter) = if wildcard {
        wildcard_adapter(&p, h, ret_span)
    } else if args.background.is_some() {
        background_adapter(&p, h, &output_ty, ret_span)
    } else {
        (sig_ty, adapter)
    };
    let kind = if h.is_async {
        quote!(#p::Kind::Async)
    } else {
        quote!(#p::Kind::Sync)
    };
    let mode = if args.background.is_some() {
        quote!(#p::Mode::Background)
    } else {
        quote!(#p::Mode::Blocking)
    };
    let timeout = match args.timeout_ms {
        Some(ms) => quote!(#p::Option::Some(#p::Duration::from_millis(#ms))),
        None => quote!(#p::Option::None),
    };
    let client_only = args.client_only;
    let on_error = match spec.phase {
        _ if wildcard => quote!(false),
        Phase::Before => quote!(false),
        Phase::After => quote! {
            <#p::Result<#output_ty, #p::HookError> as #p::AfterPayload<#payload>>::ON_ERROR
        },
    };
    let params = args.params.iter().map(|(k, v)| quote!((#k, #v)));

    quote! {
        const _: () = {
            type __HooksOp = #op;
            #asset_check
            #adapter
            static __HOOKS_ADAPTER: #sig_ty = __hooks_adapter;
            static __HOOKS_STATE: #p::HandlerState = #p::HandlerState::new();
            #p::register!(#p::Registration {
                id: ::core::concat!(::core::module_path!(), "::", #name_str),
                operation: <__HooksOp as #p::Operation>::NAME,
                asset: #asset,
                phase: #phase,
                kind: #kind,
                priority: #priority,
                mode: #mode,
                timeout: #timeout,
                client_only: #client_only,
                on_error: #on_error,
                params: &[#(#params),*],
                file: ::core::file!(),
                line: ::core::line!(),
                doc: #doc,
                payload: #payload_str,
                op_type: #p::TypeId::of::<__HooksOp>,
                op_type_name: #p::type_name::<__HooksOp>,
                adapter: &__HOOKS_ADAPTER,
                state: &__HOOKS_STATE,
            });
        };
    }
}

/// The adapter of a wildcard data handler: it takes each record as `&mut dyn Record`.
fn wildcard_adapter(
    p: &TokenStream,
    h: &Handler<'_>,
    ret_span: Span,
) -> (TokenStream, TokenStream) {
    let name = &h.func.sig.ident;
    let ctx_arg = if h.takes_context {
        quote!(, ctx)
    } else {
        quote!()
    };
    let ctx_name = if h.takes_context {
        quote!(ctx)
    } else {
        quote!(_ctx)
    };
    let borrow = if h.payload_mut { quote!() } else { quote!(&*) };
    let awaited = if h.is_async { quote!(.await) } else { quote!() };
    let call = quote_spanned! {ret_span=>
        #p::IntoAfter::into_after(#name(#borrow record #ctx_arg) #awaited)
    };
    if h.is_async {
        let adapter = quote! {
            fn __hooks_adapter<'a>(record: &'a mut dyn #p::Record, #ctx_name: &'a #p::Context)
                -> #p::BoxFuture<'a, #p::Result<(), #p::HookError>>
            {
                #p::Box::pin(async move { #call })
            }
        };
        (quote!(#p::WildAsync), adapter)
    } else {
        let adapter = quote! {
            fn __hooks_adapter<'a>(record: &'a mut dyn #p::Record, #ctx_name: &'a #p::Context)
                -> #p::Result<(), #p::HookError>
            {
                #call
            }
        };
        (quote!(#p::WildSync), adapter)
    }
}

/// Whether `ty` is `dyn Record` (any path ending in `Record`).
fn is_dyn_record(ty: &Type) -> bool {
    let Type::TraitObject(obj) = ty else {
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
fn named_asset(p: &TokenStream, args: &HookArgs) -> TokenStream {
    match &args.asset {
        Some(lit) => quote!(#lit),
        None => quote!(<__HooksOp as #p::Operation>::ASSET),
    }
}

/// The adapter of a background after handler: clone the result, detach the context, and return
/// the owned job (or `None` when the handler does not run on this result).
fn background_adapter(
    p: &TokenStream,
    h: &Handler<'_>,
    output_ty: &TokenStream,
    ret_span: Span,
) -> (TokenStream, TokenStream) {
    let name = &h.func.sig.ident;
    let payload = h.payload;
    let ctx_arg = if h.takes_context {
        quote!(, &ctx)
    } else {
        quote!()
    };
    let borrow = if h.payload_mut { quote!() } else { quote!(&*) };
    let awaited = if h.is_async { quote!(.await) } else { quote!() };
    let call = quote_spanned! {ret_span=>
        #p::IntoAfter::into_after(#name(#borrow payload #ctx_arg) #awaited)
    };
    let clone = quote_spanned! {payload.span()=>
        #p::Clone::clone(result)
    };
    let adapter = quote! {
        fn __hooks_adapter<'a>(
            result: &'a #p::Result<#output_ty, #p::HookError>,
            ctx: &'a #p::Context,
        ) -> #p::Option<#p::BoxFuture<'static, #p::Result<(), #p::HookError>>> {
            if !<_ as #p::AfterPayload<#payload>>::runs_on(result) {
                return #p::Option::None;
            }
            let mut owned: #p::Result<#output_ty, #p::HookError> = #clone;
            let ctx = ctx.detached();
            #p::Option::Some(#p::Box::pin(async move {
                match <_ as #p::AfterPayload<#payload>>::project(&mut owned) {
                    #p::Option::Some(payload) => #call,
                    #p::Option::None => #p::Result::Ok(()),
                }
            }))
        }
    };
    (quote!(#p::BackgroundAfter<__HooksOp>), adapter)
}
