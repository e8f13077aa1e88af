//! struct_ops: the object's struct_ops maps placed in the running
//! kernel's layout, their programs loaded against the kernel struct, and
//! the maps registered (a map update, or a link for `.struct_ops.link`).
//!
//! As libbpf (`find_struct_ops_kern_types`, `bpf_map__init_kern_struct_ops`):
//! for a local `struct NAME`, the kernel has `struct NAME` and the map value
//! type `struct bpf_struct_ops_NAME`, whose member `data` is a `struct
//! NAME`. Each program set at a member is loaded with `attach_btf_id` = the
//! kernel struct and `expected_attach_type` = the kernel member's index.
//! The value is built member by member, by name: programs' fds at
//! function pointers, other members copied when their sizes agree, zero
//! where the object does not say.

use ember_core::btf::TypeId;
use ember_core::object::StructOps;
use ember_core::object::struct_ops::is_func_ptr;
use ember_sys::{LinkCreate, LinkExtra, LinkTarget, MapFd, link_create};

use super::*;

/// `BPF_MAP_TYPE_STRUCT_OPS`.
const MAP_TYPE_STRUCT_OPS: u32 = 26;
/// `BPF_F_LINK`: the map is registered through a link.
const F_LINK: u32 = 1 << 13;
/// `BPF_STRUCT_OPS` attach type (`link_create` of a struct_ops map).
const ATTACH_STRUCT_OPS: u32 = 44;

/// One struct_ops map matched to the running kernel.
#[derive(Debug)]
pub(super) struct KernStructOps {
    /// Index in `Object::struct_ops`.
    map: usize,
    /// The kernel's `struct NAME`.
    kern_type: TypeId,
    /// The kernel's `struct bpf_struct_ops_NAME`.
    value_type: TypeId,
    /// Its size: the map's value size.
    value_size: u32,
    /// Offset of its member `data`.
    data_off: u32,
}

/// What struct_ops needs before programs load: the kernel types of every
/// map, and for each program used by one, its attach type id and member.
#[derive(Debug, Default)]
pub(super) struct Plan {
    maps: Vec<KernStructOps>,
    /// Function index → (kernel struct id, kernel member index).
    attach: HashMap<usize, (u32, u32)>,
}

impl Plan {
    /// Where struct_ops program `fi` attaches, `None` when no map uses it
    /// (then it is not loaded, as in libbpf).
    pub(super) fn attach(&self, fi: usize) -> Option<(u32, u32)> {
        self.attach.get(&fi).copied()
    }
}

/// A registered struct_ops map: dropping it unregisters it (closing the
/// link, or deleting key 0 of a map registered by update).
#[derive(Debug)]
pub struct StructOpsMap {
    name: String,
    value_size: u32,
    map: MapFd,
    link: Option<OwnedFd>,
}

impl StructOpsMap {
    /// The map's name (its variable's).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The map's value size: the kernel's `struct bpf_struct_ops_NAME`.
    pub fn value_size(&self) -> u32 {
        self.value_size
    }

    /// The map fd.
    pub fn map_fd(&self) -> BorrowedFd<'_> {
        self.map.fd()
    }

    /// The link fd, for a `.struct_ops.link` map.
    pub fn link_fd(&self) -> Option<BorrowedFd<'_>> {
        self.link.as_ref().map(AsFd::as_fd)
    }
}

impl Drop for StructOpsMap {
    fn drop(&mut self) {
        if self.link.is_none() {
            // Registered by update: the kernel holds the map until it is
            // deleted (libbpf's detach of a link-less struct_ops).
            let _ = self.map.delete(&0u32.to_ne_bytes());
        }
    }
}

fn fail(m: &StructOps<'_>, what: String) -> LoadError {
    LoadError::StructOps {
        map: m.name.to_owned(),
        what,
        source: None,
    }
}

impl Loading<'_, '_> {
    /// Whether function `fi` is a struct_ops program no map uses (libbpf
    /// does not load those).
    pub(super) fn unused_struct_ops(&self, fi: usize) -> bool {
        let opts = self.spec.programs.get(fi);
        let prog_type = opts.and_then(|o| o.prog_type).or_else(|| {
            self.obj
                .functions
                .get(fi)
                .and_then(|f| f.sec_def)
                .map(|d| d.prog_type)
        });
        prog_type == Some(ProgType::STRUCT_OPS) && self.struct_ops.attach(fi).is_none()
    }

    /// Matches each struct_ops map to the running kernel's types.
    pub(super) fn plan_struct_ops(&self, kernel: Option<&Targets<'_>>) -> Result<Plan, LoadError> {
        let obj = self.obj;
        let mut plan = Plan::default();
        if obj.struct_ops.is_empty() {
            return Ok(plan);
        }
        for (i, m) in obj.struct_ops.iter().enumerate() {
            let Some(k) = kernel else {
                return Err(fail(m, "needs the running kernel's BTF".into()));
            };
            let kb = k.main;
            let missing = || {
                fail(
                    m,
                    format!(
                        "this kernel has no struct_ops type 'struct {}' (no 'struct bpf_struct_ops_{0}' in its BTF)",
                        m.type_name
                    ),
                )
            };
            let kern_type = kb
                .find_by_name_kind(m.type_name, Kind::Struct)
                .ok_or_else(missing)?;
            let value_type = kb
                .find_by_name_kind(&format!("bpf_struct_ops_{}", m.type_name), Kind::Struct)
                .ok_or_else(missing)?;
            let vt = kb.type_by_id(value_type).map_err(LoadError::Object)?;
            let data = vt
                .members()
                .find(|mb| kb.str_at(mb.name_off).is_ok_and(|n| n == "data"))
                .filter(|mb| kb.skip_mods_and_typedefs(mb.type_id).ok() == Some(kern_type))
                .ok_or_else(missing)?;
            let kt = kb.type_by_id(kern_type).map_err(LoadError::Object)?;
            for p in &m.progs {
                let (kidx, kmember) = kt
                    .members()
                    .enumerate()
                    .find(|(_, km)| kb.str_at(km.name_off).is_ok_and(|n| n == p.member_name))
                    .ok_or_else(|| {
                        fail(
                            m,
                            format!(
                                "member '{}': not in this kernel's struct {}",
                                p.member_name, m.type_name
                            ),
                        )
                    })?;
                if !is_func_ptr(kb, kmember.type_id) {
                    return Err(fail(
                        m,
                        format!(
                            "member '{}': not a function pointer in this kernel's struct {}",
                            p.member_name, m.type_name
                        ),
                    ));
                }
                let at = (kern_type.0, kidx as u32);
                let prev = plan.attach.insert(p.func.index(), at);
                if prev.is_some_and(|prev| prev != at) {
                    let prog = obj.function(p.func).map_or("", |f| f.name);
                    return Err(fail(
                        m,
                        format!(
                            "member '{}': program '{prog}' is also used at another struct or member",
                            p.member_name
                        ),
                    ));
                }
            }
            plan.maps.push(KernStructOps {
                map: i,
                kern_type,
                value_type,
                value_size: vt.size(),
                data_off: data.bit_offset / 8,
            });
        }
        Ok(plan)
    }

    /// Creates, fills and registers every struct_ops map, once its
    /// programs are loaded.
    pub(super) fn register_struct_ops(
        &mut self,
        plan: &Plan,
        kernel: Option<&Targets<'_>>,
        btf_fd: Option<&OwnedFd>,
        programs: &[Program],
        prog_of_func: &HashMap<usize, usize>,
    ) -> Result<Vec<StructOpsMap>, LoadError> {
        let obj = self.obj;
        let mut out = Vec::new();
        let (Some(local), Some(k)) = (obj.btf.as_ref(), kernel) else {
            return Ok(out);
        };
        for ks in &plan.maps {
            let Some(m) = obj.struct_ops.get(ks.map) else {
                continue;
            };
            let value = self.struct_ops_value(m, ks, local, k.main, programs, prog_of_func)?;
            let Some(btf_fd) = btf_fd else {
                return Err(fail(
                    m,
                    "needs the object's BTF, which the kernel did not take".into(),
                ));
            };
            let sys = |what: &str, source| LoadError::StructOps {
                map: m.name.to_owned(),
                what: what.to_owned(),
                source: Some(source),
            };
            let fd = map_create(&MapCreate {
                map_type: MAP_TYPE_STRUCT_OPS,
                key_size: 4,
                value_size: ks.value_size,
                max_entries: 1,
                map_flags: if m.link { F_LINK } else { 0 },
                name: m.name,
                btf: Some((btf_fd.as_fd(), 0, 0)),
                btf_vmlinux_value_type_id: ks.value_type.0,
                ..MapCreate::default()
            })
            .map_err(|e| sys("map creation", e))?;
            let map = MapFd::from_fd(fd).map_err(|e| sys("map creation", e))?;
            map.update(&0u32.to_ne_bytes(), &value, 0)
                .map_err(|e| sys("registration (map update)", e))?;
            let link = if m.link {
                let fd = link_create(&LinkCreate {
                    prog: map.fd(),
                    target: LinkTarget::None,
                    attach_type: ATTACH_STRUCT_OPS,
                    flags: 0,
                    extra: LinkExtra::None,
                })
                .map_err(|e| sys("registration (link)", e))?;
                Some(fd)
            } else {
                None
            };
            self.notes.push(format!(
                "struct_ops map '{}' (struct {}) registered{}",
                m.name,
                m.type_name,
                if m.link { " through a link" } else { "" }
            ));
            out.push(StructOpsMap {
                name: m.name.to_owned(),
                value_size: ks.value_size,
                map,
                link,
            });
        }
        Ok(out)
    }

    /// The map value in the kernel's layout: `bpf_struct_ops_NAME` with
    /// `data` filled from the local struct by member name.
    #[allow(clippy::too_many_arguments, reason = "one call site")]
    fn struct_ops_value(
        &self,
        m: &StructOps<'_>,
        ks: &KernStructOps,
        local: &Btf<'_>,
        kb: &Btf<'_>,
        programs: &[Program],
        prog_of_func: &HashMap<usize, usize>,
    ) -> Result<Vec<u8>, LoadError> {
        let mut value = vec![0u8; ks.value_size as usize];
        let lt = local.type_by_id(m.type_id).map_err(LoadError::Object)?;
        let kt = kb.type_by_id(ks.kern_type).map_err(LoadError::Object)?;
        for (li, lm) in lt.members().enumerate() {
            let name = local.str_at(lm.name_off).unwrap_or("");
            let lsize = if is_func_ptr(local, lm.type_id) {
                8
            } else {
                local.resolve_size(lm.type_id).map_err(LoadError::Object)?
            };
            let loff = lm.bit_offset / 8;
            let prog = m.prog_at(li as u32);
            let bytes = m.bytes(loff, lsize).unwrap_or_default();
            let is_set = prog.is_some() || bytes.iter().any(|&b| b != 0);
            let member = |what: &str| fail(m, format!("member '{name}': {what}"));
            let Some(km) = kt
                .members()
                .find(|km| !name.is_empty() && kb.str_at(km.name_off).is_ok_and(|n| n == name))
            else {
                if is_set {
                    return Err(member(&format!(
                        "set in the object, but this kernel's struct {} has no such member",
                        m.type_name
                    )));
                }
                continue;
            };
            if lm.bitfield_size != 0 || km.bitfield_size != 0 {
                if is_set {
                    return Err(member("bitfields are not supported"));
                }
                continue;
            }
            let koff = ks
                .data_off
                .checked_add(km.bit_offset / 8)
                .ok_or_else(|| member("lies outside the kernel's value"))?;
            let kfn = is_func_ptr(kb, km.type_id);
            if let Some(f) = prog {
                let fd = prog_of_func
                    .get(&f.index())
                    .and_then(|&i| programs.get(i))
                    .map(|p| std::os::fd::AsRawFd::as_raw_fd(&p.fd))
                    .ok_or_else(|| member("its program was not loaded"))?;
                let at = value
                    .get_mut(koff as usize..koff as usize + 8)
                    .ok_or_else(|| member("lies outside the kernel's value"))?;
                at.copy_from_slice(&(fd as u64).to_ne_bytes());
                continue;
            }
            if !is_set {
                continue;
            }
            if kfn {
                return Err(member(
                    "a function pointer set to something other than a program",
                ));
            }
            let ksize = kb.resolve_size(km.type_id).map_err(LoadError::Object)?;
            if ksize != lsize {
                return Err(member(&format!(
                    "{lsize} bytes here, {ksize} in the kernel's struct {}",
                    m.type_name
                )));
            }
            let end = koff
                .checked_add(ksize)
                .ok_or_else(|| member("lies outside the kernel's value"))?;
            let at = value
                .get_mut(koff as usize..end as usize)
                .ok_or_else(|| member("lies outside the kernel's value"))?;
            at.copy_from_slice(&bytes);
        }
        Ok(value)
    }
}
