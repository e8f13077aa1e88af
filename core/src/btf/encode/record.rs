//! The encoder's input: one typed record per type, and the decoding of a
//! parsed [`Type`] into one.

use alloc::vec::Vec;

use super::oom;
use crate::btf::raw::TYPE_LEN;
use crate::btf::{Array, DatasecEntry, Enumerator, Kind, Member, Param, StrOffset, Type, TypeId};
use crate::error::Result;

/// What follows the `btf_type` header of a record, by kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Body<'r> {
    /// INT: storage size in bytes, `BTF_INT_*` encoding, legacy bit offset,
    /// value bits.
    Int {
        /// Size in bytes.
        size: u32,
        /// `BTF_INT_SIGNED` / `_CHAR` / `_BOOL`.
        encoding: u8,
        /// Legacy bit offset.
        offset: u8,
        /// Number of value bits.
        bits: u8,
    },
    /// PTR to a type.
    Ptr(TypeId),
    /// ARRAY.
    Array(Array),
    /// STRUCT of `size` bytes; members' `bitfield_size` needs the kind flag.
    Struct {
        /// Size in bytes.
        size: u32,
        /// Members in order.
        members: &'r [Member],
    },
    /// UNION, as STRUCT.
    Union {
        /// Size in bytes.
        size: u32,
        /// Members in order.
        members: &'r [Member],
    },
    /// ENUM: values are truncated to 32 bits; the kind flag means signed.
    Enum {
        /// Size in bytes.
        size: u32,
        /// Enumerators in order.
        values: &'r [Enumerator],
    },
    /// FWD; the kind flag means union.
    Fwd,
    /// TYPEDEF of a type.
    Typedef(TypeId),
    /// VOLATILE.
    Volatile(TypeId),
    /// CONST.
    Const(TypeId),
    /// RESTRICT.
    Restrict(TypeId),
    /// FUNC: prototype and linkage.
    Func {
        /// The FUNC_PROTO.
        proto: TypeId,
        /// 0 static, 1 global, 2 extern.
        linkage: u32,
    },
    /// FUNC_PROTO: return type and parameters.
    FuncProto {
        /// Return type (void = 0).
        ret: TypeId,
        /// Parameters; `{0, void}` last means varargs.
        params: &'r [Param],
    },
    /// VAR: type and linkage.
    Var {
        /// Its type.
        type_id: TypeId,
        /// 0 static, 1 global, 2 extern.
        linkage: u32,
    },
    /// DATASEC: size and entries.
    Datasec {
        /// Section size.
        size: u32,
        /// Entries.
        entries: &'r [DatasecEntry],
    },
    /// FLOAT of `size` bytes.
    Float(u32),
    /// DECL_TAG on a type (component -1) or one of its members/params.
    DeclTag {
        /// The tagged type.
        type_id: TypeId,
        /// Member or parameter index, -1 for the whole type.
        component: i32,
    },
    /// TYPE_TAG on a type.
    TypeTag(TypeId),
    /// ENUM64; the kind flag means signed.
    Enum64 {
        /// Size in bytes.
        size: u32,
        /// Enumerators in order.
        values: &'r [Enumerator],
    },
    /// A kind this crate does not know: raw kind, `size_or_type`, vlen and
    /// the tail bytes (in the output byte order), copied as they are.
    Raw {
        /// `BTF_KIND_*` value.
        kind: u8,
        /// `size_or_type` word.
        size_or_type: u32,
        /// Number of trailing elements.
        vlen: u32,
        /// Everything after `btf_type`.
        tail: &'r [u8],
    },
}

/// One type for the encoder: name, kind flag and kind-specific body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TypeRecord<'r> {
    /// Name offset, from [`Encoder::add_str`](super::Encoder::add_str) (or the input's, when
    /// re-encoding).
    pub name: StrOffset,
    /// The kind flag (bitfield mode, enum signedness, fwd union, raw tag).
    pub kflag: bool,
    /// The rest.
    pub body: Body<'r>,
}

impl<'r> TypeRecord<'r> {
    /// A record with no name and no kind flag.
    pub fn anon(body: Body<'r>) -> TypeRecord<'r> {
        TypeRecord {
            name: StrOffset::EMPTY,
            kflag: false,
            body,
        }
    }

    /// A named record without the kind flag.
    pub fn named(name: StrOffset, body: Body<'r>) -> TypeRecord<'r> {
        TypeRecord {
            name,
            kflag: false,
            body,
        }
    }

    /// The kind.
    pub fn kind(&self) -> Kind {
        match self.body {
            Body::Int { .. } => Kind::Int,
            Body::Ptr(_) => Kind::Ptr,
            Body::Array(_) => Kind::Array,
            Body::Struct { .. } => Kind::Struct,
            Body::Union { .. } => Kind::Union,
            Body::Enum { .. } => Kind::Enum,
            Body::Fwd => Kind::Fwd,
            Body::Typedef(_) => Kind::Typedef,
            Body::Volatile(_) => Kind::Volatile,
            Body::Const(_) => Kind::Const,
            Body::Restrict(_) => Kind::Restrict,
            Body::Func { .. } => Kind::Func,
            Body::FuncProto { .. } => Kind::FuncProto,
            Body::Var { .. } => Kind::Var,
            Body::Datasec { .. } => Kind::Datasec,
            Body::Float(_) => Kind::Float,
            Body::DeclTag { .. } => Kind::DeclTag,
            Body::TypeTag(_) => Kind::TypeTag,
            Body::Enum64 { .. } => Kind::Enum64,
            Body::Raw { .. } => Kind::Unknown,
        }
    }
}

/// Owned trailing arrays of one decoded record, reused between records.
#[derive(Debug, Default)]
pub struct Scratch {
    members: Vec<Member>,
    values: Vec<Enumerator>,
    params: Vec<Param>,
    entries: Vec<DatasecEntry>,
}

fn refill<T>(v: &mut Vec<T>, it: impl ExactSizeIterator<Item = T>) -> Result<()> {
    v.clear();
    v.try_reserve(it.len()).map_err(|_| oom())?;
    v.extend(it);
    Ok(())
}

impl<'a> Type<'a> {
    /// This type as an encoder record; trailing arrays are decoded into
    /// `scratch`, which the record borrows.
    ///
    /// # Errors
    /// Only when `scratch` cannot grow.
    pub fn to_record<'r>(&self, scratch: &'r mut Scratch) -> Result<TypeRecord<'r>>
    where
        'a: 'r,
    {
        let st = self.size();
        let body = match self.kind() {
            Kind::Int => {
                let w = self.as_int().map_or(0, |i| {
                    (u32::from(i.encoding()) << 24) | (i.offset() << 16) | i.bits()
                });
                Body::Int {
                    size: st,
                    encoding: (w >> 24) as u8,
                    offset: (w >> 16) as u8,
                    bits: w as u8,
                }
            }
            Kind::Ptr => Body::Ptr(self.type_id()),
            Kind::Array => Body::Array(self.as_array().unwrap_or(Array {
                elem_type: TypeId::VOID,
                index_type: TypeId::VOID,
                nelems: 0,
            })),
            k @ (Kind::Struct | Kind::Union) => {
                refill(&mut scratch.members, self.members())?;
                let members = scratch.members.as_slice();
                if k == Kind::Struct {
                    Body::Struct { size: st, members }
                } else {
                    Body::Union { size: st, members }
                }
            }
            k @ (Kind::Enum | Kind::Enum64) => {
                refill(&mut scratch.values, self.enumerators())?;
                let values = scratch.values.as_slice();
                if k == Kind::Enum {
                    Body::Enum { size: st, values }
                } else {
                    Body::Enum64 { size: st, values }
                }
            }
            Kind::Fwd => Body::Fwd,
            Kind::Typedef => Body::Typedef(self.type_id()),
            Kind::Volatile => Body::Volatile(self.type_id()),
            Kind::Const => Body::Const(self.type_id()),
            Kind::Restrict => Body::Restrict(self.type_id()),
            Kind::Func => Body::Func {
                proto: self.type_id(),
                linkage: self.vlen(),
            },
            Kind::FuncProto => {
                refill(&mut scratch.params, self.params())?;
                Body::FuncProto {
                    ret: self.type_id(),
                    params: scratch.params.as_slice(),
                }
            }
            Kind::Var => Body::Var {
                type_id: self.type_id(),
                linkage: self.var_linkage().unwrap_or(0),
            },
            Kind::Datasec => {
                refill(&mut scratch.entries, self.datasec_entries())?;
                Body::Datasec {
                    size: st,
                    entries: scratch.entries.as_slice(),
                }
            }
            Kind::Float => Body::Float(st),
            Kind::DeclTag => Body::DeclTag {
                type_id: self.type_id(),
                component: self.decl_tag_component().unwrap_or(-1),
            },
            Kind::TypeTag => Body::TypeTag(self.type_id()),
            _ => Body::Raw {
                kind: self.raw_kind(),
                size_or_type: st,
                vlen: self.vlen(),
                tail: self.rec.get(TYPE_LEN..).unwrap_or(&[]),
            },
        };
        Ok(TypeRecord {
            name: self.name_off(),
            kflag: self.kflag(),
            body,
        })
    }
}
