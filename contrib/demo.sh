#!/bin/bash
# The main job in the local lab. Installs what is missing, builds, starts
# two lab hosts ("pve" and "truenas": network namespaces with their own
# sshd) and runs migrate-vm against them with progress on screen.
#
# Today the main job is a real disk copy: a 4 GiB VM disk image (an ext4
# filesystem holding files from /usr/share and /usr/include, built once and
# cached) on "pve" is streamed with `migrate-vm stream` to "truenas" (auto
# mode: direct when the hosts reach each other), verified chunk by chunk and
# by whole-disk digest, then compared byte for byte with cmp. It grows into a
# full VM migration as the connector and run stages land.
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

# The VM disk: built once (about 1 GiB of real files in a 4 GiB image).
CACHE=/var/tmp/vmlift-demo
IMAGE=$CACHE/vm-disk.img
if [ ! -f "$IMAGE.ready" ]; then
    echo "demo: building the demo VM disk (once)"
    mkdir -p "$CACHE"
    rm -f "$IMAGE"
    truncate -s 4G "$IMAGE"
    mkfs.ext4 -q -F -L demo-root "$IMAGE"
    mnt=$(mktemp -d)
    mount -o loop "$IMAGE" "$mnt"
    mkdir -p "$mnt/usr"
    cp -a /usr/share /usr/include "$mnt/usr/"
    umount "$mnt"
    rmdir "$mnt"
    touch "$IMAGE.ready"
fi
SRC=$HOST_pve_DISKS/vm-101-disk-0.raw
DST=$HOST_truenas_DISKS/vm-101-disk-0.zvol
cp --sparse=always "$IMAGE" "$SRC"

M=(build/migrate-vm --identity-file "$LAB/client/id_ed25519"
   --known-hosts "$LAB/client/known_hosts" --run-dir "$RUNS")
"${M[@]}" ssh-check --host "$HOST_pve_IP" --host "$HOST_truenas_IP" --bytes $((64 * 1024 * 1024))
"${M[@]}" --migration-key-path "$LAB/client/id_ed25519" \
    stream --src-host "$HOST_pve_IP" --dst-host "$HOST_truenas_IP" \
    --src-dev-path "$SRC" --dst-dev-path "$DST" --mode auto --verify-readback
cmp "$SRC" "$DST"
echo "demo: cmp: the copy on truenas is identical to the disk on pve"

latest=$(ls -1d "$RUNS"/*/ | tail -n 1)
echo "demo: run directory $latest (status: $(cat "$latest/status"))"
echo "demo: the lab stays up for exploration; remove it with contrib/demo.sh --clean"
