//! Maps: `BPF_MAP_CREATE`, the element commands, `BPF_MAP_FREEZE` and the
//! batch commands, on a [`MapFd`] that knows the sizes the kernel reads
//! and writes.

use core::mem::offset_of;

use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::io::Errno;

use super::{bpf, bpf_errno, bpf_fd, errno, inval};
use crate::attr::{BatchAttr, MapCreateAttr, MapElemAttr};
use crate::call::{Attr, Cmd};
use crate::error::{Result, SysError};

/// What `BPF_MAP_CREATE` needs.
#[derive(Debug, Default, Clone, Copy)]
pub struct MapCreate<'a> {
    /// `enum bpf_map_type`.
    pub map_type: u32,
    /// Key size.
    pub key_size: u32,
    /// Value size.
    pub value_size: u32,
    /// Maximum entries.
    pub max_entries: u32,
    /// Flags.
    pub map_flags: u32,
    /// Name (truncated to 15 bytes).
    pub name: &'a str,
    /// Inner map template (map-in-map).
    pub inner_map_fd: Option<BorrowedFd<'a>>,
    /// BTF describing key and value: (fd, key type id, value type id).
    pub btf: Option<(BorrowedFd<'a>, u32, u32)>,
    /// `map_extra`.
    pub map_extra: u64,
    /// NUMA node (with `BPF_F_NUMA_NODE`).
    pub numa_node: u32,
    /// struct_ops maps: the kernel's value type (`bpf_struct_ops_<name>`)
    /// in vmlinux BTF; `btf` must then carry the object's BTF fd with key
    /// and value type ids 0.
    pub btf_vmlinux_value_type_id: u32,
}

/// `BPF_MAP_CREATE`—Creates a map.
///
/// # Errors
/// The kernel's errno, as [`SysError`].
///
/// # References
/// bpf(2), `Documentation/bpf/maps.rst`.
#[doc(alias = "BPF_MAP_CREATE")]
pub fn map_create(m: &MapCreate<'_>) -> Result<OwnedFd> {
    type A = MapCreateAttr;
    let mut a = Attr::new(Cmd::MapCreate);
    a.put_u32(offset_of!(A, map_type), m.map_type);
    a.put_u32(offset_of!(A, key_size), m.key_size);
    a.put_u32(offset_of!(A, value_size), m.value_size);
    a.put_u32(offset_of!(A, max_entries), m.max_entries);
    a.put_u32(offset_of!(A, map_flags), m.map_flags);
    a.put_u32(offset_of!(A, numa_node), m.numa_node);
    a.put_name(offset_of!(A, map_name), m.name);
    if let Some(fd) = m.inner_map_fd {
        a.put_fd(offset_of!(A, inner_map_fd), fd);
    }
    if let Some((fd, k, v)) = m.btf {
        a.put_fd(offset_of!(A, btf_fd), fd);
        a.put_u32(offset_of!(A, btf_key_type_id), k);
        a.put_u32(offset_of!(A, btf_value_type_id), v);
    }
    a.put_u32(
        offset_of!(A, btf_vmlinux_value_type_id),
        m.btf_vmlinux_value_type_id,
    );
    a.put_u64(offset_of!(A, map_extra), m.map_extra);
    bpf_fd(&mut a)
}

/// `BPF_MAP_TYPE_{PERCPU_HASH,PERCPU_ARRAY,LRU_PERCPU_HASH,PERCPU_CGROUP_STORAGE}`.
const PERCPU_MAP_TYPES: [u32; 4] = [5, 6, 10, 21];

/// Elements processed by a batch command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Batch {
    /// Elements processed by this call (keys/values filled, for lookups).
    pub count: usize,
    /// The kernel said `ENOENT`: the iteration is over (the elements of this
    /// call, if any, are still valid).
    pub done: bool,
}

/// A failed batch command, with how many elements it processed first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchError {
    /// The errno.
    pub error: SysError,
    /// Elements processed before the failure.
    pub count: usize,
}

impl core::fmt::Display for BatchError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{} after {} elements", self.error, self.count)
    }
}

impl core::error::Error for BatchError {}

/// A map fd with the sizes the kernel reads and writes through it.
#[derive(Debug)]
pub struct MapFd {
    fd: OwnedFd,
    key_size: usize,
    value_len: usize,
}

impl MapFd {
    /// Wraps a map fd the caller believes has keys of `key_size` bytes and
    /// lookups of `value_len` bytes. Both are checked against the kernel's
    /// own description of the map, so a wrong belief is an error here and
    /// never a kernel write past a Rust slice later.
    ///
    /// # Errors
    /// `EINVAL` when `key_size` differs from the map's or `value_len` is
    /// shorter than what a lookup writes; the kernel's errno for
    /// `BPF_OBJ_GET_INFO_BY_FD`.
    ///
    /// # References
    /// bpf(2); `Documentation/bpf/maps.rst`.
    pub fn new(fd: OwnedFd, key_size: u32, value_len: usize) -> Result<MapFd> {
        const N: &str = Cmd::ObjGetInfoByFd.name();
        let m = MapFd::from_fd(fd)?;
        let same_key = usize::try_from(key_size).is_ok_and(|k| k == m.key_size);
        if !same_key || value_len < m.value_len {
            return Err(inval(N));
        }
        Ok(m)
    }

    /// Wraps a map fd, taking the key and value sizes from the kernel
    /// ([`map_info`](super::map_info)) rather than from the caller. For
    /// per-CPU maps a lookup writes the value size rounded up to 8 times
    /// the number of possible CPUs ([`crate::cpu::possible_cpus`], which
    /// per-CPU buffers trust).
    ///
    /// # Errors
    /// The kernel's errno for `BPF_OBJ_GET_INFO_BY_FD`; the error reading
    /// the possible CPUs of a per-CPU map; `EINVAL` for a value length that
    /// overflows.
    ///
    /// # References
    /// bpf(2); `Documentation/bpf/maps.rst`.
    pub fn from_fd(fd: OwnedFd) -> Result<MapFd> {
        const N: &str = Cmd::ObjGetInfoByFd.name();
        let info = super::map_info(fd.as_fd())?;
        let value = usize::try_from(info.value_size).map_err(|_| inval(N))?;
        let value_len = if PERCPU_MAP_TYPES.contains(&info.map_type) {
            let cpus = crate::cpu::possible_cpus()?;
            value
                .checked_next_multiple_of(8)
                .and_then(|v| v.checked_mul(usize::try_from(cpus).ok()?))
                .ok_or(inval(N))?
        } else {
            value
        };
        Ok(MapFd {
            fd,
            key_size: usize::try_from(info.key_size).map_err(|_| inval(N))?,
            value_len,
        })
    }

    /// The fd.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Bytes a lookup writes.
    pub fn value_len(&self) -> usize {
        self.value_len
    }

    /// Key size.
    pub fn key_size(&self) -> usize {
        self.key_size
    }

    /// Bytes of the resume token the batch commands read and write: hash
    /// maps use a `u32` bucket index, other maps a key.
    pub fn batch_token_len(&self) -> usize {
        self.key_size.max(4)
    }

    fn check(&self, cmd: Cmd, key: Option<&[u8]>, value: Option<usize>) -> Result<()> {
        let key_ok = key.is_none_or(|k| k.len() == self.key_size);
        let val_ok = value.is_none_or(|v| v >= self.value_len);
        if key_ok && val_ok {
            Ok(())
        } else {
            Err(inval(cmd.name()))
        }
    }

    fn elem<'a>(&'a self, cmd: Cmd, key: Option<&'a [u8]>, flags: u64) -> Attr<'a> {
        let mut a = Attr::new(cmd);
        a.put_fd(offset_of!(MapElemAttr, map_fd), self.fd());
        // Keyless maps (queue/stack, bloom filter) take a NULL key, which
        // is what an empty slice becomes.
        if let Some(k) = key {
            a.put_slice(offset_of!(MapElemAttr, key), k);
        }
        a.put_u64(offset_of!(MapElemAttr, flags), flags);
        a
    }

    /// `BPF_MAP_LOOKUP_ELEM`—Reads the value of `key` into `value`.
    ///
    /// # Errors
    /// `EINVAL` when the slices do not fit the map; `ENOENT` for a missing key.
    ///
    /// # References
    /// bpf(2); `Documentation/bpf/maps.rst`.
    #[doc(alias = "BPF_MAP_LOOKUP_ELEM")]
    pub fn lookup(&self, key: &[u8], value: &mut [u8], flags: u64) -> Result<()> {
        self.lookup_cmd(Cmd::MapLookupElem, key, value, flags)
    }

    /// `BPF_MAP_LOOKUP_AND_DELETE_ELEM`—Reads the value of `key` into
    /// `value` and deletes it; queue and stack maps take an empty key and
    /// pop their head.
    ///
    /// # Errors
    /// `EINVAL` when the slices do not fit the map; `ENOENT` for a missing
    /// key or an empty queue.
    ///
    /// # References
    /// bpf(2); `Documentation/bpf/maps.rst`.
    #[doc(alias = "BPF_MAP_LOOKUP_AND_DELETE_ELEM")]
    pub fn lookup_and_delete(&self, key: &[u8], value: &mut [u8], flags: u64) -> Result<()> {
        self.lookup_cmd(Cmd::MapLookupAndDeleteElem, key, value, flags)
    }

    fn lookup_cmd(&self, cmd: Cmd, key: &[u8], value: &mut [u8], flags: u64) -> Result<()> {
        self.check(cmd, Some(key), Some(value.len()))?;
        let mut a = self.elem(cmd, Some(key), flags);
        a.put_mut_slice(offset_of!(MapElemAttr, value), value);
        bpf(&mut a).map(drop)
    }

    /// `BPF_MAP_UPDATE_ELEM`—Sets `key` to `value` (`BPF_ANY` = 0,
    /// `BPF_NOEXIST` = 1, `BPF_EXIST` = 2). Keyless maps (queue, stack,
    /// bloom filter) take an empty key.
    ///
    /// # Errors
    /// `EINVAL` when the slices do not fit the map, or the kernel's errno.
    ///
    /// # References
    /// bpf(2); `Documentation/bpf/maps.rst`.
    #[doc(alias = "BPF_MAP_UPDATE_ELEM")]
    pub fn update(&self, key: &[u8], value: &[u8], flags: u64) -> Result<()> {
        let cmd = Cmd::MapUpdateElem;
        self.check(cmd, Some(key), Some(value.len()))?;
        let mut a = self.elem(cmd, Some(key), flags);
        a.put_slice(offset_of!(MapElemAttr, value), value);
        bpf(&mut a).map(drop)
    }

    /// `BPF_MAP_DELETE_ELEM`—Deletes `key`.
    ///
    /// # Errors
    /// `EINVAL` for a key of the wrong size, or the kernel's errno.
    ///
    /// # References
    /// bpf(2); `Documentation/bpf/maps.rst`.
    #[doc(alias = "BPF_MAP_DELETE_ELEM")]
    pub fn delete(&self, key: &[u8]) -> Result<()> {
        let cmd = Cmd::MapDeleteElem;
        self.check(cmd, Some(key), None)?;
        bpf(&mut self.elem(cmd, Some(key), 0)).map(drop)
    }

    /// `BPF_MAP_GET_NEXT_KEY`—The key after `key` (the first with `None`).
    ///
    /// # Errors
    /// `ENOENT` after the last key; `EINVAL` for slices of the wrong size.
    ///
    /// # References
    /// bpf(2); `Documentation/bpf/maps.rst`.
    #[doc(alias = "BPF_MAP_GET_NEXT_KEY")]
    pub fn next_key(&self, key: Option<&[u8]>, next: &mut [u8]) -> Result<()> {
        let cmd = Cmd::MapGetNextKey;
        self.check(cmd, key, None)?;
        if next.len() != self.key_size {
            return Err(inval(cmd.name()));
        }
        let mut a = self.elem(cmd, key, 0);
        a.put_mut_slice(offset_of!(MapElemAttr, value), next);
        bpf(&mut a).map(drop)
    }

    /// `BPF_MAP_FREEZE`—Makes the map read-only for user space.
    ///
    /// # Errors
    /// The kernel's errno.
    ///
    /// # References
    /// bpf(2); `Documentation/bpf/maps.rst`.
    #[doc(alias = "BPF_MAP_FREEZE")]
    pub fn freeze(&self) -> Result<()> {
        bpf(&mut self.elem(Cmd::MapFreeze, None, 0)).map(drop)
    }

    /// Checks a batch's buffers: `keys` holds a whole number `n` of keys,
    /// and `values` (when given) at least `n` values. Returns `n`.
    fn batch_count(&self, cmd: Cmd, keys: usize, values: Option<usize>) -> Result<u32, BatchError> {
        let bad = |e| BatchError {
            error: errno(cmd.name(), e),
            count: 0,
        };
        let n = keys.checked_div(self.key_size).ok_or(bad(Errno::INVAL))?;
        if keys.checked_rem(self.key_size) != Some(0) {
            return Err(bad(Errno::INVAL));
        }
        if let Some(v) = values {
            let need = n.checked_mul(self.value_len).ok_or(bad(Errno::INVAL))?;
            if v < need {
                return Err(bad(Errno::INVAL));
            }
        }
        u32::try_from(n).map_err(|_| bad(Errno::TOOBIG))
    }

    /// A batch attr without its buffers.
    fn batch_attr<'a>(&'a self, cmd: Cmd, count: u32, elem_flags: u64) -> Attr<'a> {
        let mut a = Attr::new(cmd);
        a.put_u32(offset_of!(BatchAttr, count), count);
        a.put_fd(offset_of!(BatchAttr, map_fd), self.fd());
        a.put_u64(offset_of!(BatchAttr, elem_flags), elem_flags);
        a
    }

    /// Runs a batch command that was given room for `count` elements.
    fn batch(a: &mut Attr<'_>, cmd: Cmd, count: u32, lookup: bool) -> Result<Batch, BatchError> {
        let r = bpf_errno(a);
        // The kernel never reports more than it was given room for; clamp
        // anyway so callers can slice with it.
        let done = a.get_u32(offset_of!(BatchAttr, count)).min(count);
        let done = usize::try_from(done).unwrap_or(usize::MAX);
        match r {
            Ok(_) => Ok(Batch {
                count: done,
                done: false,
            }),
            // ENOENT ends an iteration (lookups); for updates and deletes
            // it is a missing key.
            Err(e) if e == Errno::NOENT && lookup => Ok(Batch {
                count: done,
                done: true,
            }),
            Err(e) => Err(BatchError {
                error: errno(cmd.name(), e),
                count: done,
            }),
        }
    }

    fn lookup_batch_cmd(
        &self,
        cmd: Cmd,
        in_batch: Option<&[u8]>,
        out_batch: &mut [u8],
        keys: &mut [u8],
        values: &mut [u8],
        elem_flags: u64,
    ) -> Result<Batch, BatchError> {
        let n = self.batch_count(cmd, keys.len(), Some(values.len()))?;
        let tok = self.batch_token_len();
        if out_batch.len() < tok || in_batch.is_some_and(|b| b.len() < tok) {
            return Err(BatchError {
                error: inval(cmd.name()),
                count: 0,
            });
        }
        let mut a = self.batch_attr(cmd, n, elem_flags);
        if let Some(t) = in_batch {
            a.put_slice(offset_of!(BatchAttr, in_batch), t);
        }
        a.put_mut_slice(offset_of!(BatchAttr, out_batch), out_batch);
        a.put_mut_slice(offset_of!(BatchAttr, keys), keys);
        a.put_mut_slice(offset_of!(BatchAttr, values), values);
        MapFd::batch(&mut a, cmd, n, true)
    }

    /// `BPF_MAP_LOOKUP_BATCH`—Reads up to `keys.len() / key_size` elements,
    /// resuming after `in_batch` (`None`: from the start), and leaves the
    /// token for the next call in `out_batch`.
    ///
    /// `keys` must hold a whole number of keys and `values` at least as
    /// many values ([`MapFd::value_len`] each); both batch tokens need
    /// [`MapFd::batch_token_len`] bytes. The returned count says how many
    /// leading keys and values were filled; `done` is set when the kernel
    /// reported the end (`ENOENT`).
    ///
    /// # Errors
    /// `EINVAL` when a buffer does not fit; the kernel's errno (`ENOSPC`
    /// when a hash bucket holds more elements than the buffers), with the
    /// elements processed before it.
    ///
    /// # References
    /// bpf(2); `Documentation/bpf/maps.rst`.
    #[doc(alias = "BPF_MAP_LOOKUP_BATCH")]
    pub fn lookup_batch(
        &self,
        in_batch: Option<&[u8]>,
        out_batch: &mut [u8],
        keys: &mut [u8],
        values: &mut [u8],
        elem_flags: u64,
    ) -> Result<Batch, BatchError> {
        let cmd = Cmd::MapLookupBatch;
        self.lookup_batch_cmd(cmd, in_batch, out_batch, keys, values, elem_flags)
    }

    /// `BPF_MAP_LOOKUP_AND_DELETE_BATCH`—As [`MapFd::lookup_batch`], and
    /// deletes what it read.
    ///
    /// # Errors
    /// As [`MapFd::lookup_batch`].
    ///
    /// # References
    /// bpf(2); `Documentation/bpf/maps.rst`.
    #[doc(alias = "BPF_MAP_LOOKUP_AND_DELETE_BATCH")]
    pub fn lookup_and_delete_batch(
        &self,
        in_batch: Option<&[u8]>,
        out_batch: &mut [u8],
        keys: &mut [u8],
        values: &mut [u8],
        elem_flags: u64,
    ) -> Result<Batch, BatchError> {
        let cmd = Cmd::MapLookupAndDeleteBatch;
        self.lookup_batch_cmd(cmd, in_batch, out_batch, keys, values, elem_flags)
    }

    /// `BPF_MAP_UPDATE_BATCH`—Sets each of the `keys.len() / key_size` keys
    /// to the value at the same index of `values`; returns how many were
    /// set.
    ///
    /// # Errors
    /// `EINVAL` when the buffers do not fit; the kernel's errno, with the
    /// elements updated before it.
    ///
    /// # References
    /// bpf(2); `Documentation/bpf/maps.rst`.
    #[doc(alias = "BPF_MAP_UPDATE_BATCH")]
    pub fn update_batch(
        &self,
        keys: &[u8],
        values: &[u8],
        elem_flags: u64,
    ) -> Result<usize, BatchError> {
        let cmd = Cmd::MapUpdateBatch;
        let n = self.batch_count(cmd, keys.len(), Some(values.len()))?;
        let mut a = self.batch_attr(cmd, n, elem_flags);
        a.put_slice(offset_of!(BatchAttr, keys), keys);
        a.put_slice(offset_of!(BatchAttr, values), values);
        MapFd::batch(&mut a, cmd, n, false).map(|b| b.count)
    }

    /// `BPF_MAP_DELETE_BATCH`—Deletes each of the `keys.len() / key_size`
    /// keys; returns how many were deleted.
    ///
    /// # Errors
    /// `EINVAL` when `keys` is not a whole number of keys; the kernel's
    /// errno (`ENOENT` for a missing key), with the elements deleted before
    /// it.
    ///
    /// # References
    /// bpf(2); `Documentation/bpf/maps.rst`.
    #[doc(alias = "BPF_MAP_DELETE_BATCH")]
    pub fn delete_batch(&self, keys: &[u8], elem_flags: u64) -> Result<usize, BatchError> {
        let cmd = Cmd::MapDeleteBatch;
        let n = self.batch_count(cmd, keys.len(), None)?;
        let mut a = self.batch_attr(cmd, n, elem_flags);
        a.put_slice(offset_of!(BatchAttr, keys), keys);
        MapFd::batch(&mut a, cmd, n, false).map(|b| b.count)
    }
}
