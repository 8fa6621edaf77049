#!/bin/bash
# End to end: the demo's scenario (contrib/lab/full-migration.sh), checked.
#   1. A real Debian guest on the Proxmox simulator's host is migrated with
#      `migrate-vm run`; it boots under QEMU on the TrueNAS simulator's host and
#      answers on its old IP; the summary says so; the source is marked and its
#      hookscript refuses a restart through the Proxmox API.
#   2. The negative twin, with --net-prep none: the guest boots (its console
#      shows a login prompt) but stays unreachable, and the run fails at verify.
# Needs root, qemu-system-x86_64 and debootstrap (contrib/install-deps.sh
# installs them); skips with the reason otherwise. The guest image is built
# once and cached (/var/tmp/vmlift-guest).
set -euo pipefail
cd "$(dirname "$0")/../.."
export LC_ALL=C
skip() { echo "e2e: SKIPPED: $*"; exit 0; }
[ "$(id -u)" = 0 ] || skip "needs root (network namespaces, loop devices, taps)"
for tool in qemu-system-x86_64 debootstrap curl; do
    command -v "$tool" >/dev/null || skip "needs $tool (contrib/install-deps.sh)"
done
LAB=$PWD/.lab/e2e
RUNS=$(mktemp -d /tmp/vmlift-e2e.XXXXXX)
cleanup() { contrib/lab/lab.sh destroy --dir "$LAB" 2>/dev/null || true; rm -rf "$RUNS"; }
trap cleanup EXIT
fail() { echo "e2e: FAILED: $*" >&2; exit 1; }
start=$(date +%s)

echo "== e2e: the migration"
contrib/lab/full-migration.sh --lab "$LAB" --runs "$RUNS/positive"
# shellcheck disable=SC1091
. "$LAB/scenario.env"
/usr/bin/python3 - "$RUN/summary.json" "$GUEST_IP" <<'PY' || fail "summary.json is not what the run did"
import json, sys
s = json.load(open(sys.argv[1]))
ip = sys.argv[2]
def check(cond, what):
    if not cond:
        print("summary: " + what, file=sys.stderr)
        sys.exit(1)
check(s["state"] == "succeeded", "state %s" % s["state"])
check(s["source"]["vmid"] == 101 and s["target"]["vm_name"] == "web01", "names")
check(s["firmware"]["bootloader"] == "UEFI_CSM", "bootloader")
check(len(s["disks"]) == 1 and s["disks"][0]["verified"] and len(s["disks"][0]["digest"]) == 32, "disk")
check(s["disks"][0]["zero_bytes_skipped"] > 0, "sparse copy")
check(s["disks"][0]["mode"] == "direct", "mode %s" % s["disks"][0]["mode"])
check(s["nics"][0]["mac"] == "bc:24:11:5e:00:01" and s["nics"][0]["mac_preserved"], "nic")
check(s["network_prep"]["method"] == "offline" and s["network_prep"]["stack"] == "netplan", "net prep")
check(any("50-vmlift.yaml" in json.dumps(f) for f in s["network_prep"]["files_changed"]), "files")
check(s["reachability"][0]["ip"] == ip and s["reachability"][0]["satisfied"], "reachability")
check(isinstance(s["downtime_seconds"], (int, float)) and s["downtime_seconds"] > 0, "downtime")
print("e2e: summary ok: downtime %.0f s, guest up after %.0f s" %
      (s["downtime_seconds"], s["reachability"][0]["seconds"]))
PY
grep -q '^tags:.*vmlift-migrated' "$PVE_CONFIG" || fail "the source is not tagged vmlift-migrated"
grep -q '^onboot: 0' "$PVE_CONFIG" || fail "the source still starts on boot"
# An admin starts the source again through the API: the hookscript refuses.
auth="Authorization: PVEAPIToken=root@pam!vmlift=$(cat "$PVE_TOKEN_FILE")"
upid=$(curl -sS --cacert "$PVE_CA" -H "$auth" -X POST "$PVE_API/nodes/pve1/qemu/101/status/start" |
       /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["data"])')
for _ in $(seq 1 100); do
    st=$(curl -sS --cacert "$PVE_CA" -H "$auth" "$PVE_API/nodes/pve1/tasks/$upid/status")
    echo "$st" | grep -q '"status":"stopped"' && break
    sleep 0.2
done
echo "$st" | grep -q 'hookscript error' || fail "the source restarted: $st"
grep -q '"decision":"refused"' "$PVE_EVENTS" || fail "the hookscript did not record its refusal"
echo "e2e: the source's hookscript refused a restart"
boot=$(/usr/bin/python3 -c 'import json,sys; print(int(json.load(open(sys.argv[1]))["reachability"][0]["seconds"]))' "$RUN/summary.json")

echo "== e2e: the negative twin (--net-prep none)"
VMLIFT_VERIFY_TIMEOUT=$((boot * 2 + 90)) \
    contrib/lab/full-migration.sh --lab "$LAB" --runs "$RUNS/negative" --net-prep none --expect unreachable \
        --variant relay
# shellcheck disable=SC1091
. "$LAB/scenario.env"
grep -q 'login:' "$CONSOLE" || fail "the guest never booted; the negative twin proves nothing"
state=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["state"])' "$RUN/summary.json")
[ "$state" = failed ] || fail "negative run state $state"
mode=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["disks"][0]["mode"])' "$RUN/summary.json")
[ "$mode" = relay ] || fail "the isolated hosts' copy ran $mode, not relay"
echo "== e2e: passed in $(( $(date +%s) - start )) s"
