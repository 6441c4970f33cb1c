//! The negative corpus (each hostile program rejected by the rule it breaks) and the positive
//! corpus (accepted, and JIT and interpreter agree on random contexts).

mod common;

use common::{corpus_program, files, manifest_dir, Rng};
use sbpf_guard::{
    context::{off, ContextBuf, CONTEXT_SIZE, MAX_LIMIT_OBJECTS_CTX},
    verifier::{verify, verify_with_log},
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
