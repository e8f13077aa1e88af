//! ember-sys against this kernel, as root: maps (array, hash), BTF load
//! (good and rejected, with the kernel's log), program load (accepted and
//! rejected with the verifier's log), pinning, and no fd left behind.

use std::ffi::CString;

use ember::ember_core::insn::Insn;
use ember_sys::{
    Errno, MapCreate, MapFd, ProgLoad, btf_load, map_create, obj_get, obj_pin, prog_load,
};
use ember_tests::{EXIT, insns, is_root, open_fds, serial, skip};

const MOV_R0_0: Insn = Insn {
    code: 0xb7,
    dst: 0,
    src: 0,
    off: 0,
    imm: 0,
};

#[test]
fn array_and_hash_maps() {
    let _serial = serial();
    if !is_root() {
        return;
    }
    let before = open_fds();
    {
        let fd = map_create(&MapCreate {
            map_type: 2,
            key_size: 4,
            value_size: 8,
            max_entries: 4,
            name: "ember_array",
            ..Default::default()
        })
        .expect("array map");
        let m = MapFd::new(fd, 4, 8).expect("map fd");
        m.update(&1u32.to_ne_bytes(), &42u64.to_ne_bytes(), 0)
            .expect("update");
        let mut v = [0u8; 8];
        m.lookup(&1u32.to_ne_bytes(), &mut v, 0).expect("lookup");
        assert_eq!(u64::from_ne_bytes(v), 42);
        // Arrays cannot delete; the kernel says EINVAL.
        assert_eq!(
            m.delete(&1u32.to_ne_bytes()).unwrap_err().errno,
            Errno::INVAL
        );
        // A key of the wrong size never reaches the kernel.
        let e = m.lookup(&[0u8; 2], &mut v, 0).unwrap_err();
        assert_eq!((e.cmd, e.errno), ("BPF_MAP_LOOKUP_ELEM", Errno::INVAL));
        let mut keys = vec![];
        let mut k = [0u8; 4];
        let mut prev: Option<[u8; 4]> = None;
        while m.next_key(prev.as_ref().map(|p| &p[..]), &mut k).is_ok() {
            keys.push(u32::from_ne_bytes(k));
            prev = Some(k);
        }
        assert_eq!(keys, [0, 1, 2, 3]);

        let fd = map_create(&MapCreate {
            map_type: 1,
            key_size: 8,
            value_size: 4,
            max_entries: 16,
            name: "ember_hash",
            ..Default::default()
        })
        .expect("hash map");
        let h = MapFd::new(fd, 8, 4).expect("map fd");
        h.update(&7u64.to_ne_bytes(), &9u32.to_ne_bytes(), 1)
            .expect("insert");
        assert_eq!(
            h.update(&7u64.to_ne_bytes(), &9u32.to_ne_bytes(), 1)
                .unwrap_err()
                .errno,
            Errno::EXIST
        );
        h.delete(&7u64.to_ne_bytes()).expect("delete");
        let mut v4 = [0u8; 4];
        assert_eq!(
            h.lookup(&7u64.to_ne_bytes(), &mut v4, 0).unwrap_err().errno,
            Errno::NOENT
        );
        h.freeze().expect("freeze");
        assert_eq!(
            h.update(&8u64.to_ne_bytes(), &1u32.to_ne_bytes(), 0)
                .unwrap_err()
                .errno,
            Errno::PERM
        );
    }
    assert_eq!(open_fds(), before, "fds leaked");
}

#[test]
fn btf_load_good_and_rejected() {
    let _serial = serial();
    if !is_root() {
        return;
    }
    // One `int`, as in ember-core's crate docs.
    let mut b = vec![0x9f, 0xeb, 1, 0, 24, 0, 0, 0];
    for w in [0u32, 16, 16, 5] {
        b.extend_from_slice(&w.to_le_bytes());
    }
    for w in [1u32, 0x0100_0000, 4, 0x0100_0020] {
        b.extend_from_slice(&w.to_le_bytes());
    }
    b.extend_from_slice(b"\0int\0");
    let mut log = vec![0u8; 4096];
    btf_load(&b, Some(&mut log)).expect("BTF loads");
    // INT of size 3 is invalid: the kernel refuses and says why.
    b[24 + 8] = 3;
    let mut log = vec![0u8; 4096];
    let e = btf_load(&b, Some(&mut log)).unwrap_err();
    assert_eq!((e.cmd, e.errno), ("BPF_BTF_LOAD", Errno::INVAL));
    let text = String::from_utf8_lossy(&log);
    assert!(text.contains("size"), "log: {text}");
}

#[test]
fn prog_load_accepted_and_rejected_with_log() {
    let _serial = serial();
    if !is_root() {
        return;
    }
    let before = open_fds();
    let license = CString::new("GPL").expect("license");
    {
        let good = insns(&[MOV_R0_0, EXIT]);
        let mut p = ProgLoad {
            prog_type: 1, // socket filter
            expected_attach_type: 0,
            insns: &good,
            license: &license,
            name: "ember_ok",
            log: None,
            log_level: 0,
            prog_flags: 0,
            btf: None,
            attach_btf_id: 0,
            attach_btf_obj_fd: None,
            kern_version: 0,
            fd_array: &[],
            ifindex: 0,
        };
        prog_load(&mut p).expect("accepted");
        let bad = insns(&[EXIT]);
        let mut log = vec![0u8; 65536];
        let mut p = ProgLoad {
            insns: &bad,
            name: "ember_bad",
            log: Some(&mut log),
            log_level: 1,
            ..p
        };
        let e = prog_load(&mut p).unwrap_err();
        assert_eq!(e.error.errno, Errno::ACCESS);
        let text = String::from_utf8_lossy(&log);
        assert!(text.contains("R0 !read_ok"), "verifier log: {text}");
    }
    assert_eq!(open_fds(), before, "fds leaked");
}

#[test]
fn pin_and_reopen() {
    let _serial = serial();
    if !is_root() {
        return;
    }
    if !std::path::Path::new("/sys/fs/bpf").exists()
        || std::fs::read_to_string("/proc/mounts")
            .map_or(true, |m| !m.contains(" /sys/fs/bpf bpf "))
    {
        return skip("bpffs is not mounted at /sys/fs/bpf (mount -t bpf bpf /sys/fs/bpf)");
    }
    let fd = map_create(&MapCreate {
        map_type: 2,
        key_size: 4,
        value_size: 4,
        max_entries: 1,
        name: "ember_pin",
        ..Default::default()
    })
    .expect("map");
    let m = MapFd::new(fd, 4, 4).expect("map fd");
    m.update(&0u32.to_ne_bytes(), &77u32.to_ne_bytes(), 0)
        .expect("update");
    let path = format!("/sys/fs/bpf/ember-test-{}", std::process::id());
    let cpath = CString::new(path.clone()).expect("path");
    obj_pin(m.fd(), &cpath).expect("pin");
    let again = MapFd::new(obj_get(&cpath).expect("get"), 4, 4).expect("map fd");
    std::fs::remove_file(&path).expect("unpin");
    let mut v = [0u8; 4];
    again
        .lookup(&0u32.to_ne_bytes(), &mut v, 0)
        .expect("lookup through the pin");
    assert_eq!(u32::from_ne_bytes(v), 77);
}

/// `Mmap::map` maps BPF maps only: a file could be truncated under the
/// mapping (SIGBUS behind a safe slice).
#[test]
fn mmap_refuses_what_is_not_a_bpf_map() {
    // Other tests here count this process's fds.
    let _serial = serial();
    use std::os::fd::AsFd;
    let f = std::fs::File::open("/proc/self/exe").expect("a regular file");
    let e = ember_sys::Mmap::map(f.as_fd(), 0, 4096, ember_sys::Access::ReadOnly).unwrap_err();
    assert_eq!(e.errno, ember_sys::Errno::BADF);
    let e = ember_sys::ArenaReservation::map(f.as_fd(), 4096).unwrap_err();
    assert_eq!(e.errno, ember_sys::Errno::BADF);
}
