// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * Two processes attached to one object: each sees the other's writes, and their
 * concurrent FETCH_ADD64s (one through a SQPOLL ring, one inline) total exactly.
 */
#include "sbpf_test.h"

#define N 20000

/* FETCH_ADD64 +1 on word 0, N times, in batches; returns the number of good results. */
static int adder(struct ring *r, uint32_t id)
{
	struct sbpf_cqe c;
	int sent = 0, done = 0, good = 0;

	while (done < N) {
		while (sent < N) {
			struct sbpf_sqe s = sqe_make(SBPF_OP_FETCH_ADD64, id, 0, 0, 0, 1, 0, sent);

			if (ring_push(r, &s))
				break;
			sent++;
		}
		if (r->sqpoll)
			ring_kick(r);
		else
			ring_enter(r, r->p.sq_entries, 0, 0, 0);
		while (ring_reap(r, &c)) {
			good += c.res == 0;
			done++;
		}
		if (r->sqpoll && ring_cq_ready(r) == 0)
			ring_enter(r, 0, 1, SBPF_ENTER_GETEVENTS, 1000000);
	}
	return good;
}

static uint64_t load(struct ring *r, uint32_t id, uint64_t off)
{
	struct sbpf_sqe s = sqe_make(SBPF_OP_LOAD64, id, off, 0, 0, 0, 0, 0);
	struct sbpf_cqe c;

	sync_op(r->fd, &s, &c);
	return c.res == 0 ? c.value : ~0ULL;
}

static void store(struct ring *r, uint32_t id, uint64_t off, uint64_t v)
{
	struct sbpf_sqe s = sqe_make(SBPF_OP_STORE64, id, off, 0, 0, v, 0, 0);
	struct sbpf_cqe c;

	ring_op(r, &s, &c);
}

static int wait_word(struct ring *r, uint32_t id, uint64_t off, uint64_t v)
{
	int i;

	for (i = 0; i < 2000; i++) {
		if (load(r, id, off) == v)
			return 1;
		usleep(1000);
	}
	return 0;
}

static void t_shared(void)
{
	struct ring r;
	uint32_t id;
	pid_t pid;
	int st, good;

	CHECK(!ring_init(&r, 64, 0, SBPF_SETUP_SQPOLL, 0, 4096), "ring_init");
	id = obj_create(r.fd, 4096);
	CHECK(id, "create");
	pid = fork();
	if (pid == 0) {
		struct ring cr;
		struct sbpf_object o = { .id = id };
		int ok = 1;

		/* its own file: attach by id */
		if (ring_init(&cr, 32, 0, 0, 0, 4096) || ioctl(cr.fd, SBPF_IOC_OBJ_ATTACH, &o) ||
		    o.size != 4096)
			_exit(10);
		store(&cr, id, 8, 0xc0ffee);
		ok &= wait_word(&cr, id, 16, 0xbeef);
		ok &= adder(&cr, id) == N;
		store(&cr, id, 24, 1);	/* done */
		_exit(ok ? 0 : 11);
	}
	CHECK(wait_word(&r, id, 8, 0xc0ffee), "parent never saw the child's store");
	store(&r, id, 16, 0xbeef);
	good = adder(&r, id);
	CHECK(good == N, "parent adds: %d good", good);
	CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0,
	      "child status %x", st);
	CHECK(load(&r, id, 24) == 1, "child's final store");
	CHECK(load(&r, id, 0) == 2 * N, "total %llu, want %d", (unsigned long long)load(&r, id, 0),
	      2 * N);
	/* the object outlives the child's file; pread sees the same bytes */
	{
		uint64_t w = 0;

		CHECK(!obj_ioctl(r.fd, SBPF_IOC_OBJ_SELECT, id), "select");
		CHECK(pread(r.fd, &w, 8, 0) == 8 && w == 2 * N, "pread %llu", (unsigned long long)w);
	}
	ring_exit(&r);
}

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	run_test("two_processes_one_object", t_shared);
	return t_total_failed ? 1 : 0;
}
