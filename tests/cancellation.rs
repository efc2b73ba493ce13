//! A call whose future is dropped before it ends (cancelled: a client gone, a timeout around the
//! call), or whose default panics, leaves the runtime as a call that ended would: its context
//! names no running handler, and its admission to the background queue is given back, so a
//! shutdown does not wait for jobs the call will never queue. And a shutdown that timed out
//! waits again when it is retried.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use hooks::BackgroundStats;
use hooks::prelude::*;

fn hooks() -> Hooks {
    Hooks::new().expect("the handlers of this test binary form a valid table")
}

hooks::operation! {
    /// A call whose before handler waits for ever on 1.
    pub Stuck: "cancellation.stuck", u32 => u32
}

/// Waits for ever on 1: the call can only be cancelled.
#[before(Stuck)]
async fn wait_on_one(n: &mut u32) -> Result<(), HookError> {
    if *n == 1 {
        std::future::pending::<()>().await;
    }
    Ok(())
}

/// The call's background job.
#[after(Stuck, background)]
async fn note_stuck(_: &u32) {}

hooks::operation! {
    /// A call with a background handler that sleeps for as many milliseconds as its result.
    pub Sleepy: "cancellation.sleepy", u64 => u64
}

static SLEPT: AtomicUsize = AtomicUsize::new(0);

#[after(Sleepy, background)]
async fn sleep_for(ms: &u64) {
    tokio::time::sleep(Duration::from_millis(*ms)).await;
    SLEPT.fetch_add(1, Ordering::SeqCst);
}

/// Polls a future, catching a panic of its poll: what a server's panic layer does.
struct CatchUnwind<F>(F);

impl<F: Future + Unpin> Future for CatchUnwind<F> {
    type Output = Result<F::Output, ()>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        let fut = &mut self.0;
        match std::panic::catch_unwind(AssertUnwindSafe(|| Pin::new(fut).poll(cx))) {
            Ok(Poll::Ready(v)) => Poll::Ready(Ok(v)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(_) => Poll::Ready(Err(())),
        }
    }
}

/// Shut `hooks` down from a blocking thread, as an async service does.
async fn shut_down(hooks: &Hooks, deadline: Duration) -> Result<BackgroundStats, HookError> {
    let hooks = hooks.clone();
    tokio::task::spawn_blocking(move || hooks.shutdown(deadline))
        .await
        .expect("the shutdown's thread ended")
}

#[tokio::test]
async fn a_cancelled_call_gives_back_its_admission_so_a_shutdown_does_not_wait_for_it() {
    let hooks = hooks();
    // Kept alive after the call, as a caller that cancels a call keeps its context.
    let mut ctx = Context::client();
    let cancelled = tokio::time::timeout(
        Duration::from_millis(20),
        hooks.run::<Stuck, _, _>(&mut ctx, 1, |n| async move { Ok(n) }),
    )
    .await;
    assert!(cancelled.is_err(), "the call was cancelled");
    // Nothing is queued and nothing runs: the shutdown has nothing to wait for.
    let report = shut_down(&hooks, Duration::from_secs(2)).await;
    assert_eq!(
        report
            .map(|r| (r.queued, r.finished))
            .map_err(|e| e.message().to_owned()),
        Ok((0, 0))
    );
    drop(ctx);
}

#[tokio::test]
async fn a_cancelled_call_leaves_its_context_naming_no_handler() {
    let hooks = hooks();
    let mut ctx = Context::client();
    let cancelled = tokio::time::timeout(
        Duration::from_millis(20),
        hooks.run::<Stuck, _, _>(&mut ctx, 1, |n| async move { Ok(n) }),
    )
    .await;
    assert!(cancelled.is_err());
    assert_eq!(ctx.handler_id(), None);
    // The context serves the next call as a fresh one would.
    let out = hooks
        .run::<Stuck, _, _>(&mut ctx, 2, |n| async move { Ok(n * 10) })
        .await;
    assert_eq!(out, Ok(20));
    assert_eq!(ctx.handler_id(), None);
    hooks.shutdown(Duration::from_secs(5)).unwrap();
}

#[tokio::test]
async fn a_call_whose_async_default_panics_gives_back_its_admission() {
    let hooks = hooks();
    let mut ctx = Context::client();
    let call = hooks.run::<Stuck, _, _>(&mut ctx, 2, |_| async move {
        if true {
            panic!("the default failed");
        }
        Ok(0)
    });
    let caught = CatchUnwind(Box::pin(call)).await;
    assert!(caught.is_err(), "the default's panic reached the caller");
    let report = shut_down(&hooks, Duration::from_secs(2)).await;
    assert!(report.is_ok(), "{report:?}");
    drop(ctx);
}

hooks::operation! {
    /// A sync call with a background handler.
    pub SyncStuck: "cancellation.sync_stuck", u32 => u32
}

#[after(SyncStuck, background)]
fn note_sync(_: &u32) {}

#[test]
fn a_sync_call_whose_default_panicked_holds_its_admission_until_its_context_is_dropped() {
    let hooks = hooks();
    let mut ctx = Context::client();
    let caught = std::panic::catch_unwind(AssertUnwindSafe(|| {
        hooks.run_sync::<SyncStuck, _>(&mut ctx, 1, |_| panic!("the default failed"))
    }));
    assert!(caught.is_err());
    // The shutdown waits for the jobs the call was admitted for, and says so.
    let err = hooks.shutdown(Duration::from_millis(100)).unwrap_err();
    assert_eq!(err.code(), "shutdown_timeout");
    assert!(
        err.message()
            .contains("1 admitted calls have not queued their jobs"),
        "{}",
        err.message()
    );
    // Dropped, the context gives the admission back, and a retried shutdown ends.
    drop(ctx);
    let report = hooks.shutdown(Duration::from_secs(2));
    assert!(report.is_ok(), "{report:?}");
}

#[tokio::test]
async fn a_shutdown_that_timed_out_waits_again_when_retried() {
    let hooks = hooks();
    let out = hooks
        .run::<Sleepy, _, _>(&mut Context::client(), 300, |ms| async move { Ok(ms) })
        .await;
    assert_eq!(out, Ok(300));
    let first = shut_down(&hooks, Duration::from_millis(10)).await;
    assert_eq!(
        first.map_err(|e| e.code().to_owned()),
        Err("shutdown_timeout".to_owned())
    );
    // The job still runs: a second shutdown that ends before it does times out too (it
    // answered `Ok` at once, with the job still running).
    let second = shut_down(&hooks, Duration::from_millis(10)).await;
    assert_eq!(
        second.map_err(|e| e.code().to_owned()),
        Err("shutdown_timeout".to_owned())
    );
    let before = SLEPT.load(Ordering::SeqCst);
    let last = shut_down(&hooks, Duration::from_secs(10)).await.unwrap();
    assert_eq!((last.queued, last.finished), (1, 1));
    assert!(SLEPT.load(Ordering::SeqCst) >= before.max(1));
}

hooks::operation! {
    /// A call whose background handler tries to shut the queue down.
    pub StopFromJob: "cancellation.stop_from_job", u32 => u32
}

static FROM_JOB: std::sync::Mutex<Option<Result<BackgroundStats, HookError>>> =
    std::sync::Mutex::new(None);

#[after(StopFromJob, background)]
async fn shut_down_from_the_job(_: &u32, ctx: &Context) -> Result<(), HookError> {
    let hooks = ctx.require_extension::<Hooks>()?;
    let out = hooks.shutdown(Duration::from_secs(30));
    *FROM_JOB.lock().unwrap() = Some(out);
    Ok(())
}

#[tokio::test]
async fn a_background_handler_cannot_shut_down_the_queue_it_runs_on() {
    let hooks = hooks();
    let mut ctx = Context::client().with_extension(hooks.clone());
    let out = hooks
        .run::<StopFromJob, _, _>(&mut ctx, 1, |n| async move { Ok(n) })
        .await;
    assert_eq!(out, Ok(1));
    // The service's own shutdown waits for the job, which was refused at once.
    let report = shut_down(&hooks, Duration::from_secs(10)).await.unwrap();
    assert_eq!((report.queued, report.finished), (1, 1));
    let from_job = FROM_JOB.lock().unwrap().take().expect("the job ran");
    assert_eq!(
        from_job
            .map_err(|e| (e.status(), e.code().to_owned()))
            .map(drop),
        Err((409, "shutdown_from_background".to_owned()))
    );
}

/// Another runtime of the process, for a background handler to shut down.
struct OtherRuntime(Hooks);

hooks::operation! {
    /// A call whose background handler shuts down another runtime.
    pub StopOther: "cancellation.stop_other", u32 => u32
}

static OTHER: std::sync::Mutex<Option<Result<BackgroundStats, HookError>>> =
    std::sync::Mutex::new(None);

#[after(StopOther, background)]
async fn shut_down_another_runtime(_: &u32, ctx: &Context) -> Result<(), HookError> {
    let other = &ctx.require_extension::<OtherRuntime>()?.0;
    let out = other.shutdown(Duration::from_secs(5));
    *OTHER.lock().unwrap() = Some(out);
    Ok(())
}

#[tokio::test]
async fn a_background_handler_may_shut_down_another_runtime() {
    let (hooks, other) = (hooks(), hooks());
    let mut ctx = Context::client().with_extension(OtherRuntime(other.clone()));
    let out = hooks
        .run::<StopOther, _, _>(&mut ctx, 1, |n| async move { Ok(n) })
        .await;
    assert_eq!(out, Ok(1));
    shut_down(&hooks, Duration::from_secs(10)).await.unwrap();
    let from_job = OTHER.lock().unwrap().take().expect("the job ran");
    assert!(from_job.is_ok(), "{from_job:?}");
    // The other runtime is shut down: a call with background handlers is refused there.
    let refused = other
        .run::<StopOther, _, _>(&mut Context::client(), 2, |n| async move { Ok(n) })
        .await;
    assert_eq!(
        refused.map_err(|e| e.code().to_owned()),
        Err("shutting_down".to_owned())
    );
}
