//! The bpf-conformance vectors (read in place from `../../shared/bpf-conformance`, or from
//! `$SBPF_CONFORMANCE_DIR`), run on rbpf.
//!
//! Every file lands in exactly one category:
//! - **unsupported**: rbpf 0.4.1 cannot run it (its assembler or its own verifier refuses an
//!   instruction it does not implement, or it calls a helper this harness does not provide);
//! - **rejected-by-policy**: our guard verifier refuses it on purpose (loops, stores, stack,
//!   calls, ...), with the rule; it is still run on rbpf's raw interpreter, for information;
//! - **passed** / **failed**: accepted by our verifier (with the file's memory as the
//!   context), run under rbpf's interpreter (raw VM, `r1` = the memory) and its JIT; both must
//!   give the expected `r0`.
//!
//! The test fails on any failure, and prints the counts of what actually ran.

use std::{
    collections::HashMap,
    panic::{self, AssertUnwindSafe},
    path::PathBuf,
};

use rbpf::ebpf;
use sbpf_guard::{source, verifier::verify, Engine, Policy, Program};

fn conformance_dir() -> PathBuf {
    let dir = std::env::var_os("SBPF_CONFORMANCE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/bpf-conformance")
        });
    assert!(
        dir.is_dir(),
        "bpf-conformance vectors not found at {} (set SBPF_CONFORMANCE_DIR to their directory)",
        dir.display()
    );
    dir
}

struct Vector {
    asm: Option<String>,
    raw: Option<Vec<u8>>,
    mem: Vec<u8>,
    result: Option<u64>,
    error: Option<String>,
}

fn parse(text: &str) -> Vector {
    let mut sections: HashMap<String, String> = HashMap::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        if let Some(name) = line.strip_prefix("-- ") {
            current = Some(name.trim().to_string());
            sections.entry(name.trim().to_string()).or_default();
            continue;
        }
        let line = line.split('#').next().unwrap_or("");
        if let Some(c) = &current {
            let s = sections.get_mut(c).unwrap();
            s.push_str(line);
            s.push('\n');
        }
    }
    let num = |s: &str| {
        let s = s.trim();
        match s.strip_prefix("0x") {
            Some(h) => u64::from_str_radix(h, 16).unwrap(),
            None => s.parse::<i64>().map(|v| v as u64).unwrap(),
        }
    };
    Vector {
        asm: sections.get("asm").cloned(),
        raw: sections.get("raw").map(|r| {
            r.split_whitespace()
                .flat_map(|w| num(w).to_le_bytes())
                .collect()
        }),
        mem: sections
            .get("mem")
            .map(|m| {
                m.split_whitespace()
                    .map(|b| u8::from_str_radix(b, 16).unwrap())
                    .collect()
            })
            .unwrap_or_default(),
        result: sections.get("result").map(|r| num(r)),
        error: sections.get("error").map(|e| e.trim().to_string()),
    }
}

/// The suite's assembler syntax into rbpf's: `%rN` registers; 32-bit immediates written as
/// unsigned hex (`0x80000000`) into their two's-complement value; a jump to the undefined
/// label `exit` goes to the final `exit` instruction.
fn translate(asm: &str) -> String {
    let mut lines: Vec<String> = asm
        .lines()
        .map(|l| l.trim().replace('%', ""))
        .filter(|l| !l.is_empty())
        .collect();
    let uses_exit_label = lines.iter().any(|l| {
        l.starts_with('j') && l.rsplit(',').next().is_some_and(|t| t.trim() == "exit")
            || l.trim() == "ja exit"
    });
    let defines_exit = lines
        .iter()
        .any(|l| l.trim_end_matches(':') == "exit" && l.ends_with(':'));
    if uses_exit_label && !defines_exit {
        if let Some(last) = lines.iter().rposition(|l| l == "exit") {
            lines.insert(last, "exit:".into());
        }
    }
    lines
        .into_iter()
        .map(|l| {
            if l.starts_with("lddw") {
                return l;
            }
            l.split(", ")
                .map(|tok| {
                    let t = tok.trim();
                    match t.strip_prefix("0x").map(|h| u64::from_str_radix(h, 16)) {
                        Some(Ok(v)) if (1 << 31..1 << 32).contains(&v) => {
                            (v as u32 as i32).to_string()
                        }
                        _ => t.to_string(),
                    }
                })
                .collect::<Vec<_>>()
                .join(", ")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn calls_helper(prog: &[u8]) -> Option<i32> {
    prog.chunks(8)
        .find(|w| w[0] == ebpf::CALL && w[1] >> 4 == 0)
        .map(|w| i32::from_le_bytes([w[4], w[5], w[6], w[7]]))
}

/// rbpf's raw VM with its own verifier and the interpreter; panics (rbpf's interpreter
/// overflows on some inputs in debug builds) become errors.
fn run_raw(prog: &[u8], mem: &[u8]) -> Result<u64, String> {
    let vm = rbpf::EbpfVmRaw::new(Some(prog)).map_err(|e| format!("rbpf refuses it: {e}"))?;
    let mut mem = mem.to_vec();
    let hook = panic::take_hook();
    panic::set_hook(Box::new(|_| {}));
    let r = panic::catch_unwind(AssertUnwindSafe(|| vm.execute_program(&mut mem)));
    panic::set_hook(hook);
    match r {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(format!("run error: {e}")),
        Err(_) => Err("rbpf's interpreter panicked".into()),
    }
}

#[test]
fn bpf_conformance_vectors() {
    let dir = conformance_dir();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "data"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no .data files in {}", dir.display());

    let (mut passed, mut failed, mut policy, mut unsupported) = (vec![], vec![], vec![], vec![]);
    let (mut raw_agree, mut raw_differ) = (0, vec![]);
    for path in &files {
        let name = path.file_stem().unwrap().to_string_lossy().to_string();
        let v = parse(&std::fs::read_to_string(path).unwrap());
        let prog = match (&v.raw, &v.asm) {
            (Some(raw), _) => Ok(raw.clone()),
            (None, Some(asm)) => {
                source::assemble(&translate(asm)).map_err(|e| format!("rbpf assembler: {e}"))
            }
            (None, None) => Err("no program".into()),
        };
        let prog = match prog {
            Ok(p) => p,
            Err(e) => {
                unsupported.push(format!("{name}: {e}"));
                continue;
            }
        };
        if let Some(id) = calls_helper(&prog) {
            unsupported.push(format!(
                "{name}: calls helper {id}; rbpf has no such helper registered here"
            ));
            continue;
        }
        if let Err(e) = rbpf::EbpfVmRaw::new(Some(&prog)) {
            unsupported.push(format!("{name}: rbpf's verifier refuses it: {e}"));
            continue;
        }
        let expect_ok = |got: &Result<u64, String>| match (&v.result, &v.error) {
            (Some(want), _) => got.as_ref().is_ok_and(|g| g == want),
            (None, Some(_)) => got.is_err(),
            (None, None) => false,
        };
        let policy_for_file = Policy {
            context_size: v.mem.len(),
            ..Policy::default()
        };
        match verify(&prog, &policy_for_file) {
            Err(e) => {
                let raw = run_raw(&prog, &v.mem);
                if expect_ok(&raw) {
                    raw_agree += 1;
                } else {
                    raw_differ.push(format!("{name}: got {raw:?}, expected {:?}", v.result));
                }
                policy.push(format!("{name}: {e}"));
            }
            Ok(_) => {
                let interp = run_raw(&prog, &v.mem);
                let jit = Program::load(&prog, &policy_for_file, &[], Engine::Jit).map(|p| {
                    assert_eq!(p.engine(), Engine::Jit);
                    let mut mem = v.mem.clone();
                    p.run(&mut mem).map_err(|e| e.to_string())
                });
                let jit = jit.unwrap_or_else(|e| Err(e.to_string()));
                if expect_ok(&interp) && expect_ok(&jit) {
                    passed.push(name);
                } else {
                    failed.push(format!(
                        "{name}: interpreter {interp:?}, JIT {jit:?}, expected {:?}",
                        v.result
                    ));
                }
            }
        }
    }
    println!("== unsupported by rbpf 0.4.1 ({}):", unsupported.len());
    unsupported.iter().for_each(|l| println!("  {l}"));
    println!("== rejected by the guard policy ({}):", policy.len());
    policy.iter().for_each(|l| println!("  {l}"));
    println!("== failed ({}):", failed.len());
    failed.iter().for_each(|l| println!("  {l}"));
    println!(
        "== rejected-by-policy files run anyway on rbpf's raw interpreter: {raw_agree} give the expected result, {} do not:",
        raw_differ.len()
    );
    raw_differ.iter().for_each(|l| println!("  {l}"));
    println!(
        "conformance: {} files: {} passed, {} failed, {} rejected-by-policy, {} unsupported",
        files.len(),
        passed.len(),
        failed.len(),
        policy.len(),
        unsupported.len()
    );
    assert_eq!(
        passed.len() + failed.len() + policy.len() + unsupported.len(),
        files.len()
    );
    assert!(
        failed.is_empty(),
        "{} conformance failures:\n{}",
        failed.len(),
        failed.join("\n")
    );
    assert!(!passed.is_empty());
}
