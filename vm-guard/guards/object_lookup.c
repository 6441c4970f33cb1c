// SPDX-License-Identifier: MIT OR Apache-2.0
//
// Object lookup by a loop over ctx->objects[]: a non-NOP entry must name an attached object,
// and a READ or WRITE must stay inside it (obj_off + len <= size, without overflow).
//
// Return codes: 0 accept, 3 object not attached, 5 out of the object's bounds.

#include "sbpf_guard.h"

__attribute__((section("sbpf_guard"), used))
sbpf_u64 guard(const struct sbpf_guard_ctx *ctx)
{
	const struct sbpf_guard_sqe *s = &ctx->sqe;
	sbpf_u32 n = ctx->nobjects;

	if (s->opcode == SBPF_OP_NOP)
		return 0;
	if (n > SBPF_GUARD_MAX_OBJECTS)
		n = SBPF_GUARD_MAX_OBJECTS;
	for (sbpf_u32 i = 0; i < n; i++) {
		const struct sbpf_guard_object *o = &ctx->objects[i];

		if (o->id != s->obj_id)
			continue;
		if (s->opcode != SBPF_OP_READ && s->opcode != SBPF_OP_WRITE)
			return 0;
		if (s->obj_off + s->len < s->obj_off || s->obj_off + s->len > o->size)
			return 5;
		return 0;
	}
	return 3;
}
