//! Guards written in restricted C (`vm-guard/guards/*.c`), compiled with
//! `clang -target bpf -O2 -g -c`, loaded from the ELF object with their read-only data,
//! verified, and run under the JIT and the interpreter — each context placed against an
//! inaccessible page — on realistic entries and on random context bytes, against a Rust
//! model of what each guard is written to decide. clang is required: these tests fail when
//! it is missing (`scripts/test.sh` installs it).

mod common;

use std::{
    path::{Path, PathBuf},
    process::Command,
    sync::atomic::{AtomicUsize, Ordering},
};

use common::{manifest_dir, GuardedContext, Rng};
use sbpf_guard::{
    context::{off, ContextBuf, GuardContext, CONTEXT_SIZE},
    source::{self, SourceError},
    verifier::{verify_with_rodata, verify_with_rodata_and_log},
    Engine, Policy, Program, Stage,
};
use sbpf_ring::{
    abi::{opcode, Sqe},
    validate::{Limits, ObjectLimit},
};

fn clang() -> &'static str {
    let ok = Command::new("clang")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "clang not found: the C guard tests need it (scripts/test.sh installs clang)"
    );
    "clang"
}

fn out_dir(tag: &str) -> PathBuf {
    // Tests run in parallel and some build the same guards: one directory per call.
    static CALLS: AtomicUsize = AtomicUsize::new(0);
    let n = CALLS.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("sbpf-guard-{tag}-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn compile_bpf(src: &Path, out: &Path) {
    let include = manifest_dir().join("include");
    let status = Command::new(clang())
        .args(["-target", "bpf", "-O2", "-g", "-c"])
        .arg(src)
        .arg("-I")
        .arg(&include)
        .arg("-o")
        .arg(out)
        .status()
        .expect("run clang");
    assert!(status.success(), "clang failed on {}", src.display());
}

fn compile_guard(name: &str, dir: &Path) -> Vec<u8> {
    let obj = dir.join(format!("{name}.o"));
    compile_bpf(&manifest_dir().join(format!("guards/{name}.c")), &obj);
    std::fs::read(&obj).unwrap()
}

// ---------------------------------------------------------------------------------------------
// What each guard is written to decide, in Rust, over the context it sees.

fn small_io(c: &GuardContext) -> u64 {
    let s = &c.sqe;
    if s.opcode != opcode::READ && s.opcode != opcode::WRITE {
        0
    } else if s.len > 4096 {
        20
    } else if s.obj_off > 1 << 20 {
        21
    } else if s.opcode == opcode::WRITE && s.obj_id == 1 {
        22
    } else {
        0
    }
}

fn object_lookup(c: &GuardContext) -> u64 {
    let s = &c.sqe;
    if s.opcode == opcode::NOP {
        return 0;
    }
    let n = (c.nobjects as usize).min(8);
    for o in &c.objects[..n] {
        if o.id != s.obj_id {
            continue;
        }
        if s.opcode != opcode::READ && s.opcode != opcode::WRITE {
            return 0;
        }
        let end = s.obj_off.wrapping_add(u64::from(s.len));
        return if end < s.obj_off || end > o.size {
            5
        } else {
            0
        };
    }
    3
}

fn per_object_policy(c: &GuardContext) -> u64 {
    let s = &c.sqe;
    let op = s.opcode;
    if op == opcode::NOP {
        return 0;
    }
    match s.obj_id {
        1 if op != opcode::READ && op != opcode::LOAD64 => 30,
        1 => 0,
        2 if s.len > 64 => 31,
        2 => 0,
        3 if op < opcode::LOAD64 || s.obj_off & 7 != 0 => 32,
        3..=5 => 0,
        _ => 33,
    }
}

fn rodata_table(c: &GuardContext) -> u64 {
    const MAX_LEN: [u32; 7] = [0, 65536, 4096, 0, 0, 0, 0];
    let s = &c.sqe;
    if s.opcode > opcode::CAS64 {
        return 40;
    }
    if s.len > MAX_LEN[s.opcode as usize] {
        return 41;
    }
    if s.opcode == opcode::WRITE || s.opcode == opcode::STORE64 {
        return if [2, 3, 5, 8, 13].contains(&s.obj_id) {
            0
        } else {
            42
        };
    }
    0
}

fn range_checks(c: &GuardContext) -> u64 {
    let s = &c.sqe;
    if s.opcode != opcode::READ && s.opcode != opcode::WRITE {
        return 0;
    }
    let start = s.arena_off;
    let end = start.wrapping_add(u64::from(s.len));
    if end < start {
        50
    } else if end > c.arena_size {
        51
    } else if s.len != 0 && start >> 16 != (end - 1) >> 16 {
        52
    } else if s.user_data & 1 != 0 {
        53
    } else {
        0
    }
}

fn sum_sizes(c: &GuardContext) -> u64 {
    if c.sqe.opcode == opcode::NOP {
        return 0;
    }
    if c.nobjects == 0 {
        return 60;
    }
    let mut total = 0u64;
    for o in &c.objects[..(c.nobjects as usize).min(8)] {
        match total.checked_add(o.size) {
            Some(t) => total = t,
            None => return 61,
        }
    }
    if total > c.arena_size {
        61
    } else {
        0
    }
}

fn many_fields(c: &GuardContext) -> u64 {
    let s = &c.sqe;
    let f: [u64; 12] = [
        s.opcode.into(),
        s.flags.into(),
        s.resv0.into(),
        s.obj_id.into(),
        s.obj_off,
        s.arena_off,
        s.len.into(),
        s.resv1.into(),
        s.user_data,
        s.val,
        s.cmp,
        s.seq.into(),
    ];
    if c.version != 1 && c.version != 2 {
        return 71;
    }
    if f[1] | f[2] | f[7] | u64::from(s.resv2) != 0 {
        return 70;
    }
    let h = f
        .iter()
        .fold(0u64, |h, &x| (h ^ x).wrapping_mul(0x100000001b3));
    f.iter().position(|&x| x == h).map_or(0, |i| 72 + i as u64)
}

/// `own_object.c`: the entry's own object (context version 2), its bounds and rights.
fn own_object(c: &GuardContext) -> u64 {
    let (s, o) = (&c.sqe, &c.object);
    if c.version < 2 {
        return 71;
    }
    if s.opcode == opcode::NOP {
        return 0;
    }
    if o.rights == 0 {
        return 3;
    }
    let need = match s.opcode {
        opcode::READ | opcode::LOAD64 => 1,
        opcode::WRITE | opcode::STORE64 => 2,
        _ => 3,
    };
    if o.rights & need != need {
        return 16;
    }
    let len = match s.opcode {
        opcode::READ | opcode::WRITE => u64::from(s.len),
        _ if s.obj_off & 7 != 0 => return 6,
        _ => 8,
    };
    match s.obj_off.checked_add(len) {
        Some(end) if end <= o.size => 0,
        _ => 5,
    }
}

type Model = fn(&GuardContext) -> u64;

const GUARDS: [(&str, Model); 8] = [
    ("own_object", own_object),
    ("small_io", small_io),
    ("object_lookup", object_lookup),
    ("per_object_policy", per_object_policy),
    ("rodata_table", rodata_table),
    ("range_checks", range_checks),
    ("sum_sizes", sum_sizes),
    ("many_fields", many_fields),
];

// ---------------------------------------------------------------------------------------------
// Entries: realistic ones (a ring's limits, fields near the edges) and raw random bytes.

fn edge(rng: &mut Rng) -> u64 {
    match rng.next() % 6 {
        0 => rng.next() % 16,
        1 => rng.next() % 70_000,
        2 => (rng.next() % 8) << 16,
        3 => u64::MAX - rng.next() % 8,
        4 => (1 << 20) + rng.next() % 3 - 1,
        _ => rng.next(),
    }
}

fn realistic(rng: &mut Rng) -> (Sqe, Limits) {
    let mut limits = Limits::new(if rng.next() % 4 == 0 {
        edge(rng)
    } else {
        1 << 20
    });
    for _ in 0..rng.next() % 9 {
        let id = (rng.next() % 16) as u32;
        let size = if rng.next() % 3 == 0 { edge(rng) } else { 4096 };
        limits.push(ObjectLimit::new(id, size));
    }
    let small = |rng: &mut Rng| rng.next() % 4 != 0;
    let s = Sqe {
        opcode: (rng.next() % 9) as u8,
        flags: if small(rng) { 0 } else { rng.next() as u8 },
        obj_id: (rng.next() % 16) as u32,
        obj_off: edge(rng),
        arena_off: edge(rng),
        len: edge(rng) as u32,
        user_data: if small(rng) {
            rng.next() & !1
        } else {
            rng.next()
        },
        val: rng.next() % 4,
        cmp: rng.next() % 4,
        seq: rng.next() as u32,
        ..Sqe::default()
    };
    (s, limits)
}

struct Loaded {
    name: &'static str,
    model: Model,
    jit: Program,
    interp: Program,
}

fn load_all() -> Vec<Loaded> {
    let dir = out_dir("c");
    let loaded = GUARDS
        .iter()
        .map(|&(name, model)| {
            let bytes = compile_guard(name, &dir);
            let g = source::load_guard(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
            let policy = Policy::default();
            if let Err(e) = verify_with_rodata(&g.code, &g.rodata, &policy) {
                let (_, log) = verify_with_rodata_and_log(&g.code, &g.rodata, &policy);
                panic!("{name}: {e}\n{log}");
            }
            let jit =
                Program::load_with_rodata(&g.code, &g.rodata, &policy, &[], Engine::Jit).unwrap();
            assert_eq!(jit.engine(), Engine::Jit, "{name} runs under the JIT");
            let interp =
                Program::load_with_rodata(&g.code, &g.rodata, &policy, &[], Engine::Interpreter)
                    .unwrap();
            Loaded {
                name,
                model,
                jit,
                interp,
            }
        })
        .collect();
    std::fs::remove_dir_all(&dir).ok();
    loaded
}

/// Runs `p` under both engines on `ctx` placed against a guard page; both must agree.
fn run_guarded(p: &Loaded, ctx: &[u8; CONTEXT_SIZE], page: &mut GuardedContext) -> u64 {
    page.bytes().copy_from_slice(ctx);
    let a = p.jit.run_with(Engine::Jit, page.bytes()).unwrap();
    assert_eq!(page.bytes(), ctx, "{}: the context changed", p.name);
    let b = p.interp.run(page.bytes()).unwrap();
    assert_eq!(a, b, "{}: JIT and interpreter disagree", p.name);
    a
}

#[test]
fn c_guards_verify_and_decide_as_written_under_both_engines() {
    let guards = load_all();
    let mut page = GuardedContext::new(CONTEXT_SIZE);
    let mut rng = Rng(0xc0ff_ee00_1234_5678);
    let mut verdicts = vec![std::collections::BTreeMap::<u64, u32>::new(); guards.len()];
    for round in 0..20_000 {
        let mut ctx = ContextBuf::default();
        if round % 4 == 3 {
            rng.fill(&mut ctx.0);
        } else {
            let (s, l) = realistic(&mut rng);
            ctx.fill(&s, &l);
        }
        let view = ctx.to_context();
        for (g, seen) in guards.iter().zip(&mut verdicts) {
            let got = run_guarded(g, &ctx.0, &mut page);
            assert_eq!(got, (g.model)(&view), "{}: {view:?}", g.name);
            *seen.entry(got).or_default() += 1;
        }
    }
    // Each guard's every verdict was reached, so the comparison above covered each path.
    for (g, seen) in guards.iter().zip(&verdicts) {
        println!("{:18} {seen:?}", g.name);
        assert!(seen.len() >= 3, "{}: only verdicts {seen:?}", g.name);
    }
}

/// A few entries with the verdict written out, so the models above are checked too.
#[test]
fn c_guards_give_the_documented_codes() {
    let guards = load_all();
    let by_name = |n: &str| guards.iter().find(|g| g.name == n).unwrap();
    let mut limits = Limits::new(1 << 20);
    limits.push(ObjectLimit::new(1, 4096));
    limits.push(ObjectLimit::new(3, 64));
    let sqe = |opcode, obj_id, obj_off, len| Sqe {
        opcode,
        obj_id,
        obj_off,
        len,
        ..Sqe::default()
    };
    let cases: &[(&str, Sqe, u64)] = &[
        ("object_lookup", sqe(opcode::READ, 1, 4000, 96), 0),
        ("object_lookup", sqe(opcode::READ, 1, 4000, 97), 5),
        ("object_lookup", sqe(opcode::READ, 3, u64::MAX, 2), 5),
        ("object_lookup", sqe(opcode::WRITE, 2, 0, 8), 3),
        ("object_lookup", sqe(opcode::LOAD64, 3, 1 << 40, 0), 0),
        ("per_object_policy", sqe(opcode::WRITE, 1, 0, 8), 30),
        ("per_object_policy", sqe(opcode::READ, 2, 0, 65), 31),
        ("per_object_policy", sqe(opcode::STORE64, 3, 12, 0), 32),
        ("per_object_policy", sqe(opcode::STORE64, 3, 16, 0), 0),
        ("per_object_policy", sqe(opcode::READ, 9, 0, 1), 33),
        ("rodata_table", sqe(opcode::READ, 0, 0, 65536), 0),
        ("rodata_table", sqe(opcode::WRITE, 5, 0, 4097), 41),
        ("rodata_table", sqe(opcode::WRITE, 13, 0, 4096), 0),
        ("rodata_table", sqe(opcode::STORE64, 4, 0, 0), 42),
        ("rodata_table", sqe(9, 4, 0, 0), 40),
        ("sum_sizes", sqe(opcode::READ, 0, 0, 0), 0),
    ];
    let mut page = GuardedContext::new(CONTEXT_SIZE);
    for (name, s, want) in cases {
        let mut ctx = ContextBuf::default();
        ctx.fill(s, &limits);
        assert_eq!(
            run_guarded(by_name(name), &ctx.0, &mut page),
            *want,
            "{name} {s:?}"
        );
    }
    // Objects larger than the arena together.
    let mut big = Limits::new(8192);
    big.push(ObjectLimit::new(1, 4096));
    big.push(ObjectLimit::new(2, 4097));
    let mut ctx = ContextBuf::default();
    ctx.fill(&sqe(opcode::READ, 1, 0, 1), &big);
    assert_eq!(run_guarded(by_name("sum_sizes"), &ctx.0, &mut page), 61);
}

#[test]
fn c_guards_load_as_stages_from_their_objects() {
    let dir = out_dir("stage");
    for (name, _) in GUARDS {
        let bytes = compile_guard(name, &dir);
        let stage = Stage::from_file_bytes(name, &bytes, Engine::Jit)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(stage.program().engine(), Engine::Jit);
        let g = source::load_guard(&bytes).unwrap();
        assert_eq!(stage.program().rodata(), &g.rodata[..]);
        if name == "rodata_table" {
            assert!(!g.rodata.is_empty(), "the table is in .rodata");
        }
    }
    std::fs::remove_dir_all(&dir).ok();
}

/// `-g` objects carry BTF line info; the table maps instructions to the C source.
#[test]
fn c_guard_line_table_names_the_source() {
    let dir = out_dir("lines");
    let bytes = compile_guard("object_lookup", &dir);
    let table = source::line_table(&bytes, None).unwrap();
    assert!(!table.is_empty());
    let code = source::load_guard(&bytes).unwrap().code;
    // The loop's load of objects[i].id comes from the line comparing it.
    let load = (0..code.len() / 8)
        .find(|&i| code[i * 8] == 0x61 && code[i * 8 + 1] >> 4 != 1)
        .expect("a load through a pointer other than r1");
    let line = source::line_of(&table, load).unwrap();
    assert!(line.file.ends_with("object_lookup.c"), "{line:?}");
    assert!(line.text.contains("o->id"), "{line:?}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn c_guard_with_writable_globals_is_refused() {
    let dir = out_dir("reloc");
    let src = dir.join("global.c");
    std::fs::write(
        &src,
        "unsigned long long limit = 4096;\n\
         __attribute__((section(\"sbpf_guard\"), used))\n\
         unsigned long long guard(const unsigned char *ctx) { return ctx[24] > limit; }\n",
    )
    .unwrap();
    let obj = dir.join("global.o");
    compile_bpf(&src, &obj);
    let err = source::from_elf_with_rodata(&std::fs::read(&obj).unwrap(), None).unwrap_err();
    assert!(
        matches!(&err, SourceError::Elf(m) if m.contains("relocations") && m.contains("limit")),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn c_header_layout_matches_rust() {
    let dir = out_dir("h");
    let fields = [
        ("sqe.opcode", off::OPCODE),
        ("sqe.flags", off::FLAGS),
        ("sqe.resv0", off::RESV0),
        ("sqe.obj_id", off::OBJ_ID),
        ("sqe.obj_off", off::OBJ_OFF),
        ("sqe.arena_off", off::ARENA_OFF),
        ("sqe.len", off::LEN),
        ("sqe.resv1", off::RESV1),
        ("sqe.user_data", off::USER_DATA),
        ("sqe.val", off::VAL),
        ("sqe.cmp", off::CMP),
        ("sqe.resv2", off::RESV2),
        ("sqe.seq", off::SEQ),
        ("version", off::VERSION),
        ("size", off::SIZE),
        ("nobjects", off::NOBJECTS),
        ("arena_size", off::ARENA_SIZE),
        ("allowed_opcodes", off::ALLOWED_OPCODES),
        ("objects", off::OBJECTS),
        (
            "objects[1].id",
            off::OBJECTS + off::OBJECT_STRIDE + off::OBJECT_ID,
        ),
        (
            "objects[1].size",
            off::OBJECTS + off::OBJECT_STRIDE + off::OBJECT_SIZE,
        ),
        (
            "objects[1].rights",
            off::OBJECTS + off::OBJECT_STRIDE + off::OBJECT_RIGHTS,
        ),
        ("object", off::OBJECT),
        ("object.id", off::OBJECT + off::OBJECT_ID),
        ("object.rights", off::OBJECT + off::OBJECT_RIGHTS),
        ("object.size", off::OBJECT + off::OBJECT_SIZE),
    ];
    let mut c = String::from(
        "#include <stdio.h>\n#include <stddef.h>\n#include \"sbpf_guard.h\"\nint main(void) {\n",
    );
    for (f, _) in &fields {
        c.push_str(&format!(
            "printf(\"%zu\\n\", offsetof(struct sbpf_guard_ctx, {f}));\n"
        ));
    }
    c.push_str("printf(\"%zu\\n\", sizeof(struct sbpf_guard_ctx));\nreturn 0;\n}\n");
    let src = dir.join("layout.c");
    std::fs::write(&src, c).unwrap();
    let exe = dir.join("layout");
    let status = Command::new(clang())
        .arg(&src)
        .arg("-I")
        .arg(manifest_dir().join("include"))
        .arg("-o")
        .arg(&exe)
        .status()
        .unwrap();
    assert!(status.success());
    let out = String::from_utf8(Command::new(&exe).output().unwrap().stdout).unwrap();
    let got: Vec<usize> = out.lines().map(|l| l.parse().unwrap()).collect();
    for (i, (f, want)) in fields.iter().enumerate() {
        assert_eq!(got[i], *want, "offset of {f}");
    }
    assert_eq!(*got.last().unwrap(), CONTEXT_SIZE);
    std::fs::remove_dir_all(&dir).ok();
}
