//! Declarators: pointers, arrays, modifiers and prototypes around a
//! name, in C's inside-out syntax.

use super::*;

/// A window of the shared declarator stack: `stack[base..base + cnt]`,
/// popped from the top. Nested declarators push above the whole window.
pub(super) struct View {
    base: usize,
    cnt: usize,
}

impl<'a, 'b> CDump<'a, 'b> {
    /// Writes a declaration of `fname` with type `id`: the chain of
    /// pointers, arrays, modifiers and prototypes down to a named (or
    /// inline anonymous) type, in C's inside-out syntax.
    pub(super) fn emit_type_decl(
        &mut self,
        id: u32,
        fname: Ident<'_>,
        lvl: u32,
        depth: u32,
    ) -> Res {
        self.step(id, depth)?;
        let base = self.decl.len();
        let mut id = id;
        loop {
            if self.decl.len().saturating_sub(base) >= MAX_DECL_CHAIN {
                return Err(self.err(ErrorKind::TypeChainTooDeep(TypeId(id)), id));
            }
            self.decl
                .try_reserve(1)
                .map_err(|_| self.err(ErrorKind::OutOfMemory, id))?;
            self.decl.push(id);
            if id == 0 {
                break;
            }
            let t = self.ty(id)?;
            id = match t.kind() {
                Kind::Ptr
                | Kind::Volatile
                | Kind::Const
                | Kind::Restrict
                | Kind::FuncProto
                | Kind::TypeTag => t.type_id().0,
                Kind::Array => t.as_array().map_or(0, |a| a.elem_type.0),
                // Named types, and kinds with no place in a declarator
                // (libbpf warns and writes what it has).
                _ => break,
            };
        }
        let mut view = View {
            base,
            cnt: self.decl.len().saturating_sub(base),
        };
        let r = self.emit_type_chain(&mut view, fname, lvl, depth.saturating_add(1));
        self.decl.truncate(base);
        r
    }

    pub(super) fn peek(&self, v: &View) -> Option<u32> {
        let top = v.base.checked_add(v.cnt)?.checked_sub(1)?;
        if v.cnt == 0 {
            return None;
        }
        self.decl.get(top).copied()
    }

    pub(super) fn pop(&self, v: &mut View) -> Option<u32> {
        let id = self.peek(v)?;
        v.cnt = v.cnt.saturating_sub(1);
        Some(id)
    }

    /// Writes the qualifiers on top of the stack, left of a base type.
    pub(super) fn emit_mods(&mut self, v: &mut View) -> Res {
        while let Some(id) = self.peek(v) {
            let s = match self.kind_of(id)? {
                Some(Kind::Volatile) => "volatile ",
                Some(Kind::Const) => "const ",
                Some(Kind::Restrict) => "restrict ",
                _ => return Ok(()),
            };
            self.w(s)?;
            v.cnt = v.cnt.saturating_sub(1);
        }
        Ok(())
    }

    /// Qualifiers on arrays and prototypes (GCC quirks) mean nothing in C.
    pub(super) fn drop_mods(&mut self, v: &mut View) -> Res {
        while let Some(id) = self.peek(v) {
            match self.kind_of(id)? {
                Some(k) if k.is_modifier() => v.cnt = v.cnt.saturating_sub(1),
                _ => return Ok(()),
            }
        }
        Ok(())
    }

    pub(super) fn emit_name(&mut self, fname: Ident<'_>, last_was_ptr: bool) -> Res {
        if !fname.is_empty() && !last_was_ptr {
            self.w(" ")?;
        }
        self.write_ident(fname)
    }

    pub(super) fn emit_type_chain(
        &mut self,
        v: &mut View,
        fname: Ident<'_>,
        lvl: u32,
        depth: u32,
    ) -> Res {
        self.step(0, depth)?;
        let next = depth.saturating_add(1);
        // Start as if after a pointer: a lone `*` in `(*f)` needs no space.
        let mut last_was_ptr = true;
        while let Some(id) = self.pop(v) {
            if id == 0 {
                self.emit_mods(v)?;
                self.w("void")?;
                last_was_ptr = false;
                continue;
            }
            let t = self.ty(id)?;
            let kind = t.kind();
            match kind {
                Kind::Int | Kind::Float => {
                    self.emit_mods(v)?;
                    let n = self.raw_name(&t);
                    self.wb(n)?;
                }
                Kind::Struct | Kind::Union => {
                    self.emit_mods(v)?;
                    if t.name_off().0 == 0 {
                        self.emit_struct_def(id, &t, lvl, next)?;
                    } else {
                        self.emit_struct_fwd(id, &t)?;
                    }
                }
                Kind::Enum | Kind::Enum64 => {
                    self.emit_mods(v)?;
                    if t.name_off().0 == 0 {
                        self.emit_enum_def(id, &t, lvl)?;
                    } else {
                        self.emit_enum_fwd(id)?;
                    }
                }
                Kind::Fwd => {
                    self.emit_mods(v)?;
                    self.emit_fwd_def(id, &t)?;
                }
                Kind::Typedef => {
                    self.emit_mods(v)?;
                    let name = self.ident_name(id)?;
                    self.write_ident(name)?;
                }
                Kind::Ptr => self.w(if last_was_ptr { "*" } else { " *" })?,
                Kind::Volatile => self.w(" volatile")?,
                Kind::Const => self.w(" const")?,
                Kind::Restrict => self.w(" restrict")?,
                Kind::TypeTag => {
                    self.emit_mods(v)?;
                    self.w(" __attribute__((btf_type_tag(\"")?;
                    let n = self.raw_name(&t);
                    self.wb(n)?;
                    self.w("\")))")?;
                }
                Kind::Array => {
                    let nelems = t.as_array().map_or(0, |a| a.nelems);
                    self.drop_mods(v)?;
                    let Some(inner) = self.peek(v) else {
                        self.emit_name(fname, last_was_ptr)?;
                        write!(self.out, "[{nelems}]")?;
                        return Ok(());
                    };
                    // `int a[2][3]` needs no parentheses; `int (*a)[3]` does.
                    let multidim = self.kind_of(inner)? == Some(Kind::Array);
                    if !fname.is_empty() && !last_was_ptr {
                        self.w(" ")?;
                    }
                    if !multidim {
                        self.w("(")?;
                    }
                    self.emit_type_chain(v, fname, lvl, next)?;
                    if !multidim {
                        self.w(")")?;
                    }
                    write!(self.out, "[{nelems}]")?;
                    return Ok(());
                }
                Kind::FuncProto => {
                    self.drop_mods(v)?;
                    if v.cnt > 0 {
                        self.w(" (")?;
                        self.emit_type_chain(v, fname, lvl, next)?;
                        self.w(")")?;
                    } else {
                        self.emit_name(fname, last_was_ptr)?;
                    }
                    self.w("(")?;
                    let vlen = t.vlen() as usize;
                    let mut params = t.params();
                    // No parameters, or clang's lone `void` one: `(void)`.
                    if vlen == 0 || (vlen == 1 && params.next().map(|p| p.type_id.0) == Some(0)) {
                        return self.w("void)");
                    }
                    for (i, p) in t.params().enumerate() {
                        if i > 0 {
                            self.w(", ")?;
                        }
                        if i.saturating_add(1) == vlen && p.type_id == TypeId::VOID {
                            self.w("...")?;
                            break;
                        }
                        let pname = Ident::plain(self.btf.bytes_at(p.name_off).unwrap_or(b""));
                        self.emit_type_decl(p.type_id.0, pname, lvl, next)?;
                    }
                    return self.w(")");
                }
                // No C form (libbpf warns and stops this declarator).
                _ => return Ok(()),
            }
            last_was_ptr = kind == Kind::Ptr;
        }
        self.emit_name(fname, last_was_ptr)
    }
}
