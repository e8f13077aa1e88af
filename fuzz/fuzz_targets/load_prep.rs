//! Load preparation on arbitrary objects, with no system calls: the BTF
//! handed to the kernel (for a kernel that knows every kind and for one
//! that knows none of the optional ones) must parse again and keep every
//! type id, and every program must link into whole instructions and whole
//! func/line records. Both give the same bytes twice, and allocate in
//! proportion to the object.
#![no_main]

use ember_core::btf::Btf;
use ember_core::id::{FuncIndex, Pc};
use ember_core::insn::INSN_SIZE;
use ember_core::load::{
    BtfFeatures, FUNC_INFO_SIZE, LINE_INFO_SIZE, Piece, kernel_btf, link_program,
};
use ember_core::object::Object;
use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
#[expect(dead_code, reason = "only the counting allocator is used here")]
mod common;

#[global_allocator]
static ALLOC: common::Counting = common::Counting;

fuzz_target!(|data: &[u8]| {
    let Ok(obj) = Object::parse(data, "fuzz") else {
        return;
    };
    for feat in [BtfFeatures::default(), BtfFeatures::NONE] {
        let live = common::reset_peak();
        let made = kernel_btf(&obj, &feat);
        let peak = common::peak_since(live);
        // The blob (the object's BTF, rewritten) or the program's code and
        // records copied, each at most the input.
        assert!(
            peak <= 8 * data.len() + 65536,
            "allocated {peak} for {} bytes",
            data.len()
        );
        let again = kernel_btf(&obj, &feat);
        assert_eq!(
            made.as_ref().map_err(ToString::to_string),
            again.as_ref().map_err(ToString::to_string),
            "kernel_btf({feat:?}) twice"
        );
        // Errors (no BTF, foreign byte order, unknown kinds) are fine.
        let Ok(blob) = made else {
            continue;
        };
        let out = match Btf::parse(&blob) {
            Ok(b) => b,
            Err(e) => panic!("kernel_btf({feat:?}) produced BTF that does not parse: {e}"),
        };
        // Kinds are rewritten in place and extras appended, so every id
        // the object's instructions and records use still exists.
        let local = obj.btf.as_ref().map_or(0, Btf::type_count);
        assert!(
            out.type_count() >= local,
            "kernel_btf({feat:?}) dropped types"
        );
    }
    let code: Vec<Vec<u8>> = obj.code.iter().map(|c| c.bytes.to_vec()).collect();
    for (i, f) in obj.functions.iter().enumerate() {
        if !f.is_program {
            continue;
        }
        // Map fds are arbitrary here: linking makes no system call.
        let fds = |m: ember_core::id::MapIndex| Some(m.index() as i32 + 3);
        let live = common::reset_peak();
        let linked = link_program(&obj, &code, FuncIndex(i), &fds);
        let peak = common::peak_since(live);
        // The blob (the object's BTF, rewritten) or the program's code and
        // records copied, each at most the input.
        assert!(
            peak <= 8 * data.len() + 65536,
            "allocated {peak} for {} bytes",
            data.len()
        );
        let again = link_program(&obj, &code, FuncIndex(i), &fds);
        match (&linked, &again) {
            (Ok(a), Ok(b)) => assert_eq!(
                (&a.insns, &a.func_info, &a.line_info, &a.pieces),
                (&b.insns, &b.func_info, &b.line_info, &b.pieces),
                "linked twice"
            ),
            (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string()),
            _ => panic!("linked once and failed once"),
        }
        let Ok(l) = linked else {
            continue;
        };
        assert_eq!(l.insns.len() % INSN_SIZE, 0, "partial instruction");
        assert_eq!(
            l.func_info.len() % FUNC_INFO_SIZE as usize,
            0,
            "partial func_info"
        );
        assert_eq!(
            l.line_info.len() % LINE_INFO_SIZE as usize,
            0,
            "partial line_info"
        );
        assert_eq!(
            l.pieces.first(),
            Some(&Piece {
                func: FuncIndex(i),
                start: Pc(0)
            }),
            "program not first"
        );
    }
});
