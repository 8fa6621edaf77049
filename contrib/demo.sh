#!/bin/bash
# The main job in the local lab: a real Linux guest migrated from a
# (simulated) Proxmox VE host to a (simulated) TrueNAS SCALE host, booted
# there under QEMU with its new virtual hardware, and verified on its old IP.
#
# Installs what is missing, builds, builds the guest image once (Debian 12 by
# debootstrap, cached in /var/tmp/vmlift-guest), makes the lab (hosts "pve"
# and "truenas", network namespaces with their own sshd), starts both
# simulators and runs `migrate-vm run ... --yes` with progress on screen
# (contrib/lab/full-migration.sh), then prints the summary.
#
#   contrib/demo.sh           set up (if needed) and run
#   contrib/demo.sh --clean   remove the lab and the demo's runs
set -euo pipefail
cd "$(dirname "$0")/.."
export LC_ALL=C
LAB=$PWD/.lab/demo
RUNS=$PWD/runs/demo

[ "$(id -u)" = 0 ] || { echo "demo: run as root (the lab uses network namespaces)" >&2; exit 1; }

if [ "${1:-}" = --clean ]; then
    contrib/lab/lab.sh destroy --dir "$LAB" 2>/dev/null || true
    rm -rf "$LAB" "$RUNS"
    echo "demo: lab removed (the cached guest image stays in /var/tmp/vmlift-guest)"
    exit 0
fi

start=$(date +%s)
contrib/install-deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DVMLIFT_WERROR=OFF -DVMLIFT_BUILD_TESTS=OFF >/dev/null
cmake --build build -j "$(nproc)"

contrib/lab/full-migration.sh --lab "$LAB" --runs "$RUNS"
# shellcheck disable=SC1091
. "$LAB/scenario.env"
echo
cat "$RUN/summary.md"
echo
echo "demo: the guest answers on $GUEST_IP port 22 from the controller (verified above)"
echo "demo: run directory $RUN; guest console $CONSOLE"
echo "demo: finished in $(( $(date +%s) - start )) s; the lab stays up for exploration"
echo "demo: remove it with contrib/demo.sh --clean"
