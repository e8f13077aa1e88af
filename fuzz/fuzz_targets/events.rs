//! Ring buffer and perf buffer records from arbitrary bytes, through the
//! same record walks the mapped readers use (`ember_sys::RingData`,
//! `ember_sys::PerfData`): no panic, allocation bounded by the data area,
//! the same records twice, records that fit the span read, and the
//! records written back into a fresh ring by a producer read back the
//! same.
//!
//! Input: a mode byte (bit 0: perf, else ring buffer), the consumer (tail)
//! position as 8 bytes, the producer (head) distance as 2 bytes, then the
//! data area (cut to a power of two).
#![no_main]

use ember::ember_sys::perf::{PERF_RECORD_LOST, PERF_RECORD_SAMPLE};
use ember::ember_sys::ringbuf::{BPF_RINGBUF_DISCARD_BIT, BPF_RINGBUF_HDR_SZ};
use ember::ember_sys::{PerfData, PerfRecord, RingData, SysError};
use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
#[expect(dead_code, reason = "only the counting allocator is used here")]
mod common;

#[global_allocator]
static ALLOC: common::Counting = common::Counting;

/// Every committed record from `cons` to `prod`, where the walk stopped,
/// and how (a corrupt record, or the empty/busy stop).
fn ring(data: &[u8], mut cons: usize, prod: usize) -> (Vec<Vec<u8>>, usize, Option<SysError>) {
    let r = RingData::new(data).expect("a power of two");
    let (mut out, mut scratch) = (Vec::new(), Vec::new());
    loop {
        match r.next(&mut cons, prod, &mut scratch) {
            Ok(Some(rec)) => out.push(rec.to_vec()),
            Ok(None) => return (out, cons, None),
            Err(e) => return (out, cons, Some(e)),
        }
    }
}

#[derive(Debug, PartialEq)]
enum Rec {
    Sample(Vec<u8>),
    Lost(u64),
}

fn perf(data: &[u8], mut tail: u64, head: u64) -> (Vec<Rec>, u64, Option<SysError>) {
    let mut out = Vec::new();
    let r = PerfData::new(data).expect("a power of two").read(
        3,
        head,
        &mut tail,
        &mut Vec::new(),
        &mut |rec| {
            out.push(match rec {
                PerfRecord::Sample { cpu, data } => {
                    assert_eq!(cpu, 3);
                    Rec::Sample(data.to_vec())
                }
                PerfRecord::Lost { count, .. } => Rec::Lost(count),
                _ => unreachable!("two kinds"),
            });
        },
    );
    if let Ok(n) = r {
        assert_eq!(n, out.len());
    }
    (out, tail, r.err())
}

fuzz_target!(|data: &[u8]| {
    let [mode, c0, c1, c2, c3, c4, c5, c6, c7, d0, d1, rest @ ..] = data else {
        return;
    };
    if rest.is_empty() {
        return;
    }
    let area = &rest[..1 << rest.len().ilog2()];
    let size = area.len();
    let pos = u64::from_le_bytes([*c0, *c1, *c2, *c3, *c4, *c5, *c6, *c7]);
    let dist = u64::from(u16::from_le_bytes([*d0, *d1]));
    let live = common::reset_peak();
    if mode & 1 == 0 {
        let (cons, prod) = (pos as usize, pos.wrapping_add(dist) as usize);
        let got = ring(area, cons, prod);
        // Copies of at most the span read, one vector each.
        let peak = common::peak_since(live);
        assert!(
            peak <= 8 * size + 4096,
            "ring walk allocated {peak} for {size} bytes"
        );
        assert_eq!(got, ring(area, cons, prod), "nondeterministic");
        let (recs, end, err) = got;
        let span = end.wrapping_sub(cons);
        assert!(
            span <= prod.wrapping_sub(cons) && span <= size,
            "walked past the producer"
        );
        let used: usize = recs
            .iter()
            .map(|r| (r.len() + BPF_RINGBUF_HDR_SZ).next_multiple_of(8))
            .sum();
        assert!(used <= span, "records larger than the span read");
        if let Some(e) = err {
            assert_eq!(e.errno, ember::ember_sys::Errno::BADMSG);
        }
        // Round trip: a producer writes the records (with a discarded one
        // first) into a fresh ring, and the walk reads them back.
        let mut fresh = vec![0u8; 2 * size + 16];
        let mut p = 0usize;
        let mut put = |hdr: u32, body: &[u8]| {
            fresh[p..p + 4].copy_from_slice(&hdr.to_ne_bytes());
            fresh[p + 8..p + 8 + body.len()].copy_from_slice(body);
            p += (body.len() + BPF_RINGBUF_HDR_SZ).next_multiple_of(8);
        };
        put(BPF_RINGBUF_DISCARD_BIT, &[]);
        for r in &recs {
            put(r.len() as u32, r);
        }
        let fresh_size = (p.max(1)).next_power_of_two();
        let (back, stop, e) = ring(&fresh[..fresh_size], 0, p);
        assert_eq!(
            (back, stop, e),
            (recs, p, None),
            "re-written records read back differently"
        );
    } else {
        let (tail, head) = (pos, pos.wrapping_add(dist));
        let got = perf(area, tail, head);
        let peak = common::peak_since(live);
        assert!(
            peak <= 8 * size + 4096,
            "perf walk allocated {peak} for {size} bytes"
        );
        assert_eq!(got, perf(area, tail, head), "nondeterministic");
        let (recs, end, err) = got;
        let span = end.wrapping_sub(tail);
        assert!(
            span <= head.wrapping_sub(tail) && span <= size as u64,
            "walked past the head"
        );
        if let Some(e) = err {
            assert_eq!(e.errno, ember::ember_sys::Errno::BADMSG);
        }
        // Round trip through a producer writing the kernel's layout.
        let mut fresh = Vec::new();
        for r in &recs {
            let (kind, body) = match r {
                Rec::Sample(d) => (
                    PERF_RECORD_SAMPLE,
                    [&(d.len() as u32).to_ne_bytes()[..], d].concat(),
                ),
                Rec::Lost(n) => (
                    PERF_RECORD_LOST,
                    [&7u64.to_ne_bytes()[..], &n.to_ne_bytes()].concat(),
                ),
            };
            fresh.extend_from_slice(&kind.to_ne_bytes());
            fresh.extend_from_slice(&0u16.to_ne_bytes());
            fresh.extend_from_slice(&((8 + body.len()) as u16).to_ne_bytes());
            fresh.extend_from_slice(&body);
        }
        let n = fresh.len() as u64;
        fresh.resize(fresh.len().max(1).next_power_of_two(), 0);
        let (back, stop, e) = perf(&fresh, 0, n);
        assert_eq!(
            (back, stop, e),
            (recs, n, None),
            "re-written records read back differently"
        );
    }
});
