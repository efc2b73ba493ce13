//! Start-up: building the dispatch table (validate, sort, index) from 1,000 and 10,000
//! registrations. The target of issue 7 is under 1 ms for 10,000.
//!
//! The registrations are made here with `Box::leak`, as the attributes would make them statics:
//! 5 operations x (N / 50) assets x 10 handlers, half before and half after, in a scrambled link
//! order, each with its own id. Run with
//!
//! ```text
//! cargo bench --bench table -- --warm-up-time 1 --measurement-time 2
//! ```
//!
//! The group `table_sort` isolates the first step of `Table::from_registrations`, the sort, as the
//! table does it today (`current`: one comparison sort of `&Registration`s on (operation, asset,
//! phase, priority, id), string compares through a pointer each time) and as proposed in
//! BENCHMARKS.md (`bucketed`: group by (operation, asset) in one hashing pass, sort the distinct
//! slots, then sort each small bucket by (phase, priority, id); `precomputed_key`: with a slot key
//! that the attribute would compute at compile time, sort integers and compare strings only to
//! order the distinct slots and to break (priority) ties by id).

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
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
    let mut regs = Vec::with_capacity(count);
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
                    params: &[],
                    file: "src/handlers.rs",
                    line: 10 + h as u32,
                    doc: "A handler.",
                    payload: "Record",
                    op_type: TypeId::of::<()>,
                    op_type_name: std::any::type_name::<()>,
                    adapter,
                    state: Box::leak(Box::new(HandlerState::new())),
                };
                regs.push(&*Box::leak(Box::new(reg)));
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
    regs
}

/// The sort of `Table::from_registrations` as it is.
fn sort_current(regs: &[&'static Registration]) -> Vec<&'static Registration> {
    let mut regs = regs.to_vec();
    regs.sort_by(|a, b| {
        (a.operation, a.asset, a.phase, a.priority, a.id).cmp(&(
            b.operation,
            b.asset,
            b.phase,
            b.priority,
            b.id,
        ))
    });
    regs
}

/// FNV-1a: a cheap hasher for short keys (std's SipHash costs as much as the sort it saves).
#[derive(Default)]
struct Fnv(u64);

impl std::hash::Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 {
            0xcbf2_9ce4_8422_2325
        } else {
            self.0
        };
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = h;
    }
}

/// The proposed sort: bucket by (operation, asset) in one hashing pass, sort the distinct slots
/// by name, then sort each small bucket by (phase, priority, id). Same order as today.
fn sort_bucketed(regs: &[&'static Registration]) -> Vec<&'static Registration> {
    type Buckets = HashMap<(&'static str, &'static str), Vec<&'static Registration>, FnvBuild>;
    type FnvBuild = std::hash::BuildHasherDefault<Fnv>;
    let mut slots = Buckets::default();
    for r in regs {
        slots.entry((r.operation, r.asset)).or_default().push(*r);
    }
    let mut buckets: Vec<_> = slots.into_iter().collect();
    buckets.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    let mut out = Vec::with_capacity(regs.len());
    for (_, mut bucket) in buckets {
        bucket.sort_by(|a, b| (a.phase, a.priority, a.id).cmp(&(b.phase, b.priority, b.id)));
        out.extend(bucket);
    }
    out
}

/// What the attribute could compute at compile time: a hash of (operation, asset), as a `const fn`
/// would (FNV-1a over both strings with a separator).
const fn slot_key(operation: &str, asset: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let (a, b) = (operation.as_bytes(), asset.as_bytes());
    let mut i = 0;
    while i < a.len() {
        h = (h ^ a[i] as u64).wrapping_mul(0x0100_0000_01b3);
        i += 1;
    }
    h = (h ^ 0xff).wrapping_mul(0x0100_0000_01b3);
    let mut i = 0;
    while i < b.len() {
        h = (h ^ b[i] as u64).wrapping_mul(0x0100_0000_01b3);
        i += 1;
    }
    h
}

/// The sort with a compile-time slot key next to each registration: sort by (key, phase,
/// priority, id) on integers first, then put the slots in name order (one string sort over the
/// distinct slots). Same order as today unless two slots' keys collide, which a real table would
/// check for while putting the slots in order.
fn sort_precomputed(keyed: &[(u64, &'static Registration)]) -> Vec<&'static Registration> {
    let mut keyed = keyed.to_vec();
    keyed.sort_unstable_by(|(ka, a), (kb, b)| {
        (ka, a.phase, a.priority)
            .cmp(&(kb, b.phase, b.priority))
            .then_with(|| a.id.cmp(b.id))
    });
    let mut slots: Vec<(&str, &str, usize, usize)> = Vec::new();
    let mut start = 0;
    while start < keyed.len() {
        let key = keyed[start].0;
        let end = start + keyed[start..].iter().take_while(|(k, _)| *k == key).count();
        let r = keyed[start].1;
        slots.push((r.operation, r.asset, start, end));
        start = end;
    }
    slots.sort_unstable_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
    let mut out = Vec::with_capacity(keyed.len());
    for (_, _, start, end) in slots {
        out.extend(keyed[start..end].iter().map(|(_, r)| *r));
    }
    out
}

fn sort(c: &mut Criterion) {
    let mut group = c.benchmark_group("table_sort");
    let regs = registrations(10_000);
    let same = sort_current(&regs)
        .iter()
        .zip(sort_bucketed(&regs).iter())
        .all(|(a, b)| std::ptr::eq(*a, *b));
    assert!(same, "the bucketed sort must give the table's order");
    let keyed: Vec<(u64, &'static Registration)> = regs
        .iter()
        .map(|r| (slot_key(r.operation, r.asset), *r))
        .collect();
    let same = sort_current(&regs)
        .iter()
        .zip(sort_precomputed(&keyed).iter())
        .all(|(a, b)| std::ptr::eq(*a, *b));
    assert!(same, "the precomputed-key sort must give the table's order");
    group.bench_function(BenchmarkId::new("current", 10_000), |b| {
        b.iter(|| sort_current(black_box(&regs)))
    });
    group.bench_function(BenchmarkId::new("bucketed", 10_000), |b| {
        b.iter(|| sort_bucketed(black_box(&regs)))
    });
    group.bench_function(BenchmarkId::new("precomputed_key", 10_000), |b| {
        b.iter(|| sort_precomputed(black_box(&keyed)))
    });
    group.finish();
}

fn build(c: &mut Criterion) {
    let mut group = c.benchmark_group("table_build");
    for count in [1_000, 10_000] {
        let regs = registrations(count);
        match Table::from_registrations(regs.iter().copied()) {
            Ok(table) => assert_eq!(table.registrations().len(), count),
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
