/* SPDX-License-Identifier: (GPL-2.0 WITH Linux-syscall-note) OR MIT */
/*
 * sbpf_ring user/kernel ABI. The same bytes as ring/src/abi.rs; both sides pin every
 * offset and size at compile time, and ring/tests/abi_c.rs compares them.
 *
 * Ring region (mmap at SBPF_OFF_RING), "kernel" meaning the ring's consumer:
 *
 *   0    u32 sq head          kernel
 *   64   u32 sq tail          producers
 *   128  u32 sq flags         kernel (SBPF_SQ_NEED_WAKEUP)
 *   132  u32 sq ring mask     kernel, at setup
 *   136  u32 sq ring entries  kernel, at setup
 *   192  u32 cq head          completion consumer
 *   256  u32 cq tail          kernel
 *   320  u32 cq flags         kernel
 *   324  u32 cq ring mask     kernel, at setup
 *   328  u32 cq ring entries  kernel, at setup
 *   384  struct sbpf_stats    kernel (a mirror; the ioctl is authoritative)
 *   512  struct sbpf_sqe[sq_entries]   producers
 *   ...  struct sbpf_cqe[cq_entries]   kernel
 *
 * The data arena is a second mapping at SBPF_OFF_ARENA.
 */
#ifndef _UAPI_SBPF_RING_H
#define _UAPI_SBPF_RING_H

#ifdef __KERNEL__
#include <linux/types.h>
#include <linux/ioctl.h>
#else
#include <stdint.h>
#include <sys/ioctl.h>
typedef uint8_t __u8;
typedef uint16_t __u16;
typedef uint32_t __u32;
typedef uint64_t __u64;
typedef int32_t __s32;
#endif

#define SBPF_OFF_RING		0ULL
#define SBPF_OFF_ARENA		0x10000000ULL

#define SBPF_MAX_SQ_ENTRIES	(1U << 15)
#define SBPF_MAX_CQ_ENTRIES	(1U << 16)
#define SBPF_MAX_ARENA_SIZE	(1ULL << 30)
#define SBPF_MAX_OBJECT_SIZE	(1ULL << 30)
#define SBPF_MAX_IO_LEN		(1U << 20)
#define SBPF_RING_HEADER_SIZE	512U

#define SBPF_SETUP_SQPOLL	(1U << 0)
#define SBPF_SETUP_CQSIZE	(1U << 1)
#define SBPF_SETUP_FLAGS_ALL	(SBPF_SETUP_SQPOLL | SBPF_SETUP_CQSIZE)

#define SBPF_SQ_NEED_WAKEUP	(1U << 0)

#define SBPF_ENTER_SQ_WAKEUP	(1U << 0)
#define SBPF_ENTER_GETEVENTS	(1U << 1)
#define SBPF_ENTER_FLAGS_ALL	(SBPF_ENTER_SQ_WAKEUP | SBPF_ENTER_GETEVENTS)

enum sbpf_opcode {
	SBPF_OP_NOP = 0,	/* result 0 */
	SBPF_OP_READ = 1,	/* object[obj_off..+len] -> arena[arena_off..]; result len */
	SBPF_OP_WRITE = 2,	/* arena[arena_off..+len] -> object[obj_off..]; result len */
	SBPF_OP_LOAD64 = 3,	/* value = object word at obj_off */
	SBPF_OP_STORE64 = 4,	/* object word at obj_off = val */
	SBPF_OP_FETCH_ADD64 = 5, /* value = old word; word += val */
	SBPF_OP_CAS64 = 6,	/* value = old word; if old == cmp: word = val, result 1; else 0 */
	/* BPF maps (docs/ABI.md "BPF maps"): key at arena_off, the value right after it */
	SBPF_OP_MAP_UPDATE = 7,	/* len = key + value size, val = BPF_ANY/NOEXIST/EXIST */
	SBPF_OP_MAP_LOOKUP = 8,	/* len = key + value size; value -> arena; -ENOENT if absent */
	SBPF_OP_MAP_DELETE = 9,	/* len = key size */
	SBPF_OP_COUNT = 10,
};

/* MAP_UPDATE flags (val), the values of BPF_ANY, BPF_NOEXIST and BPF_EXIST. */
#define SBPF_MAP_ANY		0ULL
#define SBPF_MAP_NOEXIST	1ULL
#define SBPF_MAP_EXIST		2ULL

/* Rights of an object (struct sbpf_map_attach.rights; ring/src/validate.rs rights). */
#define SBPF_RIGHT_READ		(1U << 0)	/* READ, LOAD64, MAP_LOOKUP */
#define SBPF_RIGHT_WRITE	(1U << 1)	/* WRITE, STORE64, FETCH_ADD64, CAS64, MAP_UPDATE/DELETE */
#define SBPF_RIGHT_MAP		(1U << 2)	/* a BPF map: MAP_* opcodes address it by key */

/* Submission entry, 64 bytes, written by a producer; seq (release) publishes it. */
struct sbpf_sqe {
	__u8	opcode;
	__u8	flags;		/* none defined: must be 0 */
	__u16	resv0;		/* must be 0 */
	__u32	obj_id;
	__u64	obj_off;
	__u64	arena_off;
	__u32	len;
	__u32	resv1;		/* must be 0 */
	__u64	user_data;
	__u64	val;
	__u64	cmp;
	__u32	resv2;		/* must be 0 */
	__u32	seq;		/* pos + 1 once the entry at position pos is published */
};

/* Completion entry, 32 bytes, written by the kernel. */
struct sbpf_cqe {
	__u64	user_data;
	__s32	res;		/* >= 0 on success, else -errno */
	__u32	flags;
	__u64	value;
	__u64	resv;
};

struct sbpf_sq_offsets {
	__u32	head;
	__u32	tail;
	__u32	flags;
	__u32	ring_mask;
	__u32	ring_entries;
	__u32	sqes;
	__u32	resv[2];
};

struct sbpf_cq_offsets {
	__u32	head;
	__u32	tail;
	__u32	flags;
	__u32	ring_mask;
	__u32	ring_entries;
	__u32	cqes;
	__u32	stats;
	__u32	resv;
};

struct sbpf_params {
	__u32	sq_entries;	/* in/out */
	__u32	cq_entries;	/* in with SBPF_SETUP_CQSIZE; out */
	__u32	flags;		/* in */
	__u32	sq_idle_ms;	/* in; out: the spin in force (SQPOLL), else 0 */
	__u64	arena_size;	/* in */
	__u64	ring_size;	/* out */
	__u32	features;	/* out */
	__u32	resv0;
	struct sbpf_sq_offsets sq_off;	/* out */
	struct sbpf_cq_offsets cq_off;	/* out */
	__u64	resv[4];
};

struct sbpf_enter {
	__u32	to_submit;
	__u32	min_complete;
	__u32	flags;
	__u32	resv;
	__u64	timeout_ns;
};

/*
 * An object id is (generation << SBPF_OBJ_INDEX_BITS) | index, never 0. Indices are
 * allocated cyclically and reused once their object is gone; the generation (the upper
 * 12 bits) counts the laps of the index space, so an id held after its object is gone
 * answers ENOENT instead of reaching a new object at the same index until 2^12 laps
 * (about 2^32 creations) later.
 */
#define SBPF_OBJ_INDEX_BITS	20

struct sbpf_object {
	__u32	id;
	__u32	flags;		/* must be 0 */
	__u64	size;
};

/*
 * Attaches a BPF map (array, hash, LRU hash) by fd as an object of this file. The module
 * holds a reference on the map until the object is detached (SBPF_IOC_OBJ_DETACH) or the
 * file is released. The fd's open mode decides the rights; a frozen map refuses writes.
 */
struct sbpf_map_attach {
	__s32	fd;		/* in: BPF map fd */
	__u32	flags;		/* in: must be 0 */
	__u32	id;		/* out: object id */
	__u32	map_type;	/* out: BPF_MAP_TYPE_* */
	__u32	key_size;	/* out */
	__u32	value_size;	/* out */
	__u32	max_entries;	/* out */
	__u32	rights;		/* out: SBPF_RIGHT_* */
	__u64	size;		/* out: bytes READ/WRITE/word ops address (array maps), else 0 */
	__u64	resv[2];	/* must be 0 */
};

struct sbpf_sync_op {
	struct sbpf_sqe sqe;	/* in */
	struct sbpf_cqe cqe;	/* out */
};

struct sbpf_stats {
	__u64	submitted;
	__u64	completed;
	__u64	rejected;
	__u64	rejected_opcode;
	__u64	rejected_reserved;
	__u64	rejected_object;
	__u64	rejected_bounds;
	__u64	rejected_align;
	__u64	wakeups;
	__u64	cq_full;
	__u64	sync_ops;
	__u64	resv[5];
};

#define SBPF_SQ_HEAD_OFF	0U
#define SBPF_SQ_TAIL_OFF	64U
#define SBPF_SQ_FLAGS_OFF	128U
#define SBPF_SQ_MASK_OFF	132U
#define SBPF_SQ_ENTRIES_OFF	136U
#define SBPF_CQ_HEAD_OFF	192U
#define SBPF_CQ_TAIL_OFF	256U
#define SBPF_CQ_FLAGS_OFF	320U
#define SBPF_CQ_MASK_OFF	324U
#define SBPF_CQ_ENTRIES_OFF	328U
#define SBPF_STATS_OFF		384U
#define SBPF_SQES_OFF		SBPF_RING_HEADER_SIZE

#define SBPF_IOC_MAGIC		0xBF
#define SBPF_IOC_SETUP		_IOWR(SBPF_IOC_MAGIC, 0, struct sbpf_params)
#define SBPF_IOC_ENTER		_IOW(SBPF_IOC_MAGIC, 1, struct sbpf_enter)
#define SBPF_IOC_OBJ_CREATE	_IOWR(SBPF_IOC_MAGIC, 2, struct sbpf_object)
#define SBPF_IOC_OBJ_ATTACH	_IOWR(SBPF_IOC_MAGIC, 3, struct sbpf_object)
#define SBPF_IOC_OBJ_DETACH	_IOW(SBPF_IOC_MAGIC, 4, struct sbpf_object)
#define SBPF_IOC_OBJ_SELECT	_IOW(SBPF_IOC_MAGIC, 5, struct sbpf_object)
#define SBPF_IOC_SYNC_OP	_IOWR(SBPF_IOC_MAGIC, 6, struct sbpf_sync_op)
#define SBPF_IOC_STATS		_IOR(SBPF_IOC_MAGIC, 7, struct sbpf_stats)
/*
 * Closes the ring: idempotent; once it returns nothing consumes another entry (the poller
 * is joined), sq head names the first entry never consumed, waiters are woken, later
 * ENTERs fail with ESHUTDOWN unless GETEVENTS finds min_complete completions ready.
 */
#define SBPF_IOC_SHUTDOWN	_IO(SBPF_IOC_MAGIC, 8)
#define SBPF_IOC_MAP_ATTACH	_IOWR(SBPF_IOC_MAGIC, 16, struct sbpf_map_attach)

#define SBPF_ABI_ASSERT(cond) _Static_assert(cond, #cond)
SBPF_ABI_ASSERT(sizeof(struct sbpf_sqe) == 64);
SBPF_ABI_ASSERT(__builtin_offsetof(struct sbpf_sqe, obj_id) == 4);
SBPF_ABI_ASSERT(__builtin_offsetof(struct sbpf_sqe, obj_off) == 8);
SBPF_ABI_ASSERT(__builtin_offsetof(struct sbpf_sqe, arena_off) == 16);
SBPF_ABI_ASSERT(__builtin_offsetof(struct sbpf_sqe, len) == 24);
SBPF_ABI_ASSERT(__builtin_offsetof(struct sbpf_sqe, user_data) == 32);
SBPF_ABI_ASSERT(__builtin_offsetof(struct sbpf_sqe, val) == 40);
SBPF_ABI_ASSERT(__builtin_offsetof(struct sbpf_sqe, cmp) == 48);
SBPF_ABI_ASSERT(__builtin_offsetof(struct sbpf_sqe, resv2) == 56);
SBPF_ABI_ASSERT(__builtin_offsetof(struct sbpf_sqe, seq) == 60);
SBPF_ABI_ASSERT(sizeof(struct sbpf_cqe) == 32);
SBPF_ABI_ASSERT(__builtin_offsetof(struct sbpf_cqe, res) == 8);
SBPF_ABI_ASSERT(__builtin_offsetof(struct sbpf_cqe, value) == 16);
SBPF_ABI_ASSERT(sizeof(struct sbpf_sq_offsets) == 32);
SBPF_ABI_ASSERT(sizeof(struct sbpf_cq_offsets) == 32);
SBPF_ABI_ASSERT(sizeof(struct sbpf_params) == 136);
SBPF_ABI_ASSERT(__builtin_offsetof(struct sbpf_params, sq_off) == 40);
SBPF_ABI_ASSERT(__builtin_offsetof(struct sbpf_params, cq_off) == 72);
SBPF_ABI_ASSERT(sizeof(struct sbpf_enter) == 24);
SBPF_ABI_ASSERT(sizeof(struct sbpf_object) == 16);
SBPF_ABI_ASSERT(sizeof(struct sbpf_sync_op) == 96);
SBPF_ABI_ASSERT(sizeof(struct sbpf_map_attach) == 56);
SBPF_ABI_ASSERT(__builtin_offsetof(struct sbpf_map_attach, rights) == 28);
SBPF_ABI_ASSERT(__builtin_offsetof(struct sbpf_map_attach, size) == 32);
SBPF_ABI_ASSERT(sizeof(struct sbpf_stats) == 128);
SBPF_ABI_ASSERT(SBPF_STATS_OFF + sizeof(struct sbpf_stats) <= SBPF_SQES_OFF);
#undef SBPF_ABI_ASSERT

#endif /* _UAPI_SBPF_RING_H */
