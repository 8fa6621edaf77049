#!/bin/bash
# The main job in the local lab. Installs what is missing, builds, starts
# two lab hosts ("pve" and "truenas": network namespaces with their own
# sshd) and runs migrate-vm against them with progress on screen.
#
# Today the main job is `migrate-vm ssh-check`: it connects to both hosts
# with strict host key checking, runs a command, streams 256 MiB through
# each and verifies the checksums. It grows into a full VM migration as the
# stream, connector and run stages land.
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
    echo "demo: lab removed"
    exit 0
fi

contrib/install-deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DVMLIFT_WERROR=OFF -DVMLIFT_BUILD_TESTS=OFF >/dev/null
cmake --build build -j "$(nproc)"

# A re-run starts from a fresh lab; nothing to clean by hand.
contrib/lab/lab.sh destroy --dir "$LAB" 2>/dev/null || true
contrib/lab/lab.sh gc
contrib/lab/lab.sh create --dir "$LAB" --owner-pid 1 pve truenas >/dev/null
# shellcheck disable=SC1091
. "$LAB/lab.env"
echo "demo: lab hosts pve=$HOST_pve_IP truenas=$HOST_truenas_IP (controller $CONTROLLER_IP)"

build/migrate-vm \
    --identity-file "$LAB/client/id_ed25519" \
    --known-hosts "$LAB/client/known_hosts" \
    --run-dir "$RUNS" \
    ssh-check --host "$HOST_pve_IP" --host "$HOST_truenas_IP" --bytes $((256 * 1024 * 1024))

latest=$(ls -1d "$RUNS"/*/ | tail -n 1)
echo "demo: run directory $latest (status: $(cat "$latest/status"))"
echo "demo: the lab stays up for exploration; remove it with contrib/demo.sh --clean"
