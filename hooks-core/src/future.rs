//! [`FutureSlot`]: where an `async fn` handler's adapter leaves the handler's future, so that the
//! dispatcher can await it without a heap allocation per call.
//!
//! Handlers are called through plain function pointers, so the future of an `async fn` handler
//! must be type-erased. A `Box<dyn Future>` does that at the price of an allocation and a free on
//! every call. A `FutureSlot` lives in the dispatcher's own (already pinned) state instead: the
//! adapter writes the handler's future into the slot's inline, aligned bytes, next to the two
//! functions that poll and drop it. A future too large for the slot is boxed, as before.
//!
//! The dispatcher's own flow, the state of an async call that has handlers, lives on the heap in
//! a `FlowBox`, a block each thread reuses from its last call instead of allocating one per call.

use std::alloc::{Layout, alloc, dealloc, handle_alloc_error};
use std::cell::Cell;
use std::future::Future;
use std::marker::{PhantomData, PhantomPinned};
use std::mem::{MaybeUninit, align_of, size_of};
use std::pin::Pin;
use std::ptr;
use std::task::{Context as TaskContext, Poll};

/// How many bytes of future a slot holds inline; a larger future is boxed.
pub const INLINE_FUTURE_BYTES: usize = 512;

/// The alignment of the inline bytes; a future that needs more is boxed.
const INLINE_ALIGN: usize = 16;

#[repr(C, align(16))]
struct Inline(MaybeUninit<[u8; INLINE_FUTURE_BYTES]>);

/// The two functions of the future a slot holds.
struct Erased<T> {
    poll: unsafe fn(*mut u8, &mut TaskContext<'_>) -> Poll<T>,
    drop: unsafe fn(*mut u8),
}

impl<T> Erased<T> {
    /// The functions of a future of type `F` stored in the slot's own bytes.
    #[inline(always)]
    fn inline<F: Future<Output = T>>() -> Self {
        Erased {
            poll: poll_inline::<F>,
            drop: drop_inline::<F>,
        }
    }
}

/// Hands a future that [`FutureSlot::put_poll`] wrote into the slot back to the slot, should its
/// first poll panic: armed before the poll and forgotten after it, so only unwinding runs its
/// `drop`. The slot then drops the future as any other it holds (later, not while unwinding).
struct Reclaim<T, F: Future<Output = T>>(*mut Option<Erased<T>>, PhantomData<fn() -> F>);

impl<T, F: Future<Output = T>> Drop for Reclaim<T, F> {
    fn drop(&mut self) {
        // SAFETY: the slot's own field, which `put_poll` borrows mutably for the poll; the
        // future it now describes was written in the slot's bytes and is still there.
        unsafe { self.0.write(Some(Erased::inline::<F>())) };
    }
}

/// A place for one handler's future, of output `T`, borrowing data for `'a`.
///
/// Created empty by the dispatcher, pinned in its own state, filled by a generated adapter with
/// [`FutureSlot::put`], then polled as a [`Future`]. Dropping the slot drops the future it holds.
/// Polling an empty slot, or one whose future has finished, panics.
pub struct FutureSlot<'a, T> {
    bytes: Inline,
    erased: Option<Erased<T>>,
    /// Invariant in `'a`: a slot made for one lifetime holds futures of exactly that lifetime.
    _borrows: PhantomData<fn(&'a ()) -> &'a ()>,
    /// The future may point into itself once polled: the slot must not move.
    _pinned: PhantomPinned,
}

// SAFETY: `put` accepts only `Send` futures, and the slot hands out no shared access to the
// future (every method that touches it takes `Pin<&mut Self>`), so the slot can move to, and be
// referenced from, another thread.
unsafe impl<T> Send for FutureSlot<'_, T> {}
// SAFETY: as above: through `&FutureSlot` nothing of the future can be reached.
unsafe impl<T> Sync for FutureSlot<'_, T> {}

impl<T> Default for FutureSlot<'_, T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> std::fmt::Debug for FutureSlot<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FutureSlot")
            .field("holds_future", &self.erased.is_some())
            .finish_non_exhaustive()
    }
}

impl<'a, T> FutureSlot<'a, T> {
    /// An empty slot.
    #[inline]
    pub fn new() -> Self {
        // Only `erased` is written: a struct literal with the uninitialised bytes in it lets
        // LLVM merge them with `erased = None` into one memset of the whole slot.
        let mut slot = MaybeUninit::<Self>::uninit();
        // SAFETY: `erased` is written before `assume_init`; `bytes` may stay uninitialised
        // (`MaybeUninit`), and the other fields are zero-sized.
        unsafe {
            ptr::addr_of_mut!((*slot.as_mut_ptr()).erased).write(None);
            slot.assume_init()
        }
    }

    /// Whether `F` is stored inline (otherwise it is boxed).
    const fn fits<F>() -> bool {
        size_of::<F>() <= INLINE_FUTURE_BYTES && align_of::<F>() <= INLINE_ALIGN
    }

    /// Store `future` in the slot, dropping the future it held before, if any.
    #[inline]
    pub fn put<F>(self: Pin<&mut Self>, future: F)
    where
        F: Future<Output = T> + Send + 'a,
    {
        // SAFETY: nothing is moved out of the pinned slot: its old future is dropped in place,
        // and the new one is written in place and never moved afterwards.
        let this = unsafe { self.get_unchecked_mut() };
        this.drop_future();
        let at = this.bytes.0.as_mut_ptr().cast::<u8>();
        if Self::fits::<F>() {
            // SAFETY: `at` is valid for `size_of::<F>()` bytes aligned to `align_of::<F>()`
            // (checked by `fits`), and holds no value (cleared above).
            unsafe { ptr::write(at.cast::<F>(), future) };
            this.erased = Some(Erased::inline::<F>());
        } else {
            let boxed: Pin<Box<F>> = Box::pin(future);
            // SAFETY: a `Pin<Box<F>>` is one pointer, which fits and is aligned in `bytes`.
            unsafe { ptr::write(at.cast::<Pin<Box<F>>>(), boxed) };
            this.erased = Some(Erased {
                poll: poll_boxed::<F>,
                drop: drop_boxed::<F>,
            });
        }
    }

    /// Store `future` in the slot and poll it once, at once, with its concrete type: a handler
    /// that does not wait finishes here, in one call, and is dropped before this returns (the slot
    /// is then empty). One that waits stays in the slot, to be polled as a [`Future`].
    ///
    /// A panic in the poll leaves the future in the slot, which drops it.
    #[inline]
    pub fn put_poll<F>(self: Pin<&mut Self>, future: F, cx: &mut TaskContext<'_>) -> Poll<T>
    where
        F: Future<Output = T> + Send + 'a,
    {
        // SAFETY (the write): `put_poll_with` gives a place valid, aligned and empty for an `F`.
        self.put_poll_with(move |at| unsafe { ptr::write(at, future) }, cx)
    }

    /// [`FutureSlot::put_poll`] of a handler's future made in the slot: `make` builds it (calls
    /// the `async fn`), and `map` turns its output into the slot's once it finishes. What an
    /// `async fn` handler's adapter does.
    ///
    /// Made here rather than by the caller, the future is written into the slot where the
    /// handler's function returns it: the caller's copy of it would be read back with wider loads
    /// than the function's own stores, which stall the CPU until the stores are written out
    /// (`BENCHMARKS.md`, finding 30). So is a future the adapter awaits in an `async` block: the
    /// block keeps it in its own state, and copies it there.
    #[inline]
    pub fn put_poll_map<F, M>(
        self: Pin<&mut Self>,
        make: impl FnOnce() -> F,
        map: M,
        cx: &mut TaskContext<'_>,
    ) -> Poll<T>
    where
        F: Future + Send + 'a,
        M: FnOnce(F::Output) -> T + Send + 'a,
    {
        self.put_poll_with(
            move |at: *mut Mapped<F, M>| {
                // SAFETY: `put_poll_with` gives a place valid, aligned and empty for a `Mapped`,
                // so for each of its fields.
                unsafe {
                    write_words(&raw mut (*at).inner, make());
                    (&raw mut (*at).map).write(Some(map));
                }
            },
            cx,
        )
    }

    /// [`FutureSlot::put_poll`] of the future `write` writes, given a place valid, aligned and
    /// empty for it: in the slot's bytes, or boxed when it does not fit there.
    #[inline(always)]
    fn put_poll_with<F>(
        self: Pin<&mut Self>,
        write: impl FnOnce(*mut F),
        cx: &mut TaskContext<'_>,
    ) -> Poll<T>
    where
        F: Future<Output = T> + Send + 'a,
    {
        if !Self::fits::<F>() {
            let mut boxed = Box::<F>::new_uninit();
            write(boxed.as_mut_ptr());
            // SAFETY: `write` wrote a live `F`.
            let boxed = Box::into_pin(unsafe { boxed.assume_init() });
            let mut this = self;
            this.as_mut().put(boxed);
            return this.poll(cx);
        }
        // SAFETY: as in `put`; the future is polled where it was written, and dropped there.
        let this = unsafe { self.get_unchecked_mut() };
        this.drop_future();
        let at = this.bytes.0.as_mut_ptr().cast::<F>();
        // `at` is valid and aligned for `F` (`fits`), and holds no value (cleared above).
        write(at);
        // The slot is told what it holds only if the future outlives this call: when it waits,
        // or, through `Reclaim`, when its poll panics. A future that finishes at once, as most
        // do, is never described there.
        let reclaim = Reclaim::<T, F>(&raw mut this.erased, PhantomData);
        // SAFETY: the future at `at` is live and pinned with the slot.
        let polled = unsafe { Pin::new_unchecked(&mut *at) }.poll(cx);
        std::mem::forget(reclaim);
        if polled.is_ready() {
            // SAFETY: live, and not described by `erased`, so dropped exactly once.
            unsafe { ptr::drop_in_place(at) };
        } else {
            this.erased = Some(Erased::inline::<F>());
        }
        polled
    }

    /// Drop the held future, if any: the slot is empty afterwards.
    #[inline]
    pub(crate) fn clear(self: Pin<&mut Self>) {
        // SAFETY: the future is dropped in place; nothing moves.
        unsafe { self.get_unchecked_mut() }.drop_future();
    }

    /// Drop the held future, if any.
    #[inline]
    fn drop_future(&mut self) {
        if let Some(erased) = self.erased.take() {
            // SAFETY: `erased` describes the value in `bytes`, which is dropped once: `erased` is
            // taken first, so a panic in the drop leaves the slot empty, not double-dropping.
            unsafe { (erased.drop)(self.bytes.0.as_mut_ptr().cast::<u8>()) };
        }
    }
}

impl<T> Future for FutureSlot<'_, T> {
    type Output = T;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<T> {
        // SAFETY: the held future is polled in place and dropped in place; nothing moves.
        let this = unsafe { self.get_unchecked_mut() };
        let Some(erased) = &this.erased else {
            panic!("a FutureSlot was polled with no future in it (empty, or already finished)");
        };
        let at = this.bytes.0.as_mut_ptr().cast::<u8>();
        // SAFETY: `erased` was made by `put` for the value at `at`, which is pinned with the slot.
        let polled = unsafe { (erased.poll)(at, cx) };
        if polled.is_ready() {
            // A finished future is dropped at once: its borrows end with the handler's run.
            this.drop_future();
        }
        polled
    }
}

/// A future that calls `f` with the task's context at its first poll and is ready at once: how
/// an `async fn` reaches the context to poll a handler's future inside its own poll.
pub(crate) struct WithTask<F>(Option<F>);

impl<F> WithTask<F> {
    /// The bound makes the closure's signature general in the context's lifetimes.
    #[inline]
    pub(crate) fn new<R>(f: F) -> Self
    where
        F: FnOnce(&mut TaskContext<'_>) -> R,
    {
        WithTask(Some(f))
    }
}

impl<F, R> Future for WithTask<F>
where
    F: FnOnce(&mut TaskContext<'_>) -> R + Unpin,
{
    type Output = R;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<R> {
        match self.get_mut().0.take() {
            Some(f) => Poll::Ready(f(cx)),
            None => panic!("WithTask polled after it finished"),
        }
    }
}

impl<T> Drop for FutureSlot<'_, T> {
    fn drop(&mut self) {
        self.drop_future();
    }
}

/// Copy the value at `from` to `to`, in eight-byte words when it is small, each read and
/// written once (volatile, so that the compiler does not merge them into wider copies).
///
/// The values copied here (a handler's future, a call's input) have often just been written,
/// with the narrower stores of their fields; a sixteen-byte load across two of them, which a
/// plain copy uses, waits until the stores are written out to the cache (`BENCHMARKS.md`,
/// findings 30 and 31), about as long as the rest of a handler's dispatch. (The compiler cannot
/// be asked to write such a value where it is kept in the first place: it returns a call's
/// result directly into memory only when it knows it may write there before the call, which a
/// slot or a heap block behind a pointer is not.)
///
/// # Safety
/// `from` holds a live `V`, which the caller does not use or drop afterwards; `to` is valid for
/// writes of a `V`, aligned, does not overlap it, and holds no live value.
#[inline(always)]
pub(crate) unsafe fn copy_words<V>(from: *const V, to: *mut V) {
    // A size is a multiple of its alignment: aligned to 8, the value is whole words.
    if size_of::<V>() <= WORD_COPY_BYTES && align_of::<V>() >= 8 {
        let (src, dst) = (
            from.cast::<MaybeUninit<u64>>(),
            to.cast::<MaybeUninit<u64>>(),
        );
        for i in 0..size_of::<V>() / 8 {
            // SAFETY: both are valid and aligned for the value's whole words (the caller's); a
            // `MaybeUninit<u64>` may hold any bytes, padding and pointers alike.
            unsafe { dst.add(i).write_volatile(src.add(i).read_volatile()) };
        }
    } else {
        // SAFETY: the caller's.
        unsafe { ptr::copy_nonoverlapping(from, to, 1) };
    }
}

/// Write `value` at `at` with [`copy_words`], read where it lies (moved into a local first, it
/// would be copied once more).
///
/// # Safety
/// `at` is valid for writes of a `V`, aligned, and holds no live value.
#[inline(always)]
unsafe fn write_words<V>(at: *mut V, value: V) {
    // SAFETY: `value` is live, and forgotten below: moved to `at`, not dropped here.
    unsafe { copy_words(&raw const value, at) };
    std::mem::forget(value);
}

/// Read the value at `from` out with [`copy_words`].
///
/// # Safety
/// As [`ptr::read`]: `from` holds a live value, which the caller does not use or drop again.
#[inline(always)]
pub(crate) unsafe fn read_words<V>(from: *const V) -> V {
    let mut out = MaybeUninit::<V>::uninit();
    // SAFETY: the caller's, and `out` is a place of its own.
    unsafe {
        copy_words(from, out.as_mut_ptr());
        out.assume_init()
    }
}

/// The largest value [`copy_words`] copies word by word: the futures of handlers that do not
/// wait on anything of their own, which finish at their first poll, and a small record. A larger
/// one is copied as it comes; it takes longer to make than the copy waits.
const WORD_COPY_BYTES: usize = 64;

/// A future whose output goes through `map` when it finishes ([`FutureSlot::put_poll_map`]).
struct Mapped<F, M> {
    inner: F,
    /// Taken when `inner` finishes.
    map: Option<M>,
}

impl<F, M, T> Future for Mapped<F, M>
where
    F: Future,
    M: FnOnce(F::Output) -> T,
{
    type Output = T;

    #[inline(always)]
    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<T> {
        // SAFETY: nothing is moved out: `inner` is pinned with `self`; `map` is not pinned, and
        // is only taken.
        let this = unsafe { self.get_unchecked_mut() };
        // SAFETY: `inner` never moves while `self` is pinned.
        let polled = unsafe { Pin::new_unchecked(&mut this.inner) }.poll(cx);
        match polled {
            Poll::Ready(out) => match this.map.take() {
                Some(map) => Poll::Ready(map(out)),
                None => panic!("a mapped handler future was polled after it finished"),
            },
            Poll::Pending => Poll::Pending,
        }
    }
}

/// # Safety
/// `at` holds a live, pinned `F`.
unsafe fn poll_inline<F: Future>(at: *mut u8, cx: &mut TaskContext<'_>) -> Poll<F::Output> {
    // SAFETY: the caller's promise; the slot never moves the value.
    unsafe { Pin::new_unchecked(&mut *at.cast::<F>()) }.poll(cx)
}

/// # Safety
/// `at` holds a live `F`, which is not used again.
unsafe fn drop_inline<F>(at: *mut u8) {
    // SAFETY: the caller's promise.
    unsafe { ptr::drop_in_place(at.cast::<F>()) }
}

/// # Safety
/// `at` holds a live `Pin<Box<F>>`.
unsafe fn poll_boxed<F: Future>(at: *mut u8, cx: &mut TaskContext<'_>) -> Poll<F::Output> {
    // SAFETY: the caller's promise.
    unsafe { &mut *at.cast::<Pin<Box<F>>>() }.as_mut().poll(cx)
}

/// # Safety
/// `at` holds a live `Pin<Box<F>>`, which is not used again.
unsafe fn drop_boxed<F>(at: *mut u8) {
    // SAFETY: the caller's promise.
    unsafe { ptr::drop_in_place(at.cast::<Pin<Box<F>>>()) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::Waker;

    /// Counts its drops.
    struct Tracked(Arc<AtomicUsize>);
    impl Drop for Tracked {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn poll_once<F: Future>(f: Pin<&mut F>) -> Poll<F::Output> {
        f.poll(&mut TaskContext::from_waker(Waker::noop()))
    }

    /// A future that pends `n` times, then returns `value`.
    async fn after_pending(n: usize, value: u32, tracked: Tracked) -> u32 {
        for _ in 0..n {
            let mut once = false;
            std::future::poll_fn(|_| {
                if once {
                    Poll::Ready(())
                } else {
                    once = true;
                    Poll::Pending
                }
            })
            .await;
        }
        drop(tracked);
        value
    }

    #[test]
    fn a_small_future_is_stored_inline_polled_to_its_end_and_dropped_once() {
        let drops = Arc::new(AtomicUsize::new(0));
        let mut slot = Box::pin(FutureSlot::<u32>::new());
        slot.as_mut()
            .put(after_pending(2, 7, Tracked(drops.clone())));
        assert!(FutureSlot::<u32>::fits::<std::future::Ready<u32>>());
        assert_eq!(poll_once(slot.as_mut()), Poll::Pending);
        assert_eq!(poll_once(slot.as_mut()), Poll::Pending);
        assert_eq!(poll_once(slot.as_mut()), Poll::Ready(7));
        assert_eq!(drops.load(Ordering::SeqCst), 1);
        drop(slot);
        assert_eq!(drops.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_future_larger_than_the_slot_is_boxed_and_behaves_the_same() {
        let drops = Arc::new(AtomicUsize::new(0));
        let big = [1u8; INLINE_FUTURE_BYTES * 2];
        let tracked = Tracked(drops.clone());
        let fut = async move {
            let _tracked = tracked;
            std::future::ready(()).await;
            big.iter().map(|&b| u32::from(b)).sum::<u32>()
        };
        fn fits<F>(_: &F) -> bool {
            FutureSlot::<u32>::fits::<F>()
        }
        assert!(!fits(&fut));
        let mut slot = std::pin::pin!(FutureSlot::<u32>::new());
        slot.as_mut().put(fut);
        assert_eq!(poll_once(slot.as_mut()), Poll::Ready(1024));
        assert_eq!(drops.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn an_unfinished_future_is_dropped_with_its_slot_or_when_replaced() {
        let drops = Arc::new(AtomicUsize::new(0));
        {
            let mut slot = std::pin::pin!(FutureSlot::<u32>::new());
            slot.as_mut()
                .put(after_pending(5, 1, Tracked(drops.clone())));
            assert_eq!(poll_once(slot.as_mut()), Poll::Pending);
            slot.as_mut()
                .put(after_pending(5, 2, Tracked(drops.clone())));
            assert_eq!(drops.load(Ordering::SeqCst), 1, "replaced");
        }
        assert_eq!(drops.load(Ordering::SeqCst), 2, "dropped with the slot");
    }

    #[test]
    fn a_future_that_panics_is_dropped_once_with_its_slot() {
        let drops = Arc::new(AtomicUsize::new(0));
        let tracked = Tracked(drops.clone());
        let mut slot = Box::pin(FutureSlot::<u32>::new());
        slot.as_mut().put(async move {
            let _tracked = tracked;
            panic!("boom");
        });
        let caught =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| poll_once(slot.as_mut())));
        assert!(caught.is_err());
        drop(slot);
        assert_eq!(drops.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn put_poll_finishes_a_future_that_does_not_wait_and_leaves_the_slot_empty() {
        let drops = Arc::new(AtomicUsize::new(0));
        let mut slot = std::pin::pin!(FutureSlot::<u32>::new());
        let mut cx = TaskContext::from_waker(Waker::noop());
        let polled = slot
            .as_mut()
            .put_poll(after_pending(0, 3, Tracked(drops.clone())), &mut cx);
        assert_eq!(polled, Poll::Ready(3));
        assert_eq!(drops.load(Ordering::SeqCst), 1, "dropped when it finished");
        assert!(slot.erased.is_none(), "nothing left to poll or drop");
    }

    #[test]
    fn put_poll_keeps_a_waiting_future_in_the_slot_to_be_polled_to_its_end() {
        let drops = Arc::new(AtomicUsize::new(0));
        let mut slot = std::pin::pin!(FutureSlot::<u32>::new());
        let mut cx = TaskContext::from_waker(Waker::noop());
        let polled = slot
            .as_mut()
            .put_poll(after_pending(2, 9, Tracked(drops.clone())), &mut cx);
        assert_eq!(polled, Poll::Pending);
        assert_eq!(poll_once(slot.as_mut()), Poll::Pending);
        assert_eq!(poll_once(slot.as_mut()), Poll::Ready(9));
        assert_eq!(drops.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn put_poll_of_a_future_that_panics_leaves_it_to_be_dropped_once() {
        let drops = Arc::new(AtomicUsize::new(0));
        let tracked = Tracked(drops.clone());
        let mut slot = Box::pin(FutureSlot::<u32>::new());
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let mut cx = TaskContext::from_waker(Waker::noop());
            slot.as_mut().put_poll(
                async move {
                    let _tracked = tracked;
                    panic!("boom");
                },
                &mut cx,
            )
        }));
        assert!(caught.is_err());
        assert_eq!(
            drops.load(Ordering::SeqCst),
            1,
            "unwinding dropped the captures"
        );
        slot.as_mut().clear();
        drop(slot);
        assert_eq!(drops.load(Ordering::SeqCst), 1, "and nothing twice");
    }

    /// A future whose own fields (not an `async` block's locals, which unwinding drops) outlive
    /// the panic of its first poll.
    struct PanicsHolding(#[allow(dead_code)] Tracked);

    impl Future for PanicsHolding {
        type Output = u32;
        fn poll(self: Pin<&mut Self>, _: &mut TaskContext<'_>) -> Poll<u32> {
            panic!("boom, with a field still held");
        }
    }

    #[test]
    fn put_poll_of_a_future_whose_fields_outlive_its_panic_leaves_them_to_the_slot() {
        let drops = Arc::new(AtomicUsize::new(0));
        let mut slot = Box::pin(FutureSlot::<u32>::new());
        let held = PanicsHolding(Tracked(drops.clone()));
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let mut cx = TaskContext::from_waker(Waker::noop());
            slot.as_mut().put_poll(held, &mut cx)
        }));
        assert!(caught.is_err());
        assert_eq!(drops.load(Ordering::SeqCst), 0, "still in the slot");
        slot.as_mut().clear();
        assert_eq!(drops.load(Ordering::SeqCst), 1, "dropped by the slot");
        drop(slot);
        assert_eq!(drops.load(Ordering::SeqCst), 1, "and only once");
    }

    #[test]
    fn put_poll_boxes_a_future_larger_than_the_slot_and_finishes_it_the_same() {
        let big = [2u8; INLINE_FUTURE_BYTES * 2];
        let fut = async move {
            std::future::ready(()).await;
            big.iter().map(|&b| u32::from(b)).sum::<u32>()
        };
        let mut slot = std::pin::pin!(FutureSlot::<u32>::new());
        let mut cx = TaskContext::from_waker(Waker::noop());
        assert_eq!(slot.as_mut().put_poll(fut, &mut cx), Poll::Ready(2048));
        assert!(slot.erased.is_none());
    }

    #[test]
    fn with_task_hands_the_pollers_context_to_its_closure_once() {
        let mut calls = 0;
        let mut fut = std::pin::pin!(WithTask::new(|_cx: &mut TaskContext<'_>| {
            calls += 1;
            7
        }));
        assert_eq!(poll_once(fut.as_mut()), Poll::Ready(7));
        assert_eq!(calls, 1);
    }

    #[test]
    fn polling_an_empty_slot_panics_rather_than_reading_garbage() {
        let mut slot = Box::pin(FutureSlot::<u32>::new());
        let caught =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| poll_once(slot.as_mut())));
        assert!(caught.is_err());
    }

    #[test]
    fn a_slot_is_send_so_the_calls_future_stays_send() {
        fn send<T: Send>() {}
        send::<FutureSlot<'static, u32>>();
    }
    /// A future of `N` words that holds pointers into a record and pends `waits` times before it
    /// adds its words to it: what a handler's future looks like to the slot.
    struct Words<'a, const N: usize> {
        record: &'a mut u64,
        words: [u64; N],
        waits: usize,
    }

    impl<const N: usize> Future for Words<'_, N> {
        type Output = u64;
        fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<u64> {
            let this = self.get_mut();
            if this.waits > 0 {
                this.waits -= 1;
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            *this.record += this.words.iter().sum::<u64>();
            Poll::Ready(*this.record)
        }
    }

    /// `put_poll_map` of a [`Words`] of `N` words into a fresh slot: what it returned at once,
    /// then at each later poll until it finished, and the record.
    fn mapped_words<const N: usize>(waits: usize) -> (Vec<Poll<String>>, u64) {
        let mut record = 1;
        let mut polls = Vec::new();
        {
            let mut slot = Box::pin(FutureSlot::<String>::new());
            let mut cx = TaskContext::from_waker(Waker::noop());
            let words = [2u64; N];
            let record = &mut record;
            let mut polled = slot.as_mut().put_poll_map(
                move || Words {
                    record,
                    words,
                    waits,
                },
                |total| format!("total {total}"),
                &mut cx,
            );
            loop {
                let ready = polled.is_ready();
                polls.push(polled);
                if ready {
                    break;
                }
                polled = poll_once(slot.as_mut());
            }
            assert!(slot.erased.is_none(), "nothing left in the slot");
        }
        (polls, record)
    }

    #[test]
    fn put_poll_map_maps_the_output_of_a_future_made_in_the_slot_whatever_its_size() {
        // The handler's future copied word by word: 24 bytes, and the largest, 64.
        assert_eq!(size_of::<Words<'static, 1>>(), 24);
        assert_eq!(
            mapped_words::<1>(0),
            (vec![Poll::Ready("total 3".into())], 3)
        );
        assert_eq!(size_of::<Words<'static, 6>>(), WORD_COPY_BYTES);
        assert_eq!(
            mapped_words::<6>(0),
            (vec![Poll::Ready("total 13".into())], 13)
        );
        // Copied as it comes: 72 bytes; boxed: more than the slot holds.
        assert_eq!(size_of::<Words<'static, 7>>(), 72);
        assert_eq!(
            mapped_words::<7>(0),
            (vec![Poll::Ready("total 15".into())], 15)
        );
        type Boxed = Mapped<Words<'static, 100>, fn(u64) -> String>;
        assert!(!FutureSlot::<String>::fits::<Boxed>());
        assert_eq!(
            mapped_words::<100>(0),
            (vec![Poll::Ready("total 201".into())], 201)
        );
    }

    #[test]
    fn put_poll_map_maps_the_output_of_a_waiting_future_once_when_it_finishes() {
        for (polls, record) in [
            mapped_words::<1>(2),
            mapped_words::<6>(2),
            mapped_words::<100>(2),
        ] {
            assert_eq!(polls.len(), 3);
            assert_eq!(polls[..2], [Poll::Pending, Poll::Pending]);
            assert_eq!(polls[2], Poll::Ready(format!("total {record}")));
        }
    }

    #[test]
    fn put_poll_map_of_a_small_future_keeps_what_it_points_to_and_drops_it_once() {
        let drops = Arc::new(AtomicUsize::new(0));
        let maps = Arc::new(AtomicUsize::new(0));
        let mut slot = std::pin::pin!(FutureSlot::<u32>::new());
        let mut cx = TaskContext::from_waker(Waker::noop());
        let (tracked, counted) = (Tracked(drops.clone()), Tracked(maps.clone()));
        let polled = slot.as_mut().put_poll_map(
            move || after_pending(1, 4, tracked),
            move |v| {
                drop(counted);
                v * 10
            },
            &mut cx,
        );
        assert_eq!(polled, Poll::Pending);
        assert_eq!(poll_once(slot.as_mut()), Poll::Ready(40));
        assert_eq!(
            drops.load(Ordering::SeqCst),
            1,
            "the future's capture, once"
        );
        assert_eq!(maps.load(Ordering::SeqCst), 1, "the map's capture, once");
    }

    #[test]
    fn put_poll_map_of_a_future_that_panics_drops_it_and_its_map_once() {
        let drops = Arc::new(AtomicUsize::new(0));
        let (tracked, counted) = (Tracked(drops.clone()), Tracked(drops.clone()));
        let mut slot = Box::pin(FutureSlot::<u32>::new());
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let mut cx = TaskContext::from_waker(Waker::noop());
            slot.as_mut().put_poll_map(
                move || PanicsHolding(tracked),
                move |v: u32| {
                    drop(counted);
                    v
                },
                &mut cx,
            )
        }));
        assert!(caught.is_err());
        assert_eq!(drops.load(Ordering::SeqCst), 0, "both still in the slot");
        slot.as_mut().clear();
        assert_eq!(
            drops.load(Ordering::SeqCst),
            2,
            "dropped with it, once each"
        );
        drop(slot);
        assert_eq!(drops.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn put_poll_map_of_a_future_with_no_word_alignment_writes_it_as_it_comes() {
        let mut slot = std::pin::pin!(FutureSlot::<u8>::new());
        let mut cx = TaskContext::from_waker(Waker::noop());
        let make = || std::future::ready([7u8; 3]);
        assert_eq!(align_of::<std::future::Ready<[u8; 3]>>(), 1);
        let polled = slot.as_mut().put_poll_map(make, |b| b[0] + b[2], &mut cx);
        assert_eq!(polled, Poll::Ready(14));
    }
}

/// The heap block of a call's flow (the state of a call that has handlers), reused from the
/// thread's last call of the same size class.
///
/// An async call that has handlers keeps its flow on the heap, so that a call with none stays as
/// small as the default's own future. Allocating and freeing that block cost more than the rest
/// of a call with one sync handler (glibc's `malloc` and `free` take ~140 instructions for a
/// block of the flow's size, past its per-thread cache). Calls on one thread come one after the
/// other, so each thread keeps the block of its last call, one per size class (powers of two
/// from 256 bytes to 64 KB), and hands it to the next call of that class. A flow over 64 KB, or
/// aligned to more than 16 bytes, gets a block of its own.
///
/// One pointer wide, as a `Box`. The value is never moved out of its block: a `FlowBox` hands it
/// out only pinned.
pub(crate) struct FlowBox<T> {
    ptr: ptr::NonNull<T>,
    _owns: PhantomData<T>,
}

// SAFETY: a `FlowBox` owns its value as a `Box` does; the block goes back to the cache of
// whichever thread drops it, and any thread may free it.
unsafe impl<T: Send> Send for FlowBox<T> {}
// SAFETY: as above: `&FlowBox` gives access to nothing.
unsafe impl<T: Sync> Sync for FlowBox<T> {}

/// An empty block for a [`FlowBox`], from [`FlowBox::block_for`]. Taken first and written after,
/// so that a large value is built in place rather than on the stack and copied.
pub(crate) struct FlowBlock<T> {
    ptr: ptr::NonNull<T>,
}

impl<T> FlowBlock<T> {
    /// Write `value` into the block.
    #[inline(always)]
    pub(crate) fn write(self, value: T) -> FlowBox<T> {
        let ptr = self.ptr;
        std::mem::forget(self);
        // SAFETY: `ptr` is a fresh, exclusive block of at least `size_of::<T>()` bytes aligned
        // for `T`.
        unsafe { ptr.as_ptr().write(value) };
        FlowBox {
            ptr,
            _owns: PhantomData,
        }
    }
}

impl<T> Drop for FlowBlock<T> {
    /// A block dropped before it was written (the value's construction panicked) is freed.
    fn drop(&mut self) {
        // SAFETY: taken by `FlowBox::<T>::block_for`, never written.
        unsafe { FlowBox::<T>::give_back(self.ptr.as_ptr().cast()) }
    }
}

/// The alignment of cached blocks.
const BLOCK_ALIGN: usize = 16;

/// The size classes of cached blocks: `256 << k` bytes for `k` below this.
const CLASSES: usize = 9;

/// The smallest class, in bytes.
const CLASS_MIN: usize = 256;

/// The blocks a thread keeps for its next calls, one per class, freed when the thread ends.
struct Spares([Cell<*mut u8>; CLASSES]);

impl Drop for Spares {
    fn drop(&mut self) {
        for (class, spare) in self.0.iter().enumerate() {
            let ptr = spare.replace(ptr::null_mut());
            if !ptr.is_null() {
                // SAFETY: a spare block of this class was allocated with its layout.
                unsafe { dealloc(ptr, class_layout(class)) }
            }
        }
    }
}

thread_local! {
    static SPARES: Spares = const { Spares([const { Cell::new(ptr::null_mut()) }; CLASSES]) };
}

/// The layout of a block of `class`.
fn class_layout(class: usize) -> Layout {
    // SAFETY: `BLOCK_ALIGN` is a power of two, and the size is far below `isize::MAX`.
    unsafe { Layout::from_size_align_unchecked(CLASS_MIN << class, BLOCK_ALIGN) }
}

impl<T> FlowBox<T> {
    /// The size class of a `T`, or `None` when a `T` gets a block of its own.
    const CLASS: Option<usize> = {
        let size = if size_of::<T>() < CLASS_MIN {
            CLASS_MIN
        } else {
            size_of::<T>()
        };
        let class = (size.next_power_of_two() / CLASS_MIN).trailing_zeros() as usize;
        if align_of::<T>() > BLOCK_ALIGN || class >= CLASSES {
            None
        } else {
            Some(class)
        }
    };

    /// A block for one `T`: the thread's spare block of its class, or a new one.
    /// [`FlowBlock::write`] puts the value in it.
    #[inline(never)]
    pub(crate) fn block_for() -> FlowBlock<T> {
        let taken = match Self::CLASS {
            Some(class) => SPARES
                .try_with(|spares| spares.0[class].replace(ptr::null_mut()))
                .unwrap_or(ptr::null_mut()),
            None => ptr::null_mut(),
        };
        let ptr = match ptr::NonNull::new(taken.cast::<T>()) {
            Some(ptr) => ptr,
            None => Self::alloc(),
        };
        FlowBlock { ptr }
    }

    /// The layout of a block for `T`: its class's, or its own (never zero-sized).
    fn layout() -> Layout {
        match Self::CLASS {
            Some(class) => class_layout(class),
            None => {
                let layout = Layout::new::<T>();
                Layout::from_size_align(layout.size().max(1), layout.align()).unwrap_or(layout)
            }
        }
    }

    /// A new block for `T`.
    #[cold]
    fn alloc() -> ptr::NonNull<T> {
        let layout = Self::layout();
        // SAFETY: the layout's size is not zero.
        let ptr = unsafe { alloc(layout) };
        match ptr::NonNull::new(ptr.cast::<T>()) {
            Some(ptr) => ptr,
            None => handle_alloc_error(layout),
        }
    }

    /// Keep an empty block as its thread's spare of its class, or free it.
    ///
    /// # Safety
    /// `ptr` is a block taken by `block_for` for this `T`, holding no value, not used afterwards.
    unsafe fn give_back(ptr: *mut u8) {
        if let Some(class) = Self::CLASS {
            let kept = SPARES.try_with(|spares| {
                let spare = &spares.0[class];
                let free = spare.get().is_null();
                if free {
                    spare.set(ptr);
                }
                free
            });
            if kept == Ok(true) {
                return;
            }
        }
        // SAFETY: allocated with this layout (a spare block of the class has the same one).
        unsafe { dealloc(ptr, Self::layout()) }
    }

    /// The block, holding the value, for [`FlowBox::from_raw`] to own again.
    #[inline(always)]
    pub(crate) fn into_raw(flow: Self) -> ptr::NonNull<T> {
        let ptr = flow.ptr;
        std::mem::forget(flow);
        ptr
    }

    /// Own again the block of [`FlowBox::into_raw`].
    ///
    /// # Safety
    /// `ptr` came from `FlowBox::<T>::into_raw`, and is owned by nothing else.
    #[inline(always)]
    pub(crate) unsafe fn from_raw(ptr: ptr::NonNull<T>) -> Self {
        FlowBox {
            ptr,
            _owns: PhantomData,
        }
    }

    /// The value, pinned: it never moves out of its block.
    #[cfg(test)]
    fn as_pin_mut(&mut self) -> Pin<&mut T> {
        // SAFETY: the value was written at `ptr` and stays there until the box is dropped.
        unsafe { Pin::new_unchecked(self.ptr.as_mut()) }
    }
}

impl<T> Drop for FlowBox<T> {
    fn drop(&mut self) {
        // SAFETY: the value is dropped once, in place, and not touched afterwards; the block is
        // then empty.
        unsafe {
            ptr::drop_in_place(self.ptr.as_ptr());
            Self::give_back(self.ptr.as_ptr().cast());
        }
    }
}

#[cfg(test)]
mod flow_box_tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Where a flow box's value lives.
    fn address<T>(flow: &mut FlowBox<T>) -> usize {
        flow.ptr.as_ptr() as usize
    }

    /// A value of `N` bytes with an alignment of 16.
    #[repr(align(16))]
    struct Bytes<const N: usize>([u8; N]);

    #[test]
    fn the_next_flow_on_a_thread_reuses_the_block_of_the_last_one() {
        std::thread::spawn(|| {
            let mut first = FlowBox::block_for().write(Bytes([1u8; 300]));
            let at = address(&mut first);
            drop(first);
            // Of another type and size, in the same class (257 to 512 bytes): the same block.
            let mut second = FlowBox::block_for().write(Bytes([2u8; 480]));
            assert_eq!(address(&mut second), at);
            assert_eq!(second.as_pin_mut().0[479], 2);
        })
        .join()
        .expect("the thread ran");
    }

    #[test]
    fn flows_of_different_size_classes_keep_a_block_each_and_a_second_flow_of_a_class_gets_its_own()
    {
        std::thread::spawn(|| {
            let mut small = FlowBox::block_for().write(Bytes([0u8; 100]));
            let mut large = FlowBox::block_for().write(Bytes([0u8; 1000]));
            let (small_at, large_at) = (address(&mut small), address(&mut large));
            // While the small one lives, a second small call gets a block of its own.
            let mut other = FlowBox::block_for().write(Bytes([0u8; 200]));
            assert_ne!(address(&mut other), small_at);
            drop(small);
            drop(other); // the class already has its spare: this block is freed
            drop(large);
            let mut next_large = FlowBox::block_for().write(Bytes([0u8; 900]));
            let mut next_small = FlowBox::block_for().write(Bytes([0u8; 30]));
            assert_eq!(
                address(&mut next_large),
                large_at,
                "the 1 KB class kept its block"
            );
            assert_eq!(
                address(&mut next_small),
                small_at,
                "the 256-byte class kept its block"
            );
        })
        .join()
        .expect("the thread ran");
    }

    #[test]
    fn a_flow_over_the_largest_class_gets_a_block_of_its_own() {
        assert_eq!(FlowBox::<Bytes<{ 64 * 1024 }>>::CLASS, Some(CLASSES - 1));
        assert_eq!(FlowBox::<Bytes<{ 64 * 1024 + 16 }>>::CLASS, None);
        let mut flow = FlowBox::block_for().write(Bytes([9u8; 70_000]));
        assert_eq!(flow.as_pin_mut().0[69_999], 9);
    }

    #[test]
    fn an_over_aligned_flow_gets_a_block_of_its_own_alignment() {
        #[repr(align(64))]
        struct Wide(u8);
        let mut flow = FlowBox::block_for().write(Wide(7));
        assert_eq!(address(&mut flow) % 64, 0);
        assert_eq!(flow.as_pin_mut().0, 7);
    }

    #[test]
    fn a_flow_is_dropped_once_in_its_block_and_a_block_never_written_is_freed() {
        struct Counted(Arc<AtomicUsize>);
        impl Drop for Counted {
            fn drop(&mut self) {
                self.0.fetch_add(1, Ordering::SeqCst);
            }
        }
        let drops = Arc::new(AtomicUsize::new(0));
        let flow = FlowBox::block_for().write(Counted(Arc::clone(&drops)));
        assert_eq!(drops.load(Ordering::SeqCst), 0);
        drop(flow);
        assert_eq!(drops.load(Ordering::SeqCst), 1);
        drop(FlowBox::<Counted>::block_for());
        assert_eq!(
            drops.load(Ordering::SeqCst),
            1,
            "an empty block drops no value"
        );
    }

    #[test]
    fn a_block_may_be_freed_on_another_thread_than_the_one_that_took_it() {
        let flow = FlowBox::block_for().write(Bytes([3u8; 500]));
        let mut flow = std::thread::spawn(move || flow)
            .join()
            .expect("the thread ran");
        assert_eq!(flow.as_pin_mut().0[499], 3);
        std::thread::spawn(move || drop(flow))
            .join()
            .expect("the thread ran");
    }
}
