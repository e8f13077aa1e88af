//! Hand-built BTF through the C writer: declarators, padding, names,
//! cycles and the work limits.

use alloc::string::String;
use alloc::vec::Vec;

use super::{DumpError, dump};
use crate::btf::Btf;
use crate::btf::raw::*;
use crate::error::ErrorKind;

/// A little-endian BTF blob built record by record; ids count from 1.
struct Builder {
    types: Vec<u8>,
    strs: Vec<u8>,
    last: u32,
}

impl Builder {
    fn new() -> Self {
        Builder {
            types: Vec::new(),
            strs: alloc::vec![0],
            last: 0,
        }
    }

    fn word(&mut self, w: u32) {
        self.types.extend_from_slice(&w.to_le_bytes());
    }

    fn str(&mut self, s: &str) -> u32 {
        if s.is_empty() {
            return 0;
        }
        let off = self.strs.len() as u32;
        self.strs.extend_from_slice(s.as_bytes());
        self.strs.push(0);
        off
    }

    fn ty(&mut self, name: &str, kind: u8, vlen: u32, kflag: bool, st: u32) -> u32 {
        let n = self.str(name);
        self.word(n);
        self.word(vlen | (u32::from(kind) << 24) | (u32::from(kflag) << 31));
        self.word(st);
        self.last += 1;
        self.last
    }

    fn int(&mut self, name: &str, size: u32) -> u32 {
        let id = self.ty(name, BTF_KIND_INT, 0, false, size);
        self.word((u32::from(BTF_INT_SIGNED) << 24) | (size * 8));
        id
    }

    fn reference(&mut self, kind: u8, name: &str, to: u32) -> u32 {
        self.ty(name, kind, 0, false, to)
    }

    /// `members`: (name, type, bit offset); no bitfields.
    fn composite(&mut self, kind: u8, name: &str, size: u32, members: &[(&str, u32, u32)]) -> u32 {
        let id = self.ty(name, kind, members.len() as u32, false, size);
        for &(n, t, off) in members {
            let n = self.str(n);
            self.word(n);
            self.word(t);
            self.word(off);
        }
        id
    }

    fn proto(&mut self, ret: u32, params: &[u32]) -> u32 {
        let id = self.ty("", BTF_KIND_FUNC_PROTO, params.len() as u32, false, ret);
        for &p in params {
            self.word(0);
            self.word(p);
        }
        id
    }

    fn enum32(&mut self, name: &str, values: &[(&str, i32)]) -> u32 {
        let id = self.ty(name, BTF_KIND_ENUM, values.len() as u32, true, 4);
        for &(n, v) in values {
            let n = self.str(n);
            self.word(n);
            self.word(v as u32);
        }
        id
    }

    fn blob(&self) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&BTF_MAGIC.to_le_bytes());
        b.extend_from_slice(&[BTF_VERSION, 0]);
        let tl = self.types.len() as u32;
        for w in [24, 0, tl, tl, self.strs.len() as u32] {
            b.extend_from_slice(&w.to_le_bytes());
        }
        b.extend_from_slice(&self.types);
        b.extend_from_slice(&self.strs);
        b
    }
}

/// The header without bpftool's fixed preamble and trailer.
fn body(b: &Builder) -> Result<String, DumpError> {
    let blob = b.blob();
    let btf = Btf::parse(&blob).expect("test blob parses");
    let mut s = String::new();
    dump(&btf, &mut s)?;
    let start = s.find("#endif\n\n").expect("preamble") + 8;
    let end = s
        .rfind("#ifndef BPF_NO_PRESERVE_ACCESS_INDEX")
        .expect("trailer");
    Ok(String::from(&s[start..end]))
}

fn kind_of(e: DumpError) -> Option<ErrorKind> {
    match e {
        DumpError::Btf(e) => Some(e.kind()),
        _ => None,
    }
}

#[test]
fn declarators_padding_and_forward_declarations() {
    let mut b = Builder::new();
    let int = b.int("int", 4); // 1
    let long = b.int("long", 8); // 2
    let ptr_s = b.reference(BTF_KIND_PTR, "", 4); // 3: struct s *
    let s = b.composite(
        BTF_KIND_STRUCT,
        "s",
        32,
        &[
            ("c", int, 0),
            ("next", ptr_s, 64),
            ("f", 7, 128),
            ("u", 9, 192),
        ],
    ); // 4
    assert_eq!(s, 4);
    let cint = b.reference(BTF_KIND_CONST, "", int); // 5
    let proto = b.proto(int, &[cint, 0]); // 6: int (const int, ...)
    b.reference(BTF_KIND_PTR, "", proto); // 7
    b.reference(BTF_KIND_TYPEDEF, "fn_t", 7); // 8
    b.composite(BTF_KIND_UNION, "", 8, &[("a", long, 0), ("b", int, 0)]); // 9
    b.composite(BTF_KIND_STRUCT, "empty", 0, &[]); // 10
    let want = "struct s {\n\
        \tint c;\n\
        \tstruct s *next;\n\
        \tint (*f)(const int, ...);\n\
        \tunion {\n\
        \t\tlong a;\n\
        \t\tint b;\n\
        \t} u;\n\
        };\n\n\
        typedef int (*fn_t)(const int, ...);\n\n\
        struct empty {};\n\n";
    assert_eq!(body(&b).expect("dump"), want);
}

#[test]
fn packed_structs_and_odd_sized_enums() {
    let mut b = Builder::new();
    let ch = b.int("char", 1);
    let int = b.int("int", 4);
    b.composite(BTF_KIND_STRUCT, "p", 5, &[("c", ch, 0), ("i", int, 8)]);
    let e = b.ty("e8", BTF_KIND_ENUM, 1, false, 1);
    let n = b.str("E8");
    b.word(n);
    b.word(3);
    b.composite(BTF_KIND_STRUCT, "q", 2, &[("c", ch, 0), ("e", e, 8)]);
    let want = "struct p {\n\tchar c;\n\tint i;\n} __attribute__((packed));\n\n\
        enum e8 {\n\tE8 = 3,\n} __attribute__((mode(byte)));\n\n\
        struct q {\n\tchar c;\n\tenum e8 e;\n};\n\n";
    assert_eq!(body(&b).expect("dump"), want);
}

#[test]
fn duplicate_names_get_suffixes() {
    let mut b = Builder::new();
    let int = b.int("int", 4);
    b.composite(BTF_KIND_STRUCT, "dup", 4, &[("a", int, 0)]);
    b.composite(BTF_KIND_STRUCT, "dup", 8, &[("a", int, 0), ("b", int, 32)]);
    b.enum32("", &[("X", -1)]);
    b.enum32("e", &[("X", 2)]);
    let got = body(&b).expect("dump");
    assert!(got.contains("struct dup {\n\tint a;\n};"), "{got}");
    assert!(
        got.contains("struct dup___2 {\n\tint a;\n\tint b;\n};"),
        "{got}"
    );
    assert!(got.contains("enum {\n\tX = -1,\n};"), "{got}");
    assert!(got.contains("enum e {\n\tX___2 = 2,\n};"), "{got}");
}

#[test]
fn pointer_cycle_is_broken_by_a_forward_declaration() {
    let mut b = Builder::new();
    let int = b.int("int", 4); // 1
    b.composite(BTF_KIND_STRUCT, "a", 8, &[("b", 3, 0)]); // 2
    b.reference(BTF_KIND_PTR, "", 4); // 3: struct b *
    b.composite(BTF_KIND_STRUCT, "b", 16, &[("a", 2, 0), ("x", int, 64)]); // 4
    let want = "struct b;\n\n\
        struct a {\n\tstruct b *b;\n};\n\n\
        struct b {\n\tstruct a a;\n\tint x;\n};\n\n";
    assert_eq!(body(&b).expect("dump"), want);
}

#[test]
fn embedding_cycle_is_an_error() {
    let mut b = Builder::new();
    b.composite(BTF_KIND_STRUCT, "a", 4, &[("b", 2, 0)]);
    b.composite(BTF_KIND_STRUCT, "b", 4, &[("a", 1, 0)]);
    let e = body(&b).expect_err("cycle");
    assert!(matches!(kind_of(e), Some(ErrorKind::TypeChainTooDeep(_))));
}

#[test]
fn modifier_loop_and_deep_chains_end_in_errors() {
    let mut b = Builder::new();
    b.reference(BTF_KIND_TYPEDEF, "t", 2);
    b.reference(BTF_KIND_CONST, "", 1);
    let e = body(&b).expect_err("loop");
    assert!(matches!(kind_of(e), Some(ErrorKind::TypeChainTooDeep(_))));

    let mut b = Builder::new();
    b.int("int", 4);
    for i in 2..5000 {
        b.reference(BTF_KIND_CONST, "", i + 1);
    }
    b.reference(BTF_KIND_TYPEDEF, "deep", 2);
    let e = body(&b).expect_err("deep");
    assert!(matches!(kind_of(e), Some(ErrorKind::TypeChainTooDeep(_))));
}

#[test]
fn exponential_nesting_and_huge_padding_hit_the_work_limit() {
    // Each prototype takes the next one twice: 2^60 walks.
    let mut b = Builder::new();
    let int = b.int("int", 4);
    for i in 0..60 {
        b.proto(int, &[i + 3, i + 3]);
    }
    b.proto(int, &[int]);
    assert!(matches!(body(&b), Err(DumpError::TooLarge(_))));

    // A 2 GiB struct would be 2^28 lines of `long: 64;`.
    let mut b = Builder::new();
    b.composite(BTF_KIND_STRUCT, "huge", 0x7fff_fff8, &[]);
    assert!(matches!(body(&b), Err(DumpError::TooLarge(_))));
}

#[test]
fn writer_errors_surface_as_fmt() {
    struct Full;
    impl core::fmt::Write for Full {
        fn write_str(&mut self, _: &str) -> core::fmt::Result {
            Err(core::fmt::Error)
        }
    }
    let mut b = Builder::new();
    b.int("int", 4);
    let blob = b.blob();
    let btf = Btf::parse(&blob).expect("parse");
    assert_eq!(dump(&btf, &mut Full), Err(DumpError::Fmt));
}
