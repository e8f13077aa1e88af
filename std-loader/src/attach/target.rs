//! What the families share on the way to the kernel: opening a target
//! given by path, and a plain bpf_link to an object fd.

use std::fs::File;
use std::path::Path;

use ember_sys::{BorrowedFd, LinkCreate, LinkExtra, LinkTarget, link_create};

use super::link::Inner;
use super::{AttachError, AttachErrorKind as K, Link, Mechanism};
use crate::Program;

impl Program {
    /// Opens the target at `path` (`what`: `cgroup`, `network
    /// namespace`), returning it and its description for errors and the
    /// link. A missing path is [`K::NotFound`] naming it.
    pub(crate) fn open_target(
        &self,
        path: &Path,
        what: &str,
    ) -> Result<(File, String), AttachError> {
        let target = format!("{what} '{}'", path.display());
        match File::open(path) {
            Ok(f) => Ok((f, target)),
            Err(source) => {
                let kind = if source.kind() == std::io::ErrorKind::NotFound {
                    K::NotFound(target.clone())
                } else {
                    K::Io {
                        path: path.to_owned(),
                        source,
                    }
                };
                Err(self.attach_err(target, kind))
            }
        }
    }

    /// A bpf_link from this program to the object `fd` (`BPF_LINK_CREATE`
    /// with no type-dependent tail), described as `target`.
    pub(crate) fn link_to_fd(
        &self,
        fd: BorrowedFd<'_>,
        attach_type: u32,
        target: String,
    ) -> Result<Link, AttachError> {
        let link = link_create(&LinkCreate {
            prog: self.fd(),
            target: LinkTarget::Fd(fd),
            attach_type,
            flags: 0,
            extra: LinkExtra::None,
        })
        .map_err(|e| self.attach_err(&target, K::Sys(e)))?;
        let inner = Inner::Fd {
            link,
            perf: None,
            probe: None,
        };
        Ok(Link::new(self.name(), target, Mechanism::BpfLink, inner))
    }
}
