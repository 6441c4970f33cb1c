//! The built-in guards, written in rbpf assembly against the context layout of
//! [`crate::context`]. Each is an ordinary guard: verified and run like any other.
//!
//! | guard | rejects with |
//! |---|---|
//! | [`bounds`] | the codes of `sbpf_ring::validate::Fault`: 1 unknown opcode, 3 object not attached, 4 bad length, 5 out of bounds, 6 misaligned — the same decisions as `check_entry`'s object, length, bounds and alignment rows |
//! | [`opcode_allowlist`] | [`code::OPCODE_NOT_ALLOWED`] when bit `opcode` of the context's `allowed_opcodes` is clear |
//! | [`read_only`] | [`code::NOT_READ_ONLY`] for anything but NOP, READ and LOAD64 |
//! | [`object_allowlist`] | [`code::OBJECT_NOT_ALLOWED`] when a non-NOP entry names an object not on the list |

use std::fmt::Write;

use sbpf_ring::abi::{opcode, MAX_IO_LEN};

use crate::context::off;

/// Reason codes of the built-in guards beyond `Fault`'s.
pub mod code {
    /// The opcode is not read-only.
    pub const NOT_READ_ONLY: u64 = 16;
    /// The object is not on this guard's allow-list.
    pub const OBJECT_NOT_ALLOWED: u64 = 17;
    /// The opcode is not on this guard's allow-list.
    pub const OPCODE_NOT_ALLOWED: u64 = 18;
    /// The guard itself failed to run (never for a verified guard; reported, not trusted).
    pub const GUARD_FAULT: u64 = u64::MAX;

    /// A description of a reason code, when it is one we define.
    pub fn describe(code: u64) -> Option<&'static str> {
        use sbpf_ring::validate::Fault;
        Some(match code {
            1 => Fault::Opcode.reason(),
            2 => Fault::Reserved.reason(),
            3 => Fault::Object.reason(),
            4 => Fault::Length.reason(),
            5 => Fault::Bounds.reason(),
            6 => Fault::Align.reason(),
            NOT_READ_ONLY => "opcode is not read-only (NOP, READ, LOAD64)",
            OBJECT_NOT_ALLOWED => "object not on the allow-list",
            OPCODE_NOT_ALLOWED => "opcode not on the allow-list",
            GUARD_FAULT => "guard failed to run",
            _ => return None,
        })
    }
}

/// Object, length, bounds and alignment checks with `check_entry`'s semantics and codes.
pub fn bounds() -> String {
    let mut s = String::new();
    let w = &mut s;
    // r2 opcode, r4 object rights and r5 object size (the entry's own object, as the
    // producer resolved it: no rights when none is attached, since an attached object
    // always has one; a hash map has size 0), r6.. scratch.
    let _ = writeln!(w, "ldxb r2, [r1+{}]", off::OPCODE);
    let _ = writeln!(w, "jge r2, {}, bad_opcode", opcode::COUNT);
    let _ = writeln!(w, "jeq r2, {}, accept", opcode::NOP);
    let _ = writeln!(w, "ldxw r4, [r1+{}]", off::OBJECT + off::OBJECT_RIGHTS);
    let _ = writeln!(w, "jeq r4, 0, no_object");
    let _ = writeln!(w, "ldxdw r5, [r1+{}]", off::OBJECT + off::OBJECT_SIZE);
    // r3: whether the entry also addresses a range of the object (READ, WRITE), not only
    // the arena (MAP_*: key and value).
    let _ = writeln!(w, "mov r3, 0");
    let _ = writeln!(w, "jge r2, {}, io", opcode::MAP_UPDATE);
    let _ = writeln!(w, "jgt r2, {}, word_op", opcode::WRITE);
    let _ = writeln!(w, "mov r3, 1");
    // READ, WRITE, MAP_*: 1 <= len <= MAX_IO_LEN, each range inside, no overflow.
    let _ = writeln!(w, "io:");
    let _ = writeln!(w, "ldxw r6, [r1+{}]", off::LEN);
    let _ = writeln!(w, "jeq r6, 0, bad_len");
    let _ = writeln!(w, "jgt r6, {MAX_IO_LEN}, bad_len");
    let _ = writeln!(w, "jeq r3, 0, arena_range");
    let _ = writeln!(w, "ldxdw r7, [r1+{}]", off::OBJ_OFF);
    let _ = writeln!(w, "mov r8, r7");
    let _ = writeln!(w, "add r8, r6");
    let _ = writeln!(w, "jlt r8, r7, out_of_bounds");
    let _ = writeln!(w, "jgt r8, r5, out_of_bounds");
    let _ = writeln!(w, "arena_range:");
    let _ = writeln!(w, "ldxdw r7, [r1+{}]", off::ARENA_OFF);
    let _ = writeln!(w, "mov r8, r7");
    let _ = writeln!(w, "add r8, r6");
    let _ = writeln!(w, "jlt r8, r7, out_of_bounds");
    let _ = writeln!(w, "ldxdw r9, [r1+{}]", off::ARENA_SIZE);
    let _ = writeln!(w, "jgt r8, r9, out_of_bounds");
    let _ = writeln!(w, "ja accept");
    // Word operations: aligned, and the word inside the object, no overflow.
    let _ = writeln!(w, "word_op:");
    let _ = writeln!(w, "ldxdw r7, [r1+{}]", off::OBJ_OFF);
    let _ = writeln!(w, "mov r8, r7");
    let _ = writeln!(w, "and r8, 7");
    let _ = writeln!(w, "jne r8, 0, misaligned");
    let _ = writeln!(w, "mov r8, r7");
    let _ = writeln!(w, "add r8, 8");
    let _ = writeln!(w, "jlt r8, r7, out_of_bounds");
    let _ = writeln!(w, "jgt r8, r5, out_of_bounds");
    let _ = writeln!(w, "accept:\nmov r0, 0\nexit");
    let _ = writeln!(w, "bad_opcode:\nmov r0, 1\nexit");
    let _ = writeln!(w, "no_object:\nmov r0, 3\nexit");
    let _ = writeln!(w, "bad_len:\nmov r0, 4\nexit");
    let _ = writeln!(w, "out_of_bounds:\nmov r0, 5\nexit");
    let _ = writeln!(w, "misaligned:\nmov r0, 6\nexit");
    s
}

/// Rejects opcodes whose bit is clear in the context's `allowed_opcodes` (the stage's mask).
pub fn opcode_allowlist() -> String {
    format!(
        "ldxb r2, [r1+{op}]\n\
         jgt r2, 63, deny\n\
         mov r3, 1\n\
         lsh r3, r2\n\
         ldxdw r4, [r1+{mask}]\n\
         and r3, r4\n\
         jeq r3, 0, deny\n\
         mov r0, 0\n\
         exit\n\
         deny:\n\
         mov r0, {code}\n\
         exit\n",
        op = off::OPCODE,
        mask = off::ALLOWED_OPCODES,
        code = code::OPCODE_NOT_ALLOWED,
    )
}

/// Accepts only NOP, READ and LOAD64.
pub fn read_only() -> String {
    format!(
        "ldxb r2, [r1+{op}]\n\
         mov r0, 0\n\
         jeq r2, {nop}, done\n\
         jeq r2, {read}, done\n\
         jeq r2, {load}, done\n\
         mov r0, {code}\n\
         done:\n\
         exit\n",
        op = off::OPCODE,
        nop = opcode::NOP,
        read = opcode::READ,
        load = opcode::LOAD64,
        code = code::NOT_READ_ONLY,
    )
}

/// Accepts NOP, and entries whose object is one of `ids`.
pub fn object_allowlist(ids: &[u32]) -> String {
    let mut s = format!(
        "ldxb r2, [r1+{}]\nmov r0, 0\njeq r2, {}, done\nldxw r3, [r1+{}]\n",
        off::OPCODE,
        opcode::NOP,
        off::OBJ_ID
    );
    for id in ids {
        // jeq32 compares the low 32 bits, so ids above i32::MAX need no sign games.
        let _ = writeln!(s, "jeq32 r3, {}, done", *id as i32);
    }
    let _ = write!(s, "mov r0, {}\ndone:\nexit\n", code::OBJECT_NOT_ALLOWED);
    s
}
