// SPDX-License-Identifier: MIT OR Apache-2.0
//
// Constant tables in .rodata: the largest I/O length allowed per opcode, and a list of
// object ids that may be written.
//
// Return codes: 0 accept, 40 unknown opcode, 41 too long for the opcode, 42 object not
// writable.

#include "sbpf_guard.h"

static const sbpf_u32 max_len[7] = { 0, 65536, 4096, 0, 0, 0, 0 };
static const sbpf_u32 writable[5] = { 2, 3, 5, 8, 13 };

__attribute__((section("sbpf_guard"), used))
sbpf_u64 guard(const struct sbpf_guard_ctx *ctx)
{
	sbpf_u8 op = ctx->sqe.opcode;

	if (op > SBPF_OP_CAS64)
		return 40;
	if (ctx->sqe.len > max_len[op])
		return 41;
	if (op == SBPF_OP_WRITE || op == SBPF_OP_STORE64) {
		for (int i = 0; i < 5; i++)
			if (*(volatile const sbpf_u32 *)&writable[i] == ctx->sqe.obj_id)
				return 0;
		return 42;
	}
	return 0;
}
