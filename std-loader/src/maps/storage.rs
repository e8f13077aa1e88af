//! Local storage: a value attached to a socket, task, inode or cgroup,
//! addressed from user space by an fd of that object.

use core::marker::PhantomData;
use std::os::fd::AsRawFd;

use bytemuck::Pod;
use ember_core::object::MapType;
use ember_sys::BorrowedFd;

use super::{Map, MapError, pod};

/// A socket, task, inode or cgroup local storage map of `V`. The key is an
/// fd: a socket for `sk_storage`, a pidfd for `task_storage`, any file for
/// `inode_storage`, a cgroup directory for `cgrp_storage`.
#[derive(Debug)]
pub struct LocalStorage<'m, V> {
    map: &'m Map,
    _t: PhantomData<V>,
}

impl<'m, V: Pod> LocalStorage<'m, V> {
    /// A view over `map`, which must be a local storage map of `V`.
    ///
    /// # Errors
    /// [`MapErrorKind::Mismatch`](super::MapErrorKind::Mismatch) naming
    /// what differs.
    pub fn new(map: &'m Map) -> Result<Self, MapError> {
        map.expect(
            &[
                MapType::SK_STORAGE,
                MapType::TASK_STORAGE,
                MapType::INODE_STORAGE,
                MapType::CGRP_STORAGE,
            ],
            4,
            size_of::<V>(),
        )?;
        Ok(LocalStorage {
            map,
            _t: PhantomData,
        })
    }

    /// The value stored on the object behind `owner`.
    ///
    /// # Errors
    /// The kernel's error other than "none stored" (`EBADF` for an fd of
    /// the wrong kind).
    pub fn get(&self, owner: BorrowedFd<'_>) -> Result<Option<V>, MapError> {
        Ok(self.map.lookup(&key(owner))?.map(|v| pod(&v)))
    }

    /// Stores `value` on the object behind `owner`.
    ///
    /// # Errors
    /// The kernel's error.
    pub fn insert(&self, owner: BorrowedFd<'_>, value: &V, flags: u64) -> Result<(), MapError> {
        self.map
            .update(&key(owner), bytemuck::bytes_of(value), flags)
    }

    /// Removes the value stored on the object behind `owner`.
    ///
    /// # Errors
    /// The kernel's error.
    pub fn remove(&self, owner: BorrowedFd<'_>) -> Result<bool, MapError> {
        self.map.delete(&key(owner))
    }
}

fn key(fd: BorrowedFd<'_>) -> [u8; 4] {
    fd.as_raw_fd().to_ne_bytes()
}
