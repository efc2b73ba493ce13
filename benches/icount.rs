//! The cases of `benches/dispatch.rs`, each run a given number of times, for instruction counts
//! under callgrind. `benches/callgrind.sh` runs every case K and 2K times and divides the
//! difference by K, which cancels start-up (table building, registries, the first resolve).
//!
//! ```text
//! icount list                          every case, one `mode design n` a line
//! icount <mode> <design> <n> <times>   run one case `times` times
//! ```
//!
//! Run without arguments (as `cargo bench` does), it prints its usage and exits.

use std::hint::black_box;
use std::process::ExitCode;

use hooks::HookError;

mod common;

use common::{Bench, COUNTS, MODES, Visit};

/// Lists the designs of a case, with the handler count of the entity type.
struct List {
    designs: Vec<(&'static str, usize)>,
}

impl<E: Bench> Visit<E> for List {
    fn visit<F: FnMut(E) -> Result<E, HookError>>(&mut self, design: &'static str, _case: F) {
        self.designs.push((design, E::N));
    }
}

/// Runs the named design `times` times.
struct Run<'a> {
    design: &'a str,
    times: u64,
    ran: bool,
}

impl<E: Bench> Visit<E> for Run<'_> {
    fn visit<F: FnMut(E) -> Result<E, HookError>>(&mut self, design: &'static str, mut case: F) {
        if design != self.design {
            return;
        }
        self.ran = true;
        for _ in 0..self.times {
            let _ = black_box(case(black_box(E::fresh())));
        }
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let hooks = match common::bench_hooks() {
        Ok(hooks) => hooks,
        Err(e) => {
            eprintln!("the bench handlers do not form a valid table: {e}");
            return ExitCode::FAILURE;
        }
    };
    match args.as_slice() {
        ["list"] => {
            for mode in MODES {
                for n in COUNTS {
                    let mut list = List {
                        designs: Vec::new(),
                    };
                    common::for_cases(&hooks, mode, n, &mut list);
                    for (design, n) in list.designs {
                        println!("{mode} {design} {n}");
                    }
                }
            }
            ExitCode::SUCCESS
        }
        [mode, design, n, times] => {
            let (Ok(n), Ok(times)) = (n.parse::<usize>(), times.parse::<u64>()) else {
                eprintln!("n and times are numbers: icount <mode> <design> <n> <times>");
                return ExitCode::FAILURE;
            };
            let mut run = Run {
                design,
                times,
                ran: false,
            };
            if !common::for_cases(&hooks, mode, n, &mut run) || !run.ran {
                eprintln!("no case {mode} {design} {n}: see `icount list`");
                return ExitCode::FAILURE;
            }
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!(
                "usage: icount list | icount <mode> <design> <n> <times>\n\
                 (run by benches/callgrind.sh under valgrind; nothing to do under cargo bench)"
            );
            ExitCode::SUCCESS
        }
    }
}
