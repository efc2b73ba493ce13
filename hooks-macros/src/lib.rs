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
mod text;

use hook::{HookSpec, OpSource, Phase};

macro_rules! data_hooks {
    ($($attr:ident => $op:literal, $phase:ident, $doc:literal;)*) => {$(
        #[doc = $doc]
        ///
        /// Argument: the asset (`"Contact"`), then options: `priority = N` (lower runs first),
        /// `timeout = "2s"`, `background` (after handlers), `client_only`, `params(k = "v")`.
        /// See the `hooks` crate for the handler signatures.
        #[proc_macro_attribute]
        pub fn $attr(args: TokenStream, item: TokenStream) -> TokenStream {
            let spec = HookSpec { attr: stringify!($attr), op: OpSource::Data($op), phase: Phase::$phase };
            hook::expand(&spec, args.into(), item.into()).into()
        }
    )*};
}

macro_rules! fixed_hooks {
    ($($attr:ident => $op:literal, $channel:literal, $phase:ident, $doc:literal;)*) => {$(
        #[doc = $doc]
        ///
        /// Options: `priority = N` (lower runs first), `timeout = "2s"`, `background` (after
        /// handlers), `client_only`, `params(k = "v")`. See the `hooks` crate for the handler
        /// signatures.
        #[proc_macro_attribute]
        pub fn $attr(args: TokenStream, item: TokenStream) -> TokenStream {
            let spec = HookSpec {
                attr: stringify!($attr),
                op: OpSource::Fixed($op, $channel),
                phase: Phase::$phase,
            };
            hook::expand(&spec, args.into(), item.into()).into()
        }
    )*};
}

fixed_hooks! {
    before_register => "users::Register", false, Before, "Runs before a user registers (`NewUser`).";
    after_register => "users::Register", false, After, "Runs after a user registered (`User`).";
    before_login => "users::Login", false, Before, "Runs before a login (`Credentials`).";
    after_login => "users::Login", false, After, "Runs after a login (`Session`, no password).";
    before_logout => "users::Logout", false, Before, "Runs before a logout (`Session`).";
    after_logout => "users::Logout", false, After, "Runs after a logout.";
    before_password_reset => "users::PasswordReset", false, Before, "Runs before a password reset request (`ResetRequest`).";
    after_password_reset => "users::PasswordReset", false, After, "Runs after a password reset request.";
    before_user_update => "users::UpdateUser", false, Before, "Runs before a user's profile is updated (`Changes<User>` or `User`).";
    after_user_update => "users::UpdateUser", false, After, "Runs after a user's profile is updated (`User`).";
    before_user_delete => "users::DeleteUser", false, Before, "Runs before a user account is deleted (`Key<User>`).";
    after_user_delete => "users::DeleteUser", false, After, "Runs after a user account is deleted (`Key<User>`).";
    before_upload => "files::Upload", false, Before, "Runs before a file is uploaded (`FileInfo`).";
    after_upload => "files::Upload", false, After, "Runs after a file is uploaded (`FileInfo`).";
    before_file_delete => "files::DeleteFile", false, Before, "Runs before a file is deleted (`FileInfo`).";
    after_file_delete => "files::DeleteFile", false, After, "Runs after a file is deleted (`FileInfo`).";
    before_publish => "messaging::Publish", true, Before, "Runs before a message is published (`Message`); optionally name one channel: `(\"chat\")`.";
    after_publish => "messaging::Publish", true, After, "Runs after a message is published (`Published`); optionally name one channel: `(\"chat\")`.";
}

/// Runs before an operation of the service's own (declared with `hooks::operation!`):
/// `#[before(SendInvitation)]`, optionally with an asset: `#[before(Publish, "chat")]`. Same
/// options and signatures as the data attributes.
#[proc_macro_attribute]
pub fn before(args: TokenStream, item: TokenStream) -> TokenStream {
    let spec = HookSpec {
        attr: "before",
        op: OpSource::Named,
        phase: Phase::Before,
    };
    hook::expand(&spec, args.into(), item.into()).into()
}

/// Runs after an operation of the service's own: `#[after(SendInvitation)]`.
#[proc_macro_attribute]
pub fn after(args: TokenStream, item: TokenStream) -> TokenStream {
    let spec = HookSpec {
        attr: "after",
        op: OpSource::Named,
        phase: Phase::After,
    };
    hook::expand(&spec, args.into(), item.into()).into()
}

/// Handles a custom event (`#[derive(Event)]`): `#[on_event] fn f(e: &InvoicePaid, ctx: &Context)`.
/// Options: `priority`, `timeout`, `background`, `client_only`, `params(...)`.
#[proc_macro_attribute]
pub fn on_event(args: TokenStream, item: TokenStream) -> TokenStream {
    let spec = HookSpec {
        attr: "on_event",
        op: OpSource::Event,
        phase: Phase::After,
    };
    hook::expand(&spec, args.into(), item.into()).into()
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
    before_bulk_create => "BulkCreate", Before, "Runs before several records of the asset's table are created in one call (`Vec<E>`).";
    after_bulk_create => "BulkCreate", After, "Runs after several records of the asset's table are created in one call (`Vec<E>`).";
    before_bulk_update => "BulkUpdate", Before, "Runs before the records of the asset's table that a query selects are updated (`BulkChanges<E>`).";
    after_bulk_update => "BulkUpdate", After, "Runs after the records of the asset's table that a query selects are updated (`Affected<E>`: how many).";
    before_bulk_delete => "BulkDelete", Before, "Runs before the records of the asset's table that a query selects are deleted (`Query<E>`).";
    after_bulk_delete => "BulkDelete", After, "Runs after the records of the asset's table that a query selects are deleted (`Affected<E>`: how many).";
}

/// Derives `hooks::Event` for a custom event: `#[event(name = "invoice.paid")]` names it (the
/// default is the type's name); the first line of the type's doc comment describes it.
#[proc_macro_derive(Event, attributes(event))]
pub fn derive_event(input: TokenStream) -> TokenStream {
    entity::expand_event(input.into()).into()
}

/// Derives `hooks::Entity`: the type's table name (the type's name unless
/// `#[entity(table = "...")]` says otherwise).
#[proc_macro_derive(Entity, attributes(entity))]
pub fn derive_entity(input: TokenStream) -> TokenStream {
    entity::expand(input.into()).into()
}
