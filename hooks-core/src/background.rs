//! The background queue: after handlers marked `background` get an owned copy of the result and
//! run on a worker thread, never delaying the caller. A sync handler's run goes to a thread of the
//! worker's blocking pool ([`run_blocking`]), so a handler that blocks holds up no other job.
//!
//! The queue is bounded, and a call with background handlers is admitted before anything of it
//! runs: when the queue has no room for its jobs, the caller either waits for it
//! ([`Backpressure::Wait`], the default) or its call fails with a clear 503 error before its
//! default has run ([`Backpressure::Reject`]). An admitted call's jobs are always accepted, at its
//! end: a call is never told "try again" after its write was made, and a handler's job is never
//! dropped silently. Admission holds no place (the places are taken by the jobs as they are
//! sent), so a call made inside an admitted call (by its default, or a handler) never waits for a
//! place that its own caller holds; the capacity can be passed by the jobs of the calls admitted
//! at once. [`crate::Hooks::shutdown`] closes the queue and waits, up to a deadline, for every
//! queued handler to finish, and for the jobs of the calls already admitted.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Condvar, Mutex, PoisonError, RwLock};
use std::time::Duration;

use tokio::sync::{Notify, mpsc};
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
    /// Jobs the queue holds before backpressure applies (default 1024): those the worker has not
    /// taken yet. A job it has taken (running, or waiting for one of the `concurrency` places
    /// to run) no longer counts.
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
    // The queue whose job this is, on the worker's thread that polls this: the other thread
    // runs that job too.
    let queue = IN_JOB.with(Cell::get);
    let run = move || {
        let _code = crate::policy::HandlerDepth::set(depth);
        let _job = JobCode::enter(queue);
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

thread_local! {
    /// The queue whose background job the code running on this thread is (the address of its
    /// [`Room`], 0 for none): the worker's own thread, or a sync handler's run on its blocking
    /// pool.
    static IN_JOB: Cell<usize> = const { Cell::new(0) };
}

/// Marks the current thread as running a background job of the queue `queue` until dropped.
struct JobCode(usize);

impl JobCode {
    fn enter(queue: usize) -> Self {
        JobCode(IN_JOB.with(|j| j.replace(queue)))
    }
}

impl Drop for JobCode {
    fn drop(&mut self) {
        IN_JOB.with(|j| j.set(self.0));
    }
}

/// Whether the caller is a background job, of any queue.
fn in_job() -> bool {
    IN_JOB.with(Cell::get) != 0
}

/// The queue's capacity: how many jobs have been sent that the worker has not taken yet.
///
/// Counted here rather than by a bounded channel, whose room, once freed, is promised to the
/// senders already waiting in line. A sync call that waits for room on a runtime's thread would
/// then wait for ever behind async callers that the same thread can no longer run. Here a freed
/// place goes to whoever takes it first.
struct Room {
    capacity: usize,
    /// Jobs sent and not yet taken by the worker.
    held: AtomicUsize,
    /// Calls admitted whose admission ([`Places`]) is alive: a shutdown waits for their jobs.
    admitted: AtomicUsize,
    /// Async callers waiting for a place.
    for_async: Notify,
    /// Sync callers waiting for a place.
    for_sync: (Mutex<()>, Condvar),
}

impl Room {
    /// Whether there is room for `n` more jobs. An empty queue has room for any one call's, so a
    /// call with more background handlers than the capacity is not refused for ever.
    fn has_room(&self, n: usize) -> bool {
        let held = self.held.load(Ordering::Acquire);
        held == 0 || held + n <= self.capacity
    }

    /// Take a place for a job being sent: an admitted call's job takes one whatever the count.
    fn take(&self) {
        self.held.fetch_add(1, Ordering::AcqRel);
    }

    /// Give a place back (the worker took its job, or the job was not sent), and wake the callers
    /// waiting for room.
    fn give_back(&self) {
        self.held.fetch_sub(1, Ordering::AcqRel);
        self.wake();
    }

    /// Wake every caller waiting for room, to be admitted or to see the queue closed.
    fn wake(&self) {
        self.for_async.notify_waiters();
        let _waiting = self
            .for_sync
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        self.for_sync.1.notify_all();
    }
}

/// A call's admission to the queue ([`Queue::admit`]), before anything of it runs: its jobs are
/// accepted at its end whatever the count. It holds a sender to the worker, so a shutdown begun
/// meanwhile waits for its jobs rather than refusing them.
pub(crate) struct Places {
    tx: mpsc::UnboundedSender<Job>,
    /// The queue's count of admitted calls, which this one leaves when dropped.
    room: Arc<Room>,
}

impl Places {
    fn new(tx: mpsc::UnboundedSender<Job>, room: &Arc<Room>) -> Places {
        room.admitted.fetch_add(1, Ordering::AcqRel);
        Places {
            tx,
            room: Arc::clone(room),
        }
    }
}

impl Drop for Places {
    fn drop(&mut self) {
        self.room.admitted.fetch_sub(1, Ordering::AcqRel);
    }
}

struct Worker {
    tx: mpsc::UnboundedSender<Job>,
    /// Signalled when the worker has drained the queue (a `Mutex` keeps `Queue: Sync`).
    done: Mutex<std_mpsc::Receiver<()>>,
}

/// The queue and its worker, started on the first job.
pub(crate) struct Queue {
    config: BackgroundConfig,
    worker: RwLock<Option<Worker>>,
    started: Mutex<bool>,
    /// The signal of a worker a shutdown closed and did not see drain before its deadline: a
    /// later shutdown waits for it again.
    draining: Mutex<Option<std_mpsc::Receiver<()>>>,
    closed: AtomicBool,
    queued: AtomicU64,
    finished: Arc<AtomicU64>,
    refused: AtomicU64,
    room: Arc<Room>,
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
            draining: Mutex::new(None),
            closed: AtomicBool::new(false),
            queued: AtomicU64::new(0),
            finished: Arc::new(AtomicU64::new(0)),
            refused: AtomicU64::new(0),
            room: Arc::new(Room {
                capacity: config.capacity,
                held: AtomicUsize::new(0),
                admitted: AtomicUsize::new(0),
                for_async: Notify::new(),
                for_sync: (Mutex::new(()), Condvar::new()),
            }),
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
    fn sender(&self) -> Result<mpsc::UnboundedSender<Job>, HookError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(self.refuse(Self::shut_down_error()));
        }
        if let Some(w) = &*self.worker.read().unwrap_or_else(PoisonError::into_inner) {
            return Ok(w.tx.clone());
        }
        let mut started = self.started.lock().unwrap_or_else(PoisonError::into_inner);
        // A shutdown closes the queue before it takes this lock: one that ran since the test
        // above must not be followed by a worker it never saw.
        if self.closed.load(Ordering::Acquire) {
            return Err(self.refuse(Self::shut_down_error()));
        }
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
        let (tx, mut rx) = mpsc::unbounded_channel::<Job>();
        let (done_tx, done) = std_mpsc::channel();
        let concurrency = self.config.concurrency;
        let finished = Arc::clone(&self.finished);
        let room = Arc::clone(&self.room);
        // Background handlers do real work (HTTP calls, sockets, timers): give them a full runtime.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| HookError::internal(format!("cannot start the background worker: {e}")))?;
        std::thread::Builder::new()
            .name("hooks-background".into())
            .spawn(move || {
                // Everything on this thread is a background job of this queue.
                let _job = JobCode::enter(Arc::as_ptr(&room).addr());
                runtime.block_on(async move {
                    let mut running = JoinSet::new();
                    while let Some(job) = rx.recv().await {
                        // Taken: its place in the queue is free.
                        room.give_back();
                        while running.len() >= concurrency {
                            running.join_next().await;
                        }
                        let finished = Arc::clone(&finished);
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

    /// Admit a call with `n` background jobs, before anything of it runs: waits for room or
    /// refuses, as configured.
    ///
    /// A background job's calls are admitted whatever the count: the room they would wait for
    /// is made by the worker that runs the waiting job, so with every one of the worker's places
    /// held by such jobs, none would ever come. The recursion guard bounds how deep such jobs go.
    pub(crate) async fn admit(&self, n: usize) -> Result<Places, HookError> {
        let tx = self.sender()?;
        if in_job() || self.room.has_room(n) {
            return Ok(Places::new(tx, &self.room));
        }
        match self.config.backpressure {
            Backpressure::Reject => Err(self.refuse(self.full_error())),
            Backpressure::Wait => loop {
                // Registered before the test, so that a place freed in between wakes it.
                let mut freed = std::pin::pin!(self.room.for_async.notified());
                freed.as_mut().enable();
                if self.closed.load(Ordering::Acquire) {
                    return Err(self.refuse(Self::shut_down_error()));
                }
                if self.room.has_room(n) {
                    return Ok(Places::new(tx, &self.room));
                }
                freed.await;
            },
        }
    }

    /// [`Queue::admit`] from synchronous code.
    pub(crate) fn admit_blocking(&self, n: usize) -> Result<Places, HookError> {
        let tx = self.sender()?;
        if in_job() || self.room.has_room(n) {
            return Ok(Places::new(tx, &self.room));
        }
        if self.config.backpressure == Backpressure::Reject {
            return Err(self.refuse(self.full_error()));
        }
        let (lock, freed) = &self.room.for_sync;
        let mut waiting = lock.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            if self.closed.load(Ordering::Acquire) {
                return Err(self.refuse(Self::shut_down_error()));
            }
            if self.room.has_room(n) {
                return Ok(Places::new(tx, &self.room));
            }
            // Woken when a place is freed or the queue closes; the timeout is a backstop.
            waiting = freed
                .wait_timeout(waiting, Duration::from_millis(50))
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// Send `job` of an admitted call: it takes a place whatever the count.
    pub(crate) fn send(&self, places: &Places, job: Job) -> Result<(), HookError> {
        self.room.take();
        match places.tx.send(job) {
            Ok(()) => {
                self.queued.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
            Err(_) => {
                // The worker is gone (it could not be kept running): the job cannot run.
                self.room.give_back();
                Err(self.refuse(Self::shut_down_error()))
            }
        }
    }

    /// Close the queue and wait up to `deadline` for every queued job to finish, and for the
    /// jobs of the calls already admitted ([`Places`]), which are still accepted. A shutdown that
    /// timed out leaves the worker draining, and a later one waits for it again.
    pub(crate) fn shutdown(&self, deadline: Duration) -> Result<BackgroundStats, HookError> {
        // A job of this queue would wait for the queue to drain, itself included: it waits for
        // nothing. (A thread the job spawned is not known as the job's: its shutdown waits.)
        if IN_JOB.with(Cell::get) == Arc::as_ptr(&self.room).addr() {
            return Err(HookError::new(
                409,
                "shutdown_from_background",
                "a background handler cannot shut down the queue it runs on (it would wait for \
                 itself): call shutdown from the service's own code",
            ));
        }
        self.closed.store(true, Ordering::Release);
        // Callers waiting for room see the queue closed, and are refused.
        self.room.wake();
        let _started = self.started.lock().unwrap_or_else(PoisonError::into_inner);
        let mut draining = self.draining.lock().unwrap_or_else(PoisonError::into_inner);
        let worker = self
            .worker
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(Worker { tx, done }) = worker {
            drop(tx);
            *draining = Some(done.into_inner().unwrap_or_else(PoisonError::into_inner));
        }
        if let Some(done) = &*draining {
            match done.recv_timeout(deadline) {
                // Drained; or the worker's thread is gone, with nothing left to wait for.
                Ok(()) | Err(std_mpsc::RecvTimeoutError::Disconnected) => *draining = None,
                Err(std_mpsc::RecvTimeoutError::Timeout) => {
                    let stats = self.stats();
                    let admitted = self.room.admitted.load(Ordering::Acquire);
                    return Err(HookError::new(
                        504,
                        "shutdown_timeout",
                        format!(
                            "background handlers still running after {deadline:?}: {} of {} \
                             queued jobs finished, and {admitted} admitted calls have not queued \
                             their jobs yet",
                            stats.finished, stats.queued
                        ),
                    ));
                }
            }
        }
        Ok(self.stats())
    }
}
