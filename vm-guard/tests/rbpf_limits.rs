//! The two rbpf 0.4.1 limits that used to let a verified guard misbehave: its interpreter's
//! `i16` jump arithmetic (so programs are capped at `RBPF_MAX_INSNS` whatever the policy),
//! and its JIT's misaligned helper calls (so programs that call helpers run under the
//! interpreter).

use sbpf_guard::{
    context::ContextBuf,
    source,
    verifier::{verify, HelperSpec, Rule, RBPF_MAX_INSNS},
    vm::Helper,
    Engine, Policy, Program,
};

/// `n` slots: a load of the context's first byte, `mov r0, 1` up to a jump at the very end
/// over a `mov r0, 2` when that byte is 0; returns 1 when the jump lands where it should.
fn long_program(n: usize) -> Vec<u8> {
    let mut text = String::from("ldxb r2, [r1+0]\n");
    for _ in 0..n - 4 {
        text.push_str("mov r0, 1\n");
    }
    text.push_str("jeq r2, 0, +1\nmov r0, 2\nexit\n");
    source::assemble(&text).unwrap()
}

#[test]
fn a_policy_above_rbpfs_jump_range_is_capped() {
    let policy = Policy {
        max_insns: 100_000,
        ..Policy::default()
    };
    // Past i16::MAX slots the interpreter's `(pc as i16 + off) as usize` wraps: refused.
    let e = verify(&long_program(RBPF_MAX_INSNS + 1), &policy).unwrap_err();
    assert_eq!(
        e.rule,
        Rule::TooLong {
            insns: RBPF_MAX_INSNS + 1,
            max: RBPF_MAX_INSNS
        }
    );
    // At the cap, the jump at the end lands right under the interpreter.
    let prog = long_program(RBPF_MAX_INSNS);
    let p = Program::load(&prog, &policy, &[], Engine::Jit).unwrap();
    assert_eq!(
        p.engine(),
        Engine::Interpreter,
        "far too long for the JIT page"
    );
    let mut ctx = ContextBuf::default();
    assert_eq!(p.run(&mut ctx.0).unwrap(), 1);
}

fn add_three(a: u64, b: u64, c: u64, _: u64, _: u64) -> u64 {
    a.wrapping_add(b).wrapping_add(c)
}

fn helper() -> Helper {
    Helper {
        spec: HelperSpec { id: 7, arity: 3 },
        func: add_three,
    }
}

#[test]
fn a_program_that_calls_a_helper_never_runs_under_the_jit() {
    let prog = source::assemble("ldxb r2, [r1+0]\nmov r1, 10\nmov r3, 5\ncall 7\nexit\n").unwrap();
    let p = Program::load(&prog, &Policy::default(), &[helper()], Engine::Jit).unwrap();
    assert!(p.verified().calls_helpers);
    assert!(!p.verified().fits_jit());
    assert_eq!(p.engine(), Engine::Interpreter);
    let mut ctx = ContextBuf::default();
    ctx.0[0] = 3;
    // Asking for the JIT runs the interpreter: the helper is called safely.
    assert_eq!(p.run_with(Engine::Jit, &mut ctx.0).unwrap(), 18);
    // The same helper registered but not called: the program still gets the JIT.
    let plain = source::assemble("ldxb r0, [r1+0]\nexit\n").unwrap();
    let q = Program::load(&plain, &Policy::default(), &[helper()], Engine::Jit).unwrap();
    assert_eq!(q.engine(), Engine::Jit);
    assert_eq!(q.run(&mut ctx.0).unwrap(), 3);
}

#[test]
fn helpers_take_numbers_only_and_clobber_the_argument_registers() {
    let policy = Policy {
        helpers: vec![helper().spec],
        ..Policy::default()
    };
    // The context pointer as an argument would hand an address to the helper.
    let leak = source::assemble("mov r2, 1\nmov r3, 2\ncall 7\nexit\n").unwrap();
    let e = verify(&leak, &policy).unwrap_err();
    assert!(matches!(e.rule, Rule::PointerLeak { reg: 1, .. }), "{e}");
    // r1..r5 are unreadable after a call, as in the kernel.
    let after =
        source::assemble("mov r1, 1\nmov r2, 1\nmov r3, 2\ncall 7\nmov r0, r2\nexit\n").unwrap();
    let e = verify(&after, &policy).unwrap_err();
    assert_eq!(e.rule, Rule::Uninitialized { reg: 2 });
}
