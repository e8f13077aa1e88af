//! Pass 2, emission: each queued type written after the forward
//! declarations it needs; forward declarations, enums and typedefs.

use super::*;

impl<'a, 'b> CDump<'a, 'b> {
    pub(super) fn is_blacklisted(&self, t: &Type<'_>) -> bool {
        // A compiler built-in: redefining it breaks other compilers.
        t.name_off().0 != 0 && self.raw_name(t) == b"__builtin_va_list"
    }

    /// Writes `id`'s definition if it is due, after whatever forward
    /// declarations it needs; `cont_id` is the named type being defined
    /// around it (0 at top level).
    pub(super) fn emit_type(&mut self, id: u32, cont_id: u32, depth: u32) -> Res {
        self.step(id, depth)?;
        let state = self.emit_state(id);
        if state == EMITTED {
            return Ok(());
        }
        let t = self.ty(id)?;
        let top_level = cont_id == 0;
        let named = t.name_off().0 != 0;
        let next = depth.saturating_add(1);
        if state == EMITTING {
            // Re-entered while defining it: a forward declaration (or, for
            // a typedef, the typedef itself) satisfies the reference.
            if self.flags(id) & FWD_EMITTED != 0 {
                return Ok(());
            }
            match t.kind() {
                Kind::Struct | Kind::Union => {
                    // Self-references need nothing; anonymous loops have
                    // no C form and are skipped, as libbpf does.
                    if id == cont_id || !named {
                        return Ok(());
                    }
                    self.emit_struct_fwd(id, &t)?;
                    self.w(";\n\n")?;
                    self.set_flag(id, FWD_EMITTED);
                }
                Kind::Typedef => {
                    if !self.is_blacklisted(&t) {
                        self.emit_typedef_def(id, &t, 0, next)?;
                        self.w(";\n\n")?;
                    }
                    self.set_flag(id, FWD_EMITTED);
                }
                _ => {}
            }
            return Ok(());
        }
        match t.kind() {
            Kind::Int => {
                self.emit_missing_alias(id)?;
                self.set_emit(id, EMITTED);
            }
            Kind::Enum | Kind::Enum64 => {
                if top_level {
                    self.emit_enum_def(id, &t, 0)?;
                    self.w(";\n\n")?;
                }
                self.set_emit(id, EMITTED);
            }
            Kind::Ptr | Kind::Volatile | Kind::Const | Kind::Restrict | Kind::TypeTag => {
                self.emit_type(t.type_id().0, cont_id, next)?;
            }
            Kind::Array => {
                let elem = t.as_array().map_or(0, |a| a.elem_type.0);
                self.emit_type(elem, cont_id, next)?;
            }
            Kind::Fwd => {
                self.emit_fwd_def(id, &t)?;
                self.w(";\n\n")?;
                self.set_emit(id, EMITTED);
            }
            Kind::Typedef => {
                self.set_emit(id, EMITTING);
                self.emit_type(t.type_id().0, id, next)?;
                if self.flags(id) & FWD_EMITTED == 0 && !self.is_blacklisted(&t) {
                    self.emit_typedef_def(id, &t, 0, next)?;
                    self.w(";\n\n")?;
                }
                self.set_emit(id, EMITTED);
            }
            Kind::Struct | Kind::Union => {
                self.set_emit(id, EMITTING);
                if top_level || !named {
                    // The body will be written out, so its members' types
                    // need their declarations first.
                    let inner = if named { id } else { cont_id };
                    for m in t.members() {
                        self.emit_type(m.type_id.0, inner, next)?;
                    }
                } else if self.flags(id) & FWD_EMITTED == 0 && id != cont_id {
                    self.emit_struct_fwd(id, &t)?;
                    self.w(";\n\n")?;
                    self.set_flag(id, FWD_EMITTED);
                }
                if top_level {
                    self.emit_struct_def(id, &t, 0, next)?;
                    self.w(";\n\n")?;
                    self.set_emit(id, EMITTED);
                } else {
                    self.set_emit(id, 0);
                }
            }
            Kind::FuncProto => {
                self.emit_type(t.type_id().0, cont_id, next)?;
                for p in t.params() {
                    self.emit_type(p.type_id.0, cont_id, next)?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// GCC's Arm SIMD typedefs name internal types; alias them to C ones.
    /// (Also where libbpf first counts an INT's name as a tag.)
    pub(super) fn emit_missing_alias(&mut self, id: u32) -> Res {
        const ALIASES: [(&[u8], &str); 4] = [
            (b"__Poly8_t", "unsigned char"),
            (b"__Poly16_t", "unsigned short"),
            (b"__Poly64_t", "unsigned long long"),
            (b"__Poly128_t", "unsigned __int128"),
        ];
        let name = self.type_name(id)?;
        // libbpf matches the printed name, so a renamed one never matches.
        let alias = ALIASES
            .iter()
            .find(|(n, _)| name.dup <= 1 && *n == name.name);
        if let Some((_, c)) = alias {
            self.w("typedef ")?;
            self.w(c)?;
            self.w(" ")?;
            self.write_ident(name)?;
            self.w(";\n\n")?;
        }
        Ok(())
    }

    pub(super) fn emit_struct_fwd(&mut self, id: u32, t: &Type<'_>) -> Res {
        self.w(if t.kind() == Kind::Struct {
            "struct "
        } else {
            "union "
        })?;
        let name = self.type_name(id)?;
        self.write_ident(name)
    }

    pub(super) fn emit_fwd_def(&mut self, id: u32, t: &Type<'_>) -> Res {
        self.w(if t.kflag() { "union " } else { "struct " })?;
        let name = self.type_name(id)?;
        self.write_ident(name)
    }

    pub(super) fn emit_enum_fwd(&mut self, id: u32) -> Res {
        self.w("enum ")?;
        let name = self.type_name(id)?;
        self.write_ident(name)
    }

    pub(super) fn emit_enum_def(&mut self, id: u32, t: &Type<'a>, lvl: u32) -> Res {
        self.w("enum")?;
        if t.name_off().0 != 0 {
            self.w(" ")?;
        }
        let name = self.type_name(id)?;
        self.write_ident(name)?;
        if t.vlen() == 0 {
            return Ok(());
        }
        self.w(" {")?;
        let is64 = t.kind() == Kind::Enum64;
        let signed = t.kflag();
        for e in t.enumerators() {
            let name = self.btf.bytes_at(e.name_off).unwrap_or(b"");
            // Enumerators share the identifier namespace with typedefs.
            let dup = self.ident_names.bump(name);
            self.w("\n")?;
            self.pfx(lvl.saturating_add(1))?;
            self.wb(name)?;
            if dup > 1 {
                write!(self.out, "___{dup}")?;
            }
            match (is64, signed) {
                (false, true) => write!(self.out, " = {},", e.value as i32)?,
                (false, false) => write!(self.out, " = {},", e.value as u32)?,
                (true, true) => write!(self.out, " = {}LL,", e.value as i64)?,
                (true, false) => write!(self.out, " = {}ULL,", e.value)?,
            }
        }
        self.w("\n")?;
        self.pfx(lvl)?;
        self.w("}")?;
        // Not in bpftool 7.1, whose headers get these enums' sizes wrong
        // (1-byte `enum x : u8`, or 8 bytes with only 32-bit values); the
        // attributes are those of later libbpf.
        let word_mode = t.size() == 8
            && self.ptr_size == 8
            && (!is64 || t.enumerators().all(|e| e.value >> 32 == 0));
        if t.size() == 1 {
            self.w(" __attribute__((mode(byte)))")?;
        } else if word_mode {
            self.w(" __attribute__((mode(word)))")?;
        }
        Ok(())
    }

    pub(super) fn emit_typedef_def(&mut self, id: u32, t: &Type<'a>, lvl: u32, depth: u32) -> Res {
        let name = self.ident_name(id)?;
        // Old GCC emits `__gnuc_va_list` as a typedef of void.
        if t.type_id() == TypeId::VOID && name.dup <= 1 && name.name == b"__gnuc_va_list" {
            return self.w("typedef __builtin_va_list __gnuc_va_list");
        }
        self.w("typedef ")?;
        self.emit_type_decl(t.type_id().0, name, lvl, depth)
    }
}
