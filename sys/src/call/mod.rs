//! The bpf(2) command list and [`Attr`], the only way to build the bytes
//! a command hands the kernel.
//!
//! An [`Attr<'a>`] is one command's `bpf_attr` (or one `bpf_*_info`
//! struct) as bytes, plus every buffer it points at, each borrowed for
//! `'a`. Pointer fields can only be set from borrows (`put_slice`,
//! `put_mut_slice`, `put_cstr`, `put_nested`), integer fields only with
//! `put_u32`/`put_u64`/`put_fd`, and the per-command table in `table.rs` says which
//! offsets are which, whether the kernel writes through a pointer, and
//! which field bounds it. `raw::syscall` takes `&mut Attr` and refuses one
//! that [`Attr::check`] rejects, so the borrow checker keeps every pointee
//! alive for the call and the table keeps every kernel write inside a
//! `&mut` borrow of the right length.

use alloc::vec::Vec;
use core::ffi::CStr;
use core::marker::PhantomData;

use rustix::fd::{AsRawFd, BorrowedFd};
use rustix::io::Errno;

use crate::attr::OBJ_NAME_LEN;
use crate::id::ProgId;

mod table;

pub use table::Cmd;
pub(crate) use table::{Bound, Layout, PtrField};
use table::{MAX, MAX_PTRS, hits_ptr, ptr_at};

/// A borrowed buffer a pointer field points at.
#[derive(Debug)]
pub(crate) enum Pointee<'a> {
    /// Bytes the kernel reads.
    Bytes(&'a [u8]),
    /// `s32`s the kernel reads (`fd_array`).
    I32s(&'a [i32]),
    /// `u64`s the kernel reads (uprobe_multi offsets and cookies).
    U64s(&'a [u64]),
    /// NUL-terminated strings the kernel reads through an array of their
    /// addresses (`kprobe_multi.syms`): the array (second field) is owned
    /// by the attr, filled right before the call, and lives as long as it.
    CStrs(&'a [&'a CStr], Vec<u64>),
    /// Bytes the kernel may write.
    BytesMut(&'a mut [u8]),
    /// `u32`s the kernel may write (flags).
    U32sMut(&'a mut [u32]),
    /// Program ids the kernel may write (`#[repr(transparent)]` `u32`s,
    /// every value valid).
    ProgIdsMut(&'a mut [ProgId]),
    /// A nested struct the kernel may write (`bpf_*_info`), with its own
    /// pointers.
    Nested(&'a mut Attr<'a>),
}

impl Pointee<'_> {
    /// Length in bytes.
    pub(crate) fn byte_len(&self) -> usize {
        match self {
            Pointee::Bytes(b) => b.len(),
            Pointee::I32s(s) => s.len().saturating_mul(4),
            Pointee::U64s(s) => s.len().saturating_mul(8),
            Pointee::CStrs(s, _) => s.len().saturating_mul(8),
            Pointee::BytesMut(b) => b.len(),
            Pointee::U32sMut(s) => s.len().saturating_mul(4),
            Pointee::ProgIdsMut(s) => s.len().saturating_mul(4),
            Pointee::Nested(a) => a.len,
        }
    }

    fn writable(&self) -> bool {
        matches!(
            self,
            Pointee::BytesMut(_)
                | Pointee::U32sMut(_)
                | Pointee::ProgIdsMut(_)
                | Pointee::Nested(_)
        )
    }

    /// The address, taken from the borrow now (so it is derived from the
    /// live borrow right before the call).
    fn addr(&mut self) -> u64 {
        let p: *const u8 = match self {
            Pointee::Bytes(b) => b.as_ptr(),
            Pointee::I32s(s) => s.as_ptr().cast(),
            Pointee::U64s(s) => s.as_ptr().cast(),
            Pointee::CStrs(strs, addrs) => {
                for (a, s) in addrs.iter_mut().zip(strs.iter()) {
                    *a = s.as_ptr().expose_provenance() as u64;
                }
                addrs.as_ptr().cast()
            }
            Pointee::BytesMut(b) => b.as_mut_ptr(),
            Pointee::U32sMut(s) => s.as_mut_ptr().cast(),
            Pointee::ProgIdsMut(s) => s.as_mut_ptr().cast(),
            Pointee::Nested(a) => {
                a.fill_ptrs();
                a.buf.as_mut_ptr()
            }
        };
        // The kernel is outside the Rust abstract machine: expose the
        // provenance it will use.
        p.expose_provenance() as u64
    }
}

/// Element types a pointer field may point at.
pub(crate) trait Elem: Sized {
    /// A shared borrow as a pointee.
    fn shared(s: &[Self]) -> Option<Pointee<'_>>;
    /// An exclusive borrow as a pointee.
    fn exclusive(s: &mut [Self]) -> Option<Pointee<'_>>;
}

impl Elem for u8 {
    fn shared(s: &[u8]) -> Option<Pointee<'_>> {
        Some(Pointee::Bytes(s))
    }
    fn exclusive(s: &mut [u8]) -> Option<Pointee<'_>> {
        Some(Pointee::BytesMut(s))
    }
}

impl Elem for i32 {
    fn shared(s: &[i32]) -> Option<Pointee<'_>> {
        Some(Pointee::I32s(s))
    }
    fn exclusive(_: &mut [i32]) -> Option<Pointee<'_>> {
        None
    }
}

impl Elem for u64 {
    fn shared(s: &[u64]) -> Option<Pointee<'_>> {
        Some(Pointee::U64s(s))
    }
    fn exclusive(_: &mut [u64]) -> Option<Pointee<'_>> {
        None
    }
}

const _: () = assert!(size_of::<ProgId>() == 4 && align_of::<ProgId>() == 4);

impl Elem for ProgId {
    fn shared(_: &[ProgId]) -> Option<Pointee<'_>> {
        None
    }
    fn exclusive(s: &mut [ProgId]) -> Option<Pointee<'_>> {
        Some(Pointee::ProgIdsMut(s))
    }
}

impl Elem for u32 {
    fn shared(_: &[u32]) -> Option<Pointee<'_>> {
        None
    }
    fn exclusive(s: &mut [u32]) -> Option<Pointee<'_>> {
        Some(Pointee::U32sMut(s))
    }
}

/// One command's attr (or one info struct) under construction, borrowing
/// everything it points at for `'a`.
///
/// Invariants, kept by this module alone (the fields are private):
/// the bytes past `len` are zero; every pointer field of `layout` holds
/// zero or the address of the pointee stored beside it; each pointee is a
/// live borrow for `'a`, exclusive where the kernel writes. A misuse (an
/// integer put on a pointer field, a shared borrow where the kernel
/// writes, a length that does not fit) is recorded and makes the call
/// fail before reaching the kernel.
#[derive(Debug)]
pub(crate) struct Attr<'a> {
    layout: Layout,
    cmd: Option<Cmd>,
    len: usize,
    buf: [u8; MAX],
    ptrs: [Option<(usize, Pointee<'a>)>; MAX_PTRS],
    error: Option<Errno>,
    _borrows: PhantomData<&'a mut [u8]>,
}

impl<'a> Attr<'a> {
    fn with(layout: Layout, cmd: Option<Cmd>) -> Attr<'a> {
        Attr {
            layout,
            cmd,
            len: layout.size(),
            buf: [0; MAX],
            ptrs: [const { None }; MAX_PTRS],
            error: None,
            _borrows: PhantomData,
        }
    }

    /// A zeroed attr for `cmd`.
    pub(crate) fn new(cmd: Cmd) -> Attr<'a> {
        Attr::with(cmd.layout(), Some(cmd))
    }

    /// A zeroed attr for `cmd` read as `layout` (a union member other than
    /// the command's default, such as `BPF_LINK_CREATE`'s `iter_info`).
    pub(crate) fn with_layout(cmd: Cmd, layout: Layout) -> Attr<'a> {
        debug_assert!(layout.size() == cmd.layout().size());
        Attr::with(layout, Some(cmd))
    }

    /// A zeroed attr for `cmd` read as `layout`, a union member that runs
    /// past the command's default layout (`BPF_LINK_CREATE`'s
    /// `uprobe_multi`); the kernel takes the longer size.
    pub(crate) fn with_wider_layout(cmd: Cmd, layout: Layout) -> Attr<'a> {
        debug_assert!(layout.size() >= cmd.layout().size());
        Attr::with(layout, Some(cmd))
    }

    /// A zeroed info struct (`Layout::ProgInfo`, ...), for
    /// [`Attr::put_nested`] under a `BPF_OBJ_GET_INFO_BY_FD`.
    pub(crate) fn info(layout: Layout) -> Attr<'a> {
        Attr::with(layout, None)
    }

    /// The command (`None` for an info struct).
    pub(crate) fn cmd(&self) -> Option<Cmd> {
        self.cmd
    }

    /// The bytes the kernel sees (pointer fields are filled in by
    /// [`Attr::prepare`]).
    pub(crate) fn bytes(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or_default()
    }

    /// The pointer fields of this attr.
    fn ptr_fields(&self) -> &'static [PtrField] {
        match self.cmd {
            Some(c) if c.layout() == self.layout => c.ptrs(),
            _ => self.layout.ptrs(),
        }
    }

    fn fail(&mut self, e: Errno) {
        debug_assert!(e != Errno::INVAL, "attr misuse in {:?}", self.layout);
        self.error.get_or_insert(e);
    }

    fn put(&mut self, off: usize, v: &[u8]) {
        if hits_ptr(self.ptr_fields(), off, v.len()) {
            return self.fail(Errno::INVAL);
        }
        match self.buf.get_mut(..self.len).and_then(|b| {
            let end = off.checked_add(v.len())?;
            b.get_mut(off..end)
        }) {
            Some(d) => d.copy_from_slice(v),
            None => self.fail(Errno::INVAL),
        }
    }

    /// Writes an integer field.
    pub(crate) fn put_u32(&mut self, off: usize, v: u32) {
        self.put(off, &v.to_ne_bytes());
    }

    /// Writes a 64-bit integer field.
    pub(crate) fn put_u64(&mut self, off: usize, v: u64) {
        self.put(off, &v.to_ne_bytes());
    }

    /// Writes a `u32` length or count; more than `u32::MAX` fails the call
    /// with `E2BIG` (never a silent truncation).
    pub(crate) fn put_len(&mut self, off: usize, n: usize) {
        match u32::try_from(n) {
            Ok(v) => self.put_u32(off, v),
            Err(_) => self.fail(Errno::TOOBIG),
        }
    }

    /// Writes an fd field, borrowing the fd for the call.
    pub(crate) fn put_fd(&mut self, off: usize, fd: BorrowedFd<'a>) {
        // A BorrowedFd is never negative, so this cannot fail; should it,
        // the call fails instead of sending a wrapped number.
        match u32::try_from(fd.as_raw_fd()) {
            Ok(v) => self.put_u32(off, v),
            Err(_) => self.fail(Errno::BADF),
        }
    }

    /// Copies a name into a NUL-padded kernel name field (truncating to
    /// `BPF_OBJ_NAME_LEN - 1` bytes).
    pub(crate) fn put_name(&mut self, off: usize, name: &str) {
        let n = name.len().min(OBJ_NAME_LEN - 1);
        self.put(off, name.as_bytes().get(..n).unwrap_or_default());
    }

    fn put_ptr(&mut self, off: usize, p: Option<Pointee<'a>>) {
        let Some(field) = ptr_at(self.ptr_fields(), off) else {
            return self.fail(Errno::INVAL);
        };
        let Some(p) = p else {
            return self.fail(Errno::INVAL);
        };
        if field.write && !p.writable() {
            return self.fail(Errno::INVAL);
        }
        // An array of string addresses goes only where the table says
        // one is read, and nothing else goes there.
        if matches!(field.bound, Bound::Strings(_)) != matches!(p, Pointee::CStrs(..)) {
            return self.fail(Errno::INVAL);
        }
        if p.byte_len() == 0 {
            // An empty buffer goes as NULL: the kernel cannot write
            // through it, and a NULL with size 0 never means "unbounded".
            return self.clear_ptr(off);
        }
        self.clear_ptr(off);
        match self.ptrs.iter_mut().find(|s| s.is_none()) {
            Some(slot) => *slot = Some((off, p)),
            None => self.fail(Errno::INVAL),
        }
    }

    /// Forgets the pointee at `off` and zeroes the field, so an address a
    /// previous `prepare` wrote there cannot outlive its borrow.
    fn clear_ptr(&mut self, off: usize) {
        for s in &mut self.ptrs {
            if s.as_ref().is_some_and(|(o, _)| *o == off) {
                *s = None;
            }
        }
        if let Some(d) = self.buf.get_mut(off..off.saturating_add(8)) {
            d.fill(0);
        }
    }

    /// Points `off` at `s`, which the kernel only reads.
    pub(crate) fn put_slice<T: Elem>(&mut self, off: usize, s: &'a [T]) {
        self.put_ptr(off, T::shared(s));
    }

    /// Points `off` at `s`, which the kernel may write.
    pub(crate) fn put_mut_slice<T: Elem>(&mut self, off: usize, s: &'a mut [T]) {
        self.put_ptr(off, T::exclusive(s));
    }

    /// Points `off` at a NUL-terminated string.
    pub(crate) fn put_cstr(&mut self, off: usize, s: &'a CStr) {
        self.put_ptr(off, Some(Pointee::Bytes(s.to_bytes_with_nul())));
    }

    /// Points `off` at an array of the addresses of `strs` (built here),
    /// which the kernel reads with the strings.
    pub(crate) fn put_cstrs(&mut self, off: usize, strs: &'a [&'a CStr]) {
        self.put_ptr(off, Some(Pointee::CStrs(strs, alloc::vec![0; strs.len()])));
    }

    /// Points `off` at a nested info struct the kernel fills.
    pub(crate) fn put_nested(&mut self, off: usize, a: &'a mut Attr<'a>) {
        if a.cmd.is_some() {
            return self.fail(Errno::INVAL);
        }
        self.put_ptr(off, Some(Pointee::Nested(a)));
    }

    /// Reads back a `u32` (what the kernel wrote, after the call).
    pub(crate) fn get_u32(&self, off: usize) -> u32 {
        u32::from_ne_bytes(self.get_bytes(off))
    }

    /// Reads back a `u64`.
    pub(crate) fn get_u64(&self, off: usize) -> u64 {
        u64::from_ne_bytes(self.get_bytes(off))
    }

    /// Reads back `N` bytes at `off` (zeros if out of range).
    pub(crate) fn get_bytes<const N: usize>(&self, off: usize) -> [u8; N] {
        get_bytes(self.bytes(), off)
    }

    /// The nested struct at `off`, to read what the kernel wrote.
    pub(crate) fn nested(&self, off: usize) -> Option<&Attr<'a>> {
        self.ptrs.iter().flatten().find_map(|(o, p)| match p {
            Pointee::Nested(a) if *o == off => Some(&**a),
            _ => None,
        })
    }

    /// The pointee at `off` (for the fake kernel in tests).
    #[cfg(test)]
    pub(crate) fn pointee_mut(&mut self, off: usize) -> Option<&mut Pointee<'a>> {
        self.ptrs
            .iter_mut()
            .flatten()
            .find_map(|(o, p)| (*o == off).then_some(p))
    }

    /// Checks the invariants that keep the kernel inside the borrows:
    /// no recorded misuse, and every length field bounding a pointer
    /// describes at most the pointee (and, for buffers the kernel writes,
    /// is not zero: `data_size_out == 0` means "unbounded").
    ///
    /// # Errors
    /// The first misuse's errno (`EINVAL`, `E2BIG`, `EBADF`).
    pub(crate) fn check(&self) -> Result<(), Errno> {
        if let Some(e) = self.error {
            return Err(e);
        }
        for (off, p) in self.ptrs.iter().flatten() {
            let field = ptr_at(self.ptr_fields(), *off).ok_or(Errno::INVAL)?;
            let bound = match field.bound {
                Bound::Field(len, unit) => {
                    usize::try_from(self.get_u32(len)).map_or(None, |n| n.checked_mul(unit))
                }
                Bound::Product(a, b) => usize::try_from(self.get_u32(a))
                    .ok()
                    .zip(usize::try_from(self.get_u32(b)).ok())
                    .and_then(|(a, b)| a.checked_mul(b)),
                Bound::Strings(cnt) => match p {
                    Pointee::CStrs(..) => {
                        usize::try_from(self.get_u32(cnt)).map_or(None, |n| n.checked_mul(8))
                    }
                    _ => None,
                },
                Bound::Object => Some(p.byte_len()),
            };
            let bound = bound.ok_or(Errno::INVAL)?;
            if bound > p.byte_len() || (field.write && bound == 0) {
                return Err(Errno::INVAL);
            }
            if let Pointee::Nested(a) = p {
                a.check()?;
            }
        }
        Ok(())
    }

    /// Writes every pointer field from its borrow, right before the call.
    fn fill_ptrs(&mut self) {
        let mut vals = [(0usize, 0u64); MAX_PTRS];
        for (v, s) in vals.iter_mut().zip(self.ptrs.iter_mut()) {
            if let Some((off, p)) = s {
                *v = (*off, p.addr());
            }
        }
        for (off, addr) in vals {
            if off != 0 || addr != 0 {
                if let Some(d) = self.buf.get_mut(off..off.saturating_add(8)) {
                    d.copy_from_slice(&addr.to_ne_bytes());
                }
            }
        }
    }

    /// Checks the attr and fills in its pointers; returns the bytes to
    /// pass. Only `raw::syscall` calls this.
    pub(crate) fn prepare(&mut self) -> Result<&mut [u8], Errno> {
        self.check()?;
        self.fill_ptrs();
        self.buf.get_mut(..self.len).ok_or(Errno::INVAL)
    }
}

/// Reads `N` bytes at `off` (zeros if out of range).
pub(crate) fn get_bytes<const N: usize>(buf: &[u8], off: usize) -> [u8; N] {
    buf.get(off..)
        .and_then(<[u8]>::first_chunk::<N>)
        .copied()
        .unwrap_or([0; N])
}

/// Reads a `u32` at `off` (zero if out of range).
pub(crate) fn get32(buf: &[u8], off: usize) -> u32 {
    u32::from_ne_bytes(get_bytes(buf, off))
}

/// Reads a `u64` at `off` (zero if out of range).
pub(crate) fn get64(buf: &[u8], off: usize) -> u64 {
    u64::from_ne_bytes(get_bytes(buf, off))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attr::*;
    use core::mem::offset_of;

    #[test]
    fn integers_cannot_land_on_pointers() {
        let mut a = Attr::new(Cmd::ProgLoad);
        a.put_u32(offset_of!(ProgLoadAttr, prog_type), 1);
        assert_eq!(a.check(), Ok(()));
        let mut a = Attr::new(Cmd::ProgLoad);
        let r = std::panic::catch_unwind(core::panic::AssertUnwindSafe(|| {
            a.put_u64(offset_of!(ProgLoadAttr, insns), 0xdead);
        }));
        // Debug builds assert; either way the call is refused.
        if r.is_ok() {
            assert_eq!(a.check(), Err(Errno::INVAL));
        }
    }

    #[test]
    fn writes_need_exclusive_borrows_and_fitting_lengths() {
        let buf = [0u8; 16];
        let mut a = Attr::new(Cmd::ProgTestRun);
        let r = std::panic::catch_unwind(core::panic::AssertUnwindSafe(|| {
            a.put_slice(offset_of!(TestRunAttr, ctx_in), &buf[..]);
        }));
        if r.is_ok() {
            assert_eq!(a.check(), Err(Errno::INVAL));
        }
        let mut out = [0u8; 16];
        let mut a = Attr::new(Cmd::ProgTestRun);
        a.put_mut_slice(offset_of!(TestRunAttr, data_out), &mut out[..]);
        a.put_u32(offset_of!(TestRunAttr, data_size_out), 17);
        assert_eq!(a.check(), Err(Errno::INVAL));
        a.put_u32(offset_of!(TestRunAttr, data_size_out), 0);
        assert_eq!(a.check(), Err(Errno::INVAL), "0 means unbounded");
        a.put_u32(offset_of!(TestRunAttr, data_size_out), 16);
        assert_eq!(a.check(), Ok(()));
        let p = a.prepare().unwrap();
        assert_ne!(get64(p, offset_of!(TestRunAttr, data_out)), 0);
    }

    #[test]
    fn a_replaced_pointer_leaves_no_stale_address() {
        let mut out = [0u8; 16];
        let mut a = Attr::new(Cmd::ProgTestRun);
        a.put_mut_slice(offset_of!(TestRunAttr, data_out), &mut out[..]);
        a.put_u32(offset_of!(TestRunAttr, data_size_out), 16);
        let p = a.prepare().unwrap();
        assert_ne!(get64(p, offset_of!(TestRunAttr, data_out)), 0);
        // An empty buffer goes as NULL: the address written by the first
        // prepare must not stay behind, unchecked, for a larger size.
        a.put_mut_slice(offset_of!(TestRunAttr, data_out), &mut [0u8; 0][..]);
        a.put_u32(offset_of!(TestRunAttr, data_size_out), 4096);
        let p = a.prepare().unwrap();
        assert_eq!(get64(p, offset_of!(TestRunAttr, data_out)), 0);
    }

    #[test]
    fn info_pointers_refuse_integers() {
        let mut a = Attr::info(Layout::ProgInfo);
        let r = std::panic::catch_unwind(core::panic::AssertUnwindSafe(|| {
            a.put_u64(offset_of!(BpfProgInfo, map_ids), 0x1000);
        }));
        if r.is_ok() {
            assert_eq!(a.check(), Err(Errno::INVAL));
        }
    }

    #[test]
    fn oversized_lengths_are_e2big() {
        let mut a = Attr::new(Cmd::BtfLoad);
        a.put_len(offset_of!(BtfLoadAttr, btf_size), usize::MAX);
        assert_eq!(a.check(), Err(Errno::TOOBIG));
    }
}
