//! A test-only BTF builder, in either byte order.

use alloc::vec::Vec;

use crate::bytes::Endian;

/// Builds BTF blobs record by record.
pub(crate) struct Builder {
    pub(crate) endian: Endian,
    pub(crate) types: Vec<u8>,
    pub(crate) strs: Vec<u8>,
    /// Optional kind-layout section bytes (forces a 32-byte header).
    pub(crate) layout: Option<Vec<u8>>,
}

impl Builder {
    pub(crate) fn new(endian: Endian) -> Builder {
        Builder {
            endian,
            types: Vec::new(),
            strs: alloc::vec![0],
            layout: None,
        }
    }

    /// Splits start with an empty string section of their own.
    pub(crate) fn new_split(endian: Endian) -> Builder {
        Builder {
            strs: Vec::new(),
            ..Builder::new(endian)
        }
    }

    fn w(&self, v: u32) -> [u8; 4] {
        match self.endian {
            Endian::Little => v.to_le_bytes(),
            Endian::Big => v.to_be_bytes(),
        }
    }

    /// Adds a string, returning its offset (plus `base` for split BTF).
    pub(crate) fn s(&mut self, name: &str) -> u32 {
        let off = self.strs.len() as u32;
        self.strs.extend_from_slice(name.as_bytes());
        self.strs.push(0);
        off
    }

    /// Adds a raw record.
    pub(crate) fn rec(
        &mut self,
        name_off: u32,
        kind: u32,
        kflag: bool,
        vlen: u32,
        st: u32,
        tail: &[u32],
    ) {
        let info = (u32::from(kflag) << 31) | (kind << 24) | vlen;
        for v in [name_off, info, st].into_iter().chain(tail.iter().copied()) {
            let b = self.w(v);
            self.types.extend_from_slice(&b);
        }
    }

    pub(crate) fn int(&mut self, name: &str, size: u32, enc: u32, bits: u32) {
        let n = self.s(name);
        self.rec(n, 1, false, 0, size, &[(enc << 24) | bits]);
    }

    pub(crate) fn build(&self) -> Vec<u8> {
        let hdr_len: u32 = if self.layout.is_some() { 32 } else { 24 };
        let type_len = self.types.len() as u32;
        let layout_len = self.layout.as_ref().map_or(0, |l| l.len() as u32);
        let mut out = Vec::new();
        let magic: u16 = 0xeb9f;
        out.extend_from_slice(&match self.endian {
            Endian::Little => magic.to_le_bytes(),
            Endian::Big => magic.to_be_bytes(),
        });
        out.extend_from_slice(&[1, 0]);
        let mut words = alloc::vec![
            hdr_len,
            0,
            type_len,
            type_len + layout_len,
            self.strs.len() as u32
        ];
        if self.layout.is_some() {
            words.extend_from_slice(&[type_len, layout_len]);
        }
        for v in words {
            out.extend_from_slice(&self.w(v));
        }
        out.extend_from_slice(&self.types);
        if let Some(l) = &self.layout {
            out.extend_from_slice(l);
        }
        out.extend_from_slice(&self.strs);
        out
    }
}
