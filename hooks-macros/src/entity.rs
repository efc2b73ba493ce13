//! `#[derive(Entity)]` (the table name, the static slot caches of the data operations, and the
//! dynamic field view and its names) and `#[derive(Event)]` (a custom event's name and description).
//!
//! The dynamic view shows a record as serde's JSON shows it, so the derive reads the `#[serde]`
//! attributes of the struct and its fields ([`SerdeContainer`], [`SerdeField`]): the view's
//! names are the JSON keys and its values go through the same functions. The derive reports
//! only what breaks the view; a malformed `#[serde]` attribute is left for serde to report.

use std::collections::HashSet;

use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::meta::ParseNestedMeta;
use syn::{DeriveInput, LitStr};

use crate::errors::Errors;

pub(crate) fn expand(input: TokenStream) -> TokenStream {
    let input: DeriveInput = match syn::parse2(input) {
        Ok(input) => input,
        Err(e) => return e.to_compile_error(),
    };
    let mut errors = Errors::default();
    let table = entity_table(&input, &mut errors);
    let serde = SerdeContainer::parse(&input, &mut errors);
    let generic = check_generics(&input, &mut errors);
    let (mut fields, mut hidden) = record_fields(&input, &serde, &mut errors);
    if generic {
        // Its fields' types are the parameters, which the fallback cannot bound for serde.
        fields.clear();
        hidden.clear();
    }
    // On a mistake the impls are still emitted (with the default table and the fields that
    // parsed; a generic type with an empty view), next to the errors, so the handlers of the
    // type do not fail in turn (thiserror's fallback).
    let errors = errors.into_compile_errors();
    let name = &input.ident;
    let table = table.map_or_else(|| name.to_string(), |t| t.value());
    let p = quote!(::hooks::__private);
    let mut generics = input.generics.clone();
    if generic {
        // The fallback of a generic type: bounds that make the impls hold whatever the
        // parameters, so the one error above is the only one.
        generics
            .make_where_clause()
            .predicates
            .push(syn::parse_quote!(Self: ::core::marker::Send + ::core::marker::Sync + 'static));
    }
    // The names a bulk update may change (`Entity::FIELDS`): those `set` takes, of the fields a
    // client may write. None listed (any accepted, each checked when set) when a flattened map
    // holds keys of its own; a flattened struct's keys are read-only (`flat_set`).
    let fields_const = if fields.iter().any(|f| f.flatten && is_map(f.ty)) {
        quote!(#p::Option::None)
    } else {
        let names = fields
            .iter()
            .filter(|f| !f.flatten && !matches!(f.write, Via::Never))
            .flat_map(|f| f.set_names.iter());
        quote!(#p::Option::Some(&[#(#names),*]))
    };
    let record = record_impl(name, &generics, &table, &serde, &fields, &hidden);
    let (impl_generics, ty_generics, where_clause) = generics.split_for_impl();
    let slots = if generic {
        quote!()
    } else {
        quote! {
            fn __data_slots() -> #p::Option<&'static #p::DataSlots> {
                static SLOTS: #p::DataSlots = #p::DataSlots::new();
                #p::Option::Some(&SLOTS)
            }
        }
    };
    quote! {
        const _: () = {
            impl #impl_generics #p::Entity for #name #ty_generics #where_clause {
                const TABLE: &'static str = #table;
                const FIELDS: #p::Option<&'static [&'static str]> = #fields_const;
                #slots
            }
            impl #impl_generics #p::EntityOf for #name #ty_generics #where_clause {
                type Entity = Self;
            }
            #record
        };
        #errors
    }
}

/// `#[entity(table = "...")]`.
fn entity_table(input: &DeriveInput, errors: &mut Errors) -> Option<LitStr> {
    let mut table: Option<LitStr> = None;
    for attr in input.attrs.iter().filter(|a| a.path().is_ident("entity")) {
        let result = attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("table") {
                let lit: LitStr = meta.value()?.parse()?;
                let value = lit.value();
                if table.is_some() {
                    errors.spanned(&lit, "`table` is given twice");
                } else if value.trim().is_empty() || value == "*" || value.trim() != value {
                    errors.spanned(
                        &lit,
                        "the table name must be a plain, non-empty name such as \"contacts\"",
                    );
                } else {
                    table = Some(lit);
                }
                Ok(())
            } else {
                Err(meta.error("unknown option of #[entity]; the option is `table = \"...\"`"))
            }
        });
        if let Err(e) = result {
            errors.push(e);
        }
    }
    table
}

/// An entity is one table's record, stored and handed to background handlers after the request
/// that carried it: one concrete, owned type. Reports each generic parameter; true if any.
fn check_generics(input: &DeriveInput, errors: &mut Errors) -> bool {
    let name = &input.ident;
    for param in &input.generics.params {
        match param {
            syn::GenericParam::Lifetime(l) => errors.spanned(
                &l.lifetime,
                format_args!(
                    "an entity must be `'static`: its records are kept after the request that \
                     carried them (a background handler reads its own copy), so `{name}` must own \
                     its data; use owned types such as `String` instead of `&{} str`",
                    l.lifetime
                ),
            ),
            syn::GenericParam::Type(t) => errors.spanned(
                &t.ident,
                format_args!(
                    "an entity cannot be generic: it names one table, which every `{name}<..>` \
                     would share. Declare one struct with #[derive(Entity)] for each table (a \
                     type alias of `{name}<..>` is not one); to share fields between tables, \
                     put them in a struct of their own and `#[serde(flatten)]` it into each"
                ),
            ),
            syn::GenericParam::Const(c) => errors.spanned(
                &c.ident,
                format_args!(
                    "an entity cannot be generic: it names one table, which every `{name}<..>` \
                     would share. Declare one struct with #[derive(Entity)] for each table"
                ),
            ),
        }
    }
    !input.generics.params.is_empty()
}

/// How the view reaches a field's value, each way.
enum Via {
    /// Through the field type's own serde impl.
    Serde,
    /// Through a function of `serialize_with`, `deserialize_with` or `with`.
    With(syn::ExprPath),
    /// Never (`skip_deserializing`: the field is read-only).
    Never,
}

/// A field of the dynamic view.
struct ViewField<'a> {
    member: &'a syn::Ident,
    ty: &'a syn::Type,
    /// The names `get` accepts, the JSON key first (the one `field_names` lists); none that an
    /// earlier field took.
    names: Vec<String>,
    /// The names `set` accepts: those serde reads from a client (the deserialize-side name and
    /// the aliases), not a serialize-side name it never reads.
    set_names: Vec<String>,
    read: Via,
    write: Via,
    /// `#[serde(flatten)]`: the field's keys are the record's own.
    flatten: bool,
}

/// The fields of the dynamic view: the named fields that serde's JSON shows, all but those of
/// `#[entity(skip)]`; and every name of the fields left out, which a flattened map must not
/// take either.
fn record_fields<'a>(
    input: &'a DeriveInput,
    serde: &SerdeContainer,
    errors: &mut Errors,
) -> (Vec<ViewField<'a>>, Vec<String>) {
    let name = &input.ident;
    let data = match &input.data {
        syn::Data::Struct(data) => data,
        _ => {
            errors.spanned(
                name,
                "#[derive(Entity)] goes on a struct with named fields, one record of a table; for \
                 a table with no Rust type, use `DynRecord`",
            );
            return (Vec::new(), Vec::new());
        }
    };
    match &data.fields {
        syn::Fields::Named(named) if named.named.is_empty() => {
            errors.spanned(
                &data.fields,
                format_args!(
                    "`{name}` has no fields: an entity is a record of a table, and a record with \
                     no fields stores nothing. Add the record's fields (for a table with no Rust \
                     type, use `DynRecord`)"
                ),
            );
            return (Vec::new(), Vec::new());
        }
        syn::Fields::Named(_) => {}
        syn::Fields::Unnamed(_) => {
            errors.spanned(
                &data.fields,
                format_args!(
                    "#[derive(Entity)] goes on a struct with named fields: the dynamic view reads \
                     and writes a record's fields by name, and a tuple struct's have none. Name \
                     them: `struct {name} {{ id: i64, .. }}`"
                ),
            );
            return (Vec::new(), Vec::new());
        }
        syn::Fields::Unit => {
            errors.spanned(
                name,
                format_args!(
                    "#[derive(Entity)] goes on a struct with named fields, one record of a table, \
                     and `{name}` has none. Add the record's fields: `struct {name} {{ id: i64, .. }}`"
                ),
            );
            return (Vec::new(), Vec::new());
        }
    }
    let mut taken: HashSet<String> = HashSet::new();
    if let Some(tag) = &serde.tag {
        taken.insert(tag.clone());
    }
    let mut out = Vec::new();
    let mut hidden = Vec::new();
    for field in &data.fields {
        let Some(member) = &field.ident else { continue };
        let mut skip = false;
        for attr in field.attrs.iter().filter(|a| a.path().is_ident("entity")) {
            let result = attr.parse_nested_meta(|meta| {
                if meta.path.is_ident("skip") {
                    skip = true;
                    Ok(())
                } else {
                    Err(meta.error("unknown field option of #[entity]; the option is `skip`"))
                }
            });
            if let Err(e) = result {
                errors.push(e);
            }
        }
        let attrs = SerdeField::parse(field);
        if skip || attrs.skip_serializing {
            // Not in the JSON, so not in the view either; nor in a flattened map.
            let rust = unraw(member);
            hidden.extend(attrs.rename_ser.clone());
            hidden.extend(attrs.rename_de.clone());
            hidden.push(serde.rename_all_ser.apply(&rust));
            hidden.push(serde.rename_all_de.apply(&rust));
            hidden.extend(attrs.aliases.iter().cloned());
            hidden.push(rust);
            continue;
        }
        if attrs.flatten {
            for (what, span) in &attrs.unsupported_with_flatten {
                errors.at(
                    *span,
                    format_args!(
                        "the dynamic view does not follow `{what}` on a flattened field; leave \
                         the field out of the view with `#[entity(skip)]`"
                    ),
                );
            }
            out.push(ViewField {
                member,
                ty: &field.ty,
                names: Vec::new(),
                set_names: Vec::new(),
                read: Via::Serde,
                write: Via::Serde,
                flatten: true,
            });
            continue;
        }
        let rust = unraw(member);
        let ser = attrs
            .rename_ser
            .clone()
            .unwrap_or_else(|| serde.rename_all_ser.apply(&rust));
        let de = attrs
            .rename_de
            .clone()
            .unwrap_or_else(|| serde.rename_all_de.apply(&rust));
        let mut names = Vec::new();
        for n in std::iter::once(ser.clone())
            .chain(std::iter::once(de.clone()))
            .chain(attrs.aliases.iter().cloned())
        {
            if taken.insert(n.clone()) {
                names.push(n);
            }
        }
        let set_names: Vec<String> = names
            .iter()
            .filter(|n| **n == de || attrs.aliases.contains(n))
            .cloned()
            .collect();
        // A serialize-side name that serde never reads is the field's all the same: a
        // flattened map must not take it.
        hidden.extend(names.iter().filter(|n| !set_names.contains(n)).cloned());
        if names.is_empty() {
            // Every name is another field's: serde would show one key for both.
            continue;
        }
        let read = match attrs.serialize_with {
            Some(path) => Via::With(path),
            None => Via::Serde,
        };
        let write = match (attrs.skip_deserializing, attrs.deserialize_with) {
            (true, _) => Via::Never,
            (false, Some(path)) => Via::With(path),
            (false, None) => Via::Serde,
        };
        out.push(ViewField {
            member,
            ty: &field.ty,
            names,
            set_names,
            read,
            write,
            flatten: false,
        });
    }
    (out, hidden)
}

/// Whether a flattened field's type reads as a map (a catch-all of keys of its own), by its
/// last path segment: `HashMap`, `BTreeMap`, `IndexMap`, `Map` (serde_json's).
fn is_map(ty: &syn::Type) -> bool {
    match ty {
        syn::Type::Path(p) => p.path.segments.last().is_some_and(|s| {
            ["HashMap", "BTreeMap", "IndexMap", "Map"]
                .iter()
                .any(|m| s.ident == m)
        }),
        syn::Type::Group(g) => is_map(&g.elem),
        _ => false,
    }
}

/// A field's name as serde sees it: a raw identifier's without its `r#` (syn's `unraw`, as the
/// hook attributes read names).
fn unraw(ident: &syn::Ident) -> String {
    syn::ext::IdentExt::unraw(ident).to_string()
}

/// `Record` for a struct: each field read and written as JSON by its JSON name.
fn record_impl(
    name: &syn::Ident,
    generics: &syn::Generics,
    table: &str,
    serde: &SerdeContainer,
    fields: &[ViewField<'_>],
    hidden: &[String],
) -> TokenStream {
    let p = quote!(::hooks::__private);
    let (impl_generics, ty_generics, where_clause) = generics.split_for_impl();
    // Each accessor carries its field's place, so a field type without serde support is reported
    // once, on the field, through `Field` (or `FieldGet`, `FieldSet` for a field that is only
    // read or only written through its own serde impl).
    let at = |f: &syn::Ident| f.span().resolved_at(Span::call_site());
    let mut get_arms = Vec::new();
    let mut set_arms = Vec::new();
    let mut listed = Vec::new();
    if let Some(tag) = &serde.tag {
        let value = &serde.name;
        get_arms.push(quote!(#tag => #p::tag_value(#value),));
        set_arms.push(quote!(#tag => #p::set_read_only_field(value, #table, field),));
        listed.push(quote!(names.push(#tag);));
    }
    let mut flats = Vec::new();
    let mut flat_sets = Vec::new();
    for f in fields {
        let member = f.member;
        let ty = f.ty;
        if f.flatten {
            listed.push(quote!(#p::flat_names(&self.#member, &mut names);));
            flats.push(member);
            flat_sets.push(if is_map(ty) {
                quote!(#p::flat_set(&mut self.#member, value, #table, field)?)
            } else {
                quote!(#p::flat_set_read_only(&self.#member, value, #table, field)?)
            });
            continue;
        }
        let names = &f.names;
        let key = &names[0];
        listed.push(quote!(names.push(#key);));
        let span = at(member);
        let both = matches!((&f.read, &f.write), (Via::Serde, Via::Serde));
        let get = match &f.read {
            Via::Serde if both => quote_spanned! {span=>
                #p::Field::__get(&self.#member, #table, field)
            },
            Via::Serde => quote_spanned! {span=>
                #p::FieldGet::__get(&self.#member, #table, field)
            },
            Via::With(path) => quote_spanned! {span=>
                #p::get_with::<#ty>(
                    &self.#member,
                    |v| #path(v, #p::serde_json::value::Serializer),
                    #table,
                    field,
                )
            },
            Via::Never => unreachable!("every field in the view is read"),
        };
        let set = match &f.write {
            Via::Serde if both => quote_spanned! {span=>
                #p::Field::__set(&mut self.#member, value, #table, field)
            },
            Via::Serde => quote_spanned! {span=>
                #p::FieldSet::__set(&mut self.#member, value, #table, field)
            },
            Via::With(path) => quote_spanned! {span=>
                #p::set_with::<#ty>(&mut self.#member, value, |v| #path(v), #table, field)
            },
            Via::Never => quote!(#p::set_read_only_field(value, #table, field)),
        };
        get_arms.push(quote!(#(#names)|* => #get,));
        let set_names = &f.set_names;
        if !set_names.is_empty() {
            set_arms.push(quote!(#(#set_names)|* => #set,));
        }
    }
    // With a flattened field, a name no arm above takes goes to it: the names of the fields
    // left out of the view, and the serialize-side names `set` does not take, must not.
    if fields.iter().any(|f| f.flatten) {
        let reserved: std::collections::BTreeSet<&String> = hidden
            .iter()
            .filter(|n| !fields.iter().any(|f| f.set_names.contains(n)))
            .filter(|n| serde.tag.as_ref() != Some(*n))
            .collect();
        let reserved = reserved.into_iter();
        if reserved.len() > 0 {
            set_arms.push(quote!(#(#reserved)|* => #p::set_unknown_field(value, #table, field),));
        }
    }
    // Names are compile-time strings, so a record with no flattened field lists them in one
    // `vec!`; a flattened field's keys are read from its serialization.
    let field_names = if flats.is_empty() {
        let keys = fields.iter().map(|f| &f.names[0]).collect::<Vec<_>>();
        let tag = serde.tag.iter();
        quote!(::std::vec![#(#tag,)* #(#keys),*])
    } else {
        quote! {
            let mut names = ::std::vec::Vec::new();
            #(#listed)*
            names
        }
    };
    let (get_other, set_other, flat_methods) = if flats.is_empty() {
        (
            quote!(#p::Result::Err(#p::unknown_field(#table, field))),
            quote!(#p::set_unknown_field(value, #table, field)),
            quote!(),
        )
    } else {
        (
            quote! {{
                #(
                    if let #p::Option::Some(v) = #p::flat_get(&self.#flats, #table, field)? {
                        return #p::Result::Ok(v);
                    }
                )*
                #p::Result::Err(#p::unknown_field(#table, field))
            }},
            quote! {{
                #(
                    let value = match #flat_sets {
                        #p::Option::Some(value) => value,
                        #p::Option::None => return #p::Result::Ok(()),
                    };
                )*
                #p::set_unknown_field(value, #table, field)
            }},
            // A flattened map's keys are not listed by `field_names`; these two see them.
            quote! {
                fn has_field(&self, field: &str) -> bool {
                    #p::Record::get(self, field).is_ok()
                }
                fn to_json(&self) -> #p::Result<#p::serde_json::Value, #p::HookError> {
                    let mut json = #p::fields_to_json(
                        #p::Record::field_names(self),
                        &|name| #p::Record::get(self, name),
                    )?;
                    #( #p::flat_merge(&mut json, &self.#flats, #table)?; )*
                    #p::Result::Ok(json)
                }
            },
        )
    };
    quote! {
        impl #impl_generics #p::Record for #name #ty_generics #where_clause {
            fn table(&self) -> &str {
                #table
            }
            fn field_names(&self) -> ::std::vec::Vec<&str> {
                #field_names
            }
            fn get(&self, field: &str) -> #p::Result<#p::serde_json::Value, #p::HookError> {
                match field {
                    #(#get_arms)*
                    _ => #get_other,
                }
            }
            fn set(
                &mut self,
                field: &str,
                value: #p::serde_json::Value,
            ) -> #p::Result<(), #p::HookError> {
                match field {
                    #(#set_arms)*
                    _ => #set_other,
                }
            }
            #flat_methods
        }
    }
}

/// A rule of serde's `rename_all`, applied to a field's name (a Rust field is snake_case).
#[derive(Clone, Copy, Default)]
enum Casing {
    /// No rule: the name as written (`lowercase` and `snake_case` leave a field's name so).
    #[default]
    AsIs,
    Upper,
    Pascal,
    Camel,
    Kebab,
    ScreamingKebab,
}

impl Casing {
    /// The rule that serde names `name`; `None` for a name serde does not know (serde reports
    /// it).
    fn named(name: &str) -> Option<Casing> {
        Some(match name {
            "lowercase" | "snake_case" => Casing::AsIs,
            "UPPERCASE" | "SCREAMING_SNAKE_CASE" => Casing::Upper,
            "PascalCase" => Casing::Pascal,
            "camelCase" => Casing::Camel,
            "kebab-case" => Casing::Kebab,
            "SCREAMING-KEBAB-CASE" => Casing::ScreamingKebab,
            _ => return None,
        })
    }

    /// `field` in this casing: words are separated by `_`; Pascal and camel case join them,
    /// each word's first letter upper case (camel case: but the first word's); kebab cases
    /// separate them by `-`.
    fn apply(self, field: &str) -> String {
        match self {
            Casing::AsIs => field.to_owned(),
            Casing::Upper => field.to_ascii_uppercase(),
            Casing::Kebab => field.replace('_', "-"),
            Casing::ScreamingKebab => field.to_ascii_uppercase().replace('_', "-"),
            Casing::Pascal | Casing::Camel => {
                let mut out = String::with_capacity(field.len());
                let mut word_start = true;
                for c in field.chars() {
                    if c == '_' {
                        word_start = true;
                    } else if word_start {
                        if matches!(self, Casing::Camel) && out.is_empty() {
                            out.push(c.to_ascii_lowercase());
                        } else {
                            out.push(c.to_ascii_uppercase());
                        }
                        word_start = false;
                    } else {
                        out.push(c);
                    }
                }
                out
            }
        }
    }
}

/// What the struct's `#[serde(...)]` attributes change in its JSON.
struct SerdeContainer {
    rename_all_ser: Casing,
    rename_all_de: Casing,
    /// `tag = "..."`: a key holding the struct's name.
    tag: Option<String>,
    /// The struct's serialized name (`rename`, or its own), the tag's value.
    name: String,
}

impl SerdeContainer {
    fn parse(input: &DeriveInput, errors: &mut Errors) -> SerdeContainer {
        let mut out = SerdeContainer {
            rename_all_ser: Casing::AsIs,
            rename_all_de: Casing::AsIs,
            tag: None,
            name: unraw(&input.ident),
        };
        for attr in input.attrs.iter().filter(|a| a.path().is_ident("serde")) {
            // A malformed attribute is serde's to report, so parse errors are dropped.
            let _ = attr.parse_nested_meta(|meta| {
                if meta.path.is_ident("rename_all") {
                    let (ser, de) = ser_de(&meta)?;
                    if let Some(rule) = ser.and_then(|s| Casing::named(&s.value())) {
                        out.rename_all_ser = rule;
                    }
                    if let Some(rule) = de.and_then(|s| Casing::named(&s.value())) {
                        out.rename_all_de = rule;
                    }
                } else if meta.path.is_ident("rename") {
                    let (ser, _) = ser_de(&meta)?;
                    if let Some(ser) = ser {
                        out.name = ser.value();
                    }
                } else if meta.path.is_ident("tag") {
                    let lit: LitStr = meta.value()?.parse()?;
                    out.tag = Some(lit.value());
                } else if meta.path.is_ident("transparent") {
                    errors.spanned(
                        &meta.path,
                        "#[derive(Entity)] cannot view a `#[serde(transparent)]` struct: its JSON \
                         is its one field's, not an object of named fields",
                    );
                } else if let Some(what) = ["into", "from", "try_from"]
                    .into_iter()
                    .find(|w| meta.path.is_ident(w))
                {
                    errors.spanned(
                        &meta.path,
                        format_args!(
                            "#[derive(Entity)] cannot view a struct with `#[serde({what} = ...)]`: \
                             its JSON is another type's, and the dynamic view reads and writes \
                             this struct's fields; derive `Entity` on the type its JSON is"
                        ),
                    );
                    skip_value(&meta)?;
                } else {
                    skip_value(&meta)?;
                }
                Ok(())
            });
        }
        out
    }
}

/// What a field's `#[serde(...)]` attributes change in its JSON.
#[derive(Default)]
struct SerdeField {
    rename_ser: Option<String>,
    rename_de: Option<String>,
    aliases: Vec<String>,
    skip_serializing: bool,
    skip_deserializing: bool,
    serialize_with: Option<syn::ExprPath>,
    deserialize_with: Option<syn::ExprPath>,
    flatten: bool,
    /// The attributes the view cannot follow on a flattened field.
    unsupported_with_flatten: Vec<(&'static str, Span)>,
}

impl SerdeField {
    fn parse(field: &syn::Field) -> SerdeField {
        let mut out = SerdeField::default();
        for attr in field.attrs.iter().filter(|a| a.path().is_ident("serde")) {
            let _ = attr.parse_nested_meta(|meta| {
                let path = &meta.path;
                if path.is_ident("rename") {
                    let (ser, de) = ser_de(&meta)?;
                    out.rename_ser = ser.map(|s| s.value()).or(out.rename_ser.take());
                    out.rename_de = de.map(|s| s.value()).or(out.rename_de.take());
                } else if path.is_ident("alias") {
                    let lit: LitStr = meta.value()?.parse()?;
                    out.aliases.push(lit.value());
                } else if path.is_ident("skip") {
                    out.skip_serializing = true;
                    out.skip_deserializing = true;
                } else if path.is_ident("skip_serializing") {
                    out.skip_serializing = true;
                } else if path.is_ident("skip_deserializing") {
                    out.skip_deserializing = true;
                    out.unsupported_with_flatten
                        .push(("skip_deserializing", span_of(path)));
                } else if path.is_ident("flatten") {
                    out.flatten = true;
                } else if path.is_ident("with") {
                    let module: syn::Path = meta.value()?.parse::<LitStr>()?.parse()?;
                    out.serialize_with = Some(in_module(&module, "serialize"));
                    out.deserialize_with = Some(in_module(&module, "deserialize"));
                    out.unsupported_with_flatten.push(("with", span_of(path)));
                } else if path.is_ident("serialize_with") {
                    out.serialize_with = Some(meta.value()?.parse::<LitStr>()?.parse()?);
                    out.unsupported_with_flatten
                        .push(("serialize_with", span_of(path)));
                } else if path.is_ident("deserialize_with") {
                    out.deserialize_with = Some(meta.value()?.parse::<LitStr>()?.parse()?);
                    out.unsupported_with_flatten
                        .push(("deserialize_with", span_of(path)));
                } else {
                    skip_value(&meta)?;
                }
                Ok(())
            });
        }
        out
    }
}

fn span_of(path: &syn::Path) -> Span {
    path.segments
        .first()
        .map_or_else(Span::call_site, |s| s.ident.span())
}

/// `module::function`, for `with = "module"`.
fn in_module(module: &syn::Path, function: &str) -> syn::ExprPath {
    let mut path = module.clone();
    let span = span_of(module);
    path.segments
        .push(syn::PathSegment::from(syn::Ident::new(function, span)));
    syn::ExprPath {
        attrs: Vec::new(),
        qself: None,
        path,
    }
}

/// The two sides of `name = "x"` (both `x`) or `name(serialize = "a", deserialize = "b")`.
fn ser_de(meta: &ParseNestedMeta) -> syn::Result<(Option<LitStr>, Option<LitStr>)> {
    if meta.input.peek(syn::Token![=]) {
        let lit: LitStr = meta.value()?.parse()?;
        return Ok((Some(lit.clone()), Some(lit)));
    }
    let (mut ser, mut de) = (None, None);
    meta.parse_nested_meta(|side| {
        if side.path.is_ident("serialize") {
            ser = Some(side.value()?.parse()?);
        } else if side.path.is_ident("deserialize") {
            de = Some(side.value()?.parse()?);
        } else {
            skip_value(&side)?;
        }
        Ok(())
    })?;
    Ok((ser, de))
}

/// Consume an option the view does not need: `name`, `name = value` or `name(...)`.
fn skip_value(meta: &ParseNestedMeta) -> syn::Result<()> {
    if meta.input.peek(syn::Token![=]) {
        meta.value()?.parse::<syn::Expr>()?;
    } else if meta.input.peek(syn::token::Paren) {
        meta.parse_nested_meta(|inner| skip_value(&inner))?;
    }
    Ok(())
}

/// The operations of the standard catalog (hooks-core's `ops`): a custom event cannot take one's
/// name. A test below keeps the list in step with hooks-core.
const BUILT_IN_OPERATIONS: &[&str] = &[
    "data.create",
    "data.update",
    "data.delete",
    "data.find",
    "data.find_by_id",
    "data.bulk_create",
    "data.bulk_update",
    "data.bulk_delete",
    "users.register",
    "users.login",
    "users.logout",
    "users.password_reset",
    "users.update",
    "users.delete",
    "files.upload",
    "files.delete",
    "messaging.publish",
];

/// `#[derive(Event)]`: the event's name, description and slot cache.
pub(crate) fn expand_event(input: TokenStream) -> TokenStream {
    let input: DeriveInput = match syn::parse2(input) {
        Ok(input) => input,
        Err(e) => return e.to_compile_error(),
    };
    let mut errors = Errors::default();
    let mut name: Option<LitStr> = None;
    for attr in input.attrs.iter().filter(|a| a.path().is_ident("event")) {
        let result = attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("name") {
                let lit: LitStr = meta.value()?.parse()?;
                let value = lit.value();
                if name.is_some() {
                    errors.spanned(&lit, "`name` is given twice");
                } else if value.trim().is_empty() || value.trim() != value || value.contains('*') {
                    errors.spanned(
                        &lit,
                        "an event name is a plain, non-empty name such as \"invoice.paid\"",
                    );
                } else if BUILT_IN_OPERATIONS.contains(&value.as_str()) {
                    errors.spanned(
                        &lit,
                        format_args!(
                            "\"{value}\" is an operation of the standard catalog, not a custom \
                             event: hook it with its own attributes (such as `after_create`), or \
                             give this event a name of its own, such as \"invoice.paid\""
                        ),
                    );
                } else {
                    name = Some(lit);
                }
                Ok(())
            } else {
                Err(meta.error("unknown option of #[event]; the option is `name = \"...\"`"))
            }
        });
        if let Err(e) = result {
            errors.push(e);
        }
    }
    let generic = !input.generics.params.is_empty();
    if generic {
        errors.spanned(
            &input.generics,
            "an event type cannot be generic: an event has one name, so declare one type per event",
        );
    }
    // On a mistake the impl is still emitted, with the type's name as the event's (a generic
    // type's with bounds that make it hold, and no slot cache, which its instantiations would
    // share), so the handlers of the event do not fail in turn.
    let errors = errors.into_compile_errors();
    let ty = &input.ident;
    let name = name.map_or_else(|| ty.to_string(), |n| n.value());
    let description = crate::hook::doc_of(&input.attrs);
    let p = quote!(::hooks::__private);
    let mut generics = input.generics.clone();
    let cache = if generic {
        generics
            .make_where_clause()
            .predicates
            .push(syn::parse_quote!(
                Self: #p::Serialize + ::core::marker::Send + ::core::marker::Sync + 'static
            ));
        quote!()
    } else {
        quote! {
            fn __slot_cache() -> #p::Option<&'static #p::SlotCache> {
                static CACHE: #p::SlotCache = #p::SlotCache::new();
                #p::Option::Some(&CACHE)
            }
        }
    };
    let (impl_generics, ty_generics, where_clause) = generics.split_for_impl();
    quote! {
        const _: () = {
            impl #impl_generics #p::Event for #ty #ty_generics #where_clause {
                const NAME: &'static str = #name;
                const DESCRIPTION: &'static str = #description;
                #cache
            }
            #p::register_operation!(#p::OperationInfo {
                name: #name,
                asset: "events",
                description: #description,
                input: ::core::stringify!(#ty),
                output: "()",
            });
        };
        #errors
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn casings_follow_serde_rules_for_fields() {
        let cases = [
            ("lowercase", "first_name"),
            ("UPPERCASE", "FIRST_NAME"),
            ("PascalCase", "FirstName"),
            ("camelCase", "firstName"),
            ("snake_case", "first_name"),
            ("SCREAMING_SNAKE_CASE", "FIRST_NAME"),
            ("kebab-case", "first-name"),
            ("SCREAMING-KEBAB-CASE", "FIRST-NAME"),
        ];
        for (rule, expected) in cases {
            let casing = Casing::named(rule).expect(rule);
            assert_eq!(casing.apply("first_name"), expected, "{rule}");
        }
        // A leading underscore starts a word that Pascal and camel case capitalise as serde does.
        assert_eq!(Casing::Pascal.apply("_private"), "Private");
        assert_eq!(Casing::Camel.apply("_private"), "private");
        assert_eq!(Casing::Camel.apply("a_b_c"), "aBC");
        assert_eq!(Casing::Camel.apply("id"), "id");
        assert!(Casing::named("Title Case").is_none());
    }

    /// The list above against hooks-core's operations: every operation name declared in
    /// `hooks-core/src/ops` (a string such as `"data.create"` in an `operation!` or `data_op!`).
    #[test]
    fn built_in_operations_are_those_of_hooks_core() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../hooks-core/src/ops");
        let mut found = Vec::new();
        for entry in std::fs::read_dir(&dir).expect("hooks-core's ops") {
            let path = entry.expect("an entry").path();
            if path.file_name().is_some_and(|n| n == "events.rs") {
                continue;
            }
            let text = std::fs::read_to_string(&path).expect("a source file");
            for line in text.lines().map(str::trim) {
                if line.starts_with("//") {
                    continue;
                }
                let mut parts = line.split('"');
                while let (Some(_), Some(quoted)) = (parts.next(), parts.next()) {
                    let is_op = quoted.split_once('.').is_some_and(|(a, b)| {
                        !a.is_empty()
                            && !b.is_empty()
                            && quoted
                                .chars()
                                .all(|c| c.is_ascii_lowercase() || c == '_' || c == '.')
                    });
                    if is_op
                        && (line.contains(": \"") || line.contains(", \"") || line.contains("= \""))
                    {
                        found.push(quoted.to_owned());
                    }
                }
            }
        }
        found.sort();
        let mut listed: Vec<String> = BUILT_IN_OPERATIONS.iter().map(|s| s.to_string()).collect();
        listed.sort();
        assert_eq!(found, listed);
    }
}
