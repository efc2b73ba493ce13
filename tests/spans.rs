//! Every handler runs inside a tracing span that names it, its event and its asset.
//!
//! A test binary of its own: tracing caches each callsite's interest globally, so a scoped
//! subscriber is only reliable when no other test thread is emitting at the same time.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use hooks::prelude::*;

use std::sync::Arc;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

/// A subscriber that records the fields of every span it sees, and counts how often spans are
/// entered.
#[derive(Default)]
struct Spans(Arc<Mutex<Vec<String>>>, Arc<AtomicUsize>);

struct Fields(String);
impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.push_str(&format!("{}={value} ", field.name()));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.push_str(&format!("{}={value:?} ", field.name()));
    }
}

impl Subscriber for Spans {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, span: &Attributes<'_>) -> Id {
        let mut fields = Fields(format!("{}: ", span.metadata().name()));
        span.record(&mut fields);
        let mut all = self.0.lock().unwrap();
        all.push(fields.0.trim_end().to_owned());
        Id::from_u64(all.len() as u64)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, _: &Event<'_>) {}
    fn enter(&self, _: &Id) {
        self.1.fetch_add(1, Ordering::SeqCst);
    }
    fn exit(&self, _: &Id) {}
}

#[derive(Debug, Clone, Entity)]
pub struct Traced {
    pub id: u32,
}

#[before_create("Traced")]
fn traced(_: &mut Traced) {}

#[test]
fn every_handler_runs_in_a_span_naming_it_its_event_and_asset() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let hooks = Hooks::new().unwrap();
    tracing::subscriber::with_default(Spans(seen.clone(), Arc::default()), || {
        hooks
            .run_sync::<ops::data::Create<Traced>, _>(&mut Context::client(), Traced { id: 1 }, Ok)
            .unwrap();
    });
    assert_eq!(
        *seen.lock().unwrap(),
        ["hook: handler=spans::traced operation=data.create asset=Traced phase=before"]
    );
}

#[derive(Debug, Clone, Entity)]
pub struct TracedAsync {
    pub id: u32,
}

/// Waits once, so it is polled twice.
#[after_create("TracedAsync")]
async fn traced_async(_: &mut TracedAsync) {
    tokio::task::yield_now().await;
}

#[test]
fn an_async_handler_runs_in_its_span_at_every_poll() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let enters = Arc::new(AtomicUsize::new(0));
    let hooks = Hooks::new().unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    tracing::subscriber::with_default(Spans(seen.clone(), enters.clone()), || {
        runtime
            .block_on(
                hooks.create(&mut Context::client(), TracedAsync { id: 1 }, |t| async {
                    Ok(t)
                }),
            )
            .unwrap();
    });
    assert_eq!(
        *seen.lock().unwrap(),
        ["hook: handler=spans::traced_async operation=data.create asset=TracedAsync phase=after"]
    );
    assert!(
        enters.load(Ordering::SeqCst) >= 2,
        "entered at each of its polls"
    );
}

#[derive(Debug, Clone, Entity)]
pub struct TracedSlow {
    pub id: u32,
}

/// Overruns its own timeout.
#[before_create("TracedSlow", timeout = "20ms")]
fn traced_slow(_: &mut TracedSlow) {
    std::thread::sleep(std::time::Duration::from_millis(60));
}

#[test]
fn a_sync_handler_that_overran_its_timeout_rejects_the_call_with_debug_spans_on_too() {
    let hooks = Hooks::new().unwrap();
    let err = tracing::subscriber::with_default(Spans::default(), || {
        hooks.run_sync::<ops::data::Create<TracedSlow>, _>(
            &mut Context::client(),
            TracedSlow { id: 1 },
            Ok,
        )
    })
    .unwrap_err();
    assert_eq!((err.status(), err.code()), (504, "handler_timeout"));
}
