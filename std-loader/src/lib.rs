//! ember: CO-RE eBPF loading in Rust — the std layer over [`ember_core`].
//!
//! [`EbpfLoader`] loads an object into the running kernel (kernel BTF
//! discovery, CO-RE, ksyms, maps, programs) and returns an [`Ebpf`] that
//! owns what was created; [`maps`] gives typed access to its maps. The
//! crate also hosts the `ember` CLI.
#![deny(unsafe_code)]

mod absent_module_btf;
pub mod attach;
pub mod btf_source;
pub mod btf_tree;
pub mod btf_value;
pub mod check;
pub mod error;
pub mod explain;
pub mod features;
pub mod gzip;
pub mod inspect;
pub mod kallsyms;
pub mod kernel_btf_objects;
pub mod ksym_lookup;
pub mod load;
pub mod mapped;
pub mod maps;
pub mod privilege;
pub mod write;

pub use attach::{AttachError, AttachErrorKind, AttachMode, AttachOpts, Link, Mechanism};
pub use ember_core;
pub use ember_sys;
pub use error::{Error, Result};
pub use load::spec::{
    self, AttachTarget, MapSpec, ObjectSpec, ProgramSpec, SpecError, TargetProgram,
};
pub use load::{Ebpf, EbpfLoader, LoadError, Program, Relocation, StructOpsMap};
pub use mapped::FileBytes;
pub use maps::{Map, MapError, MapErrorKind};

/// The README's examples, compiled as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeDoctests;
