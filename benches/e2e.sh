#!/bin/sh
# End to end (BENCHMARKS.md, item 3): the contacts service with its hooks and with `--no-hooks`,
# driven over 127.0.0.1 by a load generator in a second process, both modes in one run.
#
#   benches/e2e.sh                                # 4 rounds (on/off, off/on, ...), SQLite in memory
#   benches/e2e.sh --callgrind 500 --warmup 200   # instructions per request, under callgrind
#   benches/e2e.sh --rounds 1 --db file           # any flag of the generator; see --help
#
# Builds the release binary and the generator (examples/contacts/examples/e2e_load.rs) in
# $CARGO_TARGET_DIR (default: target), then runs the generator, which starts and stops the service.
set -eu
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-target}"
cargo build --release -p contacts --bins --examples
if [ "$#" -eq 0 ]; then
    set -- --rounds 4
fi
exec "$target/release/examples/e2e_load" --server "$target/release/contacts" "$@"
