//! What an attribute macro emits: one `'static` [`Registration`] per handler, collected at link time
//! (linkme distributed slice by default, inventory with the `inventory` feature), plus the typed
//! adapter signatures and conversion traits the generated code calls.

use std::any::{Any, TypeId};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

use crate::context::Context;
use crate::error::HookError;
use crate::event::{Flow, Operation, Phase};
use crate::future::FutureSlot;

/// A boxed, `Send` future, as async handlers return through their adapter.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Where a sync before handler leaves the call's result when it answers or rejects the call.
pub type Early<O> = Option<Result<O, HookError>>;

/// A sync before handler, adapted to its operation: `true` to go on; `false` when it answered or
/// rejected the call, with the answer or the error written into the [`Early`] slot. The common case
/// (go on) returns in a register, whatever the size of the operation's output.
///
/// The adapter takes the call's input, context and answer slot behind one pointer
/// ([`BeforeArgs`]): a loop of adapters then passes one argument per handler, not three. It also
/// gets its handler's registration: a generic adapter, one for every handler of a shape, reads the
/// handler it calls there ([`Adapter`]); an adapter written for its handler ignores it.
pub type SyncBefore<Op> = for<'a, 'b> fn(
    &'b mut BeforeArgs<'a, <Op as Operation>::Input, <Op as Operation>::Output>,
    &'static Registration,
) -> bool;

/// What a [`SyncBefore`] adapter works on: the call's input, its context and the [`Early`] slot
/// for an answer or a rejection (`I` and `O` are the operation's input and output). The
/// dispatcher builds one per call and hands every adapter a pointer to it; an adapter can only
/// take the parts ([`BeforeArgs::parts`]), not replace them.
#[doc(hidden)]
#[repr(C)]
pub struct BeforeArgs<'a, I, O> {
    // The layout is `ErasedBeforeArgs`'s (`table.rs`): three thin pointers, in this order.
    input: &'a mut I,
    ctx: &'a Context,
    early: &'a mut Early<O>,
}

impl<'a, I, O> BeforeArgs<'a, I, O> {
    /// The arguments of one call of sync before adapters.
    #[inline(always)]
    pub fn new(input: &'a mut I, ctx: &'a Context, early: &'a mut Early<O>) -> Self {
        BeforeArgs { input, ctx, early }
    }

    /// The input, the context and the answer slot, borrowed for the adapter's call.
    #[inline(always)]
    pub fn parts(&mut self) -> (&mut I, &'a Context, &mut Early<O>) {
        (&mut *self.input, self.ctx, &mut *self.early)
    }
}

/// An async before handler, adapted to its operation: it puts the handler's future into the
/// dispatcher's [`FutureSlot`] and polls it once with the task's context
/// ([`FutureSlot::put_poll`]). A handler that does not wait is done when this returns; one that
/// waits stays in the slot, which the dispatcher awaits. No allocation per call either way.
///
/// The future's output is `Ok(true)` to go on, `Ok(false)` when the handler answered (the answer
/// is in the [`Early`] slot) or the rejection; the first poll comes back as a [`Polled`], which
/// fits in two registers.
pub type AsyncBefore<Op> = for<'a, 's, 'c, 'w> fn(
    &'a mut <Op as Operation>::Input,
    &'a Context,
    &'a mut Early<<Op as Operation>::Output>,
    Pin<&'s mut FutureSlot<'a, Result<bool, HookError>>>,
    &'c mut TaskContext<'w>,
) -> Polled;

/// A sync after handler, adapted to its operation; like [`SyncBefore`], it gets its handler's
/// registration.
pub type SyncAfter<Op> = for<'a> fn(
    &'a mut Result<<Op as Operation>::Output, HookError>,
    &'a Context,
    &'static Registration,
) -> Result<(), HookError>;

/// An async after handler, adapted to its operation, as [`AsyncBefore`].
pub type AsyncAfter<Op> = for<'a, 's, 'c, 'w> fn(
    &'a mut Result<<Op as Operation>::Output, HookError>,
    &'a Context,
    Pin<&'s mut FutureSlot<'a, Result<(), HookError>>>,
    &'c mut TaskContext<'w>,
) -> Polled;

/// The first poll of an async handler, as its adapter ([`AsyncBefore`], [`AsyncAfter`]) hands it
/// to the dispatcher: a state and an error, two scalars, which come back in two registers. (A
/// `Poll<Result<bool, HookError>>` comes back through memory, written with byte stores that the
/// caller's wider load then has to wait for.)
#[doc(hidden)]
#[derive(Debug)]
pub struct Polled {
    state: PollState,
    /// Set when the handler finished with an error (then `state` says nothing).
    error: Option<HookError>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum PollState {
    /// The handler waits: its future is in the slot.
    Waiting,
    /// Done: `Ok(true)` (a before handler lets the call go on), or `Ok(())`.
    Done,
    /// Done: `Ok(false)` (a before handler answered; the answer is in [`Early`]).
    Answered,
}

impl Polled {
    /// The first poll of an async before handler's future.
    #[inline(always)]
    pub fn before(polled: Poll<Result<bool, HookError>>) -> Polled {
        let (state, error) = match polled {
            Poll::Pending => (PollState::Waiting, None),
            Poll::Ready(Ok(true)) => (PollState::Done, None),
            Poll::Ready(Ok(false)) => (PollState::Answered, None),
            Poll::Ready(Err(e)) => (PollState::Done, Some(e)),
        };
        Polled { state, error }
    }

    /// The first poll of an async after handler's future.
    #[inline(always)]
    pub fn after(polled: Poll<Result<(), HookError>>) -> Polled {
        let (state, error) = match polled {
            Poll::Pending => (PollState::Waiting, None),
            Poll::Ready(Ok(())) => (PollState::Done, None),
            Poll::Ready(Err(e)) => (PollState::Done, Some(e)),
        };
        Polled { state, error }
    }

    /// Back to the before handler's poll.
    #[inline(always)]
    pub(crate) fn into_before(self) -> Poll<Result<bool, HookError>> {
        match (self.error, self.state) {
            (Some(e), _) => Poll::Ready(Err(e)),
            (None, PollState::Waiting) => Poll::Pending,
            (None, PollState::Done) => Poll::Ready(Ok(true)),
            (None, PollState::Answered) => Poll::Ready(Ok(false)),
        }
    }

    /// Back to the after handler's poll. (`Answered` is never made for one; read as done.)
    #[inline(always)]
    pub(crate) fn into_after(self) -> Poll<Result<(), HookError>> {
        match (self.error, self.state) {
            (Some(e), _) => Poll::Ready(Err(e)),
            (None, PollState::Waiting) => Poll::Pending,
            (None, PollState::Done | PollState::Answered) => Poll::Ready(Ok(())),
        }
    }
}

/// A background after handler, adapted to its operation: from the result, the owned job to queue
/// (`None` when the handler does not run on this result).
pub type BackgroundAfter<Op> = for<'a> fn(
    &'a Result<<Op as Operation>::Output, HookError>,
    &'a Context,
) -> Option<BoxFuture<'static, Result<(), HookError>>>;

/// A handler shape the dispatcher calls with no adapter in between:
/// `fn(&mut T) -> Result<(), HookError>` (or the same taking `&T`), where `T` is the operation's
/// input (a before handler) or its output (an after handler, which then runs on success only). A
/// slot whose sync handlers all have this shape, or all have one of the shapes [`BareCtx`],
/// [`BareUnit`], [`BareUnitCtx`], [`BareFlow`] or [`BareFlowCtx`], runs them straight from its
/// table, one indirect call each (see [`Registration::direct`]).
pub type Bare<T> = fn(&mut T) -> Result<(), HookError>;

/// A bare handler shape: [`Bare`] with the call's context as its second parameter,
/// `fn(&mut T, &Context) -> Result<(), HookError>` (or the same taking `&T`).
pub type BareCtx<T> = fn(&mut T, &Context) -> Result<(), HookError>;

/// A bare handler shape: a handler that returns nothing, `fn(&mut T)` (or `fn(&T)`). It cannot
/// reject the call, so the loop that calls it checks no result.
pub type BareUnit<T> = fn(&mut T);

/// A bare handler shape: [`BareUnit`] with the call's context, `fn(&mut T, &Context)` (or the
/// same taking `&T`).
pub type BareUnitCtx<T> = fn(&mut T, &Context);

/// A bare handler shape for a before handler that may answer the call:
/// `fn(&mut T) -> Result<Flow<O>, HookError>` (or the same taking `&T`), where `T` is the
/// operation's input and `O` its output. Its loop is compiled once for each output type, not once
/// for all operations as the other shapes' are, since the result's layout depends on `O`; the
/// attribute hands such a handler over with that loop ([`Direct`]).
pub type BareFlow<T, O> = fn(&mut T) -> Result<Flow<O>, HookError>;

/// A bare handler shape: [`BareFlow`] with the call's context,
/// `fn(&mut T, &Context) -> Result<Flow<O>, HookError>` (or the same taking `&T`).
pub type BareFlowCtx<T, O> = fn(&mut T, &Context) -> Result<Flow<O>, HookError>;

/// The loop that runs a slot's [`BareFlow`] (or [`BareFlowCtx`]) handlers for one output type
/// `O`, type-erased where the dispatcher's own types would show: the runtime, whether a handler
/// runs for clients only, the slot's bare loop, the call's context, a pointer to its input and
/// one to its `Early<O>`. `true` when a handler stopped the call, its answer or rejection left in
/// the `Early<O>`.
#[doc(hidden)]
pub type AnswerRun =
    unsafe fn(&crate::Hooks, bool, *const (), &mut Context, *mut (), *mut ()) -> bool;

/// The type whose `TypeId` names a handler that may answer the call ([`BareFlow`],
/// [`BareFlowCtx`]) in its [`Direct`]: its own fn pointer type `F` with the output `O` whose loop
/// came with it, so that the table takes that loop for an operation of that output only. Never
/// made.
#[doc(hidden)]
pub struct Answers<F, O: 'static>(std::marker::PhantomData<(F, fn() -> O)>);

/// The type whose `TypeId` names a handler with a result of its own in its [`Direct`]: one that
/// returns its own error type (`Result<(), E>`, or before `Result<Flow<O>, E>`) or a `Flow<O>`
/// alone. `F` is the type its loop calls it as, its payload erased and its result named by the
/// [`OwnResult`] or [`OwnAfterResult`] that reads it, `O` the output that loop was compiled for
/// (`()` for an after handler's, which answers nothing). Handlers of one slot
/// share a loop only when they have the same such type, as the loop calls each as `F`. Never
/// made.
#[doc(hidden)]
pub struct Owns<F, O: 'static>(std::marker::PhantomData<(F, fn() -> O)>);

/// A plain sync handler as a fn pointer of its own signature, beside its adapter in
/// [`Adapter`]'s `direct`: the pointer with its type erased, the `TypeId` of that type (by
/// which the table tells whether it is one of the operation's bare shapes), and, for a handler
/// that may answer the call, the loop that runs such handlers for the operation's output
/// ([`AnswerRun`]); for a before handler with a result of its own ([`Owns`]), the loop compiled
/// for that output and that result, with the types the table checks before it takes that loop
/// ([`OwnTypes`]). Such a loop is compiled once for each type it is for, so it is named here, by
/// the expansion of a handler that needs it: a service whose operations have no such handler
/// compiles none.
///
/// A generic adapter's constructor (`hooks_core::diag`) makes one with the constructor below for
/// the handler's parameters, from the handler's fn pointer, and keeps it with the adapter
/// ([`Adapter`]), which calls the handler through it.
#[doc(hidden)]
#[derive(Clone, Copy)]
pub struct Direct {
    /// The handler, as `fn()`: never called as this type, only as the one `sig` names (or a type
    /// ABI-compatible with it, see `ErasedBare` in `table.rs`).
    pub(crate) f: fn(),
    /// `TypeId::of` the handler's fn pointer type, or of [`Answers`] of it and its output.
    pub(crate) sig: fn() -> TypeId,
    /// The [`AnswerRun`] of that output (`run_answers::<O>`), as `fn()`, for a handler that may
    /// answer; for one with a result of its own, the loop of its output and result types: an
    /// [`AnswerRun`] before (`run_own`), an [`AfterRun`] after (`run_own_after`).
    pub(crate) run: Option<fn()>,
    /// For a handler with a result of its own ([`Owns`]): the types its loop was compiled for,
    /// which the table checks against the operation's.
    pub(crate) own: Option<OwnTypes>,
}

/// What the table checks of a handler with a result of its own ([`Owns`]) before it runs the
/// handler in the loop that came with it: the handler's payload type and the output type its loop
/// was compiled for (by `TypeId`; `()` for an after handler's, which answers nothing), its phase,
/// whether it takes the context, and the [`Owns`] type that names its loop.
#[derive(Clone, Copy)]
pub(crate) struct OwnTypes {
    /// `TypeId::of` the [`Owns`] type that names the handler's loop: handlers of one slot share a
    /// loop only when theirs are the same. It is also the handler's `sig`, except for a handler
    /// whose result the attribute could not read ([`Direct::either`]).
    pub(crate) sig: fn() -> TypeId,
    /// `TypeId::of` the payload and of the output, in this order.
    pub(crate) types: fn() -> [TypeId; 2],
    /// Whether its loop is an after loop ([`AfterRun`]) rather than a before loop
    /// ([`AnswerRun`]).
    pub(crate) after: bool,
    /// Whether the handler takes the context after its payload.
    pub(crate) ctx: bool,
}

/// The `TypeId`s of an [`OwnTypes`].
fn own_types<A: ?Sized + 'static, O: 'static>() -> [TypeId; 2] {
    [TypeId::of::<A>(), TypeId::of::<O>()]
}

impl Direct {
    /// Whether the handler's fn pointer is a `T` (for a handler that may answer, whether `T` is
    /// [`Answers`] of it and its output).
    pub fn is<T: 'static>(&self) -> bool {
        (self.sig)() == TypeId::of::<T>()
    }

    /// A handler whose result type the attribute could not read (an alias: `-> MyResult`,
    /// `-> crate::Result<()>`), made by an own constructor (`own_mut` and the like) and given
    /// back with its `sig` of its own fn pointer type `S`. The table then takes it as what the
    /// type turns out to be: one of the bare shapes, by that `sig`, or else a handler with a
    /// result of its own, run in the loop that came with it (named by [`OwnTypes::sig`]).
    pub const fn either<S: 'static>(direct: Option<Direct>) -> Option<Direct> {
        match direct {
            Some(direct) => Some(Direct {
                sig: TypeId::of::<S>,
                ..direct
            }),
            None => None,
        }
    }
}

impl std::fmt::Debug for Direct {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Direct")
            .field("answers", &self.run.is_some())
            .field("own", &self.own.is_some())
            .finish_non_exhaustive()
    }
}

/// The constructors of [`Direct`], one for each way a bare handler may take its payload and
/// context: a plain one, and one for a handler that may answer, whose output type comes first.
macro_rules! direct_constructors {
    ($($(#[$doc:meta])* $plain:ident, $answers:ident: $sig:ty;)*) => {
        impl Direct {
            $(
                $(#[$doc])*
                pub const fn $plain<A: ?Sized + 'static, R: 'static>(f: $sig) -> Option<Direct> {
                    Some(Direct {
                        // SAFETY: a fn pointer as another fn pointer type, read back only as
                        // the type `sig` names (see the field).
                        f: unsafe { std::mem::transmute::<$sig, fn()>(f) },
                        sig: TypeId::of::<$sig>,
                        run: None,
                        own: None,
                    })
                }

                $(#[$doc])*
                /// It may answer the call, whose output is `O`.
                pub const fn $answers<O: 'static, A: ?Sized + 'static, R: 'static>(
                    f: $sig,
                ) -> Option<Direct> {
                    let run: AnswerRun = crate::dispatch::run_answers::<O>;
                    Some(Direct {
                        // SAFETY: as above.
                        f: unsafe { std::mem::transmute::<$sig, fn()>(f) },
                        sig: TypeId::of::<Answers<$sig, O>>,
                        // SAFETY: an `unsafe fn` pointer as `fn()`, read back only as the
                        // `AnswerRun` of the output `sig` names.
                        run: Some(unsafe { std::mem::transmute::<AnswerRun, fn()>(run) }),
                        own: None,
                    })
                }
            )*
        }
    };
}

direct_constructors! {
    /// A handler that takes its payload by `&mut`.
    of_mut, answers_mut: fn(&mut A) -> R;
    /// A handler that takes its payload by `&`.
    of_ref, answers_ref: fn(&A) -> R;
    /// A handler that takes its payload by `&mut`, and the context.
    of_mut_ctx, answers_mut_ctx: fn(&mut A, &Context) -> R;
    /// A handler that takes its payload by `&`, and the context.
    of_ref_ctx, answers_ref_ctx: fn(&A, &Context) -> R;
}

/// The constructors of [`Direct`] for a before handler with a result of its own ([`Owns`]), one
/// for each way it may take its payload: `$erased` is the type its loop calls it as, the payload
/// erased (the same for `&mut A` and `&A`), and `$shape` the type that loop reads it back as.
macro_rules! own_constructors {
    ($($(#[$doc:meta])* $name:ident: $sig:ty, $erased:ty, $shape:ident, $ctx:literal;)*) => {
        impl Direct {
            $(
                $(#[$doc])*
                /// Its result is its own, read through `V` ([`OwnResult`]); the call's output is
                /// `O`.
                pub const fn $name<O: 'static, A: ?Sized + 'static, V: OwnResult<O> + 'static>(
                    f: $sig,
                ) -> Option<Direct> {
                    let run: AnswerRun = crate::dispatch::run_own::<crate::table::$shape<O, V>>;
                    Some(Direct {
                        // SAFETY: a fn pointer as another fn pointer type, read back only as
                        // `$erased` (see `OwnFn` in `table.rs`), once the table has checked `A`
                        // against the operation's input.
                        f: unsafe { std::mem::transmute::<$sig, fn()>(f) },
                        sig: TypeId::of::<Owns<$erased, O>>,
                        // SAFETY: an `unsafe fn` pointer as `fn()`, read back only as the
                        // `AnswerRun` that `sig` names.
                        run: Some(unsafe { std::mem::transmute::<AnswerRun, fn()>(run) }),
                        own: Some(OwnTypes {
                            sig: TypeId::of::<Owns<$erased, O>>,
                            types: own_types::<A, O>,
                            after: false,
                            ctx: $ctx,
                        }),
                    })
                }
            )*
        }
    };
}

own_constructors! {
    /// A before handler that takes its payload by `&mut`.
    own_mut: fn(&mut A) -> V::Result, fn(*mut ()) -> V, OwnFn, false;
    /// A before handler that takes its payload by `&`.
    own_ref: fn(&A) -> V::Result, fn(*mut ()) -> V, OwnFn, false;
    /// A before handler that takes its payload by `&mut`, and the context.
    own_mut_ctx: fn(&mut A, &Context) -> V::Result, fn(*mut (), &Context) -> V, OwnCtxFn, true;
    /// A before handler that takes its payload by `&`, and the context.
    own_ref_ctx: fn(&A, &Context) -> V::Result, fn(*mut (), &Context) -> V, OwnCtxFn, true;
}

/// The constructors of [`Direct`] for an after handler with a result of its own
/// ([`OwnAfterResult`]), as [`own_constructors!`]'s for before handlers: its loop is an
/// [`AfterRun`], compiled for that result alone.
macro_rules! own_after_constructors {
    ($($(#[$doc:meta])* $name:ident: $sig:ty, $erased:ty, $shape:ident, $ctx:literal;)*) => {
        impl Direct {
            $(
                $(#[$doc])*
                /// Its result is its own, read through `V` ([`OwnAfterResult`]).
                pub const fn $name<A: ?Sized + 'static, V: OwnAfterResult + 'static>(
                    f: $sig,
                ) -> Option<Direct> {
                    let run: AfterRun = crate::dispatch::run_own_after::<crate::table::$shape<V>>;
                    Some(Direct {
                        // SAFETY: as in `own_constructors!`.
                        f: unsafe { std::mem::transmute::<$sig, fn()>(f) },
                        sig: TypeId::of::<Owns<$erased, ()>>,
                        // SAFETY: an `unsafe fn` pointer as `fn()`, read back only as the
                        // `AfterRun` that `sig` names.
                        run: Some(unsafe { std::mem::transmute::<AfterRun, fn()>(run) }),
                        own: Some(OwnTypes {
                            sig: TypeId::of::<Owns<$erased, ()>>,
                            types: own_types::<A, ()>,
                            after: true,
                            ctx: $ctx,
                        }),
                    })
                }
            )*
        }
    };
}

own_after_constructors! {
    /// An after handler that takes its payload by `&mut`.
    own_after_mut: fn(&mut A) -> V::Result, fn(*mut ()) -> V, OwnAfterFn, false;
    /// An after handler that takes its payload by `&`.
    own_after_ref: fn(&A) -> V::Result, fn(*mut ()) -> V, OwnAfterFn, false;
    /// An after handler that takes its payload by `&mut`, and the context.
    own_after_mut_ctx: fn(&mut A, &Context) -> V::Result, fn(*mut (), &Context) -> V,
        OwnAfterCtxFn, true;
    /// An after handler that takes its payload by `&`, and the context.
    own_after_ref_ctx: fn(&A, &Context) -> V::Result, fn(*mut (), &Context) -> V,
        OwnAfterCtxFn, true;
}

/// The loop that runs a slot's after handlers with one result of their own
/// ([`OwnAfterResult`]) on the call's output, type-erased as [`AnswerRun`] is: the runtime,
/// whether a handler runs for clients only, the handlers, the call's context and a pointer to its
/// output. What stopped it, if anything: the index of the handler and how.
pub(crate) type AfterRun = for<'a> unsafe fn(
    &crate::Hooks,
    bool,
    crate::table::BareRun<'a>,
    &mut Context,
    *mut (),
) -> Option<(usize, crate::dispatch::AfterStop)>;

/// An after handler's result of its own (`Result<(), E>` with its own error type `E`), as the
/// loop of such handlers reads it; each after attribute's checks implement it for their `Return`
/// (`hooks_core::diag`).
#[doc(hidden)]
pub trait OwnAfterResult {
    /// The handler's result type.
    type Result;
    /// The handler's verdict: go on, or the error that replaces the result (converted out of
    /// line).
    fn verdict(result: Self::Result) -> Result<(), HookError>;
}

/// A before handler's result of its own (`Result<(), E>` or `Result<Flow<O>, E>` with its own
/// error type `E`, or a `Flow<O>` alone), as the loop of such handlers for the output `O` reads
/// it. Each attribute's checks implement it for their `Return` (`hooks_core::diag`), so that the
/// loop converts the result as the attribute's check accepted it.
#[doc(hidden)]
pub trait OwnResult<O> {
    /// The handler's result type.
    type Result;
    /// The verdict: go on, answer, or reject (the error converted out of line).
    fn verdict(result: Self::Result) -> Result<Flow<O>, HookError>;
}

/// A handler's adapter as its registration holds it: a `&'static` [`SyncBefore`], [`AsyncBefore`],
/// [`SyncAfter`] or [`AsyncAfter`] of the operation (as the registration's phase and kind say),
/// erased as `dyn Any`, and for a plain sync handler the handler itself ([`Direct`]).
///
/// A plain sync handler's adapter is generic: one function for every handler of the operation
/// that takes the same payload and returns the same type, which calls the handler through the
/// fn pointer kept here (the adapter gets the registration, see [`SyncBefore`]). An adapter
/// compiled for each handler would be one more function per handler for the compiler to check
/// and build (`BENCHMARKS.md`, finding 24). The two are made together, by one constructor of
/// `hooks_core::diag`, and cannot be taken apart or paired otherwise: the adapter's call of the
/// pointer as its own signature rests on that.
#[doc(hidden)]
#[derive(Clone, Copy)]
pub struct Adapter {
    any: &'static (dyn Any + Send + Sync),
    direct: Option<Direct>,
}

impl Adapter {
    /// An adapter written for its handler (async, background and wildcard handlers, and
    /// signatures no generic adapter takes): it calls the handler itself and ignores the
    /// registration it is given.
    pub const fn own(adapter: &'static (dyn Any + Send + Sync)) -> Adapter {
        Adapter {
            any: adapter,
            direct: None,
        }
    }

    /// A generic adapter and the handler it calls, for the table's tests (a registration makes
    /// its own in [`RegistrationCell::generic`]).
    ///
    /// # Safety
    /// As [`RegistrationCell::generic`]'s.
    #[cfg(test)]
    pub(crate) const unsafe fn generic(
        adapter: &'static (dyn Any + Send + Sync),
        direct: Option<Direct>,
    ) -> Adapter {
        Adapter {
            any: adapter,
            direct,
        }
    }

    /// The adapter, as `dyn Any`.
    pub(crate) fn any(&self) -> &'static (dyn Any + Send + Sync) {
        self.any
    }

    /// The handler as a fn pointer of its own signature, when it has one.
    pub(crate) fn direct(&self) -> Option<Direct> {
        self.direct
    }

    /// The handler, as the fn pointer type `F` it was made from.
    ///
    /// # Safety
    /// The adapter is generic ([`RegistrationCell::generic`]) and `F` is the type its `direct` was made
    /// from.
    #[inline(always)]
    pub(crate) unsafe fn handler<F: Copy>(&self) -> F {
        match self.direct {
            // SAFETY: the caller's: `f` is an `F` erased as `fn()` (see `Direct`'s constructors),
            // and fn pointers all have one size.
            Some(d) => unsafe { std::mem::transmute_copy::<fn(), F>(&d.f) },
            // SAFETY: a generic adapter always has its handler.
            None => unsafe { std::hint::unreachable_unchecked() },
        }
    }
}

impl std::fmt::Debug for Adapter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Adapter")
            .field("direct", &self.direct)
            .finish_non_exhaustive()
    }
}

/// A wildcard data handler (`#[before_create("*")]`), sync: it sees each record of any table.
pub type WildSync =
    for<'a> fn(&'a mut dyn crate::entity::Record, &'a Context) -> Result<(), HookError>;

/// A wildcard data handler, async.
pub type WildAsync = for<'a> fn(
    &'a mut dyn crate::entity::Record,
    &'a Context,
) -> BoxFuture<'a, Result<(), HookError>>;

/// Whether an after handler holds up the caller or runs in the background.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// The caller waits for it (every before handler, and after handlers by default).
    Blocking,
    /// It gets an owned copy of the result and runs on the background queue.
    Background,
}

/// Whether a handler is a plain function or an `async fn`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A plain function: called directly, no boxing.
    Sync,
    /// An `async fn`: its future is awaited from the call's own state (boxed only when large).
    Async,
}

/// One registered handler: what the attribute wrote down about it, and its adapter.
///
/// The fields are public for the generated code; read them through the methods.
#[repr(C)]
pub struct Registration {
    #[doc(hidden)]
    pub id: &'static str,
    #[doc(hidden)]
    pub operation: &'static str,
    #[doc(hidden)]
    pub asset: &'static str,
    #[doc(hidden)]
    pub priority: i32,
    #[doc(hidden)]
    pub phase: Phase,
    #[doc(hidden)]
    pub kind: Kind,
    #[doc(hidden)]
    pub mode: Mode,
    /// Run only on calls whose origin is a client.
    #[doc(hidden)]
    pub client_only: bool,
    /// `TypeId` of the operation type the adapter was built for.
    #[doc(hidden)]
    pub op_type: fn() -> TypeId,
    /// An after handler that takes the whole result (and so runs on errors too).
    #[doc(hidden)]
    pub on_error: bool,
    /// The handler takes the call's [`Context`]: the loops of adapters tell the context which
    /// handler runs only in slots where one of them may ask.
    #[doc(hidden)]
    pub context: bool,
    /// The handler's own timeout; `None` takes the runtime's default.
    #[doc(hidden)]
    pub timeout: Option<std::time::Duration>,
    #[doc(hidden)]
    pub params: &'static [(&'static str, &'static str)],
    #[doc(hidden)]
    pub file: &'static str,
    #[doc(hidden)]
    pub line: u32,
    #[doc(hidden)]
    pub doc: &'static str,
    #[doc(hidden)]
    pub payload: &'static str,
    /// `type_name` of that operation type, for messages.
    #[doc(hidden)]
    pub op_type_name: fn() -> &'static str,
    /// The handler's adapter, and the handler itself as a fn pointer of its own signature.
    #[doc(hidden)]
    pub adapter: Adapter,
    /// The handler's live switch and counters, held in the registration itself: a static of
    /// their own would be one more item for the compiler per handler.
    #[doc(hidden)]
    pub state: crate::stats::HandlerState,
}

impl std::fmt::Debug for Registration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registration")
            .field("id", &self.id)
            .field("operation", &self.operation)
            .field("asset", &self.asset)
            .field("phase", &self.phase)
            .field("kind", &self.kind)
            .field("priority", &self.priority)
            .field("mode", &self.mode)
            .field("file", &self.file)
            .field("line", &self.line)
            .finish_non_exhaustive()
    }
}

/// The `Registration` of `$op` from what the attribute wrote down (`$site`), its phase, kind
/// and adapter: the body of [`Registration::new`] and [`RegistrationCell::generic`], written
/// once, as a macro rather than a call, so that the latter does not add a frame to what rustc's
/// interpreter runs for every handler's static.
macro_rules! registration_from_site {
    ($op:ty, $site:expr, $phase:expr, $kind:expr, $adapter:expr) => {{
        let Site(id, asset, on_error, context, options, file, line, doc, payload) = $site;
        Registration {
            id,
            operation: <$op>::NAME,
            asset,
            phase: $phase,
            kind: $kind,
            priority: options.priority,
            mode: options.mode,
            timeout: options.timeout,
            client_only: options.client_only,
            on_error,
            context,
            params: options.params,
            file,
            line,
            doc,
            payload,
            op_type: TypeId::of::<$op>,
            op_type_name: std::any::type_name::<$op>,
            adapter: $adapter,
            // A constant, copied: evaluating `HandlerState::new()` anew for every handler is a
            // dozen nested calls in the compiler's interpreter.
            state: FRESH_STATE,
        }
    }};
}

/// A registration as its `static` holds it: the [`Registration`] in an `UnsafeCell`, which it
/// never leaves (nothing writes through the cell; the registration's own state is atomic).
///
/// The cell is for the compiler. A `static`'s initializer is const-checked, and the check asks of
/// every value it builds whether its type is free of interior mutability (`Freeze`): for a struct,
/// field by field, anew for every static. A registration has some twenty fields, and its
/// handler's counters are atomics, so the answer (no) took that whole walk once per handler and
/// again for the value its constructor returns. `UnsafeCell` answers at once.
#[doc(hidden)]
#[repr(transparent)]
pub struct RegistrationCell(std::cell::UnsafeCell<Registration>);

// SAFETY: the cell is never written through (no `&mut` to it exists after its constant
// initializer, and no method hands one out), so sharing it is sharing a `Registration`, which is
// `Sync`: its only interior mutability is its atomic state.
unsafe impl Sync for RegistrationCell {}

impl RegistrationCell {
    /// A registration, for a handler's `static`.
    #[doc(hidden)]
    #[inline]
    pub const fn new(registration: Registration) -> RegistrationCell {
        RegistrationCell(std::cell::UnsafeCell::new(registration))
    }

    /// The registration of a plain sync handler of `Op`, with its generic adapter `any` and the
    /// handler (`direct`): what [`Registration::new`] makes, with the adapter paired with its
    /// handler, checked as [`Registration::of_data`] checks it when `attr` names a data
    /// attribute, all in one body. The constructors of `hooks_core::diag` call it: the compiler
    /// evaluates each handler's static in its interpreter, where every call is a frame to set up
    /// and every value passed on a copy, and this is one call where those steps were five.
    ///
    /// # Safety
    /// `direct` is `Some` (the adapter reads its handler there, and [`Adapter::handler`] takes
    /// `None` as unreachable); `any` calls `direct`'s fn pointer, through [`Adapter::handler`],
    /// as exactly the type `direct` was made from, and is reachable only through this function's
    /// callers, which make both from one handler.
    #[inline]
    #[track_caller] // a failed asset check is reported in the handler's glue
    pub(crate) const unsafe fn generic<Op: Operation>(
        site: Site,
        phase: Phase,
        any: &'static (dyn Any + Send + Sync),
        direct: Option<Direct>,
        attr: Option<&'static str>,
        key: u128,
    ) -> RegistrationCell {
        if let Some(attr) = attr {
            let expected = Op::ASSET_KEY;
            if expected != ANY_ASSET && (key != expected || key == LONG_ASSET) {
                asset_mismatch::<Op>(attr, site.1);
            }
        }
        let adapter = Adapter { any, direct };
        RegistrationCell(std::cell::UnsafeCell::new(registration_from_site!(
            Op,
            site,
            phase,
            Kind::Sync,
            adapter
        )))
    }

    /// The registration.
    #[inline]
    pub(crate) fn get(&'static self) -> &'static Registration {
        // SAFETY: nothing writes through the cell (see the `Sync` impl), so a shared borrow of its
        // contents is a shared borrow of a value no one mutates but through its atomics.
        unsafe { &*self.0.get() }
    }
}

/// What the attribute writes down about its handler, for [`Registration::new`], in this order:
/// the handler's id (module path and name), the asset, whether an after handler takes the whole
/// result, whether the handler takes the context, the options, its source (file, line, the
/// first line of its doc comment) and its payload type's name. A tuple struct, so that the
/// attribute's glue builds it as a plain value, not a call, and names no field.
#[doc(hidden)]
#[derive(Clone, Copy, Debug)]
pub struct Site(
    pub &'static str,
    pub &'static str,
    pub bool,
    pub bool,
    pub Options,
    pub &'static str,
    pub u32,
    pub &'static str,
    pub &'static str,
);

/// What an attribute's options set on its handler, for [`Registration::new`]: every field but
/// the handler's names and source. Most handlers take [`Options::DEFAULT`].
#[doc(hidden)]
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// Lower runs first.
    pub priority: i32,
    /// Blocking or background.
    pub mode: Mode,
    /// The handler's own timeout; `None` takes the runtime's default.
    pub timeout: Option<std::time::Duration>,
    /// Run only on calls whose origin is a client.
    pub client_only: bool,
    /// The attribute's `params(key = "value")`.
    pub params: &'static [(&'static str, &'static str)],
}

impl Options {
    /// An attribute with no options: priority 0, blocking, the runtime's timeout, every origin,
    /// no params.
    pub const DEFAULT: Options = Options {
        priority: 0,
        mode: Mode::Blocking,
        timeout: None,
        client_only: false,
        params: &[],
    };
}

/// A handler's state before its first call, evaluated once for every registration.
#[allow(clippy::declare_interior_mutable_const)] // copied into each registration, never shared
const FRESH_STATE: crate::stats::HandlerState = crate::stats::HandlerState::new();

/// The constructors the attributes call. A handler's registration is one call of a `const fn`
/// rather than a struct literal: what every registration of an operation shares (its names, its
/// types, the asset check) is then type-checked once, in these bodies, instead of once per
/// handler, which was most of what a registration cost the compiler (`BENCHMARKS.md`,
/// finding 16).
impl Registration {
    /// A registration of `Op`: what the attribute wrote down about the handler (`site`), its
    /// phase and kind, and its adapter.
    #[doc(hidden)]
    #[inline]
    pub const fn new<Op: Operation>(
        site: Site,
        phase: Phase,
        kind: Kind,
        adapter: Adapter,
    ) -> Registration {
        registration_from_site!(Op, site, phase, kind, adapter)
    }

    /// `registration` (from [`Registration::new`]) of a handler of `#[attr(asset)]` on the data
    /// operation `Op`, checked: it fails to compile, with a message that names both, when the
    /// asset is not the table of `Op`'s entity (the registration's static is evaluated at compile
    /// time). `key` is the asset's [`asset_key`], which the attribute computes as it expands:
    /// the operation's own key is a constant evaluated once per operation type, so a handler
    /// whose asset is right pays for one comparison of two integers, at compile time, where
    /// comparing the names byte by byte cost the compiler's interpreter ~300,000 instructions a
    /// handler.
    #[doc(hidden)]
    #[inline]
    #[track_caller] // a failed check is reported at the call, in the handler's glue
    pub const fn of_data<Op: Operation>(
        attr: &'static str,
        key: u128,
        registration: Registration,
    ) -> Registration {
        let expected = Op::ASSET_KEY;
        if expected != ANY_ASSET && (key != expected || key == LONG_ASSET) {
            asset_mismatch::<Op>(attr, registration.asset);
        }
        registration
    }
}

/// The asset check of [`Registration::of_data`] when the keys differ or the name is long: the
/// names compared by their bytes, and the message built only when they differ.
#[track_caller]
const fn asset_mismatch<Op: Operation>(attr: &'static str, asset: &'static str) {
    if !str_eq(Op::ASSET, asset) {
        panic!(
            "{}",
            crate::diag::AssetMismatch::new(attr, asset, Op::ASSET).as_str()
        );
    }
}

/// The key of an operation whose handlers may name any asset (the data operations of a dynamic
/// entity, whose table is named by the call): every asset passes [`Registration::of_data`].
#[doc(hidden)]
pub const ANY_ASSET: u128 = u128::MAX - 1;

/// The key of a name longer than fifteen bytes, which [`Registration::of_data`] compares by its
/// bytes.
#[doc(hidden)]
pub const LONG_ASSET: u128 = u128::MAX;

/// An asset's name as one integer, for the compile-time check of [`Registration::of_data`]: a name
/// of up to fifteen bytes is its bytes, the first lowest, with its length in the top byte, so
/// two such names have the same key exactly when they are equal; a longer one is
/// [`LONG_ASSET`]. `hooks-macros` computes the same key from the attribute's literal.
#[doc(hidden)]
pub const fn asset_key(name: &str) -> u128 {
    let bytes = name.as_bytes();
    if bytes.len() > 15 {
        return LONG_ASSET;
    }
    let mut key = (bytes.len() as u128) << 120;
    let mut i = 0;
    while i < bytes.len() {
        key |= (bytes[i] as u128) << (8 * i);
        i += 1;
    }
    key
}

impl Registration {
    /// The handler's id: its module path and function name.
    pub fn id(&self) -> &'static str {
        self.id
    }
    /// The operation's name, such as `"data.create"`.
    pub fn operation(&self) -> &'static str {
        self.operation
    }
    /// The asset, such as `"Contact"`.
    pub fn asset(&self) -> &'static str {
        self.asset
    }
    /// Before or after.
    pub fn phase(&self) -> Phase {
        self.phase
    }
    /// Sync or async.
    pub fn kind(&self) -> Kind {
        self.kind
    }
    /// Blocking or background.
    pub fn mode(&self) -> Mode {
        self.mode
    }
    /// The handler's own timeout, if the attribute set one.
    pub fn timeout(&self) -> Option<std::time::Duration> {
        self.timeout
    }
    /// Whether the handler runs only on calls from clients.
    pub fn client_only(&self) -> bool {
        self.client_only
    }
    /// A plain sync handler as a fn pointer of its own signature, which the fast loops call as
    /// itself when it is one of the operation's bare shapes; `None` for async, background and
    /// wildcard handlers, and signatures no generic adapter takes.
    #[doc(hidden)]
    pub fn direct(&self) -> Option<Direct> {
        self.adapter.direct()
    }
    /// The handler's execution history so far.
    pub fn stats(&self) -> crate::stats::Stats {
        self.state.stats()
    }
    /// Whether the handler is switched on.
    pub fn enabled(&self) -> bool {
        self.state.enabled()
    }

    /// Whether an after handler runs on an error result (it takes `&mut Result<..>`).
    pub fn on_error(&self) -> bool {
        self.on_error
    }

    /// Whether the handler runs on a call with this context.
    #[inline]
    pub(crate) fn runs_for(&self, ctx: &Context) -> bool {
        self.state.enabled() && (!self.client_only || ctx.is_client())
    }

    /// Whether an after handler runs on a call with this context and this result.
    #[inline]
    pub(crate) fn runs_after<O>(&self, ctx: &Context, result: &Result<O, HookError>) -> bool {
        self.runs_for(ctx) && (self.on_error || result.is_ok())
    }
    /// The priority: lower runs first; ties are broken by id.
    pub fn priority(&self) -> i32 {
        self.priority
    }
    /// The params written in the attribute.
    pub fn params(&self) -> &'static [(&'static str, &'static str)] {
        self.params
    }
    /// The source file of the handler.
    pub fn file(&self) -> &'static str {
        self.file
    }
    /// The source line of the handler's attribute.
    pub fn line(&self) -> u32 {
        self.line
    }
    /// The first line of the handler's doc comment (empty when it has none).
    pub fn doc(&self) -> &'static str {
        self.doc
    }
    /// The payload type as written in the handler's signature.
    pub fn payload(&self) -> &'static str {
        self.payload
    }
    /// The name of the operation type the handler was compiled for, such as
    /// `hooks_core::ops::data::Create<app::Contact>`.
    pub fn operation_type(&self) -> &'static str {
        (self.op_type_name)()
    }

    /// The order of handlers within one slot: priority, then id.
    pub(crate) fn order_key(&self) -> (i32, &'static str) {
        (self.priority, self.id)
    }
}

/// Every registration linked into the binary, in link order (the table sorts them).
pub fn registered() -> impl Iterator<Item = &'static Registration> {
    collect::all()
}

/// Every operation declared in the binary (the standard catalog and the service's own), in link
/// order.
pub fn declared_operations() -> impl Iterator<Item = &'static crate::event::OperationInfo> {
    collect::operations()
}

#[cfg(feature = "inventory")]
mod collect {
    use super::{Registration, RegistrationCell};
    use crate::event::OperationInfo;

    /// What inventory collects of a handler: its registration, a static of its own. inventory
    /// keeps each value it is given behind a `&` in a static of its own, which the compiler
    /// refuses for a value with interior mutability, as a registration's state has.
    #[doc(hidden)]
    pub struct Registered(pub &'static RegistrationCell);

    inventory::collect!(Registered);
    inventory::collect!(OperationInfo);

    pub(super) fn all() -> impl Iterator<Item = &'static Registration> {
        inventory::iter::<Registered>.into_iter().map(|r| r.0.get())
    }

    pub(super) fn operations() -> impl Iterator<Item = &'static OperationInfo> {
        inventory::iter::<OperationInfo>.into_iter()
    }

    #[doc(hidden)]
    #[macro_export]
    macro_rules! __register_operation {
        ($info:expr) => {
            $crate::__private::inventory::submit! { $info }
        };
    }

    #[doc(hidden)]
    #[macro_export]
    macro_rules! __register {
        ($reg:expr) => {
            static __HOOKS_REGISTRATION: $crate::__private::RegistrationCell = $reg;
            $crate::__private::inventory::submit! {
                $crate::__private::Registered(&__HOOKS_REGISTRATION)
            }
        };
    }
}

#[cfg(all(feature = "linkme", not(feature = "inventory")))]
mod collect {
    use super::{Registration, RegistrationCell};
    use crate::event::OperationInfo;

    #[doc(hidden)]
    #[linkme::distributed_slice]
    pub static REGISTRY: [RegistrationCell];

    /// The link sections linkme gives `REGISTRY`'s elements, on each platform, written out in
    /// [`__register`](crate::__register) below. This asks linkme's element macro for them, which hands them to
    /// this macro, and accepts only these: should a linkme release name them otherwise,
    /// hooks-core stops compiling here, on every platform, rather than leave registrations in a
    /// section the slice does not read.
    macro_rules! sections_are_linkmes {
        (
            #![linkme_linux_section = "linkme_REGISTRY"]
            #![linkme_macho_section = "__DATA,__linkmenQKBhKSa,regular,no_dead_strip"]
            #![linkme_windows_section = ".linkme_REGISTRY$b"]
            #![linkme_illumos_section = "set_linkme_REGISTRY"]
            #![linkme_bsd_section = "linkme_REGISTRY"]
            $item:item
        ) => {};
        ($($other:tt)*) => {
            compile_error!(
                "linkme names the link sections of `REGISTRY` otherwise than `__register!` \
                 writes them: update the names in hooks-core's registration.rs"
            );
        };
    }
    REGISTRY! {
        #![linkme_macro = sections_are_linkmes]
        struct SectionsChecked;
    }

    #[doc(hidden)]
    #[linkme::distributed_slice]
    pub static OPERATIONS: [OperationInfo];

    pub(super) fn all() -> impl Iterator<Item = &'static Registration> {
        REGISTRY.iter().map(RegistrationCell::get)
    }

    pub(super) fn operations() -> impl Iterator<Item = &'static OperationInfo> {
        OPERATIONS.iter()
    }

    #[doc(hidden)]
    #[macro_export]
    macro_rules! __register_operation {
        ($info:expr) => {
            #[$crate::__private::linkme::distributed_slice($crate::__private::OPERATIONS)]
            #[linkme(crate = $crate::__private::linkme)]
            static __HOOKS_OPERATION: $crate::event::OperationInfo = $info;
        };
    }

    // One registration, placed in the slice's link section on the platform hooks-core is built
    // for, which is the service's (see `sections_are_linkmes` above for where the names come
    // from, and the platforms are linkme's). linkme's own element macro writes the same static,
    // but with an attribute for each platform, and an attribute whose platform does not apply is
    // still read and its condition evaluated, for every handler: through it, a dev rebuild of
    // 1,000 handlers took a fifth more instructions (`BENCHMARKS.md`, finding 26). Here the
    // platform is chosen once, when hooks-core is compiled. The element's type is
    // `RegistrationCell`, the slice's.
    #[cfg(any(
        target_os = "none",
        target_os = "linux",
        target_os = "android",
        target_os = "fuchsia",
        target_os = "psp",
        target_os = "freebsd",
        target_os = "openbsd"
    ))]
    #[doc(hidden)]
    #[macro_export]
    macro_rules! __register {
        ($($reg:tt)*) => {
            #[used]
            #[unsafe(link_section = "linkme_REGISTRY")]
            static __HOOKS_REGISTRATION: $crate::__private::RegistrationCell = $($reg)*;
        };
    }

    #[cfg(any(target_os = "macos", target_os = "ios", target_os = "tvos"))]
    #[doc(hidden)]
    #[macro_export]
    macro_rules! __register {
        ($($reg:tt)*) => {
            #[used]
            #[unsafe(link_section = "__DATA,__linkmenQKBhKSa,regular,no_dead_strip")]
            static __HOOKS_REGISTRATION: $crate::__private::RegistrationCell = $($reg)*;
        };
    }

    #[cfg(any(target_os = "uefi", target_os = "windows"))]
    #[doc(hidden)]
    #[macro_export]
    macro_rules! __register {
        ($($reg:tt)*) => {
            #[used]
            #[unsafe(link_section = ".linkme_REGISTRY$b")]
            static __HOOKS_REGISTRATION: $crate::__private::RegistrationCell = $($reg)*;
        };
    }

    #[cfg(target_os = "illumos")]
    #[doc(hidden)]
    #[macro_export]
    macro_rules! __register {
        ($($reg:tt)*) => {
            #[used]
            #[unsafe(link_section = "set_linkme_REGISTRY")]
            static __HOOKS_REGISTRATION: $crate::__private::RegistrationCell = $($reg)*;
        };
    }

    // Any other platform: linkme's slice has no sections there either.
    #[cfg(not(any(
        target_os = "none",
        target_os = "linux",
        target_os = "android",
        target_os = "fuchsia",
        target_os = "psp",
        target_os = "freebsd",
        target_os = "openbsd",
        target_os = "macos",
        target_os = "ios",
        target_os = "tvos",
        target_os = "uefi",
        target_os = "windows",
        target_os = "illumos"
    )))]
    #[doc(hidden)]
    #[macro_export]
    macro_rules! __register {
        ($($reg:tt)*) => {
            compile_error!(
                "hooks' linkme backend has no link section on this platform: enable the \
                 `inventory` feature"
            );
        };
    }
}

#[cfg(not(any(feature = "linkme", feature = "inventory")))]
compile_error!(
    "hooks-core needs a collection backend: enable the `linkme` or the `inventory` feature"
);

#[cfg(all(feature = "linkme", not(feature = "inventory")))]
#[doc(hidden)]
pub use collect::{OPERATIONS, REGISTRY};

#[cfg(feature = "inventory")]
#[doc(hidden)]
pub use collect::Registered;

/// A crate's name as its handlers' ids begin with it: Cargo.toml's name with `-` as `_`
/// (`my-handlers` is `my_handlers` in code).
pub(crate) fn crate_path_name(name: &str) -> String {
    name.trim().replace('-', "_")
}

/// What to tell a user whose binary has no handler of the crate `name`.
pub(crate) fn unlinked_crate(name: &str) -> String {
    let path = crate_path_name(name);
    if path.is_empty() {
        return "an empty crate name was given: name a crate as its handlers' ids begin \
                (`my_handlers`)"
            .to_owned();
    }
    format!(
        "no handler of the crate `{path}` is linked into this binary: name it once in the \
         binary's code, with `use {path} as _;` (or `hooks::link!({path});`). The name is the \
         crate's own, as its handlers' ids begin (`{path}::...`), not a name it was renamed to \
         in Cargo.toml"
    )
}

/// Lets a handler take a part of an operation's input: `&mut Contact` out of `Changes<Contact>`.
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "a handler of this operation cannot take `{P}` as its payload",
    label = "the operation's input is `{Self}`",
    note = "take the operation's input type, or the entity itself"
)]
pub trait Payload<P: ?Sized> {
    /// The part of the input the handler takes.
    fn payload_mut(&mut self) -> &mut P;
}

impl<T> Payload<T> for T {
    fn payload_mut(&mut self) -> &mut T {
        self
    }
}

impl<E> Payload<E> for crate::entity::Changes<E> {
    fn payload_mut(&mut self) -> &mut E {
        &mut self.record
    }
}

/// A handler of a bulk create may take the new records as a slice (`&[E]`, `&mut [E]`: it may
/// change them, not add or drop any), as clippy's `ptr_arg` asks of a function that reads a `Vec`.
impl<E> Payload<[E]> for Vec<E> {
    fn payload_mut(&mut self) -> &mut [E] {
        self
    }
}

/// Lets an after handler take the whole result (`&mut Result<T, HookError>`, run on success and
/// error) or only the value (`&mut T`, run on success only).
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "an after handler of this operation cannot take `{P}`",
    label = "the operation's result is `{Self}`",
    note = "take `&mut Output` (success only) or `&mut Result<Output, HookError>` (success and error)"
)]
pub trait AfterPayload<P: ?Sized> {
    /// Whether the handler runs when the result is an error.
    const ON_ERROR: bool;
    /// The part of the result the handler takes, or `None` when it does not run on this result.
    fn project(&mut self) -> Option<&mut P>;
    /// Whether the handler runs on this result.
    fn runs_on(&self) -> bool;
}

impl<O> AfterPayload<Result<O, HookError>> for Result<O, HookError> {
    const ON_ERROR: bool = true;
    fn project(&mut self) -> Option<&mut Result<O, HookError>> {
        Some(self)
    }
    fn runs_on(&self) -> bool {
        true
    }
}

impl<O> AfterPayload<O> for Result<O, HookError> {
    const ON_ERROR: bool = false;
    fn project(&mut self) -> Option<&mut O> {
        self.as_mut().ok()
    }
    fn runs_on(&self) -> bool {
        self.is_ok()
    }
}

/// An after handler of an operation whose output is a list (a bulk create, a find) may take the
/// records as a slice (`&[E]`, `&mut [E]`), as clippy's `ptr_arg` asks; it runs on success only.
impl<E> AfterPayload<[E]> for Result<Vec<E>, HookError> {
    const ON_ERROR: bool = false;
    fn project(&mut self) -> Option<&mut [E]> {
        self.as_mut().ok().map(Vec::as_mut_slice)
    }
    fn runs_on(&self) -> bool {
        self.is_ok()
    }
}

/// What a before handler may return: `()`, `Result<(), E>`, `Flow<O>` or `Result<Flow<O>, E>`,
/// with `E: Into<HookError>`.
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "a before handler cannot return `{Self}`",
    label = "return `()`, `Result<(), E>` or `Result<Flow<{O}>, E>` with `E: Into<HookError>`"
)]
pub trait IntoFlow<O> {
    /// Convert to the dispatcher's form.
    fn into_flow(self) -> Result<Flow<O>, HookError>;

    /// The verdict as a sync adapter hands it on ([`settle`]): `true` to go on, or `false` with
    /// the answer or the rejection written into `early`. The types that a handler returns through
    /// memory match on themselves, going-on first, rather than on a converted copy: the generic
    /// adapters (`diag`) call this, and LLVM alone does not see through the conversion.
    #[inline(always)]
    fn settle(self, early: &mut Early<O>) -> bool
    where
        Self: Sized,
    {
        settle(self.into_flow(), early)
    }

    /// The verdict as the loop of handlers with a result of their own takes it: as
    /// [`IntoFlow::into_flow`], with a handler's own error converted out of line.
    #[inline(always)]
    fn verdict(self) -> Result<Flow<O>, HookError>
    where
        Self: Sized,
    {
        self.into_flow()
    }
}

impl<O> IntoFlow<O> for () {
    #[inline]
    fn into_flow(self) -> Result<Flow<O>, HookError> {
        Ok(Flow::Continue)
    }
}

impl<O> IntoFlow<O> for Flow<O> {
    #[inline]
    fn into_flow(self) -> Result<Flow<O>, HookError> {
        Ok(self)
    }
}

impl<O, E: Into<HookError>> IntoFlow<O> for Result<(), E> {
    #[inline]
    fn into_flow(self) -> Result<Flow<O>, HookError> {
        match self {
            Ok(()) => Ok(Flow::Continue),
            Err(e) => Err(e.into()),
        }
    }

    #[inline(always)]
    fn settle(self, early: &mut Early<O>) -> bool {
        match self {
            Ok(()) => true,
            Err(e) => reject(early, e),
        }
    }

    #[inline(always)]
    fn verdict(self) -> Result<Flow<O>, HookError> {
        match self {
            Ok(()) => Ok(Flow::Continue),
            Err(e) => Err(convert(e)),
        }
    }
}

impl<O, E: Into<HookError>> IntoFlow<O> for Result<Flow<O>, E> {
    #[inline]
    fn into_flow(self) -> Result<Flow<O>, HookError> {
        self.map_err(Into::into)
    }

    #[inline(always)]
    fn settle(self, early: &mut Early<O>) -> bool {
        match self {
            Ok(Flow::Continue) => true,
            Ok(Flow::Return(output)) => stop(early, Ok(output)),
            Err(e) => reject(early, e),
        }
    }

    #[inline(always)]
    fn verdict(self) -> Result<Flow<O>, HookError> {
        match self {
            Ok(flow) => Ok(flow),
            Err(e) => Err(convert(e)),
        }
    }
}

/// A sync before handler's verdict, as its adapter hands it on: `true` to go on, or `false` with
/// the answer or the rejection written into `early`.
#[doc(hidden)]
#[inline(always)]
pub fn settle<O>(verdict: Result<Flow<O>, HookError>, early: &mut Early<O>) -> bool {
    match verdict {
        Ok(Flow::Continue) => true,
        Ok(Flow::Return(output)) => stop(early, Ok(output)),
        Err(e) => stop(early, Err(e)),
    }
}

/// An async before handler's verdict, as its future hands it on: `Ok(true)` to go on, `Ok(false)`
/// with the answer written into `early`, or the rejection: small, whatever the size of the
/// operation's output.
#[doc(hidden)]
#[inline(always)]
pub fn settle_async<O>(
    verdict: Result<Flow<O>, HookError>,
    early: &mut Early<O>,
) -> Result<bool, HookError> {
    match verdict {
        Ok(Flow::Continue) => Ok(true),
        Ok(Flow::Return(output)) => Ok(stop(early, Ok(output))),
        Err(e) => Err(e),
    }
}

#[cold]
#[inline(never)]
fn stop<O>(early: &mut Early<O>, result: Result<O, HookError>) -> bool {
    *early = Some(result);
    false
}

/// A rejection with a handler's own error type, converted out of line.
#[cold]
#[inline(never)]
fn reject<O, E: Into<HookError>>(early: &mut Early<O>, error: E) -> bool {
    stop(early, Err(error.into()))
}

/// A handler's own error type, converted out of line.
#[cold]
#[inline(never)]
fn convert<E: Into<HookError>>(error: E) -> HookError {
    error.into()
}

/// What an after handler may return: `()` or `Result<(), E>` with `E: Into<HookError>`.
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "an after handler cannot return `{Self}`",
    label = "return `()` or `Result<(), E>` with `E: Into<HookError>`"
)]
pub trait IntoAfter {
    /// Convert to the dispatcher's form.
    fn into_after(self) -> Result<(), HookError>;

    /// The verdict as the loop of after handlers with a result of their own takes it: as
    /// [`IntoAfter::into_after`], with a handler's own error converted out of line.
    #[inline(always)]
    fn verdict(self) -> Result<(), HookError>
    where
        Self: Sized,
    {
        self.into_after()
    }
}

impl IntoAfter for () {
    #[inline]
    fn into_after(self) -> Result<(), HookError> {
        Ok(())
    }
}

impl<E: Into<HookError>> IntoAfter for Result<(), E> {
    #[inline]
    fn into_after(self) -> Result<(), HookError> {
        self.map_err(Into::into)
    }

    #[inline(always)]
    fn verdict(self) -> Result<(), HookError> {
        match self {
            Ok(()) => Ok(()),
            Err(e) => Err(convert(e)),
        }
    }
}

/// `a == b`, usable in constants (the asset check of the attributes).
const fn str_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::{LONG_ASSET, asset_key};

    // The same figures pin `hooks-macros`' copy (`hook.rs`): the check's fast path holds only
    // while both compute one key for one name.
    #[test]
    fn an_asset_key_is_the_names_bytes_and_length_up_to_fifteen_bytes_and_long_past_them() {
        assert_eq!(
            asset_key("Contact"),
            0x0700_0000_0000_0000_0074_6361_746e_6f43
        );
        assert_eq!(asset_key("a"), 0x0100_0000_0000_0000_0000_0000_0000_0061);
        assert_eq!(asset_key(""), 0);
        assert_eq!(
            asset_key("line_items_2026"),
            0x0f36_3230_325f_736d_6574_695f_656e_696c
        );
        assert_eq!(asset_key("line_items_of_2026"), LONG_ASSET);
        // Names that differ anywhere, or only in length, have other keys.
        assert_ne!(asset_key("line_items_2026"), asset_key("line_items_2025"));
        assert_ne!(asset_key("a"), asset_key("a\0"));
    }

    // The linkme backend writes each platform's section name twice in this file: in the check
    // that linkme names them so (`sections_are_linkmes`, which fails the build otherwise), and in
    // that platform's `__register!`. A test on Linux cannot place a registration on another
    // platform, so it reads the two copies instead.
    #[test]
    fn the_linkme_backend_registers_in_the_sections_it_checks_linkme_names() {
        use std::collections::BTreeSet;
        let source = include_str!("registration.rs");
        let quoted = |prefix: &str| -> BTreeSet<&str> {
            source
                .lines()
                .filter_map(|l| l.trim().strip_prefix(prefix))
                .filter_map(|l| l.split('"').nth(1))
                .collect()
        };
        let checked = quoted("#![linkme_");
        let written = quoted("#[unsafe(link_section = ");
        // Five platforms, four names: ELF's BSDs share Linux's.
        assert_eq!(checked.len(), 4, "the check names {checked:?}");
        assert_eq!(
            written, checked,
            "`__register!` writes other sections than the check accepts"
        );
    }
}
