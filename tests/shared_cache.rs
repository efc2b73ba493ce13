//! A slot cache shared by two operations (here: a static in a generic `slot_cache`, which is one
//! static for every type) never hands one operation's handlers to the other: the slot read from
//! a cache is checked to be the caller's. Before, the second call ran the first one's handler on
//! an input of another type (a crash). The cache's "no handlers" is not checked: `slot_cache` is
//! hidden API, and a cache must be one operation's own static.

use std::marker::PhantomData;

use hooks::prelude::*;
use hooks::table::SlotCache;

pub struct Wrap<T>(PhantomData<fn() -> T>);

impl<T: Send + 'static> hooks::Operation for Wrap<T> {
    type Input = T;
    type Output = T;
    const NAME: &'static str = "shared_cache.wrap";
    const ASSET: &'static str = "wrap";

    fn slot_cache() -> Option<&'static SlotCache> {
        // One static for every `Wrap<T>`.
        static CACHE: SlotCache = SlotCache::new();
        Some(&CACHE)
    }
}

#[before(Wrap<String>)]
fn grow(s: &mut String) {
    s.push_str(" and more text");
}

#[test]
fn a_slot_cached_for_one_operation_is_never_read_as_anothers() {
    let hooks = Hooks::new().unwrap();
    // Fills the shared cache with `Wrap<String>`'s slot.
    let s = hooks
        .run_sync::<Wrap<String>, _>(&mut Context::client(), "hi".to_owned(), Ok)
        .unwrap();
    assert_eq!(s, "hi and more text");
    // `Wrap<[u64; 3]>`'s call finds that slot in the cache, and resolves its own instead: its
    // operation's handler takes a `String`, so it fails closed, before anything runs.
    let out =
        hooks.run_sync::<Wrap<[u64; 3]>, _>(&mut Context::client(), [8, 0x4141_4141, 5], |_| {
            panic!("the default must not run")
        });
    let err = out.unwrap_err();
    assert_eq!(err.status(), 500, "{err}");
    // And the first operation's calls still find their slot.
    let s = hooks
        .run_sync::<Wrap<String>, _>(&mut Context::client(), "again".to_owned(), Ok)
        .unwrap();
    assert_eq!(s, "again and more text");
}
