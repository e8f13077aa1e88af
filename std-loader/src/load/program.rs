//! Loading one program: link, attach target, verifier log that grows until
//! it fits, and poisoned instructions traced back to their origin.

use super::needs::{attach_name, needs_attach_btf};
use super::*;

impl Loading<'_, '_> {
    #[allow(
        clippy::too_many_arguments,
        reason = "one call site; the pieces of a load"
    )]
    pub(super) fn load_program(
        &self,
        fi: usize,
        code: &[Vec<u8>],
        map_fd: &dyn Fn(usize) -> Option<i32>,
        btf_fd: Option<&OwnedFd>,
        kernel: Option<&Targets<'_>>,
        relocations: &[Relocation],
        resolved: &[Resolved],
        fd_array: &[BorrowedFd<'_>],
    ) -> Result<Program, LoadError> {
        let obj = self.obj;
        let f = obj
            .functions
            .get(fi)
            .ok_or(LoadError::Object(ember_core::Error::new(
                ember_core::ErrorKind::BadCallTarget(ember_core::id::SectionInsn(0)),
                0,
            )))?;
        let section = obj
            .code_section(f.section)
            .map_or("", |c| c.name)
            .to_owned();
        let opts = self.spec.programs.get(fi).cloned().unwrap_or_default();
        let def = f.sec_def;
        let prog_type = opts.prog_type.or(def.map(|d| d.prog_type)).ok_or_else(|| {
            LoadError::UnknownSection {
                program: f.name.to_owned(),
                section: section.clone(),
            }
        })?;
        let mut attach_type = opts
            .attach_type
            .unwrap_or_else(|| def.and_then(|d| d.attach_type));
        // A map left uncreated by the spec: name it and the program,
        // rather than hand the kernel fd -1.
        let missing = core::cell::Cell::new(None);
        let map_fd = |m: ember_core::id::MapIndex| {
            let fd = map_fd(m.index());
            if fd.is_none() && missing.get().is_none() {
                missing.set(Some(m));
            }
            fd
        };
        let linked = prep::link_program(obj, code, ember_core::id::FuncIndex(fi), &map_fd)
            .map_err(LoadError::Object)?;
        if let Some(m) = missing.get() {
            return Err(LoadError::MapNotCreated {
                program: f.name.to_owned(),
                map: obj.map(m).map_or_else(String::new, |m| m.name.to_string()),
            });
        }
        let mut attach_btf_id = 0;
        let mut attach_module: Option<OwnedFd> = None;
        let by_id = match &opts.attach_target {
            Some(crate::load::spec::AttachTarget::VmlinuxBtfId(id)) => Some(*id),
            _ => None,
        };
        let target_prog = match &opts.attach_target {
            Some(super::spec::AttachTarget::Program { prog, function }) => Some((prog, function)),
            _ => None,
        };
        if prog_type == ProgType::STRUCT_OPS {
            // The kernel struct and the member this program implements.
            let (id, member) =
                self.struct_ops
                    .attach(fi)
                    .ok_or_else(|| LoadError::TargetProgram {
                        program: f.name.to_owned(),
                        what: "struct_ops program used by no struct_ops map".into(),
                        source: None,
                    })?;
            attach_btf_id = id;
            attach_type = Some(AttachType(member));
        } else if let Some((prog, function)) = target_prog {
            let function = if function.is_empty() {
                f.attach_target.unwrap_or("")
            } else {
                function.as_str()
            };
            attach_btf_id = target_func_id(f.name, prog.as_fd(), function)?;
        } else if prog_type == ProgType::EXT {
            return Err(LoadError::TargetProgram {
                program: f.name.to_owned(),
                what: "freplace programs need the program whose function they replace: \
                       set AttachTarget::Program"
                    .into(),
                source: None,
            });
        } else if let Some(id) = by_id {
            attach_btf_id = id;
        } else if needs_attach_btf(prog_type, attach_type) {
            let target = match &opts.attach_target {
                Some(crate::load::spec::AttachTarget::Function(name)) => name.as_str(),
                _ => f.attach_target.unwrap_or(""),
            };
            let (name, kind) = attach_name(attach_type.unwrap_or(AttachType(0)), target);
            // vmlinux first, then modules (a module function's BTF id is
            // only meaningful with that module's BTF object fd).
            let found = kernel.and_then(|t| {
                (0..=t.modules.len()).find_map(|i| {
                    let id = t.btf(i)?.find_by_name_kind(&name, kind)?;
                    // Split BTF finds base ids too: take the module's own.
                    (i == 0 || id >= t.btf(i)?.start_id()).then(|| (i, t.name(i), id))
                })
            });
            let (target, module, id) = found.ok_or_else(|| LoadError::AttachTarget {
                program: f.name.to_owned(),
                target: name.clone(),
            })?;
            attach_btf_id = id.0;
            if target != 0 {
                let fd = crate::kernel_btf_objects::module_btf_fd(module).map_err(|source| {
                    LoadError::ModuleBtf {
                        module: module.to_owned(),
                        needed_by: format!("program '{}'", f.name),
                        source,
                    }
                })?;
                attach_module = Some(fd);
            }
        }
        let license = CString::new(obj.license.unwrap_or("")).unwrap_or_default();
        // Kernels before 5.0 check a kprobe's version against their own:
        // SEC("version") when given, else the running kernel's (libbpf).
        let kern_version = if prog_type == ProgType::KPROBE {
            obj.kern_version
                .unwrap_or_else(super::kconfig::running_kernel_version)
        } else {
            0
        };
        let flags = opts.flags.unwrap_or_else(|| {
            let mut flags = 0;
            if def.is_some_and(|d| d.sleepable) {
                flags |= crate::load::spec::F_SLEEPABLE;
            }
            if def.is_some_and(|d| d.xdp_frags) {
                flags |= crate::load::spec::F_XDP_HAS_FRAGS;
            }
            flags
        });
        // func/line info name BTF FUNCs: without kernel FUNC support they
        // were rewritten away, and the kernel would refuse the records.
        let prog_btf = btf_fd
            .filter(|_| self.feat.btf_kinds.func)
            .map(|fd| ProgBtf {
                fd: fd.as_fd(),
                func_info: &linked.func_info,
                func_info_rec_size: FUNC_INFO_SIZE,
                line_info: &linked.line_info,
                line_info_rec_size: LINE_INFO_SIZE,
            });
        let attempt = |log: Option<&mut [u8]>, level: u32| {
            prog_load(&mut ProgLoad {
                prog_type: prog_type.0,
                expected_attach_type: attach_type.map_or(0, |a| a.0),
                insns: &linked.insns,
                license: &license,
                name: f.name,
                log,
                log_level: level,
                prog_flags: flags,
                btf: prog_btf,
                attach_btf_id,
                // The same field: a module's BTF, or the target program.
                attach_btf_obj_fd: attach_module
                    .as_ref()
                    .map(AsFd::as_fd)
                    .or(target_prog.map(|(p, _)| p.as_fd())),
                kern_version,
                fd_array,
                ifindex: opts.ifindex,
            })
        };
        let program = |fd, log| Program {
            name: f.name.to_owned(),
            section: section.clone(),
            prog_type,
            attach_type,
            attach_btf_id,
            insn_count: linked.insns.len() / INSN_SIZE,
            fd,
            log,
        };
        // Fast path: no log unless asked for.
        let mut size = opts.log_size.unwrap_or(self.cfg.log_size).max(64 * 1024);
        let level = opts.log_level.unwrap_or(self.cfg.log_level);
        if level == 0 {
            if let Ok(fd) = attempt(None, 0) {
                return Ok(program(fd, String::new()));
            }
        }
        // With a log, growing the buffer until the whole log fits.
        loop {
            let mut buf = vec![0u8; size];
            match attempt(Some(&mut buf), level.max(1)) {
                Ok(fd) => return Ok(program(fd, log_text(&buf))),
                Err(e) => {
                    let want = e.log_true_size as usize;
                    let truncated = e.error.errno == Errno::NOSPC || want > size;
                    if truncated && size < MAX_LOG {
                        size = want.max(size * 4).min(MAX_LOG);
                        continue;
                    }
                    let log = log_text(&buf);
                    let cause =
                        super::poison::poison_cause(&log, self.obj, &linked, relocations, resolved)
                            .or_else(|| crate::privilege::helper_cause(&log));
                    let eperm = crate::privilege::explain_errno(
                        e.error.errno,
                        crate::privilege::Operation::ProgLoad {
                            prog_type,
                            attach_type,
                            empty_log: log.trim().is_empty(),
                        },
                    );
                    return Err(LoadError::ProgLoad {
                        program: f.name.to_owned(),
                        source: e.error,
                        log,
                        cause,
                        eperm,
                    });
                }
            }
        }
    }
}

/// The BTF id of FUNC `function` in the BTF of program `prog` (freplace,
/// fentry/fexit on a BPF program): `prog_info` → BTF id → the BTF's bytes.
fn target_func_id(program: &str, prog: BorrowedFd<'_>, function: &str) -> Result<u32, LoadError> {
    let fail = |what: String, source| LoadError::TargetProgram {
        program: program.to_owned(),
        what,
        source,
    };
    let info = ember_sys::prog_info(prog)
        .map_err(|e| fail("the target program's info cannot be read".into(), Some(e)))?;
    if info.btf_id.0 == 0 {
        return Err(fail(
            format!(
                "target program '{}' has no BTF to find '{function}' in",
                info.name()
            ),
            None,
        ));
    }
    let mut data = Vec::new();
    ember_sys::get_fd_by_id(info.btf_id, 0)
        .and_then(|fd| ember_sys::btf_info_full(fd.as_fd(), Some(&mut data)))
        .map_err(|e| fail("the target program's BTF cannot be read".into(), Some(e)))?;
    let btf = Btf::parse(&data).map_err(LoadError::Object)?;
    let id = btf.find_by_name_kind(function, Kind::Func).ok_or_else(|| {
        fail(
            format!(
                "target program '{}' has no function '{function}'",
                info.name()
            ),
            None,
        )
    })?;
    Ok(id.0)
}

pub(super) fn log_text(buf: &[u8]) -> String {
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}
