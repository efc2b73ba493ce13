//! Execution history: per handler, how often it ran and how each run ended, and (when the runtime
//! keeps [`History::Timed`]) the time it took.
//!
//! Every handler's registration holds a [`HandlerState`]: its counters and its live on/off
//! switch. Both are global to the binary, like the registrations themselves.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use crate::error::HookError;
use crate::event::Phase;

/// How much execution history the runtime keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum History {
    /// Nothing: the cheapest dispatch (benchmarks use it as the floor).
    Off,
    /// Counts of calls and outcomes (one atomic add per handler run). The default.
    #[default]
    Counts,
    /// Counts, and the time each handler took (two clock reads per handler run).
    Timed,
}

/// How one run of a handler ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// It returned normally (a before handler that answered the call counts here too).
    Ok,
    /// A before handler returned `Err`: the call was rejected.
    Rejected,
    /// An after handler returned `Err`: the result became that error.
    Errored,
    /// It panicked.
    Panicked,
    /// It did not finish within its timeout.
    TimedOut,
}

/// How many handlers are switched off right now, in the whole process: while none is, the
/// dispatcher's fast loops skip the per-handler switch check.
static DISABLED: AtomicUsize = AtomicUsize::new(0);

/// Whether any handler is switched off.
#[inline]
pub(crate) fn any_disabled() -> bool {
    DISABLED.load(Ordering::Relaxed) != 0
}

/// The live state of one handler: its on/off switch and its counters.
#[doc(hidden)]
#[derive(Debug)]
pub struct HandlerState {
    disabled: AtomicBool,
    calls: AtomicU64,
    rejections: AtomicU64,
    errors: AtomicU64,
    panics: AtomicU64,
    timeouts: AtomicU64,
    nanos: AtomicU64,
}

impl HandlerState {
    /// A fresh state (enabled, all counters zero), for a registration's `static`.
    pub const fn new() -> Self {
        HandlerState {
            disabled: AtomicBool::new(false),
            calls: AtomicU64::new(0),
            rejections: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            panics: AtomicU64::new(0),
            timeouts: AtomicU64::new(0),
            nanos: AtomicU64::new(0),
        }
    }

    /// Whether the handler is switched on.
    #[inline]
    pub(crate) fn enabled(&self) -> bool {
        !self.disabled.load(Ordering::Relaxed)
    }

    pub(crate) fn set_enabled(&self, on: bool) {
        // The count goes up before a flag is set and down after it is cleared, so it is never
        // zero while a flag is set (at worst, briefly above the number of flags set).
        if on {
            if self.disabled.swap(false, Ordering::SeqCst) {
                DISABLED.fetch_sub(1, Ordering::SeqCst);
            }
        } else {
            DISABLED.fetch_add(1, Ordering::SeqCst);
            if self.disabled.swap(true, Ordering::SeqCst) {
                DISABLED.fetch_sub(1, Ordering::SeqCst);
            }
        }
    }

    /// Count one run.
    #[inline]
    pub(crate) fn record(&self, outcome: Outcome, elapsed: Option<Duration>) {
        self.calls.fetch_add(1, Ordering::Relaxed);
        let counter = match outcome {
            Outcome::Ok => None,
            Outcome::Rejected => Some(&self.rejections),
            Outcome::Errored => Some(&self.errors),
            Outcome::Panicked => Some(&self.panics),
            Outcome::TimedOut => Some(&self.timeouts),
        };
        if let Some(c) = counter {
            c.fetch_add(1, Ordering::Relaxed);
        }
        if let Some(d) = elapsed {
            let n = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
            self.nanos.fetch_add(n, Ordering::Relaxed);
        }
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> Stats {
        Stats {
            enabled: self.enabled(),
            calls: self.calls.load(Ordering::Relaxed),
            rejections: self.rejections.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            panics: self.panics.load(Ordering::Relaxed),
            timeouts: self.timeouts.load(Ordering::Relaxed),
            time_spent: Duration::from_nanos(self.nanos.load(Ordering::Relaxed)),
        }
    }
}

impl Default for HandlerState {
    fn default() -> Self {
        Self::new()
    }
}

/// A snapshot of one handler's execution history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct Stats {
    /// Whether the handler is switched on.
    pub enabled: bool,
    /// Runs, whatever their outcome.
    pub calls: u64,
    /// Runs of a before handler that rejected the call.
    pub rejections: u64,
    /// Runs of an after handler that returned an error.
    pub errors: u64,
    /// Runs that panicked.
    pub panics: u64,
    /// Runs cut at their timeout.
    pub timeouts: u64,
    /// Time spent in the handler (kept with [`History::Timed`] only); JSON gives it in
    /// microseconds, as `time_spent_us`.
    #[serde(rename = "time_spent_us", serialize_with = "micros")]
    pub time_spent: Duration,
}

fn micros<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// How one run of a handler went, as a [`Trace`] records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// A before handler let the call go on.
    Continued,
    /// A before handler answered the call (`Flow::Return`).
    Answered,
    /// A before handler rejected the call with this error.
    Rejected(HookError),
    /// An after handler returned `Ok`.
    Done,
    /// An after handler returned this error.
    Errored(HookError),
    /// The handler panicked.
    Panicked,
    /// The handler was cut at its timeout.
    TimedOut,
    /// A background handler was queued.
    Queued,
    /// A background handler could not be queued, with this error.
    Refused(HookError),
}

impl Step {
    /// A short name: `continued`, `answered`, `rejected`, `done`, `errored`, `panicked`,
    /// `timed_out`, `queued` or `refused`.
    pub fn name(&self) -> &'static str {
        match self {
            Step::Continued => "continued",
            Step::Answered => "answered",
            Step::Rejected(_) => "rejected",
            Step::Done => "done",
            Step::Errored(_) => "errored",
            Step::Panicked => "panicked",
            Step::TimedOut => "timed_out",
            Step::Queued => "queued",
            Step::Refused(_) => "refused",
        }
    }
}

/// One handler run, as a [`Trace`] records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ran {
    /// The handler's id.
    pub handler: &'static str,
    /// Its phase.
    pub phase: Phase,
    /// How it went.
    pub step: Step,
}

impl std::fmt::Display for Ran {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.handler, self.step.name())
    }
}

/// A record of which handlers ran, in which order, and how each went: attach one with
/// `Hooks::builder().trace(..)` (the testing kit does it for you).
#[derive(Debug, Default)]
pub struct Trace {
    runs: Mutex<Vec<Ran>>,
}

impl Trace {
    /// An empty trace.
    pub fn new() -> Self {
        Self::default()
    }

    pub(crate) fn push(&self, handler: &'static str, phase: Phase, step: Step) {
        self.runs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Ran {
                handler,
                phase,
                step,
            });
    }

    /// Every run recorded so far, in order.
    pub fn runs(&self) -> Vec<Ran> {
        self.runs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Every run recorded so far, emptying the trace.
    pub fn take(&self) -> Vec<Ran> {
        std::mem::take(&mut *self.runs.lock().unwrap_or_else(PoisonError::into_inner))
    }
}
