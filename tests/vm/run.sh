#!/usr/bin/env bash
# Boots Debian's 6.1 kernel (the linux-image-amd64 package, unpacked, not
# installed) in qemu with a busybox initramfs that holds a static `ember`
# and the tests/fixtures/vm objects. The guest's /init (tests/vm/init.sh)
# loads nf_conntrack and nf_dup_netdev, runs each scenario with `ember
# load` or `ember run` and prints one `VMTEST <name> OK|FAIL` line per
# scenario; qemu's exit status carries the guest's verdict.
#
# Usage: [VMTEST_ONLY=name,name] tests/vm/run.sh [CONSOLE_LOG]
#   (default log: target/vm/console.log; VMTEST_ONLY runs only those)
# EMBER_VM_KERNEL=<meta package> boots another Debian kernel (default
# linux-image-amd64, 6.1; linux-image-6.12-amd64 has CONFIG_FPROBE), cached
# under target/vm-<meta package>.
# Needs: qemu-system-x86, busybox-static, cpio, kmod, apt (to download the
# kernel package), binutils (objcopy), xz-utils, python3; a Rust toolchain
# for the static build.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
meta=${EMBER_VM_KERNEL:-linux-image-amd64}
out="$root/target/vm${EMBER_VM_KERNEL:+-$EMBER_VM_KERNEL}"
log=${1:-"$out/console.log"}
mkdir -p "$out"

need() { command -v "$1" >/dev/null 2>&1 || { echo "vm/run.sh: needs $1 ($2)" >&2; exit 2; }; }
need qemu-system-x86_64 "apt-get install qemu-system-x86"
need busybox "apt-get install busybox-static"
need cpio "apt-get install cpio"
need depmod "apt-get install kmod"
need objcopy "apt-get install binutils"
need xz "apt-get install xz-utils"
[ -z "${EMBER_VM_KERNEL:-}" ] || need zstd "apt-get install zstd"

# 1. The kernel package, unpacked once (cached under target/vm).
kroot="$out/kpkg"
if [ ! -d "$kroot/lib/modules" ]; then
  pkg=$(apt-cache depends "$meta" 2>/dev/null | awk '/Depends: linux-image-[0-9]/{print $2; exit}')
  [ -n "$pkg" ] || { apt-get update -qq >/dev/null 2>&1 || true; pkg=$(apt-cache depends "$meta" | awk '/Depends: linux-image-[0-9]/{print $2; exit}'); }
  [ -n "$pkg" ] || { echo "vm/run.sh: apt knows no $meta" >&2; exit 2; }
  rm -rf "$out/deb" "$kroot" && mkdir -p "$out/deb"
  (cd "$out/deb" && apt-get download "$pkg" >/dev/null)
  dpkg -x "$out"/deb/*.deb "$kroot"
  rm -rf "$out/deb"
fi
kver=$(ls "$kroot/lib/modules" | head -n1)
[ -f "$kroot/lib/modules/$kver/modules.dep" ] || depmod -b "$kroot" "$kver"

# The ELF vmlinux boots through qemu's PVH entry, skipping the BIOS and the
# in-guest decompression (seconds under TCG). The payload is XZ (6.1) or
# zstd (6.12), where the bzImage setup header says.
vmlinux="$out/vmlinux-$kver"
if [ ! -s "$vmlinux" ]; then
  python3 - "$kroot/boot/vmlinuz-$kver" "$vmlinux" <<'PY'
import lzma, struct, subprocess, sys
d = open(sys.argv[1], 'rb').read()
setup = (d[0x1f1] or 4) + 1
off, n = struct.unpack_from('<II', d, 0x248)
payload = d[setup * 512 + off:setup * 512 + off + n]
if payload.startswith(b'\xfd7zXZ\x00'):
    elf = lzma.LZMADecompressor(format=lzma.FORMAT_XZ).decompress(payload)
elif payload.startswith(b'\x28\xb5\x2f\xfd'):
    # zstd decodes the frame, then objects to the size word after it.
    elf = subprocess.run(['zstd', '-dc'], input=payload, capture_output=True).stdout
else:
    sys.exit("payload is neither XZ nor zstd")
if elf[:4] != b'\x7fELF':
    sys.exit("payload is not ELF")
open(sys.argv[2], 'wb').write(elf)
PY
fi

# 2. A static ember: nothing in the guest but busybox. musl where its
# target is installed (`rustup target add x86_64-unknown-linux-musl`; 0.8 MB
# smaller than static glibc), else glibc with crt-static. EMBER_VM_TARGET
# picks one.
arch=$(uname -m)
target=${EMBER_VM_TARGET:-}
if [ -z "$target" ]; then
  if rustup target list --installed 2>/dev/null | grep -qx "$arch-unknown-linux-musl"; then
    target=$arch-unknown-linux-musl
  else
    target=$(rustc -vV | awk '/^host:/{print $2}')
  fi
fi
host=$(rustc -vV | awk '/^host:/{print $2}')
# The flags of the shipped static build (tests/vm/static-flags.sh).
. "$root/tests/vm/static-flags.sh"
(cd "$root" && RUSTFLAGS="$EMBER_STATIC_RUSTFLAGS" \
  cargo build --quiet --profile min-size --bin ember --bin vm_conntrack --target "$target")
ember="$root/target/$target/min-size/ember"
# The kprobe check drives the library itself (tests/src/bin/vm_kprobe.rs).
# glibc: its ksyscall check counts openat(2), which glibc's open() is and
# musl's (open(2) on x86_64) is not.
(cd "$root" && RUSTFLAGS='-C target-feature=+crt-static' \
  cargo build --quiet --profile min-size --bin vm_kprobe --bin vm_attach --target "$host")
vm_kprobe="$root/target/$host/min-size/vm_kprobe"
# fmod_ret, fentry on a BPF program, lsm_cgroup, netkit, the module
# kprobe's tracefs retry (tests/src/bin/vm_attach).
vm_attach="$root/target/$host/min-size/vm_attach"
# Creates and dumps a conntrack entry (tests/src/bin/vm_conntrack.rs).
vm_conntrack="$root/target/$target/min-size/vm_conntrack"
echo "VMINFO static $target: ember $(stat -c %s "$ember") bytes, vm_conntrack $(stat -c %s "$vm_conntrack") bytes (stripped)"

# 3. The initramfs.
ir="$out/initramfs"
rm -rf "$ir"
mkdir -p "$ir"/{bin,sbin,proc,sys,dev,tmp,fix,lib/modules/$kver}
cp "$(command -v busybox)" "$ir/bin/busybox"
for a in $("$ir/bin/busybox" --list); do [ "$a" = busybox ] || ln -sf busybox "$ir/bin/$a"; done
for a in modprobe insmod poweroff; do ln -sf ../bin/busybox "$ir/sbin/$a"; done
order=()
# nf_conntrack (module kfuncs, module fentry targets), nf_conntrack_netlink
# (its dump reaches them); nf_dup_netdev (a module's per-CPU variable as a
# typed ksym).
for m in nf_conntrack nf_conntrack_netlink nf_dup_netdev; do
  while read -r _ path _; do
    rel=${path#"$kroot/lib/modules/$kver/"}
    # busybox insmod takes plain .ko files (6.12 ships them XZ-compressed);
    # modules shared by several closures are copied once.
    if [ ! -e "$ir/lib/modules/$kver/${rel%.xz}" ]; then
      mkdir -p "$ir/lib/modules/$kver/$(dirname "$rel")"
      cp "$path" "$ir/lib/modules/$kver/$rel"
      case $rel in *.ko.xz) xz -d "$ir/lib/modules/$kver/$rel" ;; esac
    fi
    order+=("${rel%.xz}")
  done < <(modprobe -d "$kroot" -S "$kver" --show-depends "$m" | grep '^insmod')
done
printf '%s\n' "${order[@]}" | awk '!seen[$0]++' > "$ir/load-order"
cp "$ember" "$ir/bin/ember"
cp "$vm_conntrack" "$ir/bin/vm_conntrack"
cp "$vm_kprobe" "$ir/bin/vm_kprobe"
cp "$vm_attach" "$ir/bin/vm_attach"
cp "$root"/tests/fixtures/attach/kprobe.bpf-el.o "$ir/fix/"
cp "$root"/tests/fixtures/vm/*.bpf-el.o "$root"/tests/fixtures/freplace.bpf-el.o \
  "$root"/tests/fixtures/attach/execsnoop.bpf-el.o "$ir/fix/"

# The guest kernel's BTF, for the scenario that hides /sys/kernel/btf: a
# raw file (--btf) and a btfhub tree (--btf-dir), which ember searches by
# os-release ID/VERSION_ID, arch and release.
btf="$out/vmlinux-$kver.btf"
[ -s "$btf" ] || objcopy --dump-section .BTF="$btf" "$vmlinux" "$out/.objcopy-scratch"
rm -f "$out/.objcopy-scratch"
hub="$out/btfhub/debian/12/x86_64"
if [ ! -s "$hub/$kver.btf.tar.xz" ]; then
  mkdir -p "$hub"
  cp "$btf" "$out/$kver.btf"
  tar -C "$out" -cf - "$kver.btf" | xz -T1 -6 > "$hub/$kver.btf.tar.xz"
  rm -f "$out/$kver.btf"
fi
mkdir -p "$ir/btf" "$ir/etc"
cp "$btf" "$ir/btf/vmlinux.btf"
cp -r "$out/btfhub" "$ir/btfhub"
printf 'ID=debian\nVERSION_ID="12"\n' > "$ir/etc/os-release"

cp "$root/tests/vm/init.sh" "$ir/init"
chmod +x "$ir/init"
(cd "$ir" && find . -print0 | cpio --null -o -H newc --quiet) | gzip -1 > "$out/initramfs.cpio.gz"

# 4. Boot. This host's /dev/kvm (if any) may not be hardware KVM; use it
# only when kvm_intel/kvm_amd is loaded.
if [ -w /dev/kvm ] && { [ -d /sys/module/kvm_intel ] || [ -d /sys/module/kvm_amd ]; }; then
  accel=(-accel kvm -cpu host)
else
  accel=(-accel tcg -cpu max)
fi
set +e
timeout 600 qemu-system-x86_64 "${accel[@]}" -m 1G -smp 2 \
  -nographic -no-reboot -nodefaults -serial stdio -display none \
  -device isa-debug-exit,iobase=0xf4,iosize=0x04 \
  -kernel "$vmlinux" -initrd "$out/initramfs.cpio.gz" \
  -append "console=ttyS0 panic=-1 quiet${VMTEST_ONLY:+ vmtest.only=$VMTEST_ONLY}" \
  > "$log" 2>&1 < /dev/null
qrc=$?
set -e
grep -E '^(VMINFO|VMTEST|VMDONE)' "$log" || true
case $qrc in
  1) exit 0 ;;                       # guest rc 0
  124) echo "vm/run.sh: qemu timed out (log: $log)" >&2; exit 1 ;;
  0) echo "vm/run.sh: the guest did not report (log: $log)" >&2; exit 1 ;;
  *) echo "vm/run.sh: guest rc $(( (qrc - 1) / 2 )) (log: $log)" >&2; exit 1 ;;
esac
