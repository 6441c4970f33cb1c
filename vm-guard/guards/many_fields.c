// SPDX-License-Identifier: MIT OR Apache-2.0
//
// A guard that reads a dozen fields and keeps them all live across a hash of all of them,
// so clang runs out of registers and spills to the stack: every reserved field must be zero,
// the context version known, and no field of the entry may equal the hash of the others
// (a toy "tamper" check whose point is the register pressure).
//
// Return codes: 0 accept, 70 reserved field set, 71 unknown context version,
// 72 + i: field i equals the hash.

#include "sbpf_guard.h"

__attribute__((section("sbpf_guard"), used))
sbpf_u64 guard(const struct sbpf_guard_ctx *ctx)
{
	const struct sbpf_guard_sqe *s = &ctx->sqe;
	sbpf_u64 f[12] = {
		s->opcode, s->flags, s->resv0, s->obj_id, s->obj_off, s->arena_off,
		s->len, s->resv1, s->user_data, s->val, s->cmp, s->seq,
	};
	sbpf_u64 h = 0;

	if (ctx->version != SBPF_GUARD_CTX_VERSION && ctx->version != 2)
		return 71;
	if (f[1] | f[2] | f[7] | s->resv2)
		return 70;
	for (int i = 0; i < 12; i++)
		h = (h ^ f[i]) * 0x100000001b3ull;
	for (int i = 0; i < 12; i++)
		if (f[i] == h)
			return 72 + i;
	return 0;
}
