#!/bin/sh
# SPDX-License-Identifier: MIT
# Boots Debian 12's stock 6.1 kernel under qemu with this machine's root
# filesystem (read-only, over virtio-fs) and runs real-kernel tests inside it
# against the same build. Prints the guest's test lines; the last line is the
# guest's "N passed, N failed". Usage: run-guest.sh [TEST-SUBSTRING...]
# (default: the tests listed in tests/kernels/guest-tests).
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
KDIR=$ROOT/build/kernel61
# KPKG: the kernel package; default the newest Debian 12 cloud 6.1 build
# (tested with linux-image-6.1.0-56-cloud-amd64-unsigned, 6.1.192)
KPKG_PATTERN='^linux-image-6\.1\.0-[0-9]+-cloud-amd64-unsigned$'

# Whole guest run, boot to poweroff; qemu is killed after it.
GUEST_TIMEOUT=${GUEST_TIMEOUT:-900}
GUEST_MEM=${GUEST_MEM:-2G}
# Modules virtio-fs needs, in load order (all =m in Debian's cloud kernel).
BOOT_MODULES="virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci fuse virtiofs"

say() { echo "run-guest: $*" >&2; }

[ "$(id -u)" = 0 ] || { say "needs root (virtiofsd shares / with the guest)"; exit 2; }
QEMU=$(command -v qemu-system-x86_64) || { say "qemu-system-x86_64 missing (make deps)"; exit 2; }
VIRTIOFSD=/usr/lib/qemu/virtiofsd
[ -x $VIRTIOFSD ] || { say "$VIRTIOFSD missing (apt-get install qemu-system-x86)"; exit 2; }
BUSYBOX=/bin/busybox
file -L $BUSYBOX 2>/dev/null | grep -q 'statically linked' || BUSYBOX=/usr/bin/busybox
[ -x $BUSYBOX ] || { say "static busybox missing (apt-get install busybox-static)"; exit 2; }

# The kernel package, from Debian's archive, unpacked under build/.
newest_kpkg() {
	apt-cache search --names-only "$KPKG_PATTERN" | awk '{print $1}' | sort -V | tail -1
}
if ! ls "$KDIR"/root/boot/vmlinuz-* >/dev/null 2>&1; then
	mkdir -p "$KDIR"
	KPKG=${KPKG:-$(newest_kpkg)}
	[ -n "$KPKG" ] || { apt-get update -qq; KPKG=$(newest_kpkg); }
	[ -n "$KPKG" ] || { say "no $KPKG_PATTERN in the apt sources"; exit 2; }
	say "fetching $KPKG"
	(cd "$KDIR" && { apt-get download "$KPKG" 2>/dev/null ||
		{ apt-get update -qq && apt-get download "$KPKG"; }; })
	dpkg-deb -x "$KDIR"/"$KPKG"_*.deb "$KDIR"/root
fi
KERNEL=$(ls "$KDIR"/root/boot/vmlinuz-* | head -1)
KVER=${KERNEL##*/vmlinuz-}
MODDIR=$KDIR/root/lib/modules/$KVER
# the package ships no modules.dep (its postinst makes it): the guest's
# modprobe wrapper needs one for autoloading tcp_diag and friends
[ -s "$MODDIR/modules.dep" ] || depmod -b "$KDIR/root" "$KVER"

WORK=$(mktemp -d /tmp/cs-guest.XXXXXX)
VFS_PID=
cleanup() {
	[ -z "$VFS_PID" ] || kill "$VFS_PID" 2>/dev/null || true
	rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

# initramfs: static busybox, the virtio-fs modules, an init that mounts the
# host's root read-only and hands over to tests/kernels/guest-init.
mkdir -p "$WORK/initrd/bin" "$WORK/initrd/lib/modules" "$WORK/initrd/newroot"
cp $BUSYBOX "$WORK/initrd/bin/busybox"
for m in $BOOT_MODULES; do
	f=$(find "$MODDIR" -name "$m.ko*" | head -1)
	[ -n "$f" ] || { say "module $m not in $MODDIR"; exit 2; }
	cp "$f" "$WORK/initrd/lib/modules/"
done
cat > "$WORK/initrd/init" <<INIT
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc 2>/dev/null || { mkdir -p /proc && mount -t proc proc /proc; }
mkdir -p /sys /dev && mount -t sysfs sys /sys && mount -t devtmpfs dev /dev
for m in $BOOT_MODULES; do insmod /lib/modules/\$m.ko* || echo "initrd: insmod \$m failed"; done
mount -t virtiofs -o ro root /newroot || { echo "initrd: cannot mount virtio-fs root"; echo o > /proc/sysrq-trigger; }
umount /sys /dev /proc
exec switch_root /newroot $HERE/guest-init
INIT
chmod +x "$WORK/initrd/init"
mkdir -p "$WORK/initrd/proc"
(cd "$WORK/initrd" && find . | $BUSYBOX cpio -o -H newc 2>/dev/null | gzip -1 > "$WORK/initrd.gz")

$VIRTIOFSD --socket-path="$WORK/vfs.sock" -o source=/ -o sandbox=chroot -o cache=auto \
	-o log_level=err >"$WORK/virtiofsd.log" 2>&1 &
VFS_PID=$!
for _ in $(seq 50); do [ -S "$WORK/vfs.sock" ] && break; sleep 0.1; done
[ -S "$WORK/vfs.sock" ] || { say "virtiofsd did not start: $(cat "$WORK/virtiofsd.log")"; exit 2; }

TESTS=${*:-$(grep -v '^#' "$HERE/guest-tests" | awk '{print $1}' | tr '\n' ' ')}
TESTS=$(echo $TESTS | tr ' ' ',')
say "booting $KVER (TCG), tests: $TESTS"
# no KVM: /dev/kvm here lacks VT-x/AMD-V and a stock kernel fails under it
timeout --kill-after=10 "$GUEST_TIMEOUT" "$QEMU" -accel tcg,thread=multi -cpu max -smp 2 \
	-m "$GUEST_MEM" -object memory-backend-memfd,id=mem,size="$GUEST_MEM",share=on \
	-numa node,memdev=mem \
	-chardev socket,id=vfs,path="$WORK/vfs.sock" -device vhost-user-fs-pci,chardev=vfs,tag=root \
	-kernel "$KERNEL" -initrd "$WORK/initrd.gz" \
	-append "console=ttyS0 quiet panic=-1 cs.root=$ROOT cs.kdir=$KDIR/root cs.tests=$TESTS" \
	-display none -monitor none -serial stdio -no-reboot </dev/null || rc=$?
[ "${rc:-0}" = 124 ] && say "guest timed out after $GUEST_TIMEOUT s"
exit "${rc:-0}"
