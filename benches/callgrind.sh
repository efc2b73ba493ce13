#!/usr/bin/env bash
# Instructions per dispatch, under callgrind: every case of benches/icount.rs (the same cases as
# benches/dispatch.rs) is run K and 2K times, and (Ir(2K) - Ir(K)) / K is printed, which cancels
# start-up (loading, the table build, registries, the first resolve of a slot). Instruction counts
# do not move with the load on a shared machine, unlike times.
#
#   benches/callgrind.sh                  every case
#   benches/callgrind.sh sync_call        the cases whose line in `icount list` matches
#   K=20000 JOBS=2 benches/callgrind.sh   iterations and parallel valgrind runs
#
# Output: a table on stdout, and the same as TSV in $CARGO_TARGET_DIR/icount.tsv (read by
# benches/report.py; a filtered run replaces only its own cases there). Needs valgrind; no
# network.
set -euo pipefail
cd "$(dirname "$0")/.."
K=${K:-20000}
JOBS=${JOBS:-2}
FILTER=${1:-}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target}
command -v valgrind >/dev/null || { echo "callgrind.sh: valgrind is not installed" >&2; exit 1; }

bin=$(cargo bench --bench icount --no-run --message-format=json 2>/dev/null |
    python3 -c 'import json,sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "icount" and m.get("executable"):
        print(m["executable"])')
[ -x "$bin" ] || { echo "callgrind.sh: could not build the icount bench" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# One valgrind run: prints "mode design n times Ir".
run_one() {
    local bin=$1 mode=$2 design=$3 n=$4 times=$5 work=$6
    local out="$work/cg.$mode.$design.$n.$times"
    valgrind --tool=callgrind --callgrind-out-file="$out" "$bin" "$mode" "$design" "$n" "$times" \
        >/dev/null 2>"$out.log" || { echo "failed: $mode $design $n $times" >&2; cat "$out.log" >&2; return 1; }
    echo "$mode $design $n $times $(awk '/^summary:/ {print $2}' "$out")"
}
export -f run_one

"$bin" list | grep -e "$FILTER" | while read -r mode design n; do
    echo "$bin $mode $design $n $K $work"
    echo "$bin $mode $design $n $((2 * K)) $work"
done | xargs -P "$JOBS" -L 1 bash -c 'run_one "$@"' _ >"$work/raw"

python3 - "$work/raw" "$K" "$CARGO_TARGET_DIR/icount.tsv" "$("$bin" list | grep -e "$FILTER")" <<'PY'
import sys
raw, k, tsv, order = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
runs = {}
for line in open(raw):
    mode, design, n, times, ir = line.split()
    runs[(mode, design, int(n), int(times))] = int(ir)
rows = []
for line in order.splitlines():
    mode, design, n = line.split()
    n = int(n)
    per = (runs[(mode, design, n, 2 * k)] - runs[(mode, design, n, k)]) / k
    rows.append((mode, design, n, per))
# Keep the cases of an earlier run that this one (with a filter) did not repeat.
merged = {}
try:
    with open(tsv) as f:
        next(f)
        for line in f:
            mode, design, n, per = line.split("\t")
            merged[(mode, design, int(n))] = float(per)
except (FileNotFoundError, StopIteration, ValueError):
    pass
for mode, design, n, per in rows:
    merged[(mode, design, n)] = per
with open(tsv, "w") as f:
    f.write("mode\tdesign\tn\tinstructions\n")
    for (mode, design, n), per in merged.items():
        f.write(f"{mode}\t{design}\t{n}\t{per:.1f}\n")
print(f"instructions per dispatch ((Ir(2K) - Ir(K)) / K, K = {k})")
modes = list(dict.fromkeys(r[0] for r in rows))
for mode in modes:
    designs = list(dict.fromkeys(r[1] for r in rows if r[0] == mode))
    counts = sorted({r[2] for r in rows if r[0] == mode})
    print(f"\n{mode}")
    print(f"  {'design':<10}" + "".join(f"{'N=' + str(n):>10}" for n in counts))
    for d in designs:
        cells = {r[2]: r[3] for r in rows if r[0] == mode and r[1] == d}
        print(f"  {d:<10}" + "".join(f"{cells.get(n, float('nan')):>10.1f}" for n in counts))
print(f"\n(written to {tsv})")
PY
