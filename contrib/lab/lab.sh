#!/bin/bash
# vmlift lab: test hosts made of network namespaces, each with its own sshd.
#
#   lab.sh create  --dir DIR [--owner-pid PID] HOST...   make a lab of HOSTs
#   lab.sh destroy --dir DIR                             remove everything it made
#   lab.sh isolate --dir DIR A B    A and B can no longer reach each other
#   lab.sh join    --dir DIR A B    undo isolate
#   lab.sh mute    --dir DIR HOST   HOST silently drops its replies to the controller
#   lab.sh unmute  --dir DIR HOST
#   lab.sh drop    --dir DIR HOST   kill HOST's SSH sessions (the listener stays)
#   lab.sh guestnet --dir DIR HOST BRIDGE   the guest network 198.18.251.0/24 on a
#                                   bridge inside HOST, routed from the controller
#   lab.sh exec    --dir DIR HOST -- CMD...   run CMD as on HOST (its network and
#                                   mount namespaces: mounts made here are what
#                                   its SSH sessions see)
#   lab.sh gc                       destroy labs whose owner process is gone
#
# Addressing: lab N uses 198.18.N.0/24 only (N = 1..250): the root namespace
# is 198.18.N.1 on bridge vmlbN, hosts are 198.18.N.10, .11, ... in creation
# order. Nothing is ever addressed outside 198.18.0.0/16; 198.18.251.0/24 is
# the guest network (see guestnet), outside every lab's own /24.
# Each host: netns "vmlN-HOST", veth to the bridge, its own ed25519 host key,
# sshd (root login by key or by the lab password, via a private mount
# namespace whose /etc/shadow is a lab copy), and DIR/hosts/HOST/disks as its
# scratch space. Client material in DIR/client: id_ed25519 (authorized),
# id_ed25519_pp (authorized, passphrase in DIR/client/passphrase), wrong_key
# (not authorized), password (root's lab password), known_hosts (all hosts).
# DIR/lab.env describes the lab as KEY=VALUE lines.
set -euo pipefail
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export LC_ALL=C

REGISTRY=/run/vmlift-lab

die() { echo "lab: $*" >&2; exit 1; }

# create, destroy and gc change the shared registry and the root namespace;
# one at a time, so a collector never races a creator that reuses an id.
lock_registry() {
    mkdir -p "$REGISTRY"
    exec 9>"$REGISTRY/.lock"
    flock 9
}

need_root() {
    [ "$(id -u)" = 0 ] || die "must run as root (network namespaces and sshd need it)"
    for tool in ip sshd ssh-keygen unshare nsenter openssl ss flock; do
        command -v "$tool" >/dev/null 2>&1 || die "missing tool '$tool'; run contrib/install-deps.sh"
    done
}

# --- state ----------------------------------------------------------------
load_env() {
    [ -f "$DIR/lab.env" ] || die "no lab at $DIR (missing lab.env)"
    # shellcheck disable=SC1091
    . "$DIR/lab.env"
}

ns_of() { echo "vml${LAB_ID}-$1"; }

host_ip() {
    local var="HOST_${1//-/_}_IP"
    [ -n "${!var:-}" ] || die "no host '$1' in lab $DIR"
    echo "${!var}"
}

# --- teardown by id (works from the registry alone) -------------------------
destroy_id() {
    local id=$1 ns pid
    for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep "^vml${id}-" || true); do
        for pid in $(ip netns pids "$ns" 2>/dev/null || true); do
            kill -TERM "$pid" 2>/dev/null || true
        done
        sleep 0.1
        for pid in $(ip netns pids "$ns" 2>/dev/null || true); do
            kill -KILL "$pid" 2>/dev/null || true
        done
        ip netns del "$ns" 2>/dev/null || true
    done
    ip link del "vmlb${id}" 2>/dev/null || true
    # The guest network's route, if this lab owned it (it went with the bridge
    # when routed through it; a dangling one would point nowhere).
    ip route show 198.18.251.0/24 2>/dev/null | grep -q "198.18.${id}\." &&
        ip route del 198.18.251.0/24 2>/dev/null || true
    # veth ends left in the root namespace (if a namespace vanished first)
    for link in $(ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1 | grep "^vml${id}h" || true); do
        ip link del "$link" 2>/dev/null || true
    done
    rm -rf "${REGISTRY:?}/$id"
}

gc() {
    mkdir -p "$REGISTRY"
    local d id owner
    for d in "$REGISTRY"/*/; do
        [ -d "$d" ] || continue
        id=$(basename "$d")
        owner=$(cat "$d/owner" 2>/dev/null || echo 0)
        if [ "$owner" = 0 ] || ! kill -0 "$owner" 2>/dev/null; then
            echo "lab: removing stale lab $id (owner $owner gone)" >&2
            destroy_id "$id"
        fi
    done
}

allocate_id() {
    local id
    for id in $(seq 1 250); do
        if mkdir "$REGISTRY/$id" 2>/dev/null; then
            echo "$id"
            return
        fi
    done
    die "no free lab id (250 labs exist); run 'lab.sh gc'"
}

# --- create -------------------------------------------------------------------
make_client_material() {
    local c=$DIR/client
    mkdir -p "$c"
    chmod 700 "$c"
    ssh-keygen -q -t ed25519 -N '' -C vmlift-lab -f "$c/id_ed25519"
    head -c 18 /dev/urandom | base64 | tr -d '/+=' > "$c/passphrase"
    ssh-keygen -q -t ed25519 -N "$(cat "$c/passphrase")" -C vmlift-lab-pp -f "$c/id_ed25519_pp"
    ssh-keygen -q -t ed25519 -N '' -C vmlift-lab-wrong -f "$c/wrong_key"
    head -c 18 /dev/urandom | base64 | tr -d '/+=' > "$c/password"
    chmod 600 "$c"/*
    : > "$c/known_hosts"
}

make_host() {
    local name=$1 index=$2
    local ns ip hdir veth_root veth_host
    ns=$(ns_of "$name")
    ip="198.18.${LAB_ID}.$((10 + index))"
    hdir=$DIR/hosts/$name
    veth_root="vml${LAB_ID}h${index}"
    veth_host="vml${LAB_ID}p${index}"
    mkdir -p "$hdir/disks"

    ip netns add "$ns"
    ip link add "$veth_root" type veth peer name "$veth_host"
    ip link set "$veth_host" netns "$ns"
    ip link set "$veth_root" master "vmlb${LAB_ID}" up
    ip -n "$ns" link set lo up
    ip -n "$ns" link set "$veth_host" name eth0
    ip -n "$ns" addr add "$ip/24" dev eth0
    ip -n "$ns" link set eth0 up

    ssh-keygen -q -t ed25519 -N '' -C "vmlift-lab-$name" -f "$hdir/ssh_host_ed25519_key"
    cat "$DIR/client/id_ed25519.pub" "$DIR/client/id_ed25519_pp.pub" > "$hdir/authorized_keys"
    local hash
    hash=$(openssl passwd -6 -stdin < "$DIR/client/password")
    awk -F: -v OFS=: -v h="$hash" '$1 == "root" { $2 = h } { print }' /etc/shadow > "$hdir/shadow"
    chmod 600 "$hdir/shadow"
    cat > "$hdir/sshd_config" <<EOF
Port 22
ListenAddress $ip
HostKey $hdir/ssh_host_ed25519_key
PidFile $hdir/sshd.pid
AuthorizedKeysFile $hdir/authorized_keys
PermitRootLogin yes
PubkeyAuthentication yes
PasswordAuthentication yes
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
AllowAgentForwarding yes
AllowTcpForwarding yes
X11Forwarding no
PrintMotd no
PrintLastLog no
UseDNS no
MaxSessions 64
MaxStartups 64:30:128
Subsystem sftp /usr/lib/openssh/sftp-server
EOF
    mkdir -p /run/sshd
    chmod 755 /run/sshd
    ip netns exec "$ns" unshare --mount --propagation private \
        sh -c 'mount --bind "$1" /etc/shadow && exec /usr/sbin/sshd -f "$2" -E "$3"' \
        lab-sshd "$hdir/shadow" "$hdir/sshd_config" "$hdir/sshd.log"
    echo "$ip $(cut -d' ' -f1-2 "$hdir/ssh_host_ed25519_key.pub")" >> "$DIR/client/known_hosts"

    local var="HOST_${name//-/_}_IP"
    {
        echo "$var=$ip"
        echo "HOST_${name//-/_}_NS=$ns"
        echo "HOST_${name//-/_}_DISKS=$hdir/disks"
    } >> "$DIR/lab.env"
}

wait_for_sshd() {
    local name=$1 ns i
    ns=$(ns_of "$name")
    for i in $(seq 1 100); do
        if ip netns exec "$ns" ss -ltnH 'sport = :22' | grep -q LISTEN; then
            return 0
        fi
        sleep 0.05
    done
    cat "$DIR/hosts/$name/sshd.log" >&2 || true
    die "sshd on host '$name' did not start; see $DIR/hosts/$name/sshd.log"
}

cmd_create() {
    local owner=$PPID
    local hosts=()
    while [ $# -gt 0 ]; do
        case "$1" in
            --owner-pid) owner=$2; shift 2 ;;
            *) hosts+=("$1"); shift ;;
        esac
    done
    [ ${#hosts[@]} -gt 0 ] || die "create needs at least one host name"
    for h in "${hosts[@]}"; do
        [[ "$h" =~ ^[a-z][a-z0-9-]{0,11}$ ]] || die "host name '$h' must be 1-12 of [a-z0-9-]"
    done
    [ ! -e "$DIR/lab.env" ] || die "a lab already exists at $DIR; destroy it first"
    gc
    LAB_ID=$(allocate_id)
    echo "$owner" > "$REGISTRY/$LAB_ID/owner"
    echo "$DIR" > "$REGISTRY/$LAB_ID/dir"
    # From here on, any failure removes what was made.
    trap 'destroy_id "$LAB_ID"; rm -rf "$DIR/hosts" "$DIR/client" "$DIR/lab.env"' ERR
    mkdir -p "$DIR"
    {
        echo "LAB_ID=$LAB_ID"
        echo "LAB_DIR=$DIR"
        echo "CONTROLLER_IP=198.18.${LAB_ID}.1"
        echo "HOSTS=\"${hosts[*]}\""
    } > "$DIR/lab.env"

    ip link add "vmlb${LAB_ID}" type bridge
    ip addr add "198.18.${LAB_ID}.1/24" dev "vmlb${LAB_ID}"
    ip link set "vmlb${LAB_ID}" up
    make_client_material
    local i=0
    for h in "${hosts[@]}"; do
        make_host "$h" "$i"
        i=$((i + 1))
    done
    for h in "${hosts[@]}"; do
        wait_for_sshd "$h"
    done
    trap - ERR
    echo "LAB_ID=$LAB_ID"
}

cmd_destroy() {
    if [ -f "$DIR/lab.env" ]; then
        load_env
        destroy_id "$LAB_ID"
    fi
    rm -rf "$DIR/hosts" "$DIR/client" "$DIR/lab.env"
}

route_cmd() {  # route_cmd add|del HOST TYPE DEST
    local ns
    ns=$(ns_of "$2")
    if [ "$1" = add ]; then
        ip -n "$ns" route replace "$3" "$4/32"
    else
        ip -n "$ns" route del "$4/32" 2>/dev/null || true
    fi
}

main() {
    [ $# -ge 1 ] || die "usage: lab.sh create|destroy|isolate|join|mute|unmute|exec|gc ..."
    local cmd=$1
    shift
    if [ "$cmd" = gc ]; then
        need_root
        lock_registry
        gc
        return
    fi
    [ "${1:-}" = --dir ] && [ -n "${2:-}" ] || die "$cmd needs --dir DIR"
    DIR=$(realpath -m "$2")
    shift 2
    need_root
    case "$cmd" in
        create) lock_registry; cmd_create "$@" ;;
        destroy) lock_registry; cmd_destroy ;;
        isolate|join)
            [ $# -eq 2 ] || die "$cmd needs two host names"
            load_env
            local a b op=add
            a=$(host_ip "$1"); b=$(host_ip "$2")
            [ "$cmd" = join ] && op=del
            route_cmd "$op" "$1" prohibit "$b"
            route_cmd "$op" "$2" prohibit "$a"
            ;;
        mute|unmute)
            [ $# -eq 1 ] || die "$cmd needs one host name"
            load_env
            host_ip "$1" >/dev/null
            local op=add
            [ "$cmd" = unmute ] && op=del
            route_cmd "$op" "$1" blackhole "$CONTROLLER_IP"
            ;;
        guestnet)
            # The guest network 198.18.251.0/24 behind HOST: bridge BRIDGE there
            # holds .1 (the guests' gateway), HOST forwards, and the controller
            # routes the /24 through HOST. One lab at a time may own it.
            [ $# -eq 2 ] || die "guestnet needs a host name and a bridge name"
            load_env
            local hip ns
            hip=$(host_ip "$1"); ns=$(ns_of "$1")
            ip -n "$ns" link show "$2" >/dev/null 2>&1 || ip -n "$ns" link add "$2" type bridge
            ip -n "$ns" addr replace 198.18.251.1/24 dev "$2"
            ip -n "$ns" link set "$2" up
            ip netns exec "$ns" sysctl -q -w net.ipv4.ip_forward=1
            ip route replace 198.18.251.0/24 via "$hip"
            echo "GUESTNET_HOST=$1" >> "$DIR/lab.env"
            ;;
        drop)
            [ $# -eq 1 ] || die "drop needs one host name"
            load_env
            host_ip "$1" >/dev/null
            local pid cmd
            for pid in $(ip netns pids "$(ns_of "$1")"); do
                cmd=$(tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null || true)
                case "$cmd" in
                    "sshd: root"*) kill -KILL "$pid" 2>/dev/null || true ;;
                esac
            done
            ;;
        exec)
            [ $# -ge 3 ] && [ "$2" = -- ] || die "usage: lab.sh exec --dir DIR HOST -- CMD..."
            load_env
            host_ip "$1" >/dev/null
            # The host's own view: its network namespace and the mount
            # namespace its sshd (and so every SSH session) runs in.
            local pid
            pid=$(cat "$DIR/hosts/$1/sshd.pid")
            shift 2
            exec nsenter --target "$pid" --mount --net -- "$@"
            ;;
        *) die "unknown command '$cmd'" ;;
    esac
}

main "$@"
