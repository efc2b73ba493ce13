//! The dispatcher: the flow of one API call, top to bottom.
//!
//! ```text
//! 1. resolve the slot of (operation, asset)      one atomic load once cached; no handlers: run the default
//! 2. before handlers, in order                   each may change the input, answer (Flow::Return) or reject
//! 3. the default logic                           unless a before handler answered or rejected
//! 4. after handlers, in order                    see &mut Result<Output, HookError>; run after a short-circuit
//!                                                or a rejection too; an Err they return replaces the result
//! 5. background handlers                         queued with an owned copy of the result; never awaited
//! ```
//!
//! Sync handlers are called through a plain function pointer, on synchronous and asynchronous calls
//! alike, in one plain loop when a slot has no `async fn` handler. When the runtime's policies allow
//! it (no trace, no timed history, no debug spans) and no handler of the slot has its own timeout,
//! the loop is the fast one: each before handler's verdict comes back in a register, and panics are
//! caught once per loop instead of once per handler. An asynchronous call with no handlers returns
//! the default's own future; one with handlers boxes its flow once, so that the call's future stays
//! small; each `async fn` handler's future is written into a [`FutureSlot`] inside that flow, not
//! boxed, and polled at once by its adapter. The handlers of a slot with `async fn` handlers run in
//! a plain loop inside one poll of the call (`Hooks::before_run`, `Hooks::after_run`) for as long
//! as each finishes at its first poll; only a handler that waits is awaited, and the loop resumes
//! after it.

use std::any::Any;
use std::cell::Cell;
use std::future::Future;
use std::mem::ManuallyDrop;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::{Pin, pin};
use std::ptr;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use crate::background::{BackgroundConfig, BackgroundStats, Job, Places, Queue};
use crate::context::Context;
use crate::entity::RecordsMut;
use crate::entity::{Affected, BulkChanges, Changes, DynRecord, Entity, Key, Query};
use crate::error::{HookError, TableError, TableProblem};
use crate::event::{Flow, Operation, OperationInfo};
use crate::future::{FlowBox, FutureSlot, WithTask, read_words};
use crate::ops::data::{
    BulkCreate, BulkDelete, BulkUpdate, Create, Delete, Find, FindById, Update,
};
use crate::ops::events::{Emit, Event};
use crate::ops::messaging::{Message, Publish, Published};
use crate::policy::{self, AfterFailure, Failure, First, HandlerCode, Policy};
use crate::registration::{
    BeforeArgs, BoxFuture, Early, Registration, SyncBefore, WildAsync, WildSync,
    declared_operations, registered,
};
use crate::stats::{self, History, Outcome, Step, Trace};
use crate::table::{
    AfterFn, BareLoop, BareRun, BareShape, BeforeFn, Entry, Erased, ErasedAsyncAfter,
    ErasedAsyncBefore, ErasedBare, ErasedBareCtx, ErasedBareFlow, ErasedBareFlowCtx,
    ErasedBareUnit, ErasedBareUnitCtx, ErasedBeforeArgs, ErasedSlot, ErasedSyncAfter,
    ErasedSyncBefore, Shape, Slot, Table,
};

/// A value its caller handed over where it lies, in the caller's `ManuallyDrop`, instead of
/// moving it in: a by-value argument is copied into the callee's own memory first, and that copy,
/// right after the caller wrote the value, reads it back with wider loads than the caller's
/// stores, which wait until the stores reach the cache (`BENCHMARKS.md`, finding 31). Dropped in
/// place unless taken, also when unwinding.
struct Handed<'a, T>(&'a mut ManuallyDrop<T>);

impl<'a, T> Handed<'a, T> {
    /// # Safety
    /// The caller does not use or drop the value again.
    #[inline(always)]
    unsafe fn new(value: &'a mut ManuallyDrop<T>) -> Self {
        Handed(value)
    }

    /// The value, where it lies.
    #[inline(always)]
    fn as_mut_ptr(&mut self) -> *mut T {
        ptr::from_mut(&mut **self.0)
    }

    /// The value, moved out.
    #[inline(always)]
    fn take(self) -> T {
        let at = ptr::from_mut(&mut *self.0);
        std::mem::forget(self);
        // SAFETY: the value was handed over (`new`) and is taken once: `self` is forgotten, so
        // it does not drop it as well.
        unsafe { ManuallyDrop::take(&mut *at) }
    }
}

impl<T> Drop for Handed<'_, T> {
    fn drop(&mut self) {
        // SAFETY: the value was handed over (`new`), and not taken (`take` forgets `self`).
        unsafe { ManuallyDrop::drop(self.0) }
    }
}

/// `$call` for the shape `$shape` of a bare loop, with `$S` naming the type its handlers are read
/// back as: each loop is compiled for the four shapes whose handlers cannot answer the call, and
/// the call picks one. A loop of the shapes that answer is compiled for its output type instead
/// ([`Hooks::answer_before`]): here it gets `$other`.
macro_rules! by_shape {
    ($shape:expr, $S:ident => $call:expr, answers => $other:expr) => {
        match $shape {
            BareShape::Flow
            | BareShape::FlowCtx
            | BareShape::Own
            | BareShape::OwnCtx
            | BareShape::OwnAfter
            | BareShape::OwnAfterCtx
            | BareShape::Adapted => $other,
            BareShape::Plain => {
                type $S = ErasedBare;
                $call
            }
            BareShape::Ctx => {
                type $S = ErasedBareCtx;
                $call
            }
            BareShape::Unit => {
                type $S = ErasedBareUnit;
                $call
            }
            BareShape::UnitCtx => {
                type $S = ErasedBareUnitCtx;
                $call
            }
        }
    };
}

/// `$f::<.., CHECK, COUNT>(args)` with the two flags of a fast loop (whether handlers need
/// their switch and origin checked, whether runs are counted) turned into constants: each loop
/// is compiled in its four variants, and the call picks one.
macro_rules! with_flags {
    ($check:expr, $count:expr, $f:ident $(::<$($g:ty),*>)? ($($arg:expr),*)) => {
        match ($check, $count) {
            (false, false) => $f::<$($($g,)*)? false, false>($($arg),*),
            (true, false) => $f::<$($($g,)*)? true, false>($($arg),*),
            (false, true) => $f::<$($($g,)*)? false, true>($($arg),*),
            (true, true) => $f::<$($($g,)*)? true, true>($($arg),*),
        }
    };
    // A third flag, last: whether the loop tells the context which handler runs.
    ($check:expr, $count:expr, $enter:expr, $f:ident ($($arg:expr),*)) => {
        match ($check, $count, $enter) {
            (false, false, false) => $f::<false, false, false>($($arg),*),
            (true, false, false) => $f::<true, false, false>($($arg),*),
            (false, true, false) => $f::<false, true, false>($($arg),*),
            (true, true, false) => $f::<true, true, false>($($arg),*),
            (false, false, true) => $f::<false, false, true>($($arg),*),
            (true, false, true) => $f::<true, false, true>($($arg),*),
            (false, true, true) => $f::<false, true, true>($($arg),*),
            (true, true, true) => $f::<true, true, true>($($arg),*),
        }
    };
}

/// The default limit of handlers subscribed to one event (operation, asset and phase).
pub const DEFAULT_MAX_SUBSCRIBERS: usize = 10;

/// The default limit of a custom event's or a dynamic record's size, serialized as JSON: 1 MiB.
pub const DEFAULT_MAX_PAYLOAD_BYTES: usize = 1 << 20;

/// The hooks runtime: runs an operation's handlers around the service's default logic.
///
/// Build it once at start-up with [`Hooks::new`] (defaults) or [`Hooks::builder`]; both build and
/// validate the table of every handler linked into the binary. `Hooks` is cheap to clone.
///
/// Policies (see the README for the full list):
/// - a nested call, made from handler code, fires no events unless its context opts in
///   ([`Context::with_nested_events`]);
/// - a before handler that returns `Err`, panics or times out rejects the call (fail closed);
/// - an after handler that panics or times out is logged and counted, and the result is kept
///   ([`AfterFailure`]);
/// - `async fn` handlers are cut at their timeout (default 10 s) when they run inside a tokio
///   runtime with timers; sync handlers cannot be interrupted and must not block (one with its
///   own `timeout` that overran it counts as timed out when it returns);
/// - background after handlers run on a bounded queue ([`BackgroundConfig`]); call
///   [`Hooks::shutdown`] before exiting so that every queued handler finishes.
#[derive(Clone, Debug)]
pub struct Hooks {
    inner: Arc<Inner>,
    /// The global table when this runtime uses it, kept beside the `Arc` rather than behind it:
    /// resolving an operation with no handlers is then one load of `self`, one of the
    /// operation's slot cache and a compare.
    global: Option<&'static Table>,
}

#[derive(Debug)]
struct Inner {
    trace: Option<Arc<Trace>>,
    table: TableRef,
    policy: Policy,
    queue: Queue,
    max_payload_bytes: usize,
}

#[derive(Debug)]
enum TableRef {
    Global(&'static Table),
    Owned(Table),
}

/// Settings of a [`Hooks`] runtime; start with [`Hooks::builder`].
#[derive(Debug)]
pub struct HooksBuilder {
    policy: Policy,
    background: BackgroundConfig,
    max_subscribers: usize,
    max_payload_bytes: usize,
    table: Option<Table>,
    trace: Option<Arc<Trace>>,
    required_crates: Vec<String>,
}

impl HooksBuilder {
    /// The timeout of `async fn` handlers that do not set their own (default 10 s).
    pub fn default_timeout(mut self, timeout: Duration) -> Self {
        self.policy.default_timeout = timeout;
        self
    }

    /// What a panicking or timed-out after handler does to the result (default: keep it).
    pub fn after_failure(mut self, policy: AfterFailure) -> Self {
        self.policy.after_failure = policy;
        self
    }

    /// How much execution history to keep (default: counts).
    pub fn history(mut self, history: History) -> Self {
        self.policy.history = history;
        self
    }

    /// The background queue's capacity, concurrency and backpressure.
    pub fn background(mut self, config: BackgroundConfig) -> Self {
        self.background = config;
        self
    }

    /// The most handlers one event (operation, asset, phase) may have (default 10).
    pub fn max_subscribers(mut self, max: usize) -> Self {
        self.max_subscribers = max;
        self
    }

    /// The largest custom event or dynamic record, serialized as JSON (default 1 MiB).
    pub fn max_payload_bytes(mut self, max: usize) -> Self {
        self.max_payload_bytes = max;
        self
    }

    /// Record every handler run in `trace` (the testing kit uses it; it costs a lock per run).
    pub fn trace(mut self, trace: Arc<Trace>) -> Self {
        self.trace = Some(trace);
        self
    }

    /// Fail the build unless the table has handlers from each of these crates: the start-up check
    /// that a handlers crate was linked (see the README on linking).
    pub fn require_handlers_from(mut self, crates: &[&str]) -> Self {
        self.required_crates
            .extend(crates.iter().map(|c| (*c).to_owned()));
        self
    }

    /// Use this table instead of every handler linked into the binary (tests use it to run a
    /// chosen set of handlers).
    pub fn table(mut self, table: Table) -> Self {
        self.table = Some(table);
        self
    }

    /// Build the runtime, validating the table against these settings: every problem is reported,
    /// each naming the handler and its source location.
    pub fn build(self) -> Result<Hooks, TableError> {
        let table = match self.table {
            Some(t) => Ok(TableRef::Owned(t)),
            None => Table::global().map(TableRef::Global),
        };
        // Every problem at once: those of the table, and over the same registrations those of
        // the subscriber limit and of the crates that must be linked.
        let mut problems = Vec::new();
        let unbuilt: Vec<&'static Registration>;
        let regs = match &table {
            Ok(TableRef::Global(t)) => t.registrations(),
            Ok(TableRef::Owned(t)) => t.registrations(),
            Err(e) => {
                problems.extend(e.problems.iter().cloned());
                let mut regs: Vec<_> = registered().collect();
                regs.sort_by_key(|r| (r.operation, r.asset, r.phase));
                unbuilt = regs;
                &unbuilt
            }
        };
        check_subscribers(regs, self.max_subscribers, &mut problems);
        check_linked(regs, &self.required_crates, &mut problems);
        if !matches!(table, Ok(TableRef::Owned(_))) {
            check_operations(declared_operations(), &mut problems);
        }
        let table = match table {
            Ok(table) if problems.is_empty() => table,
            _ => return Err(TableError { problems }),
        };
        let global = match table {
            TableRef::Global(t) => Some(t),
            TableRef::Owned(_) => None,
        };
        Ok(Hooks {
            global,
            inner: Arc::new(Inner {
                trace: self.trace,
                table,
                policy: self.policy,
                queue: Queue::new(self.background),
                max_payload_bytes: self.max_payload_bytes,
            }),
        })
    }
}

/// Every event with more handlers than `max`, each of its handlers named.
fn check_subscribers(regs: &[&'static Registration], max: usize, problems: &mut Vec<TableProblem>) {
    // `regs` is sorted by operation, asset and phase, so each event is one run.
    for event in
        regs.chunk_by(|a, b| (a.operation, a.asset, a.phase) == (b.operation, b.asset, b.phase))
    {
        if event.len() > max {
            for reg in event {
                problems.push(TableProblem {
                    handler: reg.id.to_owned(),
                    file: reg.file.to_owned(),
                    line: reg.line,
                    problem: format!(
                        "{} handlers subscribe to {} {} on \"{}\", over the limit of {max}; merge some, \
                         or raise it with Hooks::builder().max_subscribers(n)",
                        event.len(),
                        reg.phase.as_str(),
                        reg.operation,
                        reg.asset
                    ),
                });
            }
        }
    }
}

/// How many background jobs a call is admitted for: one for each background handler that runs
/// for its context (whether it runs on the result is known only at the end).
fn background_places<T>(handlers: &[Entry<T>], ctx: &Context) -> usize {
    handlers.iter().filter(|h| h.reg.runs_for(ctx)).count()
}

/// The context of an asynchronous call's flow ([`Hooks::run_slot`]) once the call has begun,
/// which it leaves as a call leaves it when the flow ends, however it ends: dropped at an await
/// (the call cancelled: a client gone, a timeout around the call) or by a panic of its default,
/// it also gives back the admission of the call's background jobs, so that a shutdown does not
/// wait for jobs the call will never queue.
struct InCall<'c> {
    ctx: &'c mut Context,
    /// Whether the call's admission is in the context's state, not yet taken back.
    held: bool,
}

impl Drop for InCall<'_> {
    #[inline]
    fn drop(&mut self) {
        self.ctx.leave();
        if self.held {
            self.give_back();
        }
    }
}

impl InCall<'_> {
    #[cold]
    #[inline(never)]
    fn give_back(&mut self) {
        drop(self.ctx.take_state::<HeldPlaces>());
    }
}

/// A call's admission to the background queue (`Hooks::admit`, `Hooks::sync_rare_begin`),
/// kept in its state until its background phase ([`Hooks::background_sync`]). Private: no
/// handler can take it.
struct HeldPlaces(Places);

/// Every operation or event name that two declarations share: the catalog could not tell them
/// apart, and a call of one would find the handlers of the other and fail.
pub(crate) fn check_operations<'a>(
    declared: impl Iterator<Item = &'a OperationInfo>,
    problems: &mut Vec<TableProblem>,
) {
    let mut declared: Vec<&OperationInfo> = declared.collect();
    declared.sort_by_key(|op| op.name);
    for same in declared.chunk_by(|a, b| a.name == b.name) {
        if let [first, ..] = same
            && same.len() > 1
        {
            let list = same
                .iter()
                .map(|op| format!("`{}` => `{}` ({:?})", op.input, op.output, op.description))
                .collect::<Vec<_>>()
                .join(", ");
            problems.push(TableProblem {
                handler: first.name.to_owned(),
                file: String::new(),
                line: 0,
                problem: format!(
                    "{} operations or events are named \"{}\": {list}. Give each its own \
                     name (`operation!`'s name, or `#[event(name = \"...\")]`)",
                    same.len(),
                    first.name,
                ),
            });
        }
    }
}

// A runtime is shared by every request of a service, across threads.
const _: fn() = || {
    fn shared<T: Send + Sync + 'static>() {}
    shared::<Hooks>();
};

/// What a dispatch is for: an API call, or a custom event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CallKind {
    /// An after handler's `Err` replaces the result.
    Call,
    /// Every handler runs: an after handler's `Err` is logged and counted, and the next one runs.
    Event,
}

impl CallKind {
    /// The kind of a call of `Op`: an event's ([`Operation::EVENT`]) however it is run.
    #[inline(always)]
    const fn of<Op: Operation>() -> CallKind {
        if Op::EVENT {
            CallKind::Event
        } else {
            CallKind::Call
        }
    }
}

/// How many of `regs` come from the crate `name` (as Cargo.toml or the code names it).
pub(crate) fn crate_handlers<'r>(
    regs: impl Iterator<Item = &'r Registration>,
    name: &str,
) -> usize {
    let name = crate::registration::crate_path_name(name);
    regs.filter(|r| {
        r.id.strip_prefix(name.as_str())
            .is_some_and(|rest| rest.starts_with("::"))
    })
    .count()
}

/// Every required crate that contributed no handler, as a problem.
fn check_linked(
    regs: &[&'static Registration],
    crates: &[String],
    problems: &mut Vec<TableProblem>,
) {
    let missing = crates
        .iter()
        .filter(|c| crate_handlers(regs.iter().copied(), c) == 0)
        .map(|c| TableProblem {
            handler: format!("{}::*", crate::registration::crate_path_name(c)),
            file: String::new(),
            line: 0,
            problem: crate::registration::unlinked_crate(c),
        });
    problems.extend(missing);
}

/// Whether a call fires its events.
enum Nesting {
    /// A top-level call, or a nested one that opted in within its limit.
    Fire,
    /// A nested call: the default runs, no handler does.
    Silent,
}

/// How the part of a call with sync handlers before its default ended ([`Hooks::sync_begin`]).
enum Begun<O> {
    /// The call fails before anything runs: it is nested over the recursion limit.
    Failed(HookError),
    /// A nested call that fires no handler: the default runs alone.
    Silent,
    /// A before handler answered or rejected: this is the result the after handlers see.
    Answered(Result<O, HookError>),
    /// The default runs, then the after handlers.
    Go,
}

/// How the part of a call with sync handlers before its default ended, with the operation's
/// types erased ([`Hooks::sync_before`], [`Hooks::before_handlers`]).
enum Began {
    /// The call fails before anything runs: the slot has a problem, a sync call meets an
    /// `async fn` handler, or the call is nested over the recursion limit.
    Failed(HookError),
    /// As [`Begun::Silent`].
    Silent,
    /// As [`Begun::Go`].
    Go,
    /// A before handler rejected the call, or failed: the result is this error.
    Rejected(HookError),
    /// A before handler answered: the answer is in the call's `Early<Output>`.
    Answered,
}

impl Began {
    /// As [`Begun`], with the early answer that the handlers left in `early`.
    #[inline(always)]
    fn typed<O>(self, early: Early<O>) -> Begun<O> {
        match self {
            Began::Failed(e) => Begun::Failed(e),
            Began::Silent => Begun::Silent,
            Began::Go => Begun::Go,
            Began::Rejected(e) => Begun::Answered(Err(e)),
            Began::Answered => Begun::Answered(early.unwrap_or_else(|| Err(verdict_missing()))),
        }
    }
}

impl Hooks {
    /// The runtime over every handler linked into this binary, with the default policies. Fails
    /// with every problem of the handler set (type mismatches, duplicates, too many subscribers),
    /// each naming the handler and its source location.
    pub fn new() -> Result<Hooks, TableError> {
        Self::builder().build()
    }

    /// Settings for a runtime: timeouts, history, background queue, limits.
    pub fn builder() -> HooksBuilder {
        HooksBuilder {
            policy: Policy::default(),
            background: BackgroundConfig::default(),
            max_subscribers: DEFAULT_MAX_SUBSCRIBERS,
            max_payload_bytes: DEFAULT_MAX_PAYLOAD_BYTES,
            table: None,
            trace: None,
            required_crates: Vec::new(),
        }
    }

    /// A runtime over an explicit table, with the default policies and no subscriber limit.
    pub fn with_table(table: Table) -> Hooks {
        let built = Self::builder()
            .table(table)
            .max_subscribers(usize::MAX)
            .build();
        match built {
            Ok(hooks) => hooks,
            Err(_) => {
                unreachable!("an explicit table with no subscriber limit has nothing to check")
            }
        }
    }

    /// The dispatch table.
    pub fn table(&self) -> &Table {
        match &self.inner.table {
            TableRef::Global(t) => t,
            TableRef::Owned(t) => t,
        }
    }

    /// Switch the handler `id` (module path and function name) on or off, without a rebuild.
    /// Returns how many registrations carry that id (a function with two attributes has two), or
    /// a 404 error when none does.
    ///
    /// The switch belongs to the handler's registration, as its counters do
    /// ([`crate::stats`]): it holds in the whole process, for every runtime built in it (the test
    /// kit's [`Chain`](crate::testing::Chain)s too), not only for this one.
    pub fn set_enabled(&self, id: &str, on: bool) -> Result<usize, HookError> {
        let mut n = 0;
        for reg in self.table().registrations().iter().filter(|r| r.id == id) {
            reg.state.set_enabled(on);
            n += 1;
        }
        if n == 0 {
            return Err(HookError::not_found(format!(
                "no hook handler has the id {id:?}"
            )));
        }
        tracing::info!(handler = id, enabled = on, "hook handler switched");
        Ok(n)
    }

    /// The catalog: every operation with its subscriber count, every handler with its settings,
    /// source location and execution history.
    pub fn catalog(&self) -> crate::catalog::Catalog {
        crate::catalog::Catalog::of(self.table())
    }

    /// Counters of the background queue.
    pub fn background_stats(&self) -> BackgroundStats {
        self.inner.queue.stats()
    }

    /// Close the background queue and wait, up to `deadline`, for every queued handler to finish,
    /// and for the jobs of the calls already admitted to the queue. Later calls whose background
    /// handlers would run fail with 503 `shutting_down` before anything of them runs.
    /// This blocks the calling thread; from async code, call it last or in `spawn_blocking`.
    /// A shutdown that timed out may be called again, and waits again. Called from a background
    /// handler, which it would wait for, it fails at once with 409 `shutdown_from_background`
    /// and changes nothing.
    pub fn shutdown(&self, deadline: Duration) -> Result<BackgroundStats, HookError> {
        self.inner.queue.shutdown(deadline)
    }

    /// The slot of `Op`, or `None` when it has no handlers.
    #[inline]
    fn slot<Op: Operation>(&self) -> Option<&Slot<Op>> {
        match (self.global, Op::slot_cache()) {
            (Some(table), Some(cache)) => table.resolve_cached::<Op>(cache),
            _ => self.table().resolve::<Op>(Op::ASSET),
        }
    }

    /// The recursion guard: does a call of `operation` on `asset` with `ctx` fire events?
    #[inline]
    fn nesting(&self, ctx: &Context, operation: &str, asset: &str) -> Result<Nesting, HookError> {
        let depth = ctx.depth().max(policy::handler_depth());
        if depth == 0 {
            return Ok(Nesting::Fire);
        }
        Self::nested(ctx, depth, operation, asset)
    }

    /// [`Hooks::nesting`] of a call made from handler code, or with a child context.
    #[cold]
    #[inline(never)]
    fn nested(
        ctx: &Context,
        depth: u32,
        operation: &str,
        asset: &str,
    ) -> Result<Nesting, HookError> {
        match ctx.nested_limit() {
            0 => {
                tracing::debug!(
                    operation,
                    asset,
                    depth,
                    "a call made from hook handler code fires no handlers (the recursion guard; \
                     `ctx.child().with_nested_events(n)` opts in)"
                );
                Ok(Nesting::Silent)
            }
            limit if depth > limit => Err(HookError::new(
                508,
                "recursion_limit",
                format!(
                    "{operation} on \"{asset}\" is nested {depth} levels deep in hook handlers, over \
                     the limit of {limit} its context allows"
                ),
            )),
            _ => Ok(Nesting::Fire),
        }
    }

    /// Record a handler run, when a trace is attached.
    #[inline(always)]
    fn trace(&self, reg: &'static Registration, step: impl FnOnce() -> Step) {
        if let Some(trace) = &self.inner.trace {
            trace.push(reg.id, reg.phase, step());
        }
    }

    /// A before handler's run: `None` to go on, or the call's result when it answered, rejected
    /// or failed (fail closed).
    #[inline(always)]
    fn before_step<O>(
        &self,
        reg: &'static Registration,
        step: Result<Result<Flow<O>, HookError>, Failure>,
    ) -> Option<Result<O, HookError>> {
        self.trace(reg, || match &step {
            Ok(Ok(Flow::Continue)) => Step::Continued,
            Ok(Ok(Flow::Return(_))) => Step::Answered,
            Ok(Err(e)) => Step::Rejected(e.clone()),
            Err(f) => f.step(),
        });
        match step {
            Ok(Ok(Flow::Continue)) => None,
            Ok(Ok(Flow::Return(output))) => Some(Ok(output)),
            Ok(Err(e)) => Some(Err(e)),
            Err(failure) => {
                failure.log(reg, false);
                Some(Err(failure.to_error(reg)))
            }
        }
    }

    /// An after handler's run: an `Err` it returned replaces the result; a failure is logged and
    /// counted and, with [`AfterFailure::Fail`], replaces it too.
    #[inline]
    fn after_step<O>(
        &self,
        kind: CallKind,
        reg: &'static Registration,
        step: Result<Result<(), HookError>, Failure>,
        result: &mut Result<O, HookError>,
    ) {
        if let Some(e) = self.after_outcome(kind, reg, step) {
            *result = Err(e);
        }
    }

    /// [`Hooks::after_step`], compiled once: the error that replaces the result, if any.
    #[inline(never)]
    fn after_outcome(
        &self,
        kind: CallKind,
        reg: &'static Registration,
        step: Result<Result<(), HookError>, Failure>,
    ) -> Option<HookError> {
        self.trace(reg, || match &step {
            Ok(Ok(())) => Step::Done,
            Ok(Err(e)) => Step::Errored(e.clone()),
            Err(f) => f.step(),
        });
        match step {
            Ok(Ok(())) => None,
            Ok(Err(e)) if kind == CallKind::Event => {
                tracing::warn!(
                    handler = reg.id,
                    event = reg.operation,
                    code = e.code(),
                    "event handler returned an error: {:?}",
                    e.message()
                );
                None
            }
            Ok(Err(e)) => Some(e),
            Err(failure) => {
                let keep = self.keeps_after_failure(kind);
                failure.log(reg, keep);
                (!keep).then(|| failure.to_error(reg))
            }
        }
    }

    /// Whether a call of `kind` keeps its result when an after handler panics or times out: as
    /// [`AfterFailure`] says, but always for an event, whose every handler runs whatever the
    /// others do.
    #[inline]
    fn keeps_after_failure(&self, kind: CallKind) -> bool {
        kind == CallKind::Event || self.inner.policy.after_failure == AfterFailure::Keep
    }

    /// A background handler was queued, or refused: the refusal becomes the call's result.
    #[inline]
    fn queued<O>(
        &self,
        reg: &'static Registration,
        queued: Result<(), HookError>,
        result: &mut Result<O, HookError>,
    ) {
        if let Some(e) = self.queued_error(reg, queued) {
            *result = Err(e);
        }
    }

    /// [`Hooks::queued`], compiled once: the refusal that becomes the call's result, if any.
    #[inline(never)]
    fn queued_error(
        &self,
        reg: &'static Registration,
        queued: Result<(), HookError>,
    ) -> Option<HookError> {
        self.trace(reg, || match &queued {
            Ok(()) => Step::Queued,
            Err(e) => Step::Refused(e.clone()),
        });
        queued.err()
    }

    /// The background job of one handler: its run under the policies, its outcome logged.
    fn job(
        &self,
        reg: &'static Registration,
        fut: BoxFuture<'static, Result<(), HookError>>,
    ) -> Job {
        let policy = self.inner.policy;
        Box::pin(async move {
            match policy.call_async(reg, fut).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::warn!(
                    handler = reg.id,
                    code = e.code(),
                    "background hook handler returned an error: {:?}",
                    e.message()
                ),
                Err(failure) => failure.log(reg, true),
            }
        })
    }

    /// Run operation `Op` on `input`: its before handlers, then `default` (unless a before handler
    /// answered or rejected), then its after handlers, then queue its background handlers.
    /// Returns the result the after handlers leave.
    ///
    /// With no handlers for `Op`, the returned future is `default(input)` itself: nothing else
    /// is allocated, locked or awaited.
    ///
    /// A create or an update of a [`DynRecord`] runs the handlers of the table the record names.
    /// A delete, find, find by id or bulk operation of one does not compile here (its key,
    /// query or list names no one table): name the table with [`Hooks::run_on`].
    #[inline]
    pub fn run<'a, Op, F, Fut>(
        &'a self,
        ctx: &'a mut Context,
        input: Op::Input,
        default: F,
    ) -> impl Future<Output = Result<Op::Output, HookError>>
    where
        Op: Operation,
        F: FnOnce(Op::Input) -> Fut,
        Fut: Future<Output = Result<Op::Output, HookError>>,
    {
        let (slot, named, refused) = if Op::DYNAMIC {
            self.slot_of_input::<Op>(&input)
        } else if Op::EVENT {
            (self.slot::<Op>(), None, self.event_refusal::<Op>(&input))
        } else {
            (self.slot::<Op>(), None, None)
        };
        self.dispatch(
            ctx,
            CallKind::of::<Op>(),
            slot,
            named,
            refused,
            input,
            default,
        )
    }

    /// [`Hooks::run`] on an asset the call names (a channel, a dynamic table): the handlers of
    /// that asset and those of `"*"` run.
    ///
    /// The asset must be one the call can be about, or the call fails with 400
    /// `asset_mismatch` before anything runs, the default included: an operation with an
    /// asset of its own (a typed table, an operation declared `on` one) takes only that one; a
    /// call whose input names its asset (a [`DynRecord`] being created or updated, a
    /// [`Message`]'s channel) takes only the one it names; and a dynamic table's or a
    /// channel's call names a real one, not `"*"` or an empty name. So a name taken from a
    /// client cannot steer a call past the handlers of the asset it is really about. Nor can a
    /// before handler move the call to another asset once it has begun (a message's channel
    /// changed, a `DynRecord` of another table put in its place): the call then fails with 500
    /// `asset_moved` before its default runs.
    #[inline]
    pub fn run_on<'a, Op, F, Fut>(
        &'a self,
        ctx: &'a mut Context,
        asset: &str,
        input: Op::Input,
        default: F,
    ) -> impl Future<Output = Result<Op::Output, HookError>>
    where
        Op: Operation,
        F: FnOnce(Op::Input) -> Fut,
        Fut: Future<Output = Result<Op::Output, HookError>>,
    {
        let refused =
            asset_refusal::<Op>(asset, &input).or_else(|| self.event_refusal::<Op>(&input));
        let (slot, named) = match refused {
            Some(_) => (None, None),
            None => self.slot_named::<Op>(asset),
        };
        self.dispatch(
            ctx,
            CallKind::of::<Op>(),
            slot,
            named,
            refused,
            input,
            default,
        )
    }

    /// [`Hooks::run`] for synchronous code. A slot with an `async fn` (blocking) handler cannot
    /// run here: the call fails closed with an error naming the handler, before anything runs
    /// (unless it is a nested call that fires no handler, which runs its default alone). A
    /// [`DynRecord`] is routed as by [`Hooks::run`].
    #[inline]
    pub fn run_sync<Op, F>(
        &self,
        ctx: &mut Context,
        input: Op::Input,
        default: F,
    ) -> Result<Op::Output, HookError>
    where
        Op: Operation,
        F: FnOnce(Op::Input) -> Result<Op::Output, HookError>,
    {
        if Op::DYNAMIC {
            return self.run_sync_routed::<Op, F>(ctx, input, default);
        }
        if let Some(refused) = self.event_refusal::<Op>(&input) {
            return Err(refused);
        }
        match self.slot::<Op>() {
            None => default(input),
            Some(slot) => {
                // The flow gets the input by reference, in a copy made in 8-byte words: moved as
                // an argument, it would be copied with wider loads than the stores that just
                // wrote it, and wait on them (`BENCHMARKS.md`, finding 31).
                // SAFETY: read once; `input` is forgotten right after, not dropped.
                let mut handed = ManuallyDrop::new(unsafe { read_words(&raw const input) });
                std::mem::forget(input);
                // SAFETY: `handed` is handed over, and not used again.
                unsafe { self.run_sync_slot(ctx, slot, None, &mut handed, default) }
            }
        }
    }

    /// [`Hooks::run_sync`] on an asset the call names, which must be one the call can be about
    /// (see [`Hooks::run_on`]).
    #[inline]
    pub fn run_sync_on<Op, F>(
        &self,
        ctx: &mut Context,
        asset: &str,
        input: Op::Input,
        default: F,
    ) -> Result<Op::Output, HookError>
    where
        Op: Operation,
        F: FnOnce(Op::Input) -> Result<Op::Output, HookError>,
    {
        if let Some(refusal) =
            asset_refusal::<Op>(asset, &input).or_else(|| self.event_refusal::<Op>(&input))
        {
            return Err(refusal);
        }
        let resolved = self.slot_named::<Op>(asset);
        self.run_sync_resolved(ctx, resolved, input, default)
    }

    /// [`Hooks::run_sync`] of an operation whose calls name its asset
    /// ([`Operation::DYNAMIC`]): routed by the table the input names.
    fn run_sync_routed<Op, F>(
        &self,
        ctx: &mut Context,
        input: Op::Input,
        default: F,
    ) -> Result<Op::Output, HookError>
    where
        Op: Operation,
        F: FnOnce(Op::Input) -> Result<Op::Output, HookError>,
    {
        let (slot, named, refused) = self.slot_of_input::<Op>(&input);
        if let Some(e) = refused {
            return Err(e);
        }
        self.run_sync_resolved(ctx, (slot, named), input, default)
    }

    /// A sync call on a slot resolved by name ([`Hooks::slot_named`]): the default alone, or the
    /// flow, handed the input as in [`Hooks::run_sync`].
    #[inline]
    fn run_sync_resolved<Op, F>(
        &self,
        ctx: &mut Context,
        (slot, named): (Option<&Slot<Op>>, Option<Box<str>>),
        input: Op::Input,
        default: F,
    ) -> Result<Op::Output, HookError>
    where
        Op: Operation,
        F: FnOnce(Op::Input) -> Result<Op::Output, HookError>,
    {
        match slot {
            None => default(input),
            Some(slot) => {
                // SAFETY: as in `run_sync`.
                let mut handed = ManuallyDrop::new(unsafe { read_words(&raw const input) });
                std::mem::forget(input);
                // SAFETY: `handed` is handed over, and not used again.
                unsafe { self.run_sync_slot(ctx, slot, named, &mut handed, default) }
            }
        }
    }

    /// The slot of a call of an operation whose calls name its asset ([`Operation::DYNAMIC`]: a
    /// data operation on [`DynRecord`]), by the table its input names, and the name to give the
    /// context. An operation whose input names no table (a key, a query) does not compile here:
    /// without the table, the call would silently skip the table's handlers.
    #[inline]
    #[allow(clippy::type_complexity)] // the slot, the name, the refusal: each used once
    fn slot_of_input<Op: Operation>(
        &self,
        input: &Op::Input,
    ) -> (Option<&Slot<Op>>, Option<Box<str>>, Option<HookError>) {
        const {
            assert!(
                !Op::DYNAMIC || Op::INPUT_NAMES_ASSET,
                "a delete, find, find by id or bulk operation of `DynRecord` must name its \
                 table: call `Hooks::run_on` (or `Chain::run_on` in tests) with the table"
            )
        };
        // The input is about the table it names, and must name no other (an update's original,
        // say), nor a name no table or channel has: refused, the call runs nothing.
        match Op::input_asset(input) {
            Some(table) => match asset_refusal::<Op>(table, input) {
                Some(refused) => (None, None, Some(refused)),
                None => {
                    let (slot, named) = self.slot_named::<Op>(table);
                    (slot, named, None)
                }
            },
            None => (self.slot::<Op>(), None, None),
        }
    }

    /// The slot of `Op` on a named asset, and the name to give the context when it has handlers
    /// (`None` when it is the operation's own asset).
    fn slot_named<Op: Operation>(&self, asset: &str) -> (Option<&Slot<Op>>, Option<Box<str>>) {
        if asset == Op::ASSET {
            return (self.slot::<Op>(), None);
        }
        let slot = self.table().resolve::<Op>(asset);
        let named = slot.is_some().then(|| Box::<str>::from(asset));
        (slot, named)
    }

    /// The future of a call: the default's own when there are no handlers; otherwise a flow on
    /// the heap, [`Synced`] (the sync phases around the default's future) when every handler is
    /// sync and none runs in the background, the `async fn` [`Hooks::run_slot`] when not.
    #[inline]
    #[allow(clippy::type_complexity)] // the two flows, each named once here
    #[allow(clippy::too_many_arguments)] // what a call resolved to, passed as it came
    fn dispatch<'a, Op, F, Fut>(
        &'a self,
        ctx: &'a mut Context,
        kind: CallKind,
        slot: Option<&'a Slot<Op>>,
        named: Option<Box<str>>,
        refused: Option<HookError>,
        input: Op::Input,
        default: F,
    ) -> Dispatch<Fut, Synced<'a, Op, F, Fut>, impl Future<Output = Result<Op::Output, HookError>>>
    where
        Op: Operation,
        F: FnOnce(Op::Input) -> Fut,
        Fut: Future<Output = Result<Op::Output, HookError>>,
    {
        // A call refused before anything runs (`asset_refusal`): its error, as a flow of its
        // own. Only calls that name their asset can be; the others pass `None` here.
        if let Some(e) = refused {
            return Dispatch::Hooked(ErasedFlow::erase(
                FlowBox::block_for().write(std::future::ready(Err(e))),
            ));
        }
        match slot {
            None => Dispatch::Direct(default(input)),
            // On the heap, so that the common case (no handlers) stays as small as the default's
            // own future: every move of the call's future would copy the flow. The block is
            // reused from the thread's last call (`FlowBox`).
            //
            // Sync handlers run as on a sync call, around the default's future (`Synced`): no
            // state machine around them. Background handlers wait for room in the queue, which
            // needs the async flow.
            Some(slot) if slot.first_async.is_none() && slot.background().is_empty() => {
                Dispatch::Hooked(ErasedFlow::synced(FlowBox::block_for().write(Synced {
                    hooks: self,
                    ctx,
                    slot,
                    kind,
                    stage: Stage::Start {
                        named,
                        input,
                        default,
                    },
                })))
            }
            Some(slot) => {
                // The block is taken first and the flow written into it: built elsewhere, the
                // whole state machine would be copied.
                let block = FlowBox::block_for();
                let flow = block.write(self.run_slot(ctx, kind, slot, named, input, default));
                Dispatch::Hooked(ErasedFlow::hooked(flow))
            }
        }
    }

    /// The flow of an asynchronous call of a slot that has handlers.
    async fn run_slot<Op, F, Fut>(
        &self,
        ctx: &mut Context,
        kind: CallKind,
        slot: &Slot<Op>,
        named: Option<Box<str>>,
        mut input: Op::Input,
        default: F,
    ) -> Result<Op::Output, HookError>
    where
        Op: Operation,
        F: FnOnce(Op::Input) -> Fut,
        Fut: Future<Output = Result<Op::Output, HookError>>,
    {
        if let Some(problem) = &slot.problem {
            return Err(slot_problem(problem));
        }
        if let Nesting::Silent = self.nesting(ctx, Op::NAME, Op::ASSET)? {
            return default(input).await;
        }
        ctx.begin(Op::NAME, Op::ASSET, named);
        // From here the context is the flow's: should the flow be dropped before it ends (the
        // call cancelled at an await, or its default panicking), `InCall` leaves it as a call
        // that ended would.
        let mut call = InCall { ctx, held: false };
        // The background jobs' admission, before anything runs: a full queue refuses the call
        // before its default writes anything. Kept in the call's state, not in this future,
        // which every call of a slot with async handlers would then carry.
        if !slot.background().is_empty() {
            self.admit(slot, call.ctx).await?;
            call.held = true;
        }
        let ctx = &mut *call.ctx;
        // A slot of sync handlers runs them in a plain loop: no await point per handler.
        let all_sync = slot.first_async.is_none();
        // A phase with no handlers costs one test: a slot often has handlers on one side only.
        let early = if slot.before().is_empty() {
            None
        } else if all_sync {
            self.before_sync(slot, ctx, &mut input)
        } else {
            self.before_async(slot, ctx, &mut input).await
        };
        ctx.leave();
        let early = match early {
            None if Op::DYNAMIC => moved::<Op>(ctx, &input).map(Err),
            early => early,
        };
        let mut result = match early {
            Some(result) => result,
            // Nothing runs after the default: its result is the call's as it comes (see
            // `run_sync_slot`).
            None if slot.ends_at_default() => return default(input).await,
            None => default(input).await,
        };
        if !slot.after().is_empty() {
            if all_sync {
                self.after_sync(kind, slot, ctx, &mut result);
            } else {
                self.after_async(kind, slot, ctx, &mut result).await;
            }
        }
        if !slot.background().is_empty() {
            // The admission taken at the start (none when no handler ran for the context then).
            let mut places = ctx.take_state::<HeldPlaces>().map(|held| held.0);
            call.held = false;
            let ctx = &mut *call.ctx;
            for h in slot.background().iter() {
                if !h.reg.runs_after(ctx, &result) {
                    continue;
                }
                ctx.enter(h.reg);
                if let Some(fut) = (h.f)(&result, ctx) {
                    // A handler switched on since the call began: admitted now.
                    if places.is_none() {
                        match self.inner.queue.admit(1).await {
                            Ok(admitted) => places = Some(admitted),
                            Err(e) => {
                                self.queued(h.reg, Err(e), &mut result);
                                continue;
                            }
                        }
                    }
                    let queued = match &places {
                        Some(places) => self.inner.queue.send(places, self.job(h.reg, fut)),
                        None => continue,
                    };
                    self.queued(h.reg, queued, &mut result);
                }
            }
        }
        result
    }

    /// The flow of a synchronous call of a slot that has handlers. Compiled for each operation
    /// and default, so it holds only what needs their types: the phases around the default run
    /// in functions compiled once for every operation ([`Hooks::sync_before`],
    /// [`Hooks::sync_after`], [`Hooks::background_sync`]).
    ///
    /// # Safety
    /// `input` is handed over: this drops it or moves it into the default, and the caller does
    /// not use it again.
    #[inline(never)]
    unsafe fn run_sync_slot<Op, F>(
        &self,
        ctx: &mut Context,
        slot: &Slot<Op>,
        named: Option<Box<str>>,
        input: &mut ManuallyDrop<Op::Input>,
        default: F,
    ) -> Result<Op::Output, HookError>
    where
        Op: Operation,
        F: FnOnce(Op::Input) -> Result<Op::Output, HookError>,
    {
        // SAFETY: the caller's.
        let mut input = unsafe { Handed::new(input) };
        // Left with no drop: only the answered arm below finds it `Some`, and takes it (should a
        // handler panic out of the phase, an answer in it would leak, not be dropped twice).
        let mut early: ManuallyDrop<Early<Op::Output>> = ManuallyDrop::new(None);
        let (input_p, early_p) = (input.as_mut_ptr().cast(), ptr::from_mut(&mut *early).cast());
        // SAFETY: as in `sync_begin`.
        let began =
            unsafe { self.sync_before(ctx, slot, named, input_p, early_p, OpFns::of_op::<Op>()) };
        // SAFETY: the input is live, and no other reference to it is.
        let began = stayed::<Op>(began, ctx, unsafe { &*input.as_mut_ptr() });
        // Matched here rather than through `Begun`: one branch on the phase's end, not two.
        let silent = matches!(began, Began::Silent);
        let mut result = match began {
            // Nothing runs after the default (the call is silent, or the slot has no after or
            // background handler): its result is the call's, returned where the default writes
            // it. Kept in a local for the after phase, it would be copied out once more, with
            // loads that stall on the default's own stores (`BENCHMARKS.md`, finding 27). So
            // the default has two call sites, one for each kind of slot.
            Began::Go | Began::Silent if silent || slot.ends_at_default() => {
                return default(input.take());
            }
            Began::Go | Began::Silent => default(input.take()),
            Began::Failed(e) => return Err(e),
            Began::Rejected(e) => Err(e),
            Began::Answered => {
                ManuallyDrop::into_inner(early).unwrap_or_else(|| Err(verdict_missing()))
            }
        };
        if !silent {
            self.sync_end(CallKind::of::<Op>(), slot, ctx, &mut result);
        }
        result
    }

    /// What runs of a call with sync handlers before its default, once the caller has found no
    /// problem in the slot: the recursion guard, the before handlers. Shared by sync calls and
    /// by async calls of a slot with no async handler ([`Synced`]). Here, what needs the
    /// operation's types: its early answer, typed again.
    #[inline(always)]
    fn sync_begin<Op: Operation>(
        &self,
        ctx: &mut Context,
        slot: &Slot<Op>,
        named: Option<Box<str>>,
        input: &mut Op::Input,
    ) -> Begun<Op::Output> {
        let mut early: Early<Op::Output> = None;
        let (input_p, early_p) = (
            ptr::from_mut(input).cast(),
            ptr::from_mut(&mut early).cast(),
        );
        // SAFETY: the slot and the functions are `Op`'s; the pointers come from the call's own
        // `&mut Op::Input` and `&mut Early<Op::Output>`, live and otherwise unused until it
        // returns.
        let began =
            unsafe { self.sync_before(ctx, slot, named, input_p, early_p, OpFns::of_op::<Op>()) };
        stayed::<Op>(began, ctx, input).typed(early)
    }

    /// [`Hooks::sync_begin`] with the operation's types erased, compiled once: the slot's own
    /// problem, the recursion guard, an `async fn` handler a sync call cannot run (the call fails
    /// before anything runs), the context's record of the call, and the before handlers.
    ///
    /// # Safety
    /// As [`Hooks::before_handlers`].
    #[inline(never)]
    unsafe fn sync_before(
        &self,
        ctx: &mut Context,
        slot: &ErasedSlot,
        named: Option<Box<str>>,
        input: *mut (),
        early: *mut (),
        fns: &OpFns,
    ) -> Began {
        // A slot's own problem comes first, as on an async call.
        if let Some(problem) = &slot.problem {
            return Began::Failed(slot_problem(problem));
        }
        // A nested call that fires no handler runs its default alone: whether a handler of the
        // slot is async does not matter to it.
        match self.nesting(ctx, fns.name, fns.asset) {
            Ok(Nesting::Fire) => {}
            Ok(Nesting::Silent) => return Began::Silent,
            Err(e) => return Began::Failed(e),
        }
        ctx.begin(fns.name, fns.asset, named);
        // One test for the two rare cases: an `async fn` handler, background handlers.
        if slot.sync_rare
            && let Err(e) = self.sync_rare_begin(ctx, slot, fns)
        {
            ctx.leave();
            return Began::Failed(e);
        }
        // A phase with no handlers costs one test: a slot often has handlers on one side only.
        let began = if slot.erased_before().is_empty() {
            Began::Go
        } else {
            // SAFETY: the caller's.
            unsafe { self.before_handlers(slot, ctx, input, early, fns) }
        };
        ctx.leave();
        began
    }

    /// The admission of an async call's background jobs to the queue, before anything of the
    /// call runs, kept in its state until its background phase (see `run_slot`). A call none of
    /// whose background handlers runs for its context needs none.
    #[inline(never)]
    async fn admit<Op: Operation>(
        &self,
        slot: &Slot<Op>,
        ctx: &mut Context,
    ) -> Result<(), HookError> {
        let n = background_places(slot.erased_background(), ctx);
        if n > 0 {
            let places = self.inner.queue.admit(n).await?;
            ctx.set_state(HeldPlaces(places));
        }
        Ok(())
    }

    /// The start of a sync call of a slot with an `async fn` handler, which fails it before
    /// anything runs, or with background handlers, whose admission to the queue it takes first
    /// (see `run_slot`) and keeps in the call's state until its background phase.
    #[cold]
    #[inline(never)]
    fn sync_rare_begin(
        &self,
        ctx: &mut Context,
        slot: &ErasedSlot,
        fns: &OpFns,
    ) -> Result<(), HookError> {
        if let Some(reg) = slot.first_async {
            return Err(async_on_sync(fns.name, reg));
        }
        let n = background_places(slot.erased_background(), ctx);
        if n > 0 {
            ctx.set_state(HeldPlaces(self.inner.queue.admit_blocking(n)?));
        }
        Ok(())
    }

    /// What runs of a call with sync handlers after its default (or after the before handler
    /// that answered): the after handlers, the background ones, and the context is left. Here,
    /// what needs the operation's types: the result's pointers.
    #[inline(always)]
    fn sync_end<Op: Operation>(
        &self,
        kind: CallKind,
        slot: &Slot<Op>,
        ctx: &mut Context,
        result: &mut Result<Op::Output, HookError>,
    ) {
        // A phase with no handlers costs one test.
        if !slot.erased_after().is_empty() {
            self.after_sync(kind, slot, ctx, result);
        }
        if !slot.erased_background().is_empty() {
            let at = ptr::from_mut(result).cast();
            // SAFETY: the slot and the functions are `Op`'s; `at` is the call's own result.
            unsafe { self.background_sync(slot, ctx, at, OpFns::of_op::<Op>()) };
        }
        ctx.leave();
    }

    /// The background handlers of a sync call, compiled once for every operation: each one's job
    /// is queued, waiting for room in the queue; a job the queue refuses makes the call fail.
    ///
    /// # Safety
    /// The slot is of the operation whose functions `fns` are, and `result` comes from the
    /// call's own `&mut Result<Output, HookError>`, live and otherwise unused until it returns.
    #[inline(never)]
    unsafe fn background_sync(
        &self,
        slot: &ErasedSlot,
        ctx: &mut Context,
        result: *mut (),
        fns: &OpFns,
    ) {
        // The admission `sync_before` took (none when no handler ran for the context then).
        let mut places = ctx.take_state::<HeldPlaces>().map(|held| held.0);
        for h in slot.erased_background() {
            // SAFETY (here and below): the caller's: `result` is the operation's.
            if !h.reg.runs_for(ctx) || (!h.reg.on_error && unsafe { (fns.is_err)(result) }) {
                continue;
            }
            ctx.enter(h.reg);
            if let Some(fut) = (h.f)(result.cast_const(), ctx) {
                // A handler switched on since the call began: admitted now.
                let admitted = match &places {
                    Some(places) => Ok(places),
                    None => self
                        .inner
                        .queue
                        .admit_blocking(1)
                        .map(|admitted| &*places.insert(admitted)),
                };
                let queued =
                    admitted.and_then(|places| self.inner.queue.send(places, self.job(h.reg, fut)));
                if let Some(e) = self.queued_error(h.reg, queued) {
                    unsafe { (fns.set_err)(result, e) };
                }
            }
        }
    }

    /// Whether the runtime may take the fast loops now: no trace, no timed history, no debug
    /// span wanted.
    #[inline]
    fn fast(&self) -> bool {
        self.inner.trace.is_none() && self.inner.policy.plain()
    }

    /// The before handlers of a slot with no async handler, on an async call that has
    /// background handlers too (a sync call's go through [`Hooks::sync_begin`]): `Some` when
    /// one answered or rejected.
    #[inline(always)]
    fn before_sync<Op: Operation>(
        &self,
        slot: &Slot<Op>,
        ctx: &mut Context,
        input: &mut Op::Input,
    ) -> Option<Result<Op::Output, HookError>> {
        let mut early: Early<Op::Output> = None;
        let (input_p, early_p) = (
            ptr::from_mut(input).cast(),
            ptr::from_mut(&mut early).cast(),
        );
        // SAFETY: as in `sync_begin`.
        let began =
            unsafe { self.before_sync_erased(slot, ctx, input_p, early_p, OpFns::of_op::<Op>()) };
        match began.typed(early) {
            Begun::Answered(result) => Some(result),
            _ => None,
        }
    }

    /// [`Hooks::before_handlers`], out of line, for [`Hooks::before_sync`].
    ///
    /// # Safety
    /// As [`Hooks::before_handlers`].
    #[inline(never)]
    unsafe fn before_sync_erased(
        &self,
        slot: &ErasedSlot,
        ctx: &mut Context,
        input: *mut (),
        early: *mut (),
        fns: &OpFns,
    ) -> Began {
        // SAFETY: the caller's.
        unsafe { self.before_handlers(slot, ctx, input, early, fns) }
    }

    /// The before handlers of a slot with no async handler, for every operation alike: the fast
    /// loops when the policies allow them, the general loop when not. [`Began::Go`] to go on,
    /// [`Began::Answered`] or [`Began::Rejected`] when one stopped the call.
    ///
    /// # Safety
    /// The slot is of the operation whose functions `fns` are, and `input` and `early` come from
    /// that call's own `&mut Input` and `&mut Early<Output>`, live and otherwise unused until it
    /// returns.
    #[inline(always)]
    unsafe fn before_handlers(
        &self,
        slot: &ErasedSlot,
        ctx: &mut Context,
        input: *mut (),
        early: *mut (),
        fns: &OpFns,
    ) -> Began {
        if self.fast() {
            if let Some(handlers) = &slot.bare_before {
                if handlers.next().is_some() {
                    // SAFETY: the caller's.
                    return unsafe { self.before_runs(slot, handlers, ctx, input, early, fns) };
                }
                if let Some(run) = handlers.answer_run() {
                    let loop_p = ptr::from_ref(handlers).cast();
                    // SAFETY: the caller's: `run` is the loop of the operation's output that the
                    // handlers' attributes handed over (`run_answers`), and the slot checked each
                    // handler against the operation's input and output when it was built.
                    let answered =
                        unsafe { run(self, slot.client_only, loop_p, ctx, input, early) };
                    return if answered { Began::Answered } else { Began::Go };
                }
                // SAFETY: the slot checked each bare handler against the input when it was
                // built, and the input is the call's own.
                let rejected = unsafe { self.bare_before(slot.client_only, handlers, ctx, input) };
                return rejected.map_or(Began::Go, Began::Rejected);
            }
            if let Some(handlers) = slot.fast_before() {
                // SAFETY: the caller's.
                return unsafe { self.before_fast(slot, handlers, ctx, input, early, fns) };
            }
        }
        // SAFETY: the caller's.
        match unsafe { self.general_before(slot.erased_before(), ctx, input, early, fns) } {
            None => Began::Go,
            // The handler answered: its answer is in `early`.
            Some(Ok(())) => Began::Answered,
            Some(Err(e)) => Began::Rejected(e),
        }
    }

    /// The bare before handlers of a slot that mixes shapes ([`Hooks::before_handlers`]): its
    /// runs of handlers of one shape, in order, while each lets the call go on. Out of line, so
    /// that a slot of one shape pays only the test that sends it here; one frame for every run,
    /// so that each run costs a jump, not a call: the flags read, the panic caught and the
    /// handler code counted once. A run of the shapes that cannot answer ([`Bare`], [`BareCtx`],
    /// [`BareUnit`], [`BareUnitCtx`]) runs in this loop; a run that may answer calls the loop its
    /// attribute brought (`run_answers`, `run_own`), which catches its own panics and leaves its
    /// stop in `early` ([`Began::Answered`] then, as in [`Hooks::before_handlers`]); a run of
    /// adapters runs in the loop of [`Hooks::adapted_before`], its stop read and counted as
    /// [`Hooks::before_fast`] does.
    ///
    /// # Safety
    /// As [`Hooks::before_handlers`], `first` the slot's first run.
    ///
    /// [`Bare`]: crate::registration::Bare
    /// [`BareCtx`]: crate::registration::BareCtx
    /// [`BareUnit`]: crate::registration::BareUnit
    /// [`BareUnitCtx`]: crate::registration::BareUnitCtx
    #[inline(never)]
    unsafe fn before_runs(
        &self,
        slot: &ErasedSlot,
        first: &BareLoop,
        ctx: &mut Context,
        input: *mut (),
        early: *mut (),
        fns: &OpFns,
    ) -> Began {
        let policy = &self.inner.policy;
        let client_only = slot.client_only;
        let check = client_only || stats::any_disabled();
        let count = policy.history != History::Off;
        let blame = Cell::new(ptr::null::<Entry<Erased>>());
        let _code = HandlerCode::enter();
        // `Err` with the adapter that stopped the call, its answer or rejection in `early`.
        let ran = catch_unwind(AssertUnwindSafe(|| {
            let mut at = first;
            loop {
                let run = at.handlers();
                let rejected = by_shape!(run.shape(), S => {
                    // The shape was matched, so this cannot fail; should it ever, the call fails
                    // closed.
                    let Some(handlers) = run.typed::<S>() else {
                        return Ok(Began::Rejected(wrong_shape()));
                    };
                    let on = BareBefore {
                        policy,
                        handlers,
                        ctx: &mut *ctx,
                        input,
                        blame: blame_as::<S>(&blame),
                    };
                    // SAFETY: the caller's. Handlers of these shapes cannot answer: a stop is a
                    // rejection.
                    unsafe { Specialised::run::<S>(check, count, on) }.map(|stop| match stop {
                        Ok(never) => match never {},
                        Err(e) => e,
                    })
                }, answers => {
                    // A run with a loop of its own, or a run of adapters: one jump on the shape
                    // above for every run, and these tests only for these runs.
                    if let Some(loop_run) = at.answer_run() {
                        let loop_p = ptr::from_ref(at).cast();
                        // SAFETY: the caller's: `loop_run` is the loop of the operation's output
                        // that the run's attributes handed over, and the slot checked each
                        // handler against the operation's input and output when it was built.
                        if unsafe { loop_run(self, client_only, loop_p, &mut *ctx, input, early) } {
                            return Ok(Began::Answered);
                        }
                        None
                    // SAFETY: a before loop's adapters are `SyncBefore`s of the slot's operation.
                    } else if let Some(adapters) = unsafe { run.adapters::<ErasedSyncBefore>() } {
                        let mut args = ErasedBeforeArgs {
                            input,
                            ctx: ptr::from_mut(&mut *ctx),
                            early,
                        };
                        let (a, b) = (&mut args, blame_as::<ErasedSyncBefore>(&blame));
                        let stopped =
                            with_flags!(check, count, slot.context, before_loop(adapters, a, b));
                        if let Some(i) = stopped {
                            return Err(adapters[i].reg);
                        }
                        None
                    } else {
                        Some(wrong_shape())
                    }
                });
                if let Some(e) = rejected {
                    return Ok(Began::Rejected(e));
                }
                match at.next() {
                    Some(next) => at = next,
                    None => return Ok(Began::Go),
                }
            }
        }));
        match ran {
            Ok(Ok(began)) => began,
            // As in `before_fast`: what the adapter left in `early`, counted on its handler.
            Ok(Err(reg)) => {
                // SAFETY: the caller's: `early` is the operation's.
                let (outcome, began) = unsafe { adapter_stop(early, fns) };
                policy.count(reg, outcome);
                began
            }
            Err(panic) => {
                let reg = blamed_in(first, &blame).and_then(|(run, at)| run.handlers().reg(at));
                Began::Rejected(self.before_panicked(reg, &*panic))
            }
        }
    }

    /// The before handlers under the general policies (per-handler timeouts, traces, timed
    /// history, debug spans, wildcard handlers), the loop of [`Hooks::before_handlers`] when the
    /// fast ones may not run, compiled once: `None` to go on; `Some(Ok(()))` when a handler
    /// answered the call (the answer is in `early`); `Some(Err(e))` when one rejected it or
    /// failed (fail closed).
    ///
    /// # Safety
    /// Every sync adapter is a `SyncBefore` of one operation, `input` and `early` come from that
    /// operation's `&mut Input` and `&mut Early<Output>`, live and otherwise unused for the
    /// loop's duration, and `fns` are that operation's.
    #[inline(never)]
    unsafe fn general_before(
        &self,
        handlers: &[Entry<BeforeFn<ErasedSyncBefore, ErasedAsyncBefore>>],
        ctx: &mut Context,
        input: *mut (),
        early: *mut (),
        fns: &OpFns,
    ) -> Option<Result<(), HookError>> {
        let policy = &self.inner.policy;
        let _code = HandlerCode::enter();
        for h in handlers {
            if !h.reg.runs_for(ctx) {
                continue;
            }
            ctx.enter(h.reg);
            let ctx: &Context = ctx;
            let step = match h.f {
                BeforeFn::Sync(f) => policy.call_sync(h.reg, || {
                    // The adapters only read the context.
                    let ctx = ptr::from_ref(ctx).cast_mut();
                    if f(&mut ErasedBeforeArgs { input, ctx, early }, h.reg) {
                        return Ok(Flow::Continue);
                    }
                    // SAFETY: the caller's: `early` is the operation's.
                    match unsafe { (fns.take_rejection)(early) } {
                        Some(Ok(())) => Ok(Flow::Return(())),
                        Some(Err(e)) => Err(e),
                        None => Err(verdict_missing()),
                    }
                }),
                BeforeFn::WildSync(f) => policy.call_sync(h.reg, || {
                    // SAFETY: the caller's: `input` is the operation's.
                    unsafe { (fns.wild_before)(input, f, ctx) }.map(|()| Flow::Continue)
                }),
                BeforeFn::Async(_) | BeforeFn::WildAsync(_) => {
                    Ok(Err(async_on_sync(fns.name, h.reg)))
                }
            };
            if let Some(result) = self.before_step(h.reg, step) {
                return Some(result);
            }
        }
        None
    }

    /// The fast loop of before handlers (plain sync handlers, plain policies): each handler is
    /// one indirect call of its adapter, whose verdict comes back in a register, and panics are
    /// caught once for the whole loop (a panic rejects the call, so nothing resumes after it).
    /// The loop itself is [`Hooks::adapted_before`]; here, what the handler that stopped the call
    /// left in `early`, read through `fns`.
    ///
    /// # Safety
    /// As [`Hooks::before_handlers`], where every handler is a `SyncBefore` of the operation.
    #[inline(always)]
    unsafe fn before_fast(
        &self,
        slot: &ErasedSlot,
        handlers: &[Entry<ErasedSyncBefore>],
        ctx: &mut Context,
        input: *mut (),
        early: *mut (),
        fns: &OpFns,
    ) -> Began {
        // SAFETY: the caller's.
        let stop = unsafe { self.adapted_before(slot, handlers, ctx, input, early) };
        let at = match stop {
            // An adapter that lets the call go on leaves no answer.
            None => return Began::Go,
            Some(BeforeStop::Answered(at)) => at,
            Some(BeforeStop::Panicked(at, panic)) => {
                let reg = at.and_then(|at| handlers.get(at)).map(|h| h.reg);
                return Began::Rejected(self.before_panicked(reg, &*panic));
            }
        };
        // SAFETY: the caller's: `early` is the operation's.
        let (outcome, began) = unsafe { adapter_stop(early, fns) };
        if let Some(h) = handlers.get(at) {
            self.inner.policy.count(h.reg, outcome);
        }
        began
    }

    /// The loop of [`Hooks::before_fast`], compiled once: `Some` when a handler stopped the call
    /// (its answer is in `early`) or panicked. It is specialised on whether handlers need their
    /// switch checked, their runs counted, and the context told which one runs (only when one
    /// of them takes the context).
    ///
    /// # Safety
    /// Every handler is a `SyncBefore` of one operation, and `input` and `early` come from that
    /// operation's `&mut Input` and `&mut Early<Output>`, live and otherwise unused for the
    /// loop's duration.
    #[inline(never)]
    unsafe fn adapted_before(
        &self,
        slot: &ErasedSlot,
        handlers: &[Entry<ErasedSyncBefore>],
        ctx: &mut Context,
        input: *mut (),
        early: *mut (),
    ) -> Option<BeforeStop> {
        let check = slot.client_only || stats::any_disabled();
        let count = self.inner.policy.history != History::Off;
        let _code = HandlerCode::enter();
        let blame = Cell::new(ptr::null());
        // One pointer to the three arguments, for every adapter: the context through a raw
        // pointer too, which the loop also tells which handler runs between the calls.
        let mut args = ErasedBeforeArgs {
            input,
            ctx: ptr::from_mut(ctx),
            early,
        };
        let ran = catch_unwind(AssertUnwindSafe(|| {
            let (a, b) = (&mut args, &blame);
            with_flags!(check, count, slot.context, before_loop(handlers, a, b))
        }));
        match ran {
            Ok(stopped) => stopped.map(BeforeStop::Answered),
            Err(panic) => Some(BeforeStop::Panicked(blamed(handlers, &blame), panic)),
        }
    }

    /// The fast loop of a slot's bare before handlers ([`Bare`] or [`BareCtx`]), for every
    /// operation alike: compiled once, not once per operation type. Each handler is one indirect
    /// call, with no adapter and nothing stored per handler (a panic is blamed through
    /// [`Blame`]). `Some` with the error when one rejected the call or panicked (fail closed).
    ///
    /// # Safety
    /// `input` comes from a `&mut T`, live and not otherwise used for the call's duration, where
    /// every handler was checked, when the slot was built, to be a bare handler of `T`.
    ///
    /// [`Bare`]: crate::registration::Bare
    /// [`BareCtx`]: crate::registration::BareCtx
    #[inline(never)]
    unsafe fn bare_before(
        &self,
        client_only: bool,
        handlers: &BareLoop,
        ctx: &mut Context,
        input: *mut (),
    ) -> Option<HookError> {
        let run = handlers.handlers();
        // SAFETY: the caller's.
        let stopped = by_shape!(run.shape(), S => unsafe {
            self.bare_before_in::<S, Specialised>(client_only, run, ctx, input)
        }, answers => Some(Err(wrong_shape())));
        // Handlers of these shapes cannot answer: a stop is a rejection.
        stopped.map(|stop| match stop {
            Ok(never) => match never {},
            Err(e) => e,
        })
    }

    /// The fast loop of a slot's bare before handlers that may answer the call ([`BareFlow`] or
    /// [`BareFlowCtx`]), as [`Hooks::bare_before`] but compiled once for each output type, not
    /// for every shape alone: `Some` with the answer, or with the error when one rejected the
    /// call or panicked (fail closed).
    ///
    /// # Safety
    /// As [`Hooks::bare_before`], where the handlers were also checked to answer with an `O`.
    ///
    /// [`BareFlow`]: crate::registration::BareFlow
    /// [`BareFlowCtx`]: crate::registration::BareFlowCtx
    #[inline(always)]
    unsafe fn answer_before<O>(
        &self,
        client_only: bool,
        handlers: &BareLoop,
        ctx: &mut Context,
        input: *mut (),
    ) -> Option<Result<O, HookError>> {
        let run = handlers.handlers();
        // A service compiles this for each of its output types that has such handlers: one copy
        // of the loop for each shape, which tests its flags for each handler (`Once`).
        // SAFETY (both): the caller's.
        match run.shape() {
            BareShape::Flow => unsafe {
                self.bare_before_in::<ErasedBareFlow<O>, Once>(client_only, run, ctx, input)
            },
            BareShape::FlowCtx => unsafe {
                self.bare_before_in::<ErasedBareFlowCtx<O>, Once>(client_only, run, ctx, input)
            },
            _ => Some(Err(wrong_shape())),
        }
    }

    /// [`Hooks::bare_before`] for handlers of one shape, its loop compiled as `C` says: `Some`
    /// with the answer or the rejection of the handler that stopped the call.
    ///
    /// # Safety
    /// As [`Hooks::bare_before`].
    #[inline(always)]
    unsafe fn bare_before_in<S: Shape, C: Compiled>(
        &self,
        client_only: bool,
        run: BareRun<'_>,
        ctx: &mut Context,
        input: *mut (),
    ) -> Option<Result<S::Answer, HookError>> {
        // The caller matched the shape, so this cannot fail (and its test folds away); should it
        // ever, the call fails closed.
        let Some(handlers) = run.typed::<S>() else {
            return Some(Err(wrong_shape()));
        };
        let policy = &self.inner.policy;
        let check = client_only || stats::any_disabled();
        let count = policy.history != History::Off;
        let blame = Cell::new(ptr::null());
        let _code = HandlerCode::enter();
        let ran = catch_unwind(AssertUnwindSafe(|| {
            let (c, b) = (&mut *ctx, &blame);
            let on = BareBefore {
                policy,
                handlers,
                ctx: c,
                input,
                blame: b,
            };
            // SAFETY: the caller's.
            unsafe { C::run::<S>(check, count, on) }
        }));
        match ran {
            Ok(stopped) => stopped,
            Err(panic) => {
                let reg = blamed(handlers, &blame).map(|at| handlers[at].reg);
                Some(Err(self.before_panicked(reg, &*panic)))
            }
        }
    }

    /// A before handler of a fast loop panicked: the call fails closed.
    #[cold]
    #[inline(never)]
    fn before_panicked(
        &self,
        reg: Option<&'static Registration>,
        panic: &(dyn Any + Send),
    ) -> HookError {
        let Some(reg) = reg else {
            return HookError::internal("a hook handler panicked");
        };
        let failure = self.inner.policy.panicked(reg, panic);
        failure.log(reg, false);
        failure.to_error(reg)
    }

    /// The before handlers of a slot with async handlers.
    ///
    /// They run in a plain loop inside one poll of the call ([`Hooks::before_run`]) for as long
    /// as each finishes at its first poll, as most do; only a handler that waits, and a wildcard
    /// async handler, are awaited here.
    async fn before_async<Op: Operation>(
        &self,
        slot: &Slot<Op>,
        ctx: &mut Context,
        input: &mut Op::Input,
    ) -> Option<Result<Op::Output, HookError>> {
        let policy = &self.inner.policy;
        let mut early: Early<Op::Output> = None;
        let mut fut = pin!(FutureSlot::new());
        let mut next = 0;
        loop {
            let run = WithTask::new(|cx| {
                // SAFETY: a handler's future left in `fut` is awaited to its end, or dropped,
                // below, before `ctx`, `input` or `early` is touched again; all three outlive
                // `fut` (`early` is declared before it, the others are borrowed for the call).
                unsafe { self.before_run(slot, next, ctx, input, &mut early, fut.as_mut(), cx) }
            })
            .await;
            let (i, step) = match run {
                Run::Done(result) => return result,
                Run::Waiting(i, waiting) => {
                    let reg = slot.before()[i].reg;
                    let ran = policy.resume_async(reg, fut.as_mut(), waiting).await;
                    // A handler cut at its timeout is still in the slot: drop it now.
                    fut.as_mut().clear();
                    (i, async_verdict(ran, early.take()))
                }
                Run::Wild(i, f) => {
                    let ctx: &Context = ctx;
                    let records = Op::input_records(input);
                    let boxed = Box::pin(async move {
                        wild_async(records, f, ctx).await.map(|()| Flow::Continue)
                    });
                    (i, policy.call_async(slot.before()[i].reg, boxed).await)
                }
            };
            if let Some(result) = self.before_step(slot.before()[i].reg, step) {
                return Some(result);
            }
            next = i + 1;
        }
    }

    /// The before handlers of a slot from index `from`, in a plain loop within one poll of the
    /// call: it returns when they are done, when one answered or rejected, or at the first
    /// handler that waits (left in `fut`) or is a wildcard async handler.
    ///
    /// # Safety
    /// The future left in `fut` when this returns [`Run::Waiting`] borrows `ctx`, `input` and
    /// `early` beyond this call, which the borrow checker does not see: the caller must not touch
    /// them until that future has finished or been dropped, and they must outlive `fut`.
    #[allow(clippy::too_many_arguments)]
    unsafe fn before_run<'x, Op: Operation>(
        &self,
        slot: &Slot<Op>,
        from: usize,
        ctx: &mut Context,
        input: &mut Op::Input,
        early: &mut Early<Op::Output>,
        mut fut: Pin<&mut FutureSlot<'x, Result<bool, HookError>>>,
        cx: &mut std::task::Context<'_>,
    ) -> Run<Option<Result<Op::Output, HookError>>> {
        let policy = &self.inner.policy;
        // Handler code runs from here to the return, once marked for the whole loop.
        let _code = HandlerCode::enter();
        let check = slot.client_only || stats::any_disabled();
        // No trace, clock or span to keep per handler: checked once for the loop.
        // A handler's own timeout times it from its call, which the plain first poll does not.
        let plain = self.fast() && !slot.timed;
        let mut from = from;
        // With one handler left, the general loop costs less than the plain loop's entry (538
        // against 570 instructions for a call with one async before handler). Not so after:
        // there the plain loop is cheaper even for one handler (554 against 561).
        if plain && from + 1 < slot.before().len() {
            let (input_p, early_p) = (ptr::from_mut(input).cast(), ptr::from_mut(early).cast());
            // SAFETY: this function's own contract; the slot's adapters are `Op`'s, given
            // pointers from its `&mut Op::Input` and `&mut Early<Op::Output>`.
            let (at, stop) = unsafe {
                self.async_before_plain(slot, from, ctx, input_p, early_p, fut.as_mut(), cx)
            };
            match stop {
                PlainStop::Finished => return Run::Done(None),
                PlainStop::Waiting => return Run::Waiting(at, policy::Waiting::plain()),
                PlainStop::Other => from = at,
                PlainStop::Ran(ran) => {
                    // A handler that panicked is still in the slot: drop it before `early` is
                    // read.
                    fut.as_mut().clear();
                    let Some(h) = slot.before().get(at) else {
                        return Run::Done(Some(Err(verdict_missing())));
                    };
                    policy.finish(h.reg, &ran, None);
                    let step = async_verdict(ran, early.take());
                    if let Some(result) = self.before_step(h.reg, step) {
                        return Run::Done(Some(result));
                    }
                    from = at + 1;
                }
            }
        }
        let handlers = slot.before().get(from..).unwrap_or_default();
        for (i, h) in (from..).zip(handlers) {
            if check && !h.reg.runs_for(ctx) {
                continue;
            }
            ctx.enter(h.reg);
            let step = match h.f {
                BeforeFn::Sync(f) => {
                    policy.call_sync(h.reg, || verdict::<Op>(f, h.reg, input, ctx))
                }
                BeforeFn::Async(f) => {
                    // SAFETY: the handler's future lives in `fut` for `'x`: it is dropped before
                    // the next handler runs (`put_poll` on a finished one leaves the slot empty),
                    // or it is left there waiting, under this function's contract.
                    let (input_x, ctx_x, early_x) = unsafe {
                        (
                            &mut *ptr::from_mut(input),
                            &*ptr::from_ref(ctx),
                            &mut *ptr::from_mut(early),
                        )
                    };
                    let (slot_x, cx_x) = (fut.as_mut(), &mut *cx);
                    let poll = move || f(input_x, ctx_x, early_x, slot_x, cx_x).into_before();
                    let first = if plain {
                        policy.poll_first_plain(h.reg, poll)
                    } else {
                        policy.poll_first(h.reg, poll)
                    };
                    match first {
                        First::Done(Ok(Ok(true))) => {
                            if !plain {
                                self.trace(h.reg, || Step::Continued);
                            }
                            continue;
                        }
                        First::Done(ran) => {
                            // A handler that panicked is still in the slot: drop it before
                            // `early` is read.
                            fut.as_mut().clear();
                            async_verdict(ran, early.take())
                        }
                        First::Waiting(waiting) => return Run::Waiting(i, waiting),
                    }
                }
                BeforeFn::WildSync(f) => policy.call_sync(h.reg, || {
                    wild_sync(Op::input_records(input), f, ctx).map(|()| Flow::Continue)
                }),
                BeforeFn::WildAsync(f) => return Run::Wild(i, f),
            };
            if let Some(result) = self.before_step(h.reg, step) {
                return Run::Done(Some(result));
            }
        }
        Run::Done(None)
    }

    /// The plain loop of [`Hooks::before_run`], under plain policies: async handlers, each polled
    /// once where its adapter put its future, with nothing per handler but the switch check, the
    /// count and the call, and panics caught once for the loop (blamed through [`Blame`]). It
    /// stops at the first handler that did anything but finish and let the call go on (its index
    /// and what it did), or at the first handler that is not a plain async one, which
    /// [`Hooks::before_run`]'s general loop then takes. Compiled once for every operation: the
    /// adapters' types are erased, as in [`Hooks::adapted_before`].
    ///
    /// # Safety
    /// As [`Hooks::before_run`], where `input` and `early` come from the call's own
    /// `&mut Op::Input` and `&mut Early<Op::Output>` of the operation whose slot this is.
    #[inline(never)]
    #[allow(clippy::too_many_arguments)]
    unsafe fn async_before_plain<'x>(
        &self,
        slot: &ErasedSlot,
        from: usize,
        ctx: &mut Context,
        input: *mut (),
        early: *mut (),
        mut fut: Pin<&mut FutureSlot<'x, Result<bool, HookError>>>,
        cx: &mut std::task::Context<'_>,
    ) -> (usize, PlainStop<bool>) {
        let handlers = slot.erased_before().get(from..).unwrap_or_default();
        let (at, stop) = self.plain_async(
            slot,
            handlers,
            ctx,
            |f, ctx| match *f {
                // SAFETY: as in `before_run`: the handler's future lives in `fut` for `'x`,
                // dropped before the next handler runs, or left there under its contract.
                BeforeFn::Async(f) => Some(
                    f(
                        input,
                        unsafe { &*ptr::from_ref(ctx) },
                        early,
                        fut.as_mut(),
                        cx,
                    )
                    .into_before(),
                ),
                _ => None,
            },
            |ran| matches!(ran, Ok(true)),
            |_| false,
        );
        (from + at, stop)
    }

    /// [`Hooks::async_before_plain`] for after handlers, on a result that is a success: the
    /// plain loop of [`Hooks::after_run`]. An after handler that takes the whole result is left
    /// to the general loop, which looks at the result again after it.
    ///
    /// # Safety
    /// As [`Hooks::after_run`], where `result` comes from the call's own
    /// `&mut Result<Op::Output, HookError>` of the operation whose slot this is.
    #[inline(never)]
    unsafe fn async_after_plain<'x>(
        &self,
        slot: &ErasedSlot,
        from: usize,
        ctx: &mut Context,
        result: *mut (),
        mut fut: Pin<&mut FutureSlot<'x, Result<(), HookError>>>,
        cx: &mut std::task::Context<'_>,
    ) -> (usize, PlainStop<()>) {
        let handlers = slot.erased_after().get(from..).unwrap_or_default();
        let (at, stop) = self.plain_async(
            slot,
            handlers,
            ctx,
            |f, ctx| match *f {
                // SAFETY: as in `async_before_plain`.
                AfterFn::Async(f) => {
                    Some(f(result, unsafe { &*ptr::from_ref(ctx) }, fut.as_mut(), cx).into_after())
                }
                _ => None,
            },
            Result::is_ok,
            |reg| reg.on_error,
        );
        (from + at, stop)
    }

    /// The loop of [`Hooks::async_before_plain`] and [`Hooks::async_after_plain`]: `first_poll`
    /// polls an entry's adapter once, or is `None` for an entry that is not a plain async
    /// handler; `goes_on` says whether what a handler finished with lets the loop go on;
    /// `takes_whole` picks the after handlers that take the whole result, which the loop leaves,
    /// before their call, to the general one.
    #[inline(always)]
    fn plain_async<F, T>(
        &self,
        slot: &ErasedSlot,
        handlers: &[Entry<F>],
        ctx: &mut Context,
        mut first_poll: impl FnMut(&F, &Context) -> Option<Poll<Result<T, HookError>>>,
        goes_on: impl Fn(&Result<T, HookError>) -> bool,
        takes_whole: impl Fn(&Registration) -> bool,
    ) -> (usize, PlainStop<T>) {
        let check = slot.client_only || stats::any_disabled();
        let count = self.inner.policy.history != History::Off;
        let blame = Cell::new(ptr::null());
        let ran = catch_unwind(AssertUnwindSafe(|| {
            for h in handlers {
                if takes_whole(h.reg) {
                    return (index_of(handlers, h), PlainStop::Other);
                }
                if check && !h.reg.runs_for(ctx) {
                    continue;
                }
                ctx.enter(h.reg);
                let guard = Blame(&blame, h);
                let polled = first_poll(&h.f, ctx);
                std::mem::forget(guard);
                match polled {
                    Some(Poll::Ready(ran)) if goes_on(&ran) => {
                        if count {
                            h.reg.state.record(Outcome::Ok, None);
                        }
                    }
                    Some(Poll::Ready(ran)) => {
                        return (index_of(handlers, h), PlainStop::Ran(Ok(ran)));
                    }
                    Some(Poll::Pending) => return (index_of(handlers, h), PlainStop::Waiting),
                    None => return (index_of(handlers, h), PlainStop::Other),
                }
            }
            (handlers.len(), PlainStop::Finished)
        }));
        match ran {
            Ok(stopped) => stopped,
            Err(panic) => {
                let failure = policy::caught(&*panic);
                (
                    blamed(handlers, &blame).unwrap_or(0),
                    PlainStop::Ran(Err(failure)),
                )
            }
        }
    }

    /// The after handlers of a slot with no async handler. Here, what needs the operation's
    /// types: the pointers to the result and to its output; the handlers run in
    /// [`Hooks::sync_after`], compiled once for every operation.
    #[inline(always)]
    fn after_sync<Op: Operation>(
        &self,
        kind: CallKind,
        slot: &Slot<Op>,
        ctx: &mut Context,
        result: &mut Result<Op::Output, HookError>,
    ) {
        let at = ptr::from_mut(result);
        // SAFETY: `at` is `result`, borrowed for this call only; the output's pointer is derived
        // from it, and not used once the result is reached through `at` (an adapter, a stop):
        // the loops derive it anew from `at` then (`OpFns::output`).
        let output = match unsafe { &mut *at } {
            Ok(output) => ptr::from_mut(output).cast(),
            Err(_) => ptr::null_mut(),
        };
        // SAFETY: the slot and the functions are `Op`'s; `at` is the call's own result, and
        // `output` its output when it is a success.
        unsafe { self.sync_after(kind, slot, ctx, at.cast(), output, OpFns::of_op::<Op>()) }
    }

    /// [`Hooks::after_sync`] with the operation's types erased, compiled once: the fast loops
    /// when the policies allow them, the general loop when not.
    ///
    /// # Safety
    /// The slot is of the operation whose functions `fns` are; `result` comes from the call's own
    /// `&mut Result<Output, HookError>`, live and otherwise unused until it returns; `output` is
    /// null when that result is an error, else a pointer to its output derived from `result`.
    #[inline(never)]
    unsafe fn sync_after(
        &self,
        kind: CallKind,
        slot: &ErasedSlot,
        ctx: &mut Context,
        result: *mut (),
        output: *mut (),
        fns: &OpFns,
    ) {
        if self.fast() {
            if let Some(handlers) = &slot.bare_after {
                // SAFETY: the caller's.
                return unsafe { self.after_bare(kind, slot, handlers, ctx, result, output, fns) };
            }
            if let Some(handlers) = slot.fast_after() {
                let failed = output.is_null();
                // SAFETY: the caller's.
                return unsafe { self.after_fast(kind, slot, handlers, ctx, result, failed, fns) };
            }
        }
        // SAFETY: the caller's.
        unsafe { self.general_after(kind, slot.erased_after(), ctx, result, fns) }
    }

    /// The after handlers under the general policies, the loop of [`Hooks::sync_after`] when the
    /// fast ones may not run, compiled once.
    ///
    /// # Safety
    /// Every sync adapter is a `SyncAfter` of one operation, `result` comes from that
    /// operation's `&mut Result<Output, HookError>`, live and otherwise unused for the loop's
    /// duration, and `fns` are that operation's.
    #[inline(never)]
    unsafe fn general_after(
        &self,
        kind: CallKind,
        handlers: &[Entry<AfterFn<ErasedSyncAfter, ErasedAsyncAfter>>],
        ctx: &mut Context,
        result: *mut (),
        fns: &OpFns,
    ) {
        let policy = &self.inner.policy;
        let _code = HandlerCode::enter();
        for h in handlers {
            // SAFETY (here and below): the caller's: `result` is the operation's.
            if !h.reg.runs_for(ctx) || (!h.reg.on_error && unsafe { (fns.is_err)(result) }) {
                continue;
            }
            ctx.enter(h.reg);
            let ctx: &Context = ctx;
            let step = match h.f {
                AfterFn::Sync(f) => policy.call_sync(h.reg, || f(result, ctx, h.reg)),
                AfterFn::WildSync(f) => {
                    policy.call_sync(h.reg, || unsafe { (fns.wild_after)(result, f, ctx) })
                }
                AfterFn::Async(_) | AfterFn::WildAsync(_) => {
                    Ok(Err(async_on_sync(fns.name, h.reg)))
                }
            };
            if let Some(e) = self.after_outcome(kind, h.reg, step) {
                unsafe { (fns.set_err)(result, e) };
            }
        }
    }

    /// The fast loop of after handlers (plain sync handlers, plain policies). The loop itself is
    /// [`Hooks::adapted_after`]; an error, a panic, or a handler that takes the whole result
    /// stops it; the result is updated here, through `fns`, and the loop resumes after that
    /// handler. `failed` says whether the result is an error.
    ///
    /// # Safety
    /// As [`Hooks::sync_after`], where every handler is a `SyncAfter` of the operation.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    unsafe fn after_fast(
        &self,
        kind: CallKind,
        slot: &ErasedSlot,
        handlers: &[Entry<ErasedSyncAfter>],
        ctx: &mut Context,
        result: *mut (),
        failed: bool,
        fns: &OpFns,
    ) {
        let mut rest = handlers;
        let mut failed = failed;
        while !rest.is_empty() {
            // SAFETY (here and below): the caller's.
            let stop = unsafe { self.adapted_after(slot, rest, ctx, result, failed) };
            let Some((at, stop)) = stop else { return };
            let Some(h) = rest.get(at) else { return };
            unsafe { self.after_stopped(kind, h.reg, stop, result, fns) };
            // The handler, or what its stop did, may have changed whether it is an error.
            failed = unsafe { (fns.is_err)(result) };
            rest = &rest[at + 1..];
        }
    }

    /// The loop of [`Hooks::after_fast`], compiled once: the handlers up to the first that fails,
    /// or that takes the whole result (it may have changed whether it is an error): `Some` with
    /// its index and why it stopped. `failed` says whether the result is an error, in which case
    /// handlers that take the output do not run.
    ///
    /// # Safety
    /// Every handler is a `SyncAfter` of one operation, and `result` comes from that operation's
    /// `&mut Result<Output, HookError>`, live and otherwise unused for the loop's duration.
    #[inline(never)]
    unsafe fn adapted_after(
        &self,
        slot: &ErasedSlot,
        handlers: &[Entry<ErasedSyncAfter>],
        ctx: &mut Context,
        result: *mut (),
        failed: bool,
    ) -> Option<(usize, AfterStop)> {
        // With no handler of the whole result, every one runs on success only.
        if failed && !slot.after_whole {
            return None;
        }
        let check = slot.client_only || stats::any_disabled();
        let count = self.inner.policy.history != History::Off;
        let _code = HandlerCode::enter();
        let blame = Cell::new(ptr::null());
        let ran = catch_unwind(AssertUnwindSafe(|| {
            let (c, b) = (&mut *ctx, &blame);
            if slot.after_whole {
                with_flags!(
                    check,
                    count,
                    slot.context,
                    after_loop(handlers, c, result, failed, b)
                )
            } else {
                with_flags!(
                    check,
                    count,
                    slot.context,
                    after_loop_on_success(handlers, c, result, b)
                )
            }
        }));
        match ran {
            Ok(stopped) => stopped,
            Err(panic) => Some((blamed(handlers, &blame)?, AfterStop::Panicked(panic))),
        }
    }

    /// The fast loop of a slot's bare after handlers: the handlers run in [`Hooks::bare_after`];
    /// an error or a panic stops that loop, its effect on the result is applied here (an error
    /// replaces it), and the loop resumes after that handler while the result is a success
    /// (handlers that take the output do not run on an error).
    ///
    /// # Safety
    /// As [`Hooks::sync_after`].
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    unsafe fn after_bare(
        &self,
        kind: CallKind,
        slot: &ErasedSlot,
        handlers: &BareLoop,
        ctx: &mut Context,
        result: *mut (),
        output: *mut (),
        fns: &OpFns,
    ) {
        if handlers.next().is_some() {
            // SAFETY: the caller's.
            return unsafe { self.after_runs(kind, slot, handlers, ctx, result, output, fns) };
        }
        let mut rest = handlers.handlers();
        // Handlers with a result of their own came with their loop (`run_own_after`).
        let run = handlers.after_run();
        let mut output = output;
        while !output.is_null() {
            // SAFETY (both): the slot checked each bare after handler against the output when it
            // was built, and took its loop only for handlers of that loop's result; `output` is
            // the call's own (the caller's).
            let stop = match run {
                Some(run) => unsafe { run(self, slot.client_only, rest, ctx, output) },
                None => unsafe { self.bare_after(slot.client_only, rest, ctx, output) },
            };
            let Some((at, stop)) = stop else { return };
            let Some(reg) = rest.reg(at) else { return };
            // SAFETY (both): the caller's; the output's pointer is derived anew from the result,
            // which the stop may have replaced.
            unsafe { self.after_stopped(kind, reg, stop, result, fns) };
            output = unsafe { (fns.output)(result) };
            rest = rest.after(at);
        }
    }

    /// The bare after handlers of a slot that mixes shapes ([`Hooks::after_bare`]): its runs of
    /// handlers of one shape, in order, while the result is a success. Out of line and in one
    /// frame, as [`Hooks::before_runs`]: a run of the bare shapes runs in this loop, a run of
    /// handlers with a result of their own in the loop their attribute brought
    /// (`run_own_after`), a run of adapters in the loop of [`Hooks::adapted_after`]. A handler's error or panic stops the loop; its effect on the result is
    /// applied here, and the loop resumes after that handler while the result is a success.
    ///
    /// # Safety
    /// As [`Hooks::sync_after`], `first` the slot's first run.
    #[inline(never)]
    #[allow(clippy::too_many_arguments)]
    unsafe fn after_runs(
        &self,
        kind: CallKind,
        slot: &ErasedSlot,
        first: &BareLoop,
        ctx: &mut Context,
        result: *mut (),
        output: *mut (),
        fns: &OpFns,
    ) {
        let client_only = slot.client_only;
        let check = client_only || stats::any_disabled();
        let count = self.inner.policy.history != History::Off;
        let blame = Cell::new(ptr::null::<Entry<Erased>>());
        let (mut from, mut rest) = (first, first.handlers());
        let mut output = output;
        while !output.is_null() {
            // A kept panic may have left its handler here: each pass blames its own.
            blame.set(ptr::null());
            let code = HandlerCode::enter();
            let ran = catch_unwind(AssertUnwindSafe(|| {
                let (mut at, mut run) = (from, rest);
                let mut output = output;
                loop {
                    let stopped = by_shape!(run.shape(), S => {
                        // As in `before_runs`: the result fails, as an error of the first
                        // handler would.
                        let Some(handlers) = run.typed::<S>() else {
                            return Some((at, run, 0, AfterStop::Errored(wrong_shape())));
                        };
                        let (c, b) = (&mut *ctx, blame_as::<S>(&blame));
                        // SAFETY: the caller's.
                        let errored = unsafe {
                            with_flags!(check, count, bare_after_loop::<S>(handlers, c, output, b))
                        };
                        errored.map(|(i, e)| (i, AfterStop::Errored(e)))
                    }, answers => {
                        // As in `before_runs`: a run with a loop of its own, or of adapters.
                        // SAFETY: an after loop's adapters are `SyncAfter`s of the slot's
                        // operation.
                        match (at.after_run(), unsafe { run.adapters::<ErasedSyncAfter>() }) {
                            // SAFETY: the slot took the loop only for handlers of that loop's
                            // result, and checked each against the output when it was built;
                            // `output` is the call's own (the caller's).
                            (Some(own), _) => unsafe {
                                own(self, client_only, run, &mut *ctx, output)
                            },
                            // Through their adapters, on the result (a success: the loop runs
                            // only while it is one, and no handler of the slot takes the whole
                            // result).
                            (None, Some(adapters)) => {
                                let (c, b) = (&mut *ctx, blame_as::<ErasedSyncAfter>(&blame));
                                let stopped = with_flags!(
                                    check,
                                    count,
                                    slot.context,
                                    after_loop_on_success(adapters, c, result, b)
                                );
                                // The adapters reached the output through `result`, which a
                                // pointer derived from it before no longer may follow: the
                                // runs after this one get it derived anew.
                                // SAFETY: the caller's; the result is still a success (the
                                // loop stops at an error).
                                output = unsafe { (fns.output)(result) };
                                stopped
                            }
                            (None, None) => Some((0, AfterStop::Errored(wrong_shape()))),
                        }
                    });
                    if let Some((i, stop)) = stopped {
                        return Some((at, run, i, stop));
                    }
                    match at.next() {
                        Some(next) => (at, run) = (next, next.handlers()),
                        None => return None,
                    }
                }
            }));
            drop(code);
            let (at, ran, i, stop) = match ran {
                Ok(None) => return,
                Ok(Some(stopped)) => stopped,
                Err(panic) => match blamed_in(from, &blame) {
                    Some((at, i)) => (at, at.handlers(), i, AfterStop::Panicked(panic)),
                    None => return,
                },
            };
            let Some(reg) = ran.reg(i) else { return };
            // SAFETY (both): the caller's; the output's pointer is derived anew from the result,
            // which the stop may have replaced.
            unsafe { self.after_stopped(kind, reg, stop, result, fns) };
            output = unsafe { (fns.output)(result) };
            (from, rest) = (at, ran.after(i));
        }
    }

    /// The handlers of [`Hooks::after_bare`], up to the first that fails: `Some` with its index
    /// and what happened. Compiled once, not once per operation type.
    ///
    /// # Safety
    /// As [`Hooks::bare_before`], for `output`.
    #[inline(never)]
    unsafe fn bare_after(
        &self,
        client_only: bool,
        handlers: BareRun<'_>,
        ctx: &mut Context,
        output: *mut (),
    ) -> Option<(usize, AfterStop)> {
        // SAFETY: the caller's.
        by_shape!(handlers.shape(), S => unsafe {
            self.bare_after_in::<S>(client_only, handlers, ctx, output)
        }, answers => Some((0, AfterStop::Errored(wrong_shape()))))
    }

    /// [`Hooks::bare_after`] for handlers of one shape.
    ///
    /// # Safety
    /// As [`Hooks::bare_after`].
    #[inline(always)]
    unsafe fn bare_after_in<S: Shape<Out = ()>>(
        &self,
        client_only: bool,
        run: BareRun<'_>,
        ctx: &mut Context,
        output: *mut (),
    ) -> Option<(usize, AfterStop)> {
        // As in `bare_before_in`: the result fails, as an error of the first handler would.
        let Some(handlers) = run.typed::<S>() else {
            return Some((0, AfterStop::Errored(wrong_shape())));
        };
        let check = client_only || stats::any_disabled();
        let count = self.inner.policy.history != History::Off;
        let blame = Cell::new(ptr::null());
        let _code = HandlerCode::enter();
        let ran = catch_unwind(AssertUnwindSafe(|| {
            let (c, b) = (&mut *ctx, &blame);
            // SAFETY: the caller's.
            unsafe { with_flags!(check, count, bare_after_loop::<S>(handlers, c, output, b)) }
        }));
        match ran {
            Ok(errored) => errored.map(|(at, e)| (at, AfterStop::Errored(e))),
            Err(panic) => {
                let at = blamed(handlers, &blame)?;
                Some((at, AfterStop::Panicked(panic)))
            }
        }
    }

    /// What the handler a fast after loop stopped at does to the result: an error replaces it
    /// (an event's handlers only log it), a panic is logged and counted and replaces it or not as
    /// [`AfterFailure`] says.
    ///
    /// # Safety
    /// As [`Hooks::sync_after`], for `result` and `fns`.
    #[inline]
    unsafe fn after_stopped(
        &self,
        kind: CallKind,
        reg: &'static Registration,
        stop: AfterStop,
        result: *mut (),
        fns: &OpFns,
    ) {
        let replaced = match stop {
            AfterStop::Errored(e) => self.after_error(kind, reg, e),
            AfterStop::Panicked(panic) => self.after_panic_error(kind, reg, &*panic),
            AfterStop::Ran => None,
        };
        if let Some(e) = replaced {
            // SAFETY: the caller's.
            unsafe { (fns.set_err)(result, e) };
        }
    }

    /// An after handler of a fast loop returned an error: counted, and the error that replaces
    /// the result, if any.
    #[cold]
    #[inline(never)]
    fn after_error(
        &self,
        kind: CallKind,
        reg: &'static Registration,
        e: HookError,
    ) -> Option<HookError> {
        self.inner.policy.count(reg, Outcome::Errored);
        self.after_outcome(kind, reg, Ok(Err(e)))
    }

    /// What a panicking after handler leaves ([`Hooks::after_stopped`]), compiled once: the error
    /// that replaces the result, if any.
    #[cold]
    #[inline(never)]
    fn after_panic_error(
        &self,
        kind: CallKind,
        reg: &'static Registration,
        panic: &(dyn Any + Send),
    ) -> Option<HookError> {
        let failure = self.inner.policy.panicked(reg, panic);
        let keep = self.keeps_after_failure(kind);
        failure.log(reg, keep);
        (!keep).then(|| failure.to_error(reg))
    }

    /// The after handlers of a slot with async handlers, as [`Hooks::before_async`] runs the
    /// before handlers.
    async fn after_async<Op: Operation>(
        &self,
        kind: CallKind,
        slot: &Slot<Op>,
        ctx: &mut Context,
        result: &mut Result<Op::Output, HookError>,
    ) {
        let policy = &self.inner.policy;
        let mut fut = pin!(FutureSlot::new());
        let mut next = 0;
        loop {
            let run = WithTask::new(|cx| {
                // SAFETY: as in `before_async`: a future left in `fut` is awaited to its end or
                // dropped below before `ctx` or `result` is touched again.
                unsafe { self.after_run(kind, slot, next, ctx, result, fut.as_mut(), cx) }
            })
            .await;
            let (i, step) = match run {
                Run::Done(()) => return,
                Run::Waiting(i, waiting) => {
                    let reg = slot.after()[i].reg;
                    let step = policy.resume_async(reg, fut.as_mut(), waiting).await;
                    // A handler cut at its timeout is still in the slot: drop it now.
                    fut.as_mut().clear();
                    (i, step)
                }
                Run::Wild(i, f) => {
                    let ctx: &Context = ctx;
                    let result = &mut *result;
                    let boxed = Box::pin(async {
                        match result {
                            Ok(out) => wild_async(Op::output_records(out), f, ctx).await,
                            Err(_) => Ok(()),
                        }
                    });
                    (i, policy.call_async(slot.after()[i].reg, boxed).await)
                }
            };
            self.after_step(kind, slot.after()[i].reg, step, result);
            next = i + 1;
        }
    }

    /// The after handlers of a slot from index `from`, in a plain loop within one poll of the
    /// call, as [`Hooks::before_run`].
    ///
    /// # Safety
    /// As [`Hooks::before_run`], for `ctx` and `result`.
    #[allow(clippy::too_many_arguments)]
    unsafe fn after_run<'x, Op: Operation>(
        &self,
        kind: CallKind,
        slot: &Slot<Op>,
        from: usize,
        ctx: &mut Context,
        result: &mut Result<Op::Output, HookError>,
        mut fut: Pin<&mut FutureSlot<'x, Result<(), HookError>>>,
        cx: &mut std::task::Context<'_>,
    ) -> Run<()> {
        let policy = &self.inner.policy;
        // Handler code runs from here to the return, once marked for the whole loop.
        let _code = HandlerCode::enter();
        let check = slot.client_only || stats::any_disabled();
        // As in `before_run`.
        // A handler's own timeout times it from its call, which the plain first poll does not.
        let plain = self.fast() && !slot.timed;
        let mut from = from;
        if plain && result.is_ok() {
            let result_p = ptr::from_mut(result).cast();
            // SAFETY: this function's own contract; the slot's adapters are `Op`'s, given a
            // pointer from its `&mut Result<Op::Output, HookError>`.
            let (at, stop) =
                unsafe { self.async_after_plain(slot, from, ctx, result_p, fut.as_mut(), cx) };
            match stop {
                PlainStop::Finished => return Run::Done(()),
                PlainStop::Waiting => return Run::Waiting(at, policy::Waiting::plain()),
                PlainStop::Other => from = at,
                PlainStop::Ran(step) => {
                    // As in `before_run`.
                    fut.as_mut().clear();
                    let Some(h) = slot.after().get(at) else {
                        return Run::Done(());
                    };
                    policy.finish(h.reg, &step, None);
                    self.after_step(kind, h.reg, step, result);
                    from = at + 1;
                }
            }
        }
        let handlers = slot.after().get(from..).unwrap_or_default();
        for (i, h) in (from..).zip(handlers) {
            if (check && !h.reg.runs_for(ctx)) || (!h.reg.on_error && result.is_err()) {
                continue;
            }
            ctx.enter(h.reg);
            let step = match h.f {
                AfterFn::Sync(f) => policy.call_sync(h.reg, || f(result, ctx, h.reg)),
                AfterFn::Async(f) => {
                    // SAFETY: as in `before_run`.
                    let (result_x, ctx_x) =
                        unsafe { (&mut *ptr::from_mut(result), &*ptr::from_ref(ctx)) };
                    let (slot_x, cx_x) = (fut.as_mut(), &mut *cx);
                    let poll = move || f(result_x, ctx_x, slot_x, cx_x).into_after();
                    let first = if plain {
                        policy.poll_first_plain(h.reg, poll)
                    } else {
                        policy.poll_first(h.reg, poll)
                    };
                    match first {
                        First::Done(step) => {
                            // A handler that panicked is still in the slot: drop it before
                            // `result` is touched.
                            fut.as_mut().clear();
                            step
                        }
                        First::Waiting(waiting) => return Run::Waiting(i, waiting),
                    }
                }
                AfterFn::WildSync(f) => policy.call_sync(h.reg, || match &mut *result {
                    Ok(out) => wild_sync(Op::output_records(out), f, ctx),
                    Err(_) => Ok(()),
                }),
                AfterFn::WildAsync(f) => return Run::Wild(i, f),
            };
            self.after_step(kind, h.reg, step, result);
        }
        Run::Done(())
    }

    /// Why an event ([`Operation::EVENT`]) cannot be raised, if it cannot: it is over the
    /// payload limit (413). `None`, compiled away, for the other operations.
    #[inline(always)]
    fn event_refusal<Op: Operation>(&self, input: &Op::Input) -> Option<HookError> {
        if Op::EVENT {
            Op::input_refusal(input, self.inner.max_payload_bytes)
        } else {
            None
        }
    }

    /// The largest event or dynamic record this runtime accepts, in bytes of JSON.
    pub fn max_payload_bytes(&self) -> usize {
        self.inner.max_payload_bytes
    }

    /// Check that `value` serializes to at most [`Hooks::max_payload_bytes`] of JSON: 413
    /// `payload_too_large` otherwise, naming `what`.
    pub fn check_payload_size<T: serde::Serialize + ?Sized>(
        &self,
        what: &str,
        value: &T,
    ) -> Result<usize, HookError> {
        payload_size(what, value, self.inner.max_payload_bytes)
    }

    /// A record of a table with no Rust type, checked against this runtime's payload limit: see
    /// [`DynRecord::new`]. Create and update route it by its table; for delete, find and find by
    /// id, name the table with [`Hooks::run_on`].
    pub fn record(&self, table: &str, value: serde_json::Value) -> Result<DynRecord, HookError> {
        DynRecord::new(table, value, self.inner.max_payload_bytes)
    }

    /// Raise custom event `event`: every `#[on_event]` handler of its type runs, in order. A
    /// handler that fails is logged and counted and does not stop the others; background handlers
    /// are queued. Fails only when the event cannot be delivered: it is over the payload limit
    /// (413), a before handler vetoed it, or the background queue refused it.
    ///
    /// `run`, `run_sync` and the test kit's `Chain` run an event ([`Emit`]) the same way. An
    /// event raised from handler code is a nested call: unless `ctx` opted in
    /// ([`Context::with_nested_events`]), the recursion guard runs none of its handlers, and
    /// this returns `Ok(())`.
    pub async fn emit<E: Event>(&self, ctx: &mut Context, event: E) -> Result<(), HookError> {
        self.run::<Emit<E>, _, _>(ctx, event, |e| async move { Ok(e) })
            .await
            .map(drop)
    }

    /// Publish `message` to its channel through the hooks ([`Publish`]): handlers of the channel
    /// and of `"*"` run. The channel must be named as a dynamic table is (1 to 128 bytes, no
    /// space or control character, not `"*"`), and the message must be within the payload
    /// limit.
    pub async fn publish<F, Fut>(
        &self,
        ctx: &mut Context,
        message: Message,
        default: F,
    ) -> Result<Published, HookError>
    where
        F: FnOnce(Message) -> Fut,
        Fut: Future<Output = Result<Published, HookError>>,
    {
        if let Some(e) = crate::entity::name_error("channel", &message.channel) {
            return Err(e);
        }
        self.check_payload_size("the message", &message)?;
        self.run::<Publish, F, Fut>(ctx, message, default).await
    }

    /// Create `record` in its table through the hooks ([`Create`]); a [`DynRecord`] goes to
    /// the handlers of its own table.
    #[inline]
    pub fn create<'a, E, F, Fut>(
        &'a self,
        ctx: &'a mut Context,
        record: E,
        default: F,
    ) -> impl Future<Output = Result<E, HookError>>
    where
        E: Entity,
        F: FnOnce(E) -> Fut,
        Fut: Future<Output = Result<E, HookError>>,
    {
        self.run::<Create<E>, F, Fut>(ctx, record, default)
    }

    /// Update a record through the hooks ([`Update`]); a [`DynRecord`] goes to the handlers of
    /// its own table.
    #[inline]
    pub fn update<'a, E, F, Fut>(
        &'a self,
        ctx: &'a mut Context,
        changes: Changes<E>,
        default: F,
    ) -> impl Future<Output = Result<E, HookError>>
    where
        E: Entity,
        F: FnOnce(Changes<E>) -> Fut,
        Fut: Future<Output = Result<E, HookError>>,
    {
        self.run::<Update<E>, F, Fut>(ctx, changes, default)
    }

    /// Delete a record through the hooks ([`Delete`]). Of a [`DynRecord`], name the table with
    /// [`Hooks::run_on`] (see [`Hooks::find`]).
    #[inline]
    pub fn delete<'a, E, F, Fut>(
        &'a self,
        ctx: &'a mut Context,
        key: Key<E>,
        default: F,
    ) -> impl Future<Output = Result<Key<E>, HookError>>
    where
        E: Entity,
        F: FnOnce(Key<E>) -> Fut,
        Fut: Future<Output = Result<Key<E>, HookError>>,
    {
        self.run::<Delete<E>, F, Fut>(ctx, key, default)
    }

    /// Find records through the hooks ([`Find`]).
    ///
    /// A query names no table, so a find of [`DynRecord`]s does not compile: the table's
    /// handlers would be skipped. Name the table with [`Hooks::run_on`] instead:
    ///
    /// ```compile_fail,E0080
    /// # use hooks_core::{Context, DynRecord, Hooks, Query};
    /// # let hooks = Hooks::builder().build().unwrap();
    /// # let ctx = &mut Context::client();
    /// let found = hooks.find::<DynRecord, _, _>(ctx, Query::all(), |_| async { Ok(vec![]) });
    /// ```
    ///
    /// ```
    /// # use hooks_core::{Context, DynRecord, Hooks, Query, ops::data::Find};
    /// # async fn f(hooks: &Hooks, ctx: &mut Context) {
    /// let found = hooks.run_on::<Find<DynRecord>, _, _>(ctx, "notes", Query::all(), |_| async {
    ///     Ok(vec![])
    /// });
    /// # let _ = found.await;
    /// # }
    /// ```
    #[inline]
    pub fn find<'a, E, F, Fut>(
        &'a self,
        ctx: &'a mut Context,
        query: Query<E>,
        default: F,
    ) -> impl Future<Output = Result<Vec<E>, HookError>>
    where
        E: Entity,
        F: FnOnce(Query<E>) -> Fut,
        Fut: Future<Output = Result<Vec<E>, HookError>>,
    {
        self.run::<Find<E>, F, Fut>(ctx, query, default)
    }

    /// Find one record by id through the hooks ([`FindById`]). Of a [`DynRecord`], name the
    /// table with [`Hooks::run_on`] (see [`Hooks::find`]).
    #[inline]
    pub fn find_by_id<'a, E, F, Fut>(
        &'a self,
        ctx: &'a mut Context,
        key: Key<E>,
        default: F,
    ) -> impl Future<Output = Result<E, HookError>>
    where
        E: Entity,
        F: FnOnce(Key<E>) -> Fut,
        Fut: Future<Output = Result<E, HookError>>,
    {
        self.run::<FindById<E>, F, Fut>(ctx, key, default)
    }

    /// Create several records in one call through the hooks ([`BulkCreate`]): before handlers
    /// see every new record, after handlers every stored one (`default` returns them).
    ///
    /// A list of [`DynRecord`]s may name several tables, so their bulk create does not compile
    /// here; name the table with [`Hooks::run_on`]:
    ///
    /// ```compile_fail,E0080
    /// # use hooks_core::{Context, DynRecord, Hooks};
    /// # let hooks = Hooks::builder().build().unwrap();
    /// # let ctx = &mut Context::client();
    /// let notes: Vec<DynRecord> = vec![hooks.record("notes", serde_json::json!({})).unwrap()];
    /// let stored = hooks.bulk_create(ctx, notes, |n| async { Ok(n) });
    /// ```
    ///
    /// ```
    /// # use hooks_core::{Context, DynRecord, Hooks, ops::data::BulkCreate};
    /// # async fn f(hooks: &Hooks, ctx: &mut Context) {
    /// let notes = vec![hooks.record("notes", serde_json::json!({"text": "hi"})).unwrap()];
    /// let stored = hooks.run_on::<BulkCreate<DynRecord>, _, _>(ctx, "notes", notes, |n| async {
    ///     Ok(n)
    /// });
    /// # let _ = stored.await;
    /// # }
    /// ```
    #[inline]
    pub fn bulk_create<'a, E, F, Fut>(
        &'a self,
        ctx: &'a mut Context,
        records: Vec<E>,
        default: F,
    ) -> impl Future<Output = Result<Vec<E>, HookError>>
    where
        E: Entity,
        F: FnOnce(Vec<E>) -> Fut,
        Fut: Future<Output = Result<Vec<E>, HookError>>,
    {
        self.run::<BulkCreate<E>, F, Fut>(ctx, records, default)
    }

    /// Update every record a query selects with the same changes through the hooks
    /// ([`BulkUpdate`]); `default` returns how many it updated. Of [`DynRecord`]s, name the
    /// table with [`Hooks::run_on`] (see [`Hooks::find`]).
    #[inline]
    pub fn bulk_update<'a, E, F, Fut>(
        &'a self,
        ctx: &'a mut Context,
        changes: BulkChanges<E>,
        default: F,
    ) -> impl Future<Output = Result<Affected<E>, HookError>>
    where
        E: Entity,
        F: FnOnce(BulkChanges<E>) -> Fut,
        Fut: Future<Output = Result<Affected<E>, HookError>>,
    {
        self.run::<BulkUpdate<E>, F, Fut>(ctx, changes, default)
    }

    /// Delete every record a query selects through the hooks ([`BulkDelete`]); `default`
    /// returns how many it deleted. Of [`DynRecord`]s, name the table with [`Hooks::run_on`]
    /// (see [`Hooks::find`]).
    #[inline]
    pub fn bulk_delete<'a, E, F, Fut>(
        &'a self,
        ctx: &'a mut Context,
        query: Query<E>,
        default: F,
    ) -> impl Future<Output = Result<Affected<E>, HookError>>
    where
        E: Entity,
        F: FnOnce(Query<E>) -> Fut,
        Fut: Future<Output = Result<Affected<E>, HookError>>,
    {
        self.run::<BulkDelete<E>, F, Fut>(ctx, query, default)
    }
}

/// Why a call of `Op` naming `asset` ([`Hooks::run_on`]) cannot be about it, if it cannot: an
/// operation with an asset of its own takes only that one; a call whose input names its asset
/// takes only the one it names; a call of an operation whose calls name their asset names one.
#[inline]
fn asset_refusal<Op: Operation>(asset: &str, input: &Op::Input) -> Option<HookError> {
    if Op::ASSET != "*" {
        return (asset != Op::ASSET).then(|| asset_mismatch(Op::NAME, asset, Op::ASSET));
    }
    if !Op::DYNAMIC {
        return None;
    }
    if asset.is_empty() || asset == "*" {
        return Some(asset_unnamed(Op::NAME, asset));
    }
    if let Some(e) = crate::entity::name_error("table or channel", asset) {
        return Some(e);
    }
    Op::input_names_other(input, asset).map(|named| asset_mismatch(Op::NAME, asset, named))
}

/// A call whose input names its asset ([`Operation::DYNAMIC`]) that its before handlers let go
/// on: a rejection if one of them moved it to another table or channel (see [`moved`]). A no-op,
/// compiled away, for the other operations.
#[inline(always)]
fn stayed<Op: Operation>(began: Began, ctx: &Context, input: &Op::Input) -> Began {
    match began {
        Began::Go if Op::DYNAMIC => moved::<Op>(ctx, input).map_or(Began::Go, Began::Rejected),
        began => began,
    }
}

/// The error of a call that a before handler moved to another table or channel than the one it
/// began on (a message's channel changed, a record of another table put in a dynamic record's
/// place), if one did. The call ran the handlers of the asset it began on, so the new one's
/// guards never saw it: it fails closed, before its default, with 500 `asset_moved`.
#[inline]
fn moved<Op: Operation>(ctx: &Context, input: &Op::Input) -> Option<HookError> {
    let began_on = ctx.asset();
    Op::input_names_other(input, began_on).map(|to| asset_moved(Op::NAME, began_on, to))
}

/// [`moved`]'s error. The names go to the log, not to the client: the new one is the handler's
/// choice, perhaps an internal table's.
#[cold]
#[inline(never)]
fn asset_moved(op: &str, from: &str, to: &str) -> HookError {
    tracing::error!(
        operation = op,
        from,
        to,
        "a before handler moved a call to another table or channel; the call fails"
    );
    HookError::new(
        500,
        "asset_moved",
        format!(
            "a before handler moved this {op} call to another table or channel: a call runs the \
             handlers of the one it began on, so it cannot move"
        ),
    )
}

/// The refusal of a call naming `asked` that is about `about`.
#[cold]
#[inline(never)]
fn asset_mismatch(op: &str, asked: &str, about: &str) -> HookError {
    HookError::new(
        400,
        "asset_mismatch",
        format!("this {op} call is about {about:?}, so it cannot run on {asked:?}"),
    )
}

/// The refusal of a call of an operation whose calls name their asset, named `asked` (empty, or
/// `"*"`).
#[cold]
#[inline(never)]
fn asset_unnamed(op: &str, asked: &str) -> HookError {
    HookError::new(
        400,
        "asset_mismatch",
        format!("a {op} call names its table or channel, and {asked:?} is not one"),
    )
}

/// The future of a call: the default's own future when the operation has no handlers, the flow
/// of handlers otherwise, on the heap ([`Synced`] when all of them are sync, the `async fn`
/// [`Hooks::run_slot`] when not), its type erased.
///
/// Two variants, the second a pointer and two function pointers, so that the enum is laid out
/// as the default's future with a niche, and a caller compiles a call with no handlers as it
/// would without hooks (a third variant made that case ~8 instructions dearer). The flow's poll
/// and drop are out of line.
enum Dispatch<D: Future, S, H> {
    Direct(D),
    Hooked(ErasedFlow<D::Output, (S, H)>),
}

impl<D: Future, S, H> Drop for Dispatch<D, S, H> {
    #[inline(always)]
    fn drop(&mut self) {
        if let Dispatch::Hooked(flow) = self {
            // SAFETY: called once, from `Dispatch::drop`; the flow is not touched afterwards.
            unsafe { (flow.drop)(flow.ptr) }
        }
    }
}

/// A flow in its [`FlowBox`], with its type erased: the block, and the two functions that poll
/// and drop the flow there. `T` stands for the flow types it may hold, so that the erased flow
/// is `Send` or `Sync` only when they are.
struct ErasedFlow<O, T> {
    ptr: ptr::NonNull<()>,
    poll: unsafe fn(ptr::NonNull<()>, &mut std::task::Context<'_>) -> Poll<O>,
    drop: unsafe fn(ptr::NonNull<()>),
    _types: std::marker::PhantomData<T>,
}

// SAFETY: an `ErasedFlow` owns one flow of a type `T` stands for (`S` or `H` of `(S, H)`), as a
// `Box` would: it may go to another thread when every such type may.
unsafe impl<O, T: Send> Send for ErasedFlow<O, T> {}
// SAFETY: through `&ErasedFlow` nothing of the flow can be reached (polling takes `&mut`).
unsafe impl<O, T: Sync> Sync for ErasedFlow<O, T> {}

impl<O, S, H> ErasedFlow<O, (S, H)>
where
    S: Future<Output = O>,
    H: Future<Output = O>,
{
    /// A [`Synced`] flow.
    #[inline(always)]
    fn synced(flow: FlowBox<S>) -> Self {
        Self::erase(flow)
    }

    /// An async flow ([`Hooks::run_slot`]).
    #[inline(always)]
    fn hooked(flow: FlowBox<H>) -> Self {
        Self::erase(flow)
    }

    #[inline(always)]
    fn erase<F: Future<Output = O>>(flow: FlowBox<F>) -> Self {
        ErasedFlow {
            ptr: FlowBox::into_raw(flow).cast(),
            poll: poll_flow::<F>,
            drop: drop_flow::<F>,
            _types: std::marker::PhantomData,
        }
    }
}

/// Poll the flow `F` at `ptr`.
///
/// # Safety
/// `ptr` came from `FlowBox::<F>::into_raw`, and the flow is still there.
#[inline(never)]
unsafe fn poll_flow<F: Future>(
    ptr: ptr::NonNull<()>,
    cx: &mut std::task::Context<'_>,
) -> Poll<F::Output> {
    // SAFETY: the flow is at `ptr`, never moves out of its block, and is only reached through
    // the `ErasedFlow` that owns it.
    unsafe { Pin::new_unchecked(ptr.cast::<F>().as_mut()) }.poll(cx)
}

/// Drop the flow `F` at `ptr` and give its block back.
///
/// # Safety
/// As [`poll_flow`]; the flow is not touched afterwards.
#[inline(never)]
unsafe fn drop_flow<F>(ptr: ptr::NonNull<()>) {
    // SAFETY: see above.
    drop(unsafe { FlowBox::from_raw(ptr.cast::<F>()) })
}

impl<D, S, H> Future for Dispatch<D, S, H>
where
    D: Future,
    S: Future<Output = D::Output>,
    H: Future<Output = D::Output>,
{
    type Output = D::Output;

    #[inline(always)]
    fn poll(self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<D::Output> {
        // SAFETY: structural pinning. The variant is never changed or moved out of once pinned,
        // and `Dispatch::drop` moves nothing, so the default's future stays where it was pinned
        // (a flow never moves out of its block).
        unsafe {
            match self.get_unchecked_mut() {
                Dispatch::Direct(d) => Pin::new_unchecked(d).poll(cx),
                Dispatch::Hooked(flow) => (flow.poll)(flow.ptr, cx),
            }
        }
    }
}

/// The flow of an async call whose handlers are all sync, none of them in the background: the
/// handlers run as on a sync call ([`Hooks::sync_begin`], [`Hooks::sync_end`]), around the
/// default's future, with no state machine around them and no await point per handler. Nothing
/// runs before the first poll.
struct Synced<'a, Op: Operation, F, Fut> {
    hooks: &'a Hooks,
    ctx: &'a mut Context,
    slot: &'a Slot<Op>,
    kind: CallKind,
    stage: Stage<Op::Input, F, Fut>,
}

/// Where a [`Synced`] flow is.
enum Stage<I, F, Fut> {
    /// Not polled yet.
    Start {
        named: Option<Box<str>>,
        input: I,
        default: F,
    },
    /// The default's future; `hooked` when the after handlers run on its result (not on a
    /// nested call that fires no handler).
    Default { fut: Fut, hooked: bool },
    /// Finished.
    Done,
}

impl<Op, F, Fut> Future for Synced<'_, Op, F, Fut>
where
    Op: Operation,
    F: FnOnce(Op::Input) -> Fut,
    Fut: Future<Output = Result<Op::Output, HookError>>,
{
    type Output = Result<Op::Output, HookError>;

    #[inline(never)]
    fn poll(self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<Self::Output> {
        // SAFETY: structural pinning of `Stage::Default`'s future: it is never moved out, and it
        // leaves the stage only by being dropped in place (`self.stage = Stage::Done`). The
        // `Start` stage holds nothing pinned, so it may be moved out.
        let this = unsafe { self.get_unchecked_mut() };
        if let Stage::Start {
            named,
            input,
            default,
        } = &mut this.stage
        {
            // The slot's own problem fails the call in the erased before phase (`Begun::Failed`
            // below), as on a sync call. The before handlers change the input where it lies: the
            // stage is not moved out first (a copy of the input, the asset's name and the
            // default for each call).
            let begun = this
                .hooks
                .sync_begin(this.ctx, this.slot, named.take(), input);
            let hooked = match begun {
                Begun::Failed(e) => {
                    this.stage = Stage::Done;
                    return Poll::Ready(Err(e));
                }
                Begun::Answered(mut result) => {
                    this.stage = Stage::Done;
                    this.finish(&mut result);
                    return Poll::Ready(result);
                }
                Begun::Silent => false,
                Begun::Go => true,
            };
            // SAFETY: `input` and `default` are read out once, and the stage is then overwritten
            // without being dropped: what is left of `Start` is `named`, taken above, so nothing
            // is dropped twice or leaked. Should the default panic, the stage is already `Done`.
            let (input, default) = unsafe {
                let read = (ptr::read(input), ptr::read(default));
                ptr::write(&mut this.stage, Stage::Done);
                read
            };
            this.stage = Stage::Default {
                fut: default(input),
                hooked,
            };
        }
        let Stage::Default { fut, hooked } = &mut this.stage else {
            return Poll::Ready(Err(HookError::internal(
                "a hooked call's future was polled after it completed",
            )));
        };
        let hooked = *hooked;
        // SAFETY: see above; `fut` stays where it is until it is dropped in place below.
        let fut = unsafe { Pin::new_unchecked(fut) };
        if !hooked || this.slot.ends_at_default() {
            // Nothing runs after the default: its poll is the call's, returned as it comes
            // rather than through a local the after phase would change (see `run_sync_slot`).
            let polled = fut.poll(cx);
            if polled.is_ready() {
                this.stage = Stage::Done;
            }
            return polled;
        }
        let mut result = std::task::ready!(fut.poll(cx));
        this.stage = Stage::Done;
        // Hooked, and with an after phase: the rest returned above.
        this.finish(&mut result);
        Poll::Ready(result)
    }
}

impl<Op: Operation, F, Fut> Synced<'_, Op, F, Fut> {
    /// The after handlers, then the context is left.
    #[inline(always)]
    fn finish(&mut self, result: &mut Result<Op::Output, HookError>) {
        self.hooks.sync_end(self.kind, self.slot, self.ctx, result);
    }
}

/// Counts the bytes a serializer writes, and stops it past a limit.
struct SizeLimit {
    written: usize,
    limit: usize,
}

impl std::io::Write for SizeLimit {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.written = self.written.saturating_add(buf.len());
        if self.written > self.limit {
            return Err(std::io::Error::other("over the payload limit"));
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The JSON size of `value`, or 413 when it is over `limit` (or 400 when it cannot be serialized).
pub(crate) fn payload_size<T: serde::Serialize + ?Sized>(
    what: &str,
    value: &T,
    limit: usize,
) -> Result<usize, HookError> {
    let mut counter = SizeLimit { written: 0, limit };
    match serde_json::to_writer(&mut counter, value) {
        Ok(()) => Ok(counter.written),
        Err(_) if counter.written > limit => Err(HookError::payload_too_large(format!(
            "{what} is over the payload limit of {limit} bytes of JSON"
        ))),
        Err(e) => Err(HookError::bad_request(format!(
            "{what} cannot be serialized as JSON: {e}"
        ))),
    }
}

/// The loop of a slot's before handlers that may answer the call, for the output `O`
/// ([`AnswerRun`]): the attribute of such a handler names it (in [`Answers`]), so it is compiled
/// once for each output type that has such handlers, and for no other. `true` when a handler
/// stopped the call, its answer or rejection left in `early`.
///
/// # Safety
/// `handlers` points to the bare loop of a slot of an operation whose output is `O`, whose
/// handlers have a shape that answers; `input` to that call's input, as in
/// [`Hooks::bare_before`]; `early` to its `Early<O>`, live and not otherwise used.
///
/// [`AnswerRun`]: crate::registration::AnswerRun
/// [`Answers`]: crate::registration::Answers
#[doc(hidden)]
pub unsafe fn run_answers<O>(
    hooks: &Hooks,
    client_only: bool,
    handlers: *const (),
    ctx: &mut Context,
    input: *mut (),
    early: *mut (),
) -> bool {
    // SAFETY: the caller's.
    let stopped = unsafe {
        let handlers = &*handlers.cast::<BareLoop>();
        hooks.answer_before::<O>(client_only, handlers, ctx, input)
    };
    let Some(stopped) = stopped else {
        return false;
    };
    // SAFETY: the caller's: `early` is the call's own `Early<O>`.
    *unsafe { &mut *early.cast::<Early<O>>() } = Some(stopped);
    true
}

/// The loop of a slot's before handlers with a result of their own, read back as `S` ([`OwnFn`]
/// or [`OwnCtxFn`] of the output and of the result), as [`run_answers`] is for the handlers that
/// may answer: the attribute of such a handler names it (`Direct::own_mut` and the like), so it
/// is compiled once for each output and result type that has such handlers. The stop is left in
/// the call's `Early`.
///
/// # Safety
/// As [`run_answers`], `S` the type the slot's handlers were checked to have (they take the
/// operation's input and return the result `S` reads).
///
/// [`OwnFn`]: crate::table::OwnFn
/// [`OwnCtxFn`]: crate::table::OwnCtxFn
pub(crate) unsafe fn run_own<S: Shape>(
    hooks: &Hooks,
    client_only: bool,
    handlers: *const (),
    ctx: &mut Context,
    input: *mut (),
    early: *mut (),
) -> bool {
    // SAFETY: the caller's.
    let stopped = unsafe {
        let handlers = (*handlers.cast::<BareLoop>()).handlers();
        hooks.bare_before_in::<S, Once>(client_only, handlers, ctx, input)
    };
    let Some(stopped) = stopped else {
        return false;
    };
    // SAFETY: the caller's: `early` is the call's own `Early` of the output the handlers answer
    // with.
    *unsafe { &mut *early.cast::<Early<S::Answer>>() } = Some(stopped);
    true
}

/// The loop of a slot's after handlers with a result of their own, read back as `S`
/// ([`OwnAfterFn`] or [`OwnAfterCtxFn`] of the result), as [`Hooks::bare_after`] is for the bare
/// shapes: the attribute of such a handler names it (`Direct::own_after_mut` and the like), so it
/// is compiled once for each result type that has such handlers.
///
/// # Safety
/// As [`Hooks::bare_after`], `S` the type the slot's handlers were checked to have (they take the
/// operation's output and return the result `S` reads).
///
/// [`OwnAfterFn`]: crate::table::OwnAfterFn
/// [`OwnAfterCtxFn`]: crate::table::OwnAfterCtxFn
pub(crate) unsafe fn run_own_after<S: Shape<Out = ()>>(
    hooks: &Hooks,
    client_only: bool,
    handlers: BareRun<'_>,
    ctx: &mut Context,
    output: *mut (),
) -> Option<(usize, AfterStop)> {
    // SAFETY: the caller's.
    unsafe { hooks.bare_after_in::<S>(client_only, handlers, ctx, output) }
}

/// One pass of the fast before loop, two handlers a turn (the loop's own bookkeeping is paid
/// once per pair): the index of the first handler that answers or rejects. `ENTER` tells the
/// context which handler runs; a panic is blamed through [`Blame`] either way.
#[inline(always)]
fn before_loop<const CHECK: bool, const COUNT: bool, const ENTER: bool>(
    handlers: &[Entry<ErasedSyncBefore>],
    args: &mut ErasedBeforeArgs,
    blame: &Cell<*const Entry<ErasedSyncBefore>>,
) -> Option<usize> {
    // Read once: the adapters get `args` to read, not to change (`BeforeArgs::parts`).
    let ctx = args.ctx;
    let stops = |h: &Entry<ErasedSyncBefore>, args: &mut ErasedBeforeArgs| {
        // SAFETY: `ctx` is the call's own `&mut Context` (`Hooks::adapted_before`), which only
        // this loop and, during its calls, the adapters use: no other reference to it is live.
        if CHECK && !h.reg.runs_for(unsafe { &*ctx }) {
            return false;
        }
        if ENTER {
            // SAFETY: as above; no adapter runs while it is written.
            unsafe { (*ctx).enter(h.reg) };
        }
        let guard = Blame(blame, h);
        let go_on = (h.f)(args, h.reg);
        std::mem::forget(guard);
        if go_on && COUNT {
            h.reg.state.record(Outcome::Ok, None);
        }
        !go_on
    };
    let mut rest = handlers;
    while let [a, b, tail @ ..] = rest {
        if stops(a, args) {
            return Some(index_of(handlers, a));
        }
        if stops(b, args) {
            return Some(index_of(handlers, b));
        }
        rest = tail;
    }
    match rest {
        [a] if stops(a, args) => Some(index_of(handlers, a)),
        _ => None,
    }
}

/// Why the fast before loop stopped.
enum BeforeStop {
    /// The handler at this index answered or rejected the call.
    Answered(usize),
    /// A handler panicked (the one at this index, if known).
    Panicked(Option<usize>, Box<dyn Any + Send>),
}

/// Why a fast after loop (of adapters, or of bare handlers) stopped at a handler.
pub(crate) enum AfterStop {
    /// It returned this error.
    Errored(HookError),
    /// It panicked with this payload.
    Panicked(Box<dyn Any + Send>),
    /// It takes the whole result, and ran: the result may have changed (adapters only).
    Ran,
}

/// One pass of the fast after loop: see [`Hooks::adapted_after`]. `ENTER` as in
/// [`before_loop`].
#[inline(always)]
fn after_loop<const CHECK: bool, const COUNT: bool, const ENTER: bool>(
    handlers: &[Entry<ErasedSyncAfter>],
    ctx: &mut Context,
    result: *mut (),
    failed: bool,
    blame: &Cell<*const Entry<ErasedSyncAfter>>,
) -> Option<(usize, AfterStop)> {
    for (at, h) in handlers.iter().enumerate() {
        if CHECK && !h.reg.runs_for(ctx) {
            continue;
        }
        if !h.reg.on_error && failed {
            continue;
        }
        if ENTER {
            ctx.enter(h.reg);
        }
        let guard = Blame(blame, h);
        let ran = (h.f)(result, ctx, h.reg);
        std::mem::forget(guard);
        match ran {
            Ok(()) => {
                if COUNT {
                    h.reg.state.record(Outcome::Ok, None);
                }
                if h.reg.on_error {
                    return Some((at, AfterStop::Ran));
                }
            }
            Err(e) => return Some((at, AfterStop::Errored(e))),
        }
    }
    None
}

/// [`after_loop`] for a slot whose after handlers all take the output (none the whole result),
/// on a success: no handler is tested for that, and the loop stops only at an error.
#[inline(always)]
fn after_loop_on_success<const CHECK: bool, const COUNT: bool, const ENTER: bool>(
    handlers: &[Entry<ErasedSyncAfter>],
    ctx: &mut Context,
    result: *mut (),
    blame: &Cell<*const Entry<ErasedSyncAfter>>,
) -> Option<(usize, AfterStop)> {
    let mut one = |h: &Entry<ErasedSyncAfter>| -> Option<HookError> {
        if CHECK && !h.reg.runs_for(ctx) {
            return None;
        }
        if ENTER {
            ctx.enter(h.reg);
        }
        let guard = Blame(blame, h);
        let ran = (h.f)(result, ctx, h.reg);
        std::mem::forget(guard);
        match ran {
            Ok(()) => {
                if COUNT {
                    h.reg.state.record(Outcome::Ok, None);
                }
                None
            }
            Err(e) => Some(e),
        }
    };
    let stop = |h, e| Some((index_of(handlers, h), AfterStop::Errored(e)));
    let mut rest = handlers;
    while let [a, b, tail @ ..] = rest {
        if let Some(e) = one(a) {
            return stop(a, e);
        }
        if let Some(e) = one(b) {
            return stop(b, e);
        }
        rest = tail;
    }
    match rest {
        [a] => one(a).and_then(|e| stop(a, e)),
        _ => None,
    }
}

/// The index of `h` in `handlers`, which holds it (computed only when a loop stops, so the loop
/// keeps no counter).
fn index_of<F>(handlers: &[Entry<F>], h: &Entry<F>) -> usize {
    (ptr::from_ref(h).addr() - handlers.as_ptr().addr()) / std::mem::size_of::<Entry<F>>()
}

/// One pass of the fast loop of bare before handlers, two handlers a turn (the loop's own
/// bookkeeping is paid once per pair): the first rejection, if any.
///
/// # Safety
/// As [`Hooks::bare_before`].
#[inline(always)]
unsafe fn bare_before_loop<S: Shape, F: Flags>(
    flags: F,
    policy: &Policy,
    handlers: &[Entry<S>],
    ctx: &mut Context,
    input: *mut (),
    blame: &Cell<*const Entry<S>>,
) -> Option<Result<S::Answer, HookError>> {
    let mut rest = handlers;
    while let [a, b, tail @ ..] = rest {
        // SAFETY: the caller's.
        if let Some(stop) = unsafe { bare_before_one::<S, F>(flags, policy, a, ctx, input, blame) }
        {
            return Some(stop);
        }
        // SAFETY: the caller's.
        if let Some(stop) = unsafe { bare_before_one::<S, F>(flags, policy, b, ctx, input, blame) }
        {
            return Some(stop);
        }
        rest = tail;
    }
    match rest {
        // SAFETY: the caller's.
        [a] => unsafe { bare_before_one::<S, F>(flags, policy, a, ctx, input, blame) },
        _ => None,
    }
}

/// One bare before handler: its answer or its rejection, if it stopped the call.
///
/// # Safety
/// As [`Hooks::bare_before`].
#[inline(always)]
unsafe fn bare_before_one<S: Shape, F: Flags>(
    flags: F,
    policy: &Policy,
    h: &Entry<S>,
    ctx: &mut Context,
    input: *mut (),
    blame: &Cell<*const Entry<S>>,
) -> Option<Result<S::Answer, HookError>> {
    if flags.check() && !h.reg.runs_for(ctx) {
        return None;
    }
    let guard = Blame(blame, h);
    // SAFETY: the caller's.
    let ran = unsafe { h.f.call(input, ctx, h.reg) };
    std::mem::forget(guard);
    match ran.map(S::answer) {
        Ok(None) => {
            if flags.count() {
                h.reg.state.record(Outcome::Ok, None);
            }
            None
        }
        Ok(Some(answer)) => {
            if flags.count() {
                policy.count(h.reg, Outcome::Ok);
            }
            Some(Ok(answer))
        }
        Err(e) => {
            if flags.count() {
                policy.count(h.reg, Outcome::Rejected);
            }
            Some(Err(e))
        }
    }
}

/// One pass of the fast loop of bare after handlers, two handlers a turn (as
/// [`bare_before_loop`]: the loop's own bookkeeping is paid once per pair, and it keeps no
/// counter): the first error, with its handler's index.
///
/// # Safety
/// As [`Hooks::bare_after`].
#[inline(always)]
unsafe fn bare_after_loop<S: Shape<Out = ()>, const CHECK: bool, const COUNT: bool>(
    handlers: &[Entry<S>],
    ctx: &mut Context,
    output: *mut (),
    blame: &Cell<*const Entry<S>>,
) -> Option<(usize, HookError)> {
    // SAFETY (all three calls): the caller's.
    let mut rest = handlers;
    while let [a, b, tail @ ..] = rest {
        if let Some(e) = unsafe { bare_after_one::<S, CHECK, COUNT>(a, ctx, output, blame) } {
            return Some((index_of(handlers, a), e));
        }
        if let Some(e) = unsafe { bare_after_one::<S, CHECK, COUNT>(b, ctx, output, blame) } {
            return Some((index_of(handlers, b), e));
        }
        rest = tail;
    }
    match rest {
        [a] => unsafe { bare_after_one::<S, CHECK, COUNT>(a, ctx, output, blame) }
            .map(|e| (index_of(handlers, a), e)),
        _ => None,
    }
}

/// One bare after handler: its error, if it returned one.
///
/// # Safety
/// As [`Hooks::bare_after`].
#[inline(always)]
unsafe fn bare_after_one<S: Shape<Out = ()>, const CHECK: bool, const COUNT: bool>(
    h: &Entry<S>,
    ctx: &mut Context,
    output: *mut (),
    blame: &Cell<*const Entry<S>>,
) -> Option<HookError> {
    if CHECK && !h.reg.runs_for(ctx) {
        return None;
    }
    let guard = Blame(blame, h);
    // SAFETY: the caller's.
    let ran = unsafe { h.f.call(output, ctx, h.reg) };
    std::mem::forget(guard);
    match ran {
        Ok(()) => {
            if COUNT {
                h.reg.state.record(Outcome::Ok, None);
            }
            None
        }
        Err(e) => Some(e),
    }
}

/// Names the handler a fast loop is calling, should it panic: armed before the call and forgotten
/// after it, so only unwinding runs its `drop`, and the loop stores nothing per handler.
struct Blame<'a, T>(&'a Cell<*const T>, *const T);

impl<T> Drop for Blame<'_, T> {
    fn drop(&mut self) {
        self.0.set(self.1);
    }
}

/// The two flags of a fast loop: whether each handler's switch and origin rule are checked,
/// and whether its runs are counted.
trait Flags: Copy {
    fn check(self) -> bool;
    fn count(self) -> bool;
}

/// The flags as constants: each loop is compiled in its four variants, and the call picks one.
#[derive(Clone, Copy)]
struct Fixed<const CHECK: bool, const COUNT: bool>;

impl<const CHECK: bool, const COUNT: bool> Flags for Fixed<CHECK, COUNT> {
    #[inline(always)]
    fn check(self) -> bool {
        CHECK
    }
    #[inline(always)]
    fn count(self) -> bool {
        COUNT
    }
}

/// The flags as values: one copy of the loop, which tests them for each handler.
#[derive(Clone, Copy)]
struct Given {
    check: bool,
    count: bool,
}

impl Flags for Given {
    #[inline(always)]
    fn check(self) -> bool {
        self.check
    }
    #[inline(always)]
    fn count(self) -> bool {
        self.count
    }
}

/// What a bare before loop runs on: the policy, the handlers, the call's context and input, and
/// where a panic is blamed.
struct BareBefore<'a, 'c, S> {
    policy: &'a Policy,
    handlers: &'a [Entry<S>],
    ctx: &'c mut Context,
    input: *mut (),
    blame: &'a Cell<*const Entry<S>>,
}

/// How the bare before loop of a shape is compiled for its flags: [`Specialised`] for the loops
/// `hooks-core` compiles once for every operation, [`Once`] for those a service compiles for
/// each of its output types, where one copy weighs more than a test per handler.
trait Compiled {
    /// The loop on `on`, with these flags.
    ///
    /// # Safety
    /// As [`Hooks::bare_before`].
    unsafe fn run<S: Shape>(
        check: bool,
        count: bool,
        on: BareBefore<'_, '_, S>,
    ) -> Option<Result<S::Answer, HookError>>;
}

/// Four variants of [`bare_before_loop`], the flags as constants ([`Fixed`]).
struct Specialised;

impl Compiled for Specialised {
    #[inline(always)]
    unsafe fn run<S: Shape>(
        check: bool,
        count: bool,
        on: BareBefore<'_, '_, S>,
    ) -> Option<Result<S::Answer, HookError>> {
        let BareBefore {
            policy: p,
            handlers: h,
            ctx: c,
            input: i,
            blame: b,
        } = on;
        // SAFETY (all four): the caller's.
        unsafe {
            match (check, count) {
                (false, false) => bare_before_loop(Fixed::<false, false>, p, h, c, i, b),
                (true, false) => bare_before_loop(Fixed::<true, false>, p, h, c, i, b),
                (false, true) => bare_before_loop(Fixed::<false, true>, p, h, c, i, b),
                (true, true) => bare_before_loop(Fixed::<true, true>, p, h, c, i, b),
            }
        }
    }
}

/// One copy of the loop, the flags as values ([`Given`]), one handler a turn.
struct Once;

impl Compiled for Once {
    #[inline(always)]
    unsafe fn run<S: Shape>(
        check: bool,
        count: bool,
        on: BareBefore<'_, '_, S>,
    ) -> Option<Result<S::Answer, HookError>> {
        let flags = Given { check, count };
        let BareBefore {
            policy,
            handlers,
            ctx,
            input,
            blame,
        } = on;
        // Not two a turn: one copy of the handler's call.
        for h in handlers {
            // SAFETY: the caller's.
            if let Some(stop) = unsafe { bare_before_one(flags, policy, h, ctx, input, blame) } {
                return Some(stop);
            }
        }
        None
    }
}

/// The error of a bare loop read back as a shape it was not built with: it cannot happen (each
/// loop is picked by its shape's tag), and would fail the call closed if it did.
#[cold]
fn wrong_shape() -> HookError {
    HookError::internal("a bare handler loop of the wrong shape")
}

/// The index of the handler a [`Blame`] named, if any.
fn blamed<F>(handlers: &[Entry<F>], blame: &Cell<*const Entry<F>>) -> Option<usize> {
    handlers.iter().position(|h| ptr::eq(h, blame.get()))
}

/// The run, from `first` on, that holds the handler a loop of several runs blamed for a panic,
/// and the handler's index in it.
fn blamed_in<'s>(
    first: &'s BareLoop,
    blame: &Cell<*const Entry<Erased>>,
) -> Option<(&'s BareLoop, usize)> {
    let mut run = Some(first);
    while let Some(at) = run {
        if let Some(i) = at.handlers().position(blame.get()) {
            return Some((at, i));
        }
        run = at.next();
    }
    None
}

/// A loop's blame, typed for handlers of the shape `S`, so that runs of several shapes share one.
fn blame_as<S>(blame: &Cell<*const Entry<Erased>>) -> &Cell<*const Entry<S>> {
    // SAFETY: a `Cell` of a thin raw pointer has that pointer's layout whatever it points to; the
    // loops only store an entry's address in it, and it is only compared (`blamed_in`).
    unsafe { &*ptr::from_ref(blame).cast::<Cell<*const Entry<S>>>() }
}

/// What a sync before adapter that stopped the call left in `early`: an answer or a rejection,
/// with the outcome to count on its handler.
///
/// # Safety
/// `early` comes from the call's own `&mut Early<Output>` of the operation whose functions `fns`
/// are.
#[inline(always)]
unsafe fn adapter_stop(early: *mut (), fns: &OpFns) -> (Outcome, Began) {
    // SAFETY: the caller's.
    match unsafe { (fns.take_rejection)(early) } {
        Some(Ok(())) => (Outcome::Ok, Began::Answered),
        Some(Err(e)) => (Outcome::Rejected, Began::Rejected(e)),
        None => (Outcome::Rejected, Began::Rejected(verdict_missing())),
    }
}

/// A sync before handler's verdict in the dispatcher's general form.
#[inline]
fn verdict<Op: Operation>(
    f: SyncBefore<Op>,
    reg: &'static Registration,
    input: &mut Op::Input,
    ctx: &Context,
) -> Result<Flow<Op::Output>, HookError> {
    let mut early = None;
    if f(&mut BeforeArgs::new(input, ctx, &mut early), reg) {
        return Ok(Flow::Continue);
    }
    stopped(early)
}

/// The verdict of a before handler that stopped the call, from what it left in `early`.
#[inline]
fn stopped<O>(early: Early<O>) -> Result<Flow<O>, HookError> {
    match early {
        Some(Ok(output)) => Ok(Flow::Return(output)),
        Some(Err(e)) => Err(e),
        None => Err(verdict_missing()),
    }
}

/// Where a plain async loop stopped ([`Hooks::plain_async`]), at a handler whose first poll
/// comes back as a `Result<T, HookError>`.
enum PlainStop<T> {
    /// Every handler ran and let the call go on.
    Finished,
    /// The handler waits; its future is in the slot.
    Waiting,
    /// The handler finished with no go-ahead (its verdict, or its panic), not yet counted.
    Ran(Result<Result<T, HookError>, Failure>),
    /// The handler is not a plain async one: the general loop takes it.
    Other,
}

/// How far a loop of handlers within one poll got ([`Hooks::before_run`], [`Hooks::after_run`]).
enum Run<T> {
    /// All ran, or one ended the call: the loop's result.
    Done(T),
    /// The handler at this index waits; its future is in the slot.
    Waiting(usize, policy::Waiting),
    /// The handler at this index is a wildcard async handler, to be awaited by the caller.
    Wild(usize, WildAsync),
}

/// An async before handler's run that did not simply go on, in the dispatcher's general form:
/// its answer is in `early`.
#[cold]
#[inline(never)]
fn async_verdict<O>(
    ran: Result<Result<bool, HookError>, Failure>,
    early: Early<O>,
) -> Result<Result<Flow<O>, HookError>, Failure> {
    Ok(match ran? {
        Ok(true) => Ok(Flow::Continue),
        Ok(false) => stopped(early),
        Err(e) => Err(e),
    })
}

/// The error every call of a slot with a problem fails with: a clone, out of line and compiled
/// once rather than inlined into each operation's flow.
#[cold]
#[inline(never)]
fn slot_problem(problem: &HookError) -> HookError {
    problem.clone()
}

/// Only a hand-made adapter can stop a call without saying why: fail closed.
#[cold]
fn verdict_missing() -> HookError {
    HookError::internal("a hook handler stopped the call without an answer or an error")
}

/// The error of a synchronous call of the operation named `operation` whose slot has an
/// `async fn` handler.
#[cold]
#[inline(never)]
fn async_on_sync(operation: &str, reg: &Registration) -> HookError {
    HookError::internal(format!(
        "hook handler {} ({}:{}) is async and cannot run on a synchronous call of {operation}; make \
         the call async (Hooks::run, or Chain::run in a test)",
        reg.id(),
        reg.file(),
        reg.line(),
    ))
}

/// What the phases of a call with sync handlers ([`Hooks::sync_before`], [`Hooks::sync_after`],
/// [`Hooks::background_sync`]) and the general loops need of an operation's types, as functions
/// of erased pointers: small functions compiled for each operation, so that the phases, their
/// loops and their policies are compiled once. One static per operation ([`OpFns::of_op`]).
struct OpFns {
    /// The operation's name.
    name: &'static str,
    /// The operation's own asset.
    asset: &'static str,
    /// What a before adapter that stopped the call left in the `Early<Output>` at the pointer:
    /// `Some(Ok(()))` for an answer, left in place; `Some(Err(e))` for a rejection, taken out;
    /// `None` for nothing.
    take_rejection: unsafe fn(*mut ()) -> Option<Result<(), HookError>>,
    /// A sync wildcard handler on the records of the input at the pointer.
    wild_before: unsafe fn(*mut (), WildSync, &Context) -> Result<(), HookError>,
    /// Whether the `Result<Output, HookError>` at the pointer is an error.
    is_err: unsafe fn(*mut ()) -> bool,
    /// Make the result at the pointer this error.
    set_err: unsafe fn(*mut (), HookError),
    /// A sync wildcard handler on the records of the result at the pointer, when it succeeded.
    wild_after: unsafe fn(*mut (), WildSync, &Context) -> Result<(), HookError>,
    /// The output of the `Result<Output, HookError>` at the pointer, or null when it is an error.
    output: unsafe fn(*mut ()) -> *mut (),
}

impl OpFns {
    /// `Op`'s, as a static.
    #[inline(always)]
    fn of_op<Op: Operation>() -> &'static OpFns {
        const { &OpFns::of::<Op>() }
    }

    /// `Op`'s.
    const fn of<Op: Operation>() -> OpFns {
        /// # Safety
        /// `early` points at an `Early<Op::Output>`, live and not otherwise used.
        unsafe fn take_rejection<Op: Operation>(early: *mut ()) -> Option<Result<(), HookError>> {
            // SAFETY: the caller's.
            let early = unsafe { &mut *early.cast::<Early<Op::Output>>() };
            match early.take() {
                Some(Err(e)) => Some(Err(e)),
                None => None,
                answer => {
                    // SAFETY: `take` left `None` there: the answer goes back with nothing to
                    // drop in its place.
                    unsafe { ptr::write(early, answer) };
                    Some(Ok(()))
                }
            }
        }
        /// # Safety
        /// `input` points at an `Op::Input`, live and not otherwise used.
        unsafe fn wild_before<Op: Operation>(
            input: *mut (),
            f: WildSync,
            ctx: &Context,
        ) -> Result<(), HookError> {
            // SAFETY: the caller's.
            let input = unsafe { &mut *input.cast::<Op::Input>() };
            wild_sync(Op::input_records(input), f, ctx)
        }
        /// # Safety
        /// `result` points at a `Result<Op::Output, HookError>`, live.
        unsafe fn is_err<Op: Operation>(result: *mut ()) -> bool {
            // SAFETY: the caller's.
            unsafe { &*result.cast::<Result<Op::Output, HookError>>() }.is_err()
        }
        /// # Safety
        /// `result` points at a `Result<Op::Output, HookError>`, live and not otherwise used.
        unsafe fn set_err<Op: Operation>(result: *mut (), e: HookError) {
            // SAFETY: the caller's.
            *unsafe { &mut *result.cast::<Result<Op::Output, HookError>>() } = Err(e);
        }
        /// # Safety
        /// As `set_err`.
        unsafe fn wild_after<Op: Operation>(
            result: *mut (),
            f: WildSync,
            ctx: &Context,
        ) -> Result<(), HookError> {
            // SAFETY: the caller's.
            match unsafe { &mut *result.cast::<Result<Op::Output, HookError>>() } {
                Ok(out) => wild_sync(Op::output_records(out), f, ctx),
                Err(_) => Ok(()),
            }
        }
        /// # Safety
        /// `result` points at a `Result<Op::Output, HookError>`, live and not otherwise used.
        unsafe fn output<Op: Operation>(result: *mut ()) -> *mut () {
            // SAFETY: the caller's.
            match unsafe { &mut *result.cast::<Result<Op::Output, HookError>>() } {
                Ok(out) => ptr::from_mut(out).cast(),
                Err(_) => ptr::null_mut(),
            }
        }
        OpFns {
            name: Op::NAME,
            asset: Op::ASSET,
            output: output::<Op>,
            take_rejection: take_rejection::<Op>,
            wild_before: wild_before::<Op>,
            is_err: is_err::<Op>,
            set_err: set_err::<Op>,
            wild_after: wild_after::<Op>,
        }
    }
}

/// Run a sync wildcard handler on each record; the first error stops it.
fn wild_sync(records: RecordsMut<'_>, f: WildSync, ctx: &Context) -> Result<(), HookError> {
    match records {
        RecordsMut::None => Ok(()),
        RecordsMut::One(record) => f(record, ctx),
        RecordsMut::Many(list) => {
            for i in 0..list.count() {
                if let Some(record) = list.record_mut(i) {
                    f(record, ctx)?;
                }
            }
            Ok(())
        }
    }
}

/// Run an async wildcard handler on each record, one after the other; the first error stops it.
async fn wild_async(records: RecordsMut<'_>, f: WildAsync, ctx: &Context) -> Result<(), HookError> {
    match records {
        RecordsMut::None => Ok(()),
        RecordsMut::One(record) => f(record, ctx).await,
        RecordsMut::Many(list) => {
            for i in 0..list.count() {
                if let Some(record) = list.record_mut(i) {
                    f(record, ctx).await?;
                }
            }
            Ok(())
        }
    }
}
