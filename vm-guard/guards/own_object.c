// SPDX-License-Identifier: MIT OR Apache-2.0
//
// The entry's own object, as the producer resolved it (context version 2): one load,
// whatever the ring's object count (up to 64), instead of a scan of the first eight.
// Bounds and alignment as the consumer checks them, and the object's rights.
//
// Return codes: 0 accept, 3 no such object attached, 5 out of bounds, 6 misaligned,
// 16 the object does not allow the operation, 71 a context older than version 2.

#include "sbpf_guard.h"

__attribute__((section("sbpf_guard"), used))
sbpf_u64 guard(const struct sbpf_guard_ctx *ctx)
{
	const struct sbpf_guard_sqe *s = &ctx->sqe;
	const struct sbpf_guard_object *o = &ctx->object;
	sbpf_u32 need;
	sbpf_u64 len, end;

	if (ctx->version < 2)
		return 71;
	if (s->opcode == SBPF_OP_NOP)
		return 0;
	if (o->rights == 0)
		return 3;
	switch (s->opcode) {
	case SBPF_OP_READ:
	case SBPF_OP_LOAD64:
		need = SBPF_RIGHT_READ;
		break;
	case SBPF_OP_WRITE:
	case SBPF_OP_STORE64:
		need = SBPF_RIGHT_WRITE;
		break;
	default:
		need = SBPF_RIGHT_READ | SBPF_RIGHT_WRITE;
		break;
	}
	if ((o->rights & need) != need)
		return 16;
	if (s->opcode == SBPF_OP_READ || s->opcode == SBPF_OP_WRITE)
		len = s->len;
	else if (s->obj_off & 7)
		return 6;
	else
		len = 8;
	end = s->obj_off + len;
	if (end < s->obj_off || end > o->size)
		return 5;
	return 0;
}
