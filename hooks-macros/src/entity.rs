//! `#[derive(Entity)]`: the table name, the fields of the dynamic view, and the static slot caches
//! of the data operations.

use proc_macro2::TokenStream;
use quote::quote;
use syn::{DeriveInput, LitStr};

use crate::errors::Errors;

pub(crate) fn expand(input: TokenStream) -> TokenStream {
    let input: DeriveInput = match syn::parse2(input) {
        Ok(input) => input,
        Err(e) => return e.to_compile_error(),
    };
    let mut errors = Errors::default();
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
    let fields = record_fields(&input, &mut errors);
    // On a mistake the impls are still emitted (with the default table and the fields that
    // parsed), next to the errors, so the handlers of the type do not fail in turn (thiserror's
    // fallback).
    let errors = errors.into_compile_errors();
    let name = &input.ident;
    let table = table.map_or_else(|| name.to_string(), |t| t.value());
    let record = record_impl(&input, &table, &fields);
    let names = fields.iter().map(|f| f.to_string());
    let (impl_generics, ty_generics, where_clause) = input.generics.split_for_impl();
    let p = quote!(::hooks::__private);
    // A `static` inside a generic impl would be shared by every instantiation, so only concrete
    // types get a slot cache; generic ones resolve through the table's map.
    let slots = if input.generics.params.is_empty() {
        quote! {
            fn __data_slots() -> #p::Option<&'static #p::DataSlots> {
                static SLOTS: #p::DataSlots = #p::DataSlots::new();
                #p::Option::Some(&SLOTS)
            }
        }
    } else {
        quote!()
    };
    quote! {
        const _: () = {
            impl #impl_generics #p::Entity for #name #ty_generics #where_clause {
                const TABLE: &'static str = #table;
                const FIELDS: #p::Option<&'static [&'static str]> =
                    #p::Option::Some(&[#(#names),*]);
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

/// The named fields that the dynamic view exposes (all but `#[entity(skip)]`).
fn record_fields<'a>(input: &'a DeriveInput, errors: &mut Errors) -> Vec<&'a syn::Ident> {
    let syn::Data::Struct(data) = &input.data else {
        errors.spanned(
            &input.ident,
            "#[derive(Entity)] goes on a struct with named fields, one record of a table; for a \
             table with no Rust type, use `DynRecord`",
        );
        return Vec::new();
    };
    let mut out = Vec::new();
    for field in &data.fields {
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
        if let (Some(ident), false) = (&field.ident, skip) {
            out.push(ident);
        }
    }
    out
}

/// `Record` for a struct: each field read and written as JSON by name.
fn record_impl(input: &DeriveInput, table: &str, fields: &[&syn::Ident]) -> TokenStream {
    let p = quote!(::hooks::__private);
    let name = &input.ident;
    let (impl_generics, ty_generics, where_clause) = input.generics.split_for_impl();
    let names: Vec<String> = fields.iter().map(|f| f.to_string()).collect();
    // Each accessor carries its field's place, so a field type without serde support is reported
    // once, on the field, through `__HooksField` (mark it #[entity(skip)] to leave it out of the
    // dynamic view).
    let at = |f: &syn::Ident| f.span().resolved_at(proc_macro2::Span::call_site());
    let gets = fields.iter().map(|f| {
        quote::quote_spanned! {at(f)=> __HooksField::__get(&self.#f, #table, field) }
    });
    let sets = fields.iter().map(|f| {
        quote::quote_spanned! {at(f)=> __HooksField::__set(&mut self.#f, value, #table, field) }
    });
    quote! {
        #[diagnostic::on_unimplemented(
            message = "an entity's field must be `Serialize` and `Deserialize`, and `{Self}` is not",
            label = "the dynamic view (`Record`) reads and writes this field as JSON",
            note = "derive `Serialize` and `Deserialize` for `{Self}`, or leave the field out of the dynamic view with `#[entity(skip)]`"
        )]
        trait __HooksField {
            fn __get(&self, table: &str, field: &str)
                -> #p::Result<#p::serde_json::Value, #p::HookError>;
            fn __set(&mut self, value: #p::serde_json::Value, table: &str, field: &str)
                -> #p::Result<(), #p::HookError>;
        }
        #[diagnostic::do_not_recommend]
        impl<T> __HooksField for T
        where
            T: ::hooks::prelude::Serialize + for<'de> ::hooks::prelude::Deserialize<'de>,
        {
            fn __get(&self, table: &str, field: &str)
                -> #p::Result<#p::serde_json::Value, #p::HookError>
            {
                #p::get_field(self, table, field)
            }
            fn __set(&mut self, value: #p::serde_json::Value, table: &str, field: &str)
                -> #p::Result<(), #p::HookError>
            {
                #p::set_field(self, value, table, field)
            }
        }

        impl #impl_generics #p::Record for #name #ty_generics #where_clause {
            fn table(&self) -> &str {
                #table
            }
            fn field_names(&self) -> ::std::vec::Vec<&str> {
                ::std::vec![#(#names),*]
            }
            fn get(&self, field: &str) -> #p::Result<#p::serde_json::Value, #p::HookError> {
                match field {
                    #(#names => #gets,)*
                    _ => #p::Result::Err(#p::unknown_field(#table, field)),
                }
            }
            fn set(
                &mut self,
                field: &str,
                value: #p::serde_json::Value,
            ) -> #p::Result<(), #p::HookError> {
                match field {
                    #(#names => #sets,)*
                    _ => #p::set_unknown_field(value, #table, field),
                }
            }
        }
    }
}

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
    if !input.generics.params.is_empty() {
        errors.spanned(
            &input.generics,
            "an event type cannot be generic: an event has one name, so declare one type per event",
        );
        return errors.into_compile_errors();
    }
    // On a mistake in `#[event(...)]` the impl is still emitted, with the type's name as the
    // event's, so the handlers of the event do not fail in turn.
    let errors = errors.into_compile_errors();
    let ty = &input.ident;
    let name = name.map_or_else(|| ty.to_string(), |n| n.value());
    let description = crate::hook::doc_of(&input.attrs);
    let p = quote!(::hooks::__private);
    quote! {
        const _: () = {
            impl #p::Event for #ty {
                const NAME: &'static str = #name;
                const DESCRIPTION: &'static str = #description;
                fn __slot_cache() -> #p::Option<&'static #p::SlotCache> {
                    static CACHE: #p::SlotCache = #p::SlotCache::new();
                    #p::Option::Some(&CACHE)
                }
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
