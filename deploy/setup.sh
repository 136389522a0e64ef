#!/usr/bin/env bash
# deploy/setup.sh - install every build and test dependency of stakeout on Debian 12.
#
# Idempotent: packages already installed are skipped, and apt-get runs only when
# something is missing. Needs root (or sudo) only when it has something to install.
set -euo pipefail

# Build: compiler, CMake, pkg-config and the -dev packages found with pkg-config.
# Tests: Criterion, clang's libFuzzer runtime, Go's pprof (golang-go) to read our
# pprof output back, yamllint for the manifests, procps/util-linux for test targets,
# capsh (libcap2-bin) to run a memory capture without the perf capabilities,
# systemd-analyze and systemd-sysusers (systemd; nothing is started) for the unit.
# Packaging: dpkg-shlibdeps (dpkg-dev) and file, which cpack -G DEB runs for the
# .deb's Depends; mount for the throwaway root the .deb is installed in.
# Benchmarks: linux-perf (the sampler is measured against perf record).
PACKAGES=(
    build-essential cmake pkg-config clang libclang-rt-14-dev
    libproc2-dev libcurl4-openssl-dev libyaml-dev libunwind-dev libcriterion-dev
    libpcre2-dev zlib1g-dev libssl-dev libjansson-dev libprotobuf-c-dev
    protobuf-c-compiler libmicrohttpd-dev libcap-dev libelf-dev libdw-dev
    libiberty-dev
    golang-go yamllint procps util-linux libcap2-bin python3 python3-yaml python3-jsonschema
    systemd dpkg-dev file mount
    curl ca-certificates linux-perf
)

missing=()
for p in "${PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$p")
    fi
done

if [ ${#missing[@]} -eq 0 ]; then
    echo "setup: all ${#PACKAGES[@]} packages present"
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO="sudo"
    else
        echo "setup: missing packages (${missing[*]}) and not root; run as root" >&2
        exit 1
    fi
fi

echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
