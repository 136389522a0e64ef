#!/usr/bin/env bash
# tests/run.sh - the one test command (README, .ci/run).
#
# Installs whatever is missing (deploy/setup.sh), builds warning-free, runs
# every test through ctest (package_check among them: the .deb built with
# cpack -G DEB, checked with dpkg-deb and installed in a throwaway root),
# builds and runs the suite again under AddressSanitizer +
# UndefinedBehaviorSanitizer (without package_check: a release build is what
# gets packaged), then runs each libFuzzer target for a bounded time. Any
# failure stops the run with a non-zero exit.
#
#   STAKEOUT_FUZZ_SECONDS   seconds per fuzz target (default 20; 0 skips)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
jobs=$(nproc 2>/dev/null || echo 2)
fuzz_seconds=${STAKEOUT_FUZZ_SECONDS:-20}

step() { printf '\n==== %s\n' "$*"; }

step "setup: dependencies"
./deploy/setup.sh

step "build (RelWithDebInfo, -Werror)"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSTAKEOUT_WERROR=ON >/dev/null
cmake --build build -j"$jobs"

step "tests"
ctest --test-dir build --output-on-failure -V

step "build with AddressSanitizer + UndefinedBehaviorSanitizer"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DSTAKEOUT_SANITIZE=ON -DSTAKEOUT_WERROR=ON >/dev/null
cmake --build build-asan -j"$jobs"

# Any sanitizer report ends the process that made it with SIGABRT (the
# build does not recover), never with an exit code a test could expect
# (stakeout's own 1 for bad input).
sanitizer_env=(ASAN_OPTIONS=abort_on_error=1:detect_leaks=1
               UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:abort_on_error=1)

step "tests under ASan + UBSan"
env "${sanitizer_env[@]}" ctest --test-dir build-asan --output-on-failure -V

if [ "$fuzz_seconds" -gt 0 ]; then
    step "fuzz (${fuzz_seconds}s per target)"
    CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSTAKEOUT_FUZZ=ON >/dev/null
    cmake --build build-fuzz -j"$jobs"
    for target in fuzz_config fuzz_expr; do
        corpus=build-fuzz/corpus-$target
        mkdir -p "$corpus"
        # seeds: the shipped rules, the test corpus, inputs that once failed;
        # libFuzzer adds to the copy
        cp tests/fuzz/seeds/"$target"/* "$corpus"/ 2>/dev/null || true
        if [ "$target" = fuzz_config ]; then
            cp rules/*.yaml rules/examples/*.yaml tests/config/*/*.yaml "$corpus"/ 2>/dev/null || true
        else
            i=0
            while IFS= read -r line; do
                printf '%s' "$line" > "$corpus/seed-$i"; i=$((i + 1))
            done < <(grep -rhoE "(when|resolve_when): .*" rules tests/config | sed -E "s/^[a-z_]+: //; s/^'(.*)'\$/\\1/")
        fi
        log=build-fuzz/$target.log
        # any sanitizer report stops the fuzzer (the build does not recover);
        # the grep is the net under that net
        if ! env "${sanitizer_env[@]}" \
            "build-fuzz/tests/fuzz/$target" -max_total_time="$fuzz_seconds" -timeout=10 \
            -rss_limit_mb=2048 -print_final_stats=1 "$corpus" >"$log" 2>&1 ||
            grep -qE 'runtime error|Sanitizer' "$log"; then
            tail -n 60 "$log"
            echo "run.sh: $target found a failure; the input is in build-fuzz/ (crash-*)" >&2
            exit 1
        fi
        grep -E '^(Done|stat::number_of_executed_units)' "$log" || tail -n 3 "$log"
    done
fi

step "all tests passed"
