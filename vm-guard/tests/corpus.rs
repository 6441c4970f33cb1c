//! The negative corpus (each hostile program rejected by the rule it breaks) and the positive
//! corpus (accepted, and JIT and interpreter agree on random contexts).

mod common;

use common::{corpus_program, files, manifest_dir, Rng};
use sbpf_guard::{
    context::{off, ContextBuf, CONTEXT_SIZE, MAX_LIMIT_OBJECTS_CTX},
    verifier::{verify, verify_with_log, Rule, VerifyError},
    Engine, Policy, Program,
};

#[test]
fn every_hostile_program_is_rejected_by_the_rule_it_breaks() {
    let dir = manifest_dir().join("tests/corpus/reject");
    let paths = files(&dir, "s");
    assert!(
        paths.len() >= 100,
        "the negative corpus has only {} programs",
        paths.len()
    );
    // Issue 12's programs aimed at the path-sensitive verifier (ranges, stack, pointers,
    // loops, pruning) are named `new-*`.
    let aimed = paths
        .iter()
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("new-"))
        })
        .count();
    assert!(
        aimed >= 40,
        "only {aimed} programs aimed at the new abstractions"
    );
    // The programs' byte offsets are written against the context up to the end of
    // objects[] (version 1's whole context). Later versions append fields after it, which
    // would make some of these accesses legal, so the corpus pins that extent.
    let written_for = off::OBJECTS + MAX_LIMIT_OBJECTS_CTX * off::OBJECT_STRIDE;
    assert!(written_for <= CONTEXT_SIZE);
    let policy = Policy {
        context_size: written_for,
        ..Policy::default()
    };
    let mut wrong = Vec::new();
    for path in &paths {
        let p = corpus_program(path);
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let expect = p
            .expect
            .unwrap_or_else(|| panic!("{name}: no `# expect:` line"));
        match verify(&p.bytecode, &policy) {
            Ok(_) => wrong.push(format!("{name}: accepted, expected {expect}")),
            Err(e) => {
                if e.rule.name() != expect {
                    wrong.push(format!(
                        "{name}: rejected by {} ({e}), expected {expect}",
                        e.rule.name()
                    ));
                    continue;
                }
                // Rules about an instruction name it, with its disassembly.
                if let Some(i) = e.index {
                    assert!(i < p.bytecode.len() / 8, "{name}: index {i} out of range");
                    assert!(!e.insn.is_empty(), "{name}: no disassembly");
                }
                // Rules found on a path show that path's registers and stack, and the dump
                // shows what broke the rule.
                if let Some(problem) = state_problem(&e) {
                    wrong.push(format!("{name}: {problem} ({e})"));
                    continue;
                }
                let (again, log) = verify_with_log(&p.bytecode, &policy);
                assert_eq!(again.unwrap_err(), e, "{name}: the log run disagrees");
                assert!(
                    log.lines.last().unwrap().contains(expect.as_str()),
                    "{name}: log {log}"
                );
                println!("{name:28} {e}");
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    println!(
        "{} hostile programs rejected, each by its rule",
        paths.len()
    );
}

/// What is wrong with a rejection's state dump ([`VerifyError::state`]), if anything.
///
/// Rules about the encoding or the whole program have no abstract state, so no dump. Rules
/// found on a path carry that path's registers and stack (`R1=ctx(off=0..=4080) R10=fp
/// fp-8=ctx`), which must show the register or slot that broke the rule: the pointer that
/// left its region, the number used as one, the uninitialized register (absent), and so on.
fn state_problem(e: &VerifyError) -> Option<String> {
    let st = e.state.as_str();
    // A register's value in the dump; `None` when it is uninitialized (not shown).
    let reg = |r: u8| {
        let key = format!("R{r}=");
        st.split_whitespace()
            .find_map(|t| t.strip_prefix(key.as_str()))
    };
    // A stack slot's value in the dump, by the slot holding offset `off` from r10.
    let slot = |off: i64| {
        let key = format!("fp{}=", -8 * ((-off - 1) / 8 + 1));
        st.split_whitespace()
            .find_map(|t| t.strip_prefix(key.as_str()))
    };
    let is_ptr = |v: &str| ["ctx", "fp", "rodata"].iter().any(|p| v.starts_with(p));
    let need = |ok: bool, what: &str| (!ok).then(|| format!("state dump {what}: `{st}`"));
    match &e.rule {
        Rule::Empty
        | Rule::Truncated { .. }
        | Rule::TooLong { .. }
        | Rule::UnknownOpcode { .. }
        | Rule::BadRegister
        | Rule::ReservedField { .. }
        | Rule::IncompleteLddw
        | Rule::JumpOutOfRange { .. }
        | Rule::JumpIntoLddw { .. }
        | Rule::FallsOffEnd
        | Rule::Unreachable
        | Rule::Atomic
        | Rule::LegacyPacketLoad
        | Rule::FramePointerWrite
        | Rule::CallNotAllowed { .. }
        | Rule::LocalCall
        | Rule::TailCall
        | Rule::BadShift { .. }
        | Rule::DivByZero
        | Rule::BadEndian => return need(st.is_empty(), "for a structural rule"),
        // Found by the structural pass or on a path, depending on the instruction.
        Rule::LddwPseudo | Rule::RbpfDivergence { .. } => return None,
        _ => {}
    }
    if st.is_empty() {
        return Some(String::from("no state dump for a rule found on a path"));
    }
    if !e.to_string().ends_with(&format!("; state: {st}")) {
        return Some(String::from("the message does not show the state"));
    }
    if reg(10) != Some("fp") {
        return need(false, "without R10=fp");
    }
    match &e.rule {
        Rule::NotAPointer { reg: r } => need(
            reg(*r).is_some_and(|v| !is_ptr(v)),
            &format!("without r{r} as a number"),
        ),
        Rule::OutOfBounds { region, reg: r, .. } => need(
            reg(*r).is_some_and(|v| v.starts_with(region.name())),
            &format!("without r{r} pointing into the {region}"),
        ),
        Rule::StackVariableOffset { reg: r } => need(
            reg(*r).is_some_and(|v| v.starts_with("fp")),
            &format!("without r{r} pointing into the stack"),
        ),
        Rule::PointerComparison { reg: r }
        | Rule::PointerArithmetic { reg: r, .. }
        | Rule::UnboundedPointerOffset { reg: r, .. }
        | Rule::PointerLeak { reg: r, .. } => need(
            reg(*r).is_some_and(is_ptr),
            &format!("without r{r} as a pointer"),
        ),
        Rule::Uninitialized { reg: r } => {
            need(reg(*r).is_none(), &format!("with r{r} initialized"))
        }
        Rule::R0Unset => need(reg(0).is_none(), "with r0 initialized"),
        Rule::PointerReturned => need(reg(0).is_some_and(is_ptr), "without r0 as a pointer"),
        Rule::Store { region } => {
            // The base register, from the disassembly (`stw [r2+0x0], 0x0`).
            let base = e
                .insn
                .split_once("[r")
                .and_then(|(_, rest)| rest.split(|c: char| !c.is_ascii_digit()).next())
                .and_then(|d| d.parse::<u8>().ok());
            need(
                base.and_then(reg)
                    .is_some_and(|v| v.starts_with(region.name())),
                &format!("without the base register pointing into the {region}"),
            )
        }
        Rule::SpilledPointerPartial { off } => need(
            slot(*off).is_some_and(is_ptr),
            &format!("without a pointer spilled at r10{off:+}"),
        ),
        Rule::StackUninitialized { off, size } => {
            // Some slot the read touches is not (entirely) written.
            let unwritten = (*off..off + *size as i64)
                .any(|o| slot(o).is_none_or(|v| v.starts_with("bytes") && v != "bytes11111111"));
            need(unwritten, &format!("with r10{off:+} all written"))
        }
        // Budget, infinite loop: the whole state is the evidence.
        _ => None,
    }
}

#[test]
fn the_state_check_catches_a_dump_without_the_culprit() {
    let path = manifest_dir().join("tests/corpus/reject/new-prune-link.s");
    let policy = Policy {
        context_size: off::OBJECTS + MAX_LIMIT_OBJECTS_CTX * off::OBJECT_STRIDE,
        ..Policy::default()
    };
    let e = verify(&corpus_program(&path).bytecode, &policy).unwrap_err();
    assert!(matches!(e.rule, Rule::OutOfBounds { reg: 1, .. }), "{e}");
    assert_eq!(state_problem(&e), None, "{e}");
    // The failing pointer missing, a number instead of it, no dump at all: each is caught.
    for state in [
        e.state.replace("R1=ctx(off=0..=4080) ", ""),
        e.state.replace("R1=ctx(off=0..=4080)", "R1=4080"),
        String::new(),
    ] {
        assert_ne!(state, e.state);
        let broken = VerifyError { state, ..e.clone() };
        assert!(state_problem(&broken).is_some(), "{broken}");
    }
}

#[test]
fn every_positive_program_is_accepted_and_engines_agree() {
    let dir = manifest_dir().join("tests/corpus/accept");
    let paths = files(&dir, "s");
    assert!(paths.len() >= 5);
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    for path in &paths {
        let p = corpus_program(path);
        let name = path.display();
        let v = verify(&p.bytecode, &Policy::default()).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(v.fits_jit());
        let prog = Program::load(&p.bytecode, &Policy::default(), &[], Engine::Jit).unwrap();
        assert_eq!(prog.engine(), Engine::Jit);
        for _ in 0..500 {
            let mut ctx = ContextBuf::default();
            rng.fill(&mut ctx.0);
            let mut ctx2 = ctx.clone();
            let a = prog
                .run_with(Engine::Interpreter, &mut ctx.0)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            let b = prog.run_with(Engine::Jit, &mut ctx2.0).unwrap();
            assert_eq!(a, b, "{name}: interpreter and JIT disagree");
            assert_eq!(ctx.0, ctx2.0, "{name}: the context changed");
        }
    }
    assert_eq!(CONTEXT_SIZE, 240);
}
