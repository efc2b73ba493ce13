//! Runtime policies, rule by rule: the recursion guard, origins, timeouts, panics, background
//! handlers, limits, params, live switches and execution history.
//!
//! Each module holds its own entity type, so its handlers touch no other test.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use hooks::prelude::*;
use hooks::{AfterFailure, BackgroundConfig, Backpressure, History};

fn hooks() -> Hooks {
    Hooks::new().expect("the handlers of this test binary form a valid table")
}

fn stats(hooks: &Hooks, id: &str) -> hooks::Stats {
    let reg = hooks
        .table()
        .registrations()
        .iter()
        .find(|r| r.id() == id)
        .expect("a registered handler");
    reg.stats()
}

mod recursion {
    use super::*;

    pub static HANDLER_RUNS: AtomicUsize = AtomicUsize::new(0);
    pub static DEFAULT_RUNS: AtomicUsize = AtomicUsize::new(0);

    #[derive(Debug, Clone, Entity)]
    pub struct Looper {
        pub fresh_context: bool,
    }

    /// Writes its own table again: with a child context, or with a brand-new one.
    #[after_create("Looper")]
    async fn write_again(record: &mut Looper, ctx: &Context) -> Result<(), HookError> {
        HANDLER_RUNS.fetch_add(1, Ordering::SeqCst);
        let hooks = ctx.require_extension::<Hooks>()?.clone();
        let mut nested = if record.fresh_context {
            Context::client()
        } else {
            ctx.child()
        };
        hooks.create(&mut nested, record.clone(), store).await?;
        Ok(())
    }

    async fn store(l: Looper) -> Result<Looper, HookError> {
        DEFAULT_RUNS.fetch_add(1, Ordering::SeqCst);
        Ok(l)
    }

    #[tokio::test]
    async fn a_handler_writing_its_own_table_does_not_loop() {
        let hooks = hooks();
        for fresh_context in [false, true] {
            HANDLER_RUNS.store(0, Ordering::SeqCst);
            DEFAULT_RUNS.store(0, Ordering::SeqCst);
            let mut ctx = Context::client().with_extension(hooks.clone());
            hooks
                .create(&mut ctx, Looper { fresh_context }, store)
                .await
                .unwrap();
            assert_eq!(
                HANDLER_RUNS.load(Ordering::SeqCst),
                1,
                "fresh context: {fresh_context}"
            );
            assert_eq!(
                DEFAULT_RUNS.load(Ordering::SeqCst),
                2,
                "the nested write itself happens"
            );
        }
    }
}

mod sync_recursion {
    use super::*;

    pub static BEFORE_RUNS: AtomicUsize = AtomicUsize::new(0);
    pub static AFTER_RUNS: AtomicUsize = AtomicUsize::new(0);
    pub static DEFAULT_RUNS: AtomicUsize = AtomicUsize::new(0);

    #[derive(Debug, Clone, Entity)]
    pub struct Echo {
        pub n: u32,
    }

    #[before_create("Echo")]
    fn count_before(_echo: &mut Echo) {
        BEFORE_RUNS.fetch_add(1, Ordering::SeqCst);
    }

    /// Writes its own table again with a sync call, from a sync after handler, and keeps what
    /// that nested call returned, plus one.
    #[after_create("Echo")]
    fn write_again(echo: &mut Echo, ctx: &Context) -> Result<(), HookError> {
        AFTER_RUNS.fetch_add(1, Ordering::SeqCst);
        let hooks = ctx.require_extension::<Hooks>()?.clone();
        let nested =
            hooks.run_sync::<ops::data::Create<Echo>, _>(&mut ctx.child(), echo.clone(), store)?;
        echo.n = nested.n + 1;
        Ok(())
    }

    fn store(mut echo: Echo) -> Result<Echo, HookError> {
        DEFAULT_RUNS.fetch_add(1, Ordering::SeqCst);
        echo.n += 10;
        Ok(echo)
    }

    // A nested call fires no handler, before or after, and returns its default's result as the
    // default made it: on a sync call, and on an async call whose handlers are all sync.
    #[tokio::test]
    async fn a_sync_handler_writing_its_own_table_fires_nothing_nested_and_gets_the_default_result()
    {
        let hooks = hooks();
        for on_async_call in [false, true] {
            for counter in [&BEFORE_RUNS, &AFTER_RUNS, &DEFAULT_RUNS] {
                counter.store(0, Ordering::SeqCst);
            }
            let mut ctx = Context::client().with_extension(hooks.clone());
            let out = if on_async_call {
                hooks
                    .create(&mut ctx, Echo { n: 0 }, |e| async move { store(e) })
                    .await
            } else {
                hooks.run_sync::<ops::data::Create<Echo>, _>(&mut ctx, Echo { n: 0 }, store)
            };
            // The call's default: 0 + 10; the nested default on that: 20; the after handler: 21.
            assert_eq!(out.unwrap().n, 21, "async call: {on_async_call}");
            let runs = [&BEFORE_RUNS, &AFTER_RUNS, &DEFAULT_RUNS].map(|c| c.load(Ordering::SeqCst));
            assert_eq!(runs, [1, 1, 2], "async call: {on_async_call}");
        }
    }
}

mod sync_into_async_slot {
    use super::*;

    #[derive(Debug, Clone, Entity)]
    pub struct Invoice {
        pub n: u32,
    }

    #[derive(Debug, Clone, Entity)]
    pub struct InvoiceLine {
        pub n: u32,
    }

    /// The slot a sync call cannot run when it fires its handlers: one of them is `async fn`.
    #[before_create("InvoiceLine")]
    async fn price_line(line: &mut InvoiceLine) {
        line.n += 100;
    }

    /// A sync handler that writes the other table with a sync call: a nested call.
    #[after_create("Invoice")]
    fn write_line(invoice: &mut Invoice, ctx: &Context) -> Result<(), HookError> {
        let hooks = ctx.require_extension::<Hooks>()?.clone();
        let line = InvoiceLine { n: invoice.n };
        let written =
            hooks.run_sync::<ops::data::Create<InvoiceLine>, _>(&mut ctx.child(), line, Ok)?;
        invoice.n = written.n;
        Ok(())
    }

    #[test]
    fn a_nested_sync_call_into_a_slot_with_an_async_handler_runs_its_default_alone() {
        let hooks = hooks();
        let ctx = &mut Context::client().with_extension(hooks.clone());
        let out = hooks.run_sync::<ops::data::Create<Invoice>, _>(ctx, Invoice { n: 7 }, Ok);
        // The nested create fired nothing (the async handler did not add 100) and did not fail.
        assert_eq!(out.unwrap().n, 7);
        // Called directly, the same sync call still fails closed, naming the handler.
        let err = hooks
            .run_sync::<ops::data::Create<InvoiceLine>, _>(ctx, InvoiceLine { n: 1 }, Ok)
            .unwrap_err();
        assert!(err.message().contains("price_line"), "{err}");
    }
}

mod opt_in {
    use super::*;

    pub static DEPTHS: Mutex<Vec<u32>> = Mutex::new(Vec::new());

    #[derive(Debug, Clone, Entity)]
    pub struct Chain {
        pub id: u32,
    }

    #[before_create("Chain")]
    async fn recurse(record: &mut Chain, ctx: &Context) -> Result<(), HookError> {
        DEPTHS.lock().unwrap().push(ctx.depth());
        let hooks = ctx.require_extension::<Hooks>()?.clone();
        hooks
            .create(&mut ctx.child(), record.clone(), |c| async move { Ok(c) })
            .await?;
        Ok(())
    }

    #[tokio::test]
    async fn nested_calls_that_opt_in_fire_events_up_to_their_limit_then_fail_clearly() {
        let hooks = hooks();
        let mut ctx = Context::client()
            .with_extension(hooks.clone())
            .with_nested_events(2);
        let err = hooks
            .create(&mut ctx, Chain { id: 1 }, |c| async move { Ok(c) })
            .await
            .unwrap_err();
        assert_eq!(err.status(), 508);
        assert_eq!(err.code(), "recursion_limit");
        assert!(err.message().contains("over the limit of 2"), "{err}");
        assert_eq!(
            *DEPTHS.lock().unwrap(),
            [0, 1, 2],
            "three levels ran: the call and two nested ones"
        );
    }
}

mod spawned {
    use super::*;

    pub static HANDLER_RUNS: AtomicUsize = AtomicUsize::new(0);

    #[derive(Debug, Clone, Entity)]
    pub struct Spawner {
        pub id: u32,
    }

    #[after_create("Spawner")]
    async fn spawn_a_write(record: &mut Spawner, ctx: &Context) -> Result<(), HookError> {
        HANDLER_RUNS.fetch_add(1, Ordering::SeqCst);
        let hooks = ctx.require_extension::<Hooks>()?.clone();
        let (record, mut child) = (record.clone(), ctx.child());
        let task = tokio::spawn(async move {
            hooks
                .create(&mut child, record, |s| async move { Ok(s) })
                .await
        });
        task.await
            .map_err(|e| HookError::internal(e.to_string()))??;
        Ok(())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_guard_holds_in_a_task_spawned_with_the_child_context() {
        let hooks = hooks();
        let mut ctx = Context::client().with_extension(hooks.clone());
        hooks
            .create(&mut ctx, Spawner { id: 1 }, |s| async move { Ok(s) })
            .await
            .unwrap();
        assert_eq!(HANDLER_RUNS.load(Ordering::SeqCst), 1);
    }
}

mod origins {
    use super::*;

    #[derive(Debug, Clone, PartialEq, Entity)]
    pub struct Visit {
        pub marks: Vec<String>,
    }

    #[before_create("Visit", client_only)]
    fn clients_only(v: &mut Visit) {
        v.marks.push("client-only".into());
    }

    #[before_create("Visit", priority = 1)]
    fn everyone(v: &mut Visit, ctx: &Context) {
        v.marks.push(
            if ctx.is_client() {
                "everyone(client)"
            } else {
                "everyone(server)"
            }
            .into(),
        );
    }

    #[tokio::test]
    async fn client_only_handlers_skip_calls_from_server_code() {
        let hooks = hooks();
        let from_client = hooks
            .create(
                &mut Context::client(),
                Visit { marks: vec![] },
                |v| async move { Ok(v) },
            )
            .await
            .unwrap();
        assert_eq!(from_client.marks, ["client-only", "everyone(client)"]);
        let from_server = hooks
            .create(
                &mut Context::server(),
                Visit { marks: vec![] },
                |v| async move { Ok(v) },
            )
            .await
            .unwrap();
        assert_eq!(from_server.marks, ["everyone(server)"]);
    }
}

mod timeouts {
    use super::*;

    pub static DEFAULT_RUNS: AtomicUsize = AtomicUsize::new(0);

    #[derive(Debug, Clone, PartialEq, Entity)]
    pub struct Slow {
        pub note: String,
    }

    #[before_create("Slow", timeout = "200ms")]
    async fn hangs_before(s: &mut Slow) {
        if s.note == "hang before" {
            std::future::pending::<()>().await;
        }
    }

    #[after_create("Slow", timeout = "3s")]
    async fn hangs_after(s: &mut Slow) {
        if s.note == "hang after" {
            std::future::pending::<()>().await;
        }
        s.note.push_str(" (after ran)");
    }

    // Paused tokio time: the clock only moves when every task waits, so the cut is measured exactly
    // and the test does not depend on the machine's speed.
    #[tokio::test(start_paused = true)]
    async fn a_hung_before_handler_is_cut_at_its_timeout_and_rejects_the_call() {
        let hooks = hooks();
        let start = tokio::time::Instant::now();
        let err = hooks
            .create(
                &mut Context::client(),
                Slow {
                    note: "hang before".into(),
                },
                |s| async move {
                    DEFAULT_RUNS.fetch_add(1, Ordering::SeqCst);
                    Ok(s)
                },
            )
            .await
            .unwrap_err();
        let waited = start.elapsed();
        assert_eq!((err.status(), err.code()), (504, "handler_timeout"));
        assert!(err.message().contains("timeouts::hangs_before"), "{err}");
        assert!(
            waited >= Duration::from_millis(200) && waited <= Duration::from_millis(220),
            "{waited:?}"
        );
        assert_eq!(
            DEFAULT_RUNS.load(Ordering::SeqCst),
            0,
            "fail closed: the default does not run"
        );
        assert!(stats(&hooks, "policies::timeouts::hangs_before").timeouts >= 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_hung_after_handler_is_cut_at_its_timeout_and_the_result_kept() {
        let hooks = hooks();
        let start = tokio::time::Instant::now();
        let out = hooks
            .create(
                &mut Context::client(),
                Slow {
                    note: "hang after".into(),
                },
                |s| async move { Ok(s) },
            )
            .await
            .unwrap();
        let waited = start.elapsed();
        assert_eq!(out.note, "hang after");
        assert!(
            waited >= Duration::from_secs(3) && waited <= Duration::from_millis(3300),
            "{waited:?}"
        );
        assert!(stats(&hooks, "policies::timeouts::hangs_after").timeouts >= 1);
    }

    #[tokio::test(start_paused = true)]
    async fn the_default_timeout_applies_to_handlers_without_their_own() {
        let hooks = Hooks::builder()
            .default_timeout(Duration::from_millis(50))
            .build()
            .unwrap();
        let start = tokio::time::Instant::now();
        let err = hooks
            .create(
                &mut Context::client(),
                Lazy { id: 1 },
                |l| async move { Ok(l) },
            )
            .await
            .unwrap_err();
        assert_eq!(err.code(), "handler_timeout");
        let waited = start.elapsed();
        assert!(
            waited >= Duration::from_millis(50) && waited <= Duration::from_millis(55),
            "{waited:?}"
        );
    }

    #[derive(Debug, Clone, Entity)]
    pub struct Lazy {
        pub id: u32,
    }

    #[before_create("Lazy")]
    async fn never_returns(_: &mut Lazy) {
        std::future::pending::<()>().await;
    }

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Entity)]
    pub struct Blocking {
        pub sleep_ms: u64,
    }

    /// A sync handler cannot be interrupted; one that overran its own timeout is treated as timed
    /// out when it returns.
    #[before_create("Blocking", timeout = "50ms")]
    fn blocks(b: &mut Blocking) {
        std::thread::sleep(Duration::from_millis(b.sleep_ms));
    }

    #[test]
    fn a_sync_handler_that_overran_its_timeout_rejects_the_call_when_it_returns() {
        let hooks = hooks();
        let err = hooks
            .run_sync::<ops::data::Create<Blocking>, _>(
                &mut Context::client(),
                Blocking { sleep_ms: 80 },
                Ok,
            )
            .unwrap_err();
        assert_eq!((err.status(), err.code()), (504, "handler_timeout"));
        let quick = hooks.run_sync::<ops::data::Create<Blocking>, _>(
            &mut Context::client(),
            Blocking { sleep_ms: 0 },
            Ok,
        );
        assert_eq!(quick, Ok(Blocking { sleep_ms: 0 }));
    }

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Entity)]
    pub struct BlocksThenWaits {
        pub block_ms: u64,
        pub wait_ms: u64,
    }

    /// An async handler that blocks before it awaits anything (which nothing can interrupt),
    /// then waits: its own timeout counts both.
    #[before_create("BlocksThenWaits", timeout = "100ms")]
    async fn blocks_then_waits(b: &mut BlocksThenWaits) {
        std::thread::sleep(Duration::from_millis(b.block_ms));
        if b.wait_ms > 0 {
            tokio::time::sleep(Duration::from_millis(b.wait_ms)).await;
        } else {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test]
    async fn an_async_handler_is_timed_from_its_call_not_from_its_first_wait() {
        let hooks = hooks();
        let run = |block_ms, wait_ms| {
            let hooks = hooks.clone();
            async move {
                hooks
                    .create(
                        &mut Context::client(),
                        BlocksThenWaits { block_ms, wait_ms },
                        |b| async move { Ok(b) },
                    )
                    .await
                    .map_err(|e| (e.status(), e.code().to_owned()))
            }
        };
        let timed_out = Err((504, "handler_timeout".to_owned()));
        // Blocked past its timeout, then finished at once, or after a yield.
        assert_eq!(run(150, 0).await, timed_out);
        // Blocked for most of it, then waited past what was left.
        assert_eq!(run(70, 70).await, timed_out);
        assert!(run(0, 0).await.is_ok());
    }

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Entity)]
    pub struct SlowBackground {
        pub block_ms: u64,
    }

    #[after_create("SlowBackground", background, timeout = "100ms")]
    async fn slow_background(s: &SlowBackground) {
        std::thread::sleep(Duration::from_millis(s.block_ms));
        tokio::task::yield_now().await;
    }

    #[tokio::test]
    async fn a_background_async_handler_is_timed_from_its_call_whatever_the_history() {
        let hooks = hooks();
        let out = hooks
            .create(
                &mut Context::client(),
                SlowBackground { block_ms: 150 },
                |s| async move { Ok(s) },
            )
            .await;
        assert!(out.is_ok(), "{out:?}");
        hooks.shutdown(Duration::from_secs(10)).unwrap();
        let reg = hooks
            .table()
            .registrations()
            .iter()
            .find(|r| r.id().ends_with("slow_background"))
            .unwrap();
        assert_eq!(reg.stats().timeouts, 1);
    }

    #[test]
    fn the_workspace_default_timeout_is_ten_seconds() {
        assert_eq!(hooks::policy::DEFAULT_TIMEOUT, Duration::from_secs(10));
    }
}

mod panics {
    use super::*;

    pub static DEFAULT_RUNS: AtomicUsize = AtomicUsize::new(0);

    #[derive(Debug, Clone, PartialEq, Entity)]
    pub struct Fragile {
        #[entity(skip)]
        pub mode: &'static str,
    }

    #[before_create("Fragile")]
    fn panics_before(f: &mut Fragile) {
        if f.mode == "panic before" {
            panic!("boom before");
        }
    }

    #[before_create("Fragile", priority = 1)]
    async fn panics_before_async(f: &mut Fragile) {
        tokio::task::yield_now().await;
        if f.mode == "panic before async" {
            panic!("boom before (async)");
        }
    }

    #[after_create("Fragile")]
    fn panics_after(f: &mut Fragile) {
        if f.mode == "panic after" {
            panic!("boom after");
        }
    }

    async fn store(f: Fragile) -> Result<Fragile, HookError> {
        if f.mode.starts_with("panic before") {
            DEFAULT_RUNS.fetch_add(1, Ordering::SeqCst);
        }
        Ok(f)
    }

    #[tokio::test]
    async fn a_panicking_before_handler_rejects_the_call_and_the_service_lives_on() {
        let hooks = hooks();
        for (mode, id) in [
            ("panic before", "panics_before"),
            ("panic before async", "panics_before_async"),
        ] {
            let err = hooks
                .create(&mut Context::client(), Fragile { mode }, store)
                .await
                .unwrap_err();
            assert_eq!((err.status(), err.code()), (500, "handler_panicked"));
            assert_eq!(
                err.message(),
                format!(
                    "hook handler policies::panics::{id} panicked; its message is in the \
                     service's log"
                ),
                "the panic's own message stays out of the client's error"
            );
            assert!(stats(&hooks, &format!("policies::panics::{id}")).panics >= 1);
        }
        assert_eq!(DEFAULT_RUNS.load(Ordering::SeqCst), 0, "fail closed");
        let fine = hooks
            .create(&mut Context::client(), Fragile { mode: "calm" }, store)
            .await;
        assert_eq!(fine, Ok(Fragile { mode: "calm" }));
    }

    #[tokio::test]
    async fn a_panicking_after_handler_is_counted_and_the_result_kept_unless_configured_otherwise()
    {
        let kept = hooks()
            .create(
                &mut Context::client(),
                Fragile {
                    mode: "panic after",
                },
                store,
            )
            .await;
        assert_eq!(
            kept,
            Ok(Fragile {
                mode: "panic after"
            })
        );
        let strict = Hooks::builder()
            .after_failure(AfterFailure::Fail)
            .build()
            .unwrap();
        let err = strict
            .create(
                &mut Context::client(),
                Fragile {
                    mode: "panic after",
                },
                store,
            )
            .await
            .unwrap_err();
        assert_eq!(err.code(), "handler_panicked");
        assert!(stats(&strict, "policies::panics::panics_after").panics >= 2);
    }
}

mod background {
    use super::*;
    use std::sync::atomic::AtomicU8;

    #[derive(Debug, Clone, Entity)]
    pub struct Ping {
        pub n: usize,
        #[entity(skip)]
        pub gate: Option<std::sync::Arc<tokio::sync::Semaphore>>,
        #[entity(skip)]
        pub done: Option<std::sync::Arc<AtomicUsize>>,
    }

    pub static SEEN: Mutex<Vec<AtomicU8>> = Mutex::new(Vec::new());

    /// Counts each event; waits on its gate when it has one; yields a few times to be slow.
    #[after_create("Ping", background)]
    async fn count(ping: &Ping, ctx: &Context) {
        assert_eq!(ctx.operation(), "data.create");
        if let Some(gate) = &ping.gate {
            let _permit = gate.acquire().await;
            if let Some(done) = &ping.done {
                done.fetch_add(1, Ordering::SeqCst);
            }
            return;
        }
        for _ in 0..3 {
            tokio::task::yield_now().await;
        }
        if let Some(slot) = SEEN.lock().unwrap().get(ping.n) {
            slot.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[tokio::test]
    async fn a_background_handler_does_not_delay_the_caller_and_works_on_its_own_copy() {
        let hooks = Hooks::builder().build().unwrap();
        let gate = std::sync::Arc::new(tokio::sync::Semaphore::new(0));
        let done = std::sync::Arc::new(AtomicUsize::new(0));
        let ping = Ping {
            n: 7,
            gate: Some(gate.clone()),
            done: Some(done.clone()),
        };
        // The handler cannot finish until the gate opens, yet the call returns.
        let out = hooks
            .create(&mut Context::client(), ping, |p| async move { Ok(p) })
            .await
            .unwrap();
        assert_eq!(out.n, 7);
        assert_eq!(done.load(Ordering::SeqCst), 0);
        gate.add_permits(1);
        let report = hooks.shutdown(Duration::from_secs(10)).unwrap();
        assert_eq!((report.queued, report.finished), (1, 1));
        assert_eq!(done.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_hundred_thousand_events_through_a_small_queue_arrive_exactly_once_after_shutdown() {
        const EVENTS: usize = 100_000;
        *SEEN.lock().unwrap() = (0..EVENTS).map(|_| AtomicU8::new(0)).collect();
        let hooks = Hooks::builder()
            .background(BackgroundConfig {
                capacity: 16,
                concurrency: 4,
                backpressure: Backpressure::Wait,
            })
            .build()
            .unwrap();
        let mut ctx = Context::client();
        for n in 0..EVENTS {
            hooks
                .create(
                    &mut ctx,
                    Ping {
                        n,
                        gate: None,
                        done: None,
                    },
                    |p| async move { Ok(p) },
                )
                .await
                .unwrap();
        }
        let report = hooks.shutdown(Duration::from_secs(120)).unwrap();
        assert_eq!(
            (report.queued, report.finished, report.refused),
            (EVENTS as u64, EVENTS as u64, 0)
        );
        let seen = SEEN.lock().unwrap();
        let wrong: Vec<_> = seen
            .iter()
            .enumerate()
            .filter(|(_, c)| c.load(Ordering::SeqCst) != 1)
            .take(5)
            .collect();
        assert!(wrong.is_empty(), "events not seen exactly once: {wrong:?}");
    }

    #[tokio::test]
    async fn a_full_queue_with_reject_backpressure_fails_the_call_with_a_clear_error_and_loses_nothing()
     {
        let hooks = Hooks::builder()
            .background(BackgroundConfig {
                capacity: 1,
                concurrency: 1,
                backpressure: Backpressure::Reject,
            })
            .build()
            .unwrap();
        let gate = std::sync::Arc::new(tokio::sync::Semaphore::new(0));
        let mut refused = None;
        for _ in 0..10 {
            let ping = Ping {
                n: usize::MAX,
                gate: Some(gate.clone()),
                done: None,
            };
            if let Err(e) = hooks
                .create(&mut Context::client(), ping, |p| async move { Ok(p) })
                .await
            {
                refused = Some(e);
                break;
            }
        }
        let err = refused.expect("a queue of one fills up within ten calls");
        assert_eq!((err.status(), err.code()), (503, "background_queue_full"));
        gate.add_permits(100);
        let report = hooks.shutdown(Duration::from_secs(10)).unwrap();
        assert_eq!(report.refused, 1);
        assert_eq!(report.finished, report.queued, "every accepted event ran");
    }

    #[tokio::test]
    async fn after_shutdown_background_events_are_refused_not_dropped() {
        let hooks = Hooks::builder().build().unwrap();
        hooks.shutdown(Duration::from_secs(1)).unwrap();
        let err = hooks
            .create(
                &mut Context::client(),
                Ping {
                    n: usize::MAX,
                    gate: None,
                    done: None,
                },
                |p| async move { Ok(p) },
            )
            .await
            .unwrap_err();
        assert_eq!((err.status(), err.code()), (503, "shutting_down"));
    }

    #[test]
    fn after_shutdown_a_sync_call_fails_with_the_queue_refusal() {
        let hooks = Hooks::builder().build().unwrap();
        hooks.shutdown(Duration::from_secs(1)).unwrap();
        let err = hooks
            .run_sync::<ops::data::Create<Ping>, _>(
                &mut Context::client(),
                Ping {
                    n: usize::MAX,
                    gate: None,
                    done: None,
                },
                Ok,
            )
            .unwrap_err();
        assert_eq!((err.status(), err.code()), (503, "shutting_down"));
    }

    #[test]
    fn a_sync_call_queues_background_handlers_too() {
        let hooks = Hooks::builder().build().unwrap();
        let gate = std::sync::Arc::new(tokio::sync::Semaphore::new(1));
        let out = hooks.run_sync::<ops::data::Create<Ping>, _>(
            &mut Context::client(),
            Ping {
                n: usize::MAX,
                gate: Some(gate),
                done: None,
            },
            Ok,
        );
        assert!(out.is_ok());
        let report = hooks.shutdown(Duration::from_secs(10)).unwrap();
        assert_eq!((report.queued, report.finished), (1, 1));
    }
}

/// A call with background jobs is admitted to the queue before anything of it runs: refused, it
/// is refused whole, before its default has written anything; admitted, its jobs are accepted.
mod background_places {
    use super::*;
    use std::sync::Arc;

    #[derive(Debug, Clone, Entity)]
    pub struct Order {
        pub n: usize,
        #[entity(skip)]
        pub gate: Option<Arc<tokio::sync::Semaphore>>,
        #[entity(skip)]
        pub runs: Arc<AtomicUsize>,
    }

    #[after_create("Order", background)]
    async fn audit_order(order: &Order) {
        if let Some(gate) = &order.gate {
            let _permit = gate.acquire().await;
        }
        order.runs.fetch_add(1, Ordering::SeqCst);
    }

    #[after_create("Order", background, priority = 1)]
    fn mail_order(order: &Order) {
        order.runs.fetch_add(1, Ordering::SeqCst);
    }

    /// Whether order 2 is held, and whether to let it go.
    pub static HELD: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    pub static GO: (Mutex<bool>, std::sync::Condvar) =
        (Mutex::new(false), std::sync::Condvar::new());

    /// Order 2 waits in its before phase, after its call took its places, until let go.
    #[before_create("Order")]
    fn hold_order(order: &Order) {
        if order.n == 2 {
            HELD.store(true, Ordering::SeqCst);
            let mut go = GO.0.lock().unwrap();
            while !*go {
                go = GO.1.wait(go).unwrap();
            }
        }
    }

    fn rejecting(capacity: usize) -> Hooks {
        Hooks::builder()
            .background(BackgroundConfig {
                capacity,
                concurrency: 1,
                backpressure: Backpressure::Reject,
            })
            .build()
            .unwrap()
    }

    fn order(gate: Option<&Arc<tokio::sync::Semaphore>>, runs: &Arc<AtomicUsize>) -> Order {
        Order {
            n: 1,
            gate: gate.cloned(),
            runs: runs.clone(),
        }
    }

    #[tokio::test]
    async fn an_idle_queue_takes_every_background_job_of_a_call_whatever_its_capacity() {
        let hooks = rejecting(1);
        let runs = Arc::new(AtomicUsize::new(0));
        let out = hooks
            .create(&mut Context::client(), order(None, &runs), |o| async move {
                Ok(o)
            })
            .await;
        assert!(out.is_ok(), "{out:?}");
        let report = hooks.shutdown(Duration::from_secs(10)).unwrap();
        assert_eq!((report.queued, report.finished, report.refused), (2, 2, 0));
        assert_eq!(runs.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_full_queue_refuses_a_call_whole_before_its_default_runs() {
        let hooks = rejecting(1);
        let gate = Arc::new(tokio::sync::Semaphore::new(0));
        let runs = Arc::new(AtomicUsize::new(0));
        let defaults = AtomicUsize::new(0);
        let mut accepted = 0;
        let mut refused = None;
        for _ in 0..10 {
            let out = hooks
                .create(&mut Context::client(), order(Some(&gate), &runs), |o| {
                    defaults.fetch_add(1, Ordering::SeqCst);
                    async move { Ok(o) }
                })
                .await;
            match out {
                Ok(_) => accepted += 1,
                Err(e) => {
                    refused = Some(e);
                    break;
                }
            }
        }
        let err = refused.expect("a queue of one fills up within ten calls");
        assert_eq!((err.status(), err.code()), (503, "background_queue_full"));
        assert_eq!(
            defaults.load(Ordering::SeqCst),
            accepted,
            "the refused call's default did not run"
        );
        gate.add_permits(100);
        let report = hooks.shutdown(Duration::from_secs(10)).unwrap();
        assert_eq!(report.refused, 1);
        assert_eq!(
            report.queued,
            2 * accepted as u64,
            "no call queued half its jobs"
        );
        assert_eq!(report.finished, report.queued);
        assert_eq!(runs.load(Ordering::SeqCst), 2 * accepted);
    }

    #[tokio::test]
    async fn after_shutdown_a_call_is_refused_before_its_default_runs() {
        let hooks = rejecting(8);
        hooks.shutdown(Duration::from_secs(1)).unwrap();
        let runs = Arc::new(AtomicUsize::new(0));
        let defaults = AtomicUsize::new(0);
        let err = hooks
            .create(&mut Context::client(), order(None, &runs), |o| {
                defaults.fetch_add(1, Ordering::SeqCst);
                async move { Ok(o) }
            })
            .await
            .unwrap_err();
        assert_eq!((err.status(), err.code()), (503, "shutting_down"));
        let err = hooks
            .run_sync::<ops::data::Create<Order>, _>(
                &mut Context::client(),
                order(None, &runs),
                |o| {
                    defaults.fetch_add(1, Ordering::SeqCst);
                    Ok(o)
                },
            )
            .unwrap_err();
        assert_eq!((err.status(), err.code()), (503, "shutting_down"));
        assert_eq!(defaults.load(Ordering::SeqCst), 0);
        assert_eq!(runs.load(Ordering::SeqCst), 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_call_holding_its_places_when_shutdown_begins_still_queues_its_jobs() {
        let hooks = rejecting(8);
        let runs = Arc::new(AtomicUsize::new(0));
        let call = tokio::spawn({
            let (hooks, runs) = (hooks.clone(), runs.clone());
            async move {
                let held = Order {
                    n: 2,
                    ..order(None, &runs)
                };
                hooks
                    .create(&mut Context::client(), held, |o| async move { Ok(o) })
                    .await
            }
        });
        // The call has its places and waits in its before phase; the shutdown begins.
        while !HELD.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let shutdown = tokio::task::spawn_blocking({
            let hooks = hooks.clone();
            move || hooks.shutdown(Duration::from_secs(10))
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(
            !shutdown.is_finished(),
            "the shutdown waits for the held places"
        );
        *GO.0.lock().unwrap() = true;
        GO.1.notify_all();
        let out = call.await.unwrap();
        assert!(out.is_ok(), "{out:?}");
        let report = shutdown.await.unwrap().unwrap();
        assert_eq!((report.queued, report.finished, report.refused), (2, 2, 0));
        assert_eq!(runs.load(Ordering::SeqCst), 2);
    }

    /// A record written by an order's default, with background handlers of its own; and one
    /// whose only background handler runs for clients.
    #[derive(Debug, Clone, Entity)]
    pub struct OrderLine {
        pub n: usize,
    }

    #[after_create("OrderLine", background)]
    fn audit_line(_line: &OrderLine) {}

    #[derive(Debug, Clone, Entity)]
    pub struct ClientNote {
        pub n: usize,
    }

    #[after_create("ClientNote", background, client_only)]
    fn note_for_clients(_note: &ClientNote) {}

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_call_made_inside_an_admitted_call_does_not_wait_for_it() {
        let hooks = Hooks::builder()
            .background(BackgroundConfig {
                capacity: 1,
                concurrency: 4,
                backpressure: Backpressure::Wait,
            })
            .build()
            .unwrap();
        let runs = Arc::new(AtomicUsize::new(0));
        let inner = hooks.clone();
        let mut ctx = Context::server();
        let call = hooks.create(&mut ctx, order(None, &runs), |o| async move {
            // The order's default writes a line, through the hooks, with its own context.
            inner
                .create(
                    &mut Context::server(),
                    OrderLine { n: o.n },
                    |l| async move { Ok(l) },
                )
                .await?;
            Ok(o)
        });
        let out = tokio::time::timeout(Duration::from_secs(10), call).await;
        assert!(matches!(out, Ok(Ok(_))), "{out:?}");
        // The same from a sync call.
        let inner = hooks.clone();
        let out = tokio::task::spawn_blocking(move || {
            let runs = Arc::new(AtomicUsize::new(0));
            inner.run_sync::<ops::data::Create<Order>, _>(
                &mut Context::server(),
                order(None, &runs),
                |o| {
                    inner.run_sync::<ops::data::Create<OrderLine>, _>(
                        &mut Context::server(),
                        OrderLine { n: o.n },
                        Ok,
                    )?;
                    Ok(o)
                },
            )
        });
        let out = tokio::time::timeout(Duration::from_secs(10), out).await;
        assert!(matches!(out, Ok(Ok(Ok(_)))), "{out:?}");
        let report = hooks.shutdown(Duration::from_secs(10)).unwrap();
        assert_eq!((report.queued, report.finished), (6, 6));
    }

    #[tokio::test]
    async fn a_call_none_of_whose_background_handlers_runs_needs_no_room() {
        let hooks = rejecting(1);
        hooks.shutdown(Duration::from_secs(1)).unwrap();
        let out = hooks
            .create(
                &mut Context::server(),
                ClientNote { n: 1 },
                |n| async move { Ok(n) },
            )
            .await;
        assert!(out.is_ok(), "{out:?}");
        let out = hooks.run_sync::<ops::data::Create<ClientNote>, _>(
            &mut Context::server(),
            ClientNote { n: 2 },
            Ok,
        );
        assert!(out.is_ok(), "{out:?}");
        let err = hooks
            .create(
                &mut Context::client(),
                ClientNote { n: 3 },
                |n| async move { Ok(n) },
            )
            .await
            .unwrap_err();
        assert_eq!(err.code(), "shutting_down");
    }

    #[test]
    fn a_sync_call_on_a_full_queue_is_refused_before_its_default_runs() {
        let hooks = rejecting(1);
        let gate = Arc::new(tokio::sync::Semaphore::new(0));
        let runs = Arc::new(AtomicUsize::new(0));
        let defaults = AtomicUsize::new(0);
        let mut accepted = 0;
        let mut refused = None;
        for _ in 0..10 {
            let out = hooks.run_sync::<ops::data::Create<Order>, _>(
                &mut Context::client(),
                order(Some(&gate), &runs),
                |o| {
                    defaults.fetch_add(1, Ordering::SeqCst);
                    Ok(o)
                },
            );
            match out {
                Ok(_) => accepted += 1,
                Err(e) => {
                    refused = Some(e);
                    break;
                }
            }
        }
        let err = refused.expect("a queue of one fills up within ten calls");
        assert_eq!((err.status(), err.code()), (503, "background_queue_full"));
        assert_eq!(defaults.load(Ordering::SeqCst), accepted);
        gate.add_permits(100);
        let report = hooks.shutdown(Duration::from_secs(10)).unwrap();
        assert_eq!(report.queued, 2 * accepted as u64);
        assert_eq!(runs.load(Ordering::SeqCst), 2 * accepted);
    }
}

mod background_io {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[derive(Debug, Clone, Serialize, Deserialize, Entity)]
    pub struct Webhook {
        pub addr: String,
    }

    /// Calls a (loopback) third-party endpoint from the background queue.
    #[after_create("Webhook", background)]
    async fn deliver(hook: &Webhook) -> Result<(), HookError> {
        let mut stream = tokio::net::TcpStream::connect(&hook.addr)
            .await
            .map_err(|e| HookError::internal(e.to_string()))?;
        stream
            .write_all(b"delivered")
            .await
            .map_err(|e| HookError::internal(e.to_string()))
    }

    #[tokio::test]
    async fn background_handlers_can_do_network_io() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let hooks = Hooks::builder().build().unwrap();
        hooks
            .create(&mut Context::client(), Webhook { addr }, |w| async move {
                Ok(w)
            })
            .await
            .unwrap();
        // Bounded: a handler that cannot reach the network must fail this test, not hang it.
        let accepted = tokio::time::timeout(Duration::from_secs(10), listener.accept()).await;
        let (mut conn, _) = accepted.expect("the background handler connects").unwrap();
        let mut got = String::new();
        let read =
            tokio::time::timeout(Duration::from_secs(10), conn.read_to_string(&mut got)).await;
        read.expect("the handler finishes writing").unwrap();
        assert_eq!(got, "delivered");
        hooks.shutdown(Duration::from_secs(10)).unwrap();
        let reg = hooks
            .table()
            .registrations()
            .iter()
            .find(|r| r.id().ends_with("background_io::deliver"))
            .unwrap();
        assert_eq!((reg.stats().calls, reg.stats().errors), (1, 0));
    }
}

mod blocking_background {
    use super::*;
    use std::sync::mpsc;

    #[derive(Debug, Clone, Serialize, Deserialize, Entity)]
    pub struct Blocker {
        pub n: u32,
    }

    #[derive(Debug, Clone, Serialize, Deserialize, Entity)]
    pub struct Releaser {
        pub n: u32,
    }

    /// The release the slow handler waits for, sent by the quick one.
    pub static RELEASE: Mutex<Option<mpsc::Sender<()>>> = Mutex::new(None);
    pub static WAITING: Mutex<Option<mpsc::Receiver<()>>> = Mutex::new(None);
    /// Told when the blocker has started to wait.
    pub static STARTED: Mutex<Option<mpsc::Sender<()>>> = Mutex::new(None);
    /// What the slow handler saw: released by the quick handler, or not within its bound.
    pub static SEEN: Mutex<Vec<&'static str>> = Mutex::new(Vec::new());

    /// A sync handler that blocks its thread until the quick handler has run.
    #[after_create("Blocker", background)]
    fn wait_for_releaser(_: &Blocker) {
        let waiting = WAITING.lock().unwrap().take().expect("one slow create");
        if let Some(started) = STARTED.lock().unwrap().take() {
            let _ = started.send(());
        }
        // Bounded, so that a worker that runs one job at a time fails the test, not hangs it.
        let seen = match waiting.recv_timeout(Duration::from_secs(10)) {
            Ok(()) => "released",
            Err(_) => "not released",
        };
        SEEN.lock().unwrap().push(seen);
    }

    #[after_create("Releaser", background)]
    fn release_blocker(r: &Releaser) {
        // The other test's releaser (13) is not this test's.
        if r.n != 1 {
            return;
        }
        if let Some(tx) = RELEASE.lock().unwrap().take() {
            let _ = tx.send(());
        }
    }

    #[after_create("Releaser", background, priority = 1)]
    fn panics_in_the_background(q: &Releaser) {
        if q.n == 13 {
            panic!("background panic");
        }
    }

    #[tokio::test]
    async fn a_blocking_sync_background_handler_does_not_hold_up_the_other_jobs() {
        let (tx, rx) = mpsc::channel();
        *RELEASE.lock().unwrap() = Some(tx);
        *WAITING.lock().unwrap() = Some(rx);
        let (started_tx, started) = mpsc::channel();
        *STARTED.lock().unwrap() = Some(started_tx);
        let hooks = Hooks::builder().build().unwrap();
        let ctx = &mut Context::client();
        hooks
            .create(ctx, Blocker { n: 1 }, |s| async move { Ok(s) })
            .await
            .unwrap();
        // Queued once the slow job holds its thread, waiting for this one to run.
        started
            .recv_timeout(Duration::from_secs(10))
            .expect("the blocking handler starts");
        hooks
            .create(ctx, Releaser { n: 1 }, |q| async move { Ok(q) })
            .await
            .unwrap();
        let stats = hooks.shutdown(Duration::from_secs(20)).unwrap();
        assert_eq!((stats.queued, stats.finished), (3, 3));
        assert_eq!(*SEEN.lock().unwrap(), ["released"]);
        let id = "policies::blocking_background::wait_for_releaser";
        assert_eq!(
            (stats_of(&hooks, id).calls, stats_of(&hooks, id).panics),
            (1, 0)
        );
    }

    #[test]
    fn a_panic_in_a_sync_background_handler_is_counted_as_the_handlers() {
        // Counters are the process's: the other test's Releaser runs this handler too, without
        // panicking, so only the panics are this test's own.
        let id = "policies::blocking_background::panics_in_the_background";
        let hooks = Hooks::builder().build().unwrap();
        let before = stats_of(&hooks, id).panics;
        let out = hooks.run_sync::<ops::data::Create<Releaser>, _>(
            &mut Context::client(),
            Releaser { n: 13 },
            Ok,
        );
        assert_eq!(out.unwrap().n, 13, "the caller is not touched");
        let stats = hooks.shutdown(Duration::from_secs(10)).unwrap();
        assert_eq!(stats.finished, stats.queued);
        assert_eq!(stats_of(&hooks, id).panics - before, 1);
    }

    fn stats_of(hooks: &Hooks, id: &str) -> hooks::Stats {
        stats(hooks, id)
    }

    #[derive(Debug, Clone, Serialize, Deserialize, Entity)]
    pub struct Rebound {
        pub n: u32,
    }

    /// The runtime the echo handler calls back into.
    pub static REBOUND_HOOKS: std::sync::OnceLock<Hooks> = std::sync::OnceLock::new();
    pub static REBOUNDS: AtomicUsize = AtomicUsize::new(0);
    /// Told when the first run has made its nested call.
    pub static REBOUNDED: Mutex<Option<std::sync::mpsc::Sender<()>>> = Mutex::new(None);

    /// Writes its own table again, with a fresh context, from its own thread.
    #[after_create("Rebound", background)]
    fn rebound(e: &Rebound) {
        REBOUNDS.fetch_add(1, Ordering::SeqCst);
        if e.n < 50
            && let Some(hooks) = REBOUND_HOOKS.get()
        {
            let again = Rebound { n: e.n + 1 };
            let _ =
                hooks.run_sync::<ops::data::Create<Rebound>, _>(&mut Context::server(), again, Ok);
        }
        if let Some(told) = REBOUNDED.lock().unwrap().take() {
            let _ = told.send(());
        }
    }

    #[test]
    fn a_sync_background_handler_on_its_own_thread_is_still_under_the_recursion_guard() {
        let hooks = REBOUND_HOOKS.get_or_init(|| Hooks::builder().build().unwrap());
        let (told, rebounded) = std::sync::mpsc::channel();
        *REBOUNDED.lock().unwrap() = Some(told);
        hooks
            .run_sync::<ops::data::Create<Rebound>, _>(&mut Context::client(), Rebound { n: 0 }, Ok)
            .unwrap();
        // Once the handler's own create has returned, whatever it queued is in the queue, and
        // the shutdown below runs it.
        rebounded
            .recv_timeout(Duration::from_secs(10))
            .expect("the background handler runs");
        let stats = hooks.shutdown(Duration::from_secs(10)).unwrap();
        // The handler's own create is a nested call: its default runs, no handler does.
        assert_eq!(REBOUNDS.load(Ordering::SeqCst), 1);
        assert_eq!((stats.queued, stats.finished), (1, 1));
    }
}

mod queue_room {
    use super::*;
    use std::sync::OnceLock;

    #[derive(Debug, Clone, Serialize, Deserialize, Entity)]
    pub struct RoomLingering {
        pub id: u64,
    }

    #[after_create("RoomLingering", background)]
    async fn linger(_: &RoomLingering) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    #[derive(Debug, Clone, Serialize, Deserialize, Entity)]
    pub struct RoomLedger {
        pub id: u64,
    }

    #[after_create("RoomLedger", background)]
    fn room_ledger(_: &RoomLedger) {}

    #[tokio::test(flavor = "current_thread")]
    async fn a_sync_call_waiting_for_room_on_a_runtime_thread_is_not_starved_by_async_callers() {
        let hooks = Hooks::builder()
            .background(BackgroundConfig {
                capacity: 1,
                concurrency: 1,
                backpressure: Backpressure::Wait,
            })
            .build()
            .unwrap();
        // Async callers of this thread, waiting for room that only this thread could let
        // them take.
        for id in 0..3 {
            let hooks = hooks.clone();
            tokio::spawn(async move {
                let ctx = &mut Context::client();
                let _ = hooks
                    .create(ctx, RoomLingering { id }, |l| async move { Ok(l) })
                    .await;
            });
        }
        tokio::task::yield_now().await;
        // A regression would hang this thread: fail the test binary instead, loudly.
        let (returned, watched) = std::sync::mpsc::channel::<()>();
        std::thread::spawn(move || {
            if watched.recv_timeout(Duration::from_secs(30)).is_err() {
                eprintln!("a sync call waiting for room on a runtime thread never returned");
                std::process::exit(101);
            }
        });
        let out = hooks.run_sync::<ops::data::Create<RoomLedger>, _>(
            &mut Context::client(),
            RoomLedger { id: 1 },
            Ok,
        );
        let _ = returned.send(());
        assert_eq!(out.unwrap().id, 1);
    }

    #[derive(Debug, Clone, Serialize, Deserialize, Entity)]
    pub struct RoomPurchase {
        pub id: u64,
    }

    #[derive(Debug, Clone, Serialize, Deserialize, Entity)]
    pub struct RoomPurchaseAudit {
        pub purchase: u64,
    }

    pub static QUEUE_HOOKS: OnceLock<Hooks> = OnceLock::new();
    pub static AUDITED: AtomicUsize = AtomicUsize::new(0);

    /// A background job whose own call (opted in to nested events) queues another job.
    #[after_create("RoomPurchase", background)]
    async fn audit_purchase(p: &RoomPurchase, ctx: &Context) -> Result<(), HookError> {
        let hooks = QUEUE_HOOKS
            .get()
            .ok_or_else(|| HookError::internal("no runtime"))?;
        let mut nested = ctx.child().with_nested_events(5);
        let audit = RoomPurchaseAudit { purchase: p.id };
        hooks
            .create(&mut nested, audit, |a| async move { Ok(a) })
            .await
            .map(drop)
    }

    #[after_create("RoomPurchaseAudit", background)]
    async fn ship_audit(_: &RoomPurchaseAudit) {
        AUDITED.fetch_add(1, Ordering::SeqCst);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_background_job_that_queues_another_never_waits_for_room_it_holds_up() {
        let hooks = QUEUE_HOOKS
            .get_or_init(|| {
                Hooks::builder()
                    .background(BackgroundConfig {
                        capacity: 2,
                        concurrency: 1,
                        backpressure: Backpressure::Wait,
                    })
                    .build()
                    .unwrap()
            })
            .clone();
        for id in 0..20 {
            let ctx = &mut Context::client();
            hooks
                .create(ctx, RoomPurchase { id }, |p| async move { Ok(p) })
                .await
                .unwrap();
        }
        // Every job done, its audit included, before the shutdown: a job that queues more once
        // the shutdown has begun is refused like any caller. Bounded, so that a deadlock fails
        // the test instead of hanging it.
        let done = async {
            while hooks.background_stats().finished < 40 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        };
        tokio::time::timeout(Duration::from_secs(20), done)
            .await
            .expect("every job finishes: none waits for room that only it could make");
        let stats = tokio::task::spawn_blocking(move || hooks.shutdown(Duration::from_secs(20)))
            .await
            .unwrap()
            .unwrap();
        assert_eq!((stats.queued, stats.finished, stats.refused), (40, 40, 0));
        assert_eq!(AUDITED.load(Ordering::SeqCst), 20);
    }

    #[derive(Debug, Clone, Serialize, Deserialize, Entity)]
    pub struct RoomBoundless {
        pub id: u64,
    }

    #[after_create("RoomBoundless", background)]
    fn boundless(_: &RoomBoundless) {}

    #[test]
    fn a_queue_of_any_capacity_takes_jobs() {
        let hooks = Hooks::builder()
            .background(BackgroundConfig {
                capacity: usize::MAX,
                concurrency: usize::MAX,
                backpressure: Backpressure::Wait,
            })
            .build()
            .unwrap();
        for id in 0..3 {
            let out = hooks.run_sync::<ops::data::Create<RoomBoundless>, _>(
                &mut Context::client(),
                RoomBoundless { id },
                Ok,
            );
            assert_eq!(out.unwrap().id, id);
        }
        let stats = hooks.shutdown(Duration::from_secs(10)).unwrap();
        assert_eq!((stats.queued, stats.finished), (3, 3));
    }
}

mod limits {
    use super::*;

    #[derive(Debug, Clone, Entity)]
    pub struct Crowded {
        pub id: u32,
    }

    #[before_create("Crowded")]
    fn one(_: &mut Crowded) {}
    #[before_create("Crowded")]
    fn two(_: &mut Crowded) {}
    #[before_create("Crowded")]
    fn three(_: &mut Crowded) {}

    #[test]
    fn too_many_subscribers_fail_the_build_naming_every_handler() {
        let err = Hooks::builder().max_subscribers(2).build().unwrap_err();
        let crowded: Vec<_> = err
            .problems
            .iter()
            .filter(|p| p.problem.contains("\"Crowded\""))
            .map(|p| p.handler.as_str())
            .collect();
        assert_eq!(
            crowded,
            [
                "policies::limits::one",
                "policies::limits::three",
                "policies::limits::two"
            ]
        );
        assert!(err.to_string().contains("over the limit of 2"), "{err}");
    }

    #[test]
    fn the_default_subscriber_limit_is_ten() {
        assert_eq!(hooks::dispatch::DEFAULT_MAX_SUBSCRIBERS, 10);
        assert!(
            Hooks::new().is_ok(),
            "three handlers are within the default limit"
        );
    }
}

mod params {
    use super::*;

    #[derive(Debug, Clone, Entity)]
    pub struct Region {
        pub seen: Vec<String>,
    }

    #[before_create("Region", params(region = "eu-west", retries = "3"))]
    fn read_params(r: &mut Region, ctx: &Context) {
        r.seen.push(format!(
            "{:?} {:?} {:?}",
            ctx.param("region"),
            ctx.param("retries"),
            ctx.param("missing")
        ));
    }

    #[before_create("Region", priority = 1)]
    fn no_params(r: &mut Region, ctx: &Context) {
        r.seen.push(format!("{}", ctx.params().len()));
    }

    #[tokio::test]
    async fn params_written_in_the_attribute_reach_only_their_handler() {
        let out = hooks()
            .create(
                &mut Context::client(),
                Region { seen: vec![] },
                |r| async move { Ok(r) },
            )
            .await;
        assert_eq!(
            out.unwrap().seen,
            ["Some(\"eu-west\") Some(\"3\") None", "0"]
        );
    }
}

mod switches {
    use super::*;

    #[derive(Debug, Clone, Entity)]
    pub struct Switched {
        pub hits: u32,
    }

    #[before_create("Switched")]
    fn bump(s: &mut Switched) {
        s.hits += 1;
    }

    #[tokio::test]
    async fn a_disabled_handler_is_skipped_until_enabled_again() {
        let hooks = hooks();
        let run = |h: Hooks| async move {
            h.create(
                &mut Context::client(),
                Switched { hits: 0 },
                |s| async move { Ok(s) },
            )
            .await
            .unwrap()
            .hits
        };
        assert_eq!(run(hooks.clone()).await, 1);
        assert_eq!(hooks.set_enabled("policies::switches::bump", false), Ok(1));
        assert!(!stats(&hooks, "policies::switches::bump").enabled);
        assert_eq!(run(hooks.clone()).await, 0);
        hooks.set_enabled("policies::switches::bump", true).unwrap();
        assert_eq!(run(hooks.clone()).await, 1);
        assert_eq!(
            hooks
                .set_enabled("policies::switches::nope", false)
                .unwrap_err()
                .status(),
            404
        );
    }
}

mod history {
    use super::*;

    #[derive(Debug, Clone, Entity)]
    pub struct Tracked {
        pub reject: bool,
        pub fail_after: bool,
    }

    #[before_create("Tracked")]
    fn gate(t: &mut Tracked) -> Result<(), HookError> {
        if t.reject {
            Err(HookError::rejected("no"))
        } else {
            Ok(())
        }
    }

    #[after_create("Tracked")]
    fn check(t: &mut Tracked) -> Result<(), HookError> {
        if t.fail_after {
            Err(HookError::internal("after says no"))
        } else {
            Ok(())
        }
    }

    #[tokio::test]
    async fn execution_history_counts_calls_rejections_and_errors_and_times_them_when_asked() {
        let hooks = Hooks::builder().history(History::Timed).build().unwrap();
        let mut ctx = Context::client();
        for (reject, fail_after) in [(false, false), (true, false), (false, true), (false, false)] {
            let _ = hooks
                .create(&mut ctx, Tracked { reject, fail_after }, |t| async move {
                    Ok(t)
                })
                .await;
        }
        let gate = stats(&hooks, "policies::history::gate");
        assert_eq!(
            (
                gate.calls,
                gate.rejections,
                gate.errors,
                gate.panics,
                gate.timeouts
            ),
            (4, 1, 0, 0, 0)
        );
        let check = stats(&hooks, "policies::history::check");
        // After handlers that take only the value skip the rejected call.
        assert_eq!((check.calls, check.rejections, check.errors), (3, 0, 1));
        assert!(gate.time_spent > Duration::ZERO);
    }
}

/// A slot of plain sync handlers runs on the dispatcher's fast loop, which catches panics once
/// per loop: the same rules must hold there as on the general path.
mod sync_slot {
    use super::*;

    pub static AFTER_RUNS: AtomicUsize = AtomicUsize::new(0);
    pub static DEFAULT_RUNS: AtomicUsize = AtomicUsize::new(0);

    #[derive(Debug, Clone, PartialEq, Entity)]
    pub struct Brittle {
        pub mode: String,
        pub seen: Vec<String>,
    }

    #[before_create("Brittle")]
    fn first(b: &mut Brittle) -> Result<(), HookError> {
        b.seen.push("first".into());
        match b.mode.as_str() {
            "panic before" => panic!("boom in a sync before handler"),
            "reject" => Err(HookError::rejected("no")),
            _ => Ok(()),
        }
    }

    #[before_create("Brittle", priority = 1)]
    fn second(b: &mut Brittle) {
        b.seen.push("second".into());
    }

    #[after_create("Brittle")]
    fn panics_after(b: &mut Brittle) {
        if b.mode == "panic after" {
            panic!("boom in a sync after handler");
        }
        b.seen.push("panics_after".into());
    }

    #[after_create("Brittle", priority = 1)]
    fn runs_after_the_panic(b: &mut Result<Brittle, HookError>) {
        match b {
            Ok(b) => b.seen.push("runs_after_the_panic".into()),
            Err(e) if e.message().contains("panics_after") => {
                AFTER_RUNS.fetch_add(1, Ordering::SeqCst);
            }
            Err(_) => {}
        }
    }

    fn store(b: Brittle) -> Result<Brittle, HookError> {
        if b.mode == "panic before" {
            DEFAULT_RUNS.fetch_add(1, Ordering::SeqCst);
        }
        Ok(b)
    }

    fn brittle(mode: &str) -> Brittle {
        Brittle {
            mode: mode.into(),
            seen: Vec::new(),
        }
    }

    #[test]
    fn a_panicking_sync_before_handler_rejects_the_call_stops_the_loop_and_is_counted() {
        let hooks = hooks();
        let panics = stats(&hooks, "policies::sync_slot::first").panics;
        let err = hooks
            .run_sync::<hooks::ops::data::Create<Brittle>, _>(
                &mut Context::client(),
                brittle("panic before"),
                store,
            )
            .unwrap_err();
        assert_eq!((err.status(), err.code()), (500, "handler_panicked"));
        assert!(
            err.message().contains("policies::sync_slot::first"),
            "{err}"
        );
        assert_eq!(DEFAULT_RUNS.load(Ordering::SeqCst), 0, "fail closed");
        assert_eq!(
            stats(&hooks, "policies::sync_slot::first").panics,
            panics + 1
        );
        // The service lives on, and the next call runs every handler.
        let fine = hooks
            .run_sync::<hooks::ops::data::Create<Brittle>, _>(
                &mut Context::client(),
                brittle("calm"),
                store,
            )
            .unwrap();
        assert_eq!(
            fine.seen,
            ["first", "second", "panics_after", "runs_after_the_panic"]
        );
    }

    #[tokio::test]
    async fn after_a_sync_after_handler_panics_the_next_one_still_runs_and_the_result_is_kept() {
        let hooks = hooks();
        let kept = hooks
            .create(&mut Context::client(), brittle("panic after"), |b| async {
                store(b)
            })
            .await
            .unwrap();
        assert_eq!(kept.seen, ["first", "second", "runs_after_the_panic"]);

        let strict = Hooks::builder()
            .after_failure(AfterFailure::Fail)
            .build()
            .unwrap();
        let err = strict
            .run_sync::<hooks::ops::data::Create<Brittle>, _>(
                &mut Context::client(),
                brittle("panic after"),
                store,
            )
            .unwrap_err();
        assert_eq!(err.code(), "handler_panicked");
        // The handler after it saw the failure as the result, and ran all the same.
        assert_eq!(AFTER_RUNS.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn the_default_history_counts_runs_and_rejections_of_sync_handlers() {
        let hooks = hooks();
        let calls = |id: &str| {
            let s = stats(&hooks, id);
            (s.calls, s.rejections)
        };
        let (first, second) = (
            calls("policies::sync_slot::first"),
            calls("policies::sync_slot::second"),
        );
        let err = hooks
            .run_sync::<hooks::ops::data::Create<Brittle>, _>(
                &mut Context::client(),
                brittle("reject"),
                store,
            )
            .unwrap_err();
        assert_eq!(err.code(), "rejected");
        assert_eq!(
            calls("policies::sync_slot::first"),
            (first.0 + 1, first.1 + 1)
        );
        // The rejection stopped the loop: the second handler did not run.
        assert_eq!(calls("policies::sync_slot::second"), second);
    }
}

/// Async handlers that fail at their first poll or after waiting: the loop that runs them inside
/// one poll drops the failed handler and goes on with the next one.
mod async_slot {
    use super::*;

    #[derive(Debug, Clone, PartialEq, Entity)]
    pub struct Shaky {
        pub seen: Vec<String>,
    }

    #[after_create("Shaky")]
    async fn fails_at_once(s: &mut Shaky) {
        s.seen.push("fails_at_once".into());
        panic!("boom at the first poll");
    }

    #[after_create("Shaky", priority = 1)]
    async fn fails_after_waiting(s: &mut Shaky) {
        tokio::task::yield_now().await;
        s.seen.push("fails_after_waiting".into());
        panic!("boom after waiting");
    }

    #[after_create("Shaky", priority = 2, timeout = "50ms")]
    async fn hangs(s: &mut Shaky) {
        s.seen.push("hangs".into());
        std::future::pending::<()>().await;
    }

    #[after_create("Shaky", priority = 3)]
    async fn last(s: &mut Shaky) {
        s.seen.push("last".into());
    }

    #[tokio::test]
    async fn after_async_handlers_panic_or_time_out_at_once_or_after_waiting_the_next_ones_still_run()
     {
        let hooks = hooks();
        let ids = [
            "policies::async_slot::fails_at_once",
            "policies::async_slot::fails_after_waiting",
            "policies::async_slot::hangs",
        ];
        let before: Vec<_> = ids.iter().map(|id| stats(&hooks, id)).collect();
        let out = hooks
            .create(
                &mut Context::client(),
                Shaky { seen: Vec::new() },
                |s| async move { Ok(s) },
            )
            .await
            .expect("AfterFailure::Keep keeps the result");
        assert_eq!(
            out.seen,
            ["fails_at_once", "fails_after_waiting", "hangs", "last"]
        );
        let after: Vec<_> = ids.iter().map(|id| stats(&hooks, id)).collect();
        assert_eq!(after[0].panics, before[0].panics + 1);
        assert_eq!(after[1].panics, before[1].panics + 1);
        assert_eq!(after[2].timeouts, before[2].timeouts + 1);
    }
}

/// Handlers of the one shape the dispatcher calls with no adapter, `fn(&mut T) -> Result<(),
/// HookError>` with no context: a slot of only those runs them straight from its table, and every
/// rule of the other loops holds there too.
mod bare_slot {
    use super::*;

    /// Runs of the handlers after the one that stopped a call, and of its default: there must be
    /// none.
    pub static STOPPED_RUNS: AtomicUsize = AtomicUsize::new(0);
    pub static NOTIFIED_AFTER_A_FAILURE: AtomicUsize = AtomicUsize::new(0);

    #[derive(Debug, Clone, PartialEq, Entity)]
    pub struct Sturdy {
        pub mode: String,
        pub seen: Vec<String>,
    }

    #[before_create("Sturdy")]
    fn vet(s: &mut Sturdy) -> Result<(), HookError> {
        s.seen.push("vet".into());
        match s.mode.as_str() {
            "panic before" => panic!("boom in a bare before handler"),
            "reject" => Err(HookError::rejected("not this one")),
            _ => Ok(()),
        }
    }

    #[before_create("Sturdy", priority = 1)]
    fn stamp(s: &mut Sturdy) -> Result<(), HookError> {
        if s.mode == "reject" || s.mode == "panic before" {
            STOPPED_RUNS.fetch_add(1, Ordering::SeqCst);
        }
        s.seen.push("stamp".into());
        Ok(())
    }

    #[before_create("Sturdy", priority = 2, client_only)]
    fn clients_only(s: &mut Sturdy) -> Result<(), HookError> {
        s.seen.push("clients_only".into());
        Ok(())
    }

    /// Reads only: a `&T` handler is called as itself too.
    #[before_create("Sturdy", priority = 3)]
    fn looks(s: &Sturdy) -> Result<(), HookError> {
        match s.mode.as_str() {
            "refuse" => Err(HookError::rejected("seen and refused")),
            _ => Ok(()),
        }
    }

    #[after_create("Sturdy")]
    fn audit(s: &mut Sturdy) -> Result<(), HookError> {
        match s.mode.as_str() {
            "panic after" => panic!("boom in a bare after handler"),
            "fail after" => Err(HookError::internal("the audit failed")),
            _ => {
                s.seen.push("audit".into());
                Ok(())
            }
        }
    }

    #[after_create("Sturdy", priority = 1)]
    fn notify(s: &mut Sturdy) -> Result<(), HookError> {
        if s.mode == "fail after" {
            // Unreachable: the failed audit replaced the result, which this handler skips.
            NOTIFIED_AFTER_A_FAILURE.fetch_add(1, Ordering::SeqCst);
        }
        s.seen.push("notify".into());
        Ok(())
    }

    fn store(s: Sturdy) -> Result<Sturdy, HookError> {
        if s.mode == "reject" || s.mode == "panic before" {
            STOPPED_RUNS.fetch_add(1, Ordering::SeqCst);
        }
        Ok(s)
    }

    fn sturdy(mode: &str) -> Sturdy {
        Sturdy {
            mode: mode.into(),
            seen: Vec::new(),
        }
    }

    fn create(hooks: &Hooks, ctx: &mut Context, mode: &str) -> Result<Sturdy, HookError> {
        hooks.run_sync::<hooks::ops::data::Create<Sturdy>, _>(ctx, sturdy(mode), store)
    }

    #[test]
    fn the_attribute_hands_the_dispatcher_a_bare_handler_as_itself() {
        let hooks = hooks();
        let regs = hooks.table().handlers("data.create", "Sturdy");
        assert_eq!(regs.len(), 6);
        assert!(regs.iter().all(|r| r.direct().is_some()), "{regs:?}");
    }

    #[test]
    fn bare_handlers_run_in_order_before_and_after_and_client_only_ones_skip_server_calls() {
        let hooks = hooks();
        let out = create(&hooks, &mut Context::client(), "calm").unwrap();
        assert_eq!(
            out.seen,
            ["vet", "stamp", "clients_only", "audit", "notify"]
        );
        let out = create(&hooks, &mut Context::server(), "calm").unwrap();
        assert_eq!(out.seen, ["vet", "stamp", "audit", "notify"]);
    }

    #[test]
    fn a_bare_before_handler_that_rejects_stops_the_loop_and_the_default_and_is_counted() {
        let hooks = hooks();
        let rejections = stats(&hooks, "policies::bare_slot::vet").rejections;
        let err = create(&hooks, &mut Context::client(), "reject").unwrap_err();
        assert_eq!((err.code(), err.message()), ("rejected", "not this one"));
        assert_eq!(
            stats(&hooks, "policies::bare_slot::vet").rejections,
            rejections + 1
        );
        assert_eq!(STOPPED_RUNS.load(Ordering::SeqCst), 0, "fail closed");
    }

    #[test]
    fn a_bare_handler_that_only_reads_its_payload_can_reject_the_call() {
        let err = create(&hooks(), &mut Context::client(), "refuse").unwrap_err();
        assert_eq!(
            (err.code(), err.message()),
            ("rejected", "seen and refused")
        );
    }

    #[test]
    fn a_panicking_bare_before_handler_is_named_in_the_error_and_counted_and_the_call_fails_closed()
    {
        let hooks = hooks();
        let panics = stats(&hooks, "policies::bare_slot::vet").panics;
        let err = create(&hooks, &mut Context::client(), "panic before").unwrap_err();
        assert_eq!((err.status(), err.code()), (500, "handler_panicked"));
        assert!(err.message().contains("policies::bare_slot::vet"), "{err}");
        assert_eq!(stats(&hooks, "policies::bare_slot::vet").panics, panics + 1);
        assert_eq!(STOPPED_RUNS.load(Ordering::SeqCst), 0, "fail closed");
        // The service lives on.
        let out = create(&hooks, &mut Context::client(), "calm").unwrap();
        assert_eq!(out.seen.len(), 5);
    }

    #[tokio::test]
    async fn a_bare_after_handler_error_replaces_the_result_and_success_only_handlers_skip_it() {
        let hooks = hooks();
        let err = hooks
            .create(&mut Context::client(), sturdy("fail after"), |s| async {
                store(s)
            })
            .await
            .unwrap_err();
        assert_eq!(err.message(), "the audit failed");
        assert_eq!(NOTIFIED_AFTER_A_FAILURE.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn after_a_bare_after_handler_panics_the_next_one_runs_and_the_policy_decides_the_result() {
        let hooks = hooks();
        let panics = stats(&hooks, "policies::bare_slot::audit").panics;
        let kept = create(&hooks, &mut Context::client(), "panic after").unwrap();
        assert_eq!(kept.seen, ["vet", "stamp", "clients_only", "notify"]);
        assert_eq!(
            stats(&hooks, "policies::bare_slot::audit").panics,
            panics + 1
        );

        let strict = Hooks::builder()
            .after_failure(AfterFailure::Fail)
            .build()
            .unwrap();
        let err = create(&strict, &mut Context::client(), "panic after").unwrap_err();
        assert_eq!(err.code(), "handler_panicked");
        assert!(
            err.message().contains("policies::bare_slot::audit"),
            "{err}"
        );
    }
}

/// Handlers with a result of their own: here `Result<Flow<Voucher>, Refusal>` before and
/// `Result<(), Refusal>` after, a service's own error type. A slot whose handlers of a phase all
/// return the same such type runs them straight from its table, in the loop their attribute
/// brought for that result, and every rule of the other loops holds there too.
mod own_slot {
    use super::*;

    /// Runs of the handlers after the one that stopped a call, and of its default: there must be
    /// none.
    pub static STOPPED_RUNS: AtomicUsize = AtomicUsize::new(0);

    /// A service's own error type.
    #[derive(Debug)]
    pub enum Refusal {
        Closed,
        Broken(&'static str),
    }

    impl From<Refusal> for HookError {
        fn from(r: Refusal) -> HookError {
            match r {
                Refusal::Closed => HookError::new(503, "closed", "the desk is closed"),
                Refusal::Broken(what) => HookError::new(422, "broken", format!("{what} is broken")),
            }
        }
    }

    #[derive(Debug, Clone, PartialEq, Entity)]
    pub struct Voucher {
        pub mode: String,
        pub seen: Vec<String>,
    }

    type Verdict = Result<Flow<Voucher>, Refusal>;

    fn stopped(t: &Voucher) -> bool {
        matches!(t.mode.as_str(), "closed" | "cached" | "panic")
    }

    #[before_create("Voucher")]
    fn gate(t: &mut Voucher) -> Result<Flow<Voucher>, Refusal> {
        t.seen.push("gate".into());
        match t.mode.as_str() {
            "panic" => panic!("boom in a handler with its own error type"),
            "closed" => Err(Refusal::Closed),
            "cached" => Ok(Flow::Return(Voucher {
                mode: "from the cache".into(),
                seen: Vec::new(),
            })),
            _ => Ok(Flow::Continue),
        }
    }

    #[before_create("Voucher", priority = 1)]
    fn stamp(t: &mut Voucher) -> Result<Flow<Voucher>, Refusal> {
        if stopped(t) {
            STOPPED_RUNS.fetch_add(1, Ordering::SeqCst);
        }
        t.seen.push("stamp".into());
        Ok(Flow::Continue)
    }

    #[before_create("Voucher", priority = 2, client_only)]
    fn clients_only(t: &mut Voucher) -> Result<Flow<Voucher>, Refusal> {
        t.seen.push("clients_only".into());
        Ok(Flow::Continue)
    }

    /// Reads only: a `&T` handler shares the loop.
    #[before_create("Voucher", priority = 3)]
    fn looks(t: &Voucher) -> Result<Flow<Voucher>, Refusal> {
        match t.mode.as_str() {
            "broken" => Err(Refusal::Broken("the printer")),
            _ => Ok(Flow::Continue),
        }
    }

    /// Runs of `mail` on a result that `file` replaced with its error: there must be none.
    pub static MAILED_AFTER_A_FAILURE: AtomicUsize = AtomicUsize::new(0);

    #[after_create("Voucher")]
    fn file(t: &mut Voucher) -> Result<(), Refusal> {
        match t.mode.as_str() {
            "panic after" => panic!("boom in an after handler with its own error type"),
            "fail after" => Err(Refusal::Broken("the ledger")),
            _ => {
                t.seen.push("file".into());
                Ok(())
            }
        }
    }

    /// Reads only, as `looks`.
    #[after_create("Voucher", priority = 1)]
    fn mail(t: &Voucher) -> Result<(), Refusal> {
        if t.mode == "fail after" {
            MAILED_AFTER_A_FAILURE.fetch_add(1, Ordering::SeqCst);
        }
        MAILED.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    /// Runs of `mail`.
    pub static MAILED: AtomicUsize = AtomicUsize::new(0);

    fn store(mut t: Voucher) -> Result<Voucher, HookError> {
        if stopped(&t) {
            STOPPED_RUNS.fetch_add(1, Ordering::SeqCst);
        }
        t.seen.push("stored".into());
        Ok(t)
    }

    fn voucher(mode: &str) -> Voucher {
        Voucher {
            mode: mode.into(),
            seen: Vec::new(),
        }
    }

    fn create(hooks: &Hooks, ctx: &mut Context, mode: &str) -> Result<Voucher, HookError> {
        hooks.run_sync::<hooks::ops::data::Create<Voucher>, _>(ctx, voucher(mode), store)
    }

    #[test]
    fn the_attribute_hands_over_each_handler_with_the_loop_of_its_result() {
        use hooks::__private::diag::after_create::Own as OwnAfter;
        use hooks::__private::diag::before_create::Own;
        use hooks::registration::Owns;
        let hooks = hooks();
        let regs = hooks.table().handlers("data.create", "Voucher");
        assert_eq!(regs.len(), 6);
        let (before, after): (Vec<&&hooks::Registration>, Vec<_>) =
            regs.iter().partition(|r| r.phase() == hooks::Phase::Before);
        assert!(
            before.iter().all(|r| r
                .direct()
                .is_some_and(|d| d.is::<Owns<fn(*mut ()) -> Own<Verdict>, Voucher>>())),
            "{regs:?}"
        );
        type AfterVerdict = OwnAfter<Result<(), Refusal>>;
        assert!(
            after.iter().all(|r| r
                .direct()
                .is_some_and(|d| d.is::<Owns<fn(*mut ()) -> AfterVerdict, ()>>())),
            "{regs:?}"
        );
    }

    #[test]
    fn handlers_with_their_own_result_run_in_order_and_client_only_ones_skip_server_calls() {
        let hooks = hooks();
        let mailed = MAILED.load(Ordering::SeqCst);
        let out = create(&hooks, &mut Context::client(), "calm").unwrap();
        assert_eq!(
            out.seen,
            ["gate", "stamp", "clients_only", "stored", "file"]
        );
        let out = create(&hooks, &mut Context::server(), "calm").unwrap();
        assert_eq!(out.seen, ["gate", "stamp", "stored", "file"]);
        assert!(MAILED.load(Ordering::SeqCst) >= mailed + 2);
    }

    #[test]
    fn a_services_own_error_reaches_the_caller_converted_stops_the_call_and_is_counted() {
        let hooks = hooks();
        let rejections = stats(&hooks, "policies::own_slot::gate").rejections;
        let err = create(&hooks, &mut Context::client(), "closed").unwrap_err();
        assert_eq!((err.status(), err.code()), (503, "closed"));
        assert_eq!(
            stats(&hooks, "policies::own_slot::gate").rejections,
            rejections + 1
        );
        // From a handler that only reads its payload, the last of the loop.
        let err = create(&hooks, &mut Context::client(), "broken").unwrap_err();
        assert_eq!(
            (err.status(), err.message()),
            (422, "the printer is broken")
        );
        assert_eq!(STOPPED_RUNS.load(Ordering::SeqCst), 0, "fail closed");
    }

    #[tokio::test]
    async fn an_answer_ends_the_call_without_the_rest_or_the_default_on_sync_and_async_calls() {
        let hooks = hooks();
        let calls = stats(&hooks, "policies::own_slot::gate").calls;
        let out = create(&hooks, &mut Context::client(), "cached").unwrap();
        // No other before handler, no default; the after handlers run on the answer.
        assert_eq!(out.mode, "from the cache");
        assert_eq!(out.seen, ["file"]);
        let out = hooks
            .create(&mut Context::client(), voucher("cached"), |t| async {
                store(t)
            })
            .await
            .unwrap();
        assert_eq!(out.mode, "from the cache");
        assert_eq!(stats(&hooks, "policies::own_slot::gate").calls, calls + 2);
        assert_eq!(STOPPED_RUNS.load(Ordering::SeqCst), 0, "fail closed");
    }

    #[test]
    fn a_panicking_handler_with_its_own_error_type_is_named_counted_and_the_call_fails_closed() {
        let hooks = hooks();
        let panics = stats(&hooks, "policies::own_slot::gate").panics;
        let err = create(&hooks, &mut Context::client(), "panic").unwrap_err();
        assert_eq!((err.status(), err.code()), (500, "handler_panicked"));
        assert!(err.message().contains("policies::own_slot::gate"), "{err}");
        assert_eq!(stats(&hooks, "policies::own_slot::gate").panics, panics + 1);
        assert_eq!(STOPPED_RUNS.load(Ordering::SeqCst), 0, "fail closed");
        // The service lives on.
        let out = create(&hooks, &mut Context::client(), "calm").unwrap();
        assert_eq!(out.seen.len(), 5);
    }

    #[test]
    fn an_after_handlers_own_error_replaces_the_result_converted_and_success_only_ones_skip_it() {
        let hooks = hooks();
        let errors = stats(&hooks, "policies::own_slot::file").errors;
        let err = create(&hooks, &mut Context::client(), "fail after").unwrap_err();
        assert_eq!((err.status(), err.message()), (422, "the ledger is broken"));
        assert_eq!(stats(&hooks, "policies::own_slot::file").errors, errors + 1);
        assert_eq!(MAILED_AFTER_A_FAILURE.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn after_an_after_handler_with_its_own_error_type_panics_the_next_runs_and_the_policy_decides()
    {
        let hooks = hooks();
        let panics = stats(&hooks, "policies::own_slot::file").panics;
        let mailed = MAILED.load(Ordering::SeqCst);
        let kept = create(&hooks, &mut Context::client(), "panic after").unwrap();
        assert_eq!(kept.seen, ["gate", "stamp", "clients_only", "stored"]);
        assert!(MAILED.load(Ordering::SeqCst) > mailed, "the next one ran");
        assert_eq!(stats(&hooks, "policies::own_slot::file").panics, panics + 1);

        let strict = Hooks::builder()
            .after_failure(AfterFailure::Fail)
            .build()
            .unwrap();
        let err = create(&strict, &mut Context::client(), "panic after").unwrap_err();
        assert_eq!(err.code(), "handler_panicked");
        assert!(err.message().contains("policies::own_slot::file"), "{err}");
    }

    #[derive(Debug, Clone, PartialEq, Entity)]
    pub struct Guest {
        pub seen: Vec<String>,
    }

    /// Handlers that take the context have a loop of their own, which tells the context which
    /// handler runs.
    #[before_create("Guest", params(desk = "front"))]
    fn greet(v: &mut Guest, ctx: &Context) -> Result<(), Refusal> {
        v.seen.push(format!(
            "{} at {}",
            ctx.handler_id().unwrap_or("?"),
            ctx.param("desk").unwrap_or("?")
        ));
        Ok(())
    }

    #[before_create("Guest", priority = 1)]
    fn check_in(v: &Guest, ctx: &Context) -> Result<(), Refusal> {
        // The call is refused either way: its error tells what this handler saw.
        match (ctx.handler_id(), v.seen.as_slice()) {
            (Some("policies::own_slot::check_in"), [greeted])
                if greeted == "policies::own_slot::greet at front" =>
            {
                Err(Refusal::Closed)
            }
            _ => Err(Refusal::Broken("the context")),
        }
    }

    #[test]
    fn a_handler_with_its_own_error_type_that_takes_the_context_sees_its_own_id_and_params() {
        use hooks::__private::diag::before_create::Own;
        use hooks::registration::Owns;
        let hooks = hooks();
        let regs = hooks.table().handlers("data.create", "Guest");
        assert!(
            regs.iter().all(|r| r.direct().is_some_and(
                |d| d.is::<Owns<fn(*mut (), &Context) -> Own<Result<(), Refusal>>, Guest>>()
            )),
            "{regs:?}"
        );
        let seen = std::sync::Mutex::new(Vec::new());
        let err = hooks
            .run_sync::<hooks::ops::data::Create<Guest>, _>(
                &mut Context::client(),
                Guest { seen: Vec::new() },
                |v| {
                    seen.lock().unwrap().push(v);
                    Err(HookError::internal("the default ran"))
                },
            )
            .unwrap_err();
        assert_eq!(err.code(), "closed", "{err}");
        assert!(seen.lock().unwrap().is_empty());
    }
}

/// Handlers whose result is named through an alias (`-> Outcome<()>`, `-> app::Result<()>`),
/// which the attribute cannot read: each comes with the loop of the result type the alias names,
/// and the table, which sees that type, runs the slot in it, or in the bare loop when the alias
/// names `Result<(), HookError>`, as it would the same handlers with their result written out.
mod alias_slot {
    use super::own_slot::Refusal;
    use super::*;
    use hooks::ops::data::Create;

    /// A service's result type, named as services often name theirs.
    type Outcome<T> = Result<T, Refusal>;

    /// The same, as a crate's own `Result<T>` (one parameter, the error the alias's).
    mod app {
        pub type Result<T> = std::result::Result<T, super::Refusal>;
    }

    /// An alias of the bare shape's result.
    type Checked = Result<(), HookError>;

    #[derive(Debug, Clone, PartialEq, Entity)]
    pub struct Slip {
        pub mode: String,
        pub seen: Vec<String>,
    }

    #[before_create("Slip")]
    fn admit(s: &mut Slip) -> Outcome<Flow<Slip>> {
        s.seen.push("admit".into());
        match s.mode.as_str() {
            "closed" => Err(Refusal::Closed),
            "cached" => Ok(Flow::Return(Slip {
                mode: "from the cache".into(),
                seen: Vec::new(),
            })),
            _ => Ok(Flow::Continue),
        }
    }

    /// Reads only; its result written out, the same type as `admit`'s alias names.
    #[before_create("Slip", priority = 1)]
    fn inspect(s: &Slip) -> Result<Flow<Slip>, Refusal> {
        match s.mode.as_str() {
            "broken" => Err(Refusal::Broken("the stamp")),
            _ => Ok(Flow::Continue),
        }
    }

    #[after_create("Slip")]
    fn archive(s: &mut Slip) -> app::Result<()> {
        if s.mode == "fail after" {
            return Err(Refusal::Broken("the archive"));
        }
        s.seen.push("archive".into());
        Ok(())
    }

    #[after_create("Slip", priority = 1)]
    fn notify(s: &mut Slip) -> Outcome<()> {
        s.seen.push("notify".into());
        Ok(())
    }

    #[derive(Debug, Clone, PartialEq, Entity)]
    pub struct Stub {
        pub seen: Vec<String>,
    }

    #[before_create("Stub")]
    fn tear(s: &mut Stub) -> Checked {
        s.seen.push("tear".into());
        if s.seen.len() > 3 {
            return Err(HookError::rejected("torn too often"));
        }
        Ok(())
    }

    /// Its result written out: the bare loop takes both.
    #[before_create("Stub", priority = 1)]
    fn punch(s: &mut Stub) -> Result<(), HookError> {
        s.seen.push("punch".into());
        Ok(())
    }

    #[after_create("Stub")]
    fn file(s: &Stub) -> Checked {
        match s.seen.as_slice() {
            [.., last] if last == "stored" => Ok(()),
            _ => Err(HookError::internal("filed before it was stored")),
        }
    }

    fn slip(mode: &str) -> Slip {
        Slip {
            mode: mode.into(),
            seen: Vec::new(),
        }
    }

    fn create(hooks: &Hooks, mode: &str) -> Result<Slip, HookError> {
        hooks.run_sync::<Create<Slip>, _>(&mut Context::client(), slip(mode), |mut s| {
            s.seen.push("stored".into());
            Ok(s)
        })
    }

    #[test]
    fn a_handler_whose_result_is_an_alias_comes_with_the_loop_of_the_type_it_names() {
        let hooks = hooks();
        let direct = |id: &str| {
            let reg = hooks.table().registrations().iter().find(|r| r.id() == id);
            reg.and_then(|r| r.direct()).expect("a plain sync handler")
        };
        // Named by its own type, so that the table can tell what the alias names, and with the
        // loop of its result.
        let admit = direct("policies::alias_slot::admit");
        assert!(
            admit.is::<fn(&mut Slip) -> Outcome<Flow<Slip>>>(),
            "{admit:?}"
        );
        assert!(format!("{admit:?}").contains("own: true"), "{admit:?}");
        let archive = direct("policies::alias_slot::archive");
        assert!(archive.is::<fn(&mut Slip) -> Result<(), Refusal>>());
        assert!(format!("{archive:?}").contains("own: true"), "{archive:?}");
        // An alias of the bare result is a bare handler by its type.
        let tear = direct("policies::alias_slot::tear");
        assert!(tear.is::<hooks::registration::Bare<Stub>>(), "{tear:?}");
    }

    #[test]
    fn handlers_whose_result_is_an_alias_run_in_order_and_answer_reject_and_fail_as_written() {
        let hooks = hooks();
        let out = create(&hooks, "calm").unwrap();
        assert_eq!(out.seen, ["admit", "stored", "archive", "notify"]);
        // An answer: no default, the after handlers run on it.
        let out = create(&hooks, "cached").unwrap();
        assert_eq!(out.mode, "from the cache");
        assert_eq!(out.seen, ["archive", "notify"]);
        // The service's own errors, converted; the call stops at the first.
        let rejections = stats(&hooks, "policies::alias_slot::admit").rejections;
        let err = create(&hooks, "closed").unwrap_err();
        assert_eq!((err.status(), err.code()), (503, "closed"));
        assert_eq!(
            stats(&hooks, "policies::alias_slot::admit").rejections,
            rejections + 1
        );
        let err = create(&hooks, "broken").unwrap_err();
        assert_eq!((err.status(), err.message()), (422, "the stamp is broken"));
        // After: the error replaces the result, and the next handler, which takes the output,
        // does not run on it.
        let err = create(&hooks, "fail after").unwrap_err();
        assert_eq!(
            (err.status(), err.message()),
            (422, "the archive is broken")
        );
    }

    #[test]
    fn handlers_whose_result_aliases_the_bare_one_run_beside_bare_ones() {
        let hooks = hooks();
        let run = |seen: Vec<String>| {
            hooks.run_sync::<Create<Stub>, _>(&mut Context::client(), Stub { seen }, |mut s| {
                s.seen.push("stored".into());
                Ok(s)
            })
        };
        let out = run(Vec::new()).unwrap();
        assert_eq!(out.seen, ["tear", "punch", "stored"]);
        let err = run(vec!["a".into(), "b".into(), "c".into()]).unwrap_err();
        assert_eq!(err.message(), "torn too often");
    }
}

/// A slot that mixes the handler shapes: each run of one shape is called as itself, in the
/// slot's order, the runs of the bare shapes in one loop; a run of one handler that may answer,
/// or of one with its own error type, is too short to call its loop, and goes through its
/// adapter in the same loop (`mixed_loops` has runs long enough for theirs).
mod mixed_runs {
    use super::own_slot::Refusal;
    use super::*;
    use hooks::ops::data::Create;

    /// Calls that reached the default though a handler should have stopped them.
    pub static STORED_AFTER_A_STOP: AtomicUsize = AtomicUsize::new(0);
    /// Runs of `mark` on a result that an earlier after handler made an error.
    pub static MARKED_ON_AN_ERROR: AtomicUsize = AtomicUsize::new(0);

    #[derive(Debug, Clone, PartialEq, Entity)]
    pub struct Pass {
        pub mode: String,
        pub seen: Vec<String>,
    }

    /// The running handler's name and `tag` param, as the context gives them.
    fn named(ctx: &Context) -> String {
        let id = ctx.handler_id().unwrap_or("?");
        let name = id.rsplit("::").next().unwrap_or(id);
        format!("{name}:{}", ctx.param("tag").unwrap_or("-"))
    }

    #[before_create("Pass")]
    fn screen(t: &mut Pass) -> Result<(), HookError> {
        t.seen.push("screen".into());
        match t.mode.as_str() {
            "reject first" => Err(HookError::rejected("screened out")),
            _ => Ok(()),
        }
    }

    #[before_create("Pass", priority = 1, params(tag = "stamp"))]
    fn stamp(t: &mut Pass, ctx: &Context) -> Result<(), HookError> {
        if t.mode == "panic" {
            panic!("boom in the second run");
        }
        t.seen.push(named(ctx));
        Ok(())
    }

    /// May answer: a run with the loop of its own, between two runs of the bare shapes.
    #[before_create("Pass", priority = 2)]
    fn lookup(t: &mut Pass) -> Result<Flow<Pass>, HookError> {
        t.seen.push("lookup".into());
        match t.mode.as_str() {
            "cached" => Ok(Flow::Return(Pass {
                mode: "from the cache".into(),
                seen: Vec::new(),
            })),
            "refused" => Err(HookError::new(409, "refused", "the lookup refused it")),
            _ => Ok(Flow::Continue),
        }
    }

    #[before_create("Pass", priority = 3)]
    fn tidy(t: &mut Pass) {
        t.seen.push("tidy".into());
    }

    #[before_create("Pass", priority = 4, params(tag = "note"))]
    fn note(t: &mut Pass, ctx: &Context) {
        t.seen.push(named(ctx));
    }

    /// Reads only; the last run.
    #[before_create("Pass", priority = 5)]
    fn last_check(t: &Pass) -> Result<(), HookError> {
        match t.mode.as_str() {
            "reject late" => Err(HookError::forbidden("checked out late")),
            _ => Ok(()),
        }
    }

    /// Its own error type: a run with its loop, before three runs of the bare shapes.
    #[after_create("Pass")]
    fn audit(t: &mut Pass) -> Result<(), Refusal> {
        if t.mode == "fail audit" {
            return Err(Refusal::Broken("the audit"));
        }
        t.seen.push("audit".into());
        Ok(())
    }

    #[after_create("Pass", priority = 1)]
    fn mark(t: &mut Pass) -> Result<(), HookError> {
        if t.mode == "fail audit" {
            MARKED_ON_AN_ERROR.fetch_add(1, Ordering::SeqCst);
        }
        t.seen.push("mark".into());
        if t.mode == "panic after" {
            panic!("boom after, in the second run");
        }
        Ok(())
    }

    #[after_create("Pass", priority = 2, params(tag = "ping"))]
    fn ping(t: &mut Pass, ctx: &Context) -> Result<(), HookError> {
        t.seen.push(named(ctx));
        Ok(())
    }

    #[after_create("Pass", priority = 3)]
    fn seal(t: &mut Pass) {
        t.seen.push("seal".into());
    }

    fn create(hooks: &Hooks, mode: &str) -> Result<Pass, HookError> {
        let t = Pass {
            mode: mode.into(),
            seen: Vec::new(),
        };
        hooks.run_sync::<Create<Pass>, _>(&mut Context::client(), t, |mut t| {
            if matches!(
                t.mode.as_str(),
                "cached" | "reject first" | "reject late" | "panic" | "refused"
            ) {
                STORED_AFTER_A_STOP.fetch_add(1, Ordering::SeqCst);
            }
            t.seen.push("stored".into());
            Ok(t)
        })
    }

    fn id(name: &str) -> String {
        format!("policies::mixed_runs::{name}")
    }

    #[test]
    fn every_run_of_a_mixed_slot_runs_in_order_and_each_handler_sees_its_own_id() {
        let out = create(&hooks(), "calm").unwrap();
        assert_eq!(
            out.seen,
            [
                "screen",
                "stamp:stamp",
                "lookup",
                "tidy",
                "note:note",
                "stored",
                "audit",
                "mark",
                "ping:ping",
                "seal",
            ]
        );
    }

    #[tokio::test]
    async fn an_async_call_runs_the_same_runs_in_the_same_order() {
        let hooks = hooks();
        let t = Pass {
            mode: "calm".into(),
            seen: Vec::new(),
        };
        let out = hooks
            .create(&mut Context::client(), t, |mut t| async move {
                t.seen.push("stored".into());
                Ok(t)
            })
            .await
            .unwrap();
        assert_eq!(
            out.seen,
            [
                "screen",
                "stamp:stamp",
                "lookup",
                "tidy",
                "note:note",
                "stored",
                "audit",
                "mark",
                "ping:ping",
                "seal",
            ]
        );
        let late = Pass {
            mode: "reject late".into(),
            seen: Vec::new(),
        };
        let err = hooks
            .create(&mut Context::client(), late, |t| async move { Ok(t) })
            .await
            .unwrap_err();
        assert_eq!(err.status(), 403, "{err}");
    }

    #[test]
    fn a_run_that_answers_between_two_others_skips_the_rest_and_the_default() {
        let hooks = hooks();
        let out = create(&hooks, "cached").unwrap();
        assert_eq!(out.mode, "from the cache");
        // The after runs run on the answer.
        assert_eq!(out.seen, ["audit", "mark", "ping:ping", "seal"]);
        assert_eq!(STORED_AFTER_A_STOP.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn a_rejection_in_any_run_stops_the_call_and_is_counted_on_its_handler() {
        let hooks = hooks();
        for (mode, handler, status) in [
            ("reject first", "screen", 400),
            ("refused", "lookup", 409),
            ("reject late", "last_check", 403),
        ] {
            let before = stats(&hooks, &id(handler)).rejections;
            let err = create(&hooks, mode).unwrap_err();
            assert_eq!(err.status(), status, "{mode}: {err}");
            assert_eq!(stats(&hooks, &id(handler)).rejections, before + 1, "{mode}");
        }
        assert_eq!(STORED_AFTER_A_STOP.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn a_panic_in_a_later_run_is_blamed_on_its_handler_and_fails_closed() {
        let hooks = hooks();
        let err = create(&hooks, "panic").unwrap_err();
        assert_eq!(err.status(), 500, "{err}");
        assert!(err.to_string().contains("stamp"), "{err}");
        assert!(stats(&hooks, &id("stamp")).panics >= 1);
        assert_eq!(STORED_AFTER_A_STOP.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn an_after_error_in_the_first_run_replaces_the_result_and_stops_the_runs_after_it() {
        let hooks = hooks();
        let err = create(&hooks, "fail audit").unwrap_err();
        assert_eq!((err.status(), err.code()), (422, "broken"));
        // `mark`, `ping` and `seal` take the output, which is now an error.
        assert_eq!(MARKED_ON_AN_ERROR.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn a_kept_panic_after_resumes_the_runs_at_the_next_handler() {
        let hooks = hooks();
        let panics = stats(&hooks, &id("mark")).panics;
        let out = create(&hooks, "panic after").unwrap();
        assert_eq!(
            out.seen,
            [
                "screen",
                "stamp:stamp",
                "lookup",
                "tidy",
                "note:note",
                "stored",
                "audit",
                "mark",
                "ping:ping",
                "seal"
            ]
        );
        assert_eq!(stats(&hooks, &id("mark")).panics, panics + 1);
        // Under `AfterFailure::Fail`, the panic fails the call.
        let strict = Hooks::builder()
            .after_failure(AfterFailure::Fail)
            .build()
            .unwrap();
        assert!(create(&strict, "panic after").is_err());
    }
}

/// A slot that mixes shapes with runs long enough to call the loops their attribute brought:
/// handlers with the service's own error type (five before, four after) beside bare ones.
mod mixed_loops {
    use super::own_slot::Refusal;
    use super::*;
    use hooks::ops::data::Create;

    #[derive(Debug, Clone, PartialEq, Entity)]
    pub struct Docket {
        pub mode: String,
        pub seen: Vec<String>,
    }

    fn own(d: &mut Docket, name: &str) -> Result<Flow<Docket>, Refusal> {
        d.seen.push(name.into());
        match (d.mode.as_str(), name) {
            ("closed", "o3") => Err(Refusal::Closed),
            ("cached", "o2") => Ok(Flow::Return(Docket {
                mode: "from the cache".into(),
                seen: Vec::new(),
            })),
            _ => Ok(Flow::Continue),
        }
    }

    #[before_create("Docket")]
    fn first(d: &mut Docket) -> Result<(), HookError> {
        d.seen.push("first".into());
        Ok(())
    }

    #[before_create("Docket", priority = 1)]
    fn o1(d: &mut Docket) -> Result<Flow<Docket>, Refusal> {
        own(d, "o1")
    }

    #[before_create("Docket", priority = 2)]
    fn o2(d: &mut Docket) -> Result<Flow<Docket>, Refusal> {
        own(d, "o2")
    }

    #[before_create("Docket", priority = 3)]
    fn o3(d: &mut Docket) -> Result<Flow<Docket>, Refusal> {
        own(d, "o3")
    }

    #[before_create("Docket", priority = 4)]
    fn o4(d: &mut Docket) -> Result<Flow<Docket>, Refusal> {
        own(d, "o4")
    }

    #[before_create("Docket", priority = 5)]
    fn o5(d: &mut Docket) -> Result<Flow<Docket>, Refusal> {
        own(d, "o5")
    }

    #[before_create("Docket", priority = 6, params(tag = "last"))]
    fn last(d: &mut Docket, ctx: &Context) {
        d.seen
            .push(format!("last:{}", ctx.param("tag").unwrap_or("-")));
    }

    fn after_own(d: &mut Docket, name: &str) -> Result<(), Refusal> {
        if d.mode == "fail after" && name == "a2" {
            return Err(Refusal::Broken("the second filing"));
        }
        d.seen.push(name.into());
        Ok(())
    }

    #[after_create("Docket")]
    fn a1(d: &mut Docket) -> Result<(), Refusal> {
        after_own(d, "a1")
    }

    #[after_create("Docket", priority = 1)]
    fn a2(d: &mut Docket) -> Result<(), Refusal> {
        after_own(d, "a2")
    }

    #[after_create("Docket", priority = 2)]
    fn a3(d: &mut Docket) -> Result<(), Refusal> {
        after_own(d, "a3")
    }

    #[after_create("Docket", priority = 3)]
    fn a4(d: &mut Docket) -> Result<(), Refusal> {
        after_own(d, "a4")
    }

    #[after_create("Docket", priority = 4)]
    fn close(d: &mut Docket) {
        d.seen.push("close".into());
    }

    fn create(hooks: &Hooks, mode: &str) -> Result<Docket, HookError> {
        let d = Docket {
            mode: mode.into(),
            seen: Vec::new(),
        };
        hooks.run_sync::<Create<Docket>, _>(&mut Context::client(), d, |mut d| {
            d.seen.push("stored".into());
            Ok(d)
        })
    }

    #[test]
    fn runs_that_call_their_loops_run_in_order_answer_reject_and_fail_as_written() {
        let hooks = hooks();
        let out = create(&hooks, "calm").unwrap();
        assert_eq!(
            out.seen,
            [
                "first",
                "o1",
                "o2",
                "o3",
                "o4",
                "o5",
                "last:last",
                "stored",
                "a1",
                "a2",
                "a3",
                "a4",
                "close",
            ]
        );
        // An answer from the loop of the second run: the rest and the default skipped, the
        // after runs on the answer.
        let out = create(&hooks, "cached").unwrap();
        assert_eq!(out.mode, "from the cache");
        assert_eq!(out.seen, ["a1", "a2", "a3", "a4", "close"]);
        // The service's error, converted and counted on its handler.
        let id = "policies::mixed_loops::o3";
        let before = stats(&hooks, id).rejections;
        let err = create(&hooks, "closed").unwrap_err();
        assert_eq!((err.status(), err.code()), (503, "closed"));
        assert_eq!(stats(&hooks, id).rejections, before + 1);
        // An after error in the loop's run replaces the result.
        let err = create(&hooks, "fail after").unwrap_err();
        assert_eq!((err.status(), err.code()), (422, "broken"));
    }
}

/// Handlers that take the context are called as themselves too, from their own loop, when every
/// sync handler of the phase takes it: the rules of the bare loop hold there, and each handler
/// still sees itself (its id, params and phase) through the context.
mod bare_ctx_slot {
    use super::*;
    use hooks::registration::BareCtx;

    pub static STOPPED_RUNS: AtomicUsize = AtomicUsize::new(0);

    #[derive(Debug, Clone, PartialEq, Entity)]
    pub struct Guarded {
        pub mode: String,
        pub seen: Vec<String>,
    }

    /// Records what the context says about the running handler.
    fn seen(g: &mut Guarded, ctx: &Context) {
        let id = ctx.handler_id().unwrap_or("?");
        let name = id.rsplit("::").next().unwrap_or(id);
        let tag = ctx.param("tag").unwrap_or("-");
        g.seen
            .push(format!("{name}:{tag}:{}", ctx.phase().as_str()));
    }

    #[before_create("Guarded", params(tag = "first"))]
    fn gate(g: &mut Guarded, ctx: &Context) -> Result<(), HookError> {
        seen(g, ctx);
        match g.mode.as_str() {
            "panic before" => panic!("boom in a bare handler that takes the context"),
            "anonymous" => ctx.require_user().map(|_| ()),
            _ => Ok(()),
        }
    }

    #[before_create("Guarded", priority = 1, params(tag = "second"))]
    fn tag(g: &mut Guarded, ctx: &Context) -> Result<(), HookError> {
        if g.mode == "anonymous" || g.mode == "panic before" {
            STOPPED_RUNS.fetch_add(1, Ordering::SeqCst);
        }
        seen(g, ctx);
        Ok(())
    }

    #[before_create("Guarded", priority = 2, client_only)]
    fn for_clients(g: &mut Guarded, ctx: &Context) -> Result<(), HookError> {
        seen(g, ctx);
        Ok(())
    }

    #[after_create("Guarded", params(tag = "after"))]
    fn record(g: &mut Guarded, ctx: &Context) -> Result<(), HookError> {
        match g.mode.as_str() {
            "panic after" => panic!("boom after, with the context"),
            "fail after" => Err(HookError::internal("the record failed")),
            _ => {
                seen(g, ctx);
                Ok(())
            }
        }
    }

    /// Reads only, and takes the context: called as itself.
    #[after_create("Guarded", priority = 1)]
    fn echo(g: &Guarded, ctx: &Context) -> Result<(), HookError> {
        if g.mode == "fail after" {
            STOPPED_RUNS.fetch_add(1, Ordering::SeqCst);
        }
        match ctx.user() {
            Some(u) if u.id == "mallory" => Err(HookError::forbidden("not for mallory")),
            _ => Ok(()),
        }
    }

    fn store(g: Guarded) -> Result<Guarded, HookError> {
        if g.mode == "anonymous" || g.mode == "panic before" {
            STOPPED_RUNS.fetch_add(1, Ordering::SeqCst);
        }
        Ok(g)
    }

    fn create(hooks: &Hooks, ctx: &mut Context, mode: &str) -> Result<Guarded, HookError> {
        let g = Guarded {
            mode: mode.into(),
            seen: Vec::new(),
        };
        hooks.run_sync::<hooks::ops::data::Create<Guarded>, _>(ctx, g, store)
    }

    fn signed_in(id: &str) -> Context {
        Context::client().with_user(User::new(id))
    }

    #[test]
    fn the_attribute_hands_the_dispatcher_a_handler_that_takes_the_context_as_itself() {
        let hooks = hooks();
        let regs = hooks.table().handlers("data.create", "Guarded");
        assert_eq!(regs.len(), 5);
        let (reads, changes): (Vec<&&hooks::Registration>, Vec<_>) =
            regs.iter().partition(|r| r.id().ends_with("echo"));
        assert!(
            changes
                .iter()
                .all(|r| r.direct().is_some_and(|d| d.is::<BareCtx<Guarded>>())),
            "{changes:?}"
        );
        type ReadsWithContext = fn(&Guarded, &Context) -> Result<(), HookError>;
        assert!(
            reads
                .iter()
                .all(|r| r.direct().is_some_and(|d| d.is::<ReadsWithContext>())),
            "{reads:?}"
        );
    }

    #[test]
    fn each_handler_called_as_itself_sees_its_own_id_params_and_phase_through_the_context() {
        let hooks = hooks();
        let out = create(&hooks, &mut signed_in("ada"), "calm").unwrap();
        assert_eq!(
            out.seen,
            [
                "gate:first:before",
                "tag:second:before",
                "for_clients:-:before",
                "record:after:after"
            ]
        );
        let server = &mut Context::server().with_user(User::new("ada"));
        let out = create(&hooks, server, "calm").unwrap();
        assert_eq!(
            out.seen,
            [
                "gate:first:before",
                "tag:second:before",
                "record:after:after"
            ]
        );
    }

    #[test]
    fn a_handler_that_takes_the_context_rejects_from_what_it_reads_there_and_the_call_stops() {
        let hooks = hooks();
        let rejections = stats(&hooks, "policies::bare_ctx_slot::gate").rejections;
        let err = create(&hooks, &mut Context::client(), "anonymous").unwrap_err();
        assert_eq!(err.status(), 401);
        assert_eq!(
            stats(&hooks, "policies::bare_ctx_slot::gate").rejections,
            rejections + 1
        );
        let err = create(&hooks, &mut signed_in("mallory"), "calm").unwrap_err();
        assert_eq!((err.status(), err.message()), (403, "not for mallory"));
        assert_eq!(STOPPED_RUNS.load(Ordering::SeqCst), 0, "fail closed");
    }

    #[test]
    fn a_panicking_handler_that_takes_the_context_is_named_and_counted_and_fails_closed() {
        let hooks = hooks();
        let id = "policies::bare_ctx_slot::gate";
        let panics = stats(&hooks, id).panics;
        let err = create(&hooks, &mut signed_in("ada"), "panic before").unwrap_err();
        assert_eq!((err.status(), err.code()), (500, "handler_panicked"));
        assert!(err.message().contains(id), "{err}");
        assert_eq!(stats(&hooks, id).panics, panics + 1);
        assert_eq!(STOPPED_RUNS.load(Ordering::SeqCst), 0, "fail closed");
        assert!(create(&hooks, &mut signed_in("ada"), "calm").is_ok());
    }

    #[tokio::test]
    async fn after_handlers_that_take_the_context_replace_the_result_and_survive_a_panic() {
        let hooks = hooks();
        let mut ctx = signed_in("ada");
        let err = hooks
            .create(
                &mut ctx,
                Guarded {
                    mode: "fail after".into(),
                    seen: vec![],
                },
                |g| async { store(g) },
            )
            .await
            .unwrap_err();
        assert_eq!(err.message(), "the record failed");
        assert_eq!(
            STOPPED_RUNS.load(Ordering::SeqCst),
            0,
            "success-only handlers skip it"
        );

        let id = "policies::bare_ctx_slot::record";
        let panics = stats(&hooks, id).panics;
        let kept = create(&hooks, &mut signed_in("ada"), "panic after").unwrap();
        assert_eq!(kept.seen.len(), 3, "{:?}", kept.seen);
        assert_eq!(stats(&hooks, id).panics, panics + 1);
        // The next handler ran after the panic: it still rejects mallory's result.
        let err = create(&hooks, &mut signed_in("mallory"), "panic after").unwrap_err();
        assert_eq!(err.status(), 403);
    }
}

/// Handlers that return nothing are called as themselves as well, from a loop of their own when
/// every sync handler of the phase has that shape (with the context, or without it): the rules
/// of the bare loops hold there, though no result is tested.
mod bare_unit_slot {
    use super::*;
    use hooks::registration::{BareUnit, BareUnitCtx};

    /// Runs of the handlers after one that panicked, and of the default: there must be none.
    pub static STOPPED_RUNS: AtomicUsize = AtomicUsize::new(0);

    #[derive(Debug, Clone, PartialEq, Entity)]
    pub struct Quiet {
        pub mode: String,
        pub seen: Vec<String>,
    }

    #[before_create("Quiet")]
    fn trim(q: &mut Quiet) {
        if q.mode == "panic before" {
            panic!("boom in a handler that returns nothing");
        }
        q.seen.push("trim".into());
    }

    #[before_create("Quiet", priority = 1)]
    fn lower(q: &mut Quiet) {
        if q.mode == "panic before" {
            STOPPED_RUNS.fetch_add(1, Ordering::SeqCst);
        }
        q.seen.push("lower".into());
    }

    #[before_create("Quiet", priority = 2, client_only)]
    fn clients_only(q: &mut Quiet) {
        q.seen.push("clients_only".into());
    }

    /// Reads only: a `&T` handler that returns nothing is called as itself too.
    #[before_create("Quiet", priority = 3)]
    fn peek(q: &Quiet) {
        if q.mode == "panic before" {
            STOPPED_RUNS.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[after_create("Quiet")]
    fn audit(q: &mut Quiet) {
        if q.mode == "panic after" {
            panic!("boom in an after handler that returns nothing");
        }
        q.seen.push("audit".into());
    }

    #[after_create("Quiet", priority = 1)]
    fn notify(q: &mut Quiet) {
        q.seen.push("notify".into());
    }

    fn store(q: Quiet) -> Result<Quiet, HookError> {
        if q.mode == "panic before" {
            STOPPED_RUNS.fetch_add(1, Ordering::SeqCst);
        }
        Ok(q)
    }

    fn quiet(mode: &str) -> Quiet {
        Quiet {
            mode: mode.into(),
            seen: Vec::new(),
        }
    }

    fn create(hooks: &Hooks, ctx: &mut Context, mode: &str) -> Result<Quiet, HookError> {
        hooks.run_sync::<hooks::ops::data::Create<Quiet>, _>(ctx, quiet(mode), store)
    }

    #[test]
    fn the_attribute_hands_the_dispatcher_a_handler_that_returns_nothing_as_itself() {
        let hooks = hooks();
        let regs = hooks.table().handlers("data.create", "Quiet");
        assert_eq!(regs.len(), 6);
        let (reads, changes): (Vec<&&hooks::Registration>, Vec<_>) =
            regs.iter().partition(|r| r.id().ends_with("peek"));
        assert!(
            changes
                .iter()
                .all(|r| r.direct().is_some_and(|d| d.is::<BareUnit<Quiet>>())),
            "{changes:?}"
        );
        assert!(
            reads
                .iter()
                .all(|r| r.direct().is_some_and(|d| d.is::<fn(&Quiet)>())),
            "{reads:?}"
        );
    }

    #[test]
    fn handlers_that_return_nothing_run_in_order_and_client_only_ones_skip_server_calls() {
        let hooks = hooks();
        let out = create(&hooks, &mut Context::client(), "calm").unwrap();
        assert_eq!(
            out.seen,
            ["trim", "lower", "clients_only", "audit", "notify"]
        );
        let out = create(&hooks, &mut Context::server(), "calm").unwrap();
        assert_eq!(out.seen, ["trim", "lower", "audit", "notify"]);
    }

    #[tokio::test]
    async fn handlers_that_return_nothing_run_the_same_on_an_async_call() {
        let hooks = hooks();
        let out = hooks
            .create(&mut Context::client(), quiet("calm"), |q| async {
                store(q)
            })
            .await
            .unwrap();
        assert_eq!(
            out.seen,
            ["trim", "lower", "clients_only", "audit", "notify"]
        );
    }

    #[test]
    fn each_run_of_a_handler_that_returns_nothing_is_counted() {
        let hooks = hooks();
        let (trim, audit) = (
            "policies::bare_unit_slot::trim",
            "policies::bare_unit_slot::audit",
        );
        let before = (stats(&hooks, trim).calls, stats(&hooks, audit).calls);
        create(&hooks, &mut Context::client(), "calm").unwrap();
        assert!(stats(&hooks, trim).calls > before.0);
        assert!(stats(&hooks, audit).calls > before.1);
    }

    #[test]
    fn a_panicking_handler_that_returns_nothing_is_named_and_counted_and_the_call_fails_closed() {
        let hooks = hooks();
        let id = "policies::bare_unit_slot::trim";
        let panics = stats(&hooks, id).panics;
        let err = create(&hooks, &mut Context::client(), "panic before").unwrap_err();
        assert_eq!((err.status(), err.code()), (500, "handler_panicked"));
        assert!(err.message().contains(id), "{err}");
        assert_eq!(stats(&hooks, id).panics, panics + 1);
        assert_eq!(STOPPED_RUNS.load(Ordering::SeqCst), 0, "fail closed");
        assert!(create(&hooks, &mut Context::client(), "calm").is_ok());
    }

    #[test]
    fn after_an_after_handler_that_returns_nothing_panics_the_policy_decides_the_result() {
        let hooks = hooks();
        let id = "policies::bare_unit_slot::audit";
        let panics = stats(&hooks, id).panics;
        let kept = create(&hooks, &mut Context::client(), "panic after").unwrap();
        assert_eq!(kept.seen, ["trim", "lower", "clients_only", "notify"]);
        assert_eq!(stats(&hooks, id).panics, panics + 1);

        let strict = Hooks::builder()
            .after_failure(AfterFailure::Fail)
            .build()
            .unwrap();
        let err = create(&strict, &mut Context::client(), "panic after").unwrap_err();
        assert_eq!(err.code(), "handler_panicked");
        assert!(err.message().contains(id), "{err}");
    }

    /// A live switch turns off a handler of the loop: its own entity, as no other test may see
    /// it off.
    mod switched {
        use super::*;

        #[derive(Debug, Clone, PartialEq, Entity)]
        pub struct Muted {
            pub seen: Vec<String>,
        }

        #[before_create("Muted")]
        fn one(m: &mut Muted) {
            m.seen.push("one".into());
        }

        #[before_create("Muted", priority = 1)]
        fn two(m: &mut Muted) {
            m.seen.push("two".into());
        }

        fn create(hooks: &Hooks) -> Vec<String> {
            let m = Muted { seen: Vec::new() };
            hooks
                .run_sync::<hooks::ops::data::Create<Muted>, _>(&mut Context::client(), m, Ok)
                .map(|m| m.seen)
                .unwrap_or_default()
        }

        #[test]
        fn a_switched_off_handler_that_returns_nothing_is_skipped() {
            let hooks = hooks();
            let id = "policies::bare_unit_slot::switched::one";
            assert_eq!(create(&hooks), ["one", "two"]);
            assert_eq!(hooks.set_enabled(id, false), Ok(1));
            let off = create(&hooks);
            hooks.set_enabled(id, true).unwrap();
            assert_eq!(off, ["two"]);
            assert_eq!(create(&hooks), ["one", "two"]);
        }
    }

    /// The same, taking the context: each sees itself there.
    mod with_context {
        use super::*;

        #[derive(Debug, Clone, PartialEq, Entity)]
        pub struct Noted {
            pub seen: Vec<String>,
        }

        fn seen(n: &mut Noted, ctx: &Context) {
            let id = ctx.handler_id().unwrap_or("?");
            let name = id.rsplit("::").next().unwrap_or(id);
            let tag = ctx.param("tag").unwrap_or("-");
            n.seen
                .push(format!("{name}:{tag}:{}", ctx.phase().as_str()));
        }

        #[before_create("Noted", params(tag = "first"))]
        fn first(n: &mut Noted, ctx: &Context) {
            seen(n, ctx);
        }

        #[before_create("Noted", priority = 1)]
        fn second(n: &mut Noted, ctx: &Context) {
            seen(n, ctx);
        }

        #[after_create("Noted", params(tag = "last"))]
        fn last(n: &mut Noted, ctx: &Context) {
            seen(n, ctx);
        }

        #[test]
        fn each_handler_that_returns_nothing_sees_its_own_id_params_and_phase() {
            let hooks = hooks();
            let regs = hooks.table().handlers("data.create", "Noted");
            assert!(
                regs.iter()
                    .all(|r| r.direct().is_some_and(|d| d.is::<BareUnitCtx<Noted>>())),
                "{regs:?}"
            );
            let out = hooks
                .run_sync::<hooks::ops::data::Create<Noted>, _>(
                    &mut Context::client(),
                    Noted { seen: Vec::new() },
                    Ok,
                )
                .unwrap();
            assert_eq!(
                out.seen,
                ["first:first:before", "second:-:before", "last:last:after"]
            );
        }
    }
}

/// Before handlers that may answer the call (`Result<Flow<Output>, HookError>`), every one of a
/// slot: called as themselves, in a loop compiled for the output type, which the attribute hands
/// over with each of them. Answers, rejections, panics, counts, origins and switches must hold
/// there as through the adapters.
mod bare_answer_slot {
    use super::*;
    use hooks::Phase;
    use hooks::registration::{Answers, BareFlow, BareFlowCtx};

    /// Runs of the handlers after one that stopped the call, and of the default: there must be
    /// none.
    pub static STOPPED_RUNS: AtomicUsize = AtomicUsize::new(0);

    #[derive(Debug, Clone, PartialEq, Entity)]
    pub struct Asked {
        /// `"go"` lets every handler go on; `"answer"`, `"reject"` and `"panic"` make the first
        /// one do so.
        pub mode: String,
        pub seen: Vec<String>,
    }

    fn stopping(a: &Asked) -> bool {
        a.mode != "go"
    }

    #[before_create("Asked")]
    fn cache(a: &mut Asked) -> Result<Flow<Asked>, HookError> {
        match a.mode.as_str() {
            "answer" => Ok(Flow::Return(Asked {
                mode: "cached".into(),
                seen: vec!["cache".into()],
            })),
            "reject" => Err(HookError::forbidden("not from the cache")),
            "panic" => panic!("boom in a handler that may answer"),
            _ => {
                a.seen.push("cache".into());
                Ok(Flow::Continue)
            }
        }
    }

    #[before_create("Asked", priority = 1)]
    fn tag(a: &mut Asked) -> Result<Flow<Asked>, HookError> {
        if stopping(a) {
            STOPPED_RUNS.fetch_add(1, Ordering::SeqCst);
        }
        a.seen.push("tag".into());
        Ok(Flow::Continue)
    }

    #[before_create("Asked", priority = 2, client_only)]
    fn clients_only(a: &mut Asked) -> Result<Flow<Asked>, HookError> {
        a.seen.push("clients_only".into());
        Ok(Flow::Continue)
    }

    /// Reads only: a `&T` handler that may answer is called as itself too.
    #[before_create("Asked", priority = 3)]
    fn peek(a: &Asked) -> Result<Flow<Asked>, HookError> {
        if stopping(a) {
            STOPPED_RUNS.fetch_add(1, Ordering::SeqCst);
        }
        Ok(Flow::Continue)
    }

    #[after_create("Asked")]
    fn audit(a: &mut Asked) {
        a.seen.push("audit".into());
    }

    fn store(mut a: Asked) -> Result<Asked, HookError> {
        if stopping(&a) {
            STOPPED_RUNS.fetch_add(1, Ordering::SeqCst);
        }
        a.seen.push("store".into());
        Ok(a)
    }

    fn asked(mode: &str) -> Asked {
        Asked {
            mode: mode.into(),
            seen: Vec::new(),
        }
    }

    fn create(hooks: &Hooks, ctx: &mut Context, mode: &str) -> Result<Asked, HookError> {
        hooks.run_sync::<hooks::ops::data::Create<Asked>, _>(ctx, asked(mode), store)
    }

    const CACHE: &str = "policies::bare_answer_slot::cache";

    #[test]
    fn the_attribute_hands_the_dispatcher_a_handler_that_may_answer_as_itself() {
        let hooks = hooks();
        let regs = hooks.table().handlers("data.create", "Asked");
        let before: Vec<&hooks::Registration> = regs
            .iter()
            .copied()
            .filter(|r| r.phase() == Phase::Before)
            .collect();
        assert_eq!(before.len(), 4);
        let (reads, changes): (Vec<&hooks::Registration>, Vec<_>) =
            before.iter().partition(|r| r.id().ends_with("peek"));
        assert!(
            changes.iter().all(|r| r
                .direct()
                .is_some_and(|d| d.is::<Answers<BareFlow<Asked, Asked>, Asked>>())),
            "{changes:?}"
        );
        type Reads = fn(&Asked) -> Result<Flow<Asked>, HookError>;
        assert!(
            reads
                .iter()
                .all(|r| r.direct().is_some_and(|d| d.is::<Answers<Reads, Asked>>())),
            "{reads:?}"
        );
    }

    #[test]
    fn handlers_that_may_answer_run_in_order_and_client_only_ones_skip_server_calls() {
        let hooks = hooks();
        let out = create(&hooks, &mut Context::client(), "go").unwrap();
        assert_eq!(out.seen, ["cache", "tag", "clients_only", "store", "audit"]);
        let out = create(&hooks, &mut Context::server(), "go").unwrap();
        assert_eq!(out.seen, ["cache", "tag", "store", "audit"]);
    }

    #[test]
    fn an_answer_ends_the_before_handlers_skips_the_default_and_reaches_the_after_handlers() {
        let hooks = hooks();
        let out = create(&hooks, &mut Context::client(), "answer").unwrap();
        assert_eq!(out.mode, "cached");
        assert_eq!(out.seen, ["cache", "audit"]);
        assert_eq!(STOPPED_RUNS.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn a_rejection_fails_the_call_with_the_handlers_error_and_runs_nothing_after_it() {
        let hooks = hooks();
        let rejections = stats(&hooks, CACHE).rejections;
        let err = create(&hooks, &mut Context::client(), "reject").unwrap_err();
        assert_eq!((err.status(), err.message()), (403, "not from the cache"));
        assert_eq!(STOPPED_RUNS.load(Ordering::SeqCst), 0);
        assert!(stats(&hooks, CACHE).rejections > rejections);
    }

    #[test]
    fn a_panicking_handler_that_may_answer_is_named_and_counted_and_the_call_fails_closed() {
        let hooks = hooks();
        let panics = stats(&hooks, CACHE).panics;
        let err = create(&hooks, &mut Context::client(), "panic").unwrap_err();
        assert_eq!((err.status(), err.code()), (500, "handler_panicked"));
        assert!(err.message().contains(CACHE), "{err}");
        assert!(stats(&hooks, CACHE).panics > panics);
        assert_eq!(STOPPED_RUNS.load(Ordering::SeqCst), 0, "fail closed");
        assert!(create(&hooks, &mut Context::client(), "go").is_ok());
    }

    #[test]
    fn each_run_of_a_handler_that_may_answer_is_counted_whether_it_goes_on_or_answers() {
        let hooks = hooks();
        let (cache, tag) = (stats(&hooks, CACHE), "policies::bare_answer_slot::tag");
        let tag_calls = stats(&hooks, tag).calls;
        create(&hooks, &mut Context::client(), "go").unwrap();
        assert!(stats(&hooks, CACHE).calls > cache.calls);
        assert!(stats(&hooks, tag).calls > tag_calls);
        let answered = stats(&hooks, CACHE).calls;
        create(&hooks, &mut Context::client(), "answer").unwrap();
        assert!(stats(&hooks, CACHE).calls > answered);
    }

    #[tokio::test]
    async fn handlers_that_may_answer_run_the_same_on_an_async_call() {
        let hooks = hooks();
        for (mode, seen) in [
            (
                "go",
                &["cache", "tag", "clients_only", "store", "audit"][..],
            ),
            ("answer", &["cache", "audit"][..]),
        ] {
            let out = hooks
                .create(&mut Context::client(), asked(mode), |a| async { store(a) })
                .await
                .unwrap();
            assert_eq!(out.seen, seen, "{mode}");
        }
        let err = hooks
            .create(&mut Context::client(), asked("reject"), |a| async {
                store(a)
            })
            .await
            .unwrap_err();
        assert_eq!(err.status(), 403);
        assert_eq!(STOPPED_RUNS.load(Ordering::SeqCst), 0);
    }

    /// A live switch turns off the handler that would answer: its own entity, as no other test
    /// may see it off.
    mod switched {
        use super::*;

        #[derive(Debug, Clone, PartialEq, Entity)]
        pub struct Hushed {
            pub seen: Vec<String>,
        }

        #[before_create("Hushed")]
        fn answers(_: &mut Hushed) -> Result<Flow<Hushed>, HookError> {
            Ok(Flow::Return(Hushed {
                seen: vec!["answered".into()],
            }))
        }

        #[before_create("Hushed", priority = 1)]
        fn goes_on(h: &mut Hushed) -> Result<Flow<Hushed>, HookError> {
            h.seen.push("goes_on".into());
            Ok(Flow::Continue)
        }

        fn create(hooks: &Hooks) -> Vec<String> {
            let h = Hushed { seen: Vec::new() };
            hooks
                .run_sync::<hooks::ops::data::Create<Hushed>, _>(
                    &mut Context::client(),
                    h,
                    |mut h| {
                        h.seen.push("default".into());
                        Ok(h)
                    },
                )
                .map(|h| h.seen)
                .unwrap_or_default()
        }

        #[test]
        fn a_switched_off_handler_that_would_answer_is_skipped_and_the_call_goes_on() {
            let hooks = hooks();
            let id = "policies::bare_answer_slot::switched::answers";
            assert_eq!(create(&hooks), ["answered"]);
            assert_eq!(hooks.set_enabled(id, false), Ok(1));
            let off = create(&hooks);
            hooks.set_enabled(id, true).unwrap();
            assert_eq!(off, ["goes_on", "default"]);
            assert_eq!(create(&hooks), ["answered"]);
        }
    }

    /// The same, taking the context: each sees itself there, and may answer from it.
    mod with_context {
        use super::*;

        #[derive(Debug, Clone, PartialEq, Entity)]
        pub struct Told {
            pub seen: Vec<String>,
        }

        fn seen(t: &mut Told, ctx: &Context) {
            let id = ctx.handler_id().unwrap_or("?");
            let name = id.rsplit("::").next().unwrap_or(id);
            let tag = ctx.param("tag").unwrap_or("-");
            t.seen
                .push(format!("{name}:{tag}:{}", ctx.phase().as_str()));
        }

        #[before_create("Told", params(tag = "first"))]
        fn first(t: &mut Told, ctx: &Context) -> Result<Flow<Told>, HookError> {
            seen(t, ctx);
            Ok(Flow::Continue)
        }

        /// Answers calls from servers with what it has seen.
        #[before_create("Told", priority = 1)]
        fn second(t: &mut Told, ctx: &Context) -> Result<Flow<Told>, HookError> {
            seen(t, ctx);
            if ctx.is_client() {
                return Ok(Flow::Continue);
            }
            Ok(Flow::Return(t.clone()))
        }

        fn create(ctx: &mut Context) -> Vec<String> {
            let t = Told { seen: Vec::new() };
            hooks()
                .run_sync::<hooks::ops::data::Create<Told>, _>(ctx, t, |mut t| {
                    t.seen.push("default".into());
                    Ok(t)
                })
                .map(|t| t.seen)
                .unwrap_or_default()
        }

        #[test]
        fn each_handler_that_may_answer_sees_its_own_id_params_and_phase() {
            let hooks = hooks();
            let regs = hooks.table().handlers("data.create", "Told");
            assert!(
                regs.iter().all(|r| r
                    .direct()
                    .is_some_and(|d| d.is::<Answers<BareFlowCtx<Told, Told>, Told>>())),
                "{regs:?}"
            );
            let both = ["first:first:before", "second:-:before"];
            assert_eq!(
                create(&mut Context::client()),
                [&both[..], &["default"]].concat()
            );
            assert_eq!(create(&mut Context::server()), both);
        }
    }
}

/// The loop that runs async handlers inside one poll checks each handler's origin rule and switch
/// only when some handler needs it: both rules must hold there as in the sync loops.
mod async_switches {
    use super::*;

    #[derive(Debug, Clone, PartialEq, Entity)]
    pub struct Gate {
        pub marks: Vec<String>,
    }

    #[before_create("Gate", client_only)]
    async fn async_clients_only(g: &mut Gate) {
        g.marks.push("client-only".into());
    }

    #[after_create("Gate")]
    async fn async_switchable(g: &mut Gate) {
        g.marks.push("switchable".into());
    }

    async fn create(hooks: &Hooks, mut ctx: Context) -> Vec<String> {
        hooks
            .create(&mut ctx, Gate { marks: vec![] }, |g| async move { Ok(g) })
            .await
            .unwrap()
            .marks
    }

    #[tokio::test]
    async fn async_handlers_skip_server_calls_when_client_only_and_every_call_when_switched_off() {
        let hooks = hooks();
        assert_eq!(
            create(&hooks, Context::client()).await,
            ["client-only", "switchable"]
        );
        assert_eq!(create(&hooks, Context::server()).await, ["switchable"]);
        let id = "policies::async_switches::async_switchable";
        assert_eq!(hooks.set_enabled(id, false), Ok(1));
        assert_eq!(create(&hooks, Context::client()).await, ["client-only"]);
        hooks.set_enabled(id, true).unwrap();
        assert_eq!(
            create(&hooks, Context::client()).await,
            ["client-only", "switchable"]
        );
    }
}

/// Slots whose handlers mix shapes run through their adapters. The loop tells the context which
/// handler runs only when one of them takes the context; either way a panic is blamed on the
/// handler that panicked, wherever it stands in the loop.
mod adapter_slot {
    use super::*;
    use hooks::ops::data::Create;

    #[derive(Debug, Clone, PartialEq, Entity)]
    pub struct Mixed {
        pub seen: Vec<String>,
    }

    /// `who` and its params, as the context names the running handler.
    fn named(m: &mut Mixed, who: &str, ctx: &Context) {
        m.seen.push(format!(
            "{who}: {:?} {:?}",
            ctx.handler_id(),
            ctx.param("role")
        ));
    }

    #[before_create("Mixed")]
    fn plain(m: &mut Mixed) -> Result<(), HookError> {
        m.seen.push("plain".into());
        Ok(())
    }

    #[before_create("Mixed", priority = 1, params(role = "reader"))]
    fn reads_before(m: &mut Mixed, ctx: &Context) -> Result<Flow<Mixed>, HookError> {
        named(m, "before", ctx);
        Ok(Flow::Continue)
    }

    #[before_create("Mixed", priority = 2)]
    fn quiet(m: &mut Mixed) {
        m.seen.push("quiet".into());
    }

    #[after_create("Mixed")]
    fn after_plain(m: &mut Mixed) -> Result<(), HookError> {
        m.seen.push("after_plain".into());
        Ok(())
    }

    #[after_create("Mixed", priority = 1, params(role = "auditor"))]
    fn reads_after(m: &mut Result<Mixed, HookError>, ctx: &Context) {
        if let Ok(m) = m {
            named(m, "after", ctx);
        }
    }

    fn store(m: Mixed) -> Result<Mixed, HookError> {
        Ok(m)
    }

    fn mixed() -> Mixed {
        Mixed { seen: Vec::new() }
    }

    const BEFORE: &str = "before: Some(\"policies::adapter_slot::reads_before\") Some(\"reader\")";
    const AFTER: &str = "after: Some(\"policies::adapter_slot::reads_after\") Some(\"auditor\")";

    #[test]
    fn a_handler_that_takes_the_context_in_a_slot_of_adapters_sees_itself_named_there() {
        let out = hooks()
            .run_sync::<Create<Mixed>, _>(&mut Context::client(), mixed(), store)
            .unwrap();
        assert_eq!(out.seen, ["plain", BEFORE, "quiet", "after_plain", AFTER]);
    }

    #[tokio::test]
    async fn so_it_does_on_an_async_call() {
        let out = hooks()
            .create(&mut Context::client(), mixed(), |m| async move { store(m) })
            .await
            .unwrap();
        assert_eq!(out.seen, ["plain", BEFORE, "quiet", "after_plain", AFTER]);
    }

    /// A slot of adapters where no handler takes the context: five handlers, so that the loop's
    /// pairs and its odd last one each have a handler that may panic.
    #[derive(Debug, Clone, PartialEq, Entity)]
    pub struct Blind {
        pub panic_in: String,
        pub seen: Vec<String>,
    }

    fn step(b: &mut Blind, name: &str) {
        if b.panic_in == name {
            panic!("boom in {name}");
        }
        b.seen.push(name.into());
    }

    #[before_create("Blind")]
    fn b0(b: &mut Blind) -> Result<(), HookError> {
        step(b, "b0");
        Ok(())
    }

    #[before_create("Blind", priority = 1)]
    fn b1(b: &mut Blind) {
        step(b, "b1");
    }

    #[before_create("Blind", priority = 2)]
    fn b2(b: &mut Blind) -> Result<(), HookError> {
        step(b, "b2");
        Ok(())
    }

    #[before_create("Blind", priority = 3)]
    fn b3(b: &mut Blind) {
        step(b, "b3");
    }

    #[before_create("Blind", priority = 4)]
    fn b4(b: &mut Blind) -> Result<(), HookError> {
        step(b, "b4");
        Ok(())
    }

    #[after_create("Blind")]
    fn a0(b: &mut Blind) {
        step(b, "a0");
    }

    #[after_create("Blind", priority = 1)]
    fn a1(b: &mut Blind) -> Result<(), HookError> {
        step(b, "a1");
        Ok(())
    }

    fn blind(panic_in: &str) -> Blind {
        Blind {
            panic_in: panic_in.into(),
            seen: Vec::new(),
        }
    }

    #[test]
    fn a_panic_in_a_slot_where_no_handler_takes_the_context_is_blamed_on_its_handler() {
        let hooks = hooks();
        for name in ["b0", "b1", "b2", "b3", "b4"] {
            let id = format!("policies::adapter_slot::{name}");
            let panics = stats(&hooks, &id).panics;
            let err = hooks
                .run_sync::<Create<Blind>, _>(&mut Context::client(), blind(name), Ok)
                .unwrap_err();
            assert_eq!(err.code(), "handler_panicked", "{name}");
            assert!(err.message().contains(&id), "{name}: {err}");
            assert_eq!(stats(&hooks, &id).panics, panics + 1, "{name}");
        }
        // After handlers too: the panic is counted on its handler, and the next one still runs.
        let id = "policies::adapter_slot::a0";
        let panics = stats(&hooks, id).panics;
        let out = hooks
            .run_sync::<Create<Blind>, _>(&mut Context::client(), blind("a0"), Ok)
            .unwrap();
        assert_eq!(out.seen, ["b0", "b1", "b2", "b3", "b4", "a1"]);
        assert_eq!(stats(&hooks, id).panics, panics + 1);
    }
}

/// A slot whose before handlers are all async runs them, under plain policies, in a loop of its
/// own that polls each once where its adapter put it: every rule of the general loop holds there.
///
/// The tests of a module share its handlers' counters and may run at once: counts are compared
/// with `>`, and what must not run counts itself in `STOPPED_RUNS`, for the modes that stop.
mod async_plain_slot {
    use super::*;

    /// Runs of handlers, or of the default, after the handler that stopped the call: none.
    pub static STOPPED_RUNS: AtomicUsize = AtomicUsize::new(0);

    #[derive(Debug, Clone, PartialEq, Entity)]
    pub struct Swift {
        pub mode: String,
        pub seen: Vec<String>,
    }

    /// Counts a run that the handler before it (`stopper`) should have prevented.
    fn stopped_by(s: &Swift, stoppers: &[&str]) {
        if stoppers.contains(&s.mode.as_str()) {
            STOPPED_RUNS.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[before_create("Swift")]
    async fn a0(s: &mut Swift) -> Result<(), HookError> {
        s.seen.push("a0".into());
        if s.mode == "reject" {
            return Err(HookError::rejected("no"));
        }
        Ok(())
    }

    #[before_create("Swift", priority = 1)]
    async fn a1(s: &mut Swift, ctx: &Context) -> Result<Flow<Swift>, HookError> {
        stopped_by(s, &["reject"]);
        if s.mode == "answer" {
            return Ok(Flow::Return(Swift {
                mode: s.mode.clone(),
                seen: vec!["answered".into()],
            }));
        }
        s.seen.push(ctx.handler_id().unwrap_or("unnamed").into());
        Ok(Flow::Continue)
    }

    #[before_create("Swift", priority = 2)]
    async fn a2(s: &mut Swift) {
        stopped_by(s, &["reject", "answer"]);
        match s.mode.as_str() {
            "panic" => panic!("boom at the first poll"),
            "wait" => tokio::task::yield_now().await,
            _ => {}
        }
        s.seen.push("a2".into());
    }

    #[before_create("Swift", priority = 3)]
    async fn a3(s: &mut Swift) {
        stopped_by(s, &["reject", "answer", "panic"]);
        s.seen.push("a3".into());
    }

    #[after_create("Swift")]
    fn after(s: &mut Swift) {
        s.seen.push("after".into());
    }

    async fn create(hooks: &Hooks, mode: &str) -> Result<Swift, HookError> {
        let swift = Swift {
            mode: mode.into(),
            seen: Vec::new(),
        };
        hooks
            .create(&mut Context::client(), swift, |s| async move {
                stopped_by(&s, &["reject", "answer", "panic"]);
                Ok(s)
            })
            .await
    }

    fn id(name: &str) -> String {
        format!("policies::async_plain_slot::{name}")
    }

    const ALL: [&str; 5] = ["a0", "policies::async_plain_slot::a1", "a2", "a3", "after"];

    #[tokio::test]
    async fn async_handlers_that_finish_at_their_first_poll_run_in_order_and_are_counted() {
        let hooks = hooks();
        let names = ["a0", "a1", "a2", "a3"];
        let before = names.map(|name| stats(&hooks, &id(name)).calls);
        let out = create(&hooks, "plain").await.unwrap();
        assert_eq!(out.seen, ALL);
        for (name, calls) in names.iter().zip(before) {
            assert!(stats(&hooks, &id(name)).calls > calls, "{name}");
        }
    }

    #[tokio::test]
    async fn one_that_waits_is_awaited_and_the_rest_run_after_it() {
        let out = create(&hooks(), "wait").await.unwrap();
        assert_eq!(out.seen, ALL);
    }

    #[tokio::test]
    async fn an_answer_at_the_first_poll_skips_the_rest_and_the_default_not_the_after_handlers() {
        let out = create(&hooks(), "answer").await.unwrap();
        assert_eq!(out.seen, ["answered", "after"]);
        assert_eq!(STOPPED_RUNS.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn a_rejection_at_the_first_poll_fails_the_call_and_is_counted() {
        let hooks = hooks();
        let rejections = stats(&hooks, &id("a0")).rejections;
        let err = create(&hooks, "reject").await.unwrap_err();
        assert_eq!(err.code(), "rejected");
        assert!(stats(&hooks, &id("a0")).rejections > rejections);
        assert_eq!(STOPPED_RUNS.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn a_panic_at_the_first_poll_is_blamed_on_its_handler_and_fails_closed() {
        let hooks = hooks();
        let panics = stats(&hooks, &id("a2")).panics;
        let err = create(&hooks, "panic").await.unwrap_err();
        assert_eq!(err.code(), "handler_panicked");
        assert!(err.message().contains(&id("a2")), "{err}");
        assert!(stats(&hooks, &id("a2")).panics > panics);
        assert_eq!(STOPPED_RUNS.load(Ordering::SeqCst), 0);
    }

    /// A slot that mixes async and sync before handlers: the plain loop hands the sync one to
    /// the general loop, and the order holds.
    #[derive(Debug, Clone, PartialEq, Entity)]
    pub struct Swirl {
        pub seen: Vec<String>,
    }

    #[before_create("Swirl")]
    async fn first(s: &mut Swirl) {
        s.seen.push("first".into());
    }

    #[before_create("Swirl", priority = 1)]
    fn second(s: &mut Swirl) {
        s.seen.push("second".into());
    }

    #[before_create("Swirl", priority = 2)]
    async fn third(s: &mut Swirl) {
        s.seen.push("third".into());
    }

    #[tokio::test]
    async fn a_sync_handler_between_async_ones_runs_in_its_place() {
        let out = hooks()
            .create(
                &mut Context::client(),
                Swirl { seen: vec![] },
                |s| async move { Ok(s) },
            )
            .await
            .unwrap();
        assert_eq!(out.seen, ["first", "second", "third"]);
    }
}

/// A slot whose after handlers are async runs them, under plain policies, in the same kind of
/// loop: every rule of the after phase holds there too. Counts are compared as in
/// `async_plain_slot`, except on a type that one test alone calls.
mod async_plain_after {
    use super::*;

    /// What the handler that takes the whole result saw, call by call.
    pub static SAW: Mutex<Vec<String>> = Mutex::new(Vec::new());

    #[derive(Debug, Clone, PartialEq, Entity)]
    pub struct Trail {
        pub mode: String,
        pub seen: Vec<String>,
    }

    #[after_create("Trail")]
    async fn t0(t: &mut Trail) {
        t.seen.push("t0".into());
    }

    #[after_create("Trail", priority = 1)]
    async fn t1(t: &mut Trail, ctx: &Context) -> Result<(), HookError> {
        if t.mode == "error" {
            return Err(HookError::conflict("t1 says no"));
        }
        t.seen.push(ctx.handler_id().unwrap_or("unnamed").into());
        Ok(())
    }

    #[after_create("Trail", priority = 2)]
    async fn t2(t: &mut Trail) {
        if t.mode == "error" {
            SAW.lock().unwrap().push("t2 ran after an error".into());
        }
        match t.mode.as_str() {
            "panic" => panic!("boom in an async after handler"),
            "wait" => tokio::task::yield_now().await,
            _ => {}
        }
        t.seen.push("t2".into());
    }

    #[after_create("Trail", priority = 3)]
    async fn t3(t: &mut Trail) {
        if t.mode == "error" {
            SAW.lock().unwrap().push("t3 ran after an error".into());
        }
        t.seen.push("t3".into());
    }

    #[after_create("Trail", priority = 4)]
    async fn t4(t: &mut Result<Trail, HookError>) {
        let saw = match t {
            Ok(t) => format!("{}: ok", t.mode),
            Err(e) => format!("error {}", e.code()),
        };
        SAW.lock().unwrap().push(saw);
    }

    async fn create(hooks: &Hooks, mode: &str) -> Result<Trail, HookError> {
        let trail = Trail {
            mode: mode.into(),
            seen: Vec::new(),
        };
        hooks
            .create(&mut Context::client(), trail, |t| async move { Ok(t) })
            .await
    }

    fn id(name: &str) -> String {
        format!("policies::async_plain_after::{name}")
    }

    fn saw(what: &str) -> bool {
        SAW.lock().unwrap().iter().any(|s| s == what)
    }

    const ALL: [&str; 4] = ["t0", "policies::async_plain_after::t1", "t2", "t3"];

    #[tokio::test]
    async fn async_after_handlers_that_finish_at_their_first_poll_run_in_order_and_are_counted() {
        let hooks = hooks();
        let names = ["t0", "t1", "t2", "t3", "t4"];
        let before = names.map(|name| stats(&hooks, &id(name)).calls);
        let out = create(&hooks, "plain").await.unwrap();
        assert_eq!(out.seen, ALL);
        assert!(saw("plain: ok"));
        for (name, calls) in names.iter().zip(before) {
            assert!(stats(&hooks, &id(name)).calls > calls, "{name}");
        }
    }

    #[tokio::test]
    async fn one_that_waits_is_awaited_and_the_rest_run_after_it() {
        let out = create(&hooks(), "wait").await.unwrap();
        assert_eq!(out.seen, ALL);
        assert!(saw("wait: ok"));
    }

    #[tokio::test]
    async fn an_error_replaces_the_result_and_only_handlers_of_the_whole_result_run_after_it() {
        let hooks = hooks();
        let errors = stats(&hooks, &id("t1")).errors;
        let err = create(&hooks, "error").await.unwrap_err();
        assert_eq!((err.code(), err.message()), ("conflict", "t1 says no"));
        assert!(stats(&hooks, &id("t1")).errors > errors);
        assert!(saw("error conflict"));
        assert!(!saw("t2 ran after an error") && !saw("t3 ran after an error"));
    }

    #[tokio::test]
    async fn a_panic_is_counted_on_its_handler_and_the_next_ones_still_run() {
        let hooks = hooks();
        let panics = stats(&hooks, &id("t2")).panics;
        let out = create(&hooks, "panic")
            .await
            .expect("AfterFailure::Keep keeps the result");
        assert_eq!(out.seen, ["t0", "policies::async_plain_after::t1", "t3"]);
        assert!(stats(&hooks, &id("t2")).panics > panics);
        assert!(saw("panic: ok"));
    }

    /// Called by one test only, so its counts are exact.
    #[derive(Debug, Clone, PartialEq, Entity)]
    pub struct Spoiled {
        pub seen: Vec<String>,
    }

    #[after_create("Spoiled")]
    async fn takes_output(s: &mut Spoiled) {
        s.seen.push("takes_output".into());
    }

    #[after_create("Spoiled", priority = 1)]
    async fn takes_result(s: &mut Result<Spoiled, HookError>) {
        if let Err(e) = s {
            SAW.lock().unwrap().push(format!("spoiled: {}", e.code()));
        }
    }

    #[tokio::test]
    async fn on_a_failed_default_only_handlers_of_the_whole_result_run_or_count() {
        let hooks = hooks();
        let calls = |name: &str| stats(&hooks, &id(name)).calls;
        let (output, result) = (calls("takes_output"), calls("takes_result"));
        let err = hooks
            .create(
                &mut Context::client(),
                Spoiled { seen: vec![] },
                |_| async { Err::<Spoiled, _>(HookError::not_found("no such record")) },
            )
            .await
            .unwrap_err();
        assert_eq!(err.code(), "not_found");
        assert!(saw("spoiled: not_found"));
        assert_eq!(calls("takes_output"), output);
        assert_eq!(calls("takes_result"), result + 1);
    }

    /// Async after handlers with a sync one between them.
    #[derive(Debug, Clone, PartialEq, Entity)]
    pub struct Braid {
        pub seen: Vec<String>,
    }

    #[after_create("Braid")]
    async fn first(b: &mut Braid) {
        b.seen.push("first".into());
    }

    #[after_create("Braid", priority = 1)]
    fn second(b: &mut Braid) {
        b.seen.push("second".into());
    }

    #[after_create("Braid", priority = 2)]
    async fn third(b: &mut Braid) {
        b.seen.push("third".into());
    }

    #[tokio::test]
    async fn a_sync_after_handler_between_async_ones_runs_in_its_place() {
        let out = hooks()
            .create(
                &mut Context::client(),
                Braid { seen: vec![] },
                |b| async move { Ok(b) },
            )
            .await
            .unwrap();
        assert_eq!(out.seen, ["first", "second", "third"]);
    }
}

/// Timed history (like a trace, a per-handler timeout or debug spans) takes a synchronous call
/// through the general loops, compiled once for every operation, instead of the fast ones: the
/// call must be decided the same way on both.
mod general_loops {
    use super::*;

    pub static DEFAULT_RUNS: AtomicUsize = AtomicUsize::new(0);
    pub static RECOVER_RUNS: AtomicUsize = AtomicUsize::new(0);

    #[derive(Debug, Clone, PartialEq, Default, Entity)]
    pub struct Ticket {
        pub qty: u32,
        pub note: String,
        pub stamped: bool,
    }

    #[before_create("Ticket")]
    fn stamp(ticket: &mut Ticket) {
        ticket.stamped = true;
    }

    /// Rejects an empty ticket, answers a bulk one without the default.
    #[before_create("Ticket", priority = 1)]
    fn gate(ticket: &mut Ticket) -> Result<Flow<Ticket>, HookError> {
        match ticket.qty {
            0 => Err(HookError::rejected("empty")),
            q if q > 100 => Ok(Flow::Return(Ticket {
                note: "answered".into(),
                ..ticket.clone()
            })),
            _ => Ok(Flow::Continue),
        }
    }

    #[after_create("Ticket")]
    fn check_note(ticket: &mut Ticket) -> Result<(), HookError> {
        if ticket.note == "fail after" {
            return Err(HookError::new(409, "late", "refused after the write"));
        }
        ticket.note.push_str(" seen");
        Ok(())
    }

    /// Takes the whole result: runs on errors too.
    #[after_create("Ticket", priority = 1)]
    fn recover(result: &mut Result<Ticket, HookError>) {
        RECOVER_RUNS.fetch_add(1, Ordering::SeqCst);
        if let Err(e) = result {
            let message = format!("recovered: {}", e.message());
            *e = HookError::new(e.status(), e.code().to_owned(), message);
        }
    }

    fn store(ticket: Ticket) -> Result<Ticket, HookError> {
        DEFAULT_RUNS.fetch_add(1, Ordering::SeqCst);
        Ok(ticket)
    }

    /// A call's result, with its error as status, code and message.
    type Decided = Result<Ticket, (u16, String, String)>;

    /// Every case's result, how many defaults ran and how many times `recover` ran.
    fn decide(hooks: &Hooks) -> Vec<(Decided, usize, usize)> {
        let cases = [(0, ""), (200, "bulk"), (5, "fail after"), (5, "plain")];
        cases
            .into_iter()
            .map(|(qty, note)| {
                let (defaults, recovers) = (
                    DEFAULT_RUNS.load(Ordering::SeqCst),
                    RECOVER_RUNS.load(Ordering::SeqCst),
                );
                let ticket = Ticket {
                    qty,
                    note: note.into(),
                    stamped: false,
                };
                let out = hooks
                    .run_sync::<ops::data::Create<Ticket>, _>(&mut Context::client(), ticket, store)
                    .map_err(|e| (e.status(), e.code().to_owned(), e.message().to_owned()));
                (
                    out,
                    DEFAULT_RUNS.load(Ordering::SeqCst) - defaults,
                    RECOVER_RUNS.load(Ordering::SeqCst) - recovers,
                )
            })
            .collect()
    }

    #[test]
    fn the_general_loops_decide_a_sync_call_as_the_fast_loops_do() {
        let fast = Hooks::builder().history(History::Counts).build().unwrap();
        let general = Hooks::builder().history(History::Timed).build().unwrap();
        let on_fast = decide(&fast);
        let on_general = decide(&general);
        assert_eq!(on_general, on_fast);
        let rejected = |msg: &str| Err((400, "rejected".to_owned(), msg.to_owned()));
        let ticket = |qty, note: &str| Ticket {
            qty,
            note: note.into(),
            stamped: true,
        };
        assert_eq!(
            on_general,
            [
                // Rejected before the default: only the handler of the whole result runs after.
                (rejected("recovered: empty"), 0, 1),
                // Answered without the default; the after handlers run on the answer.
                (Ok(ticket(200, "answered seen")), 0, 1),
                // An after handler's error replaces the result, which the next one still sees.
                (
                    Err((
                        409,
                        "late".to_owned(),
                        "recovered: refused after the write".to_owned()
                    )),
                    1,
                    1
                ),
                (Ok(ticket(5, "plain seen")), 1, 1),
            ]
        );
        // A handler's history is its own, kept in its registration: both runtimes counted
        // their four runs into it.
        assert_eq!(stats(&general, "policies::general_loops::gate").calls, 8);
        assert_eq!(stats(&general, "policies::general_loops::recover").calls, 8);
    }
}

/// The fast loop of bare after handlers runs them two a turn; after one panics, it resumes with
/// the next, wherever the one that panicked stood in its pair.
mod bare_after_resume {
    use super::*;

    #[derive(Debug, Clone, PartialEq, Entity)]
    pub struct Tally {
        pub panic_at: Option<usize>,
        pub seen: Vec<usize>,
    }

    fn step(t: &mut Tally, at: usize) -> Result<(), HookError> {
        if t.panic_at == Some(at) {
            panic!("boom in the after handler at {at}");
        }
        t.seen.push(at);
        Ok(())
    }

    #[after_create("Tally")]
    fn zero(t: &mut Tally) -> Result<(), HookError> {
        step(t, 0)
    }

    #[after_create("Tally", priority = 1)]
    fn one(t: &mut Tally) -> Result<(), HookError> {
        step(t, 1)
    }

    #[after_create("Tally", priority = 2)]
    fn two(t: &mut Tally) -> Result<(), HookError> {
        step(t, 2)
    }

    #[after_create("Tally", priority = 3)]
    fn three(t: &mut Tally) -> Result<(), HookError> {
        step(t, 3)
    }

    #[after_create("Tally", priority = 4)]
    fn four(t: &mut Tally) -> Result<(), HookError> {
        step(t, 4)
    }

    #[test]
    fn after_a_bare_after_handler_panics_anywhere_in_its_pair_the_loop_resumes_with_the_next() {
        let hooks = hooks();
        for panic_at in 0..5 {
            let tally = Tally {
                panic_at: Some(panic_at),
                seen: Vec::new(),
            };
            let out = hooks
                .run_sync::<hooks::ops::data::Create<Tally>, _>(&mut Context::client(), tally, Ok)
                .unwrap();
            let expected: Vec<usize> = (0..5).filter(|&at| at != panic_at).collect();
            assert_eq!(out.seen, expected, "a panic at {panic_at}");
        }
    }
}

/// After handlers of mixed shapes, none of the whole result, run through their adapters in the
/// fast loop of handlers that run on success only, two a turn: after a panic it resumes with the
/// next handler, and an error ends the run of handlers that take the output, wherever the
/// handler stood in its pair.
mod adapted_after_resume {
    use super::*;

    #[derive(Debug, Clone, PartialEq, Entity)]
    pub struct Ledger {
        pub panic_at: Option<usize>,
        pub fail_at: Option<usize>,
        pub seen: Vec<usize>,
    }

    /// Runs of a handler after the one that failed: there must be none (the result is then an
    /// error, which these handlers do not take).
    pub static RAN_AFTER_A_FAILURE: AtomicUsize = AtomicUsize::new(0);

    fn step(l: &mut Ledger, at: usize) -> Result<(), HookError> {
        if l.fail_at.is_some_and(|failed| at > failed) {
            RAN_AFTER_A_FAILURE.fetch_add(1, Ordering::SeqCst);
        }
        if l.panic_at == Some(at) {
            panic!("boom in the after handler at {at}");
        }
        if l.fail_at == Some(at) {
            return Err(HookError::internal(format!("the handler at {at} failed")));
        }
        l.seen.push(at);
        Ok(())
    }

    #[after_create("Ledger")]
    fn zero(l: &mut Ledger) -> Result<(), HookError> {
        step(l, 0)
    }

    /// Returns nothing: another shape, so the slot's handlers run through their adapters.
    #[after_create("Ledger", priority = 1)]
    fn one(l: &mut Ledger) {
        let _ = step(l, 1);
    }

    #[after_create("Ledger", priority = 2)]
    fn two(l: &mut Ledger) -> Result<(), HookError> {
        step(l, 2)
    }

    #[after_create("Ledger", priority = 3)]
    fn three(l: &mut Ledger) -> Result<(), HookError> {
        step(l, 3)
    }

    #[after_create("Ledger", priority = 4)]
    fn four(l: &mut Ledger) -> Result<(), HookError> {
        step(l, 4)
    }

    fn create(
        hooks: &Hooks,
        panic_at: Option<usize>,
        fail_at: Option<usize>,
    ) -> Result<Ledger, HookError> {
        let ledger = Ledger {
            panic_at,
            fail_at,
            seen: Vec::new(),
        };
        hooks.run_sync::<hooks::ops::data::Create<Ledger>, _>(&mut Context::client(), ledger, Ok)
    }

    #[test]
    fn after_an_adapted_after_handler_panics_anywhere_in_its_pair_the_loop_resumes_with_the_next() {
        let hooks = hooks();
        for panic_at in 0..5 {
            let out = create(&hooks, Some(panic_at), None).unwrap();
            let expected: Vec<usize> = (0..5).filter(|&at| at != panic_at).collect();
            assert_eq!(out.seen, expected, "a panic at {panic_at}");
        }
    }

    #[test]
    fn an_adapted_after_handlers_error_replaces_the_result_wherever_it_stood_in_its_pair() {
        let hooks = hooks();
        // `one` returns nothing: its error is dropped by its own body.
        for fail_at in [0, 2, 3, 4] {
            let err = create(&hooks, None, Some(fail_at)).unwrap_err();
            assert_eq!(err.message(), format!("the handler at {fail_at} failed"));
        }
        assert_eq!(RAN_AFTER_A_FAILURE.load(Ordering::SeqCst), 0);
    }
}
