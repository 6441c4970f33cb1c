/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * The consumer's validation of its private copy of a submission entry: the table in
 * docs/ABI.md, in its order. Plain C over the uapi types, so that the same code compiles
 * in the module and in user space (kmod/tests/validate_selftest.c, and the Rust
 * differential test against ring/src/validate.rs).
 *
 * The checks are split around the object lookup (row 4), which only the caller can do:
 *
 *	fault = sbpf_check_fields(&copy);			rows 1-3
 *	if (!fault && copy.opcode != SBPF_OP_NOP)
 *		look up copy.obj_id; if absent: SBPF_FAULT_OBJECT	row 4
 *	if (!fault)
 *		fault = sbpf_check_bounds(&copy, arena, size);	rows 5-8
 *
 * sbpf_check_entry() is the same sequence with the lookup's answer passed in.
 */
#ifndef _SBPF_VALIDATE_H
#define _SBPF_VALIDATE_H

#ifdef __KERNEL__
#include <linux/errno.h>
#else
#include <errno.h>
#endif
#include "uapi/sbpf_ring.h"

/* Numbered as ring/src/validate.rs's Fault. */
enum sbpf_fault {
	SBPF_FAULT_NONE = 0,
	SBPF_FAULT_OPCODE = 1,		/* unknown opcode or entry flags */
	SBPF_FAULT_RESERVED = 2,	/* reserved or unused field not zero */
	SBPF_FAULT_OBJECT = 3,		/* object not attached */
	SBPF_FAULT_LENGTH = 4,		/* READ/WRITE length 0 or above SBPF_MAX_IO_LEN */
	SBPF_FAULT_BOUNDS = 5,		/* outside the object or the arena */
	SBPF_FAULT_ALIGN = 6,		/* word operation not 8-byte aligned */
	SBPF_FAULT_COUNT = 7,
};

/* The negative errno a completion carries for @fault (0 for SBPF_FAULT_NONE). */
static inline int sbpf_fault_errno(enum sbpf_fault fault)
{
	switch (fault) {
	case SBPF_FAULT_NONE:
		return 0;
	case SBPF_FAULT_OBJECT:
		return -ENOENT;
	case SBPF_FAULT_BOUNDS:
		return -EFAULT;
	default:
		return -EINVAL;
	}
}

/* True when [off, off + len) lies inside [0, limit), computed without overflow. */
static inline int sbpf_range_ok(__u64 off, __u64 len, __u64 limit)
{
	return off <= limit && len <= limit - off;
}

/* Rows 1-3: opcode and flags, reserved fields, fields the opcode does not use. */
static inline enum sbpf_fault sbpf_check_fields(const struct sbpf_sqe *sqe)
{
	int unused;

	if (sqe->opcode >= SBPF_OP_COUNT || sqe->flags != 0)
		return SBPF_FAULT_OPCODE;
	if (sqe->resv0 != 0 || sqe->resv1 != 0 || sqe->resv2 != 0)
		return SBPF_FAULT_RESERVED;

	switch (sqe->opcode) {
	case SBPF_OP_NOP:
		unused = sqe->obj_id || sqe->obj_off || sqe->arena_off || sqe->len ||
			 sqe->val || sqe->cmp;
		break;
	case SBPF_OP_READ:
	case SBPF_OP_WRITE:
		unused = sqe->val || sqe->cmp;
		break;
	case SBPF_OP_LOAD64:
		unused = sqe->arena_off || sqe->len || sqe->val || sqe->cmp;
		break;
	case SBPF_OP_STORE64:
	case SBPF_OP_FETCH_ADD64:
		unused = sqe->arena_off || sqe->len || sqe->cmp;
		break;
	case SBPF_OP_MAP_UPDATE:
		/* val holds BPF's flags: BPF_ANY, BPF_NOEXIST or BPF_EXIST */
		unused = sqe->obj_off || sqe->cmp || sqe->val > SBPF_MAP_EXIST;
		break;
	case SBPF_OP_MAP_LOOKUP:
	case SBPF_OP_MAP_DELETE:
		unused = sqe->obj_off || sqe->val || sqe->cmp;
		break;
	default: /* SBPF_OP_CAS64 */
		unused = sqe->arena_off || sqe->len;
		break;
	}
	return unused ? SBPF_FAULT_RESERVED : SBPF_FAULT_NONE;
}

/*
 * Rows 5-8 (and the MAP_* rows 5-6), for an entry that passed sbpf_check_fields() and whose object (size
 * @object_size) was found. Not for NOP.
 */
static inline enum sbpf_fault sbpf_check_bounds(const struct sbpf_sqe *sqe, __u64 arena_size,
						__u64 object_size)
{
	if (sqe->opcode == SBPF_OP_READ || sqe->opcode == SBPF_OP_WRITE) {
		if (sqe->len == 0 || sqe->len > SBPF_MAX_IO_LEN)
			return SBPF_FAULT_LENGTH;
		if (!sbpf_range_ok(sqe->obj_off, sqe->len, object_size) ||
		    !sbpf_range_ok(sqe->arena_off, sqe->len, arena_size))
			return SBPF_FAULT_BOUNDS;
		return SBPF_FAULT_NONE;
	}
	if (sqe->opcode >= SBPF_OP_MAP_UPDATE) {
		/*
		 * Key and value are in the arena only; the caller checks len against the
		 * map's key and value sizes.
		 */
		if (sqe->len == 0 || sqe->len > SBPF_MAX_IO_LEN)
			return SBPF_FAULT_LENGTH;
		if (!sbpf_range_ok(sqe->arena_off, sqe->len, arena_size))
			return SBPF_FAULT_BOUNDS;
		return SBPF_FAULT_NONE;
	}
	if (sqe->obj_off % 8 != 0)
		return SBPF_FAULT_ALIGN;
	if (!sbpf_range_ok(sqe->obj_off, 8, object_size))
		return SBPF_FAULT_BOUNDS;
	return SBPF_FAULT_NONE;
}

/*
 * The whole table. @have_object says whether sqe->obj_id names an attached object, and
 * @object_size is its size (ignored when @have_object is 0).
 */
static inline enum sbpf_fault sbpf_check_entry(const struct sbpf_sqe *sqe, __u64 arena_size,
					       int have_object, __u64 object_size)
{
	enum sbpf_fault fault = sbpf_check_fields(sqe);

	if (fault != SBPF_FAULT_NONE || sqe->opcode == SBPF_OP_NOP)
		return fault;
	if (!have_object)
		return SBPF_FAULT_OBJECT;
	return sbpf_check_bounds(sqe, arena_size, object_size);
}

#endif /* _SBPF_VALIDATE_H */
