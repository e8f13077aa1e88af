//! Struct and union layout: alignment, packing, and the padding and
//! bitfield members that make the compiler lay a definition out as the
//! BTF says.

use super::*;

impl<'a, 'b> CDump<'a, 'b> {
    /// `btf__align_of`: natural alignment, except that a composite whose
    /// layout shows it is packed has alignment 1; 0 when unknown (FWD,
    /// void, prototypes).
    pub(super) fn align_of(&mut self, id: u32, depth: u32) -> Res<u32> {
        if let Some(&a) = self.align.get(id as usize) {
            if a != ALIGN_UNKNOWN {
                return Ok(u32::from(a));
            }
        }
        self.step(id, depth)?;
        let Some(t) = self.btf.get(TypeId(id)) else {
            return Ok(0);
        };
        let next = depth.saturating_add(1);
        let a = match t.kind() {
            Kind::Int | Kind::Enum | Kind::Enum64 | Kind::Float => t.size().min(self.ptr_size),
            Kind::Ptr => self.ptr_size,
            Kind::Typedef | Kind::Volatile | Kind::Const | Kind::Restrict | Kind::TypeTag => {
                self.align_of(t.type_id().0, next)?
            }
            Kind::Array => {
                let elem = t.as_array().map_or(0, |a| a.elem_type.0);
                self.align_of(elem, next)?
            }
            Kind::Struct | Kind::Union => self.composite_align(&t, next)?,
            _ => 0,
        };
        if let Some(s) = self.align.get_mut(id as usize) {
            *s = u8::try_from(a).unwrap_or(ALIGN_UNKNOWN);
        }
        Ok(a)
    }

    pub(super) fn composite_align(&mut self, t: &Type<'a>, depth: u32) -> Res<u32> {
        let mut max = 1;
        for m in t.members() {
            let a = self.align_of(m.type_id.0, depth)?;
            if a == 0 {
                return Ok(0);
            }
            max = max.max(a);
            // A field off its type's alignment: the struct is packed.
            if m.bitfield_size == 0
                && !u64::from(m.bit_offset).is_multiple_of(u64::from(a).saturating_mul(8))
            {
                return Ok(1);
            }
        }
        Ok(if t.size().is_multiple_of(max) { max } else { 1 })
    }

    /// A struct needs `packed` when a non-bitfield member sits off its
    /// type's alignment or the size is not a multiple of the members'
    /// largest alignment.
    pub(super) fn is_packed(&mut self, t: &Type<'a>, depth: u32) -> Res<bool> {
        let mut max = 1;
        for m in t.members() {
            let a = self.align_of(m.type_id.0, depth)?;
            if a != 0
                && m.bitfield_size == 0
                && !u64::from(m.bit_offset).is_multiple_of(u64::from(a).saturating_mul(8))
            {
                return Ok(true);
            }
            max = max.max(a);
        }
        Ok(!t.size().is_multiple_of(max))
    }

    /// Fills the bit gap `cur..next` with anonymous bitfields such that
    /// the compiler puts the next member (alignment `next_align` bytes) at
    /// `next`: first an aligning `type: 0;` (or, inside a bitfield run,
    /// `type: n;`) where natural alignment would not get there, then whole
    /// units of the widest type that fits, then one smallest-fitting tail.
    pub(super) fn emit_padding(
        &mut self,
        id: u32,
        mut cur: i64,
        next: i64,
        next_align: u32,
        in_bitfield: bool,
        lvl: u32,
    ) -> Res {
        if cur >= next {
            return Ok(());
        }
        let pads: [(&str, i64); 4] = [
            ("long", i64::from(self.ptr_size).saturating_mul(8)),
            ("int", 32),
            ("short", 16),
            ("char", 8),
        ];
        let (mut name, mut unit, mut aligned) = ("char", CHAR_BITS, round_up(cur, CHAR_BITS));
        for (n, bits) in pads {
            (name, unit, aligned) = (n, bits, round_up(cur, bits));
            if aligned <= next {
                break;
            }
        }
        if aligned > cur && aligned <= next {
            let natural = round_up(cur, i64::from(next_align).saturating_mul(8));
            if in_bitfield
                || (aligned == next && natural != aligned)
                || (aligned != next && next.saturating_sub(aligned) <= aligned.saturating_sub(cur))
            {
                let bits = if in_bitfield {
                    aligned.saturating_sub(cur)
                } else {
                    0
                };
                self.pad_line(id, name, bits, lvl)?;
            }
            cur = aligned;
        }
        while cur < next {
            let bits = next.saturating_sub(cur).min(unit);
            if bits == unit {
                self.pad_line(id, name, unit, lvl)?;
                cur = cur.saturating_add(bits);
                continue;
            }
            // The tail: the narrowest type that holds it.
            let tail = pads
                .iter()
                .rev()
                .find(|p| p.1 >= bits)
                .map_or("long", |p| p.0);
            self.pad_line(id, tail, bits, lvl)?;
            cur = cur.saturating_add(bits);
        }
        Ok(())
    }

    pub(super) fn pad_line(&mut self, id: u32, ty: &str, bits: i64, lvl: u32) -> Res {
        self.spend(id)?;
        self.w("\n")?;
        self.pfx(lvl)?;
        Ok(write!(self.out, "{ty}: {bits};")?)
    }

    pub(super) fn emit_struct_def(&mut self, id: u32, t: &Type<'a>, lvl: u32, depth: u32) -> Res {
        self.step(id, depth)?;
        let next = depth.saturating_add(1);
        let is_struct = t.kind() == Kind::Struct;
        let align = self.align_of(id, next)?;
        let packed = is_struct && self.is_packed(t, next)?;
        self.w(if is_struct { "struct" } else { "union" })?;
        if t.name_off().0 != 0 {
            self.w(" ")?;
        }
        let name = self.type_name(id)?;
        self.write_ident(name)?;
        self.w(" {")?;
        let mut off: i64 = 0;
        let mut prev_bitfield = false;
        for m in t.members() {
            let fname = Ident::plain(self.btf.bytes_at(m.name_off).unwrap_or(b""));
            let bits = i64::from(m.bitfield_size);
            let m_off = i64::from(m.bit_offset);
            let m_align = if packed {
                1
            } else {
                self.align_of(m.type_id.0, next)?
            };
            self.emit_padding(
                id,
                off,
                m_off,
                m_align,
                prev_bitfield && bits != 0,
                lvl.saturating_add(1),
            )?;
            self.w("\n")?;
            self.pfx(lvl.saturating_add(1))?;
            self.emit_type_decl(m.type_id.0, fname, lvl.saturating_add(1), next)?;
            if bits != 0 {
                write!(self.out, ": {bits}")?;
                off = m_off.saturating_add(bits);
            } else {
                let size = self.btf.resolve_size(m.type_id).map_or(0, i64::from);
                off = m_off.saturating_add(size.saturating_mul(8));
            }
            prev_bitfield = bits != 0;
            self.w(";")?;
        }
        if is_struct {
            self.emit_padding(
                id,
                off,
                i64::from(t.size()).saturating_mul(8),
                align,
                false,
                lvl.saturating_add(1),
            )?;
        }
        // `struct empty {}` stays on one line.
        if t.vlen() != 0 || t.size() != 0 {
            self.w("\n")?;
            self.pfx(lvl)?;
        }
        self.w("}")?;
        if packed {
            self.w(" __attribute__((packed))")?;
        }
        Ok(())
    }
}

/// `x` rounded up to a multiple of `unit` (unchanged for a zero unit).
pub(super) fn round_up(x: i64, unit: i64) -> i64 {
    match x.checked_rem(unit) {
        Some(r) if r != 0 => x.saturating_add(unit.saturating_sub(r)),
        _ => x,
    }
}
