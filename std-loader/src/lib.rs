//! ember: CO-RE eBPF loading in Rust — the std layer over [`ember_core`].
//!
//! Today it reads BTF files (mapping `/sys/kernel/btf/*`), and hosts the
//! `ember` CLI; the loader proper (maps, programs, kernel BTF discovery)
//! builds on this.
#![deny(unsafe_code)]

pub mod btf_source;
pub mod error;
pub mod explain;
pub mod inspect;
pub mod kallsyms;
pub mod mapped;
pub mod write;

pub use ember_core;
pub use error::{Error, Result};
pub use mapped::FileBytes;

/// The README's examples, compiled as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeDoctests;
