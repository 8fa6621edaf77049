#!/bin/sh
# Install every Debian 12 package vmlift needs to build and test. Idempotent:
# does nothing when all packages are present; runs `apt-get update` only when
# something is missing (and again, once, if the first install attempt fails
# on a stale package index).
set -eu

BUILD_PKGS="build-essential cmake ninja-build pkg-config g++
libcurl4-openssl-dev libyaml-cpp-dev nlohmann-json3-dev libzstd-dev libssh2-1-dev libpugixml-dev
libgtest-dev libgmock-dev libxxhash-dev libcli11-dev libssl-dev clang-format"
TEST_PKGS="openssh-server openssh-client iproute2 lvm2 gdisk e2fsprogs xfsprogs
qemu-utils zstd python3 python3-websockets python3-jsonschema netplan.io fdisk procps util-linux coreutils openssl time
qemu-system-x86 ovmf seabios debootstrap curl busybox-static libnbd-bin fuse3"

missing=""
for p in $BUILD_PKGS $TEST_PKGS; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done

if [ -z "$missing" ]; then
    echo "install-deps: all packages present"
    exit 0
fi

if [ "$(id -u)" != 0 ]; then
    echo "install-deps: missing packages:$missing; run this script as root to install them" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
echo "install-deps: installing:$missing"
# shellcheck disable=SC2086
if ! apt-get install -y --no-install-recommends $missing; then
    apt-get update
    # shellcheck disable=SC2086
    apt-get install -y --no-install-recommends $missing
fi
# The packaged sshd must not run as a system service on a lab/CI machine: the
# tests start their own sshd processes inside network namespaces.
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    systemctl disable --now ssh >/dev/null 2>&1 || true
fi
echo "install-deps: done"
