//! rtnetlink reply datagrams from arbitrary bytes: splitting messages and
//! decoding links, filters and errors never panics, never reads past a
//! message, and ends.
#![no_main]

use ember::attach::rtnl_wire::{FilterInfo, LinkInfo, attrs, next_message};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut rest = data;
    let mut n = 0usize;
    while let Ok(Some(m)) = next_message(&mut rest) {
        n += 1;
        assert!(n <= data.len() / 16, "more messages than 16-byte headers");
        let _ = m.error();
        let _ = LinkInfo::parse(m.payload);
        let _ = FilterInfo::parse(m.payload);
        assert!(attrs(m.payload).count() <= m.payload.len() / 4);
    }
});
