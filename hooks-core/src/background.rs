//! The background queue: after handlers marked `background` get an owned copy of the result and
//! run on a worker thread, never delaying the caller. A sync handler's run goes to a thread of the
//! worker's blocking pool ([`run_blocking`]), so a handler that blocks holds up no other job.
//!
//! The queue is bounded. When it is full, the caller either waits for room
//! ([`Backpressure::Wait`], the default) or its call fails with a clear 503 error
//! ([`Backpressure::Reject`]): an event is never dropped silently. [`crate::Hooks::shutdown`] closes
//! the queue and waits, up to a deadline, for every queued handler to finish.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc as std_mpsc;
use std::sync::{Mutex, PoisonError, RwLock};
use std::time::Duration;

use tokio::sync::mpsc::{self, error::TrySendError};
use tokio::task::JoinSet;

use crate::error::HookError;
use crate::registration::BoxFuture;

/// What a caller meets when the background queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Backpressure {
    /// Wait for room in the queue (the default): nothing is lost, the caller slows down.
    #[default]
    Wait,
    /// Fail the call with 503 `background_queue_full`: the caller stays fast and is told.
    Reject,
}

/// Settings of the background queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct BackgroundConfig {
    /// Jobs the queue holds before backpressure applies (default 1024).
    pub capacity: usize,
    /// Jobs that run at once on the worker (default 64).
    pub concurrency: usize,
    /// What a caller meets when the queue is full.
    pub backpressure: Backpressure,
}

impl Default for BackgroundConfig {
    fn default() -> Self {
        BackgroundConfig {
            capacity: 1024,
            concurrency: 64,
            backpressure: Backpressure::Wait,
        }
    }
}

/// Counters of the background queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct BackgroundStats {
    /// Jobs accepted into the queue.
    pub queued: u64,
    /// Jobs that finished (whatever the handler's outcome).
    pub finished: u64,
    /// Calls refused because the queue was full or shut down.
    pub refused: u64,
}

pub(crate) type Job = BoxFuture<'static, ()>;

/// The run of a sync background handler, `f`, on a thread of the worker's blocking pool: a
/// handler that blocks (a sleep, a blocking client) then holds its own thread, not the worker
/// that runs every other background job. A panic in `f` is raised again where this future is
/// polled, so the policies count it as the handler's, as for a handler run in place; and the
/// thread counts as running handler code, so a call the handler makes is a nested one. The
/// attribute of a sync background handler builds its job with this.
#[doc(hidden)]
pub async fn run_blocking<F>(f: F) -> Result<(), HookError>
where
    F: FnOnce() -> Result<(), HookError> + Send + 'static,
{
    // Polled inside the handler's guard, this is handler code; so is the run on the other thread:
    // an API call it makes is a nested one, which the recursion guard sees.
    let depth = crate::policy::handler_depth();
    let run = move || {
        let _code = crate::policy::HandlerDepth::set(depth);
        f()
    };
    match tokio::task::spawn_blocking(run).await {
        Ok(result) => result,
        Err(e) => match e.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            Err(e) => Err(HookError::internal(format!(
                "the background handler's thread stopped: {e}"
            ))),
        },
    }
}

struct Worker {
    tx: mpsc::Sender<Job>,
    /// Signalled when the worker has drained the queue (a `Mutex` keeps `Queue: Sync`).
    done: Mutex<std_mpsc::Receiver<()>>,
}

/// The queue and its worker, started on the first job.
pub(crate) struct Queue {
    config: BackgroundConfig,
    worker: RwLock<Option<Worker>>,
    started: Mutex<bool>,
    closed: std::sync::atomic::AtomicBool,
    queued: AtomicU64,
    finished: std::sync::Arc<AtomicU64>,
    refused: AtomicU64,
}

impl std::fmt::Debug for Queue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queue")
            .field("config", &self.config)
            .field("stats", &self.stats())
            .finish()
    }
}

impl Queue {
    pub(crate) fn new(mut config: BackgroundConfig) -> Self {
        config.capacity = config.capacity.max(1);
        config.concurrency = config.concurrency.max(1);
        Queue {
            config,
            worker: RwLock::new(None),
            started: Mutex::new(false),
            closed: std::sync::atomic::AtomicBool::new(false),
            queued: AtomicU64::new(0),
            finished: std::sync::Arc::new(AtomicU64::new(0)),
            refused: AtomicU64::new(0),
        }
    }

    pub(crate) fn stats(&self) -> BackgroundStats {
        BackgroundStats {
            queued: self.queued.load(Ordering::Relaxed),
            finished: self.finished.load(Ordering::Relaxed),
            refused: self.refused.load(Ordering::Relaxed),
        }
    }

    fn refuse(&self, error: HookError) -> HookError {
        self.refused.fetch_add(1, Ordering::Relaxed);
        // Messages are logged quoted and escaped (`{:?}`): one may carry a client's text, and a
        // line break in it must not start a forged log line.
        tracing::warn!(
            code = error.code(),
            "background handler refused: {:?}",
            error.message()
        );
        error
    }

    fn shut_down_error() -> HookError {
        HookError::new(
            503,
            "shutting_down",
            "the hooks runtime is shut down: no background handler can be queued",
        )
    }

    fn full_error(&self) -> HookError {
        HookError::new(
            503,
            "background_queue_full",
            format!(
                "the background queue is full ({} jobs): try again later",
                self.config.capacity
            ),
        )
    }

    /// A sender to the worker, starting it on first use.
    fn sender(&self) -> Result<mpsc::Sender<Job>, HookError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(self.refuse(Self::shut_down_error()));
        }
        if let Some(w) = &*self.worker.read().unwrap_or_else(PoisonError::into_inner) {
            return Ok(w.tx.clone());
        }
        let mut started = self.started.lock().unwrap_or_else(PoisonError::into_inner);
        if !*started {
            let worker = self.spawn().map_err(|e| self.refuse(e))?;
            *self.worker.write().unwrap_or_else(PoisonError::into_inner) = Some(worker);
            *started = true;
        }
        match &*self.worker.read().unwrap_or_else(PoisonError::into_inner) {
            Some(w) => Ok(w.tx.clone()),
            None => Err(self.refuse(Self::shut_down_error())),
        }
    }

    fn spawn(&self) -> Result<Worker, HookError> {
        let (tx, mut rx) = mpsc::channel::<Job>(self.config.capacity);
        let (done_tx, done) = std_mpsc::channel();
        let concurrency = self.config.concurrency;
        let finished = std::sync::Arc::clone(&self.finished);
        // Background handlers do real work (HTTP calls, sockets, timers): give them a full runtime.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| HookError::internal(format!("cannot start the background worker: {e}")))?;
        std::thread::Builder::new()
            .name("hooks-background".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let mut running = JoinSet::new();
                    while let Some(job) = rx.recv().await {
                        while running.len() >= concurrency {
                            running.join_next().await;
                        }
                        let finished = std::sync::Arc::clone(&finished);
                        running.spawn(async move {
                            job.await;
                            finished.fetch_add(1, Ordering::Relaxed);
                        });
                    }
                    while running.join_next().await.is_some() {}
                });
                let _ = done_tx.send(());
            })
            .map_err(|e| HookError::internal(format!("cannot start the background worker: {e}")))?;
        Ok(Worker {
            tx,
            done: Mutex::new(done),
        })
    }

    /// Queue a job from async code: waits for room or refuses, as configured.
    pub(crate) async fn push(&self, job: Job) -> Result<(), HookError> {
        let tx = self.sender()?;
        let sent = match self.config.backpressure {
            Backpressure::Wait => tx.send(job).await.map_err(|_| Self::shut_down_error()),
            Backpressure::Reject => tx.try_send(job).map_err(|e| match e {
                TrySendError::Full(_) => self.full_error(),
                TrySendError::Closed(_) => Self::shut_down_error(),
            }),
        };
        match sent {
            Ok(()) => {
                self.queued.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
            Err(e) => Err(self.refuse(e)),
        }
    }

    /// Queue a job from synchronous code: waits (sleeping briefly) for room or refuses.
    pub(crate) fn push_blocking(&self, mut job: Job) -> Result<(), HookError> {
        let tx = self.sender()?;
        loop {
            match tx.try_send(job) {
                Ok(()) => {
                    self.queued.fetch_add(1, Ordering::Relaxed);
                    return Ok(());
                }
                Err(TrySendError::Closed(_)) => return Err(self.refuse(Self::shut_down_error())),
                Err(TrySendError::Full(_)) if self.config.backpressure == Backpressure::Reject => {
                    return Err(self.refuse(self.full_error()));
                }
                Err(TrySendError::Full(back)) => {
                    job = back;
                    std::thread::sleep(Duration::from_micros(200));
                }
            }
        }
    }

    /// Close the queue and wait up to `deadline` for every queued job to finish.
    pub(crate) fn shutdown(&self, deadline: Duration) -> Result<BackgroundStats, HookError> {
        self.closed.store(true, Ordering::Release);
        let _started = self.started.lock().unwrap_or_else(PoisonError::into_inner);
        let worker = self
            .worker
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(Worker { tx, done }) = worker {
            drop(tx);
            let done = done.into_inner().unwrap_or_else(PoisonError::into_inner);
            if done.recv_timeout(deadline).is_err() {
                let stats = self.stats();
                return Err(HookError::new(
                    504,
                    "shutdown_timeout",
                    format!(
                        "background handlers still running after {deadline:?}: {} of {} queued jobs finished",
                        stats.finished, stats.queued
                    ),
                ));
            }
        }
        Ok(self.stats())
    }
}
