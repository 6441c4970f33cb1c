// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * Host self-test of include/sbpf_validate.h: every row of the validation table in
 * docs/ABI.md, its order, its errno. Built and run by `make -C kmod selftest`.
 */
#include <stdio.h>
#include <string.h>

#include "sbpf_validate.h"

#define ARENA	8192ULL
#define OBJSZ	4096ULL

struct vcase {
	const char *name;
	struct sbpf_sqe sqe;
	int have_object;
	enum sbpf_fault want;
};

#define SQE(...) ((struct sbpf_sqe){ __VA_ARGS__ })
#define OK SBPF_FAULT_NONE

static const struct vcase cases[] = {
	/* accepted: one of each opcode */
	{ "nop", SQE(.opcode = SBPF_OP_NOP, .user_data = 7, .seq = 9), 0, OK },
	{ "read", SQE(.opcode = SBPF_OP_READ, .obj_id = 1, .obj_off = 64, .arena_off = 128, .len = 64), 1, OK },
	{ "write", SQE(.opcode = SBPF_OP_WRITE, .obj_id = 1, .len = 4096, .arena_off = 4096), 1, OK },
	{ "read-end", SQE(.opcode = SBPF_OP_READ, .obj_id = 1, .obj_off = OBJSZ - 1, .len = 1), 1, OK },
	{ "load", SQE(.opcode = SBPF_OP_LOAD64, .obj_id = 1, .obj_off = OBJSZ - 8), 1, OK },
	{ "store", SQE(.opcode = SBPF_OP_STORE64, .obj_id = 1, .val = ~0ULL), 1, OK },
	{ "fadd", SQE(.opcode = SBPF_OP_FETCH_ADD64, .obj_id = 1, .obj_off = 8, .val = 1), 1, OK },
	{ "cas", SQE(.opcode = SBPF_OP_CAS64, .obj_id = 1, .val = 1, .cmp = 2), 1, OK },
	/* row 1 */
	{ "r1-opcode-count", SQE(.opcode = SBPF_OP_COUNT), 1, SBPF_FAULT_OPCODE },
	{ "r1-opcode255", SQE(.opcode = 255), 1, SBPF_FAULT_OPCODE },
	{ "r1-flags", SQE(.opcode = SBPF_OP_NOP, .flags = 1), 0, SBPF_FAULT_OPCODE },
	{ "r1-before-r2", SQE(.opcode = SBPF_OP_COUNT + 2, .resv0 = 1), 0, SBPF_FAULT_OPCODE },
	/* BPF map opcodes: key and value in the arena only, flags BPF_ANY/NOEXIST/EXIST */
	{ "map-update", SQE(.opcode = SBPF_OP_MAP_UPDATE, .obj_id = 1, .len = 12, .val = SBPF_MAP_EXIST), 1, OK },
	{ "map-lookup-hash", SQE(.opcode = SBPF_OP_MAP_LOOKUP, .obj_id = 1, .arena_off = ARENA - 12, .len = 12), 1, OK },
	{ "map-delete", SQE(.opcode = SBPF_OP_MAP_DELETE, .obj_id = 1, .len = 4), 1, OK },
	{ "map-update-flags", SQE(.opcode = SBPF_OP_MAP_UPDATE, .obj_id = 1, .len = 12, .val = 3), 1, SBPF_FAULT_RESERVED },
	{ "map-lookup-val", SQE(.opcode = SBPF_OP_MAP_LOOKUP, .obj_id = 1, .len = 12, .val = 1), 1, SBPF_FAULT_RESERVED },
	{ "map-objoff", SQE(.opcode = SBPF_OP_MAP_DELETE, .obj_id = 1, .obj_off = 8, .len = 4), 1, SBPF_FAULT_RESERVED },
	{ "map-len0", SQE(.opcode = SBPF_OP_MAP_DELETE, .obj_id = 1), 1, SBPF_FAULT_LENGTH },
	{ "map-arena", SQE(.opcode = SBPF_OP_MAP_UPDATE, .obj_id = 1, .arena_off = ARENA - 11, .len = 12), 1, SBPF_FAULT_BOUNDS },
	{ "map-no-object", SQE(.opcode = SBPF_OP_MAP_LOOKUP, .obj_id = 2, .len = 12), 0, SBPF_FAULT_OBJECT },
	/* row 2 */
	{ "r2-resv0", SQE(.opcode = SBPF_OP_NOP, .resv0 = 1), 0, SBPF_FAULT_RESERVED },
	{ "r2-resv1", SQE(.opcode = SBPF_OP_LOAD64, .obj_id = 1, .resv1 = 1), 1, SBPF_FAULT_RESERVED },
	{ "r2-resv2", SQE(.opcode = SBPF_OP_READ, .obj_id = 1, .len = 8, .resv2 = 1), 1, SBPF_FAULT_RESERVED },
	/* row 3: each unused field of each opcode */
	{ "r3-nop-obj", SQE(.opcode = SBPF_OP_NOP, .obj_id = 1), 1, SBPF_FAULT_RESERVED },
	{ "r3-nop-objoff", SQE(.opcode = SBPF_OP_NOP, .obj_off = 8), 0, SBPF_FAULT_RESERVED },
	{ "r3-nop-arena", SQE(.opcode = SBPF_OP_NOP, .arena_off = 8), 0, SBPF_FAULT_RESERVED },
	{ "r3-nop-len", SQE(.opcode = SBPF_OP_NOP, .len = 8), 0, SBPF_FAULT_RESERVED },
	{ "r3-nop-val", SQE(.opcode = SBPF_OP_NOP, .val = 8), 0, SBPF_FAULT_RESERVED },
	{ "r3-nop-cmp", SQE(.opcode = SBPF_OP_NOP, .cmp = 8), 0, SBPF_FAULT_RESERVED },
	{ "r3-read-val", SQE(.opcode = SBPF_OP_READ, .obj_id = 1, .len = 8, .val = 1), 1, SBPF_FAULT_RESERVED },
	{ "r3-write-cmp", SQE(.opcode = SBPF_OP_WRITE, .obj_id = 1, .len = 8, .cmp = 1), 1, SBPF_FAULT_RESERVED },
	{ "r3-load-arena", SQE(.opcode = SBPF_OP_LOAD64, .obj_id = 1, .arena_off = 8), 1, SBPF_FAULT_RESERVED },
	{ "r3-load-len", SQE(.opcode = SBPF_OP_LOAD64, .obj_id = 1, .len = 8), 1, SBPF_FAULT_RESERVED },
	{ "r3-load-val", SQE(.opcode = SBPF_OP_LOAD64, .obj_id = 1, .val = 8), 1, SBPF_FAULT_RESERVED },
	{ "r3-load-cmp", SQE(.opcode = SBPF_OP_LOAD64, .obj_id = 1, .cmp = 8), 1, SBPF_FAULT_RESERVED },
	{ "r3-store-cmp", SQE(.opcode = SBPF_OP_STORE64, .obj_id = 1, .cmp = 8), 1, SBPF_FAULT_RESERVED },
	{ "r3-store-len", SQE(.opcode = SBPF_OP_STORE64, .obj_id = 1, .len = 8), 1, SBPF_FAULT_RESERVED },
	{ "r3-fadd-arena", SQE(.opcode = SBPF_OP_FETCH_ADD64, .obj_id = 1, .arena_off = 8), 1, SBPF_FAULT_RESERVED },
	{ "r3-fadd-cmp", SQE(.opcode = SBPF_OP_FETCH_ADD64, .obj_id = 1, .cmp = 8), 1, SBPF_FAULT_RESERVED },
	{ "r3-cas-len", SQE(.opcode = SBPF_OP_CAS64, .obj_id = 1, .len = 8), 1, SBPF_FAULT_RESERVED },
	{ "r3-cas-arena", SQE(.opcode = SBPF_OP_CAS64, .obj_id = 1, .arena_off = 8), 1, SBPF_FAULT_RESERVED },
	{ "r3-before-r4", SQE(.opcode = SBPF_OP_LOAD64, .obj_id = 5, .len = 1), 0, SBPF_FAULT_RESERVED },
	/* row 4 */
	{ "r4-read", SQE(.opcode = SBPF_OP_READ, .obj_id = 2, .len = 8), 0, SBPF_FAULT_OBJECT },
	{ "r4-cas", SQE(.opcode = SBPF_OP_CAS64, .obj_id = 0), 0, SBPF_FAULT_OBJECT },
	{ "r4-before-r5", SQE(.opcode = SBPF_OP_READ, .obj_id = 2, .len = 0), 0, SBPF_FAULT_OBJECT },
	{ "r4-before-r7", SQE(.opcode = SBPF_OP_LOAD64, .obj_id = 2, .obj_off = 3), 0, SBPF_FAULT_OBJECT },
	/* row 5 */
	{ "r5-len0", SQE(.opcode = SBPF_OP_READ, .obj_id = 1, .len = 0), 1, SBPF_FAULT_LENGTH },
	{ "r5-len-big", SQE(.opcode = SBPF_OP_WRITE, .obj_id = 1, .len = SBPF_MAX_IO_LEN + 1), 1, SBPF_FAULT_LENGTH },
	{ "r5-before-r6", SQE(.opcode = SBPF_OP_READ, .obj_id = 1, .len = 0, .obj_off = ~0ULL), 1, SBPF_FAULT_LENGTH },
	/* row 6 */
	{ "r6-obj-end", SQE(.opcode = SBPF_OP_READ, .obj_id = 1, .obj_off = OBJSZ - 7, .len = 8), 1, SBPF_FAULT_BOUNDS },
	{ "r6-obj-past", SQE(.opcode = SBPF_OP_READ, .obj_id = 1, .obj_off = OBJSZ + 8, .len = 8), 1, SBPF_FAULT_BOUNDS },
	{ "r6-obj-overflow", SQE(.opcode = SBPF_OP_WRITE, .obj_id = 1, .obj_off = ~0ULL - 3, .len = 8), 1, SBPF_FAULT_BOUNDS },
	{ "r6-arena-end", SQE(.opcode = SBPF_OP_READ, .obj_id = 1, .arena_off = ARENA - 63, .len = 64), 1, SBPF_FAULT_BOUNDS },
	{ "r6-arena-overflow", SQE(.opcode = SBPF_OP_WRITE, .obj_id = 1, .arena_off = ~0ULL, .len = 1), 1, SBPF_FAULT_BOUNDS },
	{ "r6-len-max-obj", SQE(.opcode = SBPF_OP_READ, .obj_id = 1, .len = SBPF_MAX_IO_LEN), 1, SBPF_FAULT_BOUNDS },
	/* row 7 */
	{ "r7-load", SQE(.opcode = SBPF_OP_LOAD64, .obj_id = 1, .obj_off = 4), 1, SBPF_FAULT_ALIGN },
	{ "r7-cas", SQE(.opcode = SBPF_OP_CAS64, .obj_id = 1, .obj_off = 1), 1, SBPF_FAULT_ALIGN },
	{ "r7-before-r8", SQE(.opcode = SBPF_OP_STORE64, .obj_id = 1, .obj_off = OBJSZ + 1), 1, SBPF_FAULT_ALIGN },
	/* row 8 */
	{ "r8-end", SQE(.opcode = SBPF_OP_LOAD64, .obj_id = 1, .obj_off = OBJSZ), 1, SBPF_FAULT_BOUNDS },
	{ "r8-overflow", SQE(.opcode = SBPF_OP_FETCH_ADD64, .obj_id = 1, .obj_off = ~0ULL - 7), 1, SBPF_FAULT_BOUNDS },
};

static const int want_errno[SBPF_FAULT_COUNT] = {
	[SBPF_FAULT_NONE] = 0,
	[SBPF_FAULT_OPCODE] = -EINVAL,
	[SBPF_FAULT_RESERVED] = -EINVAL,
	[SBPF_FAULT_OBJECT] = -ENOENT,
	[SBPF_FAULT_LENGTH] = -EINVAL,
	[SBPF_FAULT_BOUNDS] = -EFAULT,
	[SBPF_FAULT_ALIGN] = -EINVAL,
};

int main(void)
{
	unsigned int i, failed = 0, seen = 0;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct vcase *c = &cases[i];
		enum sbpf_fault got = sbpf_check_entry(&c->sqe, ARENA, c->have_object, OBJSZ);

		seen |= 1U << got;
		if (got != c->want) {
			printf("FAIL %s: fault %d, want %d\n", c->name, got, c->want);
			failed++;
		}
	}
	for (i = 0; i < SBPF_FAULT_COUNT; i++) {
		if (sbpf_fault_errno(i) != want_errno[i]) {
			printf("FAIL errno of fault %u: %d\n", i, sbpf_fault_errno(i));
			failed++;
		}
		if (!(seen & (1U << i))) {
			printf("FAIL fault %u never produced\n", i);
			failed++;
		}
	}
	printf("validate_selftest: %zu cases, %u failed\n", sizeof(cases) / sizeof(cases[0]),
	       failed);
	return failed ? 1 : 0;
}
