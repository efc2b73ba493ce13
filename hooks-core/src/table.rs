//! The dispatch table: every registration, validated, sorted and indexed once, and the per-operation
//! slots that calls resolve to.
//!
//! A [`Table`] is built once from the registrations linked into the binary ([`Table::global`]) or
//! from an explicit list ([`Table::from_registrations`], for tests). Building validates the whole
//! set and reports every problem with the offending handlers named; nothing is dropped silently.
//!
//! A call resolves its `(operation, asset)` to a slot: the before and after handlers in their total
//! order (priority, then id), with each adapter checked against the call's operation type. A slot is
//! resolved once per operation type and cached; for entity types the cache is a static next to the
//! type, so the hot path is one atomic load.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::marker::PhantomData;
use std::ops::Range;
use std::ptr;
use std::sync::atomic::{AtomicPtr, Ordering};
use std::sync::{Arc, OnceLock, PoisonError, RwLock};

use crate::context::Context;
use crate::error::{HookError, TableError, TableProblem};
use crate::event::{Flow, Operation, Phase};
use crate::registration::{
    AfterRun, AnswerRun, Answers, AsyncAfter, AsyncBefore, BackgroundAfter, Bare, BareCtx,
    BareFlow, BareFlowCtx, BareUnit, BareUnitCtx, Kind, Mode, OwnAfterResult, OwnResult,
    Registration, SyncAfter, SyncBefore, WildAsync, WildSync, registered,
};

/// A static cache of one operation type's slot in the global table: unresolved, empty, or a
/// pointer to the resolved slot.
#[doc(hidden)]
#[derive(Debug)]
pub struct SlotCache {
    ptr: AtomicPtr<()>,
}

/// The cached value of an operation with no handlers: address 1, which no `Slot` (aligned to 8)
/// can have. A constant, so the check is a compare with an immediate, not with a loaded address.
fn empty_marker() -> *mut () {
    std::ptr::without_provenance_mut(1)
}

impl SlotCache {
    /// An unresolved cache, for a `static`.
    pub const fn new() -> Self {
        SlotCache {
            ptr: AtomicPtr::new(std::ptr::null_mut()),
        }
    }
}

impl Default for SlotCache {
    fn default() -> Self {
        Self::new()
    }
}

/// A before handler's adapter: `S` and `A` are the operation's sync and async adapter types
/// ([`TypedBefore`]), or [`Erased`] in a slot as it is stored ([`ErasedSlot`]). `repr(C, u8)`:
/// the layout is the same for every `S` and `A` that are fn pointers, so a slot built once, with
/// the types erased, is read back typed.
#[repr(C, u8)]
pub(crate) enum BeforeFn<S, A> {
    Sync(S),
    Async(A),
    /// A wildcard data handler, run on each record of the input.
    WildSync(WildSync),
    WildAsync(WildAsync),
}

/// A before handler's adapter, typed for the call's operation.
pub(crate) type TypedBefore<Op> = BeforeFn<SyncBefore<Op>, AsyncBefore<Op>>;

/// An after handler's adapter, on the terms of [`BeforeFn`].
#[repr(C, u8)]
pub(crate) enum AfterFn<S, A> {
    Sync(S),
    Async(A),
    /// A wildcard data handler, run on each record of a successful output.
    WildSync(WildSync),
    WildAsync(WildAsync),
}

/// An after handler's adapter, typed for the call's operation.
pub(crate) type TypedAfter<Op> = AfterFn<SyncAfter<Op>, AsyncAfter<Op>>;

/// A handler in a slot: its registration and its adapter. `repr(C)`, so that entries whose
/// adapters are fn pointers of different types have one layout (see [`Slot`]).
#[repr(C)]
pub(crate) struct Entry<F> {
    pub(crate) reg: &'static Registration,
    pub(crate) f: F,
}

/// An adapter as a slot stores it: a fn pointer whose type the slot checked, by `TypeId`, when it
/// was built, and which [`Slot`] gives back typed. Never called as this type.
pub(crate) type Erased = fn();

/// A [`Bare`] handler with its payload type erased, so that one loop, compiled once, runs the bare
/// handlers of every operation. `fn(*mut ())` and `fn(&mut T)` are ABI-compatible for every sized
/// `T` (pointers with the same metadata; see "ABI compatibility" in the docs of the `fn`
/// primitive), so a call through this type is a call of the handler as written, as long as the
/// pointer comes from a `&mut T` of the type the slot checked the handler against.
pub(crate) type ErasedBare = fn(*mut ()) -> Result<(), HookError>;

/// A [`SyncBefore`] adapter with its operation's types erased, on the terms of [`ErasedBare`]:
/// `&mut BeforeArgs<Input, Output>` becomes a pointer to an [`ErasedBeforeArgs`], ABI-compatible
/// with it, so one loop runs the adapters of every operation as long as the pointers in it come
/// from the call's own input and early answer. The registration is the entry's own, whose
/// handler a generic adapter calls.
pub(crate) type ErasedSyncBefore = fn(*mut ErasedBeforeArgs, &'static Registration) -> bool;

/// [`BeforeArgs`] with its operation's types erased: the same three thin pointers, in the same
/// order, under the same `repr(C)`, so that a `&mut BeforeArgs<Input, Output>` may point at one
/// built from the call's own `&mut Input`, context and `&mut Early<Output>`.
///
/// [`BeforeArgs`]: crate::registration::BeforeArgs
#[repr(C)]
pub(crate) struct ErasedBeforeArgs {
    pub(crate) input: *mut (),
    /// Mutable for the loop, which tells the context which handler runs between the adapters'
    /// calls; the adapters read it as `&Context`.
    pub(crate) ctx: *mut Context,
    pub(crate) early: *mut (),
}

/// A [`SyncAfter`] adapter with its operation's types erased: `&mut Result<Output, HookError>`
/// becomes a pointer, on the terms of [`ErasedBare`]. (An after adapter needs nothing once its
/// handler returns, so it takes its arguments as they are: one pointer to the result and the
/// context would save the loop a move and cost the adapter a load.) The registration is the
/// entry's own, as for [`ErasedSyncBefore`].
pub(crate) type ErasedSyncAfter =
    fn(*mut (), &Context, &'static Registration) -> Result<(), HookError>;

/// An [`AsyncBefore`] adapter with its operation's types erased, on the terms of [`ErasedBare`]:
/// `&mut Input` and `&mut Early<Output>` become pointers, ABI-compatible with them, which must
/// come from the call's own input and early answer; the future it leaves in the slot borrows
/// what they point to.
pub(crate) type ErasedAsyncBefore = for<'a, 's, 'c, 'w> fn(
    *mut (),
    &'a Context,
    *mut (),
    std::pin::Pin<&'s mut crate::future::FutureSlot<'a, Result<bool, HookError>>>,
    &'c mut std::task::Context<'w>,
) -> crate::registration::Polled;

/// An [`AsyncAfter`] adapter with its operation's types erased, as [`ErasedAsyncBefore`].
pub(crate) type ErasedAsyncAfter = for<'a, 's, 'c, 'w> fn(
    *mut (),
    &'a Context,
    std::pin::Pin<&'s mut crate::future::FutureSlot<'a, Result<(), HookError>>>,
    &'c mut std::task::Context<'w>,
) -> crate::registration::Polled;

/// A [`BackgroundAfter`] adapter with its operation's types erased, on the terms of
/// [`ErasedBare`]: `&Result<Output, HookError>` becomes a pointer, which must come from the call's
/// own result.
pub(crate) type ErasedBackground =
    for<'a> fn(
        *const (),
        &'a Context,
    ) -> Option<crate::registration::BoxFuture<'static, Result<(), HookError>>>;

/// A [`BareCtx`] handler with its payload type erased, on the same terms as [`ErasedBare`].
pub(crate) type ErasedBareCtx = fn(*mut (), &Context) -> Result<(), HookError>;

/// A [`BareUnit`] handler with its payload type erased, on the same terms as [`ErasedBare`].
pub(crate) type ErasedBareUnit = fn(*mut ());

/// A [`BareUnitCtx`] handler with its payload type erased, on the same terms as [`ErasedBare`].
pub(crate) type ErasedBareUnitCtx = fn(*mut (), &Context);

/// A [`BareFlow`] handler with its payload type erased, on the same terms as [`ErasedBare`]; its
/// output type `O` stays, as the layout of its result depends on it.
pub(crate) type ErasedBareFlow<O> = fn(*mut ()) -> Result<Flow<O>, HookError>;

/// A [`BareFlowCtx`] handler with its payload type erased, on the same terms as [`ErasedBare`].
pub(crate) type ErasedBareFlowCtx<O> = fn(*mut (), &Context) -> Result<Flow<O>, HookError>;

/// The shape every handler of a [`BareLoop`] has, which says the type its fn pointers are read
/// back as.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum BareShape {
    /// [`Bare`], read back as [`ErasedBare`].
    Plain,
    /// [`BareCtx`], read back as [`ErasedBareCtx`].
    Ctx,
    /// [`BareUnit`], read back as [`ErasedBareUnit`].
    Unit,
    /// [`BareUnitCtx`], read back as [`ErasedBareUnitCtx`].
    UnitCtx,
    /// [`BareFlow`] (before handlers only), read back as [`ErasedBareFlow`] of the operation's
    /// output.
    Flow,
    /// [`BareFlowCtx`] (before handlers only), read back as [`ErasedBareFlowCtx`].
    FlowCtx,
    /// A before handler with a result of its own ([`Owns`](crate::registration::Owns)), read
    /// back as [`OwnFn`] of the operation's output and of that result; every handler of the loop
    /// has the same result type.
    Own,
    /// [`BareShape::Own`] with the context, read back as [`OwnCtxFn`].
    OwnCtx,
    /// An after handler with a result of its own ([`OwnAfterResult`]), read back as
    /// [`OwnAfterFn`] of that result; every handler of the loop has the same result type.
    OwnAfter,
    /// [`BareShape::OwnAfter`] with the context, read back as [`OwnAfterCtxFn`].
    OwnAfterCtx,
    /// Not as themselves: each handler through its adapter, as the fast loop of adapters calls
    /// it (an [`ErasedSyncBefore`] before, an [`ErasedSyncAfter`] after), in a slot whose other
    /// runs are called as themselves.
    Adapted,
}

impl BareShape {
    /// Whether a handler of this shape may answer the call: its result holds the operation's
    /// output, so its loop is compiled for that type.
    #[inline]
    pub(crate) fn answers(self) -> bool {
        matches!(
            self,
            BareShape::Flow | BareShape::FlowCtx | BareShape::Own | BareShape::OwnCtx
        )
    }

    /// Whether the handlers of this shape come with the loop that runs them, compiled for their
    /// types (the shapes that answer, and the after handlers with a result of their own).
    #[inline]
    fn brings_loop(self) -> bool {
        self.answers() || matches!(self, BareShape::OwnAfter | BareShape::OwnAfterCtx)
    }
}

/// A bare handler shape, type-erased ([`ErasedBare`], [`ErasedBareCtx`], [`ErasedBareUnit`],
/// [`ErasedBareUnitCtx`], [`ErasedBareFlow`], [`ErasedBareFlowCtx`]): the shape a [`BareLoop`]'s
/// handlers are read back as, and how the fast loops call it.
pub(crate) trait Shape: Copy {
    /// The shape whose handlers have this type.
    const SHAPE: BareShape;

    /// What a handler of the shape gives when it does not fail: `()`, or a [`Flow`].
    type Out;

    /// What a handler of the shape may answer the call with: the output, or
    /// [`Infallible`](std::convert::Infallible) for the shapes that cannot answer.
    type Answer;

    /// The answer in what the handler gave, if it gave one.
    fn answer(out: Self::Out) -> Option<Self::Answer>;

    /// Call the handler on `payload`, as `reg`'s handler of the call `ctx`.
    ///
    /// # Safety
    /// `payload` comes from a `&mut T` of the type the handler was checked against, live and not
    /// otherwise used for the call's duration.
    unsafe fn call(
        self,
        payload: *mut (),
        ctx: &mut Context,
        reg: &'static Registration,
    ) -> Result<Self::Out, HookError>;
}

/// The items of [`Shape`] for a shape whose handlers give `()` and cannot answer the call.
macro_rules! cannot_answer {
    () => {
        type Out = ();
        type Answer = std::convert::Infallible;

        #[inline(always)]
        fn answer((): ()) -> Option<std::convert::Infallible> {
            None
        }
    };
}

/// The items of [`Shape`] for a shape whose handlers give a `Flow<O>`: `Flow::Return` answers.
macro_rules! answers_with_output {
    () => {
        type Out = Flow<O>;
        type Answer = O;

        #[inline(always)]
        fn answer(flow: Flow<O>) -> Option<O> {
            match flow {
                Flow::Continue => None,
                Flow::Return(output) => Some(output),
            }
        }
    };
}

impl Shape for ErasedBare {
    const SHAPE: BareShape = BareShape::Plain;
    cannot_answer!();

    #[inline(always)]
    unsafe fn call(
        self,
        payload: *mut (),
        _: &mut Context,
        _: &'static Registration,
    ) -> Result<(), HookError> {
        self(payload)
    }
}

impl Shape for ErasedBareCtx {
    const SHAPE: BareShape = BareShape::Ctx;
    cannot_answer!();

    /// The context names the handler while it runs (its id, params and phase).
    #[inline(always)]
    unsafe fn call(
        self,
        payload: *mut (),
        ctx: &mut Context,
        reg: &'static Registration,
    ) -> Result<(), HookError> {
        ctx.enter(reg);
        self(payload, ctx)
    }
}

impl Shape for ErasedBareUnit {
    const SHAPE: BareShape = BareShape::Unit;
    cannot_answer!();

    /// A handler that returns nothing lets the call go on: no result to test.
    #[inline(always)]
    unsafe fn call(
        self,
        payload: *mut (),
        _: &mut Context,
        _: &'static Registration,
    ) -> Result<(), HookError> {
        self(payload);
        Ok(())
    }
}

impl Shape for ErasedBareUnitCtx {
    const SHAPE: BareShape = BareShape::UnitCtx;
    cannot_answer!();

    /// As [`ErasedBareCtx`], with no result to test.
    #[inline(always)]
    unsafe fn call(
        self,
        payload: *mut (),
        ctx: &mut Context,
        reg: &'static Registration,
    ) -> Result<(), HookError> {
        ctx.enter(reg);
        self(payload, ctx);
        Ok(())
    }
}

impl<O> Shape for ErasedBareFlow<O> {
    const SHAPE: BareShape = BareShape::Flow;
    answers_with_output!();

    #[inline(always)]
    unsafe fn call(
        self,
        payload: *mut (),
        _: &mut Context,
        _: &'static Registration,
    ) -> Result<Flow<O>, HookError> {
        self(payload)
    }
}

impl<O> Shape for ErasedBareFlowCtx<O> {
    const SHAPE: BareShape = BareShape::FlowCtx;
    answers_with_output!();

    /// As [`ErasedBareCtx`]: the context names the handler while it runs.
    #[inline(always)]
    unsafe fn call(
        self,
        payload: *mut (),
        ctx: &mut Context,
        reg: &'static Registration,
    ) -> Result<Flow<O>, HookError> {
        ctx.enter(reg);
        self(payload, ctx)
    }
}

/// A before handler with a result of its own ([`Owns`](crate::registration::Owns)), read
/// through `V`, its payload type erased on the terms of [`ErasedBare`], for a call whose output is
/// `O`: its loop is compiled for `O` and `V`, in the service that has such handlers, and named by
/// their attribute (`run_own`).
#[repr(transparent)]
pub(crate) struct OwnFn<O, V: OwnResult<O>>(fn(*mut ()) -> V::Result, PhantomData<fn() -> (O, V)>);

/// [`OwnFn`] with the context, as [`ErasedBareCtx`] is [`ErasedBare`] with it.
#[repr(transparent)]
pub(crate) struct OwnCtxFn<O, V: OwnResult<O>>(
    fn(*mut (), &Context) -> V::Result,
    PhantomData<fn() -> (O, V)>,
);

impl<O, V: OwnResult<O>> Clone for OwnFn<O, V> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<O, V: OwnResult<O>> Copy for OwnFn<O, V> {}

impl<O, V: OwnResult<O>> Clone for OwnCtxFn<O, V> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<O, V: OwnResult<O>> Copy for OwnCtxFn<O, V> {}

impl<O, V: OwnResult<O>> Shape for OwnFn<O, V> {
    const SHAPE: BareShape = BareShape::Own;
    answers_with_output!();

    /// The handler's own result, as a verdict (its error converted out of line).
    #[inline(always)]
    unsafe fn call(
        self,
        payload: *mut (),
        _: &mut Context,
        _: &'static Registration,
    ) -> Result<Flow<O>, HookError> {
        V::verdict((self.0)(payload))
    }
}

impl<O, V: OwnResult<O>> Shape for OwnCtxFn<O, V> {
    const SHAPE: BareShape = BareShape::OwnCtx;
    answers_with_output!();

    /// As [`OwnFn`]'s, the context naming the handler while it runs.
    #[inline(always)]
    unsafe fn call(
        self,
        payload: *mut (),
        ctx: &mut Context,
        reg: &'static Registration,
    ) -> Result<Flow<O>, HookError> {
        ctx.enter(reg);
        V::verdict((self.0)(payload, ctx))
    }
}

/// An after handler with a result of its own, read through `V` ([`OwnAfterResult`]), its payload
/// type erased on the terms of [`ErasedBare`]: its loop is compiled for `V`, in the service that
/// has such handlers, and named by their attribute (`run_own_after`).
#[repr(transparent)]
pub(crate) struct OwnAfterFn<V: OwnAfterResult>(fn(*mut ()) -> V::Result, PhantomData<fn() -> V>);

/// [`OwnAfterFn`] with the context.
#[repr(transparent)]
pub(crate) struct OwnAfterCtxFn<V: OwnAfterResult>(
    fn(*mut (), &Context) -> V::Result,
    PhantomData<fn() -> V>,
);

impl<V: OwnAfterResult> Clone for OwnAfterFn<V> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<V: OwnAfterResult> Copy for OwnAfterFn<V> {}

impl<V: OwnAfterResult> Clone for OwnAfterCtxFn<V> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<V: OwnAfterResult> Copy for OwnAfterCtxFn<V> {}

impl<V: OwnAfterResult> Shape for OwnAfterFn<V> {
    const SHAPE: BareShape = BareShape::OwnAfter;
    cannot_answer!();

    /// The handler's own result, as a verdict (its error converted out of line).
    #[inline(always)]
    unsafe fn call(
        self,
        payload: *mut (),
        _: &mut Context,
        _: &'static Registration,
    ) -> Result<(), HookError> {
        V::verdict((self.0)(payload))
    }
}

impl<V: OwnAfterResult> Shape for OwnAfterCtxFn<V> {
    const SHAPE: BareShape = BareShape::OwnAfterCtx;
    cannot_answer!();

    /// As [`OwnAfterFn`]'s, the context naming the handler while it runs.
    #[inline(always)]
    unsafe fn call(
        self,
        payload: *mut (),
        ctx: &mut Context,
        reg: &'static Registration,
    ) -> Result<(), HookError> {
        ctx.enter(reg);
        V::verdict((self.0)(payload, ctx))
    }
}

/// A run of a slot's handlers that have one bare shape (and, for a result of their own, one
/// result type), as themselves, type-erased: the handlers one fast loop calls, followed by the
/// slot's next run, if any, of another shape (see [`bare`]).
pub(crate) struct BareLoop {
    shape: BareShape,
    /// Each one's fn pointer, of the type `shape` says, stored as [`Erased`].
    handlers: Box<[Entry<Erased>]>,
    /// For the shapes that answer, the loop their attribute handed over with them, an
    /// [`AnswerRun`] of the slot's output type, stored as [`Erased`].
    run: Option<Erased>,
    /// The slot's handlers after these, when the next one has another shape or another result:
    /// a run of their own, which the dispatcher enters when this one lets the call go on.
    next: Option<Box<BareLoop>>,
}

impl BareLoop {
    /// For handlers that may answer the call ([`BareShape::answers`]), the loop that runs them:
    /// the [`AnswerRun`] of the output of the operation whose slot holds this loop, which the slot
    /// checked when it was built (its `Answers<_, O>` by `TypeId`, or the types of the handlers'
    /// own result). Ask it only of a slot's before loop, and call it only with that operation's
    /// input and `Early<Output>`.
    #[inline]
    pub(crate) fn answer_run(&self) -> Option<AnswerRun> {
        // SAFETY: `run` came in a `Direct` as an `AnswerRun` (`Direct::answers_mut`,
        // `Direct::own_mut` and the like): a before slot's loop (`bare` with `own`'s flag
        // false) takes a loop only for the shapes that answer, and those bring an `AnswerRun`.
        // Fn pointer types share their size and validity. (Not tested here on every call: the
        // dispatcher asks only a before slot's loop.)
        self.run
            .map(|run| unsafe { std::mem::transmute::<Erased, AnswerRun>(run) })
    }

    /// For after handlers with a result of their own ([`BareShape::OwnAfter`] and
    /// [`BareShape::OwnAfterCtx`]), the loop that runs them, which their attribute handed over.
    /// Ask it only of a slot's after loop.
    #[inline]
    pub(crate) fn after_run(&self) -> Option<AfterRun> {
        // SAFETY: `run` came in a `Direct` as an `AfterRun` (`Direct::own_after_mut` and the
        // like): a slot's after loop (`bare` with `own`'s flag true) takes a loop only for those
        // shapes, whose handlers' `OwnTypes` say their loop is an after loop.
        self.run
            .map(|run| unsafe { std::mem::transmute::<Erased, AfterRun>(run) })
    }

    /// The run of handlers after this one's, if any.
    #[inline]
    pub(crate) fn next(&self) -> Option<&BareLoop> {
        self.next.as_deref()
    }

    /// The handlers, borrowed.
    #[inline]
    pub(crate) fn handlers(&self) -> BareRun<'_> {
        BareRun {
            shape: self.shape,
            handlers: &self.handlers,
        }
    }
}

/// Some of a [`BareLoop`]'s handlers, in order.
#[derive(Clone, Copy)]
pub(crate) struct BareRun<'a> {
    shape: BareShape,
    handlers: &'a [Entry<Erased>],
}

impl<'a> BareRun<'a> {
    /// The shape of every handler.
    #[inline]
    pub(crate) fn shape(self) -> BareShape {
        self.shape
    }

    /// The handlers as the type their shape is read back as; `None` when `S` is not that type.
    ///
    /// For the shapes that answer ([`BareShape::answers`]), `S` names the output type too, which
    /// the tag does not check: read them only from the [`Slot`] of an operation with that
    /// output, whose types the loop was built against.
    #[inline]
    pub(crate) fn typed<S: Shape>(self) -> Option<&'a [Entry<S>]> {
        (S::SHAPE == self.shape).then(|| {
            let (data, len) = (self.handlers.as_ptr(), self.handlers.len());
            // SAFETY: each entry's fn pointer was read as `S`'s shape's type when the loop was
            // built (`bare`), and `Entry` is `repr(C)` with a fn pointer as `f`: `Entry<Erased>`
            // and `Entry<S>` have one layout. The slice is borrowed for `'a` as it was.
            unsafe { std::slice::from_raw_parts(data.cast::<Entry<S>>(), len) }
        })
    }

    /// The handlers as their adapters, of the type `F` the fast loop of adapters calls them as
    /// ([`ErasedSyncBefore`] or [`ErasedSyncAfter`]); `None` when they are not a run of adapters.
    ///
    /// # Safety
    /// `F` is the type of the adapters of the slot's phase: [`ErasedSyncBefore`] in a before
    /// loop, [`ErasedSyncAfter`] in an after loop.
    #[inline]
    pub(crate) unsafe fn adapters<F: Copy>(self) -> Option<&'a [Entry<F>]> {
        (self.shape == BareShape::Adapted).then(|| {
            // SAFETY: an `Adapted` run holds the fast loop's entries (`bare`), adapters of the
            // phase checked by `TypeId` when the slot was built, stored as `Erased`; the caller
            // names their type. `Entry` is `repr(C)` with a fn pointer as `f`.
            unsafe { typed_entries(self.handlers) }
        })
    }

    /// The registration of the handler at `at`.
    pub(crate) fn reg(self, at: usize) -> Option<&'static Registration> {
        self.handlers.get(at).map(|e| e.reg)
    }

    /// The index of the handler whose entry is at `entry`, if it is one of these.
    pub(crate) fn position(self, entry: *const Entry<Erased>) -> Option<usize> {
        self.handlers.iter().position(|h| ptr::eq(h, entry))
    }

    /// The handlers after the one at `at`.
    pub(crate) fn after(self, at: usize) -> BareRun<'a> {
        BareRun {
            shape: self.shape,
            handlers: self.handlers.get(at + 1..).unwrap_or_default(),
        }
    }
}

/// The handlers of one `(operation, asset)` in their run order, with the operation's types
/// erased: built once for every operation by code that is not generic ([`Table::resolve`]), and
/// read back typed through [`Slot`].
pub(crate) struct ErasedSlot {
    /// The operation the slot was built for: a slot read through a static cache is checked to be
    /// the caller's ([`Table::resolve_cached`]).
    op: TypeId,
    before: Box<[Entry<BeforeFn<Erased, Erased>>]>,
    after: Box<[Entry<AfterFn<Erased, Erased>>]>,
    background: Box<[Entry<Erased>]>,
    /// The before handlers again, when all of them are plain sync handlers with no timeout of
    /// their own: the dispatcher's fast loop runs them with no per-handler policy branch.
    fast_before: Option<Box<[Entry<Erased>]>>,
    /// The after handlers again, on the same terms.
    fast_after: Option<Box<[Entry<Erased>]>>,
    /// The before handlers once more, as the handlers themselves, in runs of one shape, when
    /// every one of them has a bare shape for the input (see [`bare`]): the fast loops then call
    /// each with no adapter.
    pub(crate) bare_before: Option<BareLoop>,
    /// The after handlers on the same terms, for the output.
    pub(crate) bare_after: Option<BareLoop>,
    /// Whether a handler of the slot runs only on calls from clients (so each needs a check).
    pub(crate) client_only: bool,
    /// Whether a handler of the slot takes the context, and so may ask it which handler runs:
    /// the loops of adapters tell it, one store per handler, only then.
    pub(crate) context: bool,
    /// Whether an after handler of the slot takes the whole result: it runs on an error too, and
    /// may change whether the result is one, so the fast after loop stops after it. The loop
    /// tests each handler for that only then.
    pub(crate) after_whole: bool,
    /// The first async handler, if any: a synchronous call cannot run it.
    pub(crate) first_async: Option<&'static Registration>,
    /// Whether a synchronous call of the slot meets a rare case before its handlers run: an
    /// async handler ([`ErasedSlot::first_async`]), or background handlers, whose places in the
    /// queue it takes first. One test on the common path.
    pub(crate) sync_rare: bool,
    /// Whether a handler of the slot has a timeout of its own: its async handlers' first polls
    /// are then timed (`Policy::poll_first`).
    pub(crate) timed: bool,
    /// Set when a handler does not fit the call's types: every call fails closed with it.
    pub(crate) problem: Option<HookError>,
}

/// An [`ErasedSlot`] of the operation `Op`, whose adapters it hands out typed.
///
/// Only [`Table::resolve`] (and its static cache) makes one, from a slot built against `Op`'s
/// types: each adapter's `TypeId` was checked to be the type it is read back as.
#[repr(transparent)]
pub(crate) struct Slot<Op: Operation> {
    erased: ErasedSlot,
    op: PhantomData<fn() -> Op>,
}

impl<Op: Operation> std::ops::Deref for Slot<Op> {
    type Target = ErasedSlot;

    #[inline]
    fn deref(&self) -> &ErasedSlot {
        &self.erased
    }
}

impl<Op: Operation> Slot<Op> {
    /// # Safety
    /// `slot` was built against `Op`'s types ([`SlotTypes::of`]).
    #[inline]
    unsafe fn typed(slot: &ErasedSlot) -> &Slot<Op> {
        // SAFETY: `Slot<Op>` is a `repr(transparent)` `ErasedSlot`.
        unsafe { &*ptr::from_ref(slot).cast::<Slot<Op>>() }
    }

    /// The before handlers.
    #[inline]
    pub(crate) fn before(&self) -> &[Entry<TypedBefore<Op>>] {
        // SAFETY: the slot was built against `Op` (`Slot::typed`), so each `Sync` and `Async`
        // adapter is a `SyncBefore<Op>` and an `AsyncBefore<Op>`.
        unsafe { typed_entries(&self.erased.before) }
    }

    /// The after handlers.
    #[inline]
    pub(crate) fn after(&self) -> &[Entry<TypedAfter<Op>>] {
        // SAFETY: as in `before`, for `SyncAfter<Op>` and `AsyncAfter<Op>`.
        unsafe { typed_entries(&self.erased.after) }
    }

    /// The background after handlers.
    #[inline]
    pub(crate) fn background(&self) -> &[Entry<BackgroundAfter<Op>>] {
        // SAFETY: as in `before`, for `BackgroundAfter<Op>`.
        unsafe { typed_entries(&self.erased.background) }
    }
}

impl ErasedSlot {
    /// The before handlers as plain sync adapters, when all of them are, with the operation's
    /// types erased: one loop, compiled once, runs them for every operation. Each is a
    /// `SyncBefore` of the slot's operation: call it only with pointers from the call's own
    /// `&mut Input` and `&mut Early<Output>` (see [`ErasedSyncBefore`]).
    #[inline]
    pub(crate) fn fast_before(&self) -> Option<&[Entry<ErasedSyncBefore>]> {
        // SAFETY: `Erased` and `ErasedSyncBefore` are fn pointer types, so the entries have one
        // layout; the adapters are called only as `ErasedSyncBefore` says.
        let erased = |h| unsafe { typed_entries(h) };
        self.fast_before.as_deref().map(erased)
    }

    /// The before handlers, every adapter with its operation's types erased (as
    /// [`ErasedSyncBefore`] and [`ErasedAsyncBefore`]): call each only with pointers from the
    /// call's own `&mut Input` and `&mut Early<Output>`.
    #[inline]
    pub(crate) fn erased_before(&self) -> &[Entry<BeforeFn<ErasedSyncBefore, ErasedAsyncBefore>>] {
        // SAFETY: as in `fast_before`, for both kinds of adapter.
        unsafe { typed_entries(&self.before) }
    }

    /// The after handlers, every adapter with its operation's types erased (as
    /// [`ErasedSyncAfter`] and [`ErasedAsyncAfter`]): call each only with a pointer from the
    /// call's own `&mut Result<Output, HookError>`.
    #[inline]
    pub(crate) fn erased_after(&self) -> &[Entry<AfterFn<ErasedSyncAfter, ErasedAsyncAfter>>] {
        // SAFETY: as in `fast_before`, for both kinds of adapter.
        unsafe { typed_entries(&self.after) }
    }

    /// The background after handlers, every adapter with its operation's types erased (as
    /// [`ErasedBackground`]): call each only with a pointer from the call's own
    /// `&Result<Output, HookError>`.
    #[inline]
    pub(crate) fn erased_background(&self) -> &[Entry<ErasedBackground>] {
        // SAFETY: as in `fast_before`.
        unsafe { typed_entries(&self.background) }
    }

    /// Whether nothing runs after the default: no after handler and no background one. The
    /// default's result is then the call's as it comes.
    #[inline]
    pub(crate) fn ends_at_default(&self) -> bool {
        self.after.is_empty() && self.background.is_empty()
    }

    /// The after handlers as plain sync adapters, on the terms of [`ErasedSlot::fast_before`]:
    /// call each only with a pointer from the call's own `&mut Result<Output, HookError>`.
    #[inline]
    pub(crate) fn fast_after(&self) -> Option<&[Entry<ErasedSyncAfter>]> {
        // SAFETY: as in `fast_before`.
        let erased = |h| unsafe { typed_entries(h) };
        self.fast_after.as_deref().map(erased)
    }
}

/// Entries with erased adapters, as the types they were checked to be.
///
/// # Safety
/// Every fn pointer that `E` erases is of the type that `T` holds in its place. `E` and `T` are
/// `repr(C)` shapes whose other fields are the same (an [`Entry`] of [`Erased`] and of a fn
/// pointer, or of a [`BeforeFn`] or [`AfterFn`] of each), so they have one layout: every fn
/// pointer type has the size, alignment and validity of a pointer.
#[inline]
unsafe fn typed_entries<E, T>(entries: &[Entry<E>]) -> &[Entry<T>] {
    debug_assert_eq!(
        std::mem::size_of::<Entry<E>>(),
        std::mem::size_of::<Entry<T>>()
    );
    // SAFETY: the caller's; a slice cast keeps the length, and the element sizes are equal.
    unsafe { &*(ptr::from_ref(entries) as *const [Entry<T>]) }
}

/// The types that the handlers of an operation's slot must have: `TypeId`s of its adapter types
/// and of its bare shapes, with its names. Made by a generic function ([`SlotTypes::of`]), read by
/// the slot's builder, which is not generic and so is compiled once.
pub(crate) struct SlotTypes {
    op: TypeId,
    name: &'static str,
    type_name: &'static str,
    /// The calls name their asset ([`Operation::DYNAMIC`]: dynamic records).
    dynamic: bool,
    sync_before: TypeId,
    async_before: TypeId,
    sync_after: TypeId,
    async_after: TypeId,
    background: TypeId,
    input: BareTypes,
    output: BareTypes,
    /// The shapes of the before handlers that may answer the call ([`BareFlow`],
    /// [`BareFlowCtx`]), which name the input and the output.
    answers: [(TypeId, BareShape); 4],
    /// The input and the output, which a before handler with a result of its own must take and
    /// have had its loop compiled for ([`Owns`](crate::registration::Owns)).
    own: [TypeId; 2],
}

impl SlotTypes {
    /// The types of `Op`'s slot.
    pub(crate) fn of<Op: Operation>() -> SlotTypes {
        SlotTypes {
            op: TypeId::of::<Op>(),
            name: Op::NAME,
            type_name: std::any::type_name::<Op>(),
            dynamic: Op::DYNAMIC,
            sync_before: TypeId::of::<SyncBefore<Op>>(),
            async_before: TypeId::of::<AsyncBefore<Op>>(),
            sync_after: TypeId::of::<SyncAfter<Op>>(),
            async_after: TypeId::of::<AsyncAfter<Op>>(),
            background: TypeId::of::<BackgroundAfter<Op>>(),
            input: BareTypes::of::<Op::Input>(),
            output: BareTypes::of::<Op::Output>(),
            answers: BareTypes::answers::<Op::Input, Op::Output>(),
            own: [TypeId::of::<Op::Input>(), TypeId::of::<Op::Output>()],
        }
    }
}

type Resolved = HashMap<TypeId, HashMap<String, Option<Arc<ErasedSlot>>>>;

/// The built, validated dispatch table. See the [module docs](self).
pub struct Table {
    /// Sorted by operation, asset, phase, priority, id.
    regs: Vec<&'static Registration>,
    /// Each `(operation, asset)`, sorted by its names, and its range in `regs`.
    slots: Vec<SlotRange>,
    /// Resolved slots by operation type and asset; `None` for an operation with no handlers.
    /// Entries are only ever added, never replaced or removed, while the table lives.
    resolved: RwLock<Resolved>,
}

impl std::fmt::Debug for Table {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Table")
            .field("handlers", &self.regs.len())
            .finish_non_exhaustive()
    }
}

/// A hash map keyed by the addresses of names the binary itself defines (operations, assets),
/// as integers: a cheap multiply-rotate hash instead of SipHash, whose resistance to chosen keys
/// is not needed here.
type NameMap<K, V> = HashMap<K, V, BuildHasherDefault<NameHasher>>;

/// The hasher of [`NameMap`].
#[derive(Default)]
struct NameHasher(u64);

impl Hasher for NameHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    /// Bytes, eight at a time. The keys of the table's maps are integers, which take
    /// [`Hasher::write_usize`]; this serves any other key correctly, not fast.
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.mix(u64::from_le_bytes(word) ^ ((chunk.len() as u64) << 59));
        }
    }

    fn write_usize(&mut self, i: usize) {
        self.mix(i as u64);
    }
}

impl NameHasher {
    #[inline]
    fn mix(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
}

/// `a.cmp(b)`, answering at once when both are the same `&'static str`.
#[inline]
fn cmp_str(a: &str, b: &str) -> std::cmp::Ordering {
    if std::ptr::eq(a, b) {
        std::cmp::Ordering::Equal
    } else {
        a.cmp(b)
    }
}

/// `(phase, priority)` as one integer of their order: the priority with its sign bit flipped
/// (bits 0 to 31), the phase above it.
#[inline]
fn run_order(reg: &Registration) -> u64 {
    (u64::from(reg.phase as u8) << 32) | u64::from(reg.priority as u32 ^ (1 << 31))
}

/// The phase, the id's length (saturated at 31 bits) and its last byte, as one integer:
/// registrations that differ here are not the same handler in the same phase.
#[inline]
fn event(reg: &Registration) -> u64 {
    let len = reg.id.len().min((1 << 31) - 1) as u64;
    let last = reg.id.as_bytes().last().copied().unwrap_or(0);
    (u64::from(last) << 32) | (len << 1) | reg.phase as u64
}

/// An operation's and an asset's names by address: pointer and length of each. Hashed by the
/// pointers alone; names at one address with other lengths are still told apart by `==`.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Address([usize; 4]);

impl std::hash::Hash for Address {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_usize(self.0[0]);
        state.write_usize(self.0[2]);
    }
}

/// A slot of the first pass: registrations whose names share their addresses.
struct PassSlot {
    /// The numbers of its operation's and asset's names.
    operation: usize,
    asset: usize,
    count: usize,
    /// Its first handler's operation type, and whether another handler's is not the same.
    op_type: fn() -> TypeId,
    types_differ: bool,
}

/// Whether two `op_type` fns name other types. Handlers compiled together share the fn.
fn other_types(a: fn() -> TypeId, b: fn() -> TypeId) -> bool {
    !ptr::fn_addr_eq(a, b) && a() != b()
}

/// A slot of the table: its names, its range in [`Sorted::regs`] (and then in the table's
/// registrations), and whether its handlers disagree on the operation type.
struct SlotRange {
    operation: &'static str,
    asset: &'static str,
    range: Range<usize>,
    types_differ: bool,
}

/// The registrations slot by slot, as [`Table::from_registrations`] receives them from
/// [`sorted`].
struct Sorted {
    /// Slot by slot in table order; within a slot, in link order.
    regs: Vec<&'static Registration>,
    /// Each slot, in table order: sorted by its names.
    slots: Vec<SlotRange>,
}

/// Each distinct string by address (pointer and length), numbered in the order first seen.
#[derive(Default)]
struct Names {
    numbers: NameMap<(usize, usize), usize>,
    names: Vec<&'static str>,
}

impl Names {
    fn number(&mut self, name: &'static str) -> usize {
        let next = self.names.len();
        let number = *self
            .numbers
            .entry((name.as_ptr() as usize, name.len()))
            .or_insert(next);
        if number == next {
            self.names.push(name);
        }
        number
    }

    /// Each number's rank in the order of the names, and how many ranks there are; equal names
    /// at different addresses get one rank.
    fn ranks(&self) -> (Vec<usize>, usize) {
        let mut by_name: Vec<usize> = (0..self.names.len()).collect();
        by_name.sort_unstable_by(|&a, &b| cmp_str(self.names[a], self.names[b]));
        let mut ranks = vec![0; self.names.len()];
        let mut rank = 0;
        for (i, &n) in by_name.iter().enumerate() {
            if i > 0 && self.names[n] != self.names[by_name[i - 1]] {
                rank += 1;
            }
            ranks[n] = rank;
        }
        (ranks, rank + 1)
    }
}

/// `values` (of which there are `len`) ordered by `key`, which is below `keys`; stable.
fn counting_sort(
    values: impl Iterator<Item = usize> + Clone,
    len: usize,
    keys: usize,
    key: impl Fn(usize) -> usize,
) -> Vec<usize> {
    // Each key's first place: the count of the keys below it.
    let mut next = vec![0; keys + 1];
    for v in values.clone() {
        next[key(v) + 1] += 1;
    }
    for k in 1..keys {
        next[k] += next[k - 1];
    }
    let mut out = vec![0; len];
    for v in values {
        let k = key(v);
        out[next[k]] = v;
        next[k] += 1;
    }
    out
}

/// Asks the CPU to bring `p`'s cache line in: a hint, which never faults.
#[inline(always)]
fn prefetch(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch reads nothing the program sees and never faults, whatever `p` is; SSE,
    // which it needs, is part of every x86-64 target.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p.cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// The most handlers a slot sorts and checks in arrays on the stack; larger slots take a slower
/// path.
const SMALL: usize = 32;

/// Sorts the registrations of a slot by phase, priority and id, in place.
fn sort_slot(regs: &mut [&'static Registration]) {
    if regs.len() > SMALL {
        regs.sort_unstable_by(|a, b| {
            (run_order(a).cmp(&run_order(b))).then_with(|| cmp_str(a.id, b.id))
        });
        return;
    }
    // An insertion sort, with the orders side by side; ids only break their ties.
    let mut orders = [0; SMALL];
    for i in 0..regs.len() {
        let reg = regs[i];
        let order = run_order(reg);
        let mut j = i;
        while j > 0
            && (orders[j - 1] > order
                || orders[j - 1] == order && cmp_str(regs[j - 1].id, reg.id).is_gt())
        {
            orders[j] = orders[j - 1];
            regs[j] = regs[j - 1];
            j -= 1;
        }
        orders[j] = order;
        regs[j] = reg;
    }
}

/// The registrations slot by slot in table order (operation, asset), each slot's range in it
/// and the index of each `(operation, asset)` to its range. [`sort_slot`] puts each slot's
/// handlers in order (phase, priority, id).
///
/// A bucket sort. One pass over the registrations in link order reads only their names and
/// operation types, and puts each in a slot: a slot per distinct pair of name addresses (the
/// registrations of one crate share them; neighbours that share both skip the map), and each
/// distinct operation and asset address gets a number. The distinct operations and assets are
/// sorted by name, which ranks them; the slots are put in order of their pair of ranks by a
/// radix sort, and those that share it (equal names at other addresses) merge; then each
/// registration is written to its slot's next place. Strings are compared only between
/// distinct names, and between the ids of a slot.
///
/// A table is built at start-up, in memory fresh from the kernel, where every page written
/// costs a fault: the build keeps no more than a pointer and a slot number per registration
/// beside the table's own array.
fn sorted(regs: impl IntoIterator<Item = &'static Registration>) -> Sorted {
    let regs = regs.into_iter();
    // The registrations in link order, and the slot of the first pass of each.
    let mut linked: Vec<&'static Registration> = Vec::with_capacity(regs.size_hint().0);
    let mut slot_of: Vec<u32> = Vec::with_capacity(linked.capacity());
    let mut slots: Vec<PassSlot> = Vec::new();
    let mut operations = Names::default();
    let mut assets = Names::default();
    // Sized for a slot per sixteen handlers; most tables grow it once or twice at most.
    let mut by_address: NameMap<Address, u32> =
        NameMap::with_capacity_and_hasher(linked.capacity() / 16, Default::default());
    let mut last: Option<(&'static Registration, u32)> = None;
    for r in regs {
        let slot = match last {
            Some((prev, slot))
                if ptr::eq(prev.operation, r.operation) && ptr::eq(prev.asset, r.asset) =>
            {
                slot
            }
            _ => {
                let address = Address([
                    r.operation.as_ptr() as usize,
                    r.operation.len(),
                    r.asset.as_ptr() as usize,
                    r.asset.len(),
                ]);
                let fresh = slots.len() as u32;
                let slot = *by_address.entry(address).or_insert(fresh);
                if slot == fresh {
                    slots.push(PassSlot {
                        operation: operations.number(r.operation),
                        asset: assets.number(r.asset),
                        count: 0,
                        op_type: r.op_type,
                        types_differ: false,
                    });
                }
                slot
            }
        };
        last = Some((r, slot));
        let pass = &mut slots[slot as usize];
        pass.count += 1;
        pass.types_differ |= other_types(r.op_type, pass.op_type);
        linked.push(r);
        slot_of.push(slot);
    }
    // The slots in table order, by the ranks of their names; equal ranks are one slot.
    let ((op_ranks, op_count), (asset_ranks, asset_count)) = (operations.ranks(), assets.ranks());
    let ranks = |slot: usize| {
        (
            op_ranks[slots[slot].operation],
            asset_ranks[slots[slot].asset],
        )
    };
    // A radix sort: by asset, then, keeping that order, by operation.
    let by_asset = counting_sort(0..slots.len(), slots.len(), asset_count, |s| ranks(s).1);
    let order = counting_sort(by_asset.into_iter(), slots.len(), op_count, |s| ranks(s).0);
    // Each slot of the first pass to its final slot; each final slot's range and names.
    let mut merged = vec![0; slots.len()];
    let mut ranges: Vec<SlotRange> = Vec::with_capacity(slots.len());
    // The last final slot's ranks, and the first pass's slot that began it.
    let mut previous: Option<((usize, usize), usize)> = None;
    for slot in order {
        let pass = &slots[slot];
        match (ranges.last_mut(), previous) {
            (Some(last), Some((ranks_before, began))) if ranks_before == ranks(slot) => {
                last.range.end += pass.count;
                last.types_differ |=
                    pass.types_differ || other_types(pass.op_type, slots[began].op_type);
            }
            _ => {
                let at = ranges.last().map_or(0, |r| r.range.end);
                ranges.push(SlotRange {
                    operation: operations.names[pass.operation],
                    asset: assets.names[pass.asset],
                    range: at..at + pass.count,
                    types_differ: pass.types_differ,
                });
                previous = Some((ranks(slot), slot));
            }
        }
        merged[slot] = ranges.len() - 1;
    }
    // Each registration to its slot's next place.
    let mut cursor: Vec<usize> = ranges.iter().map(|r| r.range.start).collect();
    let mut placed = linked.clone();
    for (&reg, &slot) in linked.iter().zip(&slot_of) {
        let slot = merged[slot as usize];
        placed[cursor[slot]] = reg;
        cursor[slot] += 1;
    }
    Sorted {
        regs: placed,
        slots: ranges,
    }
}

fn problem(reg: &Registration, text: String) -> TableProblem {
    TableProblem {
        handler: reg.id.to_owned(),
        file: reg.file.to_owned(),
        line: reg.line,
        problem: text,
    }
}

impl Table {
    /// The table of every handler linked into this binary, built and validated on first use.
    pub fn global() -> Result<&'static Table, TableError> {
        static GLOBAL: OnceLock<Result<Table, TableError>> = OnceLock::new();
        GLOBAL
            .get_or_init(|| Table::from_registrations(registered()))
            .as_ref()
            .map_err(Clone::clone)
    }

    /// A table of exactly these registrations (for tests and tools).
    pub fn from_registrations(
        regs: impl IntoIterator<Item = &'static Registration>,
    ) -> Result<Table, TableError> {
        let Sorted { mut regs, slots } = sorted(regs);
        let mut problems = Vec::new();
        for (k, slot) in slots.iter().enumerate() {
            // A slot's registrations lie anywhere in link order, and its sort and check wait on
            // each one's memory and its id's: while this slot runs, the lines of the slot after
            // next come in, and the ids of the next slot, whose registrations came in a slot
            // ago (~8% of the build's time on the bench's scrambled 10,000; finding 22).
            if let Some(ahead) = slots.get(k + 2) {
                for &r in regs[ahead.range.clone()].iter().take(SMALL) {
                    prefetch(ptr::from_ref(r).cast());
                    prefetch(ptr::from_ref(&r.priority).cast());
                }
            }
            if let Some(next) = slots.get(k + 1) {
                for &r in regs[next.range.clone()].iter().take(SMALL) {
                    prefetch(r.id.as_ptr());
                }
            }
            let handlers = &mut regs[slot.range.clone()];
            sort_slot(handlers);
            validate_slot(handlers, slot.types_differ, &mut problems);
        }
        if problems.is_empty() {
            Ok(Table {
                regs,
                slots,
                resolved: RwLock::new(HashMap::new()),
            })
        } else {
            problems.sort_by(|a, b| (&a.handler, &a.problem).cmp(&(&b.handler, &b.problem)));
            Err(TableError { problems })
        }
    }

    /// Every registration, sorted by operation, asset, phase, priority and id.
    pub fn registrations(&self) -> &[&'static Registration] {
        &self.regs
    }

    /// The handlers of `(operation, asset)` in their run order, before handlers first.
    pub fn handlers(&self, operation: &str, asset: &str) -> &[&'static Registration] {
        let names = (operation, asset);
        match self
            .slots
            .binary_search_by(|s| (s.operation, s.asset).cmp(&names))
        {
            Ok(at) => &self.regs[self.slots[at].range.clone()],
            Err(_) => &[],
        }
    }

    /// The handlers that run on `(operation, asset)`: those of the asset and those of `"*"`,
    /// merged in run order (phase, priority, id).
    pub fn handlers_for(&self, operation: &str, asset: &str) -> Vec<&'static Registration> {
        let mut all: Vec<&'static Registration> = self.handlers(operation, asset).to_vec();
        if asset != "*" {
            all.extend_from_slice(self.handlers(operation, "*"));
            all.sort_by_key(|r| (r.phase, r.order_key()));
        }
        all
    }

    /// The slot of `Op` on `asset`, typed; `None` when it has no handlers.
    #[inline]
    pub(crate) fn resolve<Op: Operation>(&self, asset: &str) -> Option<&Slot<Op>> {
        let slot = self.resolve_erased(TypeId::of::<Op>(), asset, SlotTypes::of::<Op>)?;
        // SAFETY: slots are keyed by their operation's `TypeId`, and the slot of `Op` is built
        // against `SlotTypes::of::<Op>()`.
        Some(unsafe { Slot::typed(slot) })
    }

    /// [`Table::resolve`], with the operation's types erased: compiled once, not once per
    /// operation. `types` gives the slot's types when it must be built.
    fn resolve_erased(
        &self,
        op: TypeId,
        asset: &str,
        types: fn() -> SlotTypes,
    ) -> Option<&ErasedSlot> {
        let known = |asset: &str| {
            let map = self.resolved.read().unwrap_or_else(PoisonError::into_inner);
            map.get(&op).and_then(|m| m.get(asset)).cloned()
        };
        let entry = match known(asset) {
            Some(entry) => entry,
            None => {
                let types = types();
                // An asset that no handler names runs the handlers of `"*"` alone: it takes their
                // slot, kept once under `"*"`. Names a client chooses (a channel, a dynamic
                // table) then cannot grow the map: it holds the named assets and `"*"`.
                let asset = if asset != "*" && self.handlers(types.name, asset).is_empty() {
                    "*"
                } else {
                    asset
                };
                match known(asset) {
                    Some(entry) => entry,
                    None => {
                        let built = self.build_slot(asset, &types).map(Arc::new);
                        let mut map = self
                            .resolved
                            .write()
                            .unwrap_or_else(PoisonError::into_inner);
                        map.entry(op)
                            .or_default()
                            .entry(asset.to_owned())
                            .or_insert(built)
                            .clone()
                    }
                }
            }
        };
        let slot = Arc::as_ptr(&entry?);
        // SAFETY: the `Arc` lives in `self.resolved`, whose entries are never replaced or removed
        // while `self` lives, so the slot it points to outlives the returned borrow of `self`.
        Some(unsafe { &*slot })
    }

    /// [`Table::resolve`] through a static cache; only for the global table, which lives forever.
    #[inline]
    pub(crate) fn resolve_cached<Op: Operation>(
        &'static self,
        cache: &'static SlotCache,
    ) -> Option<&'static Slot<Op>> {
        let p = cache.ptr.load(Ordering::Acquire);
        if p == empty_marker() {
            return None;
        }
        let slot = if p.is_null() {
            self.resolve_to_cache(cache, TypeId::of::<Op>(), Op::ASSET, SlotTypes::of::<Op>)?
        } else {
            // SAFETY: only `fill_cache` stores into the cache, and it stores either the empty
            // marker or a pointer to a slot of the global table, which is never freed.
            unsafe { &*p.cast::<ErasedSlot>() }
        };
        // A cache is meant to be one operation's (`Operation::slot_cache`), but nothing stops
        // two from sharing one (a static in a generic function is one for all its types): a
        // slot built for another operation is never read as this one's.
        if slot.op != TypeId::of::<Op>() {
            return self.resolve::<Op>(Op::ASSET);
        }
        // SAFETY: the slot was built against the types of the operation whose `TypeId` it holds
        // (`build_slot`, `SlotTypes::of::<Op>()`), which is `Op`.
        Some(unsafe { Slot::typed(slot) })
    }

    /// The first call of an operation through its static cache: its slot resolved (as
    /// [`Table::resolve`], with the operation's types erased) and remembered. Compiled once,
    /// out of the way of the calls that find the cache filled.
    #[cold]
    #[inline(never)]
    fn resolve_to_cache(
        &'static self,
        cache: &'static SlotCache,
        op: TypeId,
        asset: &str,
        types: fn() -> SlotTypes,
    ) -> Option<&'static ErasedSlot> {
        let slot = self.resolve_erased(op, asset, types);
        fill_cache(cache, slot);
        slot
    }

    /// The slot of `(operation, asset)`, or `None` when it has no handlers, built against
    /// `types`. A handler whose adapter is not of the type the operation needs leaves the slot
    /// with a problem that every call fails with.
    fn build_slot(&self, asset: &str, types: &SlotTypes) -> Option<ErasedSlot> {
        let regs = self.handlers_for(types.name, asset);
        if regs.is_empty() {
            return None;
        }
        let mut slot = ErasedSlot {
            op: types.op,
            before: Box::new([]),
            after: Box::new([]),
            background: Box::new([]),
            fast_before: None,
            fast_after: None,
            bare_before: None,
            bare_after: None,
            client_only: regs.iter().any(|r| r.client_only),
            context: regs.iter().any(|r| r.context),
            after_whole: regs
                .iter()
                .any(|r| r.phase == Phase::After && r.mode == Mode::Blocking && r.on_error),
            first_async: regs
                .iter()
                .copied()
                .find(|r| r.kind == Kind::Async && r.mode == Mode::Blocking),
            sync_rare: false,
            timed: regs.iter().any(|r| r.timeout.is_some()),
            problem: None,
        };
        let mut before = Vec::new();
        let mut after = Vec::new();
        let mut background = Vec::new();
        for &reg in &regs {
            match adapt(reg, types) {
                Ok(Adapted::Before(f)) => before.push(Entry { reg, f }),
                Ok(Adapted::After(f)) => after.push(Entry { reg, f }),
                Ok(Adapted::Background(f)) => background.push(Entry { reg, f }),
                Err(e) => {
                    slot.problem = Some(e);
                    break;
                }
            }
        }
        slot.fast_before = plain_sync(&before, |f| match *f {
            BeforeFn::Sync(f) => Some(f),
            _ => None,
        });
        slot.fast_after = plain_sync(&after, |f| match *f {
            AfterFn::Sync(f) => Some(f),
            _ => None,
        });
        slot.bare_before = slot
            .fast_before
            .as_deref()
            .and_then(|h| bare(h, &types.input, &types.answers, (types.own, false)));
        // An after handler with a result of its own takes the output, and its loop answers
        // nothing (`()`).
        let own_after = [types.own[1], TypeId::of::<()>()];
        slot.bare_after = slot
            .fast_after
            .as_deref()
            .and_then(|h| bare(h, &types.output, &[], (own_after, true)));
        slot.before = before.into_boxed_slice();
        slot.after = after.into_boxed_slice();
        slot.background = background.into_boxed_slice();
        slot.sync_rare = slot.first_async.is_some() || !slot.background.is_empty();
        Some(slot)
    }
}

/// Remember the slot of a [`SlotCache`]'s operation (`None`: it has no handlers).
fn fill_cache(cache: &SlotCache, slot: Option<&'static ErasedSlot>) {
    let value = match slot {
        Some(s) => ptr::from_ref(s).cast::<()>().cast_mut(),
        None => empty_marker(),
    };
    cache.ptr.store(value, Ordering::Release);
}

/// The entries again as plain sync adapters, for the dispatcher's fast loop, when every one of
/// them is a sync adapter (`sync` picks it) of a handler with no timeout of its own.
fn plain_sync<F>(
    entries: &[Entry<F>],
    sync: impl Fn(&F) -> Option<Erased>,
) -> Option<Box<[Entry<Erased>]>> {
    let mut out = Vec::with_capacity(entries.len());
    for e in entries {
        let f = sync(&e.f).filter(|_| e.reg.timeout.is_none())?;
        out.push(Entry { reg: e.reg, f });
    }
    Some(out.into_boxed_slice())
}

/// The handlers of a fast loop, in runs: each handler as itself when its `direct` fn has a bare
/// shape for the payload (whose shapes `types` gives, with those of `answers` for before
/// handlers): [`Bare`], [`BareCtx`], [`BareUnit`], [`BareUnitCtx`], [`BareFlow`] or
/// [`BareFlowCtx`]; or a result of its own ([`Owns`](crate::registration::Owns)), whose payload
/// and output (`()` after) must be `own`'s types, and whose loop must be of the phase (after when
/// `own`'s flag says so). After, each then runs on success only, as a handler that takes the
/// output does. Any other handler (part of its payload, no fn of its own) runs through its
/// adapter, the fast loop's `entries` ([`BareShape::Adapted`]).
///
/// Handlers of one shape (and, for a result of their own, one signature) that follow each other
/// share a run, one [`BareLoop`]; a slot that mixes shapes gets one run for each change of shape,
/// chained in order (`BareLoop::next`). In such a slot, a run that brings its own loop goes
/// through its adapters instead when the call of its loop would cost more than it saves
/// ([`saved`]). `None`, and the fast loop of adapters for the whole slot, when what the runs
/// save does not pay for their chain ([`CHAIN`]), or when an after handler takes the whole
/// result (it may change whether the result is an error, which the loop of adapters tests for).
fn bare(
    entries: &[Entry<Erased>],
    types: &BareTypes,
    answers: &[(TypeId, BareShape)],
    own: ([TypeId; 2], bool),
) -> Option<BareLoop> {
    let mut runs: Vec<Run> = Vec::new();
    for e in entries {
        if e.reg.on_error {
            return None;
        }
        let (this, sig, run, f) =
            as_itself(e.reg, types, answers, own).unwrap_or((BareShape::Adapted, None, None, e.f));
        let (entry, adapter) = (Entry { reg: e.reg, f }, Entry { reg: e.reg, f: e.f });
        match runs.last_mut() {
            Some(last) if last.shape == this && last.sig == sig => {
                last.handlers.push(entry);
                last.adapters.push(adapter);
            }
            _ => runs.push(Run {
                shape: this,
                sig,
                run,
                handlers: vec![entry],
                adapters: vec![adapter],
            }),
        }
    }
    let after = own.1;
    if runs.len() > 1 {
        // A run whose loop's call costs more than it saves: through its adapters, beside any
        // next to it.
        for r in &mut runs {
            if r.run.is_some() && saved(r, after) <= 0 {
                r.shape = BareShape::Adapted;
                r.sig = None;
                r.run = None;
                r.handlers = std::mem::take(&mut r.adapters);
            }
        }
        runs.dedup_by(|later, earlier| {
            let merge = later.shape == BareShape::Adapted && earlier.shape == BareShape::Adapted;
            if merge {
                earlier.handlers.append(&mut later.handlers);
            }
            merge
        });
    }
    // One run needs no chain, unless it is of adapters (the loop of adapters runs those);
    // several cost the chain's frame, which what they save must pay.
    match runs.as_slice() {
        [only] if only.shape == BareShape::Adapted => return None,
        [_, _, ..] if runs.iter().map(|r| saved(r, after)).sum::<isize>() <= CHAIN => return None,
        _ => {}
    }
    let mut next = None;
    for Run {
        shape,
        run,
        handlers,
        ..
    } in runs.into_iter().rev()
    {
        next = Some(Box::new(BareLoop {
            shape,
            handlers: handlers.into_boxed_slice(),
            run,
            next,
        }));
    }
    Some(next.map_or_else(
        || BareLoop {
            shape: BareShape::Plain,
            handlers: Box::new([]),
            run: None,
            next: None,
        },
        |first| *first,
    ))
}

/// How a handler is called as itself, if it can be (see [`bare`]): its shape, the signature
/// its loop reads it as when it has a result of its own, the loop it brought when its shape
/// brings one, and its fn pointer.
fn as_itself(
    reg: &'static Registration,
    types: &BareTypes,
    answers: &[(TypeId, BareShape)],
    own: ([TypeId; 2], bool),
) -> Option<(BareShape, Option<TypeId>, Option<Erased>, Erased)> {
    let direct = reg.direct()?;
    let id = (direct.sig)();
    let (this, sig) = match types.shape_of(id).or_else(|| shape_in(answers, id)) {
        Some(this) => (this, None),
        // A result of its own: the handler takes the input and came with the loop of the output.
        None => {
            let theirs = direct.own?;
            if own != ((theirs.types)(), theirs.after) {
                return None;
            }
            let this = match (theirs.after, theirs.ctx) {
                (false, false) => BareShape::Own,
                (false, true) => BareShape::OwnCtx,
                (true, false) => BareShape::OwnAfter,
                (true, true) => BareShape::OwnAfterCtx,
            };
            (this, Some((theirs.sig)()))
        }
    };
    let run = match this.brings_loop() {
        true => Some(direct.run?),
        false => None,
    };
    // `direct.f` holds a fn pointer of one of the shapes of `T` (checked by `TypeId`), kept as
    // `Erased` and read back, by `BareRun::typed`, as the erased type of `this`, which changes
    // only the payload parameter's type, from `&mut T` or `&T` to `*mut ()`: ABI-compatible (see
    // `ErasedBare`). The shapes that answer keep their output type, which `answers` was made
    // for: the slot's operation's, whose loop came with them (an `Answers` type names both). The
    // dispatcher passes a pointer from a `&mut T`, and a `&T` handler only reads through it, as
    // its own signature says.
    Some((this, sig, run, direct.f))
}

/// A run of a slot's handlers of one shape, as [`bare`] gathers them.
struct Run {
    shape: BareShape,
    /// The signature its handlers share when they have a result of their own: their loop calls
    /// each as the first one's type.
    sig: Option<TypeId>,
    /// The loop they brought, for the shapes that bring one.
    run: Option<Erased>,
    /// The handlers as the run calls them: their own fns, or their adapters.
    handlers: Vec<Entry<Erased>>,
    /// Their adapters, should the run go through them after all.
    adapters: Vec<Entry<Erased>>,
}

/// What calling a run's handlers as themselves saves against calling them through their
/// adapters, in instructions per call (see the constants below): the entry of a run of adapters,
/// taken off; each handler's saving less the call of its loop for a run that brings one.
fn saved(run: &Run, after: bool) -> isize {
    let n = run.handlers.len().cast_signed();
    match (run.shape, run.run.is_some(), after) {
        (BareShape::Adapted, _, _) => -ADAPTER_RUN,
        (_, false, _) => BARE_SAVES * n,
        (_, true, false) => OWN_SAVES_BEFORE * n - LOOP_CALL,
        (_, true, true) => OWN_SAVES_AFTER * n - LOOP_CALL,
    }
}

// The cost model of a slot that mixes shapes, in instructions per call, from
// `benches/callgrind.sh` on slots of two shapes (BENCHMARKS.md, findings 33 and 34). A handler
// through its adapter costs ~30 before the default and ~28 after it; as itself, in a run of the
// bare shapes ~15, in the loop of its own result ~21 before and ~14 after, plus the call of that
// loop (~40). The chain of runs costs ~20 more than the loop of adapters, and a run of adapters
// in it ~20 to enter.

/// What a handler of a bare shape saves as itself in a run, against its adapter.
const BARE_SAVES: isize = 14;
/// What a before handler with a result of its own saves in its loop, against its adapter.
const OWN_SAVES_BEFORE: isize = 9;
/// What an after handler with a result of its own saves in its loop, against its adapter.
const OWN_SAVES_AFTER: isize = 14;
/// The call of a run's own loop.
const LOOP_CALL: isize = 40;
/// The chain of runs, beyond the loop of adapters.
const CHAIN: isize = 20;
/// The entry of a run of adapters in the chain.
const ADAPTER_RUN: isize = 20;

/// The fn pointer that `any` holds, as an `F`.
///
/// # Safety
/// `any` holds a fn pointer (its `TypeId` says which), and `F` is a fn pointer type that it may be
/// read as: the same type, or one called only as the type it was checked to be.
unsafe fn read_fn<F: Copy>(any: &(dyn Any + Send + Sync)) -> F {
    // SAFETY: the caller's; every fn pointer type has the size and alignment of `F`.
    unsafe { ptr::from_ref(any).cast::<F>().read() }
}

/// The `TypeId`s of the bare shapes of one payload type `T`, each with the shape it is (the
/// `&mut T` and `&T` forms of each).
struct BareTypes([(TypeId, BareShape); 8]);

impl BareTypes {
    /// Out of line: an operation whose input and output are one type (a create's, an
    /// update's) compiles it once.
    #[inline(never)]
    fn of<T: 'static>() -> BareTypes {
        use BareShape::{Ctx, Plain, Unit, UnitCtx};
        type Shared<T> = fn(&T) -> Result<(), HookError>;
        type SharedCtx<T> = fn(&T, &Context) -> Result<(), HookError>;
        type SharedUnit<T> = fn(&T);
        type SharedUnitCtx<T> = fn(&T, &Context);
        BareTypes([
            (TypeId::of::<Bare<T>>(), Plain),
            (TypeId::of::<Shared<T>>(), Plain),
            (TypeId::of::<BareCtx<T>>(), Ctx),
            (TypeId::of::<SharedCtx<T>>(), Ctx),
            (TypeId::of::<BareUnit<T>>(), Unit),
            (TypeId::of::<SharedUnit<T>>(), Unit),
            (TypeId::of::<BareUnitCtx<T>>(), UnitCtx),
            (TypeId::of::<SharedUnitCtx<T>>(), UnitCtx),
        ])
    }

    /// The shape of a fn pointer of the type `id`, if it is one of `T`'s.
    fn shape_of(&self, id: TypeId) -> Option<BareShape> {
        shape_in(&self.0, id)
    }

    /// The `TypeId`s of the shapes of a before handler that may answer a call whose input is `T`
    /// and whose output is `O`, as the attribute hands them over: each with its loop
    /// ([`Answers`], in a [`Direct`](crate::registration::Direct)).
    fn answers<T: 'static, O: 'static>() -> [(TypeId, BareShape); 4] {
        use BareShape::{Flow as Answer, FlowCtx as AnswerCtx};
        type Shared<T, O> = fn(&T) -> Result<Flow<O>, HookError>;
        type SharedCtx<T, O> = fn(&T, &Context) -> Result<Flow<O>, HookError>;
        [
            (TypeId::of::<Answers<BareFlow<T, O>, O>>(), Answer),
            (TypeId::of::<Answers<Shared<T, O>, O>>(), Answer),
            (TypeId::of::<Answers<BareFlowCtx<T, O>, O>>(), AnswerCtx),
            (TypeId::of::<Answers<SharedCtx<T, O>, O>>(), AnswerCtx),
        ]
    }
}

/// The shape that `id` has among `shapes`, if any.
fn shape_in(shapes: &[(TypeId, BareShape)], id: TypeId) -> Option<BareShape> {
    shapes
        .iter()
        .find(|(t, _)| *t == id)
        .map(|&(_, shape)| shape)
}

enum Adapted {
    Before(BeforeFn<Erased, Erased>),
    After(AfterFn<Erased, Erased>),
    Background(Erased),
}

/// The registration's adapter, checked against the operation's types, or the error every call of
/// the slot fails with.
fn adapt(reg: &'static Registration, types: &SlotTypes) -> Result<Adapted, HookError> {
    let any = reg.adapter.any();
    if reg.asset == "*" && (reg.op_type)() != types.op {
        // A wildcard data handler: it sees the records of any table through `Record`.
        let sync = any.downcast_ref::<WildSync>().copied();
        let wild = match (reg.phase, reg.kind) {
            (Phase::Before, Kind::Sync) => sync.map(|f| Adapted::Before(BeforeFn::WildSync(f))),
            (Phase::After, Kind::Sync) => sync.map(|f| Adapted::After(AfterFn::WildSync(f))),
            (phase, Kind::Async) => any.downcast_ref::<WildAsync>().map(|&f| match phase {
                Phase::Before => Adapted::Before(BeforeFn::WildAsync(f)),
                Phase::After => Adapted::After(AfterFn::WildAsync(f)),
            }),
        };
        if let Some(wild) = wild {
            return Ok(wild);
        }
    }
    let (expected, make): (TypeId, fn(Erased) -> Adapted) = match (reg.phase, reg.kind) {
        (Phase::After, _) if reg.mode == Mode::Background => {
            (types.background, Adapted::Background)
        }
        (Phase::Before, Kind::Sync) => (types.sync_before, |f| Adapted::Before(BeforeFn::Sync(f))),
        (Phase::Before, Kind::Async) => {
            (types.async_before, |f| Adapted::Before(BeforeFn::Async(f)))
        }
        (Phase::After, Kind::Sync) => (types.sync_after, |f| Adapted::After(AfterFn::Sync(f))),
        (Phase::After, Kind::Async) => (types.async_after, |f| Adapted::After(AfterFn::Async(f))),
    };
    if any.type_id() == expected {
        // SAFETY: the adapter is of the type `expected` names, a fn pointer type; it is stored
        // erased and read back as that type only (`Slot`).
        return Ok(make(unsafe { read_fn::<Erased>(any) }));
    }
    if types.dynamic {
        // A dynamic record of a table that has a type of its own: the service (or its client,
        // through a route that takes any table) named a typed table.
        return Err(HookError::new(
            400,
            "typed_table",
            format!(
                "the table `{}` has a type of its own (`{}`): its records are created and \
                 changed as that type, not as dynamic records",
                reg.asset, reg.payload,
            ),
        ));
    }
    Err(HookError::internal(format!(
        "hook handler {} ({}:{}) was compiled for `{}` (payload `{}`), but this call is `{}` \
         (asset `{}`). {}",
        reg.id,
        reg.file,
        reg.line,
        reg.operation_type(),
        reg.payload,
        types.type_name,
        reg.asset,
        rename_hint(reg),
    )))
}

/// How to part two types that share `reg`'s operation and asset: tables are named by
/// `#[entity(table)]`, custom events (asset "events") by `#[event(name)]`, and the service's own
/// operations by `operation!`.
fn rename_hint(reg: &Registration) -> &'static str {
    if reg.operation.starts_with("data.") {
        "Two types share the table name; give one of them another (#[entity(table = \"...\")])"
    } else if reg.asset == "events" {
        "Two event types share the event name (by default the type's name, without its \
         module); give one of them another (#[event(name = \"...\")])"
    } else {
        "Two operation types share the operation's name; give one of them another \
         (hooks::operation!)"
    }
}

/// Check the handlers of one `(operation, asset)`, sorted by [`sort_slot`]; `types_differ` says
/// whether they disagree on the operation type.
fn validate_slot(
    regs: &[&'static Registration],
    types_differ: bool,
    problems: &mut Vec<TableProblem>,
) {
    let Some(first) = regs.first() else { return };
    if first.asset.is_empty() {
        for &reg in regs {
            problems.push(problem(
                reg,
                "the asset is empty: name a table, such as \"Contact\"".into(),
            ));
        }
    }
    // One function may handle several events, but not the same event twice. Slots are small:
    // a handler is compared with those before it only when a filter of their events says it
    // may share one, and ids only when the events agree; a large slot sorts a copy.
    let twice = |first: &Registration, reg: &Registration| {
        format!(
            "registered twice for {} {} on \"{}\", at {}:{} and {}:{}: one function with two \
             such attributes, or two functions of one name declared inside function bodies (a \
             handler inside a function, a test's say, has its module's path as its id). Keep \
             one attribute, or give one function another name",
            reg.phase.as_str(),
            reg.operation,
            reg.asset,
            first.file,
            first.line,
            reg.file,
            reg.line,
        )
    };
    if regs.len() <= SMALL {
        // A 256-bit filter of the events seen: most handlers share their event with none
        // before them, and pass with a test and two bit operations; only one whose event's bit
        // is set already compares with those before it.
        let mut seen = [0_u64; 4];
        for (i, &a) in regs.iter().enumerate() {
            let e = event(a);
            let bit = (e.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 56) as usize;
            let (word, mask) = (bit >> 6, 1_u64 << (bit & 63));
            if seen[word] & mask != 0
                && let Some(first) = regs[..i].iter().find(|r| event(r) == e && r.id == a.id)
            {
                problems.push(problem(a, twice(first, a)));
            }
            seen[word] |= mask;
        }
    } else {
        // Each event read once, not once per comparison of the sort.
        let mut seen: Vec<(u64, &Registration)> = regs.iter().map(|&r| (event(r), r)).collect();
        seen.sort_unstable_by(|(a, x), (b, y)| {
            a.cmp(b)
                .then_with(|| x.id.cmp(y.id))
                .then_with(|| (x.file, x.line).cmp(&(y.file, y.line)))
        });
        for pair in seen.windows(2) {
            let ((a, x), (b, y)) = (pair[0], pair[1]);
            if a == b && x.id == y.id {
                problems.push(problem(y, twice(x, y)));
            }
        }
    }
    if types_differ {
        let list = regs
            .iter()
            .map(|r| {
                format!(
                    "{} ({}:{}) takes `{}`",
                    r.id,
                    r.file,
                    r.line,
                    r.operation_type()
                )
            })
            .collect::<Vec<_>>()
            .join("; ");
        for &reg in regs {
            problems.push(problem(
                reg,
                format!(
                    "the handlers of {} on \"{}\" disagree on the type: {list}. {}",
                    reg.operation,
                    reg.asset,
                    rename_hint(reg),
                ),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::data::Create;
    use crate::registration::{Adapter, Direct, Site};

    macro_rules! bare_entity {
        ($ty:ident) => {
            struct $ty;
            impl crate::entity::Record for $ty {
                fn table(&self) -> &str {
                    "Thing"
                }
                fn field_names(&self) -> Vec<&str> {
                    Vec::new()
                }
                fn get(&self, f: &str) -> Result<serde_json::Value, HookError> {
                    Err(crate::entity::unknown_field("Thing", f))
                }
                fn set(&mut self, f: &str, _: serde_json::Value) -> Result<(), HookError> {
                    Err(crate::entity::unknown_field("Thing", f))
                }
            }
            impl crate::Entity for $ty {
                const TABLE: &'static str = "Thing";
            }
        };
    }
    bare_entity!(Thing);
    bare_entity!(Other);

    fn go_on(
        _: &mut crate::registration::BeforeArgs<'_, Thing, Thing>,
        _: &'static Registration,
    ) -> bool {
        true
    }
    static GO_ON: SyncBefore<Create<Thing>> = go_on;

    fn reg(id: &'static str, asset: &'static str, priority: i32) -> &'static Registration {
        Box::leak(Box::new(owned(id, asset, priority)))
    }

    /// [`reg`] before it is leaked, for struct updates.
    fn owned(id: &'static str, asset: &'static str, priority: i32) -> Registration {
        Registration {
            id,
            operation: "data.create",
            asset,
            phase: Phase::Before,
            kind: Kind::Sync,
            priority,
            mode: Mode::Blocking,
            timeout: None,
            client_only: false,
            on_error: false,
            context: false,
            params: &[],
            file: "table.rs",
            line: 1,
            doc: "",
            payload: "Thing",
            op_type: TypeId::of::<Create<Thing>>,
            op_type_name: std::any::type_name::<Create<Thing>>,
            adapter: Adapter::own(&GO_ON),
            state: crate::stats::HandlerState::new(),
        }
    }

    /// Built as the attributes build them, at compile time.
    static BUILT: Registration = Registration::of_data::<Create<Thing>>(
        "before_create",
        crate::registration::asset_key("Thing"),
        Registration::new::<Create<Thing>>(
            Site(
                "m::built",
                "Thing",
                false,
                false,
                crate::registration::Options::DEFAULT,
                "table.rs",
                7,
                "A handler.",
                "Thing",
            ),
            Phase::Before,
            Kind::Sync,
            Adapter::own(&GO_ON),
        ),
    );

    static WITH_OPTIONS: Registration = Registration::new::<Create<Thing>>(
        Site(
            "m::with_options",
            "Thing",
            false,
            true,
            crate::registration::Options {
                priority: -3,
                mode: Mode::Blocking,
                timeout: Some(std::time::Duration::from_millis(250)),
                client_only: true,
                params: &[("role", "admin")],
            },
            "table.rs",
            9,
            "",
            "Thing",
        ),
        Phase::Before,
        Kind::Sync,
        Adapter::own(&GO_ON),
    );

    #[test]
    fn a_registration_built_by_its_constructor_names_its_operation_and_types() {
        assert_eq!(BUILT.operation, "data.create");
        assert_eq!(BUILT.asset, "Thing");
        assert_eq!((BUILT.op_type)(), TypeId::of::<Create<Thing>>());
        assert_eq!(
            BUILT.operation_type(),
            std::any::type_name::<Create<Thing>>()
        );
        assert_eq!(
            (BUILT.id, BUILT.line, BUILT.doc),
            ("m::built", 7, "A handler.")
        );
        // No options: the defaults, and a fresh state.
        assert_eq!(
            (BUILT.priority, BUILT.mode, BUILT.timeout),
            (0, Mode::Blocking, None)
        );
        assert!(!BUILT.client_only && !BUILT.context && BUILT.params.is_empty());
        assert!(BUILT.enabled());
        assert_eq!(BUILT.stats().calls, 0);
    }

    #[test]
    fn a_registration_built_by_its_constructor_keeps_the_attributes_options() {
        assert_eq!(WITH_OPTIONS.priority, -3);
        assert_eq!(
            WITH_OPTIONS.timeout,
            Some(std::time::Duration::from_millis(250))
        );
        assert!(WITH_OPTIONS.client_only && WITH_OPTIONS.context);
        assert_eq!(WITH_OPTIONS.params, &[("role", "admin")]);
        // And the table takes both as any registration.
        let table = Table::from_registrations(vec![&WITH_OPTIONS, &BUILT]).unwrap();
        let ids: Vec<_> = table
            .handlers("data.create", "Thing")
            .iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(ids, ["m::with_options", "m::built"]);
    }

    #[test]
    fn slots_order_handlers_by_priority_then_id_whatever_the_link_order() {
        let regs = [
            reg("m::c", "Thing", 0),
            reg("m::b", "Thing", 0),
            reg("m::a", "Thing", 5),
            reg("m::z", "Thing", -1),
        ];
        for rotation in 0..regs.len() {
            let mut linked = regs.to_vec();
            linked.rotate_left(rotation);
            let table = Table::from_registrations(linked).unwrap();
            let ids: Vec<_> = table
                .handlers("data.create", "Thing")
                .iter()
                .map(|r| r.id)
                .collect();
            assert_eq!(ids, ["m::z", "m::b", "m::c", "m::a"]);
        }
    }

    #[test]
    fn the_hashed_sort_gives_the_order_of_the_names_whatever_the_link_order() {
        // Equal names at different addresses, several slots, priorities and phases, scrambled.
        let mut regs = Vec::new();
        for n in 0..300_u32 {
            let asset: &'static str = Box::leak(format!("Asset{}", n % 7).into_boxed_str());
            let id: &'static str = Box::leak(format!("app::h{}", n % 11).into_boxed_str());
            let reg = owned(id, asset, (n % 3) as i32 - 1);
            let reg: &'static Registration = Box::leak(Box::new(Registration {
                phase: if n % 2 == 0 {
                    Phase::Before
                } else {
                    Phase::After
                },
                operation: if n % 5 == 0 {
                    "data.update"
                } else {
                    "data.create"
                },
                ..reg
            }));
            regs.push(reg);
        }
        let ids = |regs: &[&'static Registration]| {
            regs.iter()
                .map(|r| (r.operation, r.asset, r.phase, r.priority, r.id))
                .collect::<Vec<_>>()
        };
        // Not through the table, which would refuse the duplicate ids.
        let Sorted {
            regs: mut table,
            slots,
        } = sorted(regs.clone());
        for slot in slots {
            sort_slot(&mut table[slot.range]);
        }
        assert_eq!(ids(&table), ids(&sorted_by_names(regs)));
    }

    #[test]
    fn every_slot_is_found_by_its_names_and_no_other() {
        // Equal names at other addresses, several operations and assets, scrambled.
        let mut regs = Vec::new();
        for n in 0..200_u32 {
            let asset: &'static str = Box::leak(format!("Asset{}", n % 9).into_boxed_str());
            let id: &'static str = Box::leak(format!("app::h{n}").into_boxed_str());
            let operation = ["data.update", "data.create", "data.find"][(n % 3) as usize];
            regs.push(&*Box::leak(Box::new(Registration {
                operation,
                ..owned(id, asset, (n % 5) as i32)
            })));
        }
        let table = Table::from_registrations(regs.clone()).unwrap();
        let expected = sorted_by_names(regs);
        for operation in ["data.create", "data.update", "data.find", "data.delete"] {
            for asset in (0..10).map(|a| format!("Asset{a}")) {
                let found: Vec<_> = table
                    .handlers(operation, &asset)
                    .iter()
                    .map(|r| r.id)
                    .collect();
                let wanted: Vec<_> = expected
                    .iter()
                    .filter(|r| r.operation == operation && r.asset == asset)
                    .map(|r| r.id)
                    .collect();
                assert_eq!(found, wanted, "{operation} on {asset}");
            }
        }
        assert!(table.handlers("data.create", "").is_empty());
        assert!(table.handlers("data", "Asset1").is_empty());
    }

    /// The table order by a plain comparison sort on the names.
    fn sorted_by_names(mut regs: Vec<&'static Registration>) -> Vec<&'static Registration> {
        regs.sort_by_key(|r| (r.operation, r.asset, r.phase, r.priority, r.id));
        regs
    }

    #[test]
    fn an_empty_asset_is_reported_with_the_handler() {
        let err = Table::from_registrations([reg("m::blank", "", 0)]).unwrap_err();
        assert_eq!(err.problems.len(), 1);
        assert_eq!(err.problems[0].handler, "m::blank");
        assert!(err.problems[0].problem.contains("asset is empty"));
    }

    #[test]
    fn a_handler_registered_twice_for_one_event_is_reported_with_both_places() {
        let second = |line| {
            &*Box::leak(Box::new(Registration {
                line,
                ..owned("m::twice", "Thing", 9)
            }))
        };
        let err = Table::from_registrations([reg("m::twice", "Thing", 0), second(7)]).unwrap_err();
        assert_eq!(err.problems.len(), 1);
        let problem = &err.problems[0].problem;
        assert!(problem.contains("registered twice"), "{err}");
        assert!(problem.contains("table.rs:1 and table.rs:7"), "{err}");
        // A large slot (compared by a sort) says the same.
        let mut many: Vec<_> = (0..40)
            .map(|i| reg(Box::leak(format!("m::h{i}").into_boxed_str()), "Thing", i))
            .collect();
        many.extend([reg("m::twice", "Thing", 0), second(7)]);
        let err = Table::from_registrations(many).unwrap_err();
        assert_eq!(err.problems.len(), 1, "{err}");
        assert!(
            err.problems[0]
                .problem
                .contains("table.rs:1 and table.rs:7"),
            "{err}"
        );
    }

    #[test]
    fn the_name_hasher_tells_byte_keys_apart_by_their_length_too() {
        let hash = |bytes: &[u8]| {
            let mut h = NameHasher::default();
            h.write(bytes);
            h.finish()
        };
        // Zero bytes pad the last word: only the length tells these apart.
        assert_ne!(hash(b"data"), hash(b"data\0"));
        assert_ne!(hash(b"12345678"), hash(b"12345678\0\0\0\0\0\0\0\0"));
        assert_ne!(hash(b""), hash(b"\0"));
        assert_eq!(hash(b"Contact"), hash(b"Contact"));
    }

    #[test]
    fn ids_that_share_length_and_last_byte_are_not_taken_for_one_handler() {
        // Same length, same last byte, same phase: the event tags agree, the ids do not.
        let table = Table::from_registrations([
            reg("m::ab_x", "Thing", 0),
            reg("m::cd_x", "Thing", 1),
            reg("m::ef_x", "Thing", -1),
        ])
        .unwrap();
        let ids: Vec<_> = table
            .handlers("data.create", "Thing")
            .iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(ids, ["m::ef_x", "m::ab_x", "m::cd_x"]);
    }

    #[test]
    fn a_handler_registered_twice_is_reported_once_among_same_shaped_ids() {
        // The duplicate sits between two ids of its length and last byte, at other priorities.
        let err = Table::from_registrations([
            reg("m::dup_x", "Thing", 0),
            reg("m::abc_x", "Thing", 0),
            reg("m::dup_x", "Thing", 3),
            reg("m::efg_x", "Thing", 0),
        ])
        .unwrap_err();
        assert_eq!(err.problems.len(), 1, "{err}");
        assert_eq!(err.problems[0].handler, "m::dup_x");
    }

    /// `count` handlers of one slot, with ids `m::h0`.. and priorities that cycle.
    fn large_slot(count: usize) -> Vec<&'static Registration> {
        (0..count)
            .map(|n| {
                let id: &'static str = Box::leak(format!("m::h{n:02}").into_boxed_str());
                reg(id, "Thing", (n % 4) as i32)
            })
            .rev()
            .collect()
    }

    #[test]
    fn a_large_slot_is_sorted_like_a_small_one() {
        let regs = large_slot(40);
        let table = Table::from_registrations(regs.clone()).unwrap();
        let ids: Vec<_> = table
            .handlers("data.create", "Thing")
            .iter()
            .map(|r| r.id)
            .collect();
        let mut expected = regs;
        expected.sort_by_key(|r| (r.priority, r.id));
        assert_eq!(ids, expected.iter().map(|r| r.id).collect::<Vec<_>>());
    }

    #[test]
    fn a_handler_registered_twice_in_a_large_slot_is_reported() {
        let mut regs = large_slot(40);
        regs.push(reg("m::h07", "Thing", 9));
        let err = Table::from_registrations(regs).unwrap_err();
        assert_eq!(err.problems.len(), 1, "{err}");
        assert_eq!(err.problems[0].handler, "m::h07");
        assert!(err.problems[0].problem.contains("registered twice"));
    }

    #[test]
    fn handlers_that_disagree_on_the_type_are_reported_whether_their_names_share_an_address() {
        fn other_type() -> TypeId {
            TypeId::of::<u8>()
        }
        let apart: &'static str = Box::leak(String::from("Thing").into_boxed_str());
        for asset in ["Thing", apart] {
            let odd = Box::leak(Box::new(Registration {
                asset,
                op_type: other_type,
                ..owned("m::odd", "Thing", 0)
            }));
            let err =
                Table::from_registrations([reg("m::a", "Thing", 0), odd, reg("m::b", "Thing", 1)])
                    .unwrap_err();
            assert_eq!(err.problems.len(), 3, "{err}");
            assert!(
                err.problems
                    .iter()
                    .all(|p| p.problem.contains("disagree on the type")),
                "{err}"
            );
        }
    }

    #[test]
    fn a_slot_resolves_once_per_operation_type_and_rejects_other_types() {
        let table = Table::from_registrations([reg("m::a", "Thing", 0)]).unwrap();
        let slot = table.resolve::<Create<Thing>>("Thing").unwrap();
        assert!(slot.problem.is_none());
        assert_eq!(slot.before.len(), 1);
        let again = table.resolve::<Create<Thing>>("Thing").unwrap();
        assert!(std::ptr::eq(slot, again), "resolved once, then reused");
        let other = table.resolve::<Create<Other>>("Thing").unwrap();
        assert!(other.problem.as_ref().unwrap().message().contains("m::a"));
        assert!(table.resolve::<Create<Thing>>("Nothing").is_none());
    }

    #[test]
    fn assets_no_handler_names_share_the_slot_of_the_wildcard_handlers() {
        let table = Table::from_registrations([reg("m::named", "Thing", 0), reg("m::any", "*", 0)])
            .unwrap();
        let named = table.resolve::<Create<Thing>>("Thing").unwrap();
        assert_eq!(named.before.len(), 2);
        // Names a client makes up (a channel, a dynamic table) run the wildcard handler alone,
        // from one slot: the cache does not grow with them.
        let any = table.resolve::<Create<Thing>>("*").unwrap();
        assert_eq!(any.before.len(), 1);
        for i in 0..1_000 {
            let slot = table
                .resolve::<Create<Thing>>(&format!("made-up-{i}"))
                .unwrap();
            assert!(
                std::ptr::eq(slot, any),
                "made-up-{i} shares the slot of \"*\""
            );
        }
        let resolved = table.resolved.read().unwrap();
        let mut cached: Vec<&str> = resolved[&TypeId::of::<Create<Thing>>()]
            .keys()
            .map(String::as_str)
            .collect();
        cached.sort_unstable();
        assert_eq!(cached, ["*", "Thing"]);
    }

    fn bare_thing(_: &mut Thing) -> Result<(), HookError> {
        Ok(())
    }
    fn bare_other(_: &mut Other) -> Result<(), HookError> {
        Ok(())
    }
    const BARE_THING: Option<Direct> = Direct::of_mut(bare_thing);
    const BARE_OTHER: Option<Direct> = Direct::of_mut(bare_other);
    fn reads(_: &Thing) -> Result<(), HookError> {
        Ok(())
    }
    fn reads_with_context(_: &Thing, _: &crate::Context) -> Result<(), HookError> {
        Ok(())
    }
    const READS: Option<Direct> = Direct::of_ref(reads);
    const READS_WITH_CONTEXT: Option<Direct> = Direct::of_ref_ctx(reads_with_context);

    fn with_direct(id: &'static str, direct: Option<Direct>) -> &'static Registration {
        Box::leak(Box::new(Registration {
            // SAFETY: `GO_ON` never calls its handler.
            adapter: unsafe { Adapter::generic(&GO_ON, direct) },
            ..owned(id, "Thing", 0)
        }))
    }

    fn with_context(_: &mut Thing, _: &crate::Context) -> Result<(), HookError> {
        Ok(())
    }
    fn other_with_context(_: &mut Other, _: &crate::Context) -> Result<(), HookError> {
        Ok(())
    }
    const WITH_CONTEXT: Option<Direct> = Direct::of_mut_ctx(with_context);
    const OTHER_WITH_CONTEXT: Option<Direct> = Direct::of_mut_ctx(other_with_context);

    /// What a slot's loop of bare handlers holds: each run's shape and its number of handlers.
    type Runs = Vec<(&'static str, usize)>;

    /// The runs of `first` and of the runs chained after it.
    fn runs(first: &BareLoop) -> Runs {
        let mut out = Vec::new();
        let mut at = Some(first);
        while let Some(run) = at {
            let h = run.handlers();
            let shape = match (h.shape(), run.run.is_some()) {
                (BareShape::Plain, false) => "plain",
                (BareShape::Ctx, false) => "ctx",
                (BareShape::Unit, false) => "unit",
                (BareShape::UnitCtx, false) => "unit_ctx",
                (BareShape::Flow, true) => "flow",
                (BareShape::FlowCtx, true) => "flow_ctx",
                (BareShape::Own, true) => "own",
                (BareShape::OwnCtx, true) => "own_ctx",
                (BareShape::OwnAfter, true) => "own_after",
                (BareShape::OwnAfterCtx, true) => "own_after_ctx",
                (BareShape::Adapted, false) => "adapted",
                (other, loop_) => panic!("{other:?}, with its loop: {loop_}"),
            };
            out.push((shape, h.handlers.len()));
            at = run.next();
        }
        out
    }

    /// The runs a slot of two handlers gets, each named by the shape of its run alone (`x` then
    /// `y`). Beside another shape, a run with a loop of its own is too short to pay for the call
    /// of its loop, and one handler as itself does not pay for the chain of runs: the whole slot
    /// goes through its adapters (`None`).
    fn pair_runs(x: &'static str, y: &'static str) -> Option<Runs> {
        let loops = [
            "flow",
            "flow_ctx",
            "own",
            "own_ctx",
            "own_after",
            "own_after_ctx",
        ];
        match (x, y) {
            _ if loops.contains(&x) || loops.contains(&y) => None,
            _ if x == y => Some(vec![(x, 2)]),
            _ => Some(vec![(x, 1), (y, 1)]),
        }
    }

    /// [`bare_shape`] of two handlers, `m::a` then `m::b`, with these direct fns.
    fn bare_pair(a: Option<Direct>, b: Option<Direct>) -> Option<Runs> {
        bare_shape(vec![with_direct("m::a", a), with_direct("m::b", b)])
    }

    /// Which bare loop a slot of these before handlers gets, and with how many handlers.
    fn bare_shape(regs: Vec<&'static Registration>) -> Option<Runs> {
        let table = Table::from_registrations(regs).unwrap();
        let slot = table.resolve::<Create<Thing>>("Thing").unwrap();
        assert!(slot.problem.is_none());
        assert!(
            slot.fast_before.is_some(),
            "plain sync handlers all the same"
        );
        slot.bare_before.as_ref().map(runs)
    }

    #[test]
    fn a_slot_calls_its_handlers_as_themselves_only_when_every_one_is_bare_for_its_payload() {
        let (a, b) = (BARE_THING, BARE_OTHER);
        let (r, c) = (READS, WITH_CONTEXT);
        assert_eq!(bare_pair(a, a), Some(vec![("plain", 2)]));
        // A handler that reads its payload (`&T`) is called as itself too.
        assert_eq!(bare_pair(a, r), Some(vec![("plain", 2)]));
        // One of another bare shape: a run of its own, after the first.
        assert_eq!(bare_pair(a, c), Some(vec![("plain", 1), ("ctx", 1)]));
        // A handler that needs its adapter (no direct fn) is a run of adapters, when the others
        // called as themselves pay for the chain of runs and that run's entry (three do; two do
        // not).
        assert_eq!(
            before_runs(&[a, r, a, None]),
            Some(vec![("plain", 3), ("adapted", 1)])
        );
        assert_eq!(before_runs(&[a, r, None]), None);
        assert_eq!(bare_pair(a, None), None);
        assert_eq!(bare_pair(None, None), None, "every one through its adapter");
        // A fn of another payload type is never called as the operation's.
        assert_eq!(
            before_runs(&[a, r, a, b]),
            Some(vec![("plain", 3), ("adapted", 1)])
        );
    }

    fn unit(_: &mut Thing) {}
    fn unit_reads(_: &Thing) {}
    fn unit_with_context(_: &mut Thing, _: &crate::Context) {}
    fn unit_reads_with_context(_: &Thing, _: &crate::Context) {}
    fn unit_other(_: &mut Other) {}
    const UNIT: Option<Direct> = Direct::of_mut(unit);
    const UNIT_READS: Option<Direct> = Direct::of_ref(unit_reads);
    const UNIT_WITH_CONTEXT: Option<Direct> = Direct::of_mut_ctx(unit_with_context);
    const UNIT_READS_WITH_CONTEXT: Option<Direct> = Direct::of_ref_ctx(unit_reads_with_context);
    const UNIT_OTHER: Option<Direct> = Direct::of_mut(unit_other);

    #[test]
    fn a_slot_calls_handlers_that_return_nothing_as_themselves_when_every_one_has_that_shape() {
        let (u, ur) = (UNIT, UNIT_READS);
        let (uc, urc) = (UNIT_WITH_CONTEXT, UNIT_READS_WITH_CONTEXT);
        assert_eq!(bare_pair(u, ur), Some(vec![("unit", 2)]));
        assert_eq!(bare_pair(uc, urc), Some(vec![("unit_ctx", 2)]));
        // Mixed with a handler that returns a result, or with one that takes the context: a
        // run for each, in the slot's order.
        let (a, c) = (BARE_THING, WITH_CONTEXT);
        assert_eq!(bare_pair(u, a), Some(vec![("unit", 1), ("plain", 1)]));
        assert_eq!(bare_pair(a, u), Some(vec![("plain", 1), ("unit", 1)]));
        assert_eq!(bare_pair(u, uc), Some(vec![("unit", 1), ("unit_ctx", 1)]));
        assert_eq!(bare_pair(uc, u), Some(vec![("unit_ctx", 1), ("unit", 1)]));
        assert_eq!(bare_pair(uc, c), Some(vec![("unit_ctx", 1), ("ctx", 1)]));
        // Another payload type's handler is never called as the operation's.
        let other = UNIT_OTHER;
        assert_eq!(
            before_runs(&[u, other, ur, u]),
            Some(vec![("unit", 1), ("adapted", 1), ("unit", 2)])
        );
    }

    fn answers(_: &mut Thing) -> Result<Flow<Thing>, HookError> {
        Ok(Flow::Continue)
    }
    fn answers_reading(_: &Thing) -> Result<Flow<Thing>, HookError> {
        Ok(Flow::Continue)
    }
    fn answers_with_context(_: &mut Thing, _: &crate::Context) -> Result<Flow<Thing>, HookError> {
        Ok(Flow::Continue)
    }
    fn answers_another_output(_: &mut Thing) -> Result<Flow<Other>, HookError> {
        Ok(Flow::Continue)
    }
    /// Handlers that may answer, as the attribute hands them over: with the loop for the
    /// operation's output.
    const ANSWERS: Option<Direct> = Direct::answers_mut::<Thing, _, _>(answers);
    const ANSWERS_READING: Option<Direct> = Direct::answers_ref::<Thing, _, _>(answers_reading);
    const ANSWERS_WITH_CONTEXT: Option<Direct> =
        Direct::answers_mut_ctx::<Thing, _, _>(answers_with_context);
    const ANSWERS_ANOTHER_OUTPUT: Option<Direct> =
        Direct::answers_mut::<Other, _, _>(answers_another_output);
    /// A handler with the loop of another output than its answers'.
    const ANSWERS_OTHER_LOOP: Option<Direct> = Direct::answers_mut::<Other, _, _>(answers);
    /// The handler alone, without its loop: never called as itself.
    const ANSWERS_BARE: Option<Direct> = Direct::of_mut(answers);

    #[test]
    fn a_slot_calls_handlers_that_may_answer_as_themselves_when_every_one_answers_with_its_output()
    {
        let (f, fr) = (ANSWERS, ANSWERS_READING);
        let fc = ANSWERS_WITH_CONTEXT;
        assert_eq!(bare_pair(f, fr), Some(vec![("flow", 2)]));
        assert_eq!(bare_pair(fc, fc), Some(vec![("flow_ctx", 2)]));
        // Mixed with a handler of another shape, in either order: too short a run to call its
        // loop, so through its adapter.
        let (a, u) = (BARE_THING, UNIT);
        for ((x, xs), (y, ys)) in [
            ((f, "flow"), (a, "plain")),
            ((a, "plain"), (f, "flow")),
            ((f, "flow"), (u, "unit")),
            ((f, "flow"), (fc, "flow_ctx")),
            ((fc, "flow_ctx"), (f, "flow")),
        ] {
            assert_eq!(bare_pair(x, y), pair_runs(xs, ys));
        }
        // An answer of another type is never taken for the operation's output.
        let other = ANSWERS_ANOTHER_OUTPUT;
        assert_eq!(bare_shape(vec![with_direct("m::a", other)]), None);
        // Nor is a handler that comes without its loop, or with the loop of another output.
        for alone in [ANSWERS_BARE, ANSWERS_OTHER_LOOP] {
            assert_eq!(bare_shape(vec![with_direct("m::a", alone)]), None);
        }
    }

    /// A service's own error type.
    #[derive(Debug)]
    struct Refused;

    impl From<Refused> for HookError {
        fn from(_: Refused) -> HookError {
            HookError::rejected("refused")
        }
    }

    /// A result of its own, read as `#[before_create]` reads it.
    type Own<R> = crate::diag::before_create::Own<R>;
    type Plain = Result<(), Refused>;
    fn own(_: &mut Thing) -> Plain {
        Ok(())
    }
    fn own_reading(_: &Thing) -> Plain {
        Ok(())
    }
    fn own_with_context(_: &mut Thing, _: &crate::Context) -> Plain {
        Ok(())
    }
    fn own_reading_with_context(_: &Thing, _: &crate::Context) -> Plain {
        Ok(())
    }
    fn own_answers(_: &mut Thing) -> Result<Flow<Thing>, Refused> {
        Ok(Flow::Continue)
    }
    fn own_other(_: &mut Other) -> Plain {
        Ok(())
    }
    /// Handlers with a result of their own, as the attribute hands them over: with the loop of
    /// the operation's output and their result.
    const OWN: Option<Direct> = Direct::own_mut::<Thing, _, Own<Plain>>(own);
    const OWN_READING: Option<Direct> = Direct::own_ref::<Thing, _, Own<Plain>>(own_reading);
    const OWN_WITH_CONTEXT: Option<Direct> =
        Direct::own_mut_ctx::<Thing, _, Own<Plain>>(own_with_context);
    const OWN_READING_WITH_CONTEXT: Option<Direct> =
        Direct::own_ref_ctx::<Thing, _, Own<Plain>>(own_reading_with_context);
    const OWN_ANSWERS: Option<Direct> =
        Direct::own_mut::<Thing, _, Own<Result<Flow<Thing>, Refused>>>(own_answers);
    /// A handler of another payload type, and one whose loop is for another output.
    const OWN_OTHER_PAYLOAD: Option<Direct> = Direct::own_mut::<Thing, _, Own<Plain>>(own_other);
    const OWN_OTHER_LOOP: Option<Direct> = Direct::own_mut::<Other, _, Own<Plain>>(own);

    #[test]
    fn a_slot_calls_handlers_with_a_result_of_their_own_as_themselves_when_every_one_has_the_same()
    {
        let (o, or) = (OWN, OWN_READING);
        let (oc, orc) = (OWN_WITH_CONTEXT, OWN_READING_WITH_CONTEXT);
        assert_eq!(bare_pair(o, or), Some(vec![("own", 2)]));
        assert_eq!(bare_pair(oc, orc), Some(vec![("own_ctx", 2)]));
        assert_eq!(bare_pair(OWN_ANSWERS, OWN_ANSWERS), Some(vec![("own", 2)]));
        // Another result type (one loop calls every handler as one type), another shape, the
        // context taken by one only: runs too short to call their loops, in either order.
        let (oa, a, f) = (OWN_ANSWERS, BARE_THING, ANSWERS);
        for ((x, xs), (y, ys)) in [
            ((o, "own"), (oa, "own")),
            ((oa, "own"), (o, "own")),
            ((o, "own"), (a, "plain")),
            ((a, "plain"), (o, "own")),
            ((o, "own"), (f, "flow")),
            ((f, "flow"), (o, "own")),
            ((o, "own"), (oc, "own_ctx")),
            ((oc, "own_ctx"), (o, "own")),
        ] {
            assert_eq!(bare_pair(x, y), pair_runs(xs, ys));
        }
        // Another payload type's handler is never called as the operation's, nor one whose loop
        // was compiled for another output.
        for odd in [OWN_OTHER_PAYLOAD, OWN_OTHER_LOOP] {
            assert_eq!(bare_shape(vec![with_direct("m::a", odd)]), None);
        }
    }

    fn after_go_on(
        _: &mut Result<Thing, HookError>,
        _: &crate::Context,
        _: &'static Registration,
    ) -> Result<(), HookError> {
        Ok(())
    }
    static AFTER_GO_ON: SyncAfter<Create<Thing>> = after_go_on;

    /// An after handler with this direct fn.
    fn after_with_direct(id: &'static str, direct: Option<Direct>) -> &'static Registration {
        Box::leak(Box::new(Registration {
            phase: Phase::After,
            // SAFETY: `AFTER_GO_ON` never calls its handler.
            adapter: unsafe { Adapter::generic(&AFTER_GO_ON, direct) },
            ..owned(id, "Thing", 0)
        }))
    }

    /// The ids of a test slot's handlers, in their run order (they share a priority).
    const IDS: [&str; 8] = [
        "m::a", "m::b", "m::c", "m::d", "m::e", "m::f", "m::g", "m::h",
    ];

    /// Which bare loop a slot of these after handlers gets, and with how many handlers.
    fn bare_after_shape(directs: &[Option<Direct>]) -> Option<Runs> {
        assert!(directs.len() <= IDS.len());
        let regs = directs
            .iter()
            .zip(IDS)
            .map(|(d, id)| after_with_direct(id, *d));
        let table = Table::from_registrations(regs).unwrap();
        let slot = table.resolve::<Create<Thing>>("Thing").unwrap();
        assert!(slot.problem.is_none());
        assert!(
            slot.fast_after.is_some(),
            "plain sync handlers all the same"
        );
        slot.bare_after.as_ref().map(runs)
    }

    type OwnAfter<R> = crate::diag::after_create::Own<R>;
    const OWN_AFTER: Option<Direct> = Direct::own_after_mut::<_, OwnAfter<Plain>>(own);
    const OWN_AFTER_READING: Option<Direct> =
        Direct::own_after_ref::<_, OwnAfter<Plain>>(own_reading);
    const OWN_AFTER_WITH_CONTEXT: Option<Direct> =
        Direct::own_after_mut_ctx::<_, OwnAfter<Plain>>(own_with_context);
    const OWN_AFTER_READING_WITH_CONTEXT: Option<Direct> =
        Direct::own_after_ref_ctx::<_, OwnAfter<Plain>>(own_reading_with_context);
    const OWN_AFTER_OTHER_PAYLOAD: Option<Direct> =
        Direct::own_after_mut::<_, OwnAfter<Plain>>(own_other);

    #[test]
    fn an_after_slot_calls_handlers_with_a_result_of_their_own_as_themselves_in_their_loop() {
        let (o, or) = (OWN_AFTER, OWN_AFTER_READING);
        let (oc, orc) = (OWN_AFTER_WITH_CONTEXT, OWN_AFTER_READING_WITH_CONTEXT);
        assert_eq!(bare_after_shape(&[o, or, o]), Some(vec![("own_after", 3)]));
        assert_eq!(
            bare_after_shape(&[oc, orc]),
            Some(vec![("own_after_ctx", 2)])
        );
        assert_eq!(
            bare_after_shape(&[BARE_THING, READS]),
            Some(vec![("plain", 2)])
        );
        // Mixed with a bare handler, or with one that takes the context: runs too short to
        // call their loops, through their adapters.
        let a = BARE_THING;
        for ((x, xs), (y, ys)) in [
            ((o, "own_after"), (a, "plain")),
            ((a, "plain"), (o, "own_after")),
            ((o, "own_after"), (oc, "own_after_ctx")),
            ((oc, "own_after_ctx"), (o, "own_after")),
        ] {
            assert_eq!(bare_after_shape(&[x, y]), pair_runs(xs, ys));
        }
        // Another payload type's handler is never called as the operation's output's.
        assert_eq!(bare_after_shape(&[OWN_AFTER_OTHER_PAYLOAD]), None);
    }

    /// Handlers whose result the attribute could not read (an alias), as it hands them over
    /// (`either_*`): with the loop of their result, and their own fn pointer type as `sig`.
    type BareResult = Result<(), HookError>;
    const EITHER_OWN: Option<Direct> = Direct::either::<fn(&mut Thing) -> Plain>(OWN);
    const EITHER_OWN_READING: Option<Direct> = Direct::either::<fn(&Thing) -> Plain>(OWN_READING);
    const EITHER_BARE: Option<Direct> = Direct::either::<fn(&mut Thing) -> BareResult>(
        Direct::own_mut::<Thing, _, Own<BareResult>>(bare_thing),
    );
    const EITHER_BARE_READING: Option<Direct> = Direct::either::<fn(&Thing) -> BareResult>(
        Direct::own_ref::<Thing, _, Own<BareResult>>(reads),
    );
    const EITHER_OWN_AFTER: Option<Direct> = Direct::either::<fn(&mut Thing) -> Plain>(OWN_AFTER);
    const EITHER_BARE_AFTER: Option<Direct> =
        Direct::either::<fn(&mut Thing) -> BareResult>(Direct::own_after_mut::<
            _,
            OwnAfter<BareResult>,
        >(bare_thing));

    #[test]
    fn a_handler_whose_result_the_attribute_could_not_read_runs_as_what_its_type_is() {
        // A bare result: the bare loop, with the handlers written out as bare ones.
        assert_eq!(
            bare_pair(EITHER_BARE, EITHER_BARE_READING),
            Some(vec![("plain", 2)])
        );
        assert_eq!(bare_pair(EITHER_BARE, BARE_THING), Some(vec![("plain", 2)]));
        assert_eq!(bare_pair(READS, EITHER_BARE), Some(vec![("plain", 2)]));
        assert_eq!(
            bare_after_shape(&[EITHER_BARE_AFTER, READS]),
            Some(vec![("plain", 2)])
        );
        // A result of its own: the loop that came with it, shared with the handlers whose
        // result is written out as the same type.
        assert_eq!(
            bare_pair(EITHER_OWN, EITHER_OWN_READING),
            Some(vec![("own", 2)])
        );
        assert_eq!(bare_pair(EITHER_OWN, OWN), Some(vec![("own", 2)]));
        assert_eq!(bare_pair(OWN_READING, EITHER_OWN), Some(vec![("own", 2)]));
        assert_eq!(
            bare_after_shape(&[OWN_AFTER, EITHER_OWN_AFTER]),
            Some(vec![("own_after", 2)])
        );
        // Two handlers, one with a loop of its own beside another shape or result: the
        // adapters cost less than calling that loop.
        for ((x, xs), (y, ys)) in [
            ((EITHER_OWN, "own"), (BARE_THING, "plain")),
            ((EITHER_BARE, "plain"), (OWN, "own")),
            ((EITHER_OWN, "own"), (EITHER_BARE, "plain")),
            ((EITHER_OWN, "own"), (OWN_ANSWERS, "own")),
        ] {
            assert_eq!(bare_pair(x, y), pair_runs(xs, ys));
            assert_eq!(bare_pair(y, x), pair_runs(ys, xs));
        }
        // Beside another bare shape, a bare result is a run of the bare loop.
        assert_eq!(
            bare_pair(EITHER_BARE, WITH_CONTEXT),
            Some(vec![("plain", 1), ("ctx", 1)])
        );
        // Its loop is of its phase only.
        assert_eq!(bare_after_shape(&[EITHER_OWN]), None);
        assert_eq!(
            bare_shape(vec![with_direct("m::a", EITHER_OWN_AFTER)]),
            None
        );
    }

    #[test]
    fn a_handler_with_a_result_of_its_own_runs_as_itself_only_in_the_loop_of_its_phase() {
        // A before handler's loop is never taken for an after slot, nor the other way round.
        assert_eq!(bare_after_shape(&[OWN]), None);
        assert_eq!(bare_shape(vec![with_direct("m::a", OWN_AFTER)]), None);
    }

    /// The runs of before handlers `m::a`, `m::b`, ... with these direct fns, in that order.
    fn before_runs(directs: &[Option<Direct>]) -> Option<Runs> {
        assert!(directs.len() <= IDS.len());
        let regs = directs.iter().zip(IDS).map(|(d, id)| with_direct(id, *d));
        bare_shape(regs.collect())
    }

    #[test]
    fn a_slot_that_mixes_shapes_runs_each_run_of_one_shape_as_itself_in_order() {
        let (a, r, c, u) = (BARE_THING, READS, WITH_CONTEXT, UNIT);
        // Handlers of one shape that follow each other share a run; each change starts one.
        assert_eq!(
            before_runs(&[a, r, c, u, u]),
            Some(vec![("plain", 2), ("ctx", 1), ("unit", 2)])
        );
        assert_eq!(
            before_runs(&[a, c, a]),
            Some(vec![("plain", 1), ("ctx", 1), ("plain", 1)])
        );
        // A run that brings its loop is a call of that loop when its handlers save more than
        // the call costs (five before the default, three after); a shorter one goes through
        // their adapters, a run of its own. And the runs must save more than their chain costs,
        // or the whole slot goes through its adapters.
        let (o, oa, f) = (OWN, OWN_ANSWERS, ANSWERS);
        assert_eq!(
            before_runs(&[o, o, o, o, o, a, a]),
            Some(vec![("own", 5), ("plain", 2)])
        );
        assert_eq!(before_runs(&[o, o, o, o, o, a]), None, "5 + 14 saved");
        assert_eq!(
            before_runs(&[o, o, o, o, a, a]),
            None,
            "two save 28, less the adapters' run"
        );
        assert_eq!(
            before_runs(&[o, o, o, o, a, a, r]),
            Some(vec![("adapted", 4), ("plain", 3)])
        );
        assert_eq!(
            before_runs(&[o, a, a, a]),
            Some(vec![("adapted", 1), ("plain", 3)])
        );
        assert_eq!(
            before_runs(&[a, a, r, f, f]),
            Some(vec![("plain", 3), ("adapted", 2)])
        );
        // Runs of adapters next to each other are one; every one through its adapter is the
        // loop of adapters.
        assert_eq!(before_runs(&[o, o, o, o, oa, oa]), None);
        assert_eq!(before_runs(&[o, oa, f]), None);
        // A handler with no direct fn is a run of its adapter, wherever it is.
        assert_eq!(
            before_runs(&[a, c, u, None]),
            Some(vec![("plain", 1), ("ctx", 1), ("unit", 1), ("adapted", 1)])
        );
        assert_eq!(
            before_runs(&[None, a, r, a, a, r, None]),
            Some(vec![("adapted", 1), ("plain", 5), ("adapted", 1)])
        );
        // After, the same: a run of the bare shape and one with its loop or its adapters.
        let oa_ = OWN_AFTER;
        assert_eq!(
            bare_after_shape(&[oa_, a, r, a]),
            Some(vec![("adapted", 1), ("plain", 3)])
        );
        assert_eq!(
            bare_after_shape(&[oa_, oa_, oa_, OWN_AFTER_WITH_CONTEXT]),
            None,
            "three save 2"
        );
        assert_eq!(
            bare_after_shape(&[oa_, oa_, oa_, oa_, oa_, OWN_AFTER_WITH_CONTEXT]),
            None,
            "five save 30, less the adapter's run"
        );
        assert_eq!(
            bare_after_shape(&[a, a, oa_, oa_, oa_, oa_]),
            Some(vec![("plain", 2), ("own_after", 4)])
        );
        assert_eq!(
            bare_after_shape(&[a, a, a, OWN]),
            Some(vec![("plain", 3), ("adapted", 1)]),
            "a before handler's loop, never an after run's"
        );
    }

    #[test]
    fn a_slot_calls_handlers_that_take_the_context_as_themselves_when_every_one_does() {
        let (c, rc) = (WITH_CONTEXT, READS_WITH_CONTEXT);
        let (a, oc) = (BARE_THING, OTHER_WITH_CONTEXT);
        assert_eq!(bare_pair(c, rc), Some(vec![("ctx", 2)]));
        // Mixed with a handler that takes no context: a run for each, in either order.
        assert_eq!(bare_pair(c, a), Some(vec![("ctx", 1), ("plain", 1)]));
        assert_eq!(bare_pair(a, c), Some(vec![("plain", 1), ("ctx", 1)]));
        // Another payload type's handler is never called as the operation's.
        assert_eq!(
            before_runs(&[c, oc, rc, c]),
            Some(vec![("ctx", 1), ("adapted", 1), ("ctx", 2)])
        );
    }
}
