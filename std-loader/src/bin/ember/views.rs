//! `ember prog list`, `ember map dump`, `ember link list`: thin views over
//! the kernel's id walks.

use std::io::Write;

use ember::btf_value::dump_map;
use ember::ember_core::object::{LinkType, MapType, ProgType};
use ember::ember_sys::{self, AsFd, LinkId, MapId, ProgId};
use serde_json::json;

type Res<T> = Result<T, Box<dyn core::error::Error>>;

/// Lowercase hex of a program tag.
fn tag(t: &[u8]) -> String {
    ember::btf_value::hex(t)
}

pub(crate) fn prog_list(json: bool) -> Res<()> {
    let mut o = std::io::stdout().lock();
    for id in ember_sys::obj_ids::<ProgId>() {
        let id = id?;
        // Programs can go away between the walk and the open.
        let Ok(fd) = ember_sys::get_fd_by_id(id, 0) else {
            continue;
        };
        let Ok(i) = ember_sys::prog_info(fd.as_fd()) else {
            continue;
        };
        let ty = ProgType(i.prog_type);
        let mut maps = [MapId(0); 64];
        let n = ember_sys::prog_map_ids(fd.as_fd(), &mut maps).unwrap_or(0);
        let maps: Vec<u32> = maps.iter().take(n as usize).map(|m| m.0).collect();
        if json {
            let v = json!({
                "id": id.0, "type": ty.to_string(), "name": i.name(), "tag": tag(&i.tag),
                "map_ids": maps,
            });
            writeln!(o, "{v}")?;
        } else {
            let ids: Vec<String> = maps.iter().map(u32::to_string).collect();
            writeln!(
                o,
                "{}: {}  name {}  tag {}  map_ids {}",
                id.0,
                ty,
                i.name(),
                tag(&i.tag),
                ids.join(",")
            )?;
        }
    }
    Ok(())
}

pub(crate) fn link_list(json: bool) -> Res<()> {
    let mut o = std::io::stdout().lock();
    for id in ember_sys::obj_ids::<LinkId>() {
        let id = id?;
        let Ok(fd) = ember_sys::get_fd_by_id(id, 0) else {
            continue;
        };
        let Ok(i) = ember_sys::link_info(fd.as_fd()) else {
            continue;
        };
        let ty = LinkType(i.link_type);
        if json {
            writeln!(
                o,
                "{}",
                json!({"id": id.0, "type": ty.to_string(), "prog_id": i.prog_id.0})
            )?;
        } else {
            writeln!(o, "{}: {}  prog {}", id.0, ty, i.prog_id.0)?;
        }
    }
    Ok(())
}

pub(crate) fn map_dump(which: &str) -> Res<()> {
    let fd = if which.starts_with('/') {
        let c = std::ffi::CString::new(which).map_err(|_| format!("{which}: bad path"))?;
        ember_sys::obj_get(&c).map_err(|e| format!("{which}: {e}"))?
    } else if let Ok(id) = which.parse::<u32>() {
        ember_sys::get_fd_by_id(MapId(id), 0).map_err(|e| format!("map id {id}: {e}"))?
    } else {
        find_by_name(which)?.ok_or_else(|| format!("no loaded map is named '{which}'"))?
    };
    let map = ember::Map::from_fd(which.to_owned(), fd, true)?;
    if map.map_type() == MapType::RINGBUF || map.map_type() == MapType::PERF_EVENT_ARRAY {
        return Err(format!("{which}: a {} map has no entries to dump", map.map_type()).into());
    }
    let entries = dump_map(&map)?;
    let mut o = std::io::stdout().lock();
    writeln!(o, "{}", serde_json::to_string_pretty(&entries)?)?;
    Ok(())
}

/// The newest map called `name` (maps of a gone process linger a moment
/// while the kernel frees them; the newest is the one a user means).
fn find_by_name(name: &str) -> Res<Option<ember_sys::OwnedFd>> {
    let mut found = None;
    for id in ember_sys::obj_ids::<MapId>() {
        let Ok(fd) = ember_sys::get_fd_by_id(id?, 0) else {
            continue;
        };
        if ember_sys::map_info(fd.as_fd()).is_ok_and(|i| i.name() == name) {
            found = Some(fd);
        }
    }
    Ok(found)
}
