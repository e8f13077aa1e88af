//! Pass 1, ordering: which types need a top-level definition, queued
//! after the types they embed (strong links) or behind a forward
//! declaration (weak links, through pointers).

use super::*;

impl<'a, 'b> CDump<'a, 'b> {
    pub(super) fn mark(&mut self, id: TypeId) {
        self.set_flag(id.0, REFERENCED);
    }

    pub(super) fn mark_referenced(&mut self, t: &Type<'a>) -> Res {
        match t.kind() {
            Kind::Int | Kind::Enum | Kind::Enum64 | Kind::Fwd | Kind::Float => {}
            Kind::Volatile
            | Kind::Const
            | Kind::Restrict
            | Kind::Ptr
            | Kind::Typedef
            | Kind::Func
            | Kind::Var
            | Kind::DeclTag
            | Kind::TypeTag => self.mark(t.type_id()),
            Kind::Array => {
                if let Some(a) = t.as_array() {
                    self.mark(a.index_type);
                    self.mark(a.elem_type);
                }
            }
            Kind::Struct | Kind::Union => {
                for m in t.members() {
                    self.mark(m.type_id);
                }
            }
            // The return type does not count, as in libbpf: an anonymous
            // enum only used as a return type is dumped standalone.
            Kind::FuncProto => {
                for p in t.params() {
                    self.mark(p.type_id);
                }
            }
            Kind::Datasec => {
                for e in t.datasec_entries() {
                    self.mark(e.type_id);
                }
            }
            _ => {
                return Err(self.err(ErrorKind::UnknownKind(t.raw_kind()), t.id().0));
            }
        }
        Ok(())
    }

    // ---- ordering ----

    pub(super) fn dump_root(&mut self, id: u32) -> Res {
        self.queue.clear();
        self.order(id, false, 0)?;
        let queue = core::mem::take(&mut self.queue);
        for &q in &queue {
            self.emit_type(q, 0, 0)?;
        }
        self.queue = queue;
        Ok(())
    }

    pub(super) fn enqueue(&mut self, id: u32) -> Res {
        self.queue
            .try_reserve(1)
            .map_err(|_| self.err(ErrorKind::OutOfMemory, id))?;
        self.queue.push(id);
        Ok(())
    }

    /// Queues `id`'s dependencies, then `id` if it needs a definition;
    /// `Ok(true)` when the link to it is strong.
    pub(super) fn order(&mut self, id: u32, through_ptr: bool, depth: u32) -> Res<bool> {
        self.step(id, depth)?;
        let state = self.order_state(id);
        if state == ORDERED {
            return Ok(true);
        }
        let t = self.ty(id)?;
        let named = t.name_off().0 != 0;
        if state == ORDERING {
            // A loop is fine only through a pointer to a named composite,
            // which a forward declaration breaks.
            if t.kind().is_composite() && through_ptr && named {
                return Ok(false);
            }
            return Err(self.err(ErrorKind::TypeChainTooDeep(TypeId(id)), id));
        }
        let next = depth.saturating_add(1);
        match t.kind() {
            Kind::Int | Kind::Float => {
                self.set_order(id, ORDERED);
                Ok(false)
            }
            Kind::Ptr => {
                let r = self.order(t.type_id().0, true, next)?;
                self.set_order(id, ORDERED);
                Ok(r)
            }
            Kind::Array => {
                let elem = t.as_array().map_or(0, |a| a.elem_type.0);
                self.order(elem, false, next)
            }
            Kind::Struct | Kind::Union => {
                if through_ptr && named {
                    return Ok(false);
                }
                self.set_order(id, ORDERING);
                for m in t.members() {
                    self.order(m.type_id.0, false, next)?;
                }
                if named {
                    self.enqueue(id)?;
                }
                self.set_order(id, ORDERED);
                Ok(true)
            }
            Kind::Enum | Kind::Enum64 | Kind::Fwd => {
                // Named ones are top-level definitions; so are anonymous
                // enums nobody references (constant blocks).
                if named || self.flags(id) & REFERENCED == 0 {
                    self.enqueue(id)?;
                }
                self.set_order(id, ORDERED);
                Ok(true)
            }
            Kind::Typedef => {
                let strong = self.order(t.type_id().0, through_ptr, next)?;
                if through_ptr && !strong {
                    return Ok(false);
                }
                self.enqueue(id)?;
                self.set_order(id, ORDERED);
                Ok(true)
            }
            Kind::Volatile | Kind::Const | Kind::Restrict | Kind::TypeTag => {
                self.order(t.type_id().0, through_ptr, next)
            }
            Kind::FuncProto => {
                let mut strong = self.order(t.type_id().0, through_ptr, next)?;
                for p in t.params() {
                    strong |= self.order(p.type_id.0, through_ptr, next)?;
                }
                Ok(strong)
            }
            Kind::Func | Kind::Var | Kind::Datasec | Kind::DeclTag => {
                self.set_order(id, ORDERED);
                Ok(false)
            }
            _ => Err(self.err(ErrorKind::UnknownKind(t.raw_kind()), id)),
        }
    }
}
