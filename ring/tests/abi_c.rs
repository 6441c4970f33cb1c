//! The C side of the ABI, compiled with the system C compiler: every `offsetof`/`sizeof`
//! of `kmod/include/uapi/sbpf_ring.h` against Rust's, and the module's validator
//! (`kmod/include/sbpf_validate.h`) against `validate::check_entry` on random entries.
#![cfg(not(miri))]

use std::{
    io::Write,
    mem::{offset_of, size_of},
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use proptest::{prelude::*, strategy::ValueTree};
use sbpf_ring::{
    abi::{
        self, ioctl, CqOffsets, Cqe, Enter, MapAttach, ObjectArg, Params, SqOffsets, Sqe, Stats,
        SyncOp,
    },
    validate::{check_entry, rights, Fault},
};

fn kmod_include() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../kmod/include")
}

/// Compiles `source` with the system C compiler and returns the executable.
fn compile(name: &str, source: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let src = dir.join(format!("{name}.c"));
    let exe = dir.join(name);
    std::fs::write(&src, source).unwrap();
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let out = Command::new(&cc)
        .args(["-std=c11", "-Wall", "-Werror", "-O1", "-I"])
        .arg(kmod_include())
        .arg("-o")
        .arg(&exe)
        .arg(&src)
        .output()
        .unwrap_or_else(|e| panic!("running the C compiler `{cc}`: {e}"));
    assert!(
        out.status.success(),
        "C compile failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    exe
}

#[test]
fn c_header_matches_rust_layout() {
    // (C expression, Rust value) pairs; the C program prints each expression's value.
    let mut checks: Vec<(&str, u64)> = Vec::new();
    // `sizeof` of a struct and `offsetof` of each listed field, the C and the Rust side
    // spelled by the same identifiers.
    macro_rules! layout {
        ($v:ident, $c:ident: $rust:ty { $($field:ident),* }) => {
            $v.push((concat!("sizeof(struct ", stringify!($c), ")"), size_of::<$rust>() as u64));
            $($v.push((
                concat!("offsetof(struct ", stringify!($c), ", ", stringify!($field), ")"),
                offset_of!($rust, $field) as u64,
            ));)*
        };
    }
    layout!(checks, sbpf_sqe: Sqe {
        opcode, flags, resv0, obj_id, obj_off, arena_off, len, resv1, user_data, val, cmp,
        resv2, seq
    });
    layout!(checks, sbpf_cqe: Cqe { user_data, res, flags, value, resv });
    layout!(checks, sbpf_sq_offsets: SqOffsets { sqes });
    layout!(checks, sbpf_cq_offsets: CqOffsets { cqes, stats });
    layout!(checks, sbpf_params: Params {
        sq_entries, cq_entries, flags, sq_idle_ms, arena_size, ring_size, features, sq_off,
        cq_off, resv
    });
    layout!(checks, sbpf_enter: Enter { min_complete, flags, timeout_ns });
    layout!(checks, sbpf_object: ObjectArg { size });
    layout!(checks, sbpf_sync_op: SyncOp { cqe });
    layout!(checks, sbpf_map_attach: MapAttach {
        fd, flags, id, map_type, key_size, value_size, max_entries, rights, size, resv
    });
    layout!(checks, sbpf_stats: Stats { rejected_align, wakeups, sync_ops });
    checks.extend([
        ("SBPF_SQ_HEAD_OFF", abi::SQ_HEAD_OFF.into()),
        ("SBPF_SQ_TAIL_OFF", abi::SQ_TAIL_OFF.into()),
        ("SBPF_SQ_FLAGS_OFF", abi::SQ_FLAGS_OFF.into()),
        ("SBPF_SQ_MASK_OFF", abi::SQ_MASK_OFF.into()),
        ("SBPF_SQ_ENTRIES_OFF", abi::SQ_ENTRIES_OFF.into()),
        ("SBPF_CQ_HEAD_OFF", abi::CQ_HEAD_OFF.into()),
        ("SBPF_CQ_TAIL_OFF", abi::CQ_TAIL_OFF.into()),
        ("SBPF_CQ_FLAGS_OFF", abi::CQ_FLAGS_OFF.into()),
        ("SBPF_CQ_MASK_OFF", abi::CQ_MASK_OFF.into()),
        ("SBPF_CQ_ENTRIES_OFF", abi::CQ_ENTRIES_OFF.into()),
        ("SBPF_STATS_OFF", abi::STATS_OFF.into()),
        ("SBPF_SQES_OFF", abi::SQES_OFF.into()),
        ("SBPF_OFF_RING", abi::OFF_RING),
        ("SBPF_OFF_ARENA", abi::OFF_ARENA),
        ("SBPF_MAX_SQ_ENTRIES", abi::MAX_SQ_ENTRIES.into()),
        ("SBPF_MAX_CQ_ENTRIES", abi::MAX_CQ_ENTRIES.into()),
        ("SBPF_MAX_ARENA_SIZE", abi::MAX_ARENA_SIZE),
        ("SBPF_MAX_OBJECT_SIZE", abi::MAX_OBJECT_SIZE),
        ("SBPF_MAX_IO_LEN", abi::MAX_IO_LEN.into()),
        ("SBPF_SETUP_SQPOLL", abi::SETUP_SQPOLL.into()),
        ("SBPF_SETUP_CQSIZE", abi::SETUP_CQSIZE.into()),
        ("SBPF_SQ_NEED_WAKEUP", abi::SQ_NEED_WAKEUP.into()),
        ("SBPF_ENTER_SQ_WAKEUP", abi::ENTER_SQ_WAKEUP.into()),
        ("SBPF_ENTER_GETEVENTS", abi::ENTER_GETEVENTS.into()),
        ("SBPF_OP_NOP", abi::opcode::NOP.into()),
        ("SBPF_OP_READ", abi::opcode::READ.into()),
        ("SBPF_OP_WRITE", abi::opcode::WRITE.into()),
        ("SBPF_OP_LOAD64", abi::opcode::LOAD64.into()),
        ("SBPF_OP_STORE64", abi::opcode::STORE64.into()),
        ("SBPF_OP_FETCH_ADD64", abi::opcode::FETCH_ADD64.into()),
        ("SBPF_OP_CAS64", abi::opcode::CAS64.into()),
        ("SBPF_OP_MAP_UPDATE", abi::opcode::MAP_UPDATE.into()),
        ("SBPF_OP_MAP_LOOKUP", abi::opcode::MAP_LOOKUP.into()),
        ("SBPF_OP_MAP_DELETE", abi::opcode::MAP_DELETE.into()),
        ("SBPF_OP_COUNT", abi::opcode::COUNT.into()),
        ("SBPF_MAP_ANY", abi::MAP_ANY),
        ("SBPF_MAP_NOEXIST", abi::MAP_NOEXIST),
        ("SBPF_MAP_EXIST", abi::MAP_EXIST),
        ("SBPF_RIGHT_READ", rights::READ.into()),
        ("SBPF_RIGHT_WRITE", rights::WRITE.into()),
        ("SBPF_RIGHT_MAP", rights::MAP.into()),
        ("SBPF_IOC_MAP_ATTACH", ioctl::MAP_ATTACH.into()),
        ("SBPF_IOC_SETUP", ioctl::SETUP.into()),
        ("SBPF_IOC_ENTER", ioctl::ENTER.into()),
        ("SBPF_IOC_OBJ_CREATE", ioctl::OBJ_CREATE.into()),
        ("SBPF_IOC_OBJ_ATTACH", ioctl::OBJ_ATTACH.into()),
        ("SBPF_IOC_OBJ_DETACH", ioctl::OBJ_DETACH.into()),
        ("SBPF_IOC_OBJ_SELECT", ioctl::OBJ_SELECT.into()),
        ("SBPF_IOC_SYNC_OP", ioctl::SYNC_OP.into()),
        ("SBPF_IOC_STATS", ioctl::STATS.into()),
        ("SBPF_IOC_SHUTDOWN", ioctl::SHUTDOWN.into()),
    ]);
    let mut src = String::from("#include <stdio.h>\n#include <stddef.h>\n#include \"uapi/sbpf_ring.h\"\nint main(void) {\n");
    for (expr, _) in &checks {
        src.push_str(&format!(
            "  printf(\"%llu\\n\", (unsigned long long)({expr}));\n"
        ));
    }
    src.push_str("  return 0;\n}\n");
    let exe = compile("abi_layout", &src);
    let out = Command::new(exe).output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let c_values: Vec<u64> = text.lines().map(|l| l.parse().unwrap()).collect();
    assert_eq!(c_values.len(), checks.len());
    let mismatches: Vec<String> = checks
        .iter()
        .zip(&c_values)
        .filter(|((_, rust), c)| rust != *c)
        .map(|((expr, rust), c)| format!("{expr}: C {c}, Rust {rust}"))
        .collect();
    assert!(
        mismatches.is_empty(),
        "ABI mismatches:\n{}",
        mismatches.join("\n")
    );
}

/// One differential case: an entry, the arena size, and the size of the object its id
/// names (or none).
#[derive(Clone, Debug)]
struct Case {
    sqe: Sqe,
    arena: u64,
    object: Option<u64>,
}

/// Field values near the edges the validator cares about.
fn edgy_u64() -> impl Strategy<Value = u64> {
    prop_oneof![
        Just(0u64),
        0u64..64,
        Just(4096 - 8),
        Just(4096),
        Just(u64::MAX),
        Just(u64::MAX - 7),
        any::<u64>(),
    ]
}

fn case() -> impl Strategy<Value = Case> {
    let sqe = (
        prop_oneof![0u8..11, any::<u8>()],
        prop_oneof![4 => Just(0u8), 1 => any::<u8>()],
        prop_oneof![4 => Just(0u16), 1 => any::<u16>()],
        prop_oneof![Just(0u32), Just(1u32), any::<u32>()],
        edgy_u64(),
        edgy_u64(),
        prop_oneof![
            Just(0u32),
            1u32..129,
            Just(abi::MAX_IO_LEN),
            Just(abi::MAX_IO_LEN + 1),
            any::<u32>()
        ],
        prop_oneof![4 => Just(0u32), 1 => any::<u32>()],
        (
            // Zero often: most opcodes require it, and accepted entries must be common.
            prop_oneof![2 => Just(0u64), 1 => edgy_u64()],
            prop_oneof![2 => Just(0u64), 1 => edgy_u64()],
            prop_oneof![4 => Just(0u32), 1 => any::<u32>()],
        ),
    )
        .prop_map(
            |(opcode, flags, resv0, obj_id, obj_off, arena_off, len, resv1, (val, cmp, resv2))| {
                Sqe {
                    opcode,
                    flags,
                    resv0,
                    obj_id,
                    obj_off,
                    arena_off,
                    len,
                    resv1,
                    user_data: 0,
                    val,
                    cmp,
                    resv2,
                    seq: 0,
                }
            },
        );
    (
        sqe,
        prop_oneof![Just(0u64), Just(4096u64), Just(1u64 << 20)],
        // Size 0: a hash map, which only the MAP_* opcodes address.
        prop_oneof![
            Just(None),
            Just(Some(0u64)),
            Just(Some(8u64)),
            Just(Some(4096u64))
        ],
    )
        .prop_map(|(sqe, arena, object)| Case { sqe, arena, object })
}

/// Runs the C validator on `cases` (binary records on stdin) and returns its faults.
fn c_faults(exe: &Path, cases: &[Case]) -> Vec<u8> {
    let mut input = Vec::new();
    for c in cases {
        // SAFETY: `Sqe` is `repr(C)` plain data without padding (pinned in abi.rs).
        let bytes = unsafe {
            std::slice::from_raw_parts((&c.sqe as *const Sqe).cast::<u8>(), size_of::<Sqe>())
        };
        input.extend_from_slice(bytes);
        input.extend_from_slice(&c.arena.to_ne_bytes());
        input.extend_from_slice(&u64::from(c.object.is_some()).to_ne_bytes());
        input.extend_from_slice(&c.object.unwrap_or(0).to_ne_bytes());
    }
    let mut child = Command::new(exe)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&input).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    out.stdout
}

const C_VALIDATOR: &str = r#"
#include <stdio.h>
#include "sbpf_validate.h"
int main(void) {
    struct { struct sbpf_sqe sqe; __u64 arena, have, size; } rec;
    while (fread(&rec, sizeof rec, 1, stdin) == 1) {
        enum sbpf_fault f = sbpf_check_entry(&rec.sqe, rec.arena, (int)rec.have, rec.size);
        putchar((int)f);
        if (sbpf_fault_errno(f) != (f == SBPF_FAULT_NONE ? 0 : sbpf_fault_errno(f))) return 2;
    }
    return 0;
}
"#;

fn rust_fault(c: &Case) -> u8 {
    match check_entry(&c.sqe, c.arena, |_| c.object) {
        Ok(_) => 0,
        Err(f) => f as u8,
    }
}

fn errno_of(fault: u8) -> i32 {
    match fault {
        0 => 0,
        1 => Fault::Opcode.errno(),
        2 => Fault::Reserved.errno(),
        3 => Fault::Object.errno(),
        4 => Fault::Length.errno(),
        5 => Fault::Bounds.errno(),
        6 => Fault::Align.errno(),
        other => panic!("unknown fault {other}"),
    }
}

#[test]
fn c_validator_agrees_with_rust() {
    let exe = compile("validate_diff", C_VALIDATOR);
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(1));
    let strategy = proptest::collection::vec(case(), 20_000);
    let mut cases = strategy.new_tree(&mut runner).unwrap().current();
    // Accepted MAP_* entries, whatever the generator drew, and their edges.
    for (opcode, len, val) in [
        (abi::opcode::MAP_UPDATE, 12, abi::MAP_EXIST),
        (abi::opcode::MAP_LOOKUP, 4096, 0),
        (abi::opcode::MAP_DELETE, 4, 0),
        (abi::opcode::MAP_UPDATE, 12, abi::MAP_EXIST + 1),
        (abi::opcode::MAP_LOOKUP, 4097, 0),
    ] {
        let sqe = Sqe {
            opcode,
            obj_id: 1,
            len,
            val,
            ..Sqe::default()
        };
        for object in [Some(0), Some(8), None] {
            cases.push(Case {
                sqe,
                arena: 4096,
                object,
            });
        }
    }
    let c = c_faults(&exe, &cases);
    assert_eq!(c.len(), cases.len());
    let mut seen = [0usize; 7];
    // Accepted MAP_UPDATE, MAP_LOOKUP and MAP_DELETE entries: the new rows are reached.
    let mut map_ok = [0usize; 3];
    for (case, &cf) in cases.iter().zip(&c) {
        let rf = rust_fault(case);
        assert_eq!(cf, rf, "C and Rust disagree on {case:?}");
        assert_eq!(errno_of(cf), errno_of(rf));
        seen[rf as usize] += 1;
        if rf == 0 && case.sqe.opcode >= abi::opcode::MAP_UPDATE {
            map_ok[usize::from(case.sqe.opcode - abi::opcode::MAP_UPDATE)] += 1;
        }
    }
    // The generator must reach every row of the table, or the comparison proves little.
    assert!(
        seen.iter().all(|&n| n > 0),
        "not every fault was generated: {seen:?}"
    );
    assert!(
        map_ok.iter().all(|&n| n > 0),
        "no accepted entry of some MAP_* opcode: {map_ok:?}"
    );
}
