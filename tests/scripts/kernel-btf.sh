#!/usr/bin/env bash
# Fetches Debian's linux-image package for the 6.1 kernel and extracts what
# the BTF tests compare against bpftool: the ELF vmlinux (whose .BTF is the
# kernel's BTF) and the module objects (whose .BTF is split BTF over it).
# Nothing here is committed: the output directory is a cache.
#
# Usage: tests/scripts/kernel-btf.sh [OUT_DIR]   (default: target/kernel-btf)
# Prints the directory holding vmlinux and modules/ on success.
set -euo pipefail

out=${1:-"$(dirname "$0")/../../target/kernel-btf"}
mkdir -p "$out"
out=$(cd "$out" && pwd)

if [ -s "$out/vmlinux" ] && [ -s "$out/modules/nf_conntrack_netlink.ko" ]; then
  echo "$out"
  exit 0
fi

need() { command -v "$1" >/dev/null 2>&1 || { echo "kernel-btf.sh: needs $1 ($2)" >&2; exit 1; }; }
need apt-get "Debian's apt"
need dpkg "Debian's dpkg"
need python3 "python3"

# The versioned package the linux-image-amd64 metapackage points at.
find_pkg() { apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/{print $2; exit}'; }
pkg=$(find_pkg)
if [ -z "$pkg" ] && [ "$(id -u)" = 0 ]; then
  apt-get update -qq >/dev/null 2>&1 || true
  pkg=$(find_pkg)
fi
if [ -z "$pkg" ]; then
  echo "kernel-btf.sh: apt knows no linux-image-amd64; run 'apt-get update' first" >&2
  exit 1
fi

work="$out/work"
rm -rf "$work"
mkdir -p "$work"
deb=$(ls /var/cache/ember-kernel/"$pkg"_*.deb 2>/dev/null | head -n1 || true)
if [ -z "$deb" ]; then
  (cd "$work" && apt-get download "$pkg" >/dev/null 2>&1)
  deb=$(ls "$work"/"$pkg"_*.deb | head -n1)
fi
dpkg -x "$deb" "$work/x"

# vmlinuz is a bzImage whose payload is XZ (CONFIG_KERNEL_XZ=y): find the XZ
# stream and decompress it to get the ELF vmlinux with its .BTF section.
python3 - "$work"/x/boot/vmlinuz-* "$out/vmlinux" <<'PY'
import lzma, sys
src, dst = sys.argv[1], sys.argv[2]
data = open(src, 'rb').read()
at = data.find(b'\xfd7zXZ\x00')
if at < 0:
    sys.exit("no XZ payload in " + src)
elf = lzma.LZMADecompressor(format=lzma.FORMAT_XZ).decompress(data[at:])
if elf[:4] != b'\x7fELF':
    sys.exit("payload is not ELF")
open(dst, 'wb').write(elf)
PY

mkdir -p "$out/modules"
for m in nf_conntrack nf_conntrack_netlink; do
  f=$(find "$work/x/lib/modules" -name "$m.ko" | head -n1)
  [ -n "$f" ] || { echo "kernel-btf.sh: $m.ko not in $pkg" >&2; exit 1; }
  cp "$f" "$out/modules/$m.ko"
done
echo "$pkg" > "$out/package"
rm -rf "$work"
echo "$out"
