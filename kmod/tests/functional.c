// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * Functional tests of /dev/sbpf_ring, run in the guest: setup and mmap refusals, every
 * opcode, every validation row, ENTER (inline and SQPOLL with NEED_WAKEUP), waiting,
 * poll(), SYNC_OP, pread/pwrite, objects, statistics, back-pressure, the memory limit.
 */

#include "sbpf_test.h"
#include "sbpf_validate.h"

#define ARENA	(64 * 1024)
#define OBJSZ	4096

static void t_setup_refusals(void)
{
	struct sbpf_params p;
	int fd = dev_open();
	struct sbpf_enter e = {0};
	struct sbpf_sync_op op = {0};
	struct sbpf_stats st;

	CHECK(fd >= 0, "open: %s", strerror(errno));
	/* before SETUP */
	CHECK_ERR(ioctl(fd, SBPF_IOC_ENTER, &e), EINVAL);
	CHECK_ERR(ioctl(fd, SBPF_IOC_SYNC_OP, &op), EINVAL);
	CHECK_ERR(ioctl(fd, SBPF_IOC_STATS, &st), EINVAL);
	CHECK(mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0) == MAP_FAILED && errno == EINVAL,
	      "mmap before setup");
	CHECK_ERR(ioctl(fd, _IO(SBPF_IOC_MAGIC, 99)), ENOTTY);
	CHECK_ERR(ioctl(fd, _IOR('x', 7, int), &e), ENOTTY);

#define BAD(field_set)                                                              \
	do {                                                                        \
		memset(&p, 0, sizeof(p));                                           \
		p.sq_entries = 8;                                                   \
		field_set;                                                          \
		CHECK_ERR(ioctl(fd, SBPF_IOC_SETUP, &p), EINVAL);                   \
	} while (0)
	BAD(p.flags = 1U << 7);
	BAD(p.flags = 1U << 31);
	BAD(p.resv0 = 1);
	BAD(p.resv[3] = 1);
	BAD(p.sq_off.resv[1] = 1);
	BAD(p.cq_off.resv = 1);
	BAD(p.sq_entries = 0);
	BAD(p.sq_entries = 3);
	BAD(p.sq_entries = 12);
	BAD(p.sq_entries = SBPF_MAX_SQ_ENTRIES * 2);
	BAD(p.sq_entries = 0xffffffff);
	BAD((p.flags = SBPF_SETUP_CQSIZE, p.cq_entries = 4));
	BAD((p.flags = SBPF_SETUP_CQSIZE, p.cq_entries = 24));
	BAD((p.flags = SBPF_SETUP_CQSIZE, p.cq_entries = 0));
	BAD((p.flags = SBPF_SETUP_CQSIZE, p.cq_entries = SBPF_MAX_CQ_ENTRIES * 2));
	BAD(p.sq_idle_ms = 10001);
	BAD(p.arena_size = 4095);
	BAD(p.arena_size = 4096 + 512);
	BAD(p.arena_size = SBPF_MAX_ARENA_SIZE + 4096);
	BAD(p.arena_size = ~0ULL & ~4095ULL);
#undef BAD

	memset(&p, 0, sizeof(p));
	p.sq_entries = 8;
	p.arena_size = 8192;
	CHECK_OK(ioctl(fd, SBPF_IOC_SETUP, &p));
	CHECK(p.cq_entries == 16, "default cq_entries %u", p.cq_entries);
	CHECK(p.ring_size == 4096, "ring_size %llu", (unsigned long long)p.ring_size);
	CHECK(p.sq_off.head == SBPF_SQ_HEAD_OFF && p.sq_off.tail == SBPF_SQ_TAIL_OFF &&
	      p.sq_off.flags == SBPF_SQ_FLAGS_OFF && p.sq_off.sqes == SBPF_SQES_OFF &&
	      p.cq_off.head == SBPF_CQ_HEAD_OFF && p.cq_off.tail == SBPF_CQ_TAIL_OFF &&
	      p.cq_off.cqes == SBPF_SQES_OFF + 8 * 64 && p.cq_off.stats == SBPF_STATS_OFF &&
	      p.sq_off.ring_mask == SBPF_SQ_MASK_OFF && p.cq_off.ring_entries == SBPF_CQ_ENTRIES_OFF,
	      "offsets");
	memset(&p, 0, sizeof(p));
	p.sq_entries = 8;
	CHECK_ERR(ioctl(fd, SBPF_IOC_SETUP, &p), EBUSY);
	close(fd);

	/* largest ring, and CQSIZE at its maximum */
	fd = dev_open();
	memset(&p, 0, sizeof(p));
	p.sq_entries = SBPF_MAX_SQ_ENTRIES;
	p.cq_entries = SBPF_MAX_CQ_ENTRIES;
	p.flags = SBPF_SETUP_CQSIZE;
	CHECK_OK(ioctl(fd, SBPF_IOC_SETUP, &p));
	CHECK(p.ring_size == 512 + 32768 * 64 + 65536 * 32 + 4096 - 512,
	      "big ring_size %llu", (unsigned long long)p.ring_size);
	close(fd);
}

static void t_mmap_refusals(void)
{
	struct ring r;
	void *m;
	int ret = ring_init(&r, 8, 0, 0, 0, 2 * 4096);
	size_t rs;

	CHECK(!ret, "ring_init %d", ret);
	if (ret)
		return;
	rs = r.p.ring_size;
	CHECK(*(uint32_t *)((uint8_t *)r.region + SBPF_SQ_MASK_OFF) == 7 &&
	      *(uint32_t *)((uint8_t *)r.region + SBPF_SQ_ENTRIES_OFF) == 8 &&
	      *(uint32_t *)((uint8_t *)r.region + SBPF_CQ_MASK_OFF) == 15 &&
	      *(uint32_t *)((uint8_t *)r.region + SBPF_CQ_ENTRIES_OFF) == 16, "header masks");
#define MMAP_ERR(len, prot, flags, off, e)                                                  \
	do {                                                                                \
		m = mmap(NULL, len, prot, flags, r.fd, off);                                 \
		CHECK(m == MAP_FAILED && errno == (e), "mmap(%zu, %d, %d, %#llx): %s",     \
		      (size_t)(len), prot, flags, (unsigned long long)(off),                  \
		      m == MAP_FAILED ? strerror(errno) : "mapped");                          \
		if (m != MAP_FAILED)                                                        \
			munmap(m, len);                                                      \
	} while (0)
	MMAP_ERR(rs, PROT_READ, MAP_SHARED, 4096, EINVAL);
	MMAP_ERR(rs, PROT_READ, MAP_SHARED, SBPF_OFF_ARENA + 4096, EINVAL);
	MMAP_ERR(rs, PROT_READ, MAP_SHARED, 0x20000000, EINVAL);
	MMAP_ERR(rs + 4096, PROT_READ, MAP_SHARED, SBPF_OFF_RING, EINVAL);
	MMAP_ERR(4096, PROT_READ, MAP_SHARED, SBPF_OFF_ARENA, EINVAL);
	MMAP_ERR(3 * 4096, PROT_READ, MAP_SHARED, SBPF_OFF_ARENA, EINVAL);
	MMAP_ERR(rs, PROT_READ | PROT_EXEC, MAP_SHARED, SBPF_OFF_RING, EPERM);
	MMAP_ERR(2 * 4096, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_SHARED, SBPF_OFF_ARENA, EPERM);
	MMAP_ERR(rs, PROT_READ | PROT_WRITE, MAP_PRIVATE, SBPF_OFF_RING, EINVAL);
#undef MMAP_ERR
	/* never executable later, never growing */
	CHECK_ERR(mprotect(r.region, rs, PROT_READ | PROT_EXEC), EACCES);
	CHECK_ERR(mprotect(r.arena, 2 * 4096, PROT_EXEC), EACCES);
	m = mremap(r.arena, 2 * 4096, 4 * 4096, MREMAP_MAYMOVE);
	CHECK(m == MAP_FAILED, "mremap grew the arena");
	/* a second mapping of the same pages sees the same bytes */
	m = mmap(NULL, 2 * 4096, PROT_READ | PROT_WRITE, MAP_SHARED, r.fd, SBPF_OFF_ARENA);
	CHECK(m != MAP_FAILED, "second arena mapping: %s", strerror(errno));
	if (m != MAP_FAILED) {
		r.arena[100] = 0x5a;
		CHECK(((uint8_t *)m)[100] == 0x5a, "second mapping differs");
		munmap(m, 2 * 4096);
	}
	ring_exit(&r);

	/* a ring without arena has no arena mapping */
	CHECK(!ring_init(&r, 8, 0, 0, 0, 0), "ring_init no arena");
	m = mmap(NULL, 4096, PROT_READ, MAP_SHARED, r.fd, SBPF_OFF_ARENA);
	CHECK(m == MAP_FAILED && errno == EINVAL, "arena mapping without arena");
	ring_exit(&r);
}

/* Every opcode through @r and its results; @sync uses SYNC_OP instead of the ring. */
static void check_opcodes(struct ring *r, int sync)
{
	uint32_t id = obj_create(r->fd, OBJSZ);
	struct sbpf_cqe c;
	struct sbpf_sqe s;
	int i;

#define OP(...)                                                                      \
	do {                                                                         \
		s = sqe_make(__VA_ARGS__);                                           \
		memset(&c, 0xee, sizeof(c));                                         \
		if (sync)                                                            \
			CHECK(!sync_op(r->fd, &s, &c), "sync_op: %s", strerror(errno)); \
		else                                                                 \
			CHECK(!ring_op(r, &s, &c), "ring_op timed out");              \
		CHECK(c.user_data == s.user_data && c.flags == 0 && c.resv == 0,       \
		      "cqe user_data %llx want %llx", (unsigned long long)c.user_data,  \
		      (unsigned long long)s.user_data);                                \
	} while (0)

	CHECK(id != 0, "OBJ_CREATE: %s", strerror(errno));
	OP(SBPF_OP_NOP, 0, 0, 0, 0, 0, 0, 0x1001);
	CHECK(c.res == 0 && c.value == 0, "NOP res %d", c.res);
	OP(SBPF_OP_LOAD64, id, 8, 0, 0, 0, 0, 0x1002);
	CHECK(c.res == 0 && c.value == 0, "LOAD64 of a new object: res %d value %llx", c.res,
	      (unsigned long long)c.value);
	OP(SBPF_OP_STORE64, id, 8, 0, 0, 0x1122334455667788ULL, 0, 0x1003);
	CHECK(c.res == 0 && c.value == 0, "STORE64 res %d", c.res);
	OP(SBPF_OP_LOAD64, id, 8, 0, 0, 0, 0, 0x1004);
	CHECK(c.res == 0 && c.value == 0x1122334455667788ULL, "LOAD64 value %llx",
	      (unsigned long long)c.value);
	OP(SBPF_OP_FETCH_ADD64, id, 8, 0, 0, 0x10, 0, 0x1005);
	CHECK(c.res == 0 && c.value == 0x1122334455667788ULL, "FETCH_ADD64 old %llx",
	      (unsigned long long)c.value);
	OP(SBPF_OP_FETCH_ADD64, id, 8, 0, 0, -0x20ULL, 0, 0x1006);
	CHECK(c.value == 0x1122334455667798ULL, "FETCH_ADD64 second old %llx",
	      (unsigned long long)c.value);
	OP(SBPF_OP_CAS64, id, 8, 0, 0, 42, 1, 0x1007);
	CHECK(c.res == 0 && c.value == 0x1122334455667778ULL, "CAS64 fail res %d value %llx",
	      c.res, (unsigned long long)c.value);
	OP(SBPF_OP_CAS64, id, 8, 0, 0, 42, 0x1122334455667778ULL, 0x1008);
	CHECK(c.res == 1 && c.value == 0x1122334455667778ULL, "CAS64 ok res %d", c.res);
	OP(SBPF_OP_LOAD64, id, 8, 0, 0, 0, 0, 0x1009);
	CHECK(c.value == 42, "after CAS64 %llx", (unsigned long long)c.value);
	/* wrapping add */
	OP(SBPF_OP_STORE64, id, OBJSZ - 8, 0, 0, ~0ULL, 0, 1);
	OP(SBPF_OP_FETCH_ADD64, id, OBJSZ - 8, 0, 0, 2, 0, 2);
	OP(SBPF_OP_LOAD64, id, OBJSZ - 8, 0, 0, 0, 0, 3);
	CHECK(c.value == 1, "wrapping add: %llx", (unsigned long long)c.value);

	/* WRITE arena -> object, READ object -> arena */
	for (i = 0; i < 256; i++)
		r->arena[1000 + i] = (uint8_t)(i * 7 + 3);
	OP(SBPF_OP_WRITE, id, 512, 1000, 256, 0, 0, 0x100a);
	CHECK(c.res == 256, "WRITE res %d", c.res);
	memset(r->arena + 5000, 0, 256);
	OP(SBPF_OP_READ, id, 512, 5000, 256, 0, 0, 0x100b);
	CHECK(c.res == 256 && !memcmp(r->arena + 5000, r->arena + 1000, 256), "READ res %d",
	      c.res);
	OP(SBPF_OP_LOAD64, id, 512, 0, 0, 0, 0, 0x100c);
	CHECK(c.value == *(uint64_t *)(r->arena + 1000), "LOAD64 of written bytes");
	/* whole-object and arena-edge transfers */
	OP(SBPF_OP_READ, id, 0, ARENA - OBJSZ, OBJSZ, 0, 0, 0x100d);
	CHECK(c.res == OBJSZ, "READ whole object res %d", c.res);
	CHECK(obj_ioctl(r->fd, SBPF_IOC_OBJ_DETACH, id) == 0, "detach");
#undef OP
}

static void t_ops_ring_enter(void)
{
	struct ring r;

	CHECK(!ring_init(&r, 16, 0, 0, 0, ARENA), "ring_init");
	check_opcodes(&r, 0);
	ring_exit(&r);
}

static void t_ops_ring_sqpoll(void)
{
	struct ring r;

	CHECK(!ring_init(&r, 16, 0, SBPF_SETUP_SQPOLL, 0, ARENA), "ring_init");
	check_opcodes(&r, 0);
	ring_exit(&r);
}

static void t_ops_sync(void)
{
	struct ring r;
	struct sbpf_stats st;

	CHECK(!ring_init(&r, 16, 0, 0, 0, ARENA), "ring_init");
	check_opcodes(&r, 1);
	st = ring_stats(&r);
	CHECK(st.sync_ops == 16 && st.submitted == 0 && st.rejected == 0,
	      "stats sync_ops %llu submitted %llu", (unsigned long long)st.sync_ops,
	      (unsigned long long)st.submitted);
	ring_exit(&r);
}

struct vrow {
	const char *name;
	struct sbpf_sqe sqe;	/* obj_id 1 means "the attached object" */
	int res;
	size_t counter;		/* offsetof in struct sbpf_stats */
};

#define S(...) ((struct sbpf_sqe){ __VA_ARGS__ })
#define CTR(f) offsetof(struct sbpf_stats, f)
static const struct vrow vrows[] = {
	{ "opcode", S(.opcode = SBPF_OP_COUNT), -EINVAL, CTR(rejected_opcode) },
	{ "opcode255", S(.opcode = 255, .obj_id = 1), -EINVAL, CTR(rejected_opcode) },
	{ "flags", S(.opcode = SBPF_OP_NOP, .flags = 0x80), -EINVAL, CTR(rejected_opcode) },
	{ "resv0", S(.opcode = SBPF_OP_NOP, .resv0 = 1), -EINVAL, CTR(rejected_reserved) },
	{ "resv1", S(.opcode = SBPF_OP_LOAD64, .obj_id = 1, .resv1 = 1), -EINVAL, CTR(rejected_reserved) },
	{ "resv2", S(.opcode = SBPF_OP_READ, .obj_id = 1, .len = 8, .resv2 = 9), -EINVAL, CTR(rejected_reserved) },
	{ "unused-nop", S(.opcode = SBPF_OP_NOP, .val = 1), -EINVAL, CTR(rejected_reserved) },
	{ "unused-read", S(.opcode = SBPF_OP_READ, .obj_id = 1, .len = 8, .cmp = 1), -EINVAL, CTR(rejected_reserved) },
	{ "unused-load", S(.opcode = SBPF_OP_LOAD64, .obj_id = 1, .len = 8), -EINVAL, CTR(rejected_reserved) },
	{ "unused-store", S(.opcode = SBPF_OP_STORE64, .obj_id = 1, .cmp = 8), -EINVAL, CTR(rejected_reserved) },
	{ "unused-fadd", S(.opcode = SBPF_OP_FETCH_ADD64, .obj_id = 1, .arena_off = 8), -EINVAL, CTR(rejected_reserved) },
	{ "unused-cas", S(.opcode = SBPF_OP_CAS64, .obj_id = 1, .len = 8), -EINVAL, CTR(rejected_reserved) },
	{ "object", S(.opcode = SBPF_OP_READ, .obj_id = 0x7fffffff, .len = 8), -ENOENT, CTR(rejected_object) },
	{ "object0", S(.opcode = SBPF_OP_LOAD64, .obj_id = 0), -ENOENT, CTR(rejected_object) },
	{ "len0", S(.opcode = SBPF_OP_READ, .obj_id = 1, .len = 0), -EINVAL, CTR(rejected_bounds) },
	{ "len-big", S(.opcode = SBPF_OP_WRITE, .obj_id = 1, .len = SBPF_MAX_IO_LEN + 1), -EINVAL, CTR(rejected_bounds) },
	{ "obj-bounds", S(.opcode = SBPF_OP_READ, .obj_id = 1, .obj_off = OBJSZ - 4, .len = 8), -EFAULT, CTR(rejected_bounds) },
	{ "obj-overflow", S(.opcode = SBPF_OP_WRITE, .obj_id = 1, .obj_off = ~0ULL - 2, .len = 8), -EFAULT, CTR(rejected_bounds) },
	{ "arena-bounds", S(.opcode = SBPF_OP_READ, .obj_id = 1, .arena_off = ARENA - 4, .len = 8), -EFAULT, CTR(rejected_bounds) },
	{ "arena-overflow", S(.opcode = SBPF_OP_WRITE, .obj_id = 1, .arena_off = ~0ULL, .len = 2), -EFAULT, CTR(rejected_bounds) },
	{ "align", S(.opcode = SBPF_OP_FETCH_ADD64, .obj_id = 1, .obj_off = 12), -EINVAL, CTR(rejected_align) },
	{ "align-cas", S(.opcode = SBPF_OP_CAS64, .obj_id = 1, .obj_off = 1), -EINVAL, CTR(rejected_align) },
	{ "word-bounds", S(.opcode = SBPF_OP_STORE64, .obj_id = 1, .obj_off = OBJSZ), -EFAULT, CTR(rejected_bounds) },
	{ "word-overflow", S(.opcode = SBPF_OP_LOAD64, .obj_id = 1, .obj_off = ~0ULL - 7), -EFAULT, CTR(rejected_bounds) },
};
#undef S

static void check_rows(int sqpoll, int sync)
{
	struct ring r;
	uint32_t id, canary_id;
	struct sbpf_cqe c;
	struct sbpf_stats before, after;
	unsigned int i, j;

	CHECK(!ring_init(&r, 32, 0, sqpoll ? SBPF_SETUP_SQPOLL : 0, 0, ARENA), "ring_init");
	id = obj_create(r.fd, OBJSZ);
	canary_id = obj_create(r.fd, OBJSZ);
	CHECK(id && canary_id, "create");
	memset(r.arena, 0xa5, ARENA);
	for (i = 0; i < sizeof(vrows) / sizeof(vrows[0]); i++) {
		struct sbpf_sqe s = vrows[i].sqe;

		if (s.obj_id == 1)
			s.obj_id = id;
		s.user_data = 0xabc000 + i;
		before = ring_stats(&r);
		if (sync)
			CHECK(!sync_op(r.fd, &s, &c), "sync_op");
		else
			CHECK(!ring_op(&r, &s, &c), "ring_op timeout");
		after = ring_stats(&r);
		CHECK(c.user_data == s.user_data && c.res == vrows[i].res && c.value == 0,
		      "row %s: res %d want %d", vrows[i].name, c.res, vrows[i].res);
		for (j = 0; j < 11; j++) {
			/* the poller may sleep and be kicked between rows */
			if (sqpoll && (j * 8 == CTR(wakeups) || j * 8 == CTR(cq_full)))
				continue;
			uint64_t d = ((uint64_t *)&after)[j] - ((uint64_t *)&before)[j];
			uint64_t want = 0;

			if (j * 8 == vrows[i].counter || j * 8 == CTR(rejected))
				want = 1;
			if (j * 8 == (sync ? CTR(sync_ops) : CTR(submitted)))
				want = 1;
			if (!sync && j * 8 == CTR(completed))
				want = 1;
			CHECK(d == want, "row %s: counter %u moved by %llu, want %llu",
			      vrows[i].name, j, (unsigned long long)d, (unsigned long long)want);
		}
	}
	/* a refused entry touched nothing */
	for (i = 0; i < ARENA; i++)
		if (r.arena[i] != 0xa5)
			break;
	CHECK(i == ARENA, "arena changed at %u", i);
	{
		struct sbpf_sqe s = sqe_make(SBPF_OP_READ, id, 0, 0, OBJSZ, 0, 0, 1);

		ring_op(&r, &s, &c);
		for (i = 0; i < OBJSZ; i++)
			if (r.arena[i] != 0)
				break;
		CHECK(c.res == OBJSZ && i == OBJSZ, "object changed at %u", i);
	}
	/* the mirror equals the ioctl once quiet */
	after = ring_stats(&r);
	if (!sync)
		CHECK(!memcmp(&after, r.stats, offsetof(struct sbpf_stats, wakeups)),
		      "stats mirror differs: submitted %llu vs %llu",
		      (unsigned long long)after.submitted,
		      (unsigned long long)r.stats->submitted);
	ring_exit(&r);
}
#undef CTR

static void t_validation_enter(void) { check_rows(0, 0); }
static void t_validation_sqpoll(void) { check_rows(1, 0); }
static void t_validation_sync(void) { check_rows(0, 1); }

static void t_enter_inline(void)
{
	struct ring r;
	struct sbpf_sqe s = sqe_make(SBPF_OP_NOP, 0, 0, 0, 0, 0, 0, 0);
	struct sbpf_cqe c;
	int i, n;

	CHECK(!ring_init(&r, 8, 0, 0, 0, 0), "ring_init");
	CHECK_ERR(ring_enter(&r, 0, 0, 1U << 5, 0), EINVAL);
	{
		struct sbpf_enter e = { .resv = 1 };

		CHECK_ERR(ioctl(r.fd, SBPF_IOC_ENTER, &e), EINVAL);
	}
	for (i = 0; i < 5; i++) {
		s.user_data = i;
		CHECK(!ring_push(&r, &s), "push");
	}
	/* nothing is consumed without ENTER */
	usleep(20000);
	CHECK(ring_cq_ready(&r) == 0, "consumed without ENTER");
	n = ring_enter(&r, 2, 0, 0, 0);
	CHECK(n == 2, "enter(2) = %d", n);
	CHECK(*r.sq_head == 2, "sq head %u", *r.sq_head);
	n = ring_enter(&r, 100, 0, 0, 0);
	CHECK(n == 3, "enter(100) = %d", n);
	n = ring_enter(&r, 100, 0, 0, 0);
	CHECK(n == 0, "enter with nothing published = %d", n);
	for (i = 0; i < 5; i++)
		CHECK(ring_reap(&r, &c) && c.user_data == (uint64_t)i && c.res == 0, "cqe %d", i);
	CHECK(!ring_reap(&r, &c), "extra cqe");
	/* an entry reserved but not yet published stops the consumer */
	{
		uint32_t pos = (*r.sq_tail)++;
		struct sbpf_sqe *slot = &r.sqes[pos & r.sq_mask];

		memset(slot, 0, 60);
		n = ring_enter(&r, 8, 0, 0, 0);
		CHECK(n == 0, "consumed an unpublished entry");
		slot->seq = pos + 2;	/* a wrong seq is not a publication either */
		n = ring_enter(&r, 8, 0, 0, 0);
		CHECK(n == 0, "consumed a wrong seq");
		__atomic_store_n(&slot->seq, pos + 1, __ATOMIC_RELEASE);
		n = ring_enter(&r, 8, 0, 0, 0);
		CHECK(n == 1, "published entry not consumed: %d", n);
		CHECK(ring_reap(&r, &c), "reap");
	}
	ring_exit(&r);
}

static void t_cq_backpressure(void)
{
	struct ring r;
	struct sbpf_sqe s = sqe_make(SBPF_OP_NOP, 0, 0, 0, 0, 0, 0, 0);
	struct sbpf_cqe c;
	struct sbpf_stats st;
	uint64_t next = 0;
	int i, n;

	CHECK(!ring_init(&r, 4, 4, 0, 0, 0), "ring_init");
	for (i = 0; i < 4; i++) {
		s.user_data = i;
		CHECK(!ring_push(&r, &s), "push %d", i);
	}
	s.user_data = 99;
	CHECK(ring_push(&r, &s) == -EAGAIN, "SQ not full");
	CHECK(ring_enter(&r, 4, 0, 0, 0) == 4, "enter 4");
	for (i = 4; i < 8; i++) {
		s.user_data = i;
		CHECK(!ring_push(&r, &s), "push %d", i);
	}
	n = ring_enter(&r, 4, 0, 0, 0);
	CHECK(n == 0, "consumed %d into a full CQ", n);
	st = ring_stats(&r);
	CHECK(st.cq_full == 1, "cq_full %llu", (unsigned long long)st.cq_full);
	/* a garbage head never makes the kernel write: it looks full */
	{
		uint32_t h = *r.cq_head;

		*r.cq_head = h + 1000;
		CHECK(ring_enter(&r, 4, 0, 0, 0) == 0, "consumed with a garbage cq head");
		*r.cq_head = h - 1000;
		CHECK(ring_enter(&r, 4, 0, 0, 0) == 0, "consumed with a garbage cq head 2");
		*r.cq_head = h;
	}
	CHECK(ring_reap(&r, &c) && ring_reap(&r, &c), "reap 2");
	CHECK(ring_enter(&r, 4, 0, 0, 0) == 2, "enter after reaping 2");
	while (ring_reap(&r, &c)) {
		/* entries 0, 1 were reaped above */
		if (next == 0)
			next = 2;
		CHECK(c.user_data == next, "order: %llu want %llu",
		      (unsigned long long)c.user_data, (unsigned long long)next);
		next++;
	}
	CHECK(ring_enter(&r, 4, 0, 0, 0) == 2, "enter the rest");
	while (ring_reap(&r, &c)) {
		CHECK(c.user_data == next, "order2: %llu", (unsigned long long)c.user_data);
		next++;
	}
	CHECK(next == 8, "completions %llu", (unsigned long long)next);
	st = ring_stats(&r);
	CHECK(st.submitted == 8 && st.completed == 8, "submitted %llu",
	      (unsigned long long)st.submitted);
	ring_exit(&r);
}

static void t_sqpoll_wakeup(void)
{
	struct ring r;
	struct sbpf_sqe s = sqe_make(SBPF_OP_NOP, 0, 0, 0, 0, 0, 0, 7);
	struct sbpf_cqe c;
	struct sbpf_stats st;
	int i;

	CHECK(!ring_init(&r, 8, 8, SBPF_SETUP_SQPOLL, 10, 0), "ring_init");
	CHECK(ring_enter(&r, 8, 0, 0, 0) == 0, "ENTER under SQPOLL consumes nothing itself");
	CHECK(!ring_op(&r, &s, &c) && c.user_data == 7, "first op");
	/* idle: the poller announces its sleep */
	for (i = 0; i < 200 && !(__atomic_load_n(r.sq_flags, __ATOMIC_ACQUIRE) &
				 SBPF_SQ_NEED_WAKEUP); i++)
		usleep(10000);
	CHECK(*r.sq_flags & SBPF_SQ_NEED_WAKEUP, "NEED_WAKEUP never set");
	st = ring_stats(&r);
	/* publish without kicking: a sleeping poller does not see it */
	s.user_data = 8;
	CHECK(!ring_push(&r, &s), "push");
	usleep(50000);
	CHECK(ring_cq_ready(&r) == 0, "sleeping poller consumed");
	CHECK(ring_stats(&r).wakeups == st.wakeups, "woke without a kick");
	/* kick */
	CHECK_OK(ring_enter(&r, 0, 1, SBPF_ENTER_SQ_WAKEUP | SBPF_ENTER_GETEVENTS, 2000000000));
	CHECK(ring_reap(&r, &c) && c.user_data == 8, "after kick");
	CHECK(ring_stats(&r).wakeups == st.wakeups + 1, "wakeups %llu",
	      (unsigned long long)ring_stats(&r).wakeups);
	CHECK(r.stats->wakeups == st.wakeups + 1, "mirrored wakeups");

	/* the poller sleeps on a full CQ rather than spinning, and resumes when kicked */
	for (i = 0; i < 12; i++) {
		s.user_data = 100 + i;
		while (ring_push(&r, &s) == -EAGAIN)
			usleep(1000);
		ring_kick(&r);
	}
	for (i = 0; i < 300 && ring_cq_ready(&r) < 8; i++)
		usleep(10000);
	CHECK(ring_cq_ready(&r) == 8, "cq ready %u", ring_cq_ready(&r));
	/*
	 * The poller may have slept before the last entries were published, and been kicked
	 * but not yet run: wait until it has seen a published entry against the full CQ, then
	 * until it sleeps again. Reaping earlier would let it find room instead.
	 */
	for (i = 0; i < 300 && ring_stats(&r).cq_full < 1; i++)
		usleep(10000);
	CHECK(ring_poller_asleep(&r), "poller spins on a full CQ");
	for (i = 0; i < 12; i++) {
		CHECK(!ring_wait(&r, &c, 2000000000ULL), "wait %d", i);
		CHECK(c.user_data == (uint64_t)(100 + i), "order %llu",
		      (unsigned long long)c.user_data);
	}
	CHECK(ring_stats(&r).cq_full >= 1, "cq_full not counted");
	ring_exit(&r);
}

static void on_alarm(int sig) { (void)sig; }

static void t_wait_timeout(void)
{
	struct ring r;
	uint64_t t0;
	struct sigaction sa = { .sa_handler = on_alarm };	/* no SA_RESTART */

	CHECK(!ring_init(&r, 8, 0, 0, 0, 0), "ring_init");
	t0 = now_ns();
	CHECK_ERR(ring_enter(&r, 0, 1, SBPF_ENTER_GETEVENTS, 30000000), ETIME);
	CHECK(now_ns() - t0 >= 30000000, "returned early");
	/* more than the CQ can hold waits for a full CQ, then times out */
	CHECK_ERR(ring_enter(&r, 0, 1000, SBPF_ENTER_GETEVENTS, 1000000), ETIME);
	/* min_complete 0 returns at once */
	CHECK(ring_enter(&r, 0, 0, SBPF_ENTER_GETEVENTS, 0) == 0, "min 0");
	/* a signal interrupts a wait without a time limit */
	sigaction(SIGALRM, &sa, NULL);
	ualarm(50000, 0);
	CHECK_ERR(ring_enter(&r, 0, 1, SBPF_ENTER_GETEVENTS, 0), EINTR);
	signal(SIGALRM, SIG_DFL);
	/* ready completions satisfy the wait at once */
	{
		struct sbpf_sqe s = sqe_make(SBPF_OP_NOP, 0, 0, 0, 0, 0, 0, 1);

		ring_push(&r, &s);
		ring_push(&r, &s);
		CHECK(ring_enter(&r, 2, 2, SBPF_ENTER_GETEVENTS, 1000000) == 2, "enter+wait");
		CHECK(ring_cq_ready(&r) == 2, "ready");
	}
	ring_exit(&r);
}

struct poster {
	struct ring *r;
	int delay_us;
};

static void *post_later(void *arg)
{
	struct poster *p = arg;
	struct sbpf_sqe s = sqe_make(SBPF_OP_NOP, 0, 0, 0, 0, 0, 0, 5);

	usleep(p->delay_us);
	ring_push(p->r, &s);
	ring_enter(p->r, 1, 0, 0, 0);
	return NULL;
}

static void t_poll(void)
{
	struct ring r;
	struct pollfd pfd;
	struct sbpf_cqe c;
	pthread_t th;
	struct poster p = { &r, 50000 };
	int n;

	CHECK(!ring_init(&r, 8, 0, 0, 0, 0), "ring_init");
	pfd = (struct pollfd){ .fd = r.fd, .events = POLLIN | POLLRDNORM };
	n = poll(&pfd, 1, 0);
	CHECK(n == 0, "poll on an empty CQ: %d revents %x", n, pfd.revents);
	pthread_create(&th, NULL, post_later, &p);
	n = poll(&pfd, 1, 5000);
	CHECK(n == 1 && (pfd.revents & (POLLIN | POLLRDNORM)) == (POLLIN | POLLRDNORM),
	      "poll woken: %d revents %x", n, pfd.revents);
	pthread_join(th, NULL);
	CHECK(ring_reap(&r, &c), "reap");
	n = poll(&pfd, 1, 0);
	CHECK(n == 0, "poll after reaping: %d", n);
	ring_exit(&r);

	/* with the poller posting */
	CHECK(!ring_init(&r, 8, 0, SBPF_SETUP_SQPOLL, 0, 0), "ring_init sqpoll");
	{
		struct sbpf_sqe s = sqe_make(SBPF_OP_NOP, 0, 0, 0, 0, 0, 0, 6);

		ring_submit(&r, &s);
		pfd = (struct pollfd){ .fd = r.fd, .events = POLLIN };
		n = poll(&pfd, 1, 5000);
		CHECK(n == 1 && (pfd.revents & POLLIN), "poll sqpoll: %d", n);
	}
	ring_exit(&r);
	/* before SETUP */
	pfd = (struct pollfd){ .fd = dev_open(), .events = POLLIN };
	n = poll(&pfd, 1, 0);
	CHECK(n == 1 && (pfd.revents & POLLERR), "poll before setup: revents %x", pfd.revents);
	close(pfd.fd);
}

static void t_pread_pwrite(void)
{
	int fd = dev_open();
	uint32_t id = obj_create(fd, 4096);
	char buf[256], back[256];
	uint64_t w;
	int i;

	CHECK(id, "create");
	CHECK_ERR(pread(fd, buf, 8, 0), EINVAL);
	CHECK_ERR(pwrite(fd, buf, 8, 0), EINVAL);
	CHECK_ERR(obj_ioctl(fd, SBPF_IOC_OBJ_SELECT, id + 1000), ENOENT);
	CHECK_OK(obj_ioctl(fd, SBPF_IOC_OBJ_SELECT, id));
	for (i = 0; i < 256; i++)
		buf[i] = (char)(i ^ 0x3c);
	CHECK(pwrite(fd, buf, 256, 100) == 256, "pwrite");
	CHECK(pread(fd, back, 256, 100) == 256 && !memcmp(buf, back, 256), "pread");
	CHECK(pwrite(fd, buf, 100, 4090) == 6, "short pwrite at the end");
	CHECK(pread(fd, back, 100, 4090) == 6 && !memcmp(back, buf, 6), "short pread at end");
	CHECK(pread(fd, back, 100, 4096) == 0, "pread at the end");
	CHECK(pread(fd, back, 100, 1LL << 40) == 0, "pread far past the end");
	CHECK_ERR(pwrite(fd, buf, 10, 4096), ENOSPC);
	CHECK(pread(fd, back, 0, 0) == 0, "empty pread");
	{
		void *volatile bad = (void *)8;

		CHECK_ERR(pread(fd, bad, 8, 0), EFAULT);
	}
	/* the same bytes through a SYNC_OP LOAD64 need a ring: check with a second file */
	{
		struct ring r;
		struct sbpf_sqe s;
		struct sbpf_cqe c;

		CHECK(!ring_init(&r, 8, 0, 0, 0, 0), "ring");
		CHECK_OK(obj_ioctl(r.fd, SBPF_IOC_OBJ_ATTACH, id));
		s = sqe_make(SBPF_OP_LOAD64, id, 104, 0, 0, 0, 0, 0);
		sync_op(r.fd, &s, &c);
		memcpy(&w, buf + 4, 8);
		CHECK(c.res == 0 && c.value == w, "LOAD64 of pwritten bytes");
		ring_exit(&r);
	}
	/* read(2)/write(2) follow the file position */
	CHECK(lseek(fd, 100, SEEK_SET) == 100, "lseek");
	CHECK(read(fd, back, 16) == 16 && !memcmp(back, buf, 16), "read");
	CHECK(lseek(fd, 0, SEEK_CUR) == 116, "position");
	/* deselect, and detach of the selected object */
	CHECK_OK(obj_ioctl(fd, SBPF_IOC_OBJ_SELECT, 0));
	CHECK_ERR(pread(fd, back, 8, 0), EINVAL);
	CHECK_OK(obj_ioctl(fd, SBPF_IOC_OBJ_SELECT, id));
	CHECK_OK(obj_ioctl(fd, SBPF_IOC_OBJ_DETACH, id));
	CHECK_ERR(pread(fd, back, 8, 0), EINVAL);
	close(fd);
}

static void t_objects(void)
{
	int fd = dev_open(), fd2 = dev_open();
	struct sbpf_object o;
	uint32_t ids[64], a, b;
	int i;

	CHECK(fd >= 0 && fd2 >= 0, "open");
#define CREATE_ERR(sz, fl, e)                                                    \
	do {                                                                     \
		o = (struct sbpf_object){ .size = (sz), .flags = (fl) };          \
		CHECK_ERR(ioctl(fd, SBPF_IOC_OBJ_CREATE, &o), e);                 \
	} while (0)
	CREATE_ERR(0, 0, EINVAL);
	CREATE_ERR(4, 0, EINVAL);
	CREATE_ERR(12, 0, EINVAL);
	CREATE_ERR(SBPF_MAX_OBJECT_SIZE + 8, 0, EINVAL);
	CREATE_ERR(~0ULL - 7, 0, EINVAL);
	CREATE_ERR(64, 1, EINVAL);
#undef CREATE_ERR
	CHECK_ERR(obj_ioctl(fd, SBPF_IOC_OBJ_ATTACH, 0), EINVAL);
	CHECK_ERR(obj_ioctl(fd, SBPF_IOC_OBJ_ATTACH, 0xfffffff0), ENOENT);
	CHECK_ERR(obj_ioctl(fd, SBPF_IOC_OBJ_DETACH, 0xfffffff0), ENOENT);
	o = (struct sbpf_object){ .id = 1, .flags = 2 };
	CHECK_ERR(ioctl(fd, SBPF_IOC_OBJ_DETACH, &o), EINVAL);

	a = obj_create(fd, 8);
	CHECK(a != 0, "create 8");
	o = (struct sbpf_object){ .id = a };
	CHECK(!ioctl(fd2, SBPF_IOC_OBJ_ATTACH, &o) && o.size == 8, "attach answers size %llu",
	      (unsigned long long)o.size);
	CHECK(!ioctl(fd2, SBPF_IOC_OBJ_ATTACH, &o) && o.size == 8, "attach twice");
	/* the creator detaches; fd2 keeps it alive */
	CHECK_OK(obj_ioctl(fd, SBPF_IOC_OBJ_DETACH, a));
	CHECK_ERR(obj_ioctl(fd, SBPF_IOC_OBJ_DETACH, a), ENOENT);
	CHECK_OK(obj_ioctl(fd, SBPF_IOC_OBJ_ATTACH, a));
	CHECK_OK(obj_ioctl(fd, SBPF_IOC_OBJ_DETACH, a));
	CHECK_OK(obj_ioctl(fd2, SBPF_IOC_OBJ_DETACH, a));
	/* gone with its last holder, and its id is not reused */
	CHECK_ERR(obj_ioctl(fd, SBPF_IOC_OBJ_ATTACH, a), ENOENT);
	b = obj_create(fd, 8);
	CHECK(b > a, "ids: %u after %u", b, a);
	CHECK_OK(obj_ioctl(fd, SBPF_IOC_OBJ_DETACH, b));

	/* the attached table is bounded */
	for (i = 0; i < 64; i++) {
		ids[i] = obj_create(fd, 64);
		CHECK(ids[i] != 0, "create %d: %s", i, strerror(errno));
	}
	o = (struct sbpf_object){ .size = 64 };
	CHECK_ERR(ioctl(fd, SBPF_IOC_OBJ_CREATE, &o), ENOSPC);
	CHECK_ERR(obj_ioctl(fd, SBPF_IOC_OBJ_ATTACH, a), ENOSPC);
	b = obj_create(fd2, 64);
	CHECK_ERR(obj_ioctl(fd, SBPF_IOC_OBJ_ATTACH, b), ENOSPC);
	CHECK_OK(obj_ioctl(fd, SBPF_IOC_OBJ_DETACH, ids[10]));
	CHECK_OK(obj_ioctl(fd, SBPF_IOC_OBJ_ATTACH, b));
	close(fd);
	close(fd2);

	/* a ring op on an object detached meanwhile */
	{
		struct ring r;
		struct sbpf_sqe s;
		struct sbpf_cqe c;
		uint32_t id;

		CHECK(!ring_init(&r, 8, 0, SBPF_SETUP_SQPOLL, 0, 0), "ring");
		id = obj_create(r.fd, 64);
		s = sqe_make(SBPF_OP_STORE64, id, 0, 0, 0, 5, 0, 1);
		CHECK(!ring_op(&r, &s, &c) && c.res == 0, "store");
		CHECK_OK(obj_ioctl(r.fd, SBPF_IOC_OBJ_DETACH, id));
		CHECK(!ring_op(&r, &s, &c) && c.res == -ENOENT, "after detach: %d", c.res);
		ring_exit(&r);
	}
}

static void t_mapping_outlives_fd(void)
{
	uint64_t start = param_read("pinned_bytes");
	struct ring r;
	uint8_t *region, *arena;
	size_t rs;

	uint64_t with_poller, held;

	CHECK(!ring_init(&r, 8, 0, SBPF_SETUP_SQPOLL, 0, 8192), "ring_init");
	with_poller = param_read("pinned_bytes");
	/* its pages, their metadata, and a poller's stack */
	CHECK(with_poller >= start + 4096 + 8192 + 16384, "pinned %llu start %llu",
	      (unsigned long long)with_poller, (unsigned long long)start);
	region = r.region;
	arena = r.arena;
	rs = r.p.ring_size;
	close(r.fd);
	/* the close stopped the poller and returned its charge; the file lives in its mappings */
	held = param_read("pinned_bytes");
	CHECK(held >= start + 4096 + 8192 && held < with_poller, "pinned %llu after close",
	      (unsigned long long)held);
	memset(arena, 0x11, 8192);
	region[SBPF_SQ_TAIL_OFF] = 3;
	CHECK(arena[8191] == 0x11 && region[SBPF_SQ_MASK_OFF] == 7, "mapping contents");
	CHECK(param_read("pinned_bytes") == held, "released early");
	munmap(region, rs);
	CHECK(param_read("pinned_bytes") == held, "released with a mapping left");
	munmap(arena, 8192);
	CHECK(pinned_settle(start) == start, "pinned %llu after unmapping, start %llu",
	      (unsigned long long)param_read("pinned_bytes"), (unsigned long long)start);
}

/* @got is what @bytes of pages cost: at least the pages, at most 2% and 8 KiB more. */
static int cost_ok(uint64_t got, uint64_t bytes)
{
	return got >= bytes && got <= bytes + bytes / 50 + 8192;
}

static void t_memory_limit(void)
{
	uint64_t start = param_read("pinned_bytes"), limit = param_read("max_user_bytes");
	struct sbpf_params p = { .sq_entries = 8, .arena_size = 2 << 20 };
	struct sbpf_object o = { .size = 2 << 20 };
	int fd = dev_open();
	uint64_t obj_cost;
	uint32_t id;

	CHECK(limit == 256ULL << 20, "default max_user_bytes %llu", (unsigned long long)limit);
	CHECK(!param_write("max_user_bytes", 1 << 20), "set max_user_bytes");
	CHECK_ERR(ioctl(fd, SBPF_IOC_OBJ_CREATE, &o), ENOMEM);
	CHECK_ERR(ioctl(fd, SBPF_IOC_SETUP, &p), ENOMEM);
	o.size = 512 << 10;
	CHECK_OK(ioctl(fd, SBPF_IOC_OBJ_CREATE, &o));
	id = o.id;
	obj_cost = param_read("pinned_bytes") - start;
	CHECK(cost_ok(obj_cost, 512 << 10), "object charged %llu", (unsigned long long)obj_cost);
	o.size = 600 << 10;
	CHECK_ERR(ioctl(fd, SBPF_IOC_OBJ_CREATE, &o), ENOMEM);
	p.arena_size = 256 << 10;
	CHECK_OK(ioctl(fd, SBPF_IOC_SETUP, &p));
	CHECK(cost_ok(param_read("pinned_bytes") - start - obj_cost, (256 << 10) + 4096),
	      "ring charged %llu", (unsigned long long)(param_read("pinned_bytes") - start - obj_cost));
	CHECK_OK(obj_ioctl(fd, SBPF_IOC_OBJ_DETACH, id));
	/* returned once the memory is freed, a grace period later */
	CHECK(cost_ok(pinned_settle(param_read("pinned_bytes") - obj_cost) - start,
		      (256 << 10) + 4096), "object uncharged");
	CHECK(!param_write("max_user_bytes", limit), "restore max_user_bytes");
	close(fd);
	CHECK(pinned_settle(start) == start, "pinned %llu, start %llu",
	      (unsigned long long)param_read("pinned_bytes"), (unsigned long long)start);
	/* the write-only parameter */
	CHECK(param_write("pinned_bytes", 0) != 0, "pinned_bytes writable");
}

/* Attaching needs the creator's uid (or CAP_SYS_ADMIN); budgets are per uid. */
static void t_uid_rules(void)
{
	uint64_t limit = param_read("max_user_bytes");
	int fd = dev_open(), st, p[2];
	uint32_t root_obj, user_obj = 0;
	pid_t pid;

	CHECK(!param_write("max_user_bytes", 1 << 20), "set max_user_bytes");
	root_obj = obj_create(fd, 768 << 10);
	CHECK(root_obj, "root create");
	CHECK(!pipe(p), "pipe");
	pid = fork();
	if (pid == 0) {
		int ufd, code = 0;
		uint32_t id;

		if (setgid(1000) || setuid(1000))
			_exit(20);
		ufd = dev_open();
		if (ufd < 0)
			_exit(21);
		if (obj_ioctl(ufd, SBPF_IOC_OBJ_ATTACH, root_obj) == 0 || errno != EPERM)
			code |= 1;
		id = obj_create(ufd, 768 << 10);	/* its own budget */
		if (!id)
			code |= 2;
		if (write(p[1], &id, sizeof(id)) != sizeof(id))
			code |= 4;
		pause();	/* hold the object until killed */
		_exit(code);
	}
	close(p[1]);
	CHECK(read(p[0], &user_obj, sizeof(user_obj)) == sizeof(user_obj) && user_obj,
	      "uid 1000 could not create within its own budget");
	close(p[0]);
	/* root over its own budget, but root may attach another uid's object */
	CHECK(!obj_create(fd, 512 << 10) && errno == ENOMEM, "root budget");
	CHECK_OK(obj_ioctl(fd, SBPF_IOC_OBJ_ATTACH, user_obj));
	kill(pid, SIGKILL);
	CHECK(waitpid(pid, &st, 0) == pid && WIFSIGNALED(st), "child status %x", st);
	CHECK(!param_write("max_user_bytes", limit), "restore max_user_bytes");
	close(fd);
}

static void t_debugfs(void)
{
	struct ring r;
	char line[512];
	FILE *f;
	int found = 0;

	CHECK(!ring_init(&r, 16, 0, 0, 0, 0), "ring_init");
	f = fopen("/sys/kernel/debug/sbpf_ring/rings", "r");
	CHECK(f != NULL, "debugfs: %s", strerror(errno));
	if (f) {
		while (fgets(line, sizeof(line), f))
			if (strstr(line, "sq_entries 16 cq_entries 32"))
				found = 1;
		fclose(f);
	}
	CHECK(found, "ring line missing");
	ring_exit(&r);
}

int main(void)
{
	uint64_t start = param_read("pinned_bytes");

	setvbuf(stdout, NULL, _IOLBF, 0);
	run_test("setup_refusals", t_setup_refusals);
	run_test("mmap_refusals", t_mmap_refusals);
	run_test("ops_ring_enter", t_ops_ring_enter);
	run_test("ops_ring_sqpoll", t_ops_ring_sqpoll);
	run_test("ops_sync_op", t_ops_sync);
	run_test("validation_enter", t_validation_enter);
	run_test("validation_sqpoll", t_validation_sqpoll);
	run_test("validation_sync_op", t_validation_sync);
	run_test("enter_inline", t_enter_inline);
	run_test("cq_backpressure", t_cq_backpressure);
	run_test("sqpoll_need_wakeup", t_sqpoll_wakeup);
	run_test("wait_timeout", t_wait_timeout);
	run_test("poll", t_poll);
	run_test("pread_pwrite", t_pread_pwrite);
	run_test("objects", t_objects);
	run_test("mapping_outlives_fd", t_mapping_outlives_fd);
	run_test("memory_limit", t_memory_limit);
	run_test("uid_rules", t_uid_rules);
	run_test("debugfs", t_debugfs);
	{
		uint64_t end = pinned_settle(start);

		t_failed = end != start;
		printf("TEST functional_pinned_bytes %s", t_failed ? "FAIL" : "PASS");
		if (t_failed)
			printf(" pinned %llu, start %llu", (unsigned long long)end,
			       (unsigned long long)start);
		printf("\n");
		t_total_failed += t_failed;
	}
	return t_total_failed ? 1 : 0;
}
