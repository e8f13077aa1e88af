//! Preparing an object for the kernel, with no system calls: the BTF the
//! kernel will accept ([`kernel_btf`]) and each program's final
//! instruction stream with its func/line records ([`link_program`]).
//! The std loader (crate `ember`) feeds these to `bpf(2)`; a `no_std`
//! loader can do the same through `ember-sys`.

#![cfg_attr(not(test), deny(clippy::cast_possible_truncation))]

mod btf_fix;
mod kernel;
mod link;

pub use btf_fix::{BtfFeatures, kernel_btf};
pub use kernel::{
    attach_name, kernel_version, map_takes_btf, needs_attach_btf, ring_size, running_version_code,
};
pub use link::{FUNC_INFO_SIZE, LINE_INFO_SIZE, Linked, Piece, link_program};

#[cfg(test)]
mod tests;
