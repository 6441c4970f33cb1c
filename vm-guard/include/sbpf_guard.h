/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * sbpf_guard.h - the context an sbpf-ring guard program reads.
 *
 * A guard is an eBPF function `__u64 guard(const struct sbpf_guard_ctx *ctx)`: it returns 0
 * to accept the submission entry and a non-zero reason code to reject it. Build it with
 *
 *     clang -target bpf -mcpu=v2 -O2 -c guard.c -o guard.o
 *
 * (-mcpu=v2, or v1: newer clangs default to v3, whose 32-bit register moves the verifier
 * refuses because rbpf's two engines disagree on them) and load it with `sbpf-ring guard verify guard.o` (add -g: a rejection then names the C
 * line). The verifier (vm-guard/src/verifier/) proves every path safe, as the kernel's does:
 * loops over ctx->objects[] and other bounded loops, pointers into ctx kept in registers or
 * spilled to the stack, local variables on the 512-byte stack (a stack array only at constant
 * indexes), switches, and constant tables (`static const`, in .rodata, at any bounded index)
 * are all fine. What it refuses: an access it
 * cannot prove inside ctx, the stack or the constant data on every path (bound every index
 * with a comparison first), a read of stack bytes not written on that path, any store outside
 * the stack (ctx is read-only; no writable globals or maps), a loop it cannot see end within
 * its budget, calls (`static inline` helpers are fine; non-inlined functions are not), and
 * anything that would turn a pointer into a number (returning, comparing or masking it).
 * At most 512 instructions by default. Ranges are per register, not relations between
 * them: a loop over objects[] that starts at an index read from ctx is refused (the
 * pointer and the counter widen apart); start at 0 and skip (`if (i < first) continue;`).
 * A pointer is never compared, not even with NULL: keep a found index (or a flag) rather
 * than a found-or-NULL pointer (clang -O2 usually turns the latter into one anyway).
 *
 * Layout version SBPF_GUARD_CTX_VERSION; the same bytes as `sbpf_guard::context` in Rust
 * (vm-guard/src/context.rs), little-endian, checked field by field by vm-guard/tests/c_guards.rs.
 * Fields are only ever appended.
 *
 * Self-contained: no system headers, so it compiles for `-target bpf` as it is.
 */
#ifndef SBPF_GUARD_H
#define SBPF_GUARD_H

typedef __UINT8_TYPE__ sbpf_u8;
typedef __UINT16_TYPE__ sbpf_u16;
typedef __UINT32_TYPE__ sbpf_u32;
typedef __UINT64_TYPE__ sbpf_u64;

#define SBPF_GUARD_CTX_VERSION 2
/* Entries of ctx->objects[]: the ring's first objects by id (a ring has up to 64). */
#define SBPF_GUARD_MAX_OBJECTS 8

/* Bits of struct sbpf_guard_object.rights. */
#define SBPF_RIGHT_READ (1u << 0)
#define SBPF_RIGHT_WRITE (1u << 1)
#define SBPF_RIGHT_MAP (1u << 2)

/* Opcodes of a submission entry (docs/ABI.md). */
#define SBPF_OP_NOP 0
#define SBPF_OP_READ 1
#define SBPF_OP_WRITE 2
#define SBPF_OP_LOAD64 3
#define SBPF_OP_STORE64 4
#define SBPF_OP_FETCH_ADD64 5
#define SBPF_OP_CAS64 6
#define SBPF_OP_MAP_UPDATE 7
#define SBPF_OP_MAP_LOOKUP 8
#define SBPF_OP_MAP_DELETE 9

/* The submission entry: the bytes of `struct sbpf_sqe` in kmod/include/uapi/sbpf_ring.h. */
struct sbpf_guard_sqe {
	sbpf_u8 opcode;
	sbpf_u8 flags;
	sbpf_u16 resv0;
	sbpf_u32 obj_id;
	sbpf_u64 obj_off;
	sbpf_u64 arena_off;
	sbpf_u32 len;
	sbpf_u32 resv1;
	sbpf_u64 user_data;
	sbpf_u64 val;
	sbpf_u64 cmp;
	sbpf_u32 resv2;
	sbpf_u32 seq;
};

struct sbpf_guard_object {
	sbpf_u32 id;
	sbpf_u32 rights;		/* SBPF_RIGHT_*; in `object`, 0: no such object attached */
	sbpf_u64 size;			/* bytes (0 for a hash map) */
};

struct sbpf_guard_ctx {
	struct sbpf_guard_sqe sqe;	/* 0: the entry under judgement */
	sbpf_u32 version;		/* 64: SBPF_GUARD_CTX_VERSION */
	sbpf_u32 size;			/* 68: sizeof(struct sbpf_guard_ctx) */
	sbpf_u32 nobjects;		/* 72: meaningful entries of objects[] */
	sbpf_u32 resv;			/* 76: zero */
	sbpf_u64 arena_size;		/* 80: data arena, bytes */
	sbpf_u64 allowed_opcodes;	/* 88: bit n: opcode n allowed by this stage's configuration */
	struct sbpf_guard_object objects[SBPF_GUARD_MAX_OBJECTS]; /* 96: the first objects by id */
	struct sbpf_guard_object object; /* 224 (version 2): the entry's own object, or zeros */
};

#define SBPF_GUARD_ASSERT_OFF(type, field, off) \
	_Static_assert(__builtin_offsetof(type, field) == (off), #type "." #field " moved")

SBPF_GUARD_ASSERT_OFF(struct sbpf_guard_sqe, obj_id, 4);
SBPF_GUARD_ASSERT_OFF(struct sbpf_guard_sqe, obj_off, 8);
SBPF_GUARD_ASSERT_OFF(struct sbpf_guard_sqe, arena_off, 16);
SBPF_GUARD_ASSERT_OFF(struct sbpf_guard_sqe, len, 24);
SBPF_GUARD_ASSERT_OFF(struct sbpf_guard_sqe, user_data, 32);
SBPF_GUARD_ASSERT_OFF(struct sbpf_guard_sqe, val, 40);
SBPF_GUARD_ASSERT_OFF(struct sbpf_guard_sqe, cmp, 48);
SBPF_GUARD_ASSERT_OFF(struct sbpf_guard_sqe, seq, 60);
_Static_assert(sizeof(struct sbpf_guard_sqe) == 64, "sqe is 64 bytes");
SBPF_GUARD_ASSERT_OFF(struct sbpf_guard_ctx, version, 64);
SBPF_GUARD_ASSERT_OFF(struct sbpf_guard_ctx, size, 68);
SBPF_GUARD_ASSERT_OFF(struct sbpf_guard_ctx, nobjects, 72);
SBPF_GUARD_ASSERT_OFF(struct sbpf_guard_ctx, arena_size, 80);
SBPF_GUARD_ASSERT_OFF(struct sbpf_guard_ctx, allowed_opcodes, 88);
SBPF_GUARD_ASSERT_OFF(struct sbpf_guard_ctx, objects, 96);
_Static_assert(sizeof(struct sbpf_guard_object) == 16, "object entry is 16 bytes");
SBPF_GUARD_ASSERT_OFF(struct sbpf_guard_ctx, object, 224);
_Static_assert(sizeof(struct sbpf_guard_ctx) == 240, "context is 240 bytes");

#endif /* SBPF_GUARD_H */
