#!/bin/bash
# Disk streaming benchmark: the dd|zstd|ssh baseline against migrate-vm stream.
#
#   bench/stream.sh [BUILD_DIR]          (root; builds BUILD_DIR if needed)
#
# Workload (built once, cached in $VMLIFT_BENCH_DIR, default /var/tmp/vmlift-bench):
# an 8 GiB raw image holding an ext4 filesystem with about 2.6 GiB of real
# files copied from /usr (lib/x86_64-linux-gnu, share, lib/gcc, bin); the
# rest was never written. It is copied onto lab host "src" and each case
# copies it to a new file on lab host "dst" (both network namespaces on this
# machine), with the page cache dropped before every case.
#
# Cases, all in one run:
#   baseline direct  on src: dd if=IMG bs=4M | zstd -T0 -3 | ssh dst "zstd -dc | dd of=DST bs=4M conv=sparse"
#   baseline relay   on the controller: ssh src "dd | zstd -T0 -3" | ssh dst "zstd -dc | dd conv=sparse"
#   vmlift direct / relay              migrate-vm stream (agent transport, defaults)
#   vmlift direct / relay, loop source the image attached as a loop device (no SEEK_DATA)
#   vmlift delta      after changing 1% of the 4 KiB blocks at random: migrate-vm stream --delta
# Reported per case: wall seconds, bytes received by dst's interface (the
# wire), CPU seconds of the whole machine (both hosts and the controller
# share it), peak RSS of the controller and of each agent, and `cmp`.
set -euo pipefail
export LC_ALL=C
cd "$(dirname "$0")/.."
ROOT=$PWD
BUILD=${1:-build-bench}
WORK=${VMLIFT_BENCH_DIR:-/var/tmp/vmlift-bench}
IMG=$WORK/ref-8g.img

[ "$(id -u)" = 0 ] || { echo "bench: run as root" >&2; exit 1; }
contrib/install-deps.sh >/dev/null
if [ ! -x "$BUILD/migrate-vm" ]; then
    cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DVMLIFT_WERROR=OFF \
        -DVMLIFT_BUILD_TESTS=OFF >/dev/null
fi
cmake --build "$BUILD" >/dev/null

mkdir -p "$WORK"
if [ ! -f "$IMG.ready" ]; then
    echo "bench: building the reference image (once)" >&2
    rm -f "$IMG" "$IMG.tmp"
    truncate -s 8G "$IMG.tmp"
    mkfs.ext4 -q -F "$IMG.tmp"
    mnt=$(mktemp -d)
    mount -o loop "$IMG.tmp" "$mnt"
    mkdir -p "$mnt/usr/lib"
    cp -a /usr/lib/x86_64-linux-gnu /usr/lib/gcc "$mnt/usr/lib/"
    cp -a /usr/share /usr/bin "$mnt/usr/"
    umount "$mnt"
    rmdir "$mnt"
    mv "$IMG.tmp" "$IMG"
    touch "$IMG.ready"
fi

LAB=$(mktemp -d /tmp/vmlift-bench-lab-XXXXXX)
LOOPDEV=""
cleanup() {
    [ -n "$LOOPDEV" ] && losetup -d "$LOOPDEV" 2>/dev/null || true
    contrib/lab/lab.sh destroy --dir "$LAB" >/dev/null 2>&1 || true
    rm -rf "$LAB"
}
trap cleanup EXIT
contrib/lab/lab.sh create --dir "$LAB" --owner-pid $$ src dst >/dev/null
# shellcheck disable=SC1091
. "$LAB/lab.env"
SRC_IP=$HOST_src_IP
DST_IP=$HOST_dst_IP
KEY=$LAB/client/id_ed25519
KH=$LAB/client/known_hosts
SRC=$HOST_src_DISKS/ref.img
DST=$HOST_dst_DISKS/copy.img
cp --sparse=always "$IMG" "$SRC"
SSH=(ssh -F /dev/null -i "$KEY" -o IdentitiesOnly=yes -o UserKnownHostsFile="$KH" -o BatchMode=yes)
MIGRATE=("$BUILD/migrate-vm" --json --identity-file "$KEY" --known-hosts "$KH"
         --migration-key-path "$KEY" --run-dir "$LAB/runs")
data_bytes=$(du -B1 "$SRC" | cut -f1)

rx_bytes() { ip netns exec "$HOST_dst_NS" cat /sys/class/net/eth0/statistics/rx_bytes; }
busy_ticks() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8}' /proc/stat; }

declare -A WALL WIRE CPU RSS_C RSS_S RSS_R SAME
run_case() {  # run_case NAME SOURCE_PATH CMD...
    local name=$1 source=$2
    shift 2
    rm -f "$DST"
    sync
    echo 3 > /proc/sys/vm/drop_caches
    local rx0 cpu0 t0 t1 rx1 cpu1
    rx0=$(rx_bytes); cpu0=$(busy_ticks); t0=$(date +%s.%N)
    /usr/bin/time -f "%M" -o "$LAB/rss" "$@" > "$LAB/out" 2> "$LAB/err" || {
        echo "bench: case '$name' failed:" >&2; tail -5 "$LAB/err" >&2; exit 1; }
    t1=$(date +%s.%N); rx1=$(rx_bytes); cpu1=$(busy_ticks)
    cmp "$source" "$DST" || { echo "bench: case '$name': copy differs" >&2; exit 1; }
    record "$name" "$t0" "$t1" $((rx1 - rx0)) $((cpu1 - cpu0))
}
record() {  # record NAME T0 T1 WIRE_BYTES CPU_TICKS
    WALL[$1]=$(awk -v a="$2" -v b="$3" 'BEGIN {printf "%.1f", b - a}')
    WIRE[$1]=$(awk -v b="$4" 'BEGIN {printf "%.2f", b / 1073741824}')
    CPU[$1]=$(awk -v t="$5" 'BEGIN {printf "%.1f", t / 100}')
    RSS_C[$1]=$(awk '{printf "%d", $1 / 1024}' "$LAB/rss")
    local last
    last=$(tail -n 1 "$LAB/out")
    if [[ "$last" == *sender_usage* ]]; then
        RSS_S[$1]=$(echo "$last" | sed -E 's/.*"sender_usage":\{[^}]*"max_rss_kib":([0-9]+).*/\1/' | awk '{printf "%d", $1 / 1024}')
        RSS_R[$1]=$(echo "$last" | sed -E 's/.*"receiver_usage":\{[^}]*"max_rss_kib":([0-9]+).*/\1/' | awk '{printf "%d", $1 / 1024}')
        SAME[$1]=$(echo "$last" | sed -E 's/.*"bytes_written":([0-9]+).*/\1/')
    else
        RSS_S[$1]="-"; RSS_R[$1]="-"; SAME[$1]=""
    fi
    echo "bench: $1: ${WALL[$1]} s, ${WIRE[$1]} GiB on the wire, ${CPU[$1]} CPU s" >&2
}

BASE_RECV="zstd -q -dc | dd of=$DST bs=4M conv=sparse status=none"
BASE_SEND="dd if=$SRC bs=4M status=none | zstd -q -T0 -3 -c"
{   # direct: runs on src and pipes into src's own ssh to dst
    echo 'set -o pipefail'
    printf '%s | ' "$BASE_SEND"
    printf '%q ' "${SSH[@]}" "root@$DST_IP" "$BASE_RECV"
    echo
} > "$LAB/baseline-direct.sh"
{   # relay: the controller joins two ssh legs
    echo 'set -o pipefail'
    printf '%q ' "${SSH[@]}" "root@$SRC_IP" "$BASE_SEND"
    printf '| '
    printf '%q ' "${SSH[@]}" "root@$DST_IP" "$BASE_RECV"
    echo
} > "$LAB/baseline-relay.sh"
run_case "baseline direct" "$SRC" contrib/lab/lab.sh exec --dir "$LAB" src -- \
    bash "$LAB/baseline-direct.sh"
run_case "baseline relay" "$SRC" bash "$LAB/baseline-relay.sh"
run_case "vmlift direct" "$SRC" "${MIGRATE[@]}" stream --src-host "$SRC_IP" --dst-host "$DST_IP" \
    --src-dev-path "$SRC" --dst-dev-path "$DST" --mode direct
run_case "vmlift relay" "$SRC" "${MIGRATE[@]}" stream --src-host "$SRC_IP" --dst-host "$DST_IP" \
    --src-dev-path "$SRC" --dst-dev-path "$DST" --mode relay
LOOPDEV=$(losetup --find --show --read-only "$SRC")
run_case "vmlift direct, loop source" "$SRC" "${MIGRATE[@]}" stream --src-host "$SRC_IP" \
    --dst-host "$DST_IP" --src-dev-path "$LOOPDEV" --dst-dev-path "$DST" --mode direct
run_case "vmlift relay, loop source" "$SRC" "${MIGRATE[@]}" stream --src-host "$SRC_IP" \
    --dst-host "$DST_IP" --src-dev-path "$LOOPDEV" --dst-dev-path "$DST" --mode relay
losetup -d "$LOOPDEV"
LOOPDEV=""

# Delta: a full copy, then 1% of the 4 KiB blocks changed at random, then --delta.
"${MIGRATE[@]}" stream --src-host "$SRC_IP" --dst-host "$DST_IP" --src-dev-path "$SRC" \
    --dst-dev-path "$DST" --mode direct > /dev/null 2>&1
/usr/bin/python3 - "$SRC" <<'PY'
import os, random, sys
path = sys.argv[1]
size = os.path.getsize(path)
blocks = size // 4096
rng = random.Random(20261123)
with open(path, "r+b") as f:
    for b in rng.sample(range(blocks), blocks // 100):
        f.seek(b * 4096)
        f.write(os.urandom(4096))
PY
sync
echo 3 > /proc/sys/vm/drop_caches
rx0=$(rx_bytes); cpu0=$(busy_ticks); t0=$(date +%s.%N)
/usr/bin/time -f "%M" -o "$LAB/rss" "${MIGRATE[@]}" stream --src-host "$SRC_IP" \
    --dst-host "$DST_IP" --src-dev-path "$SRC" --dst-dev-path "$DST" --mode direct --delta \
    > "$LAB/out" 2> "$LAB/err" || { tail -5 "$LAB/err" >&2; exit 1; }
t1=$(date +%s.%N); rx1=$(rx_bytes); cpu1=$(busy_ticks)
cmp "$SRC" "$DST" || { echo "bench: delta copy differs" >&2; exit 1; }
record "vmlift delta (1% changed)" "$t0" "$t1" $((rx1 - rx0)) $((cpu1 - cpu0))

cpu=$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)
echo "Machine: $(nproc) cores, $cpu; $(awk '/MemTotal/ {printf "%d GiB", $2/1048576}' /proc/meminfo); $(uname -r); $(date -u +%F)"
echo "Workload: 8 GiB image, $(awk -v b="$data_bytes" 'BEGIN {printf "%.2f", b / 1073741824}') GiB allocated (ext4 with files from /usr)"
echo
echo "| case | wall s | vs baseline | wire GiB | CPU s | RSS MiB ctl / send / recv |"
echo "|---|---:|---:|---:|---:|---|"
for name in "baseline direct" "baseline relay" "vmlift direct" "vmlift relay" \
            "vmlift direct, loop source" "vmlift relay, loop source" "vmlift delta (1% changed)"; do
    case "$name" in
        *relay*) base="baseline relay" ;;
        *) base="baseline direct" ;;
    esac
    ratio=$(awk -v a="${WALL[$base]}" -v b="${WALL[$name]}" 'BEGIN {printf "%.2fx", a / b}')
    echo "| $name | ${WALL[$name]} | $ratio | ${WIRE[$name]} | ${CPU[$name]} | ${RSS_C[$name]} / ${RSS_S[$name]} / ${RSS_R[$name]} |"
done
delta_pct=$(awk -v w="${SAME["vmlift delta (1% changed)"]}" 'BEGIN {printf "%.2f", 100 * w / 8589934592}')
delta_time=$(awk -v d="${WALL["vmlift delta (1% changed)"]}" -v f="${WALL["vmlift direct"]}" 'BEGIN {printf "%.0f", 100 * d / f}')
echo
echo "Delta re-sync wrote ${delta_pct}% of the disk and took ${delta_time}% of a full direct copy's time."
