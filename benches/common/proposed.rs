//! A model of the dispatcher changes proposed in BENCHMARKS.md ("What to change"), measured side
//! by side with the real dispatcher as the design `proposed`. It is not the framework: it is the
//! smallest code with the proposed shape, to show what the fix buys before anyone changes
//! `hooks-core`. It keeps what the real hot path must do per handler (an indirect call through a
//! fn pointer, point the context at the handler, stop on an early answer or an error, run the
//! default unless answered) and changes how:
//!
//! 1. the "no handlers" test is inlined into the caller, and the handler loop is a separate,
//!    out-of-line function (no big prologue on the empty path);
//! 2. a sync adapter returns `bool` (go on?) and writes an early answer or an error into an out
//!    slot, instead of returning `Result<Flow<Output>, HookError>` through memory;
//! 3. the slot of a sync-only operation is a plain slice of `(fn pointer, registration)`, with no
//!    sync/async tag to match per handler;
//! 4. the context records the running handler with one pointer store;
//! 5. on an async call, the future of a call with no handlers is the default's own future (one
//!    enum tag around it), and sync handlers run without await points (the model runs them when
//!    the future is made; the real change must wait for the first poll, as an `async fn` does).
//! 6. an async handler's adapter returns its future stored inline ([`InlineFuture`]), not boxed.
//!
//! Once `hooks-core` has the changes, delete this module and the `proposed*` designs: the
//! `hooks` rows then measure the real thing.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicPtr, Ordering};
use std::task::{Context as TaskContext, Poll};

use hooks::HookError;

/// The proposed sync adapter: run the handler; `true` to go on, or `false` with the call's result
/// (an early answer or the rejection) written to `out`.
pub type Adapter<E> = fn(&mut E, &Ctx, &mut Option<Result<E, HookError>>) -> bool;

/// The rejection path of an adapter, out of line so the path that goes on stays a leaf-like
/// call (no registers saved for dropping the old `out`).
#[cold]
#[inline(never)]
pub fn reject<E>(out: &mut Option<Result<E, HookError>>, e: HookError) -> bool {
    *out = Some(Err(e));
    false
}

/// What the model's context keeps: the event, whether per-call state is held, and the running
/// handler (one pointer).
#[derive(Default)]
pub struct Ctx {
    pub operation: &'static str,
    pub asset: &'static str,
    pub state: Vec<u64>,
    pub current: Option<&'static &'static str>,
}

impl Ctx {
    /// Start a call, as `Context::begin` does: set the event, clear a previous call's state.
    #[inline(always)]
    fn begin(&mut self, operation: &'static str, asset: &'static str) {
        self.operation = operation;
        self.asset = asset;
        if !self.state.is_empty() {
            self.state.clear();
        }
    }
}

/// The handlers of one operation, sync only, in run order.
pub struct Slot<E: 'static> {
    pub operation: &'static str,
    pub asset: &'static str,
    pub before: &'static [(Adapter<E>, &'static &'static str)],
    pub after: &'static [(AfterAdapter<E>, &'static &'static str)],
}

/// The proposed sync after adapter (none are registered in the benches; the loop still runs).
pub type AfterAdapter<E> = fn(&mut Result<E, HookError>, &Ctx) -> Result<(), HookError>;

/// A per-type cache of the slot: null for "no handlers".
pub struct Cache(pub AtomicPtr<()>);

impl Cache {
    pub const fn new() -> Cache {
        Cache(AtomicPtr::new(std::ptr::null_mut()))
    }

    #[inline(always)]
    pub fn get<E>(&'static self) -> Option<&'static Slot<E>> {
        let p = self.0.load(Ordering::Acquire);
        // SAFETY: only `set` stores here, a `&'static Slot<E>` of the type that owns the cache.
        (!p.is_null()).then(|| unsafe { &*p.cast::<Slot<E>>() })
    }

    pub fn set<E>(&'static self, slot: &'static Slot<E>) {
        let p = std::ptr::from_ref(slot).cast::<()>().cast_mut();
        self.0.store(p, Ordering::Release);
    }
}

/// Proposed `run_sync`: the empty test inline, the rest out of line.
#[inline(always)]
pub fn run_sync<E, F>(
    slot: Option<&'static Slot<E>>,
    ctx: &mut Ctx,
    input: E,
    default: F,
) -> Result<E, HookError>
where
    F: FnOnce(E) -> Result<E, HookError>,
{
    match slot {
        None => default(input),
        Some(slot) => run_slot(slot, ctx, input, default),
    }
}

#[inline(never)]
fn run_slot<E, F>(slot: &Slot<E>, ctx: &mut Ctx, mut input: E, default: F) -> Result<E, HookError>
where
    F: FnOnce(E) -> Result<E, HookError>,
{
    let mut result = match before(slot, ctx, &mut input) {
        Some(result) => result,
        None => default(input),
    };
    after(slot, ctx, &mut result);
    result
}

#[inline(always)]
fn after<E>(slot: &Slot<E>, ctx: &mut Ctx, result: &mut Result<E, HookError>) {
    for (f, reg) in slot.after {
        ctx.current = Some(reg);
        if let Err(e) = f(result, ctx) {
            *result = Err(e);
        }
    }
    ctx.current = None;
}

/// The before handlers: `Some(result)` when one answered or rejected.
#[inline(always)]
fn before<E>(slot: &Slot<E>, ctx: &mut Ctx, input: &mut E) -> Option<Result<E, HookError>> {
    ctx.begin(slot.operation, slot.asset);
    let mut out = None;
    for (f, reg) in slot.before {
        ctx.current = Some(reg);
        if !f(input, ctx, &mut out) {
            break;
        }
    }
    ctx.current = None;
    out
}

/// Proposed `run` for a sync-only slot: no handlers, the default's own future; otherwise the
/// before handlers run at once (no await points) and the default is awaited.
#[inline(always)]
pub fn run<E, F, Fut>(
    slot: Option<&'static Slot<E>>,
    ctx: &mut Ctx,
    mut input: E,
    default: F,
) -> Either<Fut, std::future::Ready<Result<E, HookError>>>
where
    F: FnOnce(E) -> Fut,
    Fut: Future<Output = Result<E, HookError>>,
{
    match slot {
        None => Either::Left(default(input)),
        Some(slot) => match before(slot, ctx, &mut input) {
            Some(result) => Either::Right(std::future::ready(result)),
            None => Either::Left(default(input)),
        },
    }
}

/// One of two futures.
pub enum Either<A, B> {
    Left(A),
    Right(B),
}

impl<A: Future, B: Future<Output = A::Output>> Future for Either<A, B> {
    type Output = A::Output;

    #[inline(always)]
    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<A::Output> {
        // SAFETY: structural pinning: the inner future is never moved out of `self`.
        unsafe {
            match self.get_unchecked_mut() {
                Either::Left(a) => Pin::new_unchecked(a).poll(cx),
                Either::Right(b) => Pin::new_unchecked(b).poll(cx),
            }
        }
    }
}

/// Finding 5 of BENCHMARKS.md: an async handler's future stored inline in a fixed, aligned buffer
/// instead of a `Box`, so an async handler costs no allocation. The adapter builds it; a future
/// larger than the buffer fails to compile (the real change would fall back to `Box` there).
pub struct InlineFuture<'a, T, const N: usize> {
    buf: Buffer<N>,
    poll: unsafe fn(*mut u8, &mut TaskContext<'_>) -> Poll<T>,
    drop: unsafe fn(*mut u8),
    _borrow: std::marker::PhantomData<&'a mut ()>,
    _pinned: std::marker::PhantomPinned,
}

/// The storage of an [`InlineFuture`], aligned for any future the benches make.
#[repr(C, align(16))]
struct Buffer<const N: usize>(std::mem::MaybeUninit<[u8; N]>);

impl<'a, T, const N: usize> InlineFuture<'a, T, N> {
    /// Store `fut` inline.
    #[inline(always)]
    pub fn new<F: Future<Output = T> + 'a>(fut: F) -> Self {
        const {
            assert!(
                std::mem::size_of::<F>() <= N,
                "the future is larger than the buffer"
            );
            assert!(
                std::mem::align_of::<F>() <= 16,
                "the future needs a larger alignment"
            );
        }
        /// # Safety
        /// `p` points at a pinned, live `F`.
        unsafe fn poll<F: Future>(p: *mut u8, cx: &mut TaskContext<'_>) -> Poll<F::Output> {
            // SAFETY: the caller's contract.
            unsafe { Pin::new_unchecked(&mut *p.cast::<F>()).poll(cx) }
        }
        /// # Safety
        /// `p` points at a live `F`, dropped once.
        unsafe fn drop<F>(p: *mut u8) {
            // SAFETY: the caller's contract.
            unsafe { std::ptr::drop_in_place(p.cast::<F>()) }
        }
        let mut buf = Buffer(std::mem::MaybeUninit::uninit());
        // SAFETY: the buffer is large and aligned enough for `F` (checked above).
        unsafe { buf.0.as_mut_ptr().cast::<F>().write(fut) };
        InlineFuture {
            buf,
            poll: poll::<F>,
            drop: drop::<F>,
            _borrow: std::marker::PhantomData,
            _pinned: std::marker::PhantomPinned,
        }
    }
}

impl<T, const N: usize> Future for InlineFuture<'_, T, N> {
    type Output = T;

    #[inline(always)]
    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<T> {
        // SAFETY: `self` is pinned and `!Unpin`, so the future in the buffer stays where it is;
        // it was written by `new` and is dropped only by `Drop`.
        unsafe {
            let this = self.get_unchecked_mut();
            (this.poll)(this.buf.0.as_mut_ptr().cast::<u8>(), cx)
        }
    }
}

impl<T, const N: usize> Drop for InlineFuture<'_, T, N> {
    fn drop(&mut self) {
        // SAFETY: the buffer holds the live future written by `new`, dropped here only.
        unsafe { (self.drop)(self.buf.0.as_mut_ptr().cast::<u8>()) }
    }
}

/// An async before handler's adapter in the proposed shape: no `Box`.
pub type AsyncAdapter<E> = for<'a> fn(&'a mut E) -> InlineFuture<'a, Result<(), HookError>, 64>;

/// Proposed `run` for a slot of async before handlers: await each one's inline future.
#[inline(always)]
pub async fn run_async_handlers<E, F, Fut>(
    before: &'static [(AsyncAdapter<E>, &'static &'static str)],
    ctx: &mut Ctx,
    mut input: E,
    default: F,
) -> Result<E, HookError>
where
    F: FnOnce(E) -> Fut,
    Fut: Future<Output = Result<E, HookError>>,
{
    if before.is_empty() {
        return default(input).await;
    }
    ctx.begin("data.create", "");
    for (f, reg) in before {
        ctx.current = Some(reg);
        f(&mut input).await?;
    }
    ctx.current = None;
    default(input).await
}
