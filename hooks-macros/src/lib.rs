//! Attribute and derive macros of the `hooks` framework. Use them through the `hooks` crate.
//!
//! Every macro here is thin: it parses and checks the item, reports each mistake on the token that
//! is wrong, and emits calls into `::hooks::__private`. The rules live in `hooks-core`.
#![deny(missing_docs)]

use proc_macro::TokenStream;

mod args;
mod entity;
mod errors;
mod hook;

use hook::{HookSpec, Phase};

macro_rules! data_hooks {
    ($($attr:ident => $op:literal, $phase:ident, $doc:literal;)*) => {$(
        #[doc = $doc]
        ///
        /// Argument: the asset (`"Contact"`); optional `priority = N` (lower runs first).
        /// See the `hooks` crate for the handler signatures.
        #[proc_macro_attribute]
        pub fn $attr(args: TokenStream, item: TokenStream) -> TokenStream {
            let spec = HookSpec { attr: stringify!($attr), op: $op, phase: Phase::$phase };
            hook::expand(&spec, args.into(), item.into()).into()
        }
    )*};
}

data_hooks! {
    before_create => "Create", Before, "Runs before a record of the asset's table is created.";
    after_create => "Create", After, "Runs after a record of the asset's table is created.";
    before_update => "Update", Before, "Runs before a record of the asset's table is updated.";
    after_update => "Update", After, "Runs after a record of the asset's table is updated.";
    before_delete => "Delete", Before, "Runs before a record of the asset's table is deleted.";
    after_delete => "Delete", After, "Runs after a record of the asset's table is deleted.";
    before_find => "Find", Before, "Runs before records of the asset's table are searched.";
    after_find => "Find", After, "Runs after records of the asset's table are found.";
    before_find_by_id => "FindById", Before, "Runs before a record of the asset's table is read by id.";
    after_find_by_id => "FindById", After, "Runs after a record of the asset's table is read by id.";
}

/// Derives `hooks::Entity`: the type's table name (the type's name unless
/// `#[entity(table = "...")]` says otherwise).
#[proc_macro_derive(Entity, attributes(entity))]
pub fn derive_entity(input: TokenStream) -> TokenStream {
    entity::expand(input.into()).into()
}
