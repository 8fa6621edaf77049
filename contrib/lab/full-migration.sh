#!/bin/bash
# One full migration in the lab, as contrib/demo.sh shows it and the
# end-to-end test checks it:
#
#   contrib/lab/full-migration.sh --lab DIR --runs DIR [--net-prep auto|none]
#                                 [--expect reachable|unreachable] [--variant direct|relay]
#
# Builds (or reuses) the guest image (guest-image.sh), makes a fresh lab with
# the hosts "pve" and "truenas" and the guest network behind "truenas",
# starts the Proxmox simulator on "pve" (VM 101 "web01": the guest image as
# scsi0, its MAC in net0, the guest agent reporting 198.18.251.10) and the
# TrueNAS simulator on "truenas" (zvols as sparse files; vm.start boots the
# VM under QEMU), then runs `migrate-vm run ... --yes` with progress on the
# terminal. With --expect unreachable the run must fail at verify (the
# negative twin, with --net-prep none). --variant direct (the default) lets
# "pve" reach "truenas" and gives the run a migration key there, so the disk
# goes host to host; --variant relay isolates the two hosts, so the run must
# relay the copy through the controller. Leaves the lab up; prints where
# everything is in LAB/scenario.env.
set -euo pipefail
cd "$(dirname "$0")/../.."
export LC_ALL=C
LAB= RUNS= NET_PREP=auto EXPECT=reachable VARIANT=direct
while [ $# -gt 0 ]; do
    case "$1" in
        --lab) LAB=$(realpath -m "$2"); shift 2 ;;
        --runs) RUNS=$(realpath -m "$2"); shift 2 ;;
        --net-prep) NET_PREP=$2; shift 2 ;;
        --expect) EXPECT=$2; shift 2 ;;
        --variant) VARIANT=$2; shift 2 ;;
        *) echo "full-migration: unknown option $1" >&2; exit 2 ;;
    esac
done
[ -n "$LAB" ] && [ -n "$RUNS" ] || { echo "full-migration: --lab and --runs are required" >&2; exit 2; }
GUEST=${VMLIFT_GUEST_CACHE:-/var/tmp/vmlift-guest}
GUEST_IP=198.18.251.10
MAC=bc:24:11:5e:00:01
SCHEMAS=$PWD/tests/data
BUILD=${VMLIFT_BUILD_DIR:-build}   # where migrate-vm and the hooks were built
say() { echo "full-migration: $*"; }

contrib/lab/guest-image.sh --cache "$GUEST"

# A fresh lab every time: nothing to clean by hand.
contrib/lab/lab.sh destroy --dir "$LAB" 2>/dev/null || true
contrib/lab/lab.sh gc
rm -rf "$LAB"
contrib/lab/lab.sh create --dir "$LAB" --owner-pid 1 pve truenas >/dev/null
contrib/lab/lab.sh guestnet --dir "$LAB" truenas br0
MIGRATION=()
if [ "$VARIANT" = relay ]; then
    contrib/lab/lab.sh isolate --dir "$LAB" pve truenas
else
    # The key lives on "pve" (the lab shares the controller's files); the
    # run hands the target's host key to the source, never turning checks off.
    MIGRATION=(--migration-key-path "$LAB/client/id_ed25519")
fi
# shellcheck disable=SC1091
. "$LAB/lab.env"
say "lab hosts pve=$HOST_pve_IP truenas=$HOST_truenas_IP ($VARIANT), guest network 198.18.251.0/24 behind truenas"

# --- the Proxmox side: VM 101 with the guest image as its disk ---------------
S=$LAB/scenario
mkdir -p "$S/pve" "$S/truenas" "$S/local/snippets"
head -c 24 /dev/urandom | base64 | tr -d '/+=' > "$S/pve-token"
echo "1-$(head -c 30 /dev/urandom | base64 | tr -d '/+=')" > "$S/truenas-key"
chmod 600 "$S/pve-token" "$S/truenas-key"
DISK=$HOST_pve_DISKS/vm-101-disk-0.raw
cp --sparse=always "$GUEST/disk.raw" "$DISK"
cp "$BUILD/vmlift-pve-hookscript" "$S/local/snippets/vmlift-pve-hookscript"
cat > "$S/101.conf" <<CONF
agent: 1
boot: order=scsi0
cores: 1
hookscript: local:snippets/vmlift-pve-hookscript
memory: 1024
name: web01
net0: virtio=${MAC^^},bridge=vmbr0
ostype: l26
scsi0: local:101/vm-101-disk-0.raw,size=2G
scsihw: virtio-scsi-single
smbios1: uuid=0e6c5a3b-1f2d-4c5b-9a8e-7d6c5b4a3f21
sockets: 1
CONF
/usr/bin/python3 - "$S" "$DISK" "$GUEST_IP" "$MAC" <<'PY'
import json, sys
s, disk, ip, mac = sys.argv[1:]
token = open(s + "/pve-token").read().strip()
json.dump({"nodes": ["pve1"],
           "users": {"root@pam": {"password": token, "privs": ["*"]}},
           "tokens": {"root@pam!vmlift": {"secret": token, "privs": ["*"]}},
           "storage": [{"storage": "local", "type": "dir", "path": s + "/local",
                        "content": "images,snippets"}],
           "vms": [{"vmid": 101, "node": "pve1", "config": "101.conf", "status": "running",
                    "agent": {"interfaces": [{"name": "ens18", "hardware-address": mac,
                                              "ip-addresses": [{"ip-address": ip, "ip-address-type": "ipv4",
                                                                "prefix": 24}]}],
                              "osinfo": {"pretty-name": "Debian GNU/Linux 12 (bookworm)"}},
                    "volumes": {"local:101/vm-101-disk-0.raw": disk},
                    "shutdown_seconds": 2}]},
          open(s + "/cluster.json", "w"), indent=2)
PY
VMLIFT_PVE_CONFIG_DIR=$S/pve VMLIFT_STATE_DIR=$S/pve-vmlift \
    setsid contrib/lab/lab.sh exec --dir "$LAB" pve -- /usr/bin/python3 "$PWD/contrib/sim/pve/pve_sim.py" \
    --cluster "$S/cluster.json" --schema "$SCHEMAS/proxmox/api-schema/pve-api-schema-subset.json" \
    --state "$S/pve" --listen "$HOST_pve_IP:8006" --names "$HOST_pve_IP" \
    >"$S/pve-sim.log" 2>&1 < /dev/null &

# --- the TrueNAS side -------------------------------------------------------
setsid contrib/lab/lab.sh exec --dir "$LAB" truenas -- /usr/bin/python3 "$PWD/contrib/sim/truenas/truenas_sim.py" \
    --release 25.10 --schemas "$SCHEMAS/truenas/api-schemas" --state "$S/truenas" \
    --api-key-file "$S/truenas-key" --listen "$HOST_truenas_IP:443" --pool tank:16G \
    --bridge br0 --qemu --direct-kernel "$GUEST" --nvram-dir "$S/truenas/nvram" \
    >"$S/truenas-sim.log" 2>&1 < /dev/null &
for _ in $(seq 1 200); do
    [ -s "$S/pve/port" ] && [ -s "$S/truenas/port" ] && break
    sleep 0.1
done
[ -s "$S/pve/port" ] || { cat "$S/pve-sim.log" >&2; exit 1; }
[ -s "$S/truenas/port" ] || { cat "$S/truenas-sim.log" >&2; exit 1; }
cat > "$LAB/scenario.env" <<ENV
PVE_URL=pve://$HOST_pve_IP/101
PVE_API=https://$HOST_pve_IP:8006/api2/json
PVE_CA=$S/pve/cert.pem
PVE_TOKEN_FILE=$S/pve-token
PVE_CONFIG=$S/pve/101.conf
PVE_EVENTS=$S/pve-vmlift/events.jsonl
TRUENAS_URL=truenas://$HOST_truenas_IP/tank/vms
GUEST_IP=$GUEST_IP
CONSOLE=$S/truenas/console-1.log
ENV

# --- the migration ----------------------------------------------------------
say "migrate-vm run: pve://$HOST_pve_IP/101 → truenas://$HOST_truenas_IP/tank/vms"
mkdir -p "$RUNS"
set +e
"$BUILD/migrate-vm" --identity-file "$LAB/client/id_ed25519" --known-hosts "$LAB/client/known_hosts" \
    --run-dir "$RUNS" "${MIGRATION[@]}" run \
    --source "pve://$HOST_pve_IP/101" --target "truenas://$HOST_truenas_IP/tank/vms" \
    --pve-token-id 'root@pam!vmlift' --pve-token-secret-file "$S/pve-token" \
    --pve-ca-file "$S/pve/cert.pem" \
    --truenas-api-key-file "$S/truenas-key" --truenas-fingerprint "$(cat "$S/truenas/fingerprint")" \
    --bridge-map vmbr0=br0 --net-prep "$NET_PREP" --transfer-mode "$([ "$VARIANT" = relay ] && echo auto || echo direct)" \
    --target-zvol-root "$S/truenas/zvols" --target-nvram-dir "$S/truenas/nvram" \
    --target-state-dir "$S/truenas-vmlift" \
    --verify-timeout "${VMLIFT_VERIFY_TIMEOUT:-420}" --verify-poll-interval 5 --yes
rc=$?
set -e
RUN=$(ls -1d "$RUNS"/*/ | tail -n 1)
echo "RUN=${RUN%/}" >> "$LAB/scenario.env"
if [ "$EXPECT" = reachable ]; then
    [ $rc = 0 ] || { say "the run failed (exit $rc); console: $S/truenas/console-1.log"; exit $rc; }
    say "verify: $GUEST_IP port 22 from the controller"
    "$BUILD/migrate-vm" verify --ip "$GUEST_IP" --port 22 --mode tcp --timeout-sec 30 --poll-interval-sec 2
else
    [ $rc != 0 ] || { say "expected the guest to stay unreachable, but the run verified it"; exit 1; }
    "$BUILD/migrate-vm" verify --ip "$GUEST_IP" --port 22 --mode tcp --expect unreachable \
        --timeout-sec 10 --poll-interval-sec 2
    say "as expected: without the network rewrite the guest is not reachable (exit $rc)"
fi
