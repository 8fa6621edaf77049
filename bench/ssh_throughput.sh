#!/bin/bash
# SSH bulk throughput: pipe 2 GiB through `cat` on a lab host and back.
#
#   bench/ssh_throughput.sh [BUILD_DIR]      (root; builds BUILD_DIR if needed)
#
# Compared in the same run:
#   baseline  stock OpenSSH pipeline, default cipher:
#             dd if=/dev/zero bs=4M | ssh HOST cat | dd of=/dev/null bs=4M
#   openssh   vmlift's OpenSSH backend (ControlMaster, AES-GCM preferred)
#   libssh2   vmlift's libssh2 backend (in-process, aes128-ctr + hmac-sha2-256)
# Each runs 3 times; the median MB/s (10^6 bytes/s, bytes counted once) and
# the ratio to the baseline are printed as a markdown table.
set -euo pipefail
export LC_ALL=C
cd "$(dirname "$0")/.."
BUILD=${1:-build-bench}
BYTES=$((2 * 1024 * 1024 * 1024))
RUNS=3

[ "$(id -u)" = 0 ] || { echo "bench: run as root (the lab needs it)" >&2; exit 1; }
if [ ! -x "$BUILD/vmlift-bench-ssh" ]; then
    cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DVMLIFT_WERROR=OFF -DVMLIFT_BUILD_TESTS=OFF >/dev/null
    cmake --build "$BUILD" --target vmlift-bench-ssh >/dev/null
fi

LAB=$(mktemp -d /tmp/vmlift-bench-lab-XXXXXX)
trap 'contrib/lab/lab.sh destroy --dir "$LAB" >/dev/null 2>&1 || true; rm -rf "$LAB"' EXIT
contrib/lab/lab.sh create --dir "$LAB" --owner-pid $$ bench >/dev/null
# shellcheck disable=SC1091
. "$LAB/lab.env"
HOST=$HOST_bench_IP
KEY=$LAB/client/id_ed25519
KH=$LAB/client/known_hosts

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

baseline_once() {
    local start end
    start=$(date +%s.%N)
    dd if=/dev/zero bs=4M count=$((BYTES / 4194304)) status=none |
        ssh -F /dev/null -i "$KEY" -o IdentitiesOnly=yes -o UserKnownHostsFile="$KH" \
            -o BatchMode=yes "root@$HOST" cat |
        dd of=/dev/null bs=4M status=none
    end=$(date +%s.%N)
    awk -v b="$BYTES" -v s="$start" -v e="$end" 'BEGIN {printf "%.1f\n", b / (e - s) / 1e6}'
}

backend_once() {
    "$BUILD/vmlift-bench-ssh" --host "$HOST" --identity-file "$KEY" --known-hosts "$KH" \
        --backend "$1" --bytes "$BYTES" |
        sed -E 's/.*"mb_per_sec":([0-9.]+).*/\1/' | awk '{printf "%.1f\n", $1}'
}

declare -A RESULT
for name in baseline openssh libssh2; do
    samples=()
    for _ in $(seq 1 $RUNS); do
        if [ "$name" = baseline ]; then
            samples+=("$(baseline_once)")
        else
            samples+=("$(backend_once "$name")")
        fi
    done
    RESULT[$name]=$(printf '%s\n' "${samples[@]}" | median)
    echo "bench: $name runs: ${samples[*]} MB/s" >&2
done

cpu=$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)
echo "Machine: $(nproc) cores, $cpu; $(awk '/MemTotal/ {printf "%d GiB", $2/1048576}' /proc/meminfo); $(uname -r); $(date -u +%F)"
echo "Data: 2 GiB through \`cat\` on a lab host (network namespace, veth), median of $RUNS"
echo
echo "| path | MB/s | vs baseline |"
echo "|---|---:|---:|"
for name in baseline openssh libssh2; do
    ratio=$(awk -v a="${RESULT[$name]}" -v b="${RESULT[baseline]}" 'BEGIN {printf "%.2fx", a / b}')
    echo "| $name | ${RESULT[$name]} | $ratio |"
done
