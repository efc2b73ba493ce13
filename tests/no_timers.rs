//! On a tokio runtime built without timers, an `async fn` handler runs without a timeout, and
//! the framework's probe for a timer (tokio panics when one is made there) is made once on each
//! of the runtime's threads, not at every poll of every waiting handler. A test binary of its
//! own: it counts the process's panics.

use std::sync::atomic::{AtomicUsize, Ordering};

use hooks::prelude::*;

hooks::operation! {
    /// A call whose before handler waits `n` times.
    pub Yielding: "no_timers.yielding", u32 => u32
}

#[before(Yielding)]
async fn yield_n_times(n: &mut u32) -> Result<(), HookError> {
    for _ in 0..*n {
        tokio::task::yield_now().await;
    }
    Ok(())
}

static PANICS: AtomicUsize = AtomicUsize::new(0);

#[test]
fn a_runtime_without_timers_runs_handlers_untimed_and_is_probed_once_per_thread_and_runtime() {
    std::panic::set_hook(Box::new(|_| {
        PANICS.fetch_add(1, Ordering::SeqCst);
    }));
    let hooks = Hooks::new().unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    // A second one, used in turn with the first on this thread.
    let other = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    for _ in 0..3 {
        for rt in [&runtime, &other] {
            let out = rt.block_on(hooks.run::<Yielding, _, _>(
                &mut Context::client(),
                5,
                |n| async move { Ok(n * 2) },
            ));
            assert_eq!(out, Ok(10));
        }
    }
    let _ = std::panic::take_hook();
    assert_eq!(
        PANICS.load(Ordering::SeqCst),
        2,
        "one probe for each runtime, on the one thread"
    );
}
