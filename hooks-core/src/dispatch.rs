//! The dispatcher: the flow of one API call, top to bottom.
//!
//! ```text
//! 1. resolve the slot of (operation, asset)      one atomic load once cached; no handlers: run the default
//! 2. before handlers, in order                   each may change the input, answer (Flow::Return) or reject
//! 3. the default logic                           unless a before handler answered or rejected
//! 4. after handlers, in order                    see &mut Result<Output, HookError>; run after a short-circuit
//!                                                or a rejection too; an Err they return replaces the result
//! ```
//!
//! Sync handlers are called through a plain function pointer, on synchronous and asynchronous calls
//! alike; only `async fn` handlers box their future.

use std::future::Future;

use crate::context::Context;
use crate::entity::{Changes, Entity, Key, Query};
use crate::error::{HookError, TableError};
use crate::event::{Flow, Operation};
use crate::ops::data::{Create, Delete, Find, FindById, Update};
use crate::table::{AfterFn, BeforeFn, Slot, Table};

/// The hooks runtime: runs an operation's handlers around the service's default logic.
///
/// `Hooks` is cheap to clone; build it once at start-up with [`Hooks::new`], which builds and
/// validates the table of every handler linked into the binary.
#[derive(Clone, Debug)]
pub struct Hooks {
    table: TableRef,
}

#[derive(Clone, Debug)]
enum TableRef {
    Global(&'static Table),
    Owned(std::sync::Arc<Table>),
}

impl Hooks {
    /// The runtime over every handler linked into this binary. Fails with every problem of the
    /// handler set (type mismatches, duplicates), each naming the handler and its source location.
    pub fn new() -> Result<Hooks, TableError> {
        Ok(Hooks {
            table: TableRef::Global(Table::global()?),
        })
    }

    /// A runtime over an explicit table (tests use it to run a chosen set of handlers).
    pub fn with_table(table: Table) -> Hooks {
        Hooks {
            table: TableRef::Owned(std::sync::Arc::new(table)),
        }
    }

    /// The dispatch table.
    pub fn table(&self) -> &Table {
        match &self.table {
            TableRef::Global(t) => t,
            TableRef::Owned(t) => t,
        }
    }

    /// The slot of `Op`, or `None` when it has no handlers.
    #[inline]
    fn slot<Op: Operation>(&self) -> Option<&Slot<Op>> {
        match (&self.table, Op::slot_cache()) {
            (TableRef::Global(table), Some(cache)) => table.resolve_cached::<Op>(cache),
            _ => self.table().resolve::<Op>(Op::ASSET),
        }
    }

    /// Run operation `Op` on `input`: its before handlers, then `default` (unless a before handler
    /// answered or rejected), then its after handlers. Returns the result the after handlers leave.
    pub async fn run<Op, F, Fut>(
        &self,
        ctx: &mut Context,
        mut input: Op::Input,
        default: F,
    ) -> Result<Op::Output, HookError>
    where
        Op: Operation,
        F: FnOnce(Op::Input) -> Fut,
        Fut: Future<Output = Result<Op::Output, HookError>>,
    {
        let Some(slot) = self.slot::<Op>() else {
            return default(input).await;
        };
        if let Some(problem) = &slot.problem {
            return Err(problem.clone());
        }
        ctx.begin(Op::NAME, Op::ASSET);
        let mut early = None;
        for h in slot.before.iter() {
            ctx.enter(h.reg);
            let step = match h.f {
                BeforeFn::Sync(f) => f(&mut input, ctx),
                BeforeFn::Async(f) => f(&mut input, ctx).await,
            };
            if let Some(result) = settle(step) {
                early = Some(result);
                break;
            }
        }
        ctx.leave();
        let mut result = match early {
            Some(result) => result,
            None => default(input).await,
        };
        for h in slot.after.iter() {
            ctx.enter(h.reg);
            let outcome = match h.f {
                AfterFn::Sync(f) => f(&mut result, ctx),
                AfterFn::Async(f) => f(&mut result, ctx).await,
            };
            if let Err(e) = outcome {
                result = Err(e);
            }
        }
        ctx.leave();
        result
    }

    /// [`Hooks::run`] for synchronous code. A slot with an `async fn` handler cannot run here: the
    /// call fails closed with an error naming the handler, before anything runs.
    pub fn run_sync<Op, F>(
        &self,
        ctx: &mut Context,
        mut input: Op::Input,
        default: F,
    ) -> Result<Op::Output, HookError>
    where
        Op: Operation,
        F: FnOnce(Op::Input) -> Result<Op::Output, HookError>,
    {
        let Some(slot) = self.slot::<Op>() else {
            return default(input);
        };
        if let Some(problem) = &slot.problem {
            return Err(problem.clone());
        }
        if let Some(reg) = slot.first_async {
            return Err(HookError::internal(format!(
                "hook handler {} ({}:{}) is async and cannot run on a synchronous call of {}; \
                 use Hooks::run",
                reg.id(),
                reg.file(),
                reg.line(),
                Op::NAME
            )));
        }
        ctx.begin(Op::NAME, Op::ASSET);
        let mut early = None;
        for h in slot.before.iter() {
            ctx.enter(h.reg);
            let BeforeFn::Sync(f) = h.f else {
                unreachable!("checked: no async handler")
            };
            if let Some(result) = settle(f(&mut input, ctx)) {
                early = Some(result);
                break;
            }
        }
        ctx.leave();
        let mut result = match early {
            Some(result) => result,
            None => default(input),
        };
        for h in slot.after.iter() {
            ctx.enter(h.reg);
            let AfterFn::Sync(f) = h.f else {
                unreachable!("checked: no async handler")
            };
            if let Err(e) = f(&mut result, ctx) {
                result = Err(e);
            }
        }
        ctx.leave();
        result
    }

    /// Create `record` in its table through the hooks ([`Create`]).
    pub async fn create<E, F, Fut>(
        &self,
        ctx: &mut Context,
        record: E,
        default: F,
    ) -> Result<E, HookError>
    where
        E: Entity,
        F: FnOnce(E) -> Fut,
        Fut: Future<Output = Result<E, HookError>>,
    {
        self.run::<Create<E>, F, Fut>(ctx, record, default).await
    }

    /// Update a record through the hooks ([`Update`]).
    pub async fn update<E, F, Fut>(
        &self,
        ctx: &mut Context,
        changes: Changes<E>,
        default: F,
    ) -> Result<E, HookError>
    where
        E: Entity,
        F: FnOnce(Changes<E>) -> Fut,
        Fut: Future<Output = Result<E, HookError>>,
    {
        self.run::<Update<E>, F, Fut>(ctx, changes, default).await
    }

    /// Delete a record through the hooks ([`Delete`]).
    pub async fn delete<E, F, Fut>(
        &self,
        ctx: &mut Context,
        key: Key<E>,
        default: F,
    ) -> Result<Key<E>, HookError>
    where
        E: Entity,
        F: FnOnce(Key<E>) -> Fut,
        Fut: Future<Output = Result<Key<E>, HookError>>,
    {
        self.run::<Delete<E>, F, Fut>(ctx, key, default).await
    }

    /// Find records through the hooks ([`Find`]).
    pub async fn find<E, F, Fut>(
        &self,
        ctx: &mut Context,
        query: Query<E>,
        default: F,
    ) -> Result<Vec<E>, HookError>
    where
        E: Entity,
        F: FnOnce(Query<E>) -> Fut,
        Fut: Future<Output = Result<Vec<E>, HookError>>,
    {
        self.run::<Find<E>, F, Fut>(ctx, query, default).await
    }

    /// Find one record by id through the hooks ([`FindById`]).
    pub async fn find_by_id<E, F, Fut>(
        &self,
        ctx: &mut Context,
        key: Key<E>,
        default: F,
    ) -> Result<E, HookError>
    where
        E: Entity,
        F: FnOnce(Key<E>) -> Fut,
        Fut: Future<Output = Result<E, HookError>>,
    {
        self.run::<FindById<E>, F, Fut>(ctx, key, default).await
    }
}

/// A before handler's step: `None` to go on, or the call's result when it answered or rejected.
#[inline]
fn settle<O>(step: Result<Flow<O>, HookError>) -> Option<Result<O, HookError>> {
    match step {
        Ok(Flow::Continue) => None,
        Ok(Flow::Return(output)) => Some(Ok(output)),
        Err(e) => Some(Err(e)),
    }
}
