//! Load preparation on arbitrary objects, with no system calls: the BTF
//! handed to the kernel (for a kernel that knows every kind and for one
//! that knows none of the optional ones) must parse again and keep every
//! type id, and every program must link into whole instructions and whole
//! func/line records.
#![no_main]

use ember_core::btf::Btf;
use ember_core::id::{FuncIndex, Pc};
use ember_core::insn::INSN_SIZE;
use ember_core::load::{
    BtfFeatures, FUNC_INFO_SIZE, LINE_INFO_SIZE, Piece, kernel_btf, link_program,
};
use ember_core::object::Object;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(obj) = Object::parse(data, "fuzz") else {
        return;
    };
    for feat in [BtfFeatures::default(), BtfFeatures::NONE] {
        // Errors (no BTF, foreign byte order, unknown kinds) are fine.
        let Ok(blob) = kernel_btf(&obj, &feat) else {
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
        let Ok(l) = link_program(&obj, &code, FuncIndex(i), &|m| Some(m.index() as i32 + 3)) else {
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
