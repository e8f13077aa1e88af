//! `ember`: inspect BTF (and, as the loader grows, objects and CO-RE).

use core::time::Duration;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

mod btf_stats;
mod check;
mod decimal;
mod logger;
mod minimize;
mod minimize_tree;
mod run;
mod settings;

use settings::{Settings, configure};
mod views;
use ember::ember_core::btf::{Btf, dump};
use ember::write::IoFmt;
use ember::{Error, FileBytes};

/// CO-RE eBPF loading in Rust: BTF tools.
#[derive(Parser, Debug)]
#[command(name = "ember", version, about)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// BTF files: raw (e.g. /sys/kernel/btf/vmlinux) or ELF with .BTF.
    #[command(subcommand)]
    Btf(BtfCmd),
    /// BPF objects built by `clang -g -O2 -target bpf`.
    #[command(subcommand)]
    Object(ObjectCmd),
    /// CO-RE relocations.
    #[command(subcommand)]
    Core(CoreCmd),
    /// Load an object into the running kernel (root): create its maps,
    /// relocate and load its programs, pin, and print what was created.
    Load {
        /// The BPF object file.
        file: PathBuf,
        /// CO-RE target BTF (raw or ELF) instead of the kernel's, as
        /// libbpf's btf_custom_path: attach targets, kfuncs and typed ksyms
        /// still use the running kernel's own BTF.
        #[arg(long)]
        btf: Option<PathBuf>,
        /// A btfhub-style directory searched for a CO-RE target when the
        /// kernel has no BTF.
        #[arg(long = "btf-dir")]
        btf_dir: Option<PathBuf>,
        /// Pin every map and program under this bpffs directory (created
        /// if absent); by-name pinned maps there are reused.
        #[arg(long)]
        pin: Option<PathBuf>,
        /// Show relocations, fallbacks and the verifier's log.
        #[arg(long, short)]
        verbose: bool,
        /// Set a map's max_entries before load: MAP=N (repeatable).
        #[arg(long = "max-entries", value_name = "MAP=N")]
        max_entries: Vec<String>,
        /// Set a global variable before load: NAME=VALUE, where VALUE is
        /// a decimal or 0x integer (stored at the variable's BTF size,
        /// native byte order) or hex:BYTES (exactly its size); repeatable.
        #[arg(long = "set", value_name = "NAME=VALUE")]
        set: Vec<String>,
        /// Do not load this program (repeatable).
        #[arg(long = "no-autoload", value_name = "PROG")]
        no_autoload: Vec<String>,
        /// Kernel config text (CONFIG_X=value lines) whose options
        /// .kconfig externs take before the running kernel's, for kernels
        /// without /proc/config.gz or /boot/config-* (libbpf's kconfig
        /// option).
        #[arg(long, value_name = "FILE")]
        kconfig: Option<PathBuf>,
        /// Load an extension (freplace) or fentry/fexit program against a
        /// loaded program pinned at PIN, replacing or tracing its function
        /// FUNC (default: the one its section names): PROG=PIN[:FUNC]
        /// (repeatable).
        #[arg(long = "target", value_name = "PROG=PIN[:FUNC]")]
        target: Vec<String>,
    },
    /// Load an object, attach its programs, print their events until
    /// Ctrl-C, SIGTERM or --duration, then detach everything.
    Run {
        /// The BPF object file.
        file: PathBuf,
        /// CO-RE target BTF instead of the kernel's.
        #[arg(long)]
        btf: Option<PathBuf>,
        /// A btfhub-style directory searched for a CO-RE target when the
        /// kernel has no BTF.
        #[arg(long = "btf-dir")]
        btf_dir: Option<PathBuf>,
        /// Stop after this many seconds (decimal, e.g. 2.5).
        #[arg(long, value_parser = run::seconds)]
        duration: Option<Duration>,
        /// Set a map's max_entries before load: MAP=N (repeatable).
        #[arg(long = "max-entries", value_name = "MAP=N")]
        max_entries: Vec<String>,
        /// Set a global variable before load: NAME=VALUE (as `load`).
        #[arg(long = "set", value_name = "NAME=VALUE")]
        set: Vec<String>,
        /// Do not load this program (repeatable).
        #[arg(long = "no-autoload", value_name = "PROG")]
        no_autoload: Vec<String>,
        /// Kernel config text (CONFIG_X=value lines) whose options
        /// .kconfig externs take before the running kernel's, for kernels
        /// without /proc/config.gz or /boot/config-* (libbpf's kconfig
        /// option).
        #[arg(long, value_name = "FILE")]
        kconfig: Option<PathBuf>,
        /// Load a fentry/fexit or extension program against a loaded
        /// program pinned at PIN, tracing or replacing its function FUNC
        /// (default: the one its section names): PROG=PIN[:FUNC]
        /// (repeatable).
        #[arg(long = "target", value_name = "PROG=PIN[:FUNC]")]
        target: Vec<String>,
        /// Attach PROG to TARGET (a tracepoint CATEGORY/NAME, a raw
        /// tracepoint, an interface, a cgroup path, BINARY:SYMBOL, a
        /// function...), as its type reads it (repeatable).
        #[arg(long = "attach", value_name = "PROG=TARGET")]
        attach: Vec<String>,
        /// Decode MAP's records as TYPE from the object's BTF, e.g.
        /// events='struct event' (repeatable).
        #[arg(long = "event", value_name = "MAP=TYPE")]
        event: Vec<String>,
        /// Print MAP's entries, decoded through its BTF, every second and
        /// once more at the end (repeatable).
        #[arg(long = "dump", value_name = "MAP")]
        dump: Vec<String>,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
        /// Which kernel interface attachments use: auto (the newest the
        /// kernel has), link (bpf_links only) or legacy (perf ioctl,
        /// tracefs probes, netlink, PROG_ATTACH).
        #[arg(long = "attach-mode", value_enum, default_value_t = Mode::Auto)]
        attach_mode: Mode,
        /// Print what the load did (which BTF was picked and why) on stderr.
        #[arg(long, short)]
        verbose: bool,
    },
    /// Programs loaded in the kernel.
    #[command(subcommand)]
    Prog(ProgCmd),
    /// Maps in the kernel.
    #[command(subcommand)]
    Map(MapCmd),
    /// Links in the kernel.
    #[command(subcommand)]
    Link(LinkCmd),
}

/// `--attach-mode`.
#[derive(ValueEnum, Clone, Copy, Debug)]
enum Mode {
    Auto,
    Link,
    Legacy,
}

#[derive(Subcommand, Debug)]
enum ProgCmd {
    /// Every loaded program: id, type, name, tag.
    List {
        /// JSON lines.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
enum MapCmd {
    /// A map's entries decoded through its BTF (as `bpftool map dump`).
    Dump {
        /// The map: a name (the first loaded map of that name), an id, or a
        /// bpffs pin path.
        map: String,
    },
}

#[derive(Subcommand, Debug)]
enum LinkCmd {
    /// Every link: id, type, program id.
    List {
        /// JSON lines.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
enum CoreCmd {
    /// Solve every CO-RE relocation of an object against target BTF and
    /// say what each reads and what changes.
    Explain {
        /// The BPF object file.
        file: PathBuf,
        /// Target BTF (raw or ELF) instead of /sys/kernel/btf/vmlinux.
        #[arg(long)]
        btf: Option<PathBuf>,
        /// Base BTF (vmlinux) for --module-btf files, when --btf is not given.
        #[arg(long)]
        base: Option<PathBuf>,
        /// A btfhub-style directory (ID/VERSION_ID/ARCH/RELEASE.btf or
        /// .btf.tar.xz) searched when the kernel has no BTF of its own.
        #[arg(long = "btf-dir")]
        btf_dir: Option<PathBuf>,
        /// Module BTF (split over the target), searched when the target
        /// has no candidate; repeatable.
        #[arg(long = "module-btf")]
        module_btf: Vec<PathBuf>,
        /// One JSON object per relocation per line.
        #[arg(long)]
        json: bool,
        /// Also print the relocated instructions of every function.
        #[arg(long)]
        insns: bool,
        /// Say which target BTF was picked, why, and what was tried.
        #[arg(long, short)]
        verbose: bool,
    },
    /// A portability matrix: do each object's programs relocate, attach
    /// and find their kfuncs on every kernel BTF of a tree?
    Check(check::Args),
}

#[derive(Subcommand, Debug)]
enum ObjectCmd {
    /// Programs, maps, global data, externs and license of an object.
    Inspect {
        /// The BPF object file.
        file: PathBuf,
        /// One JSON document (schema in README.md) instead of text.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
enum BtfCmd {
    /// Print every type, as `bpftool btf dump file` does (raw) or as a
    /// C header (`vmlinux.h`).
    Dump {
        /// BTF file (raw or ELF).
        file: PathBuf,
        /// Base BTF when FILE is split BTF (module BTF over vmlinux).
        #[arg(long, short = 'B')]
        base: Option<PathBuf>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Raw)]
        format: Format,
    },
    /// Count types per kind and string bytes, and time opening (mmap or
    /// read) plus validation.
    Stats(btf_stats::Args),
    /// Keep only the types and members the objects' CO-RE relocations use
    /// (as `bpftool gen min_core_btf`).
    Minimize(minimize::Args),
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    /// bpftool's raw listing, line for line.
    Raw,
    /// A C header.
    C,
}

/// What was being done when `source` failed: printed as `what: <cause>`.
#[derive(Debug)]
struct Context {
    what: String,
    source: Box<dyn core::error::Error>,
}

impl core::fmt::Display for Context {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(&self.what)
    }
}

impl core::error::Error for Context {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        Some(&*self.source)
    }
}

/// Wraps `source` in a [`Context`] saying what was being done.
fn context(
    what: impl Into<String>,
    source: impl Into<Box<dyn core::error::Error>>,
) -> Box<dyn core::error::Error> {
    Box::new(Context {
        what: what.into(),
        source: source.into(),
    })
}

/// An error and every cause below it: `top: cause: cause`. Once a message
/// spans lines (a verifier log, a search list), later causes go on their
/// own `caused by:` lines.
fn chain(e: &dyn core::error::Error) -> String {
    let mut s = e.to_string();
    let mut next = e.source();
    while let Some(c) = next {
        s.push_str(if s.contains('\n') {
            "\ncaused by: "
        } else {
            ": "
        });
        s.push_str(&c.to_string());
        next = c.source();
    }
    s
}

fn read(path: &Path) -> Result<FileBytes, Error> {
    FileBytes::open(path).map_err(|source| Error::Io {
        path: path.to_owned(),
        source,
    })
}

fn parse<'a>(path: &Path, bytes: &'a [u8], base: Option<&'a Btf<'a>>) -> Result<Btf<'a>, Error> {
    Btf::parse_any(bytes, base).map_err(|source| Error::Btf {
        path: path.to_owned(),
        source,
    })
}

fn load(
    file: &Path,
    btf: Option<PathBuf>,
    btf_dir: Option<PathBuf>,
    pin: Option<PathBuf>,
    verbose: bool,
    settings: &Settings,
) -> Result<(), Box<dyn core::error::Error>> {
    let mut loader = ember::EbpfLoader::new();
    if let Some(b) = btf {
        loader = loader.btf_file(b);
    }
    if let Some(d) = btf_dir {
        loader = loader.btf_dir(d);
    }
    if let Some(p) = &pin {
        std::fs::create_dir_all(p).map_err(|e| context(p.display().to_string(), e))?;
        loader = loader.pin_dir(p);
    }
    if verbose {
        loader = loader.verifier_log_level(1);
    }
    if let Some(text) = settings.kconfig_text()? {
        loader = loader.kconfig(text);
    }
    let bytes = read(file)?;
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let at_file = |e: Box<dyn core::error::Error>| context(file.display().to_string(), e);
    let mut spec = ember::ObjectSpec::parse(&bytes, &name).map_err(|e| at_file(e.into()))?;
    configure(&mut spec, settings).map_err(at_file)?;
    let ebpf = loader
        .load_spec(spec)
        .map_err(|e| context(file.display().to_string(), e))?;
    let mut o = io::stdout().lock();
    if verbose {
        for n in &ebpf.notes {
            writeln!(o, "note: {n}")?;
        }
    }
    for m in ebpf.maps() {
        let mut line = format!(
            "map {} type {} key {} value {} max_entries {}",
            m.name(),
            m.map_type(),
            m.key_size(),
            m.value_size(),
            m.max_entries()
        );
        if m.reused() {
            line.push_str(" (reused pin)");
        }
        writeln!(o, "{line}")?;
    }
    for m in ebpf.struct_ops_maps() {
        let by = if m.link_fd().is_some() {
            "link"
        } else {
            "map update"
        };
        // Registered until this process exits (the Ebpf is dropped).
        writeln!(o, "struct_ops {} registered by {by}", m.name())?;
    }
    for p in ebpf.programs() {
        writeln!(
            o,
            "prog {} type {} section {} insns {}",
            p.name(),
            p.prog_type(),
            p.section(),
            p.insn_count()
        )?;
        if verbose && !p.log().is_empty() {
            writeln!(o, "{}", p.log().trim_end())?;
        }
    }
    if let Some(dir) = &pin {
        for m in ebpf.maps() {
            let path = dir.join(m.pin_name());
            if m.reused() || ebpf.pinned.contains(&path) {
                continue;
            }
            m.pin(&path)
                .map_err(|e| context(format!("pin {}", path.display()), e))?;
        }
        for p in ebpf.programs() {
            let path = dir.join(p.name());
            p.pin(&path)
                .map_err(|e| context(format!("pin {}", path.display()), e))?;
        }
        writeln!(o, "pinned under {}", dir.display())?;
    }
    Ok(())
}

fn run(cli: Cli) -> Result<(), Box<dyn core::error::Error>> {
    match cli.cmd {
        Cmd::Btf(BtfCmd::Minimize(a)) => minimize::run(&a),
        Cmd::Btf(BtfCmd::Dump { file, base, format }) => {
            let base_bytes = base.as_deref().map(read).transpose()?;
            let base_btf = match (&base, &base_bytes) {
                (Some(p), Some(b)) => Some(parse(p, b, None)?),
                _ => None,
            };
            let bytes = read(&file)?;
            let btf = parse(&file, &bytes, base_btf.as_ref())?;
            let stdout = io::stdout().lock();
            let mut out = IoFmt::new(io::BufWriter::with_capacity(1 << 16, stdout));
            let res = match format {
                Format::Raw => dump::raw::dump(&btf, &mut out),
                Format::C => match dump::c::dump(&btf, &mut out) {
                    Ok(()) => Ok(()),
                    Err(dump::c::DumpError::Fmt) => Err(core::fmt::Error),
                    Err(e) => {
                        // Keep what was written, as bpftool does.
                        out.finish()?;
                        return Err(context(file.display().to_string(), e));
                    }
                },
            };
            if res.is_err() && out.error.is_none() {
                return Err("formatting failed".into());
            }
            match out.finish() {
                Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
                Err(e) => Err(e.into()),
                Ok(_) => Ok(()),
            }
        }
        Cmd::Core(CoreCmd::Explain {
            file,
            btf,
            base,
            btf_dir,
            module_btf,
            json,
            insns,
            verbose,
        }) => explain(
            &file,
            btf,
            base,
            btf_dir,
            &module_btf,
            (json, insns, verbose),
        ),
        Cmd::Core(CoreCmd::Check(a)) => check::run(&a),
        Cmd::Load {
            file,
            btf,
            btf_dir,
            pin,
            verbose,
            max_entries,
            set,
            no_autoload,
            kconfig,
            target,
        } => {
            let settings = Settings {
                max_entries,
                set,
                no_autoload,
                target,
                kconfig,
            };
            load(&file, btf, btf_dir, pin, verbose, &settings)
        }
        Cmd::Run {
            file,
            btf,
            btf_dir,
            duration,
            max_entries,
            set,
            no_autoload,
            kconfig,
            target,
            attach,
            event,
            dump,
            json,
            attach_mode,
            verbose,
        } => run::run(&run::RunArgs {
            file,
            btf,
            btf_dir,
            duration,
            settings: Settings {
                max_entries,
                set,
                no_autoload,
                target,
                kconfig,
            },
            attach,
            event,
            dump,
            json,
            mode: match attach_mode {
                Mode::Auto => ember::AttachMode::Auto,
                Mode::Link => ember::AttachMode::Link,
                Mode::Legacy => ember::AttachMode::Legacy,
            },
            verbose,
        }),
        Cmd::Prog(ProgCmd::List { json }) => views::prog_list(json),
        Cmd::Map(MapCmd::Dump { map }) => views::map_dump(&map),
        Cmd::Link(LinkCmd::List { json }) => views::link_list(json),
        Cmd::Object(ObjectCmd::Inspect { file, json }) => {
            let bytes = read(&file)?;
            let name = file.file_name().and_then(|n| n.to_str()).unwrap_or("");
            let obj = ember::ember_core::object::Object::parse(
                &bytes,
                ember::ember_core::object::object_name(name),
            )
            .map_err(|source| Error::Object {
                path: file.clone(),
                source: source.into(),
            })?;
            let report = ember::inspect::report(&obj, &file.display().to_string());
            let mut o = io::stdout().lock();
            if json {
                writeln!(o, "{}", report.to_json())?;
            } else {
                write!(o, "{}", report.to_text())?;
            }
            Ok(())
        }
        Cmd::Btf(BtfCmd::Stats(a)) => btf_stats::run(&a),
    }
}

fn explain(
    file: &Path,
    btf: Option<PathBuf>,
    base: Option<PathBuf>,
    btf_dir: Option<PathBuf>,
    module_btf: &[PathBuf],
    (json, insns, verbose): (bool, bool, bool),
) -> Result<(), Box<dyn core::error::Error>> {
    use ember::ember_core::object::{Object, object_name};
    use ember::ember_core::reloc::{Module, Targets};

    let bytes = read(file)?;
    let name = file.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let obj = Object::parse(&bytes, object_name(name)).map_err(|source| Error::Object {
        path: file.to_owned(),
        source: source.into(),
    })?;
    let relos: usize = obj
        .btf_ext
        .map_or(0, |e| e.core_relos().map(|b| b.len()).sum());
    if relos == 0 {
        // Nothing to relocate: no kernel BTF needed.
        return Ok(());
    }
    let is_override = btf.is_some() && module_btf.is_empty();
    let found = match btf.or(base) {
        Some(p) => ember::btf_source::find_kernel_btf(&ember::btf_source::BtfSearch {
            file: Some(p),
            ..Default::default()
        }),
        None => ember::btf_source::find_kernel_btf(&ember::btf_source::BtfSearch {
            hub_dir: btf_dir,
            ..Default::default()
        }),
    }
    .map_err(|e| {
        context(
            format!(
                "{}: {relos} CO-RE relocations need kernel BTF",
                file.display()
            ),
            e,
        )
    })?;
    if verbose {
        eprintln!("target BTF: {} ({})", found.path.display(), found.reason);
        for (p, why) in &found.tried {
            eprintln!("  tried {}: {why}", p.display());
        }
    }
    let main_path = found.path.clone();
    let main = found.btf().map_err(|source| Error::Btf {
        path: main_path.clone(),
        source,
    })?;
    // Module BTF: as given (errors are fatal: the user asked for them), or
    // every module beside sysfs vmlinux (a bad one is skipped and logged,
    // since most objects never need it).
    let given: Vec<(String, FileBytes)> = module_btf
        .iter()
        .map(|p| {
            let stem = p
                .file_stem()
                .and_then(|n| n.to_str())
                .unwrap_or("?")
                .to_owned();
            read(p).map(|b| (stem, b))
        })
        .collect::<Result<_, _>>()?;
    let sysfs_mods = if given.is_empty() && main_path == Path::new("/sys/kernel/btf/vmlinux") {
        ember::btf_source::module_btfs(None).0
    } else {
        Vec::new()
    };
    let mut module_btfs = Vec::new();
    let mut module_names = Vec::new();
    for ((name, b), p) in given.iter().zip(module_btf) {
        module_btfs.push(parse(p, b, Some(&main))?);
        module_names.push(name.as_str());
    }
    for m in &sysfs_mods {
        match m.btf(&main) {
            Ok(b) => {
                module_btfs.push(b);
                module_names.push(m.name.as_str());
            }
            Err(e) => log::info!("skipping module BTF {}: {e}", m.path.display()),
        }
    }
    let modules: Vec<Module<'_>> = module_names
        .iter()
        .zip(&module_btfs)
        .map(|(n, b)| Module { name: n, btf: b })
        .collect();
    let targets = Targets {
        main: &main,
        modules: &modules,
        is_override,
    };
    // An external file is named as what it is, not as the kernel's vmlinux.
    let main_name = if found.is_running_kernel() {
        "vmlinux".to_owned()
    } else {
        main_path.display().to_string()
    };
    let ex = ember::explain::explain(&obj, &targets, &main_name).map_err(|e| {
        let where_ = e
            .func
            .and_then(|f| obj.function(f))
            .map_or_else(String::new, |f| format!(" in {}", f.name));
        context(format!("{}{where_}", file.display()), e)
    })?;
    let mut o = io::stdout().lock();
    for r in &ex.relocs {
        if json {
            writeln!(o, "{}", serde_json::to_string(r)?)?;
        } else {
            writeln!(o, "{}", r.to_text())?;
        }
    }
    if insns {
        write!(o, "{}", ember::explain::insns_text(&obj, &ex.code))?;
    }
    Ok(())
}

fn main() -> ExitCode {
    logger::init();
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        // A closed pipe (`| head`) is the reader's choice, not a failure.
        Err(e)
            if e.downcast_ref::<io::Error>()
                .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe) =>
        {
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("ember: {}", chain(&*e));
            ExitCode::FAILURE
        }
    }
}
