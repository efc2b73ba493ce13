//! [`FutureSlot`]: where an `async fn` handler's adapter leaves the handler's future, so that the
//! dispatcher can await it without a heap allocation per call.
//!
//! Handlers are called through plain function pointers, so the future of an `async fn` handler
//! must be type-erased. A `Box<dyn Future>` does that at the price of an allocation and a free on
//! every call. A `FutureSlot` lives in the dispatcher's own (already pinned) state instead: the
//! adapter writes the handler's future into the slot's inline, aligned bytes, next to the two
//! functions that poll and drop it. A future too large for the slot is boxed, as before.

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
            this.erased = Some(Erased {
                poll: poll_inline::<F>,
                drop: drop_inline::<F>,
            });
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
        if !Self::fits::<F>() {
            let mut this = self;
            this.as_mut().put(future);
            return this.poll(cx);
        }
        // SAFETY: as in `put`; the future is polled where it was written, and dropped there.
        let this = unsafe { self.get_unchecked_mut() };
        this.drop_future();
        let at = this.bytes.0.as_mut_ptr().cast::<F>();
        // SAFETY: `at` is valid and aligned for `F` (`fits`), and holds no value (cleared).
        unsafe { ptr::write(at, future) };
        this.erased = Some(Erased {
            poll: poll_inline::<F>,
            drop: drop_inline::<F>,
        });
        // SAFETY: the future at `at` is live and pinned with the slot.
        let polled = unsafe { Pin::new_unchecked(&mut *at) }.poll(cx);
        if polled.is_ready() {
            this.erased = None;
            // SAFETY: live, and no longer described by `erased`, so dropped exactly once.
            unsafe { ptr::drop_in_place(at) };
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
}

/// The heap block of a call's flow (the state of a call that has handlers), taken from a
/// one-block cache per thread when the cached block is large enough.
///
/// An async call that has handlers keeps its flow on the heap, so that a call with none stays as
/// small as the default's own future. Allocating and freeing that block cost more than the rest
/// of a call with one sync handler (glibc's `malloc` and `free` take ~140 instructions for a
/// block of the flow's size, past its per-thread cache). Calls on one thread come one after the
/// other, so the block of the last call is kept and handed to the next one.
///
/// The value is never moved out of its block: a `FlowBox` hands it out only pinned.
pub(crate) struct FlowBox<T> {
    ptr: ptr::NonNull<T>,
    /// The size of the block, which may be larger than `T` when it came from the cache; `0` when
    /// the block was allocated for `T` alone (an alignment over [`BLOCK_ALIGN`]).
    block: usize,
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
    block: usize,
}

impl<T> FlowBlock<T> {
    /// Write `value` into the block.
    #[inline(always)]
    pub(crate) fn write(self, value: T) -> FlowBox<T> {
        // SAFETY: `ptr` is a fresh, exclusive block of at least `size_of::<T>()` bytes aligned
        // for `T`.
        unsafe { self.ptr.as_ptr().write(value) };
        let flow = FlowBox {
            ptr: self.ptr,
            block: self.block,
            _owns: PhantomData,
        };
        std::mem::forget(self);
        flow
    }
}

impl<T> Drop for FlowBlock<T> {
    /// A block dropped before it was written (the value's construction panicked) is freed.
    fn drop(&mut self) {
        let (ptr, layout) = match self.block {
            0 => (self.ptr.as_ptr().cast::<u8>(), FlowBox::<T>::own_layout()),
            size => (self.ptr.as_ptr().cast::<u8>(), block_layout(size)),
        };
        // SAFETY: allocated with this layout, never written.
        unsafe { dealloc(ptr, layout) }
    }
}

/// The alignment of cached blocks.
const BLOCK_ALIGN: usize = 16;

/// Blocks are sized in steps of this many bytes, so that calls of different operations can share
/// one.
const BLOCK_STEP: usize = 256;

/// Blocks over this size are not kept.
const BLOCK_MAX: usize = 64 * 1024;

/// The block a thread keeps for its next call, freed when the thread ends.
struct Spare {
    ptr: Cell<*mut u8>,
    size: Cell<usize>,
}

impl Drop for Spare {
    fn drop(&mut self) {
        let ptr = self.ptr.replace(ptr::null_mut());
        if !ptr.is_null() {
            // SAFETY: a spare block was allocated with this size and `BLOCK_ALIGN`.
            unsafe { dealloc(ptr, block_layout(self.size.get())) }
        }
    }
}

thread_local! {
    static SPARE: Spare = const {
        Spare { ptr: Cell::new(ptr::null_mut()), size: Cell::new(0) }
    };
}

/// The layout of a block of `size` bytes (a multiple of `BLOCK_STEP`, not over `BLOCK_MAX`).
fn block_layout(size: usize) -> Layout {
    // SAFETY: `BLOCK_ALIGN` is a power of two, and `size` is far below `isize::MAX`.
    unsafe { Layout::from_size_align_unchecked(size, BLOCK_ALIGN) }
}

impl<T> FlowBox<T> {
    /// A block for one `T`: the thread's spare block when it is large enough, a new one
    /// otherwise. [`FlowBlock::write`] puts the value in it.
    #[inline]
    pub(crate) fn block_for() -> FlowBlock<T> {
        let (ptr, block) = Self::block();
        FlowBlock { ptr, block }
    }

    /// A block for one `T`, and its size (`0`: allocated for `T` alone).
    #[inline(never)]
    fn block() -> (ptr::NonNull<T>, usize) {
        let size = size_of::<T>().div_ceil(BLOCK_STEP).max(1) * BLOCK_STEP;
        if align_of::<T>() > BLOCK_ALIGN || size > BLOCK_MAX {
            return (Self::alloc(Self::own_layout()), 0);
        }
        let spare = SPARE.try_with(|spare| {
            if spare.size.get() >= size {
                (spare.ptr.replace(ptr::null_mut()), spare.size.get())
            } else {
                (ptr::null_mut(), 0)
            }
        });
        match spare {
            Ok((ptr, block)) => match ptr::NonNull::new(ptr.cast::<T>()) {
                Some(ptr) => (ptr, block),
                None => (Self::alloc(block_layout(size)), size),
            },
            Err(_) => (Self::alloc(block_layout(size)), size),
        }
    }

    /// The layout of a block allocated for `T` alone (never zero-sized).
    fn own_layout() -> Layout {
        let layout = Layout::new::<T>();
        Layout::from_size_align(layout.size().max(1), layout.align()).unwrap_or(layout)
    }

    /// A new block of `layout` (never zero-sized: `T` is a future's state).
    #[cold]
    fn alloc(layout: Layout) -> ptr::NonNull<T> {
        let layout =
            Layout::from_size_align(layout.size().max(1), layout.align()).unwrap_or(layout);
        // SAFETY: the layout's size is not zero.
        let ptr = unsafe { alloc(layout) };
        match ptr::NonNull::new(ptr.cast::<T>()) {
            Some(ptr) => ptr,
            None => handle_alloc_error(layout),
        }
    }

    /// The value, pinned: it never moves out of its block.
    #[inline]
    pub(crate) fn as_pin_mut(&mut self) -> Pin<&mut T> {
        // SAFETY: the value was written at `ptr` and stays there until the box is dropped.
        unsafe { Pin::new_unchecked(self.ptr.as_mut()) }
    }
}

impl<T> Drop for FlowBox<T> {
    fn drop(&mut self) {
        // SAFETY: the value is dropped once, in place, and not touched afterwards.
        unsafe { ptr::drop_in_place(self.ptr.as_ptr()) };
        let ptr = self.ptr.as_ptr().cast::<u8>();
        if self.block == 0 {
            let layout = Layout::new::<T>();
            let layout =
                Layout::from_size_align(layout.size().max(1), layout.align()).unwrap_or(layout);
            // SAFETY: allocated by `alloc` with this layout.
            unsafe { dealloc(ptr, layout) };
            return;
        }
        // Keep the larger of this block and the spare one; free the other.
        let size = self.block;
        let freed = SPARE.try_with(|spare| {
            if spare.size.get() >= size && !spare.ptr.get().is_null() {
                return (ptr, size);
            }
            let old = spare.ptr.replace(ptr);
            (old, spare.size.replace(size))
        });
        let (free, free_size) = freed.unwrap_or((ptr, size));
        if !free.is_null() {
            // SAFETY: every cached block was allocated with `block_layout` of its size.
            unsafe { dealloc(free, block_layout(free_size)) };
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
            // Smaller, of another type: it fits in the same block.
            let mut second = FlowBox::block_for().write(Bytes([2u8; 40]));
            assert_eq!(address(&mut second), at);
            assert_eq!(second.as_pin_mut().0[39], 2);
        })
        .join()
        .expect("the thread ran");
    }

    #[test]
    fn a_flow_larger_than_the_spare_block_gets_a_new_one_and_the_larger_block_is_kept() {
        std::thread::spawn(|| {
            drop(FlowBox::block_for().write(Bytes([0u8; 100])));
            let mut large = FlowBox::block_for().write(Bytes([0u8; 1000]));
            let at = address(&mut large);
            // While the large one lives, a second call gets a block of its own.
            let mut small = FlowBox::block_for().write(Bytes([0u8; 100]));
            assert_ne!(address(&mut small), at);
            drop(large);
            drop(small);
            let mut next = FlowBox::block_for().write(Bytes([0u8; 900]));
            assert_eq!(address(&mut next), at, "the 1,000-byte block was kept");
        })
        .join()
        .expect("the thread ran");
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
