//! ember-core: the `#![no_std]` heart of ember, a Compile-Once-Run-Everywhere
//! eBPF loader.
//!
//! Layers, each borrowing from the one before:
//! - [`btf::raw`]: on-disk records and constants, as in `uapi/linux/btf.h`;
//! - [`btf::Btf`] and its views ([`btf::Type`], members, enumerators, ...):
//!   a zero-copy, fully validated view of a BTF blob, split BTF included;
//! - [`btf::dump`]: bpftool-compatible raw listings and C headers.
//! - [`btf::encode`]: BTF from typed records (byte-exact on canonical
//!   input); [`minimize`]: BTF cut down to what CO-RE relocations use.
//!
//! # Robustness contract
//! Every function here is a pure function of bytes. Malformed input returns
//! an [`Error`] naming the byte offset and the rule broken; it never panics,
//! never loops without bound and allocates in proportion to the input
//! (one `u32` per type, plus the optional name index).
//!
//! # Example
//! ```
//! use ember_core::btf::{Btf, Kind};
//! // A blob with one type: `int`, 4 bytes, signed.
//! let mut b = vec![0x9f, 0xeb, 1, 0, 24, 0, 0, 0];
//! for w in [0u32, 16, 16, 5] { b.extend_from_slice(&w.to_le_bytes()); }
//! for w in [1u32, 0x0100_0000, 4, 0x0100_0020] { b.extend_from_slice(&w.to_le_bytes()); }
//! b.extend_from_slice(b"\0int\0");
//! let btf = Btf::parse(&b).unwrap();
//! let id = btf.find_by_name_kind("int", Kind::Int).unwrap();
//! assert_eq!(btf.resolve_size(id).unwrap(), 4);
//! ```
//!
//! # Features and MSRV
//! No features; needs `alloc`. MSRV 1.87.
#![no_std]
#![forbid(unsafe_code)]
#![cfg_attr(
    not(test),
    deny(
        clippy::indexing_slicing,
        clippy::arithmetic_side_effects,
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic
    )
)]

extern crate alloc;

pub mod btf;
mod bytes;
pub mod error;
pub mod ext;
pub mod id;
pub mod insn;
mod kind;
pub mod ksym;
pub mod limits;
pub mod load;
pub mod minimize;
pub mod object;
pub mod order;
pub mod reloc;

pub use bytes::Endian;
pub use error::{Error, ErrorKind, Result};
