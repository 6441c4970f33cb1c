//! Verification time: a 64-instruction straight-line guard, the loop over the eight objects
//! that clang emits for `guards/object_lookup.c`, and two 512-instruction worst cases (a
//! loop nest that runs the exploration out of budget, and a chain of branches whose every
//! path is distinct, so that each jump target holds the most stored states and every
//! comparison with them fails as late as possible); and the largest program a policy may
//! allow (`RBPF_MAX_INSNS`), a chain of backward jumps that the structural pass must walk
//! before the exploration refuses its loop.
//!
//! `cargo bench -p sbpf-guard --bench verifier -- --warm-up-time 1 --measurement-time 5`

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use sbpf_guard::{
    source,
    verifier::{verify, Rule, RBPF_MAX_INSNS},
    Policy,
};

fn straight64() -> Vec<u8> {
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

/// `clang -target bpf -O2` (Debian clang 14) on `guards/object_lookup.c`, transcribed from
/// `llvm-objdump -d`, so the bench needs no clang.
const OBJECT_LOOKUP: &str = "
    mov r0, 0
    ldxb r2, [r1+0]
    jeq r2, 0, done
    ldxw r4, [r1+72]
    mov r3, r4
    mov r5, 8
    jgt r5, r3, clamped
    mov r4, 8
clamped:
    mov r0, 3
    lsh r4, 32
    rsh r4, 32
    jeq r4, 0, done
    mov r5, 0
    mov r3, r1
    add r3, 104
    ldxw r6, [r1+4]
    ja body
next:
    add r5, 1
    add r3, 16
    jge r5, r4, done
body:
    ldxw r7, [r3-8]
    jne r7, r6, next
    mov r0, 0
    add r2, -1
    and r2, 255
    jgt r2, 1, done
    ldxw r2, [r1+24]
    ldxdw r4, [r1+8]
    mov r1, r4
    add r1, r2
    mov r2, 1
    jgt r4, r1, carry
    mov r2, 0
carry:
    mov r0, 5
    and r2, 1
    jne r2, 0, done
    ldxdw r2, [r3+0]
    jgt r1, r2, done
    mov r0, 0
done:
    exit
";

/// 512 slots: a loop nest of 10^6 iterations after straight-line padding.
fn worst_budget() -> Vec<u8> {
    let mut s = String::from("mov r0, 0\n");
    for i in 0..504 {
        s.push_str(&format!("ldxw r2, [r1+{}]\n", 4 * (i % 50)));
    }
    s.push_str(
        "mov r2, 0\nouter:\nmov r3, 0\ninner:\nadd r3, 1\njlt r3, 1000, inner\n\
         add r2, 1\njlt r2, 1000, outer\nexit\n",
    );
    source::assemble(&s).unwrap()
}

/// 512 slots: the whole stack written (so every state copy and comparison is as large as it
/// gets), then blocks that each double the paths and record the choice in the deepest
/// slot, the last one compared, with the registers equal again at the next jump target.
/// No two paths share a state, so nothing prunes and every comparison walks the whole state.
fn worst_states() -> Vec<u8> {
    let mut s = String::from("mov r0, 0\n");
    for k in 1..=64 {
        s.push_str(&format!("stdw [r10-{}], {k}\n", 8 * k));
    }
    let mut n = 65;
    let mut k = 0;
    while n + 9 <= 511 {
        s.push_str(&format!(
            "ldxb r2, [r1+{}]\nldxdw r3, [r10-512]\nlsh r3, 1\njeq r2, 0, +1\nadd r3, 1\n\
             stxdw [r10-512], r3\nmov r2, 0\nmov r3, 0\nja +0\n",
            k % 200
        ));
        n += 9;
        k += 1;
    }
    while n < 511 {
        s.push_str("mov r0, 0\n");
        n += 1;
    }
    s.push_str("exit\n");
    source::assemble(&s).unwrap()
}

/// `RBPF_MAX_INSNS` slots: a jump to the last instruction, then `ja -2` back from each odd
/// one, so every instruction is reached only through a backward jump.
fn backward_chain() -> Vec<u8> {
    let n = RBPF_MAX_INSNS;
    let mut s = format!("ja +{}\n", n - 2);
    for i in 1..n - 1 {
        s.push_str(if i % 2 == 1 { "ja -2\n" } else { "mov r0, 0\n" });
    }
    s.push_str("ja -2\n");
    source::assemble(&s).unwrap()
}

fn benches(c: &mut Criterion) {
    let policy = Policy::default();
    let p64 = straight64();
    assert_eq!(p64.len() / 8, 64);
    let lookup = source::assemble(OBJECT_LOOKUP).unwrap();
    let v = verify(&lookup, &policy).unwrap();
    println!(
        "object_lookup: {} insns, {} processed, {} states",
        v.insns, v.max_steps, v.states
    );
    let budget = worst_budget();
    let states = worst_states();
    for (name, p) in [("budget", &budget), ("states", &states)] {
        assert_eq!(p.len() / 8, 512, "{name}");
        let e = verify(p, &policy).unwrap_err();
        assert!(matches!(e.rule, Rule::Budget { .. }), "{name}: {e}");
    }

    let chain = backward_chain();
    let largest = Policy {
        max_insns: RBPF_MAX_INSNS,
        ..Policy::default()
    };
    assert_eq!(chain.len() / 8, RBPF_MAX_INSNS);
    assert!(verify(&chain, &largest).is_err());

    let mut g = c.benchmark_group("verify");
    g.bench_function("straight_64", |b| {
        b.iter(|| verify(black_box(&p64), &policy))
    });
    g.bench_function("loop_over_8_objects", |b| {
        b.iter(|| verify(black_box(&lookup), &policy))
    });
    g.bench_function("worst_512_budget", |b| {
        b.iter(|| verify(black_box(&budget), &policy))
    });
    g.bench_function("worst_512_states", |b| {
        b.iter(|| verify(black_box(&states), &policy))
    });
    g.bench_function("largest_backward_chain", |b| {
        b.iter(|| verify(black_box(&chain), &largest))
    });
    g.finish();
}

criterion_group!(verifier, benches);
criterion_main!(verifier);
