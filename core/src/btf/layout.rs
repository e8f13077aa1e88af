//! Sizes and alignment of BTF types, bounded and cycle-safe.

use super::{Btf, Kind, TypeId};
use crate::error::{Error, ErrorKind, Result};
use crate::limits::MAX_RESOLVE_DEPTH;

impl Btf<'_> {
    /// Size in bytes of `id`, following typedefs, modifiers, VARs and
    /// DECL_TAGs, multiplying out arrays (libbpf's `btf__resolve_size`).
    ///
    /// # Errors
    /// [`ErrorKind::NoSize`] for void, FWD, FUNC and FUNC_PROTO;
    /// [`ErrorKind::SizeOverflow`] when an array's size passes `u32`;
    /// [`ErrorKind::TypeChainTooDeep`] past 32 links.
    pub fn resolve_size(&self, id: TypeId) -> Result<u32> {
        let start = id;
        let mut id = id;
        let mut nelems: u64 = 1;
        for _ in 0..MAX_RESOLVE_DEPTH {
            if id == TypeId::VOID {
                return Err(Error::new(ErrorKind::NoSize(start), 0));
            }
            let t = self.type_by_id(id)?;
            let size = match t.kind() {
                Kind::Int
                | Kind::Struct
                | Kind::Union
                | Kind::Enum
                | Kind::Enum64
                | Kind::Datasec
                | Kind::Float => t.size(),
                Kind::Ptr => self.pointer_size(),
                Kind::Typedef
                | Kind::Volatile
                | Kind::Const
                | Kind::Restrict
                | Kind::Var
                | Kind::DeclTag
                | Kind::TypeTag => {
                    id = t.type_id();
                    continue;
                }
                Kind::Array => {
                    let a = t
                        .as_array()
                        .ok_or(Error::new(ErrorKind::NoSize(start), 0))?;
                    nelems = nelems.saturating_mul(u64::from(a.nelems));
                    if nelems > u64::from(u32::MAX) {
                        return Err(Error::new(ErrorKind::SizeOverflow(start), 0));
                    }
                    id = a.elem_type;
                    continue;
                }
                _ => return Err(Error::new(ErrorKind::NoSize(start), 0)),
            };
            let total = nelems.saturating_mul(u64::from(size));
            return u32::try_from(total).map_err(|_| Error::new(ErrorKind::SizeOverflow(start), 0));
        }
        Err(Error::new(ErrorKind::TypeChainTooDeep(start), 0))
    }

    /// Natural alignment of `id` as C would lay it out (libbpf's
    /// `btf__align_of`): scalars min(size, pointer size); composites the
    /// largest member alignment, or 1 when packed.
    ///
    /// # Errors
    /// As [`Btf::resolve_size`], and for kinds without alignment.
    pub fn align_of(&self, id: TypeId) -> Result<u32> {
        self.align_of_depth(id, 0)
    }

    fn align_of_depth(&self, id: TypeId, depth: u32) -> Result<u32> {
        if depth >= MAX_RESOLVE_DEPTH {
            return Err(Error::new(ErrorKind::TypeChainTooDeep(id), 0));
        }
        let t = self.type_by_id(id)?;
        let next = depth.saturating_add(1);
        match t.kind() {
            Kind::Int | Kind::Enum | Kind::Enum64 | Kind::Float => {
                Ok(t.size().min(self.pointer_size()).max(1))
            }
            Kind::Ptr => Ok(self.pointer_size()),
            Kind::Typedef
            | Kind::Volatile
            | Kind::Const
            | Kind::Restrict
            | Kind::TypeTag
            | Kind::Var
            | Kind::DeclTag => self.align_of_depth(t.type_id(), next),
            Kind::Array => {
                let a = t.as_array().ok_or(Error::new(ErrorKind::NoSize(id), 0))?;
                self.align_of_depth(a.elem_type, next)
            }
            Kind::Struct | Kind::Union => {
                let mut max = 1u32;
                for m in t.members() {
                    let align = self.align_of_depth(m.type_id, next)?;
                    // A non-bitfield member off its natural alignment means
                    // the struct is packed.
                    if m.bitfield_size == 0
                        && !m.bit_offset.is_multiple_of(8u32.saturating_mul(align))
                    {
                        return Ok(1);
                    }
                    max = max.max(align);
                }
                if !t.size().is_multiple_of(max) {
                    return Ok(1);
                }
                Ok(max)
            }
            _ => Err(Error::new(ErrorKind::NoSize(id), 0)),
        }
    }
}
