//! Execution history: per handler, how often it ran and how each run ended, and (when the runtime
//! keeps [`History::Timed`]) the time it took.
//!
//! Every handler has a static [`HandlerState`] next to its registration: its counters and its
//! live on/off switch. Both are global to the binary, like the registrations themselves.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

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
    /// A fresh state (enabled, all counters zero), for a `static`.
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
        self.disabled.store(!on, Ordering::Relaxed);
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
    /// Time spent in the handler (kept with [`History::Timed`] only).
    pub time_spent: Duration,
}
