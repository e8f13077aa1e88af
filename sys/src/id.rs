//! Typed ids of kernel BPF objects (STYLE rule 2): a program id can never
//! be used where a map id is meant.

/// The kinds of BPF object that have ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ObjKind {
    /// Programs.
    Prog,
    /// Maps.
    Map,
    /// BTF objects (vmlinux, modules, loaded BTF).
    Btf,
    /// Links.
    Link,
}

mod sealed {
    pub trait Sealed {}
}

/// The id of a kernel BPF object of one kind ([`ProgId`], [`MapId`],
/// [`BtfId`], [`LinkId`]): an id of one kind can never be used as
/// another's. Sealed.
pub trait Id:
    Copy
    + Eq
    + Ord
    + core::hash::Hash
    + core::fmt::Debug
    + core::fmt::Display
    + Default
    + sealed::Sealed
{
    /// The kind of object.
    const KIND: ObjKind;
    /// The id the kernel uses.
    fn get(self) -> u32;
    /// An id from the kernel's number.
    fn from_raw(raw: u32) -> Self;
}

macro_rules! ids {
    ($($(#[$doc:meta])* $name:ident => $kind:ident;)*) => {$(
        $(#[$doc])*
        #[repr(transparent)]
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
        pub struct $name(pub u32);

        impl sealed::Sealed for $name {}

        impl Id for $name {
            const KIND: ObjKind = ObjKind::$kind;
            fn get(self) -> u32 {
                self.0
            }
            fn from_raw(raw: u32) -> $name {
                $name(raw)
            }
        }

        impl core::fmt::Display for $name {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                core::fmt::Display::fmt(&self.0, f)
            }
        }
    )*};
}

ids! {
    /// A program's id (`bpf_prog_info.id`); 0 is none.
    ProgId => Prog;
    /// A map's id (`bpf_map_info.id`); 0 is none.
    MapId => Map;
    /// A BTF object's id (`bpf_btf_info.id`, `btf_id` of programs and
    /// maps); 0 is none. Not a BTF *type* id.
    BtfId => Btf;
    /// A link's id (`bpf_link_info.id`); 0 is none.
    LinkId => Link;
}
