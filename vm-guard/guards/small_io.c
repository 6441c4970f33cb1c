// SPDX-License-Identifier: MIT OR Apache-2.0
//
// An example guard in restricted C: READ and WRITE of at most 4 KiB, inside the first
// object's first megabyte, and never a WRITE to object 1. Build:
//
//     clang -target bpf -O2 -c small_io.c -I ../include -o small_io.o
//
// Return codes: 0 accept, 20 too long, 21 too far into the object, 22 write to object 1.

#include "sbpf_guard.h"

#define MAX_IO 4096
#define MAX_OFF (1u << 20)

__attribute__((section("sbpf_guard"), used))
sbpf_u64 guard(const struct sbpf_guard_ctx *ctx)
{
	sbpf_u8 op = ctx->sqe.opcode;

	if (op != SBPF_OP_READ && op != SBPF_OP_WRITE)
		return 0;
	if (ctx->sqe.len > MAX_IO)
		return 20;
	if (ctx->sqe.obj_off > MAX_OFF)
		return 21;
	if (op == SBPF_OP_WRITE && ctx->sqe.obj_id == 1)
		return 22;
	return 0;
}
