//! Per-descriptor cost of a 20-instruction guard under rbpf's JIT, its interpreter, and the
//! same check written in Rust; and the verification time of a 64-instruction guard.
//!
//! `cargo bench -p sbpf-guard --bench guard -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use sbpf_guard::{context::ContextBuf, source, verifier::verify, Engine, Guard, Policy, Stage};
use sbpf_ring::{
    abi::{opcode, Sqe},
    validate::{Limits, ObjectLimit, Rejection, Validator},
};

/// Twenty instructions: NOP passes; unknown opcodes, long I/O, offsets that overflow or
/// leave the arena, and object 0 are refused.
const GUARD20: &str = "
    ldxb r2, [r1+0]
    mov r0, 0
    jeq r2, 0, done
    mov r0, 1
    jgt r2, 6, done
    ldxw r3, [r1+24]
    mov r0, 4
    jgt r3, 4096, done
    ldxdw r4, [r1+8]
    mov r5, r4
    add r5, r3
    mov r0, 5
    jlt r5, r4, done
    ldxdw r6, [r1+80]
    jgt r5, r6, done
    ldxw r7, [r1+4]
    mov r0, 3
    jeq r7, 0, done
    mov r0, 0
done:
    exit
";

/// GUARD20 in Rust, as a validator.
#[derive(Clone)]
struct Native;

impl Native {
    #[inline(never)]
    fn check(s: &Sqe, l: &Limits) -> u64 {
        if s.opcode == opcode::NOP {
            return 0;
        }
        if s.opcode > 6 {
            return 1;
        }
        if s.len > 4096 {
            return 4;
        }
        match s.obj_off.checked_add(u64::from(s.len)) {
            Some(end) if end <= l.arena_size => {}
            _ => return 5,
        }
        if s.obj_id == 0 {
            return 3;
        }
        0
    }
}

impl Validator for Native {
    fn validate(&mut self, sqe: &Sqe, limits: &Limits) -> Result<(), Rejection> {
        match Self::check(sqe, limits) {
            0 => Ok(()),
            code => Err(Rejection::new(code, "native")),
        }
    }
    fn clone_box(&self) -> Box<dyn Validator> {
        Box::new(self.clone())
    }
}

fn verify64() -> Vec<u8> {
    let mut s = String::new();
    for i in 0..62 {
        match i % 3 {
            0 => s.push_str(&format!("ldxw r2, [r1+{}]\n", 4 * (i % 50))),
            1 => s.push_str(&format!("add r2, {i}\n")),
            _ => s.push_str(&format!("jgt r2, {i}, +0\n")),
        }
    }
    s.push_str("mov r0, r2\nexit\n");
    source::assemble(&s).unwrap()
}

fn benches(c: &mut Criterion) {
    let code = source::assemble(GUARD20).unwrap();
    assert_eq!(code.len() / 8, 20);
    let mut limits = Limits::new(1 << 20);
    limits.push(ObjectLimit::new(1, 4096));
    let sqe = Sqe {
        opcode: opcode::READ,
        obj_id: 1,
        obj_off: 64,
        arena_off: 0,
        len: 256,
        ..Sqe::default()
    };

    let mut g = c.benchmark_group("guard20_per_descriptor");
    let mut jit = Guard::new([Stage::from_bytecode("g20", &code, Engine::Jit).unwrap()]);
    assert_eq!(jit.stages()[0].program().engine(), Engine::Jit);
    let mut interp = Guard::new([Stage::from_bytecode("g20", &code, Engine::Interpreter).unwrap()]);
    let mut native = Native;
    for v in [&mut jit as &mut dyn Validator, &mut interp, &mut native] {
        assert!(v.validate(&sqe, &limits).is_ok());
    }
    g.bench_function("jit", |b| {
        b.iter(|| jit.validate(black_box(&sqe), black_box(&limits)))
    });
    g.bench_function("interpreter", |b| {
        b.iter(|| interp.validate(black_box(&sqe), black_box(&limits)))
    });
    g.bench_function("native_rust", |b| {
        b.iter(|| native.validate(black_box(&sqe), black_box(&limits)))
    });
    // The same program without filling the context (the descriptor and the limits, 224
    // bytes), to separate the VM's cost from the context's.
    let prog = jit.stages()[0].program().clone();
    let mut ctx = ContextBuf::default();
    ctx.fill(&sqe, &limits);
    g.bench_function("jit_run_only", |b| {
        b.iter(|| prog.run_with(Engine::Jit, black_box(&mut ctx.0)))
    });
    // rbpf's fixed cost per call: a program that only returns 0.
    let empty = Stage::from_asm("empty", "mov r0, 0\nexit", Engine::Jit).unwrap();
    let empty = empty.program().clone();
    assert_eq!(empty.engine(), Engine::Jit);
    g.bench_function("jit_empty_program", |b| {
        b.iter(|| empty.run_with(Engine::Jit, black_box(&mut ctx.0)))
    });
    g.bench_function("interpreter_run_only", |b| {
        b.iter(|| prog.run_with(Engine::Interpreter, black_box(&mut ctx.0)))
    });
    g.bench_function("context_fill_only", |b| {
        b.iter(|| ctx.fill(black_box(&sqe), black_box(&limits)))
    });
    g.finish();

    let p64 = verify64();
    assert_eq!(p64.len() / 8, 64);
    let policy = Policy::default();
    assert!(verify(&p64, &policy).is_ok());
    c.bench_function("verify_64_insns", |b| {
        b.iter(|| verify(black_box(&p64), &policy))
    });
}

criterion_group!(guard, benches);
criterion_main!(guard);
