#!/usr/bin/env bash
# tests/bench/run.sh - build in Release and run every benchmark; the figures
# it prints are the ones the README quotes.
#
#   tests/bench/run.sh            all benchmarks
#   tests/bench/run.sh NAME...    only these (bench_engine, bench_poll, ...)
#
# The machine is shared and noisy: every benchmark measures its reference in
# the same run and reports ratios against it.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
./deploy/setup.sh >/dev/null
cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build-bench -j"$(nproc 2>/dev/null || echo 2)" >/dev/null

benches=("$@")
if [ ${#benches[@]} -eq 0 ]; then
    for f in tests/bench/bench_*.c tests/bench/bench_*.sh; do
        [ -e "$f" ] || continue
        n=$(basename "$f"); benches+=("${n%.*}")
    done
fi
for b in "${benches[@]}"; do
    echo "==== $b"
    if [ -x "tests/bench/$b.sh" ]; then
        STAKEOUT_BUILD=build-bench "tests/bench/$b.sh"
    else
        "build-bench/tests/bench/$b"
    fi
done
