//! `sbpf-ring guard ...`: verify a guard program and run it on one descriptor.
//!
//! A guard file is rbpf assembly text (`.s`, `.asm`), raw bytecode (`.bin`) or an ELF object
//! from `clang -target bpf -O2 -c`; which one is decided by its content, not its name.

use std::{path::PathBuf, process::ExitCode};

use sbpf_guard::{
    source::{self, GuardCode},
    verifier::{self, Policy, DEFAULT_MAX_INSNS},
    Engine, Guard, Stage, Verdict,
};
use sbpf_ring::{
    abi::{opcode, Sqe},
    validate::{Limits, ObjectLimit, MAX_LIMIT_OBJECTS},
};

/// Guard subcommands.
#[derive(clap::Subcommand, Debug)]
pub enum GuardCommand {
    /// Verify a guard: print the verdict, the verifier's log and the disassembly.
    /// Exit status 0 accepted, 1 rejected, 2 unreadable or unparsable.
    Verify {
        /// Guard file: assembly, raw bytecode or ELF object.
        file: PathBuf,
        /// ELF section holding the guard (default: the only non-empty executable one).
        #[arg(long)]
        section: Option<String>,
        /// Most instruction slots accepted.
        #[arg(long, default_value_t = DEFAULT_MAX_INSNS)]
        max_insns: usize,
    },
    /// Run a guard on one descriptor and print accept or the reject code.
    /// Exit status 0 accepted, 1 rejected, 2 on error (including a guard that does not verify).
    Run {
        /// Guard file: assembly, raw bytecode or ELF object.
        file: PathBuf,
        /// ELF section holding the guard.
        #[arg(long)]
        section: Option<String>,
        /// Opcode: a number or nop, read, write, load64, store64, fetch_add64, cas64.
        #[arg(long, value_parser = parse_opcode, default_value = "nop")]
        opcode: u8,
        /// Entry flags.
        #[arg(long, value_parser = parse_u64, default_value = "0")]
        flags: u64,
        /// Object id.
        #[arg(long, value_parser = parse_u64, default_value = "0")]
        obj_id: u64,
        /// Offset into the object.
        #[arg(long, value_parser = parse_u64, default_value = "0")]
        obj_off: u64,
        /// Offset into the arena.
        #[arg(long, value_parser = parse_u64, default_value = "0")]
        arena_off: u64,
        /// Length.
        #[arg(long, value_parser = parse_u64, default_value = "0")]
        len: u64,
        /// Operand value.
        #[arg(long, value_parser = parse_u64, default_value = "0")]
        val: u64,
        /// CAS64 compare value.
        #[arg(long, value_parser = parse_u64, default_value = "0")]
        cmp: u64,
        /// user_data.
        #[arg(long, value_parser = parse_u64, default_value = "0")]
        user_data: u64,
        /// Data arena size in bytes.
        #[arg(long, value_parser = parse_u64, default_value = "1048576")]
        arena_size: u64,
        /// An attached object, ID:SIZE (repeatable, at most 8).
        #[arg(long = "object", value_parser = parse_object)]
        objects: Vec<ObjectLimit>,
        /// Use the interpreter instead of the JIT.
        #[arg(long)]
        interp: bool,
    },
}

fn parse_u64(s: &str) -> Result<u64, String> {
    let s = s.replace('_', "");
    let r = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => s.parse(),
    };
    r.map_err(|e| format!("`{s}`: {e}"))
}

fn parse_opcode(s: &str) -> Result<u8, String> {
    let named = match s.to_ascii_lowercase().as_str() {
        "nop" => Some(opcode::NOP),
        "read" => Some(opcode::READ),
        "write" => Some(opcode::WRITE),
        "load64" => Some(opcode::LOAD64),
        "store64" => Some(opcode::STORE64),
        "fetch_add64" | "fetch-add64" => Some(opcode::FETCH_ADD64),
        "cas64" => Some(opcode::CAS64),
        _ => None,
    };
    match named {
        Some(op) => Ok(op),
        None => parse_u64(s).and_then(|v| {
            u8::try_from(v).map_err(|_| format!("opcode {v} does not fit in a byte"))
        }),
    }
}

fn parse_object(s: &str) -> Result<ObjectLimit, String> {
    let (id, size) = s
        .split_once(':')
        .ok_or_else(|| format!("`{s}`: expected ID:SIZE"))?;
    let id = parse_u64(id)
        .and_then(|v| u32::try_from(v).map_err(|_| format!("object id {v} too large")))?;
    Ok(ObjectLimit::new(id, parse_u64(size)?))
}

fn narrow<T: TryFrom<u64>>(v: u64, what: &str) -> Result<T, String> {
    T::try_from(v).map_err(|_| format!("--{what} {v} is out of range"))
}

/// A guard file decoded: its code and read-only data, and for an ELF object built with
/// `-g`, the BTF line table that maps instructions to C source lines.
struct GuardFile {
    code: GuardCode,
    lines: Vec<source::SourceLine>,
}

/// Reads and decodes a guard file; errors are the message for exit status 2.
fn load_guard_file(file: &PathBuf, section: Option<&str>) -> Result<GuardFile, String> {
    let bytes = std::fs::read(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let at = |e: source::SourceError| format!("{}: {e}", file.display());
    match source::sniff(&bytes) {
        source::SourceKind::Elf => Ok(GuardFile {
            code: source::from_elf_with_rodata(&bytes, section).map_err(at)?,
            // Line info is a convenience: an object whose BTF we cannot read still verifies.
            lines: source::line_table(&bytes, section).unwrap_or_default(),
        }),
        _ => Ok(GuardFile {
            code: source::load_guard(&bytes).map_err(at)?,
            lines: Vec::new(),
        }),
    }
}

/// An error and its sources, as one line: `a: b: c`.
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

fn error(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {msg}");
    ExitCode::from(2)
}

/// Runs a guard subcommand.
pub fn run(cmd: GuardCommand) -> ExitCode {
    match cmd {
        GuardCommand::Verify {
            file,
            section,
            max_insns,
        } => {
            let guard = match load_guard_file(&file, section.as_deref()) {
                Ok(g) => g,
                Err(e) => return error(e),
            };
            let (code, rodata) = (&guard.code.code, &guard.code.rodata);
            let policy = Policy {
                max_insns,
                ..Policy::default()
            };
            let (verdict, log) = verifier::verify_with_rodata_and_log(code, rodata, &policy);
            println!(
                "{}: {} bytes, {} instruction slots",
                file.display(),
                code.len(),
                code.len() / 8
            );
            println!("--- verifier log");
            print!("{log}");
            println!("--- disassembly");
            print!("{}", verifier::disassemble(code));
            match verdict {
                Ok(v) => {
                    let engine = if v.fits_jit() { "JIT" } else { "interpreter" };
                    println!("ACCEPTED (runs under the {engine})");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    println!("REJECTED: {e}");
                    if let Some(l) = e.index.and_then(|i| source::line_of(&guard.lines, i)) {
                        println!("  at {}:{}: {}", l.file, l.line, l.text.trim());
                    }
                    ExitCode::from(1)
                }
            }
        }
        GuardCommand::Run {
            file,
            section,
            opcode,
            flags,
            obj_id,
            obj_off,
            arena_off,
            len,
            val,
            cmp,
            user_data,
            arena_size,
            objects,
            interp,
        } => {
            let guard = match load_guard_file(&file, section.as_deref()) {
                Ok(g) => g,
                Err(e) => return error(e),
            };
            let sqe = match (|| -> Result<Sqe, String> {
                Ok(Sqe {
                    opcode,
                    flags: narrow(flags, "flags")?,
                    obj_id: narrow(obj_id, "obj-id")?,
                    obj_off,
                    arena_off,
                    len: narrow(len, "len")?,
                    user_data,
                    val,
                    cmp,
                    ..Sqe::default()
                })
            })() {
                Ok(s) => s,
                Err(e) => return error(e),
            };
            if objects.len() > MAX_LIMIT_OBJECTS {
                return error(format!("at most {MAX_LIMIT_OBJECTS} --object"));
            }
            let mut limits = Limits::new(arena_size);
            for o in objects {
                limits.push(o);
            }
            let engine = if interp {
                Engine::Interpreter
            } else {
                Engine::Jit
            };
            let name = file
                .file_name()
                .map_or_else(|| "guard".into(), |n| n.to_string_lossy().to_string());
            let stage = match Stage::with_rodata(
                name,
                &guard.code.code,
                &guard.code.rodata,
                &Policy::default(),
                &[],
                engine,
            ) {
                Ok(s) => s,
                Err(e) => return error(chain(&e)),
            };
            let used = stage.program().engine();
            let mut guard = Guard::new([stage]);
            match guard.evaluate(&sqe, &limits) {
                Verdict::Accept => {
                    println!("accept ({used})");
                    ExitCode::SUCCESS
                }
                Verdict::Reject { stage, code } => {
                    let why = guard.rejection(stage, code);
                    println!("reject: code {code}: {} ({used})", why.reason);
                    ExitCode::from(1)
                }
            }
        }
    }
}
