//! Arbitrary bytes as a guard: the verifier must not panic, and whatever it accepts must run
//! cleanly under rbpf's interpreter (and give the JIT's answer) on a context derived from the
//! input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sbpf_guard::{
    context::{ContextBuf, CONTEXT_SIZE},
    verifier::verify,
    Engine, Policy, Program,
};

fuzz_target!(|data: &[u8]| {
    // The first CONTEXT_SIZE bytes (if any) seed the context, the rest is the program.
    let (ctx_seed, prog) = data.split_at(data.len().min(CONTEXT_SIZE).min(data.len() / 2));
    let prog = &prog[..prog.len() / 8 * 8];
    let policy = Policy::default();
    if verify(prog, &policy).is_err() {
        return;
    }
    let p = Program::load(prog, &policy, &[], Engine::Jit).expect("verified programs load");
    let mut ctx = ContextBuf::default();
    ctx.0[..ctx_seed.len()].copy_from_slice(ctx_seed);
    let mut ctx2 = ctx.clone();
    let interp = p
        .run_with(Engine::Interpreter, &mut ctx.0)
        .expect("a verified program runs cleanly in the interpreter");
    if p.engine() == Engine::Jit {
        assert_eq!(interp, p.run_with(Engine::Jit, &mut ctx2.0).unwrap());
    }
});
