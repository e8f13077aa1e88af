//! `ember run`: load, attach, stream events, dump maps, detach on Ctrl-C,
//! SIGTERM or after `--duration`.

use core::sync::atomic::{AtomicBool, Ordering};
use core::time::Duration;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use ember::btf_value::{decode, dump_map, find_type, hex};
use ember::ember_core::btf::{Btf, TypeId};
use ember::ember_core::object::MapType;
use ember::ember_sys::{PerfRecord, RingBufPoller};
use ember::maps::{PerfEventArray, RingBuffer};
use ember::{AttachErrorKind, Ebpf, Link};
use serde_json::{Value, json};

use crate::settings::{Settings, assignment, configure};
use crate::{context, read};

/// `--duration`: decimal seconds (`3`, `2.5`, `.25`) to the nanosecond.
/// Parsed by hand: a float parser is 20 KiB of the static binary.
pub(crate) fn seconds(text: &str) -> Result<Duration, String> {
    let bad = || format!("'{text}' is not a number of seconds (e.g. 2.5)");
    let (int, frac) = text.split_once('.').unwrap_or((text, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if (int.is_empty() && frac.is_empty()) || !digits(int) || !digits(frac) {
        return Err(bad());
    }
    let secs = if int.is_empty() {
        0
    } else {
        int.parse::<u64>().map_err(|_| bad())?
    };
    // Digits past the ninth are below a nanosecond.
    let nanos = frac
        .bytes()
        .chain(core::iter::repeat(b'0'))
        .take(9)
        .fold(0u32, |n, b| n * 10 + u32::from(b - b'0'));
    Ok(Duration::new(secs, nanos))
}

/// What `ember run` was asked.
pub(crate) struct RunArgs {
    pub(crate) file: PathBuf,
    pub(crate) btf: Option<PathBuf>,
    pub(crate) btf_dir: Option<PathBuf>,
    pub(crate) duration: Option<Duration>,
    pub(crate) settings: Settings,
    pub(crate) attach: Vec<String>,
    pub(crate) event: Vec<String>,
    pub(crate) dump: Vec<String>,
    pub(crate) json: bool,
    pub(crate) mode: ember::AttachMode,
    /// Print the load's notes (which BTF was picked and why) on stderr.
    pub(crate) verbose: bool,
}

type Res<T> = Result<T, Box<dyn core::error::Error>>;

pub(crate) fn run(a: &RunArgs) -> Res<()> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&stop))?;
    }
    let bytes = read(&a.file)?;
    let name = a
        .file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let at_file = |e: Box<dyn core::error::Error>| context(a.file.display().to_string(), e);
    let mut spec = ember::ObjectSpec::parse(&bytes, &name).map_err(|e| at_file(e.into()))?;
    configure(&mut spec, &a.settings).map_err(at_file)?;
    let mut loader = ember::EbpfLoader::new();
    if let Some(b) = &a.btf {
        loader = loader.btf_file(b);
    }
    if let Some(d) = &a.btf_dir {
        loader = loader.btf_dir(d);
    }
    if let Some(text) = a.settings.kconfig_text()? {
        loader = loader.kconfig(text);
    }
    let mut ebpf = loader.load_spec(spec).map_err(|e| at_file(e.into()))?;
    if a.verbose {
        for n in &ebpf.notes {
            eprintln!("note: {n}");
        }
    }
    let obj_btf = Btf::parse_elf(&bytes, None).ok();

    // Readers first: a bad --event fails before anything is attached.
    let mut events = Events::open(&mut ebpf, obj_btf.as_ref(), &a.event)?;
    for m in &a.dump {
        if ebpf.map(m).is_none() {
            return Err(format!("--dump {m}: the object has no such map").into());
        }
    }
    let opts = ember::AttachOpts {
        mode: a.mode,
        ..ember::AttachOpts::default()
    };
    let links = attach(&ebpf, &a.attach, opts)?;
    let mut out = Output::new(a.json);
    let trace = uses_printk(&bytes).then(spawn_trace_pipe).flatten();

    let deadline = a.duration.map(|d| Instant::now() + d);
    let mut next_dump = Instant::now() + Duration::from_secs(1);
    while !stop.load(Ordering::Relaxed) && deadline.is_none_or(|d| Instant::now() < d) {
        events.poll(&mut out)?;
        if let Some(rx) = &trace {
            while let Ok(line) = rx.try_recv() {
                out.trace(&line);
            }
        }
        if !a.dump.is_empty() && Instant::now() >= next_dump {
            next_dump += Duration::from_secs(1);
            dump(&ebpf, &a.dump, &mut out)?;
        }
        out.flush();
    }
    // Drain what arrived before the stop, and show the maps as they ended
    // (a run stopped within its first second still says what it counted).
    events.drain(&mut out)?;
    dump(&ebpf, &a.dump, &mut out)?;
    out.flush();
    let n = links.len();
    for l in links {
        let what = format!("{} from {}", l.program(), l.target());
        l.detach()
            .map_err(|e| context(format!("detach {what}"), e))?;
    }
    eprintln!("detached {n} link(s)");
    Ok(())
}

/// Prints each `--dump` map's entries.
fn dump(ebpf: &Ebpf, maps: &[String], out: &mut Output) -> Res<()> {
    for m in maps {
        let map = ebpf
            .map(m)
            .ok_or_else(|| format!("--dump {m}: the object has no such map"))?;
        out.dump(m, dump_map(map)?);
    }
    Ok(())
}

/// Attaches `--attach PROG=TARGET` programs explicitly, then every other
/// program whose section names a target.
fn attach(ebpf: &Ebpf, explicit: &[String], opts: ember::AttachOpts) -> Res<Vec<Link>> {
    let mut links = Vec::new();
    let mut named = Vec::new();
    for a in explicit {
        let (prog, target) = assignment("--attach", a)?;
        let p = ebpf
            .program(prog)
            .ok_or_else(|| format!("--attach {a}: the object has no program '{prog}'"))?;
        let l = p.attach_to(target, opts)?;
        eprintln!(
            "attached {} to {} ({})",
            l.program(),
            l.target(),
            l.mechanism()
        );
        links.push(l);
        named.push(prog);
    }
    for p in ebpf.programs() {
        if named.contains(&p.name()) {
            continue;
        }
        match p.attach_with(opts) {
            Ok(l) => {
                eprintln!(
                    "attached {} to {} ({})",
                    l.program(),
                    l.target(),
                    l.mechanism()
                );
                links.push(l);
            }
            Err(e) if matches!(e.kind, AttachErrorKind::NoTarget) => eprintln!(
                "skipped {}: section '{}' names no target (use --attach {}=TARGET)",
                p.name(),
                p.section(),
                p.name()
            ),
            Err(e) => return Err(e.into()),
        }
    }
    Ok(links)
}

/// The object's ring and perf buffers, with the type each is decoded as.
struct Events {
    rings: RingBufPoller,
    ring_names: Vec<(String, Option<TypeId>)>,
    perf: Vec<(String, Option<TypeId>, PerfEventArray)>,
    btf: Option<Vec<u8>>,
}

impl Events {
    fn open(ebpf: &mut Ebpf, btf: Option<&Btf<'_>>, event: &[String]) -> Res<Events> {
        let mut types = Vec::new();
        for e in event {
            let (map, ty) = assignment("--event", e)?;
            let btf = btf.ok_or_else(|| format!("--event {e}: the object has no BTF"))?;
            let id = find_type(btf, ty)
                .ok_or_else(|| format!("--event {e}: the object's BTF has no type '{ty}'"))?;
            if ebpf.map(map).is_none() {
                return Err(format!("--event {e}: the object has no map '{map}'").into());
            }
            types.push((map.to_owned(), id));
        }
        let ty = |name: &str| types.iter().find(|(m, _)| m == name).map(|(_, t)| *t);
        let mut rings = RingBufPoller::new()?;
        let mut ring_names = Vec::new();
        let mut perf = Vec::new();
        for m in ebpf.maps() {
            match m.map_type() {
                MapType::RINGBUF => {
                    rings.add(RingBuffer::new(m)?.into_inner())?;
                    ring_names.push((m.name().to_owned(), ty(m.name())));
                }
                MapType::PERF_EVENT_ARRAY => {
                    perf.push((
                        m.name().to_owned(),
                        ty(m.name()),
                        PerfEventArray::open(m, 8)?,
                    ));
                }
                _ => {}
            }
        }
        Ok(Events {
            rings,
            ring_names,
            perf,
            btf: btf.map(|b| b.data().to_vec()),
        })
    }

    fn poll(&mut self, out: &mut Output) -> Res<()> {
        let wait = if self.perf.is_empty() {
            Duration::from_millis(100)
        } else {
            Duration::from_millis(50)
        };
        let btf = self.btf.as_deref().and_then(|b| Btf::parse(b).ok());
        let names = &self.ring_names;
        match self.rings.poll(Some(wait), |i, r| {
            if let Some((name, ty)) = names.get(i) {
                out.record(name, None, r, btf.as_ref().zip(*ty));
            }
        }) {
            Ok(_) => {}
            Err(e) if e.errno == ember::ember_sys::Errno::INTR => {}
            Err(e) => return Err(e.into()),
        }
        if self.ring_names.is_empty() && self.perf.is_empty() {
            std::thread::sleep(wait);
        }
        for (name, ty, p) in &mut self.perf {
            let r = p.poll(Some(Duration::ZERO), |rec| match rec {
                PerfRecord::Sample { cpu, data } => {
                    out.record(name, Some(cpu), data, btf.as_ref().zip(*ty));
                }
                PerfRecord::Lost { cpu, count } => {
                    eprintln!("lost {count} samples on CPU {cpu} of {name}");
                }
                _ => {}
            });
            match r {
                Ok(_) => {}
                Err(e) if e.errno == ember::ember_sys::Errno::INTR => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    fn drain(&mut self, out: &mut Output) -> Res<()> {
        let btf = self.btf.as_deref().and_then(|b| Btf::parse(b).ok());
        let names = &self.ring_names;
        self.rings.consume(|i, r| {
            if let Some((name, ty)) = names.get(i) {
                out.record(name, None, r, btf.as_ref().zip(*ty));
            }
        })?;
        for (name, ty, p) in &mut self.perf {
            p.consume(|rec| {
                if let PerfRecord::Sample { cpu, data } = rec {
                    out.record(name, Some(cpu), data, btf.as_ref().zip(*ty));
                }
            })?;
        }
        Ok(())
    }
}

/// Where records, trace lines and dumps go: stdout, text or JSON lines.
struct Output {
    json: bool,
    o: std::io::Stdout,
    broken: bool,
}

impl Output {
    fn new(json: bool) -> Output {
        Output {
            json,
            o: std::io::stdout(),
            broken: false,
        }
    }

    fn line(&mut self, s: &str) {
        // A closed pipe (`| head`) ends the output, not the run.
        if !self.broken && writeln!(self.o, "{s}").is_err() {
            self.broken = true;
        }
    }

    fn flush(&mut self) {
        let _ = self.o.flush();
    }

    fn record(&mut self, map: &str, cpu: Option<u32>, data: &[u8], ty: Option<(&Btf<'_>, TypeId)>) {
        let value = ty.map(|(b, t)| decode(b, t, data));
        let s = if self.json {
            let mut v = json!({ "map": map, "data": hex(data) });
            if let Some(c) = cpu {
                v["cpu"] = json!(c);
            }
            if let Some(d) = value {
                v["value"] = d;
            }
            v.to_string()
        } else {
            let cpu = cpu.map(|c| format!(" cpu {c}")).unwrap_or_default();
            match value {
                Some(d) => format!("{map}{cpu}: {d}"),
                None => format!("{map}{cpu}: {}", hex(data)),
            }
        };
        self.line(&s);
    }

    fn trace(&mut self, line: &str) {
        let s = if self.json {
            json!({ "trace": line }).to_string()
        } else {
            format!("trace: {line}")
        };
        self.line(&s);
    }

    fn dump(&mut self, map: &str, entries: Vec<Value>) {
        let s = if self.json {
            json!({ "dump": map, "entries": entries }).to_string()
        } else {
            format!("dump {map}: {}", Value::Array(entries))
        };
        self.line(&s);
    }
}

/// Whether the object calls `bpf_trace_printk` (6) or `bpf_trace_vprintk`
/// (177): only then is `trace_pipe` read, since reading it takes lines
/// from every other reader.
fn uses_printk(elf: &[u8]) -> bool {
    use object::{Object as _, ObjectSection as _, SectionFlags};
    let Ok(f) = object::File::parse(elf) else {
        return false;
    };
    f.sections()
        .filter(|s| matches!(s.flags(), SectionFlags::Elf { sh_flags } if sh_flags & 4 != 0))
        .filter_map(|s| s.data().ok())
        .any(|d| {
            d.chunks_exact(8).any(|i| {
                let imm = i32::from_le_bytes([i[4], i[5], i[6], i[7]]);
                let imm_be = i32::from_be_bytes([i[4], i[5], i[6], i[7]]);
                i[0] == 0x85 && (imm == 6 || imm == 177 || imm_be == 6 || imm_be == 177)
            })
        })
}

/// Lines of tracefs `trace_pipe`, read by a thread (the read blocks; the
/// thread ends with the process).
fn spawn_trace_pipe() -> Option<std::sync::mpsc::Receiver<String>> {
    let root = ember::attach::tracefs::root().ok()?;
    let f = std::fs::File::open(Path::new(root).join("trace_pipe")).ok()?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(f).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    Some(rx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_parse_to_the_nanosecond_and_refuse_the_rest() {
        assert_eq!(seconds("3"), Ok(Duration::from_secs(3)));
        assert_eq!(seconds("2.5"), Ok(Duration::from_millis(2500)));
        assert_eq!(seconds(".25"), Ok(Duration::from_millis(250)));
        assert_eq!(seconds("1."), Ok(Duration::from_secs(1)));
        assert_eq!(seconds("0.1234567891"), Ok(Duration::new(0, 123_456_789)));
        for bad in [
            "",
            ".",
            "-1",
            "1e3",
            "inf",
            "1.2.3",
            " 1",
            "99999999999999999999",
        ] {
            assert!(seconds(bad).is_err(), "{bad}");
        }
    }
}
