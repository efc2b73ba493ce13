//! The testing kit: unit-test one handler, or a whole chain, through exactly the adapters and
//! policies the runtime uses; record which handlers ran, in which order, and how each went; check
//! that a handlers crate is linked; and keep the set of handlers under review with a snapshot.
//!
//! ```
//! use hooks_core::testing::Chain;
//! use hooks_core::{Context, HookError, User, ops::data::Create};
//! # #[derive(Debug)] struct Contact;
//! # impl hooks_core::entity::Record for Contact {
//! #     fn table(&self) -> &str { "Contact" }
//! #     fn field_names(&self) -> Vec<&str> { vec![] }
//! #     fn get(&self, f: &str) -> Result<serde_json::Value, HookError> { Err(hooks_core::entity::unknown_field("Contact", f)) }
//! #     fn set(&mut self, f: &str, _: serde_json::Value) -> Result<(), HookError> { Err(hooks_core::entity::unknown_field("Contact", f)) }
//! # }
//! # impl hooks_core::Entity for Contact { const TABLE: &'static str = "Contact"; }
//!
//! // All handlers of `data.create` on Contact, with a fake default; then what ran.
//! let chain = Chain::<Create<Contact>>::all();
//! let mut ctx = Context::client().with_user(User::new("ada"));
//! let out = chain.run_sync(&mut ctx, Contact, |c| Ok(c));
//! assert!(out.is_ok());
//! assert!(chain.ran().is_empty()); // this doctest registers no handler
//! ```

use std::future::Future;
use std::marker::PhantomData;
use std::path::Path;
use std::sync::Arc;

use crate::catalog::Catalog;
use crate::context::Context;
use crate::dispatch::{Hooks, HooksBuilder};
use crate::error::HookError;
use crate::event::Operation;
use crate::registration::{Registration, registered};
use crate::stats::{Ran, Trace};
use crate::table::Table;

/// The handlers of one operation, run with a fake default and traced. See the
/// [module docs](self).
pub struct Chain<Op: Operation> {
    hooks: Hooks,
    trace: Arc<Trace>,
    op: PhantomData<fn() -> Op>,
}

impl<Op: Operation> std::fmt::Debug for Chain<Op> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chain")
            .field("operation", &Op::NAME)
            .field("hooks", &self.hooks)
            .finish()
    }
}

/// Does `reg` answer to `name`: its whole id, or its last segments (`"check_email"`,
/// `"contacts::check_email"`)?
fn answers_to(reg: &Registration, name: &str) -> bool {
    reg.id == name
        || reg
            .id
            .strip_suffix(name)
            .is_some_and(|rest| rest.ends_with("::"))
}

impl<Op: Operation> Chain<Op> {
    /// Every handler of `Op` linked into the binary (on its asset and on `"*"`), with the default
    /// policies.
    #[track_caller]
    pub fn all() -> Self {
        Self::select(None, |b| b)
    }

    /// Only the named handlers of `Op`: each name is a handler's id, or its last segments
    /// (`"check_email"`). A function with several attributes of `Op` (on several tables or
    /// channels) is one name. Panics with the candidates when a name matches no handler of
    /// `Op`, or the handlers of more than one function. An empty list runs the default alone.
    #[track_caller]
    pub fn only(names: &[&str]) -> Self {
        Self::select(Some(names), |b| b)
    }

    /// [`Chain::only`] (or all, with `None`) under a runtime configured by `configure`, such as
    /// `|b| b.default_timeout(Duration::from_millis(50))`.
    #[track_caller]
    pub fn configured(
        names: Option<&[&str]>,
        configure: impl FnOnce(HooksBuilder) -> HooksBuilder,
    ) -> Self {
        Self::select(names, configure)
    }

    #[track_caller]
    fn select(
        names: Option<&[&str]>,
        configure: impl FnOnce(HooksBuilder) -> HooksBuilder,
    ) -> Self {
        // Two operations or events of `Op`'s name: the service's runtime would not build, and
        // the chain would mix their handlers.
        let mut clash = Vec::new();
        crate::dispatch::check_operations(
            crate::registration::declared_operations().filter(|op| op.name == Op::NAME),
            &mut clash,
        );
        if let Some(problem) = clash.first() {
            panic!("{}", problem.problem);
        }
        let of_op: Vec<&'static Registration> = registered()
            .filter(|r| {
                r.operation == Op::NAME
                    && (r.asset == Op::ASSET || r.asset == "*" || Op::ASSET == "*")
            })
            .collect();
        let chosen: Vec<&'static Registration> = match names {
            None => of_op,
            Some(names) => {
                let mut chosen: Vec<&'static Registration> = Vec::new();
                for name in names {
                    let matching: Vec<_> = of_op
                        .iter()
                        .copied()
                        .filter(|r| answers_to(r, name))
                        .collect();
                    let ids = || of_op.iter().map(|r| r.id).collect::<Vec<_>>().join(", ");
                    match matching.as_slice() {
                        [] => panic!(
                            "no handler of {} on {:?} answers to {name:?}; its handlers: [{}]",
                            Op::NAME,
                            Op::ASSET,
                            ids()
                        ),
                        // One function (perhaps on several assets), named once or again.
                        [first, ..] if matching.iter().all(|r| r.id == first.id) => {
                            for reg in matching {
                                if !chosen.iter().any(|c| std::ptr::eq(*c, reg)) {
                                    chosen.push(reg);
                                }
                            }
                        }
                        _ => panic!(
                            "{name:?} answers to several handlers of {}: [{}]; use the whole id",
                            Op::NAME,
                            matching.iter().map(|r| r.id).collect::<Vec<_>>().join(", ")
                        ),
                    }
                }
                chosen
            }
        };
        let table = match Table::from_registrations(chosen) {
            Ok(table) => table,
            Err(e) => panic!("the chosen handlers do not form a valid table: {e}"),
        };
        let trace = Arc::new(Trace::new());
        let builder = Hooks::builder()
            .table(table)
            .max_subscribers(usize::MAX)
            .trace(Arc::clone(&trace));
        match configure(builder).build() {
            Ok(hooks) => Chain {
                hooks,
                trace,
                op: PhantomData,
            },
            Err(e) => panic!("the test runtime does not build: {e}"),
        }
    }

    /// Run the chain on `input` with `default` standing in for the service's logic.
    pub async fn run<F, Fut>(
        &self,
        ctx: &mut Context,
        input: Op::Input,
        default: F,
    ) -> Result<Op::Output, HookError>
    where
        F: FnOnce(Op::Input) -> Fut,
        Fut: Future<Output = Result<Op::Output, HookError>>,
    {
        self.hooks.run::<Op, F, Fut>(ctx, input, default).await
    }

    /// [`Chain::run`] for synchronous handlers.
    pub fn run_sync<F>(
        &self,
        ctx: &mut Context,
        input: Op::Input,
        default: F,
    ) -> Result<Op::Output, HookError>
    where
        F: FnOnce(Op::Input) -> Result<Op::Output, HookError>,
    {
        self.hooks.run_sync::<Op, F>(ctx, input, default)
    }

    /// [`Chain::run`] on an asset the call names ([`Hooks::run_on`]): a dynamic table's find,
    /// delete, find by id or bulk operation, or a channel.
    pub async fn run_on<F, Fut>(
        &self,
        ctx: &mut Context,
        asset: &str,
        input: Op::Input,
        default: F,
    ) -> Result<Op::Output, HookError>
    where
        F: FnOnce(Op::Input) -> Fut,
        Fut: Future<Output = Result<Op::Output, HookError>>,
    {
        self.hooks
            .run_on::<Op, F, Fut>(ctx, asset, input, default)
            .await
    }

    /// [`Chain::run_sync`] on an asset the call names ([`Hooks::run_sync_on`]).
    pub fn run_sync_on<F>(
        &self,
        ctx: &mut Context,
        asset: &str,
        input: Op::Input,
        default: F,
    ) -> Result<Op::Output, HookError>
    where
        F: FnOnce(Op::Input) -> Result<Op::Output, HookError>,
    {
        self.hooks.run_sync_on::<Op, F>(ctx, asset, input, default)
    }

    /// The handler runs recorded since the last call, in order, emptying the record.
    pub fn ran(&self) -> Vec<Ran> {
        self.trace.take()
    }

    /// The runs recorded since the last call as `"<id> <step>"` lines (`"app::check continued"`),
    /// emptying the record: handy in `assert_eq!`.
    pub fn ran_lines(&self) -> Vec<String> {
        self.trace.take().iter().map(ToString::to_string).collect()
    }

    /// The runtime behind the chain.
    pub fn hooks(&self) -> &Hooks {
        &self.hooks
    }
}

/// Panic unless this binary has handlers from `crate_name` (the crate's own name, as its
/// handlers' ids begin: `"my_handlers"`; Cargo.toml's `my-handlers` is taken as that); returns
/// how many.
///
/// It checks the binary it runs in: a test binary that names the crate passes even when the
/// service's own `main.rs` does not. To check the service, call
/// [`HooksBuilder::require_handlers_from`] where it builds its runtime.
pub fn assert_handlers_from(crate_name: &str) -> usize {
    let n = crate::dispatch::crate_handlers(registered(), crate_name);
    assert!(n > 0, "{}", crate::registration::unlinked_crate(crate_name));
    n
}

/// Compare the set of handlers (every handler's event, asset, phase, id, priority, mode and file:
/// [`Catalog::snapshot`]) with the checked-in file at `path`, so that a change shows up in review.
///
/// When the file does not exist, or the variable `HOOKS_UPDATE_SNAPSHOTS` is set to anything but
/// `0`, `false`, `no` or nothing, the file is written instead. Otherwise a difference panics,
/// listing the lines removed and added; line endings (`\r\n` or `\n`) and a last line break do
/// not count. A file that exists but cannot be read panics too: it is never overwritten.
///
/// Each test binary has its own set of handlers (those its code links): give each binary that
/// calls this a snapshot file of its own.
pub fn assert_catalog_snapshot(path: impl AsRef<Path>) {
    let path = path.as_ref();
    let hooks = match Hooks::builder().max_subscribers(usize::MAX).build() {
        Ok(hooks) => hooks,
        Err(e) => panic!("the hook table does not build: {e}"),
    };
    let now = hooks.catalog().snapshot();
    let update = update_requested(std::env::var("HOOKS_UPDATE_SNAPSHOTS").ok().as_deref());
    let before = match std::fs::read_to_string(path) {
        Ok(before) => Some(before),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => panic!(
            "cannot read the snapshot {}: {e}; fix or delete it (it is not overwritten)",
            path.display()
        ),
    };
    match before {
        Some(before) if !update => {
            let old: Vec<&str> = before.lines().collect();
            let new: Vec<&str> = now.lines().collect();
            if old != new {
                let diff = line_diff(&old, &new);
                panic!(
                    "the handlers differ from the snapshot {}:\n{diff}review the change, then \
                     rerun with HOOKS_UPDATE_SNAPSHOTS=1 to accept it",
                    path.display()
                );
            }
        }
        _ => {
            if let Some(dir) = path.parent()
                && !dir.as_os_str().is_empty()
                && let Err(e) = std::fs::create_dir_all(dir)
            {
                panic!("cannot create {}: {e}", dir.display());
            }
            if let Err(e) = std::fs::write(path, &now) {
                panic!("cannot write the snapshot {}: {e}", path.display());
            }
        }
    }
}

/// Whether `HOOKS_UPDATE_SNAPSHOTS`, set to `value`, asks for the snapshots to be written: any
/// value but `0`, `false`, `no` or nothing (`HOOKS_UPDATE_SNAPSHOTS=0` in a CI's settings must not
/// accept every change).
fn update_requested(value: Option<&str>) -> bool {
    value.is_some_and(|v| {
        !matches!(
            v.trim().to_ascii_lowercase().as_str(),
            "" | "0" | "false" | "no"
        )
    })
}

/// The lines of `old` not in `new` (`- `) and of `new` not in `old` (`+ `), each as many times
/// as it is missing; or, when both hold the same lines, that their order changed.
fn line_diff(old: &[&str], new: &[&str]) -> String {
    let count = |lines: &[&str], line: &str| lines.iter().filter(|l| **l == line).count();
    let mut diff = String::new();
    for (sign, these, others) in [("-", old, new), ("+", new, old)] {
        let mut seen: Vec<&str> = Vec::new();
        for line in these {
            if seen.contains(line) {
                continue;
            }
            seen.push(line);
            for _ in count(others, line)..count(these, line) {
                diff.push_str(&format!("{sign} {line}\n"));
            }
        }
    }
    if diff.is_empty() {
        diff.push_str("(the same lines, in another order)\n");
    }
    diff
}

/// The catalog of every handler linked into the binary (no subscriber limit applied).
pub fn catalog() -> Catalog {
    match Table::global() {
        Ok(table) => Catalog::of(table),
        Err(e) => panic!("the hook table does not build: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::{line_diff, update_requested};

    #[test]
    fn only_a_value_that_says_yes_updates_the_snapshots() {
        for yes in ["1", "true", "yes", "TRUE", " 1 "] {
            assert!(update_requested(Some(yes)), "{yes:?}");
        }
        for no in ["0", "false", "no", "", " ", "False"] {
            assert!(!update_requested(Some(no)), "{no:?}");
        }
        assert!(!update_requested(None));
    }

    #[test]
    fn a_snapshot_diff_names_each_missing_line_as_often_as_it_is_missing() {
        assert_eq!(line_diff(&["a", "a", "b"], &["a", "c"]), "- a\n- b\n+ c\n");
        assert_eq!(
            line_diff(&["a", "b"], &["b", "a"]),
            "(the same lines, in another order)\n"
        );
    }
}
