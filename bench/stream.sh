#!/bin/bash
# Disk streaming benchmark: the dd|zstd|ssh baseline against migrate-vm stream.
#
#   bench/stream.sh [BUILD_DIR] [ROUNDS]   (root; builds BUILD_DIR if needed;
#                                           ROUNDS defaults to 3)
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
#   vmlift delta      after changing 1% of the 4 KiB blocks at random: migrate-vm stream --delta,
#                     once after a full copy with --seal (the destination is not read) and
#                     once after a full copy without (both disks are hashed)
#   source read floor a cold hash pass over the source alone (what any delta must read)
# Reported per case: wall seconds, bytes received by dst's interface (the
# wire), CPU seconds of the whole machine (both hosts and the controller
# share it), peak RSS of the controller and of each agent, and `cmp`.
# Every case runs once per round, the rounds one after another, so each
# vmlift case has a baseline measured minutes before it: the table gives the
# median over the rounds, and each ratio is the median of the per-round
# ratios with their range (this machine's speed drifts by tens of percent
# within minutes, so a single pair of runs can mislead either way).
set -euo pipefail
export LC_ALL=C
cd "$(dirname "$0")/.."
ROOT=$PWD
BUILD=${1:-build-bench}
ROUNDS=${2:-3}
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

declare -A WALL WIRE CPU RSS_C RSS_S RSS_R SAME FLOOR
ROUND=0
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
record() {  # record NAME T0 T1 WIRE_BYTES CPU_TICKS; keyed "NAME#ROUND"
    local k="$1#$ROUND"
    WALL[$k]=$(awk -v a="$2" -v b="$3" 'BEGIN {printf "%.1f", b - a}')
    WIRE[$k]=$(awk -v b="$4" 'BEGIN {printf "%.2f", b / 1073741824}')
    CPU[$k]=$(awk -v t="$5" 'BEGIN {printf "%.1f", t / 100}')
    RSS_C[$k]=$(awk '{printf "%d", $1 / 1024}' "$LAB/rss")
    local last
    last=$(tail -n 1 "$LAB/out")
    if [[ "$last" == *sender_usage* ]]; then
        RSS_S[$k]=$(echo "$last" | sed -E 's/.*"sender_usage":\{[^}]*"max_rss_kib":([0-9]+).*/\1/' | awk '{printf "%d", $1 / 1024}')
        RSS_R[$k]=$(echo "$last" | sed -E 's/.*"receiver_usage":\{[^}]*"max_rss_kib":([0-9]+).*/\1/' | awk '{printf "%d", $1 / 1024}')
        SAME[$k]=$(echo "$last" | sed -E 's/.*"bytes_written":([0-9]+).*/\1/')
    else
        RSS_S[$k]="-"; RSS_R[$k]="-"; SAME[$k]=""
    fi
    echo "bench: round $ROUND: $1: ${WALL[$k]} s, ${WIRE[$k]} GiB on the wire, ${CPU[$k]} CPU s" >&2
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

DELTA_SEALED="vmlift delta, sealed (1% changed)"
DELTA_HASHED="vmlift delta, destination hashed (1% changed)"
for ROUND in $(seq 1 "$ROUNDS"); do
    [ "$ROUND" = 1 ] || cp --sparse=always "$IMG" "$SRC"  # the last delta changed it
    run_case "baseline direct" "$SRC" contrib/lab/lab.sh exec --dir "$LAB" src -- \
        bash "$LAB/baseline-direct.sh"
    run_case "vmlift direct" "$SRC" "${MIGRATE[@]}" stream --src-host "$SRC_IP" \
        --dst-host "$DST_IP" --src-dev-path "$SRC" --dst-dev-path "$DST" --mode direct
    run_case "baseline relay" "$SRC" bash "$LAB/baseline-relay.sh"
    run_case "vmlift relay" "$SRC" "${MIGRATE[@]}" stream --src-host "$SRC_IP" \
        --dst-host "$DST_IP" --src-dev-path "$SRC" --dst-dev-path "$DST" --mode relay
    LOOPDEV=$(losetup --find --show --read-only "$SRC")
    run_case "vmlift direct, loop source" "$SRC" "${MIGRATE[@]}" stream --src-host "$SRC_IP" \
        --dst-host "$DST_IP" --src-dev-path "$LOOPDEV" --dst-dev-path "$DST" --mode direct
    run_case "vmlift relay, loop source" "$SRC" "${MIGRATE[@]}" stream --src-host "$SRC_IP" \
        --dst-host "$DST_IP" --src-dev-path "$LOOPDEV" --dst-dev-path "$DST" --mode relay
    losetup -d "$LOOPDEV"
    LOOPDEV=""

    # Delta: a full copy (with --seal, then without), then 1% of the 4 KiB
    # blocks changed at random, then --delta.
    for variant in seal hashed; do
        name="$DELTA_SEALED"; seal=(--seal); salt=0
        [ "$variant" = seal ] || { name="$DELTA_HASHED"; seal=(); salt=1000; }
        # Each from the pristine image onto a new file: the other delta's
        # scattered writes would leave both disks more fragmented.
        cp --sparse=always "$IMG" "$SRC"
        rm -f "$DST"
        "${MIGRATE[@]}" stream --src-host "$SRC_IP" --dst-host "$DST_IP" --src-dev-path "$SRC" \
            --dst-dev-path "$DST" --mode direct "${seal[@]}" > /dev/null 2>&1
        /usr/bin/python3 - "$SRC" $((ROUND + salt)) <<'PY'
import os, random, sys
path = sys.argv[1]
size = os.path.getsize(path)
blocks = size // 4096
rng = random.Random(20261123 + int(sys.argv[2]))
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
        grep -q "\"delta_baseline\":\"$variant\"" "$LAB/out" ||
            { echo "bench: the $variant delta did not run as $variant" >&2; exit 1; }
        record "$name" "$t0" "$t1" $((rx1 - rx0)) $((cpu1 - cpu0))
    done

    # The delta's floor: one cold read of the source's allocated data, hashed
    # at 4 KiB as the delta does (no network, no destination).
    sync
    echo 3 > /proc/sys/vm/drop_caches
    t0=$(date +%s.%N)
    contrib/lab/lab.sh exec --dir "$LAB" src -- "$(realpath "$BUILD/vmlift-agent")" hashes --path "$SRC" \
        --block-size 4096 --state "$LAB/floor-state.bin" > /dev/null
    t1=$(date +%s.%N)
    FLOOR[$ROUND]=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.1f", b - a}')
    echo "bench: round $ROUND: source read floor: ${FLOOR[$ROUND]} s" >&2
done

# median VALUES... (numbers, any order)
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {
    if (NR % 2) printf "%s", v[(NR + 1) / 2]; else printf "%.2f", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
per_round() {  # per_round ARRAY NAME: the values of NAME in every round
    local -n arr=$1
    local r
    for r in $(seq 1 "$ROUNDS"); do echo "${arr[$2#$r]}"; done
}
max_of() {  # the largest number among the arguments, "-" when there is none
    local m
    m=$(printf '%s\n' "$@" | grep -E '^[0-9.]+$' | sort -g | tail -n 1)
    echo "${m:--}"
}

cpu=$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)
echo "Machine: $(nproc) cores, $cpu; $(awk '/MemTotal/ {printf "%d GiB", $2/1048576}' /proc/meminfo); $(uname -r); $(date -u +%F)"
echo "Workload: 8 GiB image, $(awk -v b="$data_bytes" 'BEGIN {printf "%.2f", b / 1073741824}') GiB allocated (ext4 with files from /usr); $ROUNDS rounds"
echo
echo "| case | wall s, median (each round) | vs baseline, median (range) | wire GiB | CPU s, median | peak RSS MiB ctl / send / recv |"
echo "|---|---:|---:|---:|---:|---|"
for name in "baseline direct" "baseline relay" "vmlift direct" "vmlift relay" \
            "vmlift direct, loop source" "vmlift relay, loop source" "$DELTA_SEALED" \
            "$DELTA_HASHED"; do
    case "$name" in
        *relay*) base="baseline relay" ;;
        *) base="baseline direct" ;;
    esac
    walls=$(per_round WALL "$name" | paste -sd' ')
    ratios=()
    for r in $(seq 1 "$ROUNDS"); do
        ratios+=("$(awk -v a="${WALL[$base#$r]}" -v b="${WALL[$name#$r]}" 'BEGIN {printf "%.2f", a / b}')")
    done
    lo=$(printf '%s\n' "${ratios[@]}" | sort -g | head -n 1)
    hi=$(printf '%s\n' "${ratios[@]}" | sort -g | tail -n 1)
    ratio="$(median "${ratios[@]}")x ($lo–$hi)"
    [[ "$name" != *delta* ]] || ratio="– (see below)"
    # shellcheck disable=SC2046
    echo "| $name | $(median $walls) ($walls) | $ratio |" \
         "$(median $(per_round WIRE "$name")) | $(median $(per_round CPU "$name")) |" \
         "$(max_of $(per_round RSS_C "$name")) / $(max_of $(per_round RSS_S "$name")) / $(max_of $(per_round RSS_R "$name")) |"
done
for delta in "$DELTA_SEALED" "$DELTA_HASHED"; do
    pcts=(); times=()
    for r in $(seq 1 "$ROUNDS"); do
        pcts+=("$(awk -v w="${SAME[$delta#$r]}" 'BEGIN {printf "%.2f", 100 * w / 8589934592}')")
        times+=("$(awk -v d="${WALL[$delta#$r]}" -v f="${WALL[vmlift direct#$r]}" 'BEGIN {printf "%.0f", 100 * d / f}')")
    done
    echo
    echo "${delta%% (*}: wrote $(median "${pcts[@]}")% of the disk (median; each round: ${pcts[*]})" \
         "and took $(median "${times[@]}")% of the same round's full direct copy (each round: ${times[*]})."
done
floors=()
for r in $(seq 1 "$ROUNDS"); do
    floors+=("$(awk -v d="${FLOOR[$r]}" -v f="${WALL[vmlift direct#$r]}" 'BEGIN {printf "%.0f", 100 * d / f}')")
done
echo
echo "Reading and hashing the source alone, cold, took $(median "${FLOOR[@]}") s, that is" \
     "$(median "${floors[@]}")% of the same round's full direct copy (each round: ${floors[*]}):" \
     "the floor of any delta without change tracking."
