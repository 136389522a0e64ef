#!/usr/bin/env bash
# deploy/demo.sh - the one-command demo: stakeout on a bundled default.
#
# Installs what is missing, builds, and checks the demo rules. The daemon
# (`stakeout run`), the demo service and the local receiver arrive with the
# daemon issue; until then this shows what the demo will watch for.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

./deploy/setup.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc 2>/dev/null || echo 2)" --target stakeout >/dev/null

echo
echo "stakeout $(./build/stakeout version | cut -d' ' -f2): checking the demo rules"
./build/stakeout check rules/demo.yaml
echo
echo "Still to come in this demo: the demo service with a CPU hot spot and an"
echo "error burst, a local receiver, and 'stakeout run -c rules/demo.yaml'"
echo "printing each alert with its top functions and flame graph."
