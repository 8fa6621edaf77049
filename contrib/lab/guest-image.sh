#!/bin/bash
# Builds (once) the lab's bootable Linux guest and caches it:
#
#   contrib/lab/guest-image.sh [--cache DIR]     (default /var/tmp/vmlift-guest)
#
# Debian 12 by debootstrap, with a kernel, an initramfs that assembles LVM,
# systemd, openssh-server, netplan.io and cloud-init. The disk (disk.raw,
# 2 GiB, sparse) has a GPT with a BIOS boot partition and an LVM physical
# volume holding ubuntu-vg/ubuntu-lv (ext4, the root), laid out as Ubuntu's
# installer does. No device-mapper is needed: the PV and the LV's filesystem
# are written through loop devices with offsets (pvcreate/vgcreate/lvcreate
# --driverloaded n write only metadata).
#
# The guest's network is what breaks on a migration: netplan configures its
# virtio NIC by the name it has on Proxmox (ens18, PCI slot 18) with the
# static address 198.18.251.10/24 (gateway .1), the lab's guest network. On
# the TrueNAS side the NIC sits elsewhere and gets another name, so without
# vmlift's rewrite the guest comes up without an address.
#
# No bootloader is installed: the TrueNAS simulator boots the kernel and
# initramfs directly (vmlinuz, initrd.img and cmdline next to disk.raw).
# Output: DIR/disk.raw, DIR/vmlinuz, DIR/initrd.img, DIR/cmdline, DIR/ready.
set -euo pipefail
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export LC_ALL=C LVM_SUPPRESS_FD_WARNINGS=1
CACHE=/var/tmp/vmlift-guest
[ "${1:-}" = --cache ] && CACHE=$2
GUEST_IP=198.18.251.10/24
GUEST_GW=198.18.251.1
MIRROR=${VMLIFT_DEBIAN_MIRROR:-http://deb.debian.org/debian}

# The cache is keyed by this script: change it and the image is rebuilt.
KEY=$(sha256sum "$0" | cut -c1-16)
[ "$(cat "$CACHE/ready" 2>/dev/null)" = "$KEY" ] && { echo "guest-image: cached in $CACHE"; exit 0; }
rm -f "$CACHE/ready"
[ "$(id -u)" = 0 ] || { echo "guest-image: run as root" >&2; exit 1; }
for tool in debootstrap sfdisk losetup pvcreate mkfs.ext4; do
    command -v "$tool" >/dev/null || { echo "guest-image: missing $tool (contrib/install-deps.sh)" >&2; exit 1; }
done

mkdir -p "$CACHE"
WORK=$(mktemp -d "$CACHE/build.XXXXXX")
ROOT=$WORK/root
LOOPS=()
cleanup() {
    local m
    # Whatever is still mounted under WORK (a failed debootstrap leaves proc,
    # sys, dev bind mounts behind), innermost first.
    for m in $(findmnt -rn -o TARGET | grep "^$WORK/" | sort -r); do
        umount -l "$m" 2>/dev/null || true
    done
    for m in "${LOOPS[@]}"; do losetup -d "$m" 2>/dev/null || true; done
    if findmnt -rn -o TARGET | grep -q "^$WORK/"; then
        echo "guest-image: mounts remain under $WORK; left for you to inspect" >&2
        return
    fi
    rm -rf --one-file-system "$WORK"
}
trap cleanup EXIT

echo "guest-image: debootstrap (Debian 12, a few minutes, once)"
debootstrap --variant=minbase --components=main \
    --include=systemd-sysv,udev,linux-image-amd64,initramfs-tools,lvm2,openssh-server,netplan.io,cloud-init,python3-cffi-backend,iproute2,ca-certificates \
    bookworm "$ROOT" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 ||
    { tail -20 "$WORK/debootstrap.log" >&2; exit 1; }

echo "guest-image: configuring"
echo vmlift-guest >"$ROOT/etc/hostname"
cat >"$ROOT/etc/fstab" <<'FSTAB'
/dev/mapper/ubuntu--vg-ubuntu--lv / ext4 defaults 0 1
FSTAB
mkdir -p "$ROOT/etc/netplan"
cat >"$ROOT/etc/netplan/50-cloud-init.yaml" <<NETPLAN
network:
  version: 2
  ethernets:
    ens18:
      addresses: [$GUEST_IP]
      routes:
        - to: default
          via: $GUEST_GW
      nameservers:
        addresses: [$GUEST_GW]
NETPLAN
chmod 600 "$ROOT/etc/netplan/50-cloud-init.yaml"
# No cloud datasource in the lab: cloud-init finds none quickly and stays out of the way.
echo 'datasource_list: [ None ]' >"$ROOT/etc/cloud/cloud.cfg.d/90-vmlift-lab.cfg"
# A NIC left unconfigured (the migration's failure mode) must not hold the
# boot for systemd's default two minutes.
mkdir -p "$ROOT/etc/systemd/system/systemd-networkd-wait-online.service.d"
cat >"$ROOT/etc/systemd/system/systemd-networkd-wait-online.service.d/vmlift-lab.conf" <<'UNIT'
[Service]
ExecStart=
ExecStart=/lib/systemd/systemd-networkd-wait-online --timeout=20
UNIT
# Predictable names (ens18) as on Proxmox; a serial console for the logs.
echo 'root:vmlift-lab' | chroot "$ROOT" chpasswd
sed -i 's/^#\?PermitRootLogin.*/PermitRootLogin yes/' "$ROOT/etc/ssh/sshd_config"
mount -t proc proc "$ROOT/proc"; mount -t sysfs sys "$ROOT/sys"; mount --bind /dev "$ROOT/dev"
chroot "$ROOT" update-initramfs -u -k all >/dev/null
umount "$ROOT/proc" "$ROOT/sys" "$ROOT/dev"
cp "$ROOT"/boot/vmlinuz-* "$WORK/vmlinuz"
cp "$ROOT"/boot/initrd.img-* "$WORK/initrd.img"
echo "root=/dev/mapper/ubuntu--vg-ubuntu--lv ro console=ttyS0 net.ifnames=1" >"$WORK/cmdline"

echo "guest-image: disk (GPT, LVM ubuntu-vg/ubuntu-lv, ext4)"
DISK=$WORK/disk.raw
truncate -s 2G "$DISK"
sfdisk -q "$DISK" <<'GPT'
label: gpt
start=2048, size=2048, type=21686148-6449-6E6F-744E-656564454649, name=bios
start=4096, type=E6D6D379-F507-44C2-A23C-238F2A3DF928, name=lvm
GPT
PV_OFF=$((4096 * 512))
PV_SIZE=$(( $(stat -c %s "$DISK") - PV_OFF - 1024 * 1024 ))
pv=$(losetup --find --show --offset "$PV_OFF" --sizelimit "$PV_SIZE" "$DISK"); LOOPS+=("$pv")
LVM="--config devices{filter=[\"a|^$pv\$|\",\"r|.*|\"]}"
pvcreate -q $LVM "$pv" >/dev/null
vgcreate -q $LVM ubuntu-vg "$pv" >/dev/null
lvcreate -q $LVM --driverloaded n -l 100%FREE -n ubuntu-lv ubuntu-vg >/dev/null 2>&1
# Where the LV's data starts: pe_start, in sectors, from the PV header.
pe_start=$(pvs $LVM --noheadings --units s -o pe_start "$pv" | tr -dc 0-9)
lv_size=$(lvs $LVM --noheadings --units b -o lv_size ubuntu-vg/ubuntu-lv | tr -dc 0-9)
losetup -d "$pv"; LOOPS=()
lv=$(losetup --find --show --offset $((PV_OFF + pe_start * 512)) --sizelimit "$lv_size" "$DISK"); LOOPS+=("$lv")
mkfs.ext4 -q -L root "$lv"
mkdir -p "$WORK/mnt"
mount "$lv" "$WORK/mnt"
cp -a "$ROOT/." "$WORK/mnt/"
umount "$WORK/mnt"
losetup -d "$lv"; LOOPS=()

mv "$DISK" "$WORK/vmlinuz" "$WORK/initrd.img" "$WORK/cmdline" "$CACHE/"
echo "$KEY" >"$CACHE/ready"
echo "guest-image: ready in $CACHE ($(du -h --apparent-size "$CACHE/disk.raw" | cut -f1) disk, $(du -h "$CACHE/disk.raw" | cut -f1) used)"
