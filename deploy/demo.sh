#!/usr/bin/env bash
# deploy/demo.sh - the one-command demo: stakeout watching a bundled service.
#
# Installs what is missing, builds, then starts three processes in a
# temporary directory: a local webhook receiver, the demo service
# (tests/targets/demo.c, process name stakeout-demo) and `stakeout run` with
# rules/demo.yaml (a private copy). The service runs normally, then has a
# CPU hot spot, then an error burst, then a memory leak. For each alert that
# reaches the receiver this prints the rule, the top functions (for the
# leak, the stack that holds the memory) and where the alert JSON and the
# flame graph are. Everything started here is stopped, by its pid, on exit
# or Ctrl-C.
#
#   STAKEOUT_DEMO_SECONDS   how long to run (default 90)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
seconds=${STAKEOUT_DEMO_SECONDS:-90}

./deploy/setup.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc 2>/dev/null || echo 2)" --target stakeout stakeout-demo receiver >/dev/null

work=$(mktemp -d /tmp/stakeout-demo.XXXXXX)
pids=()
cleanup() {
    trap - EXIT INT TERM
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    echo
    echo "stopped. Alerts, profiles and flame graphs stay in $work/spool"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$work/received" "$work/spool"

# 1. the receiver: a webhook endpoint on 127.0.0.1 that keeps what it gets
coproc RECV { exec ./build/tests/targets/receiver --port 0 --dir "$work/received"; }
pids+=("$RECV_PID")
read -r -t 10 word port <&"${RECV[0]}" || { echo "demo: the receiver did not start" >&2; exit 1; }
[ "$word" = listening ] || { echo "demo: unexpected receiver output: $word" >&2; exit 1; }

# 2. the demo service: normal for 10 s, a CPU hot spot for 15 s, an error burst for 15 s,
#    a leak of 64 KiB per request (3 MiB a second) for 30 s
./build/tests/targets/stakeout-demo --log "$work/app.log" --normal 10 --hot 15 --errors 15 \
    --leak 30 >"$work/demo.out" 2>&1 &
pids+=("$!")

# 3. stakeout, with the demo rules. A copy in $work (mktemp -d: ours alone):
#    stakeout refuses a rules file owned by another user (the checkout's
#    owner, under sudo) or that others could write or replace (a checkout
#    made with umask 002 is group-writable).
# Memory captures see the service's calls through the kernel's syscall
# tracepoints where they may (root: CAP_PERFMON), which live in tracefs.
if [ ! -d /sys/kernel/tracing/events/syscalls ] && [ "$(id -u)" -eq 0 ] &&
    mount -t tracefs nodev /sys/kernel/tracing 2>/dev/null; then
    echo "demo: mounted tracefs at /sys/kernel/tracing for memory captures"
fi
export STAKEOUT_DEMO_LOG="$work/app.log"
export STAKEOUT_DEMO_WEBHOOK="http://127.0.0.1:$port/hook"
export STAKEOUT_DEMO_SPOOL="$work/spool"
install -m 600 rules/demo.yaml "$work/rules.yaml"
./build/stakeout run -c "$work/rules.yaml" >"$work/stakeout.log" 2>&1 &
pids+=("$!")

echo "stakeout is watching the demo service (logs: $work/stakeout.log)."
echo "The service runs normally for 10 s, then burns CPU for 15 s, then logs errors for 15 s,"
echo "then leaks memory for 30 s."
echo

# 4. print each alert as the receiver gets it
show() {
    /usr/bin/python3 - "$1" "$work/spool" <<'PY'
import json, os, sys
body, spool = sys.argv[1], sys.argv[2]
with open(body) as f:
    b = json.load(f)
rule = (b.get("rule") or {}).get("name", b.get("kind", "?"))
target = b.get("target") or {}
print("ALERT  %-12s %-8s target=%s pid=%s" % (rule, b.get("state"), target.get("name"), target.get("pid")))
if b.get("state") == "firing":
    for o in (b.get("rule") or {}).get("observed") or []:
        print("       %s" % o.get("text"))
prof = b.get("profile") or {}
summ = prof.get("summary") or {}
top = [t for t in (summ.get("top_self") or []) if t["self_percent"] > 0]
stacks = summ.get("top_stacks") or []
if prof.get("type") == "memory" and stacks:
    s = stacks[0]
    mem = summ.get("memory") or {}
    print("       memory held by the top stack: %.1f MiB (%.0f%%), seen by %s"
          % (s["bytes"] / 1048576.0, s["share"] * 100, mem.get("method", "?")))
    print("       " + " < ".join(s["frames"][:10]))
elif top:
    print("       top functions: " + ", ".join("%s %.0f%%" % (t["name"], t["self_percent"]) for t in top[:5]))
elif prof:
    print("       profile: %s samples; the process was mostly waiting, not running" % prof.get("samples"))
elif b.get("capture_skipped"):
    print("       no profile: %s" % b["capture_skipped"])
d = os.path.join(spool, b["id"])
print("       alert JSON: %s" % os.path.join(d, "bundle.json"))
if os.path.exists(os.path.join(d, "flame.svg")):
    print("       flame graph: %s" % os.path.join(d, "flame.svg"))
print()
PY
}

deadline=$((SECONDS + seconds))
seen=0
while [ $SECONDS -lt $deadline ]; do
    for head in "$work"/received/*.head; do
        [ -e "$head" ] || continue
        n=$(basename "$head" .head)
        [ "$((10#$n))" -lt "$seen" ] && continue
        seen=$((10#$n + 1))
        show "$work/received/$n.body" || echo "demo: could not read $work/received/$n.body" >&2
    done
    if ! kill -0 "${pids[2]}" 2>/dev/null; then
        echo "demo: stakeout stopped; its log:" >&2
        tail -n 20 "$work/stakeout.log" >&2
        exit 1
    fi
    sleep 1
done
