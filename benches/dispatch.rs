//! Dispatch cost against the number of handlers N, side by side with hand-written baselines.
//!
//! Groups `sync_call`, `async_call` (sync handlers on an async call) and `async_handlers`; in each,
//! one benchmark per design (see `common/mod.rs`) and N in 0, 1, 5, 10. Run with
//!
//! ```text
//! cargo bench --bench dispatch -- --warm-up-time 1 --measurement-time 2
//! python3 benches/report.py
//! ```
//!
//! and `report.py` prints the table of times and ratios from criterion's output.

use std::hint::black_box;
use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, BenchmarkId, Criterion, criterion_group, criterion_main};
use hooks::HookError;

mod common;

use common::{Bench, COUNTS, MODES, Visit};

/// Registers each design's case as a criterion benchmark `design/N` in the current group.
struct Crit<'a, 'c> {
    group: &'a mut BenchmarkGroup<'c, WallTime>,
}

impl<E: Bench> Visit<E> for Crit<'_, '_> {
    fn visit<F: FnMut(E) -> Result<E, HookError>>(&mut self, design: &'static str, mut case: F) {
        self.group
            .bench_function(BenchmarkId::new(design, E::N), |b| {
                b.iter(|| case(black_box(E::fresh())))
            });
    }
}

fn dispatch(c: &mut Criterion) {
    let hooks = match common::bench_hooks() {
        Ok(hooks) => hooks,
        Err(e) => panic!("the bench handlers do not form a valid table: {e}"),
    };
    for mode in MODES {
        let mut group = c.benchmark_group(mode);
        for n in COUNTS {
            common::for_cases(&hooks, mode, n, &mut Crit { group: &mut group });
        }
        group.finish();
    }
}

criterion_group! {
    name = benches;
    // Short by default: the machine is shared and callgrind gives the stable numbers. Flags on the
    // command line override these.
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30);
    targets = dispatch
}
criterion_main!(benches);
