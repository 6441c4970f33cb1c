// SPDX-License-Identifier: MIT OR Apache-2.0
//
// Range checks on the arena side of an I/O: the arena range must not overflow, must stay
// inside the arena, must not straddle a 64 KiB window, and user_data must be even.
//
// Return codes: 0 accept, 50 overflow, 51 outside the arena, 52 straddles a window,
// 53 odd user_data.

#include "sbpf_guard.h"

__attribute__((section("sbpf_guard"), used))
sbpf_u64 guard(const struct sbpf_guard_ctx *ctx)
{
	sbpf_u8 op = ctx->sqe.opcode;
	sbpf_u64 start = ctx->sqe.arena_off;
	sbpf_u64 end = start + ctx->sqe.len;

	if (op != SBPF_OP_READ && op != SBPF_OP_WRITE)
		return 0;
	if (end < start)
		return 50;
	if (end > ctx->arena_size)
		return 51;
	if (ctx->sqe.len != 0 && (start >> 16) != ((end - 1) >> 16))
		return 52;
	if (ctx->sqe.user_data & 1)
		return 53;
	return 0;
}
