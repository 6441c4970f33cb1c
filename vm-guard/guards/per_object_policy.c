// SPDX-License-Identifier: MIT OR Apache-2.0
//
// Per-object policy by a switch on the object id:
//   object 1: read-only (NOP, READ, LOAD64);
//   object 2: I/O of at most 64 bytes;
//   object 3: 8-byte-aligned word operations only;
//   objects 4 and 5: anything;
//   any other object: refused.
//
// Return codes: 0 accept, 30 not read-only, 31 too long, 32 not an aligned word op,
// 33 unknown object.

#include "sbpf_guard.h"

__attribute__((section("sbpf_guard"), used))
sbpf_u64 guard(const struct sbpf_guard_ctx *ctx)
{
	sbpf_u8 op = ctx->sqe.opcode;

	if (op == SBPF_OP_NOP)
		return 0;
	switch (ctx->sqe.obj_id) {
	case 1:
		if (op != SBPF_OP_READ && op != SBPF_OP_LOAD64)
			return 30;
		return 0;
	case 2:
		if (ctx->sqe.len > 64)
			return 31;
		return 0;
	case 3:
		if (op < SBPF_OP_LOAD64 || (ctx->sqe.obj_off & 7) != 0)
			return 32;
		return 0;
	case 4:
	case 5:
		return 0;
	default:
		return 33;
	}
}
