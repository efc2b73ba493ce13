//! `#[derive(Entity)]`: the table name, and the static slot caches of the data operations.

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
    if !errors.is_empty() {
        return errors.into_compile_errors();
    }
    let name = &input.ident;
    let table = table.map_or_else(|| name.to_string(), |t| t.value());
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
                #slots
            }
            impl #impl_generics #p::EntityOf for #name #ty_generics #where_clause {
                type Entity = Self;
            }
        };
    }
}
