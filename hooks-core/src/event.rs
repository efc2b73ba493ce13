//! The event model's ground floor: the [`Operation`] trait, the [`Phase`] of a handler, where a call
//! came from ([`Origin`]) and what a before handler decides ([`Flow`]).

use crate::table::SlotCache;

/// An API operation that handlers can hook: a name, what before handlers see (`Input`) and what after
/// handlers see (`Output`).
///
/// The standard catalog lives in [`crate::ops`]; a service can declare its own operations by
/// implementing this trait.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not an operation",
    label = "not an operation",
    note = "declare one with `hooks::operation!`, or name a standard one such as `ops::users::Login`"
)]
pub trait Operation: 'static {
    /// What before handlers see and may change, and what the default logic receives.
    type Input: Send + 'static;
    /// What the default logic produces and after handlers see and may change.
    type Output: Send + 'static;
    /// The operation's name, such as `"data.create"`.
    const NAME: &'static str;
    /// The asset (table, collection, channel) the operation is about, such as `"Contact"`; `"*"`
    /// when the call names it ([`crate::Hooks::run_on`]).
    const ASSET: &'static str;
    /// A one-line description, for the catalog.
    const DESCRIPTION: &'static str = "";
    /// [`ASSET`](Operation::ASSET) as the attributes' asset check compares it
    /// (`Registration::of_data`): evaluated once per operation type, not once per handler.
    #[doc(hidden)]
    const ASSET_KEY: u128 = crate::registration::asset_key(Self::ASSET);

    /// Whether each call names the operation's asset rather than the type (a data operation on
    /// [`DynRecord`](crate::DynRecord), whose values name their own tables).
    #[doc(hidden)]
    const DYNAMIC: bool = false;

    /// Whether the operation raises a custom event ([`Emit`](crate::ops::events::Emit)): every
    /// after handler runs, one that fails is logged and counted, and the input is checked
    /// against the payload limit ([`Operation::input_refusal`]), however the call is run.
    #[doc(hidden)]
    const EVENT: bool = false;

    /// Why an input of an [`EVENT`](Operation::EVENT) operation cannot be raised under a
    /// payload limit of `max_bytes`, if it cannot.
    #[doc(hidden)]
    fn input_refusal(_input: &Self::Input, _max_bytes: usize) -> Option<crate::HookError> {
        None
    }

    /// Whether the input of a call names the asset ([`Operation::input_asset`]) when the operation
    /// is [`DYNAMIC`](Operation::DYNAMIC): a record being created or updated does; a key or a
    /// query does not, and such a call names its table with [`crate::Hooks::run_on`].
    #[doc(hidden)]
    const INPUT_NAMES_ASSET: bool = false;

    /// The asset the input of a call names, for a [`DYNAMIC`](Operation::DYNAMIC) operation.
    #[doc(hidden)]
    fn input_asset(_input: &Self::Input) -> Option<&str> {
        None
    }

    /// A table or channel the input names other than `asset`, if any: a call naming `asset`
    /// ([`crate::Hooks::run_on`]) with such an input is refused. By default the one
    /// [`input_asset`](Operation::input_asset) names; an input of several records checks each.
    #[doc(hidden)]
    fn input_names_other<'i>(input: &'i Self::Input, asset: &str) -> Option<&'i str> {
        Self::input_asset(input).filter(|named| *named != asset)
    }

    /// The records in an input, for wildcard data handlers.
    #[doc(hidden)]
    fn input_records(_input: &mut Self::Input) -> crate::entity::RecordsMut<'_> {
        crate::entity::RecordsMut::None
    }

    /// The records in an output, for wildcard data handlers.
    #[doc(hidden)]
    fn output_records(_output: &mut Self::Output) -> crate::entity::RecordsMut<'_> {
        crate::entity::RecordsMut::None
    }

    /// A per-type cache of this operation's slot in the global table, when the type can offer one:
    /// a `static` of its own (not one in a generic function, which every type would share). A
    /// slot read from it is checked to be this operation's; a shared cache's "no handlers" is
    /// not, so an operation that shares another's may miss its handlers.
    #[doc(hidden)]
    fn slot_cache() -> Option<&'static SlotCache> {
        None
    }
}

/// When a handler runs relative to the default logic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// Before the default logic: may change the input, answer early or reject.
    Before,
    /// After the default logic (or after a short-circuit or a rejection): may change the result.
    After,
}

impl Phase {
    /// `"before"` or `"after"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Before => "before",
            Phase::After => "after",
        }
    }
}

/// Where a call came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    /// A client of the service (an HTTP request, an SDK call).
    #[default]
    Client,
    /// Server code, such as a handler calling the API itself.
    Server,
}

/// What a before handler decided: go on, or answer the call itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Flow<T> {
    /// Run the remaining before handlers and then the default logic.
    Continue,
    /// Skip the remaining before handlers and the default logic; this is the call's result (the
    /// after handlers still run on it).
    Return(T),
}

/// What the catalog knows of an operation type: its name, asset, description and payload types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct OperationInfo {
    /// The operation's name, such as `"data.create"`.
    pub name: &'static str,
    /// Its asset, or `"*"` when each call names one (data operations: the table).
    pub asset: &'static str,
    /// A one-line description.
    pub description: &'static str,
    /// The input type (what before handlers see).
    pub input: &'static str,
    /// The output type (what after handlers see).
    pub output: &'static str,
}

/// Declare an operation of the service's own: a marker type implementing [`Operation`], listed in
/// the catalog, with `#[before(Name)]` and `#[after(Name)]` handlers.
///
/// ```
/// use hooks_core::operation;
///
/// pub struct Invitation { pub email: String }
///
/// operation! {
///     /// Send an invitation email.
///     pub SendInvitation: "messaging.send_invitation", Invitation => ()
/// }
/// # use hooks_core::Operation;
/// assert_eq!(SendInvitation::NAME, "messaging.send_invitation");
/// assert_eq!(SendInvitation::DESCRIPTION, "Send an invitation email.");
/// ```
///
/// `on "..."` after the name gives the operation a fixed asset (the default is `"*"`: calls
/// name it with [`crate::Hooks::run_on`], or there is none).
///
/// The doc comment is required: its first line with something on it is the catalog's
/// description. The name, and the asset, are 1 to 128 bytes with no space or control character
/// (and not `*`): anything else is a build error.
#[macro_export]
macro_rules! operation {
    (
        #[doc = $first:literal]
        $(#[doc = $more:literal])*
        $vis:vis $ty:ident : $name:literal $(on $asset:literal)?, $input:ty => $output:ty $(,)?
    ) => {
        #[doc = $first]
        $(#[doc = $more])*
        $vis struct $ty;

        impl $crate::Operation for $ty {
            type Input = $input;
            type Output = $output;
            const NAME: &'static str = $name;
            const ASSET: &'static str = $crate::__operation_asset!($($asset)?);
            const DESCRIPTION: &'static str = $crate::__private::doc_line(&[$first $(, $more)*]);

            fn slot_cache() -> ::core::option::Option<&'static $crate::table::SlotCache> {
                static CACHE: $crate::table::SlotCache = $crate::table::SlotCache::new();
                ::core::option::Option::Some(&CACHE)
            }
        }

        const _: () = $crate::__private::check_operation_name($name);
        $(const _: () = $crate::__private::check_operation_asset($asset);)?

        const _: () = {
            $crate::__register_operation!($crate::event::OperationInfo {
                name: $name,
                asset: $crate::__operation_asset!($($asset)?),
                description: $crate::__private::doc_line(&[$first $(, $more)*]),
                input: ::core::stringify!($input),
                output: ::core::stringify!($output),
            });
        };
    };
    (
        $vis:vis $ty:ident : $($rest:tt)*
    ) => {
        ::core::compile_error!(
            "`operation!` needs a doc comment on the operation (`/// Send an invitation.`): its \
             first line is the catalog's description"
        );
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __operation_asset {
    () => {
        "*"
    };
    ($asset:literal) => {
        $asset
    };
}

/// The first line with something on it of a doc comment, given as its attributes' literals (a
/// line each for `///`, or one `/** */` block), trimmed, and without the `*` a block's lines
/// may start with: an operation's description.
#[doc(hidden)]
pub const fn doc_line(lines: &[&'static str]) -> &'static str {
    let mut i = 0;
    while i < lines.len() {
        let mut rest = lines[i].as_bytes();
        while !rest.is_empty() {
            let mut end = 0;
            while end < rest.len() && rest[end] != b'\n' {
                end += 1;
            }
            let (line, after) = rest.split_at(end);
            let mut line = line.trim_ascii();
            if let [b'*', tail @ ..] = line {
                line = tail.trim_ascii();
            }
            if !line.is_empty() {
                return match core::str::from_utf8(line) {
                    Ok(line) => line,
                    Err(_) => "",
                };
            }
            rest = match after {
                [_, next @ ..] => next,
                [] => after,
            };
        }
        i += 1;
    }
    ""
}

/// Whether `name` is one an operation or a fixed asset can have: 1 to 128 bytes, no space or
/// control character, not `*`.
const fn plain_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    if bytes.is_empty() || bytes.len() > 128 || matches!(bytes, [b'*']) {
        return false;
    }
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] <= b' ' || bytes[i] == 0x7f {
            return false;
        }
        i += 1;
    }
    true
}

/// `operation!`'s check of its name, at compile time.
#[doc(hidden)]
pub const fn check_operation_name(name: &str) {
    if !plain_name(name) {
        panic!(
            "an operation's name is 1 to 128 bytes with no space or control character, and \
             not `*`, such as \"team.send_invitation\""
        );
    }
}

/// `operation!`'s check of its fixed asset (`on "..."`), at compile time.
#[doc(hidden)]
pub const fn check_operation_asset(asset: &str) {
    if !plain_name(asset) {
        panic!(
            "an operation's asset (`on \"...\"`) is 1 to 128 bytes with no space or control \
             character, and not `*` (leave `on` out for an operation on no one asset)"
        );
    }
}

/// A doc line without its leading space, usable in constants.
#[doc(hidden)]
pub const fn trim_doc(line: &'static str) -> &'static str {
    line.trim_ascii()
}

#[cfg(test)]
mod doc_tests {
    use super::{doc_line, plain_name};

    #[test]
    fn an_operations_description_is_its_docs_first_line_with_something_on_it() {
        assert_eq!(doc_line(&[" Send an invitation."]), "Send an invitation.");
        assert_eq!(doc_line(&["", " Second line.", " Third."]), "Second line.");
        // A `/** */` block is one literal, with its line breaks and decoration.
        assert_eq!(
            doc_line(&["\n     * Ship an order.\n     * More.\n     "]),
            "Ship an order."
        );
        assert_eq!(doc_line(&["\n", "   "]), "");
    }

    #[test]
    fn an_operations_name_is_plain() {
        assert!(plain_name("team.send_invitation"));
        for bad in ["", "*", "a b", "tab\there", "line\nbreak", &"x".repeat(129)] {
            assert!(!plain_name(bad), "{bad:?}");
        }
    }
}
