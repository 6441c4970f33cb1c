//! Guards written in restricted C (`vm-guard/guards/*.c`), compiled with
//! `clang -target bpf -O2 -c`, loaded from the ELF object; and the C header's layout checked
//! against Rust's. Skipped, loudly, only when clang is absent (CI installs it).

mod common;

use std::{path::Path, process::Command};

use common::{manifest_dir, Rng};
use sbpf_guard::{
    context::{off, ContextBuf, CONTEXT_SIZE},
    source::{self, SourceError},
    Engine, Guard, Policy, Program, Stage, Verdict,
};
use sbpf_ring::{
    abi::{opcode, Sqe},
    validate::{Limits, ObjectLimit},
};

fn clang() -> Option<&'static str> {
    let ok = Command::new("clang")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("SKIPPED: clang not found; install clang to compile the C guards");
    }
    ok.then_some("clang")
}

fn compile_bpf(src: &Path, out: &Path) {
    let include = manifest_dir().join("include");
    let status = Command::new("clang")
        .args(["-target", "bpf", "-O2", "-c"])
        .arg(src)
        .arg("-I")
        .arg(&include)
        .arg("-o")
        .arg(out)
        .status()
        .expect("run clang");
    assert!(status.success(), "clang failed on {}", src.display());
}

/// What `guards/small_io.c` decides, in Rust.
fn small_io(s: &Sqe) -> u64 {
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

#[test]
fn c_guard_compiles_verifies_and_decides_as_written() {
    if clang().is_none() {
        return;
    }
    let dir = std::env::temp_dir().join(format!("sbpf-guard-c-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let obj = dir.join("small_io.o");
    compile_bpf(&manifest_dir().join("guards/small_io.c"), &obj);
    let bytes = std::fs::read(&obj).unwrap();
    assert_eq!(source::sniff(&bytes), source::SourceKind::Elf);
    let code = source::from_elf(&bytes, None).unwrap();
    let stage = Stage::from_file_bytes("small_io", &bytes, Engine::Jit).unwrap_or_else(|e| {
        let (_, log) = sbpf_guard::verifier::verify_with_log(&code, &Policy::default());
        panic!("{e}\n{log}")
    });
    assert_eq!(stage.program().engine(), Engine::Jit);
    let interp = Program::load(&code, &Policy::default(), &[], Engine::Interpreter).unwrap();
    let mut guard = Guard::new([stage]);
    let mut limits = Limits::new(1 << 20);
    limits.push(ObjectLimit::new(1, 1 << 21));
    let mut rng = Rng(42);
    for i in 0..5000u64 {
        let s = Sqe {
            opcode: (rng.next() % 8) as u8,
            obj_id: (rng.next() % 3) as u32,
            obj_off: if i % 2 == 0 {
                rng.next() % (2 << 20)
            } else {
                rng.next()
            },
            len: if i % 3 == 0 {
                (rng.next() % 8192) as u32
            } else {
                rng.next() as u32
            },
            ..Sqe::default()
        };
        let got = match guard.evaluate(&s, &limits) {
            Verdict::Accept => 0,
            Verdict::Reject { code, .. } => code,
        };
        assert_eq!(got, small_io(&s), "{s:?}");
        let mut ctx = ContextBuf::default();
        ctx.fill(&s, &limits);
        assert_eq!(interp.run(&mut ctx.0).unwrap(), got);
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn c_guard_with_relocations_is_refused() {
    if clang().is_none() {
        return;
    }
    let dir = std::env::temp_dir().join(format!("sbpf-guard-reloc-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
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
    let err = source::from_elf(&std::fs::read(&obj).unwrap(), None).unwrap_err();
    assert!(
        matches!(&err, SourceError::Elf(m) if m.contains("relocations")),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn c_header_layout_matches_rust() {
    if clang().is_none() {
        return;
    }
    let dir = std::env::temp_dir().join(format!("sbpf-guard-h-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
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
    let status = Command::new("clang")
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
