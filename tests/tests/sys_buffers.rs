//! ember-sys's shared-memory readers against this kernel, as root: ring
//! buffers, perf buffers, perf events with SET_BPF, and mmapable arrays.
//!
//! Events come from tiny hand-assembled programs run with
//! `BPF_PROG_TEST_RUN` (no attaching needed). Socket filters copy the test
//! packet's payload (after the 14-byte Ethernet header, which the kernel
//! pulls) to the stack with `bpf_skb_load_bytes` and pass it to
//! `bpf_ringbuf_output`, or reserve and discard a record. A raw
//! tracepoint program sends the CPU it ran on through
//! `bpf_perf_event_output(BPF_F_CURRENT_CPU)`; raw tracepoints are the
//! type whose test runs take `BPF_F_TEST_RUN_ON_CPU`, so the test chooses
//! the CPU without pinning itself. Every test counts the process's fds and
//! shared mappings before and after.

use core::time::Duration;
use std::ffi::CString;
use std::time::Instant;

use ember::ember_core::insn::Insn;
use ember_sys::cpu::online_cpus;
use ember_sys::mmap::page_size;
use ember_sys::perf::PerfEventAttr;
use ember_sys::{
    Access, AccessError, AsFd, BorrowedFd, Errno, MapCreate, MapFd, Mmap, OwnedFd, PerfBuffer,
    PerfRecord, ProgLoad, RingBuf, RingBufPoller, TestRun, map_create, perf_event_open, prog_load,
    prog_test_run,
};
use ember_tests::{is_root, open_fds, serial, skip};

/// Mappings of BPF maps and perf events in this process.
fn shared_maps() -> usize {
    std::fs::read_to_string("/proc/self/maps")
        .expect("/proc/self/maps")
        .lines()
        .filter(|l| l.contains("anon_inode:bpf") || l.contains("perf_event"))
        .count()
}

/// Fds and shared mappings, to compare before and after.
fn resources() -> (usize, usize) {
    (open_fds(), shared_maps())
}

// ---- a tiny assembler ----------------------------------------------------

const fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        dst,
        src,
        off,
        imm,
    }
}

const R0: u8 = 0;
const R1: u8 = 1;
const R2: u8 = 2;
const R3: u8 = 3;
const R4: u8 = 4;
const R5: u8 = 5;
const R6: u8 = 6;
const FP: u8 = 10;

fn mov_imm(dst: u8, imm: i32) -> Insn {
    insn(0xb7, dst, 0, 0, imm)
}
/// `w<dst> = imm` (32-bit, zero-extended).
fn mov32_imm(dst: u8, imm: i32) -> Insn {
    insn(0xb4, dst, 0, 0, imm)
}
fn mov_reg(dst: u8, src: u8) -> Insn {
    insn(0xbf, dst, src, 0, 0)
}
fn add_imm(dst: u8, imm: i32) -> Insn {
    insn(0x07, dst, 0, 0, imm)
}
fn call(helper: i32) -> Insn {
    insn(0x85, 0, 0, 0, helper)
}
/// `if dst == imm goto +off`.
fn jeq_imm(dst: u8, imm: i32, off: i16) -> Insn {
    insn(0x15, dst, 0, off, imm)
}
/// `if dst != imm goto +off`.
fn jne_imm(dst: u8, imm: i32, off: i16) -> Insn {
    insn(0x55, dst, 0, off, imm)
}
/// `*(u32 *)(dst + off) = imm`.
fn st_w(dst: u8, off: i16, imm: i32) -> Insn {
    insn(0x62, dst, 0, off, imm)
}
/// `*(u32 *)(dst + off) = src`.
fn stx_w(dst: u8, off: i16, src: u8) -> Insn {
    insn(0x63, dst, src, off, 0)
}
fn exit() -> Insn {
    insn(0x95, 0, 0, 0, 0)
}
/// `dst = map fd` (LD_IMM64 with BPF_PSEUDO_MAP_FD): two slots.
fn ld_map(dst: u8, fd: BorrowedFd<'_>) -> [Insn; 2] {
    [
        insn(0x18, dst, 1, 0, std::os::fd::AsRawFd::as_raw_fd(&fd)),
        insn(0, 0, 0, 0, 0),
    ]
}

const SKB_LOAD_BYTES: i32 = 26;
const GET_SMP_PROCESSOR_ID: i32 = 8;
const PERF_EVENT_OUTPUT: i32 = 25;
const RINGBUF_OUTPUT: i32 = 130;
const RINGBUF_RESERVE: i32 = 131;
const RINGBUF_DISCARD: i32 = 133;

const SOCKET_FILTER: u32 = 1;
const TRACEPOINT: u32 = 5;
const RAW_TRACEPOINT: u32 = 17;
const BPF_F_TEST_RUN_ON_CPU: u32 = 1;

fn load(prog_type: u32, name: &str, list: &[Insn]) -> OwnedFd {
    let code = ember_tests::insns(list);
    let license = CString::new("GPL").expect("license");
    let mut log = vec![0u8; 1 << 16];
    let mut p = ProgLoad {
        prog_type,
        expected_attach_type: 0,
        insns: &code,
        license: &license,
        name,
        log: Some(&mut log),
        log_level: 1,
        prog_flags: 0,
        btf: None,
        attach_btf_id: 0,
        attach_btf_obj_fd: None,
        kern_version: 0,
        fd_array: &[],
        ifindex: 0,
    };
    match prog_load(&mut p) {
        Ok(fd) => fd,
        Err(e) => panic!(
            "{name}: {e}\n{}",
            String::from_utf8_lossy(&log).trim_end_matches('\0')
        ),
    }
}

/// Copies `len` (≤ 16) payload bytes of the packet to the stack and
/// outputs them to the ring buffer.
fn ringbuf_output_prog(map: BorrowedFd<'_>, len: i32) -> OwnedFd {
    let [m0, m1] = ld_map(R1, map);
    load(
        SOCKET_FILTER,
        "ember_rb_out",
        &[
            // bpf_skb_load_bytes(ctx, 0, fp - 16, len)
            mov_imm(R2, 0),
            mov_reg(R3, FP),
            add_imm(R3, -16),
            mov_imm(R4, len),
            call(SKB_LOAD_BYTES),
            jne_imm(R0, 0, 7),
            // bpf_ringbuf_output(map, fp - 16, len, 0)
            m0,
            m1,
            mov_reg(R2, FP),
            add_imm(R2, -16),
            mov_imm(R3, len),
            mov_imm(R4, 0),
            call(RINGBUF_OUTPUT),
            mov_imm(R0, 0),
            exit(),
        ],
    )
}

/// Reserves a 16-byte record and discards it.
fn ringbuf_discard_prog(map: BorrowedFd<'_>) -> OwnedFd {
    let [m0, m1] = ld_map(R1, map);
    load(
        SOCKET_FILTER,
        "ember_rb_discard",
        &[
            m0,
            m1,
            mov_imm(R2, 16),
            mov_imm(R3, 0),
            call(RINGBUF_RESERVE),
            jeq_imm(R0, 0, 3),
            mov_reg(R1, R0),
            mov_imm(R2, 0),
            call(RINGBUF_DISCARD),
            mov_imm(R0, 0),
            exit(),
        ],
    )
}

const PERF_MAGIC: u32 = 0x1122_3344;
const PERF_TAIL: u32 = 0x5566_7788;

/// Sends `[PERF_MAGIC, cpu it ran on, PERF_TAIL]` (12 bytes: the raw
/// sample needs no padding) with `BPF_F_CURRENT_CPU`.
fn perf_output_prog(map: BorrowedFd<'_>) -> OwnedFd {
    let [m0, m1] = ld_map(R2, map);
    load(
        RAW_TRACEPOINT,
        "ember_perf_out",
        &[
            mov_reg(R6, R1),
            call(GET_SMP_PROCESSOR_ID),
            st_w(FP, -16, PERF_MAGIC as i32),
            stx_w(FP, -12, R0),
            st_w(FP, -8, PERF_TAIL as i32),
            // bpf_perf_event_output(ctx, map, BPF_F_CURRENT_CPU, fp - 16, 12)
            mov_reg(R1, R6),
            m0,
            m1,
            mov32_imm(R3, -1),
            mov_reg(R4, FP),
            add_imm(R4, -16),
            mov_imm(R5, 12),
            call(PERF_EVENT_OUTPUT),
            mov_imm(R0, 0),
            exit(),
        ],
    )
}

/// Runs a socket filter once on an Ethernet header plus `payload`.
fn run(prog: &OwnedFd, payload: &[u8]) {
    let mut pkt = vec![0u8; 14];
    pkt.extend_from_slice(payload);
    let mut t = TestRun {
        data_in: &pkt,
        repeat: 1,
        ..TestRun::default()
    };
    let r = prog_test_run(prog.as_fd(), &mut t).expect("BPF_PROG_TEST_RUN");
    assert_eq!(r.retval, 0);
}

/// Runs a raw tracepoint program once on `cpu`.
fn run_on(prog: &OwnedFd, cpu: u32) {
    let mut t = TestRun {
        ctx_in: Some(&mut [0; 8]),
        flags: BPF_F_TEST_RUN_ON_CPU,
        cpu,
        ..TestRun::default()
    };
    let r = prog_test_run(prog.as_fd(), &mut t).expect("BPF_PROG_TEST_RUN on a CPU");
    assert_eq!(r.retval, 0);
}

/// `BPF_PROG_TEST_RUN` writes a `BPF_PROG_TYPE_SYSCALL` program's
/// context back into `ctx_in`, which is why `TestRun::ctx_in` is `&mut`.
#[test]
fn syscall_program_writes_its_context_back() {
    let _serial = serial();
    if !is_root() {
        return;
    }
    // ctx->[4..8] = 42; return 7 (BPF_ST into the context is refused, so
    // through a register).
    let code = ember_tests::insns(&[mov_imm(R2, 42), stx_w(R1, 4, R2), mov_imm(R0, 7), exit()]);
    let license = CString::new("GPL").expect("license");
    let fd = match prog_load(&mut ProgLoad {
        prog_type: 31,      // BPF_PROG_TYPE_SYSCALL
        prog_flags: 1 << 4, // BPF_F_SLEEPABLE, which it requires
        insns: &code,
        license: &license,
        name: "ember_syscall",
        ..ProgLoad::default()
    }) {
        Ok(fd) => fd,
        Err(e) => return skip(&format!("BPF_PROG_TYPE_SYSCALL: {e}")),
    };
    let mut ctx = [1u8; 8];
    let r = prog_test_run(
        fd.as_fd(),
        &mut TestRun {
            ctx_in: Some(&mut ctx),
            ..TestRun::default()
        },
    )
    .expect("BPF_PROG_TEST_RUN");
    assert_eq!(r.retval, 7);
    assert_eq!(ctx[..4], [1; 4]);
    assert_eq!(ctx[4..], 42u32.to_ne_bytes());
}

fn ringbuf_map(size: u32) -> OwnedFd {
    map_create(&MapCreate {
        map_type: 27, // BPF_MAP_TYPE_RINGBUF
        max_entries: size,
        name: "ember_rb",
        ..Default::default()
    })
    .expect("ringbuf map")
}

fn payload(i: u8, len: usize) -> Vec<u8> {
    (0..len as u8).map(|b| b.wrapping_mul(7) ^ i).collect()
}

// ---- ring buffers ----------------------------------------------------------

#[test]
fn ringbuf_records_in_order_with_discard_and_poll() {
    let _serial = serial();
    if !is_root() {
        return;
    }
    let before = resources();
    {
        let size = 4 * page_size() as u32;
        let map = ringbuf_map(size);
        let out12 = ringbuf_output_prog(map.as_fd(), 12);
        let out16 = ringbuf_output_prog(map.as_fd(), 16);
        let discard = ringbuf_discard_prog(map.as_fd());
        let mut poller = RingBufPoller::new().expect("epoll");
        let idx = poller
            .add(RingBuf::new(map.as_fd(), size).expect("ringbuf"))
            .expect("add");
        assert!(shared_maps() >= before.1 + 2, "consumer and producer maps");

        // Empty: the timeout passes, nothing is read.
        let t0 = Instant::now();
        let n = poller
            .poll(Some(Duration::from_millis(50)), |_, _| {
                panic!("no records yet")
            })
            .expect("poll");
        assert_eq!(n, 0);
        assert!(t0.elapsed() >= Duration::from_millis(40));

        // N records of two lengths (12 is not a multiple of 8), with a
        // discarded one in the middle.
        let mut want = vec![];
        for i in 0..40u8 {
            if i == 17 {
                run(&discard, &[0; 16]);
            }
            let (prog, len) = if i % 2 == 0 {
                (&out12, 12)
            } else {
                (&out16, 16)
            };
            let p = payload(i, len);
            let mut padded = p.clone();
            padded.resize(16, 0);
            run(prog, &padded);
            want.push(p);
        }
        let ring = poller.ring_mut(idx).expect("ring");
        // 40 records of 24 bytes and one discarded of 24.
        assert_eq!(ring.pending(), 41 * 24);
        let mut got = vec![];
        let n = poller
            .poll(Some(Duration::from_secs(5)), |i, r| {
                assert_eq!(i, idx);
                got.push(r.to_vec());
            })
            .expect("poll");
        assert_eq!(n, 40);
        assert_eq!(got, want);
        let ring = poller.ring_mut(idx).expect("ring");
        assert_eq!(ring.pending(), 0);
        assert_eq!(ring.next().expect("next"), None);

        // After an event, poll returns it (blocking form, on a thread that
        // produces after a delay).
        std::thread::scope(|s| {
            s.spawn(|| {
                std::thread::sleep(Duration::from_millis(50));
                run(&out16, &payload(99, 16));
            });
            let mut got = vec![];
            let n = poller
                .poll(None, |_, r| got.push(r.to_vec()))
                .expect("poll");
            assert_eq!(n, 1);
            assert_eq!(got, [payload(99, 16)]);
        });

        // Non-blocking consume and next() on a ring of its own.
        let mut solo = RingBuf::new(map.as_fd(), size).expect("second consumer");
        run(&out12, &payload(5, 16));
        assert_eq!(solo.next().expect("next"), Some(&payload(5, 12)[..]));
        assert_eq!(solo.consume(|_| {}).expect("consume"), 0);
        assert_eq!(poller.consume(|_, _| {}).expect("consume"), 0);

        // Wrap-around: many more records than fit at once, read as we go.
        let mut count = 0;
        for round in 0..20u8 {
            for i in 0..50u8 {
                run(&out16, &payload(i ^ round, 16));
            }
            let mut k = 0u8;
            count += solo
                .consume(|r| {
                    assert_eq!(r, payload(k ^ round, 16));
                    k += 1;
                })
                .expect("consume");
        }
        assert_eq!(count, 1000);
    }
    assert_eq!(resources(), before, "fds or mappings leaked");
}

#[test]
fn ringbuf_rejects_bad_sizes() {
    let _serial = serial();
    if !is_root() {
        return;
    }
    let before = resources();
    {
        let size = page_size() as u32;
        let map = ringbuf_map(size);
        for bad in [0, 3 * size, size / 2, size + 1] {
            let e = RingBuf::new(map.as_fd(), bad).expect_err("bad size");
            assert_eq!(e.errno, Errno::INVAL, "{bad}");
        }
        // Larger or smaller than the map: refused before mapping (a
        // smaller size would map and then mask positions wrongly).
        for wrong in [2 * size, 4 * size] {
            let e = RingBuf::new(map.as_fd(), wrong).expect_err("wrong size");
            assert_eq!(
                (e.cmd, e.errno),
                ("BPF_MAP_TYPE_RINGBUF mmap", Errno::INVAL)
            );
        }
        let big = ringbuf_map(2 * size);
        let e = RingBuf::new(big.as_fd(), size).expect_err("smaller than the map");
        assert_eq!(
            (e.cmd, e.errno),
            ("BPF_MAP_TYPE_RINGBUF mmap", Errno::INVAL)
        );
        // An mmapable array maps too, but is no ring.
        let mmapable = map_create(&MapCreate {
            map_type: 2,
            key_size: 4,
            value_size: size,
            max_entries: 4,
            map_flags: 1 << 10, // BPF_F_MMAPABLE
            name: "ember_mmarr",
            ..Default::default()
        })
        .expect("mmapable array");
        let e = RingBuf::new(mmapable.as_fd(), size).expect_err("not a ring");
        assert_eq!(e.errno, Errno::INVAL);
        // Not a ring buffer at all.
        let array = map_create(&MapCreate {
            map_type: 2,
            key_size: 4,
            value_size: 4,
            max_entries: 1,
            name: "ember_arr",
            ..Default::default()
        })
        .expect("array");
        assert!(RingBuf::new(array.as_fd(), size).is_err());
    }
    assert_eq!(resources(), before, "fds or mappings leaked");
}

// ---- perf buffers ----------------------------------------------------------

fn perf_array(cpus: &[u32]) -> MapFd {
    let max = cpus.iter().max().copied().unwrap_or(0) + 1;
    let fd = map_create(&MapCreate {
        map_type: 4, // BPF_MAP_TYPE_PERF_EVENT_ARRAY
        key_size: 4,
        value_size: 4,
        max_entries: max,
        name: "ember_perf",
        ..Default::default()
    })
    .expect("perf event array");
    MapFd::new(fd, 4, 4).expect("map fd")
}

#[test]
fn perf_buffer_sample_on_the_cpu_it_ran_on() {
    let _serial = serial();
    if !is_root() {
        return;
    }
    let before = resources();
    {
        let cpus = online_cpus().expect("online CPUs");
        let map = perf_array(&cpus);
        let prog = perf_output_prog(map.fd());
        let mut pb = PerfBuffer::new(&map, &cpus, 2).expect("perf buffer");
        assert_eq!(pb.cpus().collect::<Vec<_>>(), cpus);
        assert!(shared_maps() >= before.1 + cpus.len());

        let n = pb
            .poll(Some(Duration::from_millis(50)), |r| {
                panic!("nothing yet: {r:?}")
            })
            .expect("poll");
        assert_eq!(n, 0);

        let want = |cpu: u32| {
            let mut w = PERF_MAGIC.to_ne_bytes().to_vec();
            w.extend_from_slice(&cpu.to_ne_bytes());
            w.extend_from_slice(&PERF_TAIL.to_ne_bytes());
            w
        };
        for &cpu in &cpus {
            run_on(&prog, cpu);
            let mut samples = vec![];
            let n = pb
                .poll(Some(Duration::from_secs(5)), |r| match r {
                    PerfRecord::Sample { cpu, data } => samples.push((cpu, data.to_vec())),
                    other => panic!("unexpected {other:?}"),
                })
                .expect("poll");
            assert_eq!(n, 1);
            assert_eq!(samples, [(cpu, want(cpu))], "the sample made on CPU {cpu}");
        }
        assert_eq!(pb.consume(|_| {}).expect("consume"), 0);

        // Overflow one ring (2 pages of 24-byte records) without reading:
        // the kernel counts what it dropped and reports it in a
        // PERF_RECORD_LOST once there is room again.
        let cpu = cpus[0];
        let fits = 2 * page_size() / 24;
        for _ in 0..fits + 100 {
            run_on(&prog, cpu);
        }
        let mut got = 0;
        let mut lost = 0;
        let mut tally = |r: PerfRecord<'_>| match r {
            PerfRecord::Sample { cpu: c, data } => {
                assert_eq!((c, data), (cpu, &want(cpu)[..]));
                got += 1;
            }
            PerfRecord::Lost { cpu: c, count } => {
                assert_eq!(c, cpu);
                lost += count;
            }
            other => panic!("unexpected {other:?}"),
        };
        assert_eq!(pb.consume(&mut tally).expect("consume"), fits);
        run_on(&prog, cpu);
        assert_eq!(pb.consume(&mut tally).expect("consume"), 2);
        assert_eq!((got, lost), (fits + 1, 100));
    }
    assert_eq!(resources(), before, "fds or mappings leaked");
}

#[test]
fn perf_buffer_errors_leave_nothing_behind() {
    let _serial = serial();
    if !is_root() {
        return;
    }
    let before = resources();
    {
        let cpus = online_cpus().expect("online CPUs");
        let map = perf_array(&cpus);
        assert_eq!(
            PerfBuffer::new(&map, &cpus, 3).expect_err("3 pages").errno,
            Errno::INVAL
        );
        // A CPU beyond the map: the update fails after the first CPUs were
        // set up, and everything is undone.
        let mut too_many = cpus.clone();
        too_many.push(cpus.iter().max().copied().unwrap_or(0) + 1);
        let e = PerfBuffer::new(&map, &too_many, 1).expect_err("CPU past the map");
        assert!(
            matches!(e.cmd, "perf_event_open" | "BPF_MAP_UPDATE_ELEM"),
            "{e}"
        );
        let mut v = [0u8; 4];
        for cpu in &cpus {
            assert!(
                map.lookup(&cpu.to_ne_bytes(), &mut v, 0).is_err(),
                "entry {cpu} removed"
            );
        }
    }
    assert_eq!(resources(), before, "fds or mappings leaked");
}

// ---- perf events and SET_BPF ------------------------------------------------

#[test]
fn perf_event_cpu_clock_and_tracepoint_with_bpf() {
    let _serial = serial();
    if !is_root() {
        return;
    }
    let id_path = "/sys/kernel/tracing/events/syscalls/sys_enter_getppid/id";
    let Ok(id) = std::fs::read_to_string(id_path) else {
        return skip("no tracefs syscall tracepoints (sys_enter_getppid)");
    };
    let id: u64 = id.trim().parse().expect("tracepoint id");
    let before = resources();
    {
        // cpu-clock on this thread, disabled until enabled.
        let clock = perf_event_open(
            &PerfEventAttr::cpu_clock(1_000_000).disabled(true),
            Some(0),
            None,
            None,
        )
        .expect("cpu-clock");
        clock.enable().expect("enable");
        clock.disable().expect("disable");

        // A tracepoint program that sends 8 fixed bytes to a ring buffer.
        let size = page_size() as u32;
        let map = ringbuf_map(size);
        let [m0, m1] = ld_map(R1, map.as_fd());
        let prog = load(
            TRACEPOINT,
            "ember_tp",
            &[
                st_w(FP, -8, 0x0bad_cafe),
                st_w(FP, -4, 0x600d_f00d),
                m0,
                m1,
                mov_reg(R2, FP),
                add_imm(R2, -8),
                mov_imm(R3, 8),
                mov_imm(R4, 0),
                call(RINGBUF_OUTPUT),
                mov_imm(R0, 0),
                exit(),
            ],
        );
        let tp = perf_event_open(&PerfEventAttr::tracepoint(id), None, Some(0), None)
            .or_else(|_| perf_event_open(&PerfEventAttr::tracepoint(id), Some(0), None, None))
            .expect("tracepoint event");
        // A socket filter does not fit a tracepoint.
        let wrong = ringbuf_discard_prog(map.as_fd());
        let e = tp.set_bpf(wrong.as_fd()).expect_err("wrong program type");
        assert_eq!(e.cmd, "PERF_EVENT_IOC_SET_BPF");
        tp.set_bpf(prog.as_fd()).expect("SET_BPF");
        assert_eq!(
            tp.set_bpf(prog.as_fd()).expect_err("twice").errno,
            Errno::EXIST
        );
        tp.enable().expect("enable");
        let mut ring = RingBuf::new(map.as_fd(), size).expect("ringbuf");
        let mut want = 0x0bad_cafe_u32.to_ne_bytes().to_vec();
        want.extend_from_slice(&0x600d_f00d_u32.to_ne_bytes());
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut seen = 0;
        while seen == 0 && Instant::now() < deadline {
            // Pinning the event to CPU 0 means only hits there count; the
            // scheduler gets us there eventually.
            let _ = std::os::unix::process::parent_id();
            seen += ring.consume(|r| assert_eq!(r, want)).expect("consume");
            std::thread::yield_now();
        }
        assert!(seen > 0, "the tracepoint program ran");
        tp.disable().expect("disable");
    }
    assert_eq!(resources(), before, "fds or mappings leaked");
}

// ---- mmapable arrays (global data) ---------------------------------------------

#[test]
fn mmapable_array_values_and_drop_unmaps() {
    let _serial = serial();
    if !is_root() {
        return;
    }
    let before = resources();
    {
        let fd = map_create(&MapCreate {
            map_type: 2,
            key_size: 4,
            value_size: 12,
            max_entries: 3,
            map_flags: 1 << 10, // BPF_F_MMAPABLE
            name: "ember_data",
            ..Default::default()
        })
        .expect("mmapable array");
        let map = MapFd::new(fd, 4, 12).expect("map fd");
        let m = Mmap::array(map.fd(), 12, 3, Access::ReadWrite).expect("mmap values");
        assert_eq!(m.len(), 48, "3 values at a 16-byte stride");
        // User space writes through the mapping, the syscall sees it.
        m.write(16, b"hello world!").expect("write");
        let mut v = [0u8; 12];
        map.lookup(&1u32.to_ne_bytes(), &mut v, 0).expect("lookup");
        assert_eq!(&v, b"hello world!");
        // And the other way round.
        map.update(&2u32.to_ne_bytes(), b"from bpf(2)!", 0)
            .expect("update");
        let mut out = [0u8; 12];
        m.read(32, &mut out).expect("read");
        assert_eq!(&out, b"from bpf(2)!");
        m.store_u64(0, 7).expect("store");
        assert_eq!(m.load_u64(0), Ok(7));
        assert_eq!(m.load_u64(36), Err(AccessError::Misaligned));
        assert_eq!(m.load_u64(48), Err(AccessError::OutOfBounds));
        assert_eq!(m.read(40, &mut [0; 9]), Err(AccessError::OutOfBounds));
        assert_eq!(m.to_vec().len(), 48);

        // A writable mapping keeps the map from being frozen...
        assert_eq!(map.freeze().expect_err("mapped").errno, Errno::BUSY);
        let ro = Mmap::array(map.fd(), 12, 3, Access::ReadOnly).expect("read-only");
        assert_eq!(ro.write(0, b"x"), Err(AccessError::ReadOnly));
        assert_eq!(ro.store_u32(0, 1), Err(AccessError::ReadOnly));
        assert!(ro.atomic_bytes().is_none());
        assert_eq!(ro.load_u64(0), Ok(7));
        // ...until it is dropped, which unmaps it.
        drop(m);
        map.freeze().expect("freeze after unmapping");
        assert_eq!(
            Mmap::array(map.fd(), 12, 3, Access::ReadWrite)
                .expect_err("frozen")
                .errno,
            Errno::PERM
        );
        drop(ro);
    }
    assert_eq!(resources(), before, "fds or mappings leaked");
}
