# shellcheck shell=bash
# RUSTFLAGS of the shipped static `ember` (sourced by tests/vm/run.sh and
# tests/vm/size.sh): static, with its relative relocations packed as RELR
# (`-z pack-relative-relocs`: GNU ld >= 2.38 or lld >= 15; musl >= 1.2.4
# and glibc >= 2.36 apply them at startup). The binary stays
# position-independent (ASLR) with a 0.5 KiB .relr.dyn instead of a
# 37 KiB .rela.dyn.
EMBER_STATIC_RUSTFLAGS='-C target-feature=+crt-static -C link-arg=-Wl,-z,pack-relative-relocs'
export EMBER_STATIC_RUSTFLAGS
