//! Arbitrary bytes as a guard (with a little read-only data): the verifier must not panic,
//! and whatever it accepts must run cleanly under rbpf's interpreter and give the JIT's
//! answer, with the context placed against an inaccessible page so that any access the
//! verifier should have refused faults.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use sbpf_guard::{
    context::CONTEXT_SIZE,
    verifier::verify_with_rodata,
    Engine, Policy, Program,
};

const PAGE: usize = 4096;

/// The address of a readable page followed by a `PROT_NONE` one, mapped once.
fn guarded_page() -> usize {
    static PAGE_ADDR: OnceLock<usize> = OnceLock::new();
    *PAGE_ADDR.get_or_init(|| {
        // SAFETY: a fresh anonymous mapping of two pages, checked before use.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                2 * PAGE,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert_ne!(base, libc::MAP_FAILED);
        // SAFETY: the second page of the mapping made above.
        let rc = unsafe { libc::mprotect(base.cast::<u8>().add(PAGE).cast(), PAGE, libc::PROT_NONE) };
        assert_eq!(rc, 0);
        base as usize
    })
}

fuzz_target!(|data: &[u8]| {
    // First byte: read-only data length (0..32, taken from the end); then up to
    // CONTEXT_SIZE bytes of context seed; the rest is the program.
    let Some((&ro_len, data)) = data.split_first() else { return };
    let ro_len = usize::from(ro_len % 33).min(data.len());
    let (data, rodata) = data.split_at(data.len() - ro_len);
    let (ctx_seed, prog) = data.split_at(data.len().min(CONTEXT_SIZE).min(data.len() / 2));
    let prog = &prog[..prog.len() / 8 * 8];
    let policy = Policy::default();
    if verify_with_rodata(prog, rodata, &policy).is_err() {
        return;
    }
    let p = Program::load_with_rodata(prog, rodata, &policy, &[], Engine::Jit)
        .expect("verified programs load");
    // SAFETY: the last CONTEXT_SIZE bytes of the first page of the mapping, readable and
    // writable, used by this one thread (libFuzzer runs the target on one thread).
    let ctx = unsafe {
        std::slice::from_raw_parts_mut(
            (guarded_page() + PAGE - CONTEXT_SIZE) as *mut u8,
            CONTEXT_SIZE,
        )
    };
    ctx.fill(0);
    ctx[..ctx_seed.len()].copy_from_slice(ctx_seed);
    let before = ctx.to_vec();
    let interp = p
        .run_with(Engine::Interpreter, ctx)
        .expect("a verified program runs cleanly in the interpreter");
    assert_eq!(ctx, &before[..], "the context is read-only");
    if p.engine() == Engine::Jit {
        assert_eq!(interp, p.run_with(Engine::Jit, ctx).unwrap());
    }
});
