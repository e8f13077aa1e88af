//! Shared helpers for the benches (libbpf FFI lives in the bench files).
