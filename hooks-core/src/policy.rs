//! The policies wrapped around every handler run: panic isolation, timeouts, the recursion guard's
//! depth marker, execution history and the tracing span.
//!
//! The dispatcher calls a handler through the policy and gets back what the handler returned, or
//! a failure (a panic or a timeout) it then treats by phase: a failed before
//! handler rejects the call (fail closed); a failed after handler is logged and counted, and the
//! result is kept (or replaced, with [`AfterFailure::Fail`]).

use std::any::Any;
use std::cell::Cell;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};
use std::time::{Duration, Instant};

use crate::error::HookError;
use crate::registration::Registration;
use crate::stats::{History, Outcome};

/// The timeout of a handler that does not set its own.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// What happens to the result when an after handler panics or times out.
///
/// The handlers of a custom event ([`crate::Hooks::emit`]) all run whatever this says: each
/// failure is logged and counted, and the event is still delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AfterFailure {
    /// Log and count it; the caller gets the result as the handlers left it (the default).
    /// That includes what the failing handler changed before it panicked or timed out: the
    /// result is not copied before each handler, which would cost every call. Where a
    /// half-done change must never reach a client (a handler that redacts), choose
    /// [`AfterFailure::Fail`].
    #[default]
    Keep,
    /// The caller gets the failure as an error (500 `handler_panicked` or 504 `handler_timeout`).
    Fail,
}

/// A handler run that did not return: it panicked or timed out.
///
/// One pointer, boxed because it is rare: a handler's run result (`Result<Result<T, HookError>,
/// Failure>`) then stays two words for a small `T`, which comes back in registers rather than
/// through memory on every run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Failure(Box<FailureKind>);

#[derive(Debug, Clone, PartialEq, Eq)]
enum FailureKind {
    Panicked(String),
    TimedOut(Duration),
}

impl Failure {
    #[cold]
    fn panicked(message: String) -> Self {
        Failure(Box::new(FailureKind::Panicked(message)))
    }

    #[cold]
    fn timed_out(limit: Duration) -> Self {
        Failure(Box::new(FailureKind::TimedOut(limit)))
    }

    /// The error a caller sees for this failure of `reg`.
    pub(crate) fn to_error(&self, reg: &Registration) -> HookError {
        match &*self.0 {
            FailureKind::Panicked(_) => HookError::new(
                500,
                "handler_panicked",
                // The panic's own message stays in the service's log (`Failure::log`): it may
                // say more of the service than its clients should read.
                format!(
                    "hook handler {} panicked; its message is in the service's log",
                    reg.id
                ),
            ),
            FailureKind::TimedOut(limit) => HookError::new(
                504,
                "handler_timeout",
                format!("hook handler {} did not finish within {limit:?}", reg.id),
            ),
        }
    }

    /// This failure, as a trace records it.
    pub(crate) fn step(&self) -> crate::stats::Step {
        match &*self.0 {
            FailureKind::Panicked(_) => crate::stats::Step::Panicked,
            FailureKind::TimedOut(_) => crate::stats::Step::TimedOut,
        }
    }

    fn outcome(&self) -> Outcome {
        match &*self.0 {
            FailureKind::Panicked(_) => Outcome::Panicked,
            FailureKind::TimedOut(_) => Outcome::TimedOut,
        }
    }

    /// Log it, once, with the handler named.
    pub(crate) fn log(&self, reg: &Registration, kept: bool) {
        let effect = if kept {
            "the result is kept"
        } else {
            "the call fails"
        };
        match &*self.0 {
            FailureKind::Panicked(msg) => tracing::error!(
                handler = reg.id,
                operation = reg.operation,
                asset = reg.asset,
                "hook handler panicked ({msg:?}); {effect}"
            ),
            FailureKind::TimedOut(limit) => tracing::error!(
                handler = reg.id,
                operation = reg.operation,
                asset = reg.asset,
                "hook handler did not finish within {limit:?}; {effect}"
            ),
        }
    }
}

/// A panic caught with this payload, as a handler's failure (not yet counted).
pub(crate) fn caught(payload: &(dyn Any + Send)) -> Failure {
    Failure::panicked(panic_message(payload))
}

fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic with a non-string payload".to_owned()
    }
}

thread_local! {
    /// How many handler runs enclose the code running on this thread right now.
    static HANDLER_DEPTH: Cell<u32> = const { Cell::new(0) };
}

/// The number of handler runs that enclose the current code on this thread: above zero, the code
/// is a handler (or something a handler called), and the API calls it makes are nested calls.
#[inline]
pub(crate) fn handler_depth() -> u32 {
    HANDLER_DEPTH.with(Cell::get)
}

/// Marks the current thread as running handler code until dropped (panics included). Hold it
/// around sync handler calls only: never across an `.await`.
pub(crate) struct HandlerCode;

impl HandlerCode {
    #[inline]
    pub(crate) fn enter() -> Self {
        HANDLER_DEPTH.with(|d| d.set(d.get() + 1));
        HandlerCode
    }
}

impl Drop for HandlerCode {
    #[inline]
    fn drop(&mut self) {
        HANDLER_DEPTH.with(|d| d.set(d.get().saturating_sub(1)));
    }
}

/// Marks the current thread as running handler code `depth` levels deep until dropped, then puts
/// back what it held: for a handler's run moved to another thread ([`crate::background::run_blocking`]),
/// which keeps the depth of the poll that started it.
pub(crate) struct HandlerDepth(u32);

impl HandlerDepth {
    pub(crate) fn set(depth: u32) -> Self {
        HandlerDepth(HANDLER_DEPTH.with(|d| d.replace(depth)))
    }
}

impl Drop for HandlerDepth {
    fn drop(&mut self) {
        HANDLER_DEPTH.with(|d| d.set(self.0));
    }
}

/// The policy settings of one runtime.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Policy {
    pub(crate) default_timeout: Duration,
    pub(crate) after_failure: AfterFailure,
    pub(crate) history: History,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            default_timeout: DEFAULT_TIMEOUT,
            after_failure: AfterFailure::Keep,
            history: History::Counts,
        }
    }
}

/// The handler's span, or none at all (not even a disabled one) when no subscriber wants debug
/// spans: one atomic load on the hot path.
#[inline]
fn span(reg: &Registration) -> Option<tracing::Span> {
    if !tracing::level_enabled!(tracing::Level::DEBUG) {
        return None;
    }
    Some(span_of(reg))
}

#[cold]
fn span_of(reg: &Registration) -> tracing::Span {
    tracing::debug_span!(
        "hook",
        handler = reg.id,
        operation = reg.operation,
        asset = reg.asset,
        phase = reg.phase.as_str()
    )
}

impl Policy {
    #[inline]
    fn start(&self) -> Option<Instant> {
        (self.history == History::Timed).then(Instant::now)
    }

    #[inline]
    fn record(&self, reg: &Registration, outcome: Outcome, start: Option<Instant>) {
        if self.history != History::Off {
            reg.state.record(outcome, start.map(|s| s.elapsed()));
        }
    }

    /// Count a run that returned `Ok`/`Err` (as `ok` says) or failed.
    #[inline]
    pub(crate) fn finish<T>(
        &self,
        reg: &Registration,
        result: &Result<Result<T, HookError>, Failure>,
        start: Option<Instant>,
    ) {
        if self.history == History::Off {
            return;
        }
        let outcome = match result {
            Ok(Ok(_)) => Outcome::Ok,
            Ok(Err(_)) if reg.phase == crate::Phase::Before => Outcome::Rejected,
            Ok(Err(_)) => Outcome::Errored,
            Err(f) => f.outcome(),
        };
        self.record(reg, outcome, start);
    }

    /// Whether the dispatcher's fast loops may run: history off or counting, no debug span
    /// wanted. (Per-handler timeouts, traces and async handlers take the general loop.)
    #[inline]
    pub(crate) fn plain(&self) -> bool {
        self.history != History::Timed && !tracing::level_enabled!(tracing::Level::DEBUG)
    }

    /// Count a run of a sync handler from a fast loop.
    #[inline]
    pub(crate) fn count(&self, reg: &Registration, outcome: Outcome) {
        if self.history != History::Off {
            reg.state.record(outcome, None);
        }
    }

    /// A sync handler of a fast loop panicked: count it and say why.
    #[cold]
    #[inline(never)]
    pub(crate) fn panicked(&self, reg: &Registration, payload: &(dyn Any + Send)) -> Failure {
        let failure = Failure::panicked(panic_message(payload));
        self.count(reg, Outcome::Panicked);
        failure
    }

    /// Run a sync handler: isolated from panics, counted, in its span when debug spans are on.
    /// The caller marks the thread as running handler code ([`HandlerCode`]), once for a whole
    /// loop of sync handlers. Only the handler's own call is generic: the policy around it is
    /// compiled once ([`Policy::call_sync_erased`]), not once per operation and handler kind.
    #[inline]
    pub(crate) fn call_sync<T>(
        &self,
        reg: &Registration,
        f: impl FnOnce() -> Result<T, HookError>,
    ) -> Result<Result<T, HookError>, Failure> {
        let mut f = Some(f);
        let mut value = None;
        let ran = self.call_sync_erased(reg, &mut || {
            if let Some(f) = f.take() {
                value = Some(f()?);
            }
            Ok(())
        });
        match (ran, value) {
            (Ok(Ok(())), Some(v)) => Ok(Ok(v)),
            (Ok(Ok(())), None) => Ok(Err(HookError::internal("a hook handler was not called"))),
            (Ok(Err(e)), _) => Ok(Err(e)),
            (Err(failure), _) => Err(failure),
        }
    }

    /// [`Policy::call_sync`] with the handler's value kept by the caller: `f` runs it once.
    #[inline(never)]
    fn call_sync_erased(
        &self,
        reg: &Registration,
        f: &mut dyn FnMut() -> Result<(), HookError>,
    ) -> Result<Result<(), HookError>, Failure> {
        let _span = tracing::level_enabled!(tracing::Level::DEBUG).then(|| span_of(reg).entered());
        let start = if reg.timeout.is_some() {
            Some(Instant::now())
        } else {
            self.start()
        };
        let mut result = guard(f);
        // A sync handler with its own timeout cannot be interrupted, but a run that overran is
        // treated as timed out once it returns (a before handler's call is rejected; an after
        // handler's overrun is logged and counted).
        if let (Some(limit), Some(began)) = (reg.timeout, start)
            && result.is_ok()
            && began.elapsed() > limit
        {
            result = Err(Failure::timed_out(limit));
        }
        self.finish(reg, &result, self.timed(start));
        result
    }

    /// The first poll of an async handler, made by its adapter inside the dispatcher's own poll:
    /// isolated from panics, in its span when debug spans are on. The caller marks the thread as
    /// running handler code ([`HandlerCode`]), once for its whole loop of handlers. A
    /// handler that finishes here is counted and done, with no guard future, timer or await
    /// point of its own; one that waits is handed on to [`Policy::resume_async`].
    #[inline]
    pub(crate) fn poll_first<T>(
        &self,
        reg: &Registration,
        poll: impl FnOnce() -> Poll<Result<T, HookError>>,
    ) -> First<T> {
        // A handler with its own timeout is timed from its call, not from its first wait: one
        // that blocks before it awaits anything (which nothing can interrupt) and overran is
        // treated as timed out when it returns, as a sync handler is.
        let start = if reg.timeout.is_some() {
            Some(Instant::now())
        } else {
            self.start()
        };
        let span = span(reg);
        let polled = {
            let _entered = span.as_ref().map(tracing::Span::enter);
            guard(poll)
        };
        let mut result = match polled {
            Ok(Poll::Ready(v)) => Ok(v),
            Err(failure) => Err(failure),
            Ok(Poll::Pending) => return First::Waiting(Waiting { start, span }),
        };
        if let (Some(limit), Some(began)) = (reg.timeout, start)
            && result.is_ok()
            && began.elapsed() > limit
        {
            result = Err(Failure::timed_out(limit));
        }
        self.finish(reg, &result, self.timed(start));
        First::Done(result)
    }

    /// `start` when the history records time spent: a start read for a timeout alone is not.
    #[inline]
    fn timed(&self, start: Option<Instant>) -> Option<Instant> {
        start.filter(|_| self.history == History::Timed)
    }

    /// [`Policy::poll_first`] under plain policies ([`Policy::plain`]: no timed history, no debug
    /// spans) in a slot where no handler has a timeout of its own, which the caller has checked
    /// once for its whole loop: no clock read, no span, and
    /// nothing to carry for a handler that waits but its place. The first poll has no timeout
    /// either way: the timer starts with [`Policy::resume_async`]. (Written out: as one body
    /// with `poll_first` taking `None` for the clock and the span, the loop that calls it
    /// measured 19 instructions more per handler.)
    #[inline]
    pub(crate) fn poll_first_plain<T>(
        &self,
        reg: &Registration,
        poll: impl FnOnce() -> Poll<Result<T, HookError>>,
    ) -> First<T> {
        let result = match guard(poll) {
            Ok(Poll::Ready(v)) => Ok(v),
            Err(failure) => Err(failure),
            Ok(Poll::Pending) => return First::Waiting(Waiting::plain()),
        };
        self.finish(reg, &result, None);
        First::Done(result)
    }

    /// The rest of the run of an async handler whose first poll ([`Policy::poll_first`]) found it
    /// waiting: the same guard as [`Policy::call_async`], keeping the first poll's start and
    /// span. (Its first poll polls the handler again, which a future must allow, and starts the
    /// timer.)
    #[inline]
    pub(crate) fn resume_async<'p, T, F>(
        &'p self,
        reg: &'p Registration,
        fut: F,
        waiting: Waiting,
    ) -> Guarded<'p, F>
    where
        F: Future<Output = Result<T, HookError>> + Unpin,
    {
        Guarded {
            fut,
            policy: self,
            reg,
            start: waiting.start,
            slow: waiting.span.map(|span| {
                Box::new(Slow {
                    sleep: None,
                    span: Some(span),
                })
            }),
        }
    }

    /// Run an async handler: isolated from panics, cut at its timeout, marked as handler code on
    /// every poll, counted. The returned future is the guard itself: no state machine around it.
    #[inline]
    pub(crate) fn call_async<'p, T, F>(&'p self, reg: &'p Registration, fut: F) -> Guarded<'p, F>
    where
        F: Future<Output = Result<T, HookError>> + Unpin,
    {
        // A handler with its own timeout is timed from its call, as in `poll_first`.
        let start = if reg.timeout.is_some() {
            Some(Instant::now())
        } else {
            self.start()
        };
        let waiting = Waiting {
            start,
            span: span(reg),
        };
        self.resume_async(reg, fut, waiting)
    }
}

/// What the first poll of an async handler came to ([`Policy::poll_first`]).
pub(crate) enum First<T> {
    /// It finished, failed or panicked, and has been counted.
    Done(Result<Result<T, HookError>, Failure>),
    /// It waits: await [`Policy::resume_async`].
    Waiting(Waiting),
}

/// What the rest of a waiting handler's run keeps from its first poll.
pub(crate) struct Waiting {
    start: Option<Instant>,
    span: Option<tracing::Span>,
}

impl Waiting {
    /// The wait of a first poll under plain policies: no clock, no span.
    pub(crate) fn plain() -> Waiting {
        Waiting {
            start: None,
            span: None,
        }
    }
}

/// Run `f`, a sync handler's call, with a panic turned into a [`Failure`].
#[inline(always)]
fn guard<T>(f: impl FnOnce() -> T) -> Result<T, Failure> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|p| caught(&*p))
}

/// A handler's future, polled with panic isolation, a timeout and the handler-depth marker, and
/// counted when it ends.
///
/// The timer is created only if the first poll does not finish the handler, so an `async fn` that
/// never waits costs no timer.
pub(crate) struct Guarded<'p, F> {
    fut: F,
    policy: &'p Policy,
    reg: &'p Registration,
    start: Option<Instant>,
    /// The timer and the span, made only for a handler that waits or when debug spans are on:
    /// a handler that finishes at its first poll carries and drops one null pointer.
    slow: Option<Box<Slow>>,
}

/// The parts of a [`Guarded`] run that most runs never need.
struct Slow {
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
    span: Option<tracing::Span>,
}

impl<T, F> Future for Guarded<'_, F>
where
    F: Future<Output = Result<T, HookError>> + Unpin,
{
    type Output = Result<Result<T, HookError>, Failure>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        // A clone (a reference count) only when debug spans are on.
        let span = this.slow.as_ref().and_then(|slow| slow.span.clone());
        let _entered = span.as_ref().map(tracing::Span::enter);
        let polled = {
            let _depth = HandlerCode::enter();
            guard(|| Pin::new(&mut this.fut).poll(cx))
        };
        let result = match polled {
            // A handler with its own timeout that finished past it (it blocked) timed out.
            Ok(Poll::Ready(v)) => match (this.reg.timeout, this.start) {
                (Some(limit), Some(began)) if began.elapsed() > limit => {
                    Err(Failure::timed_out(limit))
                }
                _ => Ok(v),
            },
            Err(failure) => Err(failure),
            Ok(Poll::Pending) => {
                let limit = this.reg.timeout.unwrap_or(this.policy.default_timeout);
                // A handler with its own timeout was timed from its first poll (`poll_first`):
                // what it spent there counts.
                let left = match (this.reg.timeout, this.start) {
                    (Some(limit), Some(began)) => limit.saturating_sub(began.elapsed()),
                    _ => limit,
                };
                let slow = this.slow.get_or_insert_with(|| {
                    Box::new(Slow {
                        sleep: None,
                        span: None,
                    })
                });
                if slow.sleep.is_none() && !left.is_zero() {
                    slow.sleep = new_timer(left);
                }
                let expired = left.is_zero()
                    || match &mut slow.sleep {
                        Some(sleep) => sleep.as_mut().poll(cx).is_ready(),
                        None => false,
                    };
                if !expired {
                    return Poll::Pending;
                }
                Err(Failure::timed_out(limit))
            }
        };
        this.policy
            .finish(this.reg, &result, this.policy.timed(this.start));
        Poll::Ready(result)
    }
}

/// How many runtimes without timers a thread remembers.
const NO_TIMERS_KEPT: usize = 8;

thread_local! {
    /// The last runtimes found on this thread to have no timers, the latest first: their
    /// handlers run untimed, and the timer, whose creation panics there, is not tried again.
    static NO_TIMERS: std::cell::Cell<[Option<tokio::runtime::Id>; NO_TIMERS_KEPT]> =
        const { std::cell::Cell::new([None; NO_TIMERS_KEPT]) };
}

/// A tokio timer, when the handler runs inside a tokio runtime with timers enabled; otherwise the
/// handler runs without a timeout (documented on [`crate::Hooks`]).
fn new_timer(limit: Duration) -> Option<Pin<Box<tokio::time::Sleep>>> {
    let handle = tokio::runtime::Handle::try_current().ok()?;
    let runtime = Some(handle.id());
    let known = NO_TIMERS.with(std::cell::Cell::get);
    if known.contains(&runtime) {
        return None;
    }
    // A runtime built without `enable_time` panics on timer creation (tokio offers no test
    // for timers): that panic is caught once on each of its threads, and remembered.
    let _enter = handle.enter();
    let timer = catch_unwind(|| Box::pin(tokio::time::sleep(limit))).ok();
    if timer.is_none() {
        let mut kept = [None; NO_TIMERS_KEPT];
        kept[0] = runtime;
        kept[1..].copy_from_slice(&known[..NO_TIMERS_KEPT - 1]);
        NO_TIMERS.with(|no| no.set(kept));
    }
    timer
}
