//! Maps whose values are kernel objects given by fd: prog arrays and
//! maps of maps.

use std::os::fd::AsRawFd;

use ember_core::object::MapType;
use ember_sys::BorrowedFd;

use super::{ANY, Map, MapError, pod};

/// A prog array (tail-call table).
#[derive(Debug)]
pub struct ProgArray<'m> {
    map: &'m Map,
}

/// An array or hash of maps.
#[derive(Debug)]
pub struct MapOfMaps<'m> {
    map: &'m Map,
}

impl<'m> ProgArray<'m> {
    /// A view over `map`, which must be a prog array.
    ///
    /// # Errors
    /// [`MapErrorKind::Mismatch`](super::MapErrorKind::Mismatch) naming what differs.
    pub fn new(map: &'m Map) -> Result<Self, MapError> {
        map.expect(&[MapType::PROG_ARRAY], 4, 4)?;
        Ok(ProgArray { map })
    }

    /// Puts program `prog` at `index`.
    ///
    /// # Errors
    /// The kernel's error (`EINVAL` for an incompatible program).
    pub fn set(&self, index: u32, prog: BorrowedFd<'_>) -> Result<(), MapError> {
        let fd = prog.as_raw_fd() as u32;
        self.map
            .update(&index.to_ne_bytes(), &fd.to_ne_bytes(), ANY)
    }

    /// The id of the program at `index` (the kernel returns ids, not fds).
    ///
    /// # Errors
    /// The kernel's error other than "empty slot".
    pub fn get_id(&self, index: u32) -> Result<Option<u32>, MapError> {
        Ok(self.map.lookup(&index.to_ne_bytes())?.map(|v| pod(&v)))
    }

    /// Empties slot `index`.
    ///
    /// # Errors
    /// The kernel's error.
    pub fn clear(&self, index: u32) -> Result<bool, MapError> {
        self.map.delete(&index.to_ne_bytes())
    }
}

impl<'m> MapOfMaps<'m> {
    /// A view over `map`, which must be an array or hash of maps.
    ///
    /// # Errors
    /// [`MapErrorKind::Mismatch`](super::MapErrorKind::Mismatch) naming what differs.
    pub fn new(map: &'m Map) -> Result<Self, MapError> {
        map.expect(
            &[MapType::ARRAY_OF_MAPS, MapType::HASH_OF_MAPS],
            map.key_size as usize,
            4,
        )?;
        Ok(MapOfMaps { map })
    }

    /// Puts the map `inner` under `key`.
    ///
    /// # Errors
    /// The kernel's error (`EINVAL` when `inner` does not match the
    /// template).
    pub fn set(&self, key: &[u8], inner: BorrowedFd<'_>) -> Result<(), MapError> {
        let fd = inner.as_raw_fd() as u32;
        self.map.update(key, &fd.to_ne_bytes(), ANY)
    }

    /// The id of the map under `key`.
    ///
    /// # Errors
    /// The kernel's error other than "absent".
    pub fn get_id(&self, key: &[u8]) -> Result<Option<u32>, MapError> {
        Ok(self.map.lookup(key)?.map(|v| pod(&v)))
    }
}

/// Encodes an fd as the kernel's `u32` map value.
fn fd_value(fd: BorrowedFd<'_>) -> [u8; 4] {
    // Open fds are never negative.
    (fd.as_raw_fd() as u32).to_ne_bytes()
}

/// A sockmap (array of sockets) or sockhash (hash of sockets), for
/// `sk_msg`/`sk_skb` redirects. Values are given as socket fds; the
/// kernel answers lookups with the socket's cookie when the value is
/// 8 bytes wide (and refuses them when it is 4).
#[derive(Debug)]
pub struct SockMap<'m> {
    map: &'m Map,
}

impl<'m> SockMap<'m> {
    /// A view over `map`, which must be a sockmap or sockhash.
    ///
    /// # Errors
    /// [`MapErrorKind::Mismatch`](super::MapErrorKind::Mismatch) naming
    /// what differs.
    pub fn new(map: &'m Map) -> Result<Self, MapError> {
        let value = map.value_size as usize;
        map.expect(
            &[MapType::SOCKMAP, MapType::SOCKHASH],
            map.key_size as usize,
            if value == 8 { 8 } else { 4 },
        )?;
        Ok(SockMap { map })
    }

    /// Puts socket `sock` under `key` (a `u32` index for a sockmap).
    ///
    /// # Errors
    /// The kernel's error (`EOPNOTSUPP` for a socket type or state the
    /// map cannot hold).
    pub fn set(&self, key: &[u8], sock: BorrowedFd<'_>, flags: u64) -> Result<(), MapError> {
        let mut v = [0u8; 8];
        v[..4].copy_from_slice(&fd_value(sock));
        let len = self.map.value_size as usize;
        self.map.update(key, &v[..len], flags)
    }

    /// The cookie of the socket under `key` (maps with 8-byte values).
    ///
    /// # Errors
    /// The kernel's error other than "absent".
    pub fn cookie(&self, key: &[u8]) -> Result<Option<u64>, MapError> {
        Ok(self.map.lookup(key)?.map(|v| pod(&v)))
    }

    /// Removes the socket under `key`; `false` when there was none.
    ///
    /// # Errors
    /// The kernel's error.
    pub fn remove(&self, key: &[u8]) -> Result<bool, MapError> {
        self.map.delete(key)
    }
}

/// What a devmap or cpumap slot sends packets to, with an optional program
/// that runs on them there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RedirectSlot {
    /// The interface index (devmap) or queue size (cpumap).
    pub target: u32,
    /// The id of the program attached to the slot, if any (lookups only).
    pub prog_id: Option<u32>,
}

/// An XDP redirect map whose value is `{ u32 target; u32 prog }`: a
/// devmap or devmap-hash (target: ifindex) or a cpumap (target: queue
/// size, key: CPU).
#[derive(Debug)]
pub struct RedirectMap<'m> {
    map: &'m Map,
}

impl<'m> RedirectMap<'m> {
    /// A view over `map`, which must be a devmap, devmap-hash or cpumap.
    ///
    /// # Errors
    /// [`MapErrorKind::Mismatch`](super::MapErrorKind::Mismatch) naming
    /// what differs.
    pub fn new(map: &'m Map) -> Result<Self, MapError> {
        let value = map.value_size as usize;
        map.expect(
            &[MapType::DEVMAP, MapType::DEVMAP_HASH, MapType::CPUMAP],
            4,
            if value == 8 { 8 } else { 4 },
        )?;
        Ok(RedirectMap { map })
    }

    /// Sets slot `key` to `target` (ifindex or queue size), with `prog`
    /// run on redirected packets (needs 8-byte values).
    ///
    /// # Errors
    /// The kernel's error (`ENODEV` for an unknown ifindex, `EINVAL` for
    /// a program that is not an XDP program of the right attach type, or
    /// a program in a map with 4-byte values).
    pub fn set(&self, key: u32, target: u32, prog: Option<BorrowedFd<'_>>) -> Result<(), MapError> {
        let mut v = [0u8; 8];
        v[..4].copy_from_slice(&target.to_ne_bytes());
        let len = self.map.value_size as usize;
        if let Some(p) = prog {
            v[4..].copy_from_slice(&fd_value(p));
            if len != 8 {
                return Err(self.map.error(
                    "update",
                    super::MapErrorKind::Mismatch(
                        "a slot program needs 8-byte values (struct bpf_devmap_val / bpf_cpumap_val)"
                            .into(),
                    ),
                ));
            }
        }
        self.map.update(&key.to_ne_bytes(), &v[..len], ANY)
    }

    /// Slot `key`: its target and the id of its program.
    ///
    /// # Errors
    /// The kernel's error other than "absent".
    pub fn get(&self, key: u32) -> Result<Option<RedirectSlot>, MapError> {
        Ok(self.map.lookup(&key.to_ne_bytes())?.map(|v| {
            let w: [u32; 2] = pod(&v);
            RedirectSlot {
                target: w[0],
                prog_id: (v.len() == 8 && w[1] != 0).then_some(w[1]),
            }
        }))
    }

    /// Empties slot `key`.
    ///
    /// # Errors
    /// The kernel's error.
    pub fn remove(&self, key: u32) -> Result<bool, MapError> {
        self.map.delete(&key.to_ne_bytes())
    }
}

/// An `XSKMAP`: AF_XDP sockets by queue index, for `bpf_redirect_map` from
/// XDP. User space can set and clear slots; the kernel does not answer
/// lookups from user space.
#[derive(Debug)]
pub struct XskMap<'m> {
    map: &'m Map,
}

impl<'m> XskMap<'m> {
    /// A view over `map`, which must be an xskmap.
    ///
    /// # Errors
    /// [`MapErrorKind::Mismatch`](super::MapErrorKind::Mismatch) naming
    /// what differs.
    pub fn new(map: &'m Map) -> Result<Self, MapError> {
        map.expect(&[MapType::XSKMAP], 4, 4)?;
        Ok(XskMap { map })
    }

    /// Puts AF_XDP socket `xsk` (bound to a device queue) at `index`.
    ///
    /// # Errors
    /// The kernel's error (`EOPNOTSUPP` for a socket that is not a bound
    /// AF_XDP socket, `E2BIG` past the end).
    pub fn set(&self, index: u32, xsk: BorrowedFd<'_>) -> Result<(), MapError> {
        self.map.update(&index.to_ne_bytes(), &fd_value(xsk), ANY)
    }

    /// Empties slot `index` (the kernel does not say whether it held a
    /// socket: an empty slot is emptied without error).
    ///
    /// # Errors
    /// The kernel's error (`EINVAL` past the end).
    pub fn remove(&self, index: u32) -> Result<(), MapError> {
        self.map.delete(&index.to_ne_bytes()).map(drop)
    }
}
