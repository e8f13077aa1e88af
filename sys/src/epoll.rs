//! The epoll plumbing the ring and perf buffer readers share.

use alloc::vec::Vec;
use core::time::Duration;

use rustix::event::epoll;
use rustix::fd::OwnedFd;
use rustix::io::Errno;

use crate::error::{Result, SysError};

/// Converts a timeout for epoll: `None` blocks.
fn timespec(timeout: Option<Duration>) -> Option<rustix::event::Timespec> {
    timeout.map(|d| rustix::event::Timespec {
        // Clamped to what epoll_wait takes in milliseconds (~24 days).
        tv_sec: i64::try_from(d.as_secs())
            .unwrap_or(i64::MAX)
            .min(2_000_000),
        tv_nsec: i64::from(d.subsec_nanos()),
    })
}

/// An empty epoll event slot.
const NO_EVENT: epoll::Event = epoll::Event {
    flags: epoll::EventFlags::empty(),
    data: epoll::EventData::new_u64(0),
};

/// `epoll_create1(EPOLL_CLOEXEC)`.
pub(crate) fn create() -> Result<OwnedFd> {
    #[cfg(feature = "fault-inject")]
    crate::fault::check_named("epoll_create1").map_err(|errno| SysError {
        cmd: "epoll_create1",
        errno,
    })?;
    epoll::create(epoll::CreateFlags::CLOEXEC).map_err(|errno| SysError {
        cmd: "epoll_create1",
        errno,
    })
}

/// Registers `fd` for input with `token`.
pub(crate) fn add(epoll: &OwnedFd, fd: rustix::fd::BorrowedFd<'_>, token: usize) -> Result<()> {
    let fail = |errno| SysError {
        cmd: "epoll_ctl",
        errno,
    };
    let token = u64::try_from(token).map_err(|_| fail(Errno::NOSPC))?;
    #[cfg(feature = "fault-inject")]
    crate::fault::check_named("epoll_ctl").map_err(fail)?;
    epoll::add(
        epoll,
        fd,
        epoll::EventData::new_u64(token),
        epoll::EventFlags::IN,
    )
    .map_err(fail)
}

/// Room for one epoll event per registered fd (`epoll::Event` has no
/// `Debug`).
#[derive(Default)]
pub(crate) struct Events(Vec<epoll::Event>);

impl core::fmt::Debug for Events {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Events({})", self.0.len())
    }
}

impl Events {
    /// One more slot.
    pub(crate) fn grow(&mut self) {
        self.0.push(NO_EVENT);
    }

    /// Waits up to `timeout` (`None`: for ever) and returns the tokens of
    /// the ready fds.
    pub(crate) fn wait(
        &mut self,
        epoll: &OwnedFd,
        timeout: Option<Duration>,
    ) -> Result<impl Iterator<Item = usize> + '_> {
        let ts = timespec(timeout);
        let n =
            epoll::wait(epoll, self.0.as_mut_slice(), ts.as_ref()).map_err(|errno| SysError {
                cmd: "epoll_wait",
                errno,
            })?;
        Ok(self
            .0
            .iter()
            .take(n)
            .map(|e| usize::try_from(e.data.u64()).unwrap_or(usize::MAX)))
    }
}
