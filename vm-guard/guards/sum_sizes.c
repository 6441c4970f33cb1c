// SPDX-License-Identifier: MIT OR Apache-2.0
//
// A bounded loop summing the sizes of the attached objects: refuse every non-NOP entry when
// the objects together are larger than the arena (a misconfigured ring), or when there are
// none.
//
// Return codes: 0 accept, 60 no objects, 61 objects larger than the arena.

#include "sbpf_guard.h"

__attribute__((section("sbpf_guard"), used))
sbpf_u64 guard(const struct sbpf_guard_ctx *ctx)
{
	sbpf_u64 total = 0;
	sbpf_u32 n = ctx->nobjects;

	if (ctx->sqe.opcode == SBPF_OP_NOP)
		return 0;
	if (n == 0)
		return 60;
	for (sbpf_u32 i = 0; i < SBPF_GUARD_MAX_OBJECTS && i < n; i++) {
		sbpf_u64 sz = ctx->objects[i].size;

		if (total + sz < total)
			return 61;
		total += sz;
	}
	return total > ctx->arena_size ? 61 : 0;
}
