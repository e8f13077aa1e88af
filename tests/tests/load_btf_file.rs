//! The loader leaves validating the explicit `btf_file` (and sysfs) to
//! its own single parse instead of validating while searching too: a
//! malformed or BTF-less file must still fail the load with an error
//! naming that file, and a good one must still serve as the CO-RE target.

use ember::{EbpfLoader, LoadError};
use ember_tests::{fixture, kernel_ready, serial};

#[test]
fn a_bad_btf_file_fails_the_load_naming_it() {
    let _s = serial();
    if !kernel_ready() {
        return;
    }
    let dir = std::env::temp_dir().join(format!("ember-btf-file-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    let cases = [
        ("garbage.btf", b"not BTF at all, nor ELF".to_vec()),
        // A valid BTF header whose type section runs past the end.
        ("short.btf", {
            let mut b = vec![0x9f, 0xeb, 1, 0];
            b.extend(24u32.to_le_bytes()); // hdr_len
            b.extend(0u32.to_le_bytes()); // type_off
            b.extend(4096u32.to_le_bytes()); // type_len
            b.extend(4096u32.to_le_bytes()); // str_off
            b.extend(1u32.to_le_bytes()); // str_len
            b
        }),
    ];
    for (name, bytes) in cases {
        let path = dir.join(name);
        std::fs::write(&path, bytes).expect("write");
        let e = EbpfLoader::new()
            .btf_file(&path)
            .load_file(fixture("core_only.bpf-el.o"))
            .expect_err("a bad BTF file cannot be a CO-RE target");
        let text = e.to_string();
        assert!(
            text.contains(name),
            "{name}: the error names the file: {text}"
        );
        assert!(
            matches!(e, LoadError::KernelBtf { .. }),
            "{name}: a malformed file, not a missing one: {e:?}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);

    // The good file: sysfs vmlinux named explicitly loads as before.
    let ok = EbpfLoader::new()
        .btf_file("/sys/kernel/btf/vmlinux")
        .load_file(fixture("core_only.bpf-el.o"));
    assert!(ok.is_ok(), "{:?}", ok.err());
}
