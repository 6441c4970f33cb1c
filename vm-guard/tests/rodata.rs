//! Read-only data: `lddw` of a `.rodata` address (source `PSEUDO_RODATA`) is a pointer the
//! verifier bounds like the context's, and `Program` gives rbpf a real address for it.

mod common;

use common::GuardedContext;
use sbpf_guard::{
    context::CONTEXT_SIZE,
    source,
    verifier::{verify_with_rodata, Region, Rule, PSEUDO_RODATA},
    Engine, Policy, Program,
};

/// Assembles `text`, then turns every `lddw rX, OFF` into a read-only data pointer at OFF.
fn with_rodata_ptrs(text: &str) -> Vec<u8> {
    let mut code = source::assemble(text).unwrap();
    let mut i = 0;
    while i * 8 < code.len() {
        if code[i * 8] == 0x18 {
            let off = u32::from_le_bytes(code[i * 8 + 4..i * 8 + 8].try_into().unwrap());
            code[i * 8 + 1] |= PSEUDO_RODATA << 4;
            code[i * 8 + 4..i * 8 + 8].copy_from_slice(&[0; 4]);
            code[i * 8 + 12..i * 8 + 16].copy_from_slice(&off.to_le_bytes());
            i += 2;
        } else {
            i += 1;
        }
    }
    code
}

/// A table of eight u32 limits, indexed by the entry's opcode (bounded first).
const TABLE_LOOKUP: &str = "
    ldxb r2, [r1+0]
    mov r0, 99
    jgt r2, 7, out
    lsh r2, 2
    lddw r3, 0
    add r3, r2
    ldxw r4, [r3+0]
    ldxw r5, [r1+24]
    mov r0, 0
    jle r5, r4, out
    mov r0, 1
out:
    exit
";

fn table() -> Vec<u8> {
    [0u32, 65536, 4096, 8, 8, 8, 8, 0]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect()
}

#[test]
fn a_bounded_table_lookup_runs_under_both_engines() {
    let code = with_rodata_ptrs(TABLE_LOOKUP);
    let rodata = table();
    let policy = Policy::default();
    verify_with_rodata(&code, &rodata, &policy).unwrap();
    let jit = Program::load_with_rodata(&code, &rodata, &policy, &[], Engine::Jit).unwrap();
    assert_eq!(jit.engine(), Engine::Jit);
    // A clone has its own copy of the data at its own address, written into its own code.
    let copy = jit.clone();
    drop(jit);
    let mut page = GuardedContext::new(CONTEXT_SIZE);
    for (op, len, want) in [
        (1u8, 65536u32, 0u64),
        (1, 65537, 1),
        (2, 4096, 0),
        (2, 4097, 1),
        (7, 0, 0),
        (7, 1, 1),
        (8, 0, 99),
    ] {
        let ctx = page.bytes();
        ctx.fill(0);
        ctx[0] = op;
        ctx[24..28].copy_from_slice(&len.to_le_bytes());
        assert_eq!(
            copy.run_with(Engine::Jit, ctx).unwrap(),
            want,
            "op {op} len {len}"
        );
        assert_eq!(copy.run_with(Engine::Interpreter, ctx).unwrap(), want);
    }
}

#[test]
fn read_only_data_is_bounded_read_only_and_never_leaks() {
    let rodata = table();
    let policy = Policy::default();
    let reject =
        |text: &str| verify_with_rodata(&with_rodata_ptrs(text), &rodata, &policy).unwrap_err();

    // The index bound is one too loose: entry 8 is past the 32-byte table.
    let e = reject(&TABLE_LOOKUP.replace("jgt r2, 7, out", "jgt r2, 8, out"));
    assert!(
        matches!(
            e.rule,
            Rule::OutOfBounds {
                region: Region::Rodata,
                min: 0,
                max: 32,
                size: 4,
                limit: 32,
                ..
            }
        ),
        "{e}"
    );
    // Unbounded index.
    let e = reject(&TABLE_LOOKUP.replace("jgt r2, 7, out", "ja +0"));
    assert!(
        matches!(
            e.rule,
            Rule::OutOfBounds {
                region: Region::Rodata,
                ..
            }
        ),
        "{e}"
    );
    // Stores into it.
    let e = reject("lddw r3, 0\nstw [r3+0], 1\nmov r0, 0\nexit");
    assert_eq!(
        e.rule,
        Rule::Store {
            region: Region::Rodata
        }
    );
    // Its address, returned or compared with the context's.
    let e = reject("lddw r0, 8\nexit");
    assert_eq!(e.rule, Rule::PointerReturned);
    let e = reject("lddw r3, 0\nmov r0, 0\njgt r3, r1, +1\nmov r0, 1\nexit");
    assert!(matches!(e.rule, Rule::PointerComparison { .. }), "{e}");
    // An offset past its end.
    let e = reject("lddw r3, 33\nmov r0, 0\nexit");
    assert_eq!(e.rule, Rule::LddwPseudo);
    // No read-only data at all.
    let e = verify_with_rodata(
        &with_rodata_ptrs("lddw r3, 0\nmov r0, 0\nexit"),
        &[],
        &policy,
    )
    .unwrap_err();
    assert_eq!(e.rule, Rule::LddwPseudo);
}

/// A load at a constant offset gives the constant, which can bound an index.
#[test]
fn constants_loaded_from_read_only_data_are_known() {
    // table[3] is 8: r1 + 8 * 16 + 92 (+ 4 bytes) ends at 224, the end of objects[], inside
    // the context only because that value is known.
    let text = "lddw r3, 12\nldxw r2, [r3+0]\nlsh r2, 4\nadd r1, r2\nldxw r0, [r1+92]\nexit";
    let code = with_rodata_ptrs(text);
    let rodata = table();
    verify_with_rodata(&code, &rodata, &Policy::default()).unwrap();
    let mut other = rodata.clone();
    other[12] = 200; // 200 * 16 + 92 + 4: far past any version of the context
    let e = verify_with_rodata(&code, &other, &Policy::default()).unwrap_err();
    assert!(
        matches!(
            e.rule,
            Rule::OutOfBounds {
                region: Region::Context,
                ..
            }
        ),
        "{e}"
    );
}
