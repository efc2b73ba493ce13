//! Every handler runs inside a tracing span that names it, its event and its asset.
//!
//! A test binary of its own: tracing caches each callsite's interest globally, so a scoped
//! subscriber is only reliable when no other test thread is emitting at the same time.

use std::sync::Mutex;

use hooks::prelude::*;

use std::sync::Arc;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

/// A subscriber that records the fields of every span it sees.
#[derive(Default)]
struct Spans(Arc<Mutex<Vec<String>>>);

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
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

#[derive(Debug, Clone, Entity)]
pub struct Traced;

#[before_create("Traced")]
fn traced(_: &mut Traced) {}

#[test]
fn every_handler_runs_in_a_span_naming_it_its_event_and_asset() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let hooks = Hooks::new().unwrap();
    tracing::subscriber::with_default(Spans(seen.clone()), || {
        hooks
            .run_sync::<ops::data::Create<Traced>, _>(&mut Context::client(), Traced, Ok)
            .unwrap();
    });
    assert_eq!(
        *seen.lock().unwrap(),
        ["hook: handler=spans::traced operation=data.create asset=Traced phase=before"]
    );
}
