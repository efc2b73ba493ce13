//! Start-up: building the dispatch table (validate, sort, index) from 1,000 and 10,000
//! registrations. The target of issue 7 is under 1 ms for 10,000.
//!
//! The registrations are made here as the attributes make them, `'static`, and laid out as the
//! linker lays out a binary's: one contiguous array, in a scrambled link order. 5 operations x
//! (N / 50) assets x 10 handlers, half before and half after, each with its own id. Run with
//!
//! ```text
//! cargo bench --bench table -- --warm-up-time 1 --measurement-time 2
//! ```
//!
//! `table_build` is the whole of `Table::from_registrations`: one pass over the registrations, the
//! slots ordered by the ranks of their names, then each slot sorted and validated. Every build
//! keeps its table until criterion drops the batch, as a service keeps its one: the table's
//! memory is fresh each time. `table_sort/comparison_sort` is, for comparison, what the first
//! step of the build once was alone: one comparison sort of all the registrations on (operation,
//! asset, phase, priority, id).

use std::any::{Any, TypeId};
use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use hooks::registration::Adapter;
use hooks::stats::HandlerState;
use hooks::{Kind, Mode, Phase, Registration, Table};

fn noop() {}

/// What every leaked registration points at: any `'static` value will do, the table only
/// downcasts it when a call resolves a slot.
static ADAPTER: fn() = noop;

const OPERATIONS: [&str; 5] = [
    "data.create",
    "data.update",
    "data.delete",
    "data.find",
    "data.find_by_id",
];

fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

/// `count` registrations (a multiple of 50), in a scrambled order.
fn registrations(count: usize) -> Vec<&'static Registration> {
    let assets = count / (OPERATIONS.len() * 10);
    let mut regs: Vec<Registration> = Vec::with_capacity(count);
    for a in 0..assets {
        let asset = leak(format!("Asset{a}"));
        for operation in OPERATIONS {
            for h in 0..10_i32 {
                let adapter: &'static (dyn Any + Send + Sync) = &ADAPTER;
                let reg = Registration {
                    id: leak(format!("app::handlers::asset{a}::{operation}::handler{h}")),
                    operation,
                    asset,
                    phase: if h % 2 == 0 {
                        Phase::Before
                    } else {
                        Phase::After
                    },
                    kind: if h % 5 == 4 { Kind::Async } else { Kind::Sync },
                    priority: (h % 3) - 1,
                    mode: Mode::Blocking,
                    timeout: None,
                    client_only: false,
                    on_error: false,
                    context: false,
                    params: &[],
                    file: "src/handlers.rs",
                    line: 10 + h as u32,
                    doc: "A handler.",
                    payload: "Record",
                    op_type: TypeId::of::<()>,
                    op_type_name: std::any::type_name::<()>,
                    adapter: Adapter::own(adapter),
                    state: HandlerState::new(),
                };
                regs.push(reg);
            }
        }
    }
    // A fixed scramble (an LCG-driven Fisher-Yates): link order is arbitrary.
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    for i in (1..regs.len()).rev() {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let j = (state >> 33) as usize % (i + 1);
        regs.swap(i, j);
    }
    // One contiguous array, as the linker lays out the registrations of a binary.
    Box::leak(regs.into_boxed_slice()).iter().collect()
}

/// The sort the table did before its bucket sort: one comparison sort of every registration on
/// (operation, asset, phase, priority, id), for comparison with `table_build`, which does all of
/// the build (bucket sort, index, validation) in less.
fn sort_current(regs: &[&'static Registration]) -> Vec<&'static Registration> {
    let mut regs = regs.to_vec();
    regs.sort_by_key(|r| (r.operation, r.asset, r.phase, r.priority, r.id));
    regs
}

fn sort(c: &mut Criterion) {
    let mut group = c.benchmark_group("table_sort");
    let regs = registrations(10_000);
    group.bench_function(BenchmarkId::new("comparison_sort", 10_000), |b| {
        b.iter(|| sort_current(black_box(&regs)))
    });
    group.finish();
}

fn build(c: &mut Criterion) {
    let mut group = c.benchmark_group("table_build");
    for count in [1_000, 10_000] {
        let regs = registrations(count);
        match Table::from_registrations(regs.iter().copied()) {
            Ok(table) => {
                let same = table
                    .registrations()
                    .iter()
                    .zip(sort_current(&regs).iter())
                    .all(|(a, b)| std::ptr::eq(*a, *b));
                assert!(same, "the table must keep the order of the names");
            }
            Err(e) => panic!("the generated registrations do not form a valid table: {e}"),
        }
        group.bench_with_input(BenchmarkId::from_parameter(count), &regs, |b, regs| {
            b.iter_with_large_drop(|| Table::from_registrations(black_box(regs).iter().copied()))
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20);
    targets = build, sort
}
criterion_main!(benches);
