// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * Hostile clients: processes that bypass any library and write random bytes, random seq
 * words and random head/tail values into every shared page (ring header, entries,
 * completions, arena), with SQPOLL and with inline ENTER, while a well-behaved ring in
 * the same boot completes mixed requests whose every result is checked against a model.
 * Afterwards the hostile rings' rejection counters must be non-zero; the harness checks
 * that the kernel log stayed clean.
 */
#include "sbpf_test.h"

#define HOSTILE_SECS	4
#define WORDS		512	/* 4096-byte object */
#define BATCH		16

static volatile int stop;

struct hctx {
	struct ring *r;
	uint64_t seed;
};

static void *hostile_enter(void *arg)
{
	struct hctx *h = arg;
	uint64_t s = h->seed;

	while (!stop) {
		uint64_t x = xorshift64(&s);
		struct sbpf_enter e = {
			.to_submit = (uint32_t)x % 200,
			.min_complete = (x >> 8) % 4,
			.flags = (x >> 16) % 16 == 0 ? (uint32_t)(x >> 20) :
				 ((x >> 16) & SBPF_ENTER_FLAGS_ALL),
			.resv = (x >> 24) % 32 == 0,
			.timeout_ns = 1000000,
		};

		if (e.min_complete == 0 || (x >> 40) % 4)
			e.flags &= ~SBPF_ENTER_GETEVENTS;
		ioctl(h->r->fd, SBPF_IOC_ENTER, &e);
	}
	return NULL;
}

static int hostile(int sqpoll)
{
	struct ring r;
	struct hctx h;
	pthread_t th;
	uint32_t ids[2];
	uint64_t s = 0x9e3779b97f4a7c15ULL ^ (uint64_t)getpid() * 0x100000001b3ULL;
	uint64_t end = now_ns() + HOSTILE_SECS * 1000000000ULL;
	uint8_t *region;
	struct sbpf_stats st;
	uint32_t cqes_off, cq_bytes;
	unsigned long iter = 0;

	if (ring_init(&r, 64, 128, sqpoll ? SBPF_SETUP_SQPOLL : 0, 1, 65536))
		return 2;
	ids[0] = obj_create(r.fd, 4096);
	ids[1] = obj_create(r.fd, 64);
	region = r.region;
	cqes_off = r.p.cq_off.cqes;
	cq_bytes = 128 * sizeof(struct sbpf_cqe);
	h = (struct hctx){ &r, s ^ 0x1234 };
	pthread_create(&th, NULL, hostile_enter, &h);

	while (now_ns() < end) {
		uint64_t x = xorshift64(&s), y = xorshift64(&s);
		uint32_t head, i;

		switch (x % 10) {
		case 0:	/* any word of the header, including masks, flags, stats */
			*(uint32_t *)(region + (y % (SBPF_RING_HEADER_SIZE / 4)) * 4) = (uint32_t)(y >> 32);
			break;
		case 1:	/* heads and tails */
			*r.sq_head = (uint32_t)y;
			*r.sq_tail = (uint32_t)(y >> 32);
			*r.cq_tail = (uint32_t)(y >> 16);
			break;
		case 2:	/* a garbage completion head */
			*r.cq_head = (uint32_t)y;
			break;
		case 3:
		case 4:	/* drain: keep the CQ moving so garbage gets consumed */
			/* the shared cq tail may hold our garbage; the kernel's is its count */
			__atomic_store_n(r.cq_head, (uint32_t)ring_stats(&r).completed,
					 __ATOMIC_RELEASE);
			/* fallthrough */
		case 5:
		case 6: { /* a run of random entries published where the kernel looks next */
			uint32_t run = 1 + (y >> 56) % 64, j;	/* up to the whole SQ */

			/*
			 * Our garbage may be in the shared sq head (which the kernel never
			 * reads), but its count of consumed entries is its private head.
			 */
			head = (uint32_t)ring_stats(&r).submitted;
			for (j = 0; j < run; j++) {
				uint64_t w[8], z = xorshift64(&s);
				struct sbpf_sqe *e = (struct sbpf_sqe *)w;

				for (i = 0; i < 8; i++)
					w[i] = xorshift64(&s);
				if (z % 2) {	/* plausible: small fields, a real object */
					e->opcode = z % 8;
					e->flags = (z >> 3) % 16 == 0;
					e->resv0 = 0;
					e->resv1 = (z >> 7) % 16 == 0;
					e->resv2 = 0;
					e->obj_id = (z >> 11) % 8 ? ids[(z >> 14) % 2] : (uint32_t)w[7];
					e->obj_off = (w[1] % 5000) & ((z >> 20) % 4 ? ~7ULL : ~0ULL);
					e->arena_off = (z >> 23) % 2 ? w[2] % 70000 : 0;
					e->len = (z >> 24) % 2 ? w[3] % 5000 : 0;
					if ((z >> 25) % 2)
						e->val = e->cmp = 0;
				}
				memcpy(&r.sqes[(head + j) & r.sq_mask], w, 60);
				__atomic_store_n(&r.sqes[(head + j) & r.sq_mask].seq,
						 (z >> 40) % 8 ? head + j + 1 : (uint32_t)w[6],
						 __ATOMIC_RELEASE);
			}
			if (sqpoll)
				ring_enter(&r, 0, 0, SBPF_ENTER_SQ_WAKEUP, 0);
			break;
		}
		case 7:	/* completions and arena */
			*(uint64_t *)(region + cqes_off + (y % (cq_bytes / 8)) * 8) = x;
			for (i = 0; i < 16; i++)
				*(uint64_t *)(r.arena + (xorshift64(&s) % (65536 / 8)) * 8) = y;
			break;
		case 8: { /* a random SYNC_OP */
			struct sbpf_sync_op op;
			uint64_t *w = (uint64_t *)&op;

			for (i = 0; i < sizeof(op) / 8; i++)
				w[i] = xorshift64(&s);
			if (y % 2) {
				op.sqe.opcode = y % 8;
				op.sqe.obj_id = ids[(y >> 8) % 2];
				op.sqe.obj_off %= 8192;
				op.sqe.arena_off %= 70000;
				op.sqe.len %= 8192;
			}
			ioctl(r.fd, SBPF_IOC_SYNC_OP, &op);
			break;
		}
		default: { /* random object churn on our own ids, and ids that do not exist */
			struct sbpf_object o = { .id = (uint32_t)(y | 0x40000000), .size = y };

			ioctl(r.fd, (y >> 40) % 2 ? SBPF_IOC_OBJ_ATTACH : SBPF_IOC_OBJ_DETACH, &o);
			if ((y >> 41) % 64 == 0) {
				obj_ioctl(r.fd, SBPF_IOC_OBJ_DETACH, ids[1]);
				ids[1] = obj_create(r.fd, 8 * (1 + (y >> 50) % 64));
			}
			break;
		}
		}
		if (!(++iter % 256))
			sched_yield();
	}
	stop = 1;
	pthread_join(th, NULL);
	st = ring_stats(&r);
	printf("hostile %s: iterations %lu submitted %llu rejected %llu opcode %llu reserved %llu "
	       "object %llu bounds %llu align %llu cq_full %llu wakeups %llu sync_ops %llu\n",
	       sqpoll ? "sqpoll" : "enter", iter, (unsigned long long)st.submitted,
	       (unsigned long long)st.rejected, (unsigned long long)st.rejected_opcode,
	       (unsigned long long)st.rejected_reserved, (unsigned long long)st.rejected_object,
	       (unsigned long long)st.rejected_bounds, (unsigned long long)st.rejected_align,
	       (unsigned long long)st.cq_full, (unsigned long long)st.wakeups,
	       (unsigned long long)st.sync_ops);
	ring_exit(&r);
	return st.submitted > 0 && st.rejected > 0 && st.rejected_opcode > 0 &&
	       st.rejected_bounds > 0 ? 0 : 1;
}

/* ---- the well-behaved ring, checked against a model ---- */

struct expect {
	uint8_t op;
	int res;
	uint64_t value;
	uint32_t arena_off, len;
	uint8_t bytes[128];
};

static uint64_t model[WORDS];

static int good_ring(int sqpoll, int *checked)
{
	struct ring r;
	struct expect ex[BATCH];
	struct sbpf_cqe c;
	uint64_t s = 42 + sqpoll, i = 0, end;
	uint32_t id;
	int bad = 0, k, n;

	if (ring_init(&r, 32, 0, sqpoll ? SBPF_SETUP_SQPOLL : 0, 1000, 65536))
		return -1;
	id = obj_create(r.fd, WORDS * 8);
	memset(model, 0, sizeof(model));
	end = now_ns() + (HOSTILE_SECS - 1) * 1000000000ULL;
	while (!bad && (now_ns() < end || i < 2000)) {
		uint64_t first = i;

		for (k = 0; k < BATCH; k++, i++) {
			uint64_t x = xorshift64(&s), v = xorshift64(&s);
			uint32_t w = x % WORDS, len = 8 * (1 + (x >> 12) % 16);
			struct expect *e = &ex[k];
			struct sbpf_sqe q;

			if (w + len / 8 > WORDS)
				w = WORDS - len / 8;
			memset(e, 0, sizeof(*e));
			e->op = (x >> 9) % 6 + 1;
			switch (e->op) {
			case SBPF_OP_READ:
				e->arena_off = 32768 + k * 128;
				e->len = len;
				e->res = len;
				memcpy(e->bytes, &model[w], len);
				memset(r.arena + e->arena_off, 0xee, 128);
				q = sqe_make(e->op, id, w * 8, e->arena_off, len, 0, 0, i);
				break;
			case SBPF_OP_WRITE:
				e->arena_off = k * 128;
				e->res = len;
				for (n = 0; n < (int)len; n++)
					r.arena[e->arena_off + n] = (uint8_t)(v >> (n % 8 * 8)) + n;
				memcpy(&model[w], r.arena + e->arena_off, len);
				q = sqe_make(e->op, id, w * 8, e->arena_off, len, 0, 0, i);
				break;
			case SBPF_OP_LOAD64:
				e->value = model[w];
				q = sqe_make(e->op, id, w * 8, 0, 0, 0, 0, i);
				break;
			case SBPF_OP_STORE64:
				model[w] = v;
				q = sqe_make(e->op, id, w * 8, 0, 0, v, 0, i);
				break;
			case SBPF_OP_FETCH_ADD64:
				e->value = model[w];
				model[w] += v;
				q = sqe_make(e->op, id, w * 8, 0, 0, v, 0, i);
				break;
			default: { /* CAS64 */
				uint64_t cmp = x % 2 ? model[w] : model[w] + 1;

				e->value = model[w];
				e->res = cmp == model[w];
				if (e->res)
					model[w] = v;
				q = sqe_make(e->op, id, w * 8, 0, 0, v, cmp, i);
				break;
			}
			}
			if (ring_push(&r, &q))
				return -2;
		}
		if (sqpoll)
			ring_kick(&r);
		else if (ring_enter(&r, BATCH, BATCH, SBPF_ENTER_GETEVENTS, 10000000000ULL) != BATCH)
			return -3;
		for (k = 0; k < BATCH; k++) {
			struct expect *e = &ex[k];

			if (ring_wait(&r, &c, 10000000000ULL))
				return -4;
			(*checked)++;
			if (c.user_data != first + k || c.res != e->res ||
			    (e->op >= SBPF_OP_LOAD64 && e->op != SBPF_OP_STORE64 &&
			     c.value != e->value) ||
			    (e->op == SBPF_OP_READ &&
			     memcmp(r.arena + e->arena_off, e->bytes, e->len))) {
				printf("good ring: entry %llu op %u: res %d want %d value %llx "
				       "want %llx\n", (unsigned long long)c.user_data, e->op, c.res,
				       e->res, (unsigned long long)c.value,
				       (unsigned long long)e->value);
				bad = 1;
			}
		}
	}
	/* the object equals the model */
	for (k = 0; k < WORDS && !bad; k++) {
		struct sbpf_sqe q = sqe_make(SBPF_OP_LOAD64, id, k * 8, 0, 0, 0, 0, 0);

		sync_op(r.fd, &q, &c);
		bad = c.value != model[k];
	}
	ring_exit(&r);
	return bad ? -5 : 0;
}

static void run_with_hostiles(int good_sqpoll)
{
	pid_t pids[2];
	int i, st, checked = 0, ret;

	stop = 0;
	for (i = 0; i < 2; i++) {
		pids[i] = fork();
		if (pids[i] == 0)
			_exit(hostile(i == 0));
	}
	ret = good_ring(good_sqpoll, &checked);
	CHECK(ret == 0, "well-behaved ring failed (%d) after %d checked", ret, checked);
	printf("good ring (%s): %d requests checked\n", good_sqpoll ? "sqpoll" : "enter", checked);
	for (i = 0; i < 2; i++) {
		CHECK(waitpid(pids[i], &st, 0) == pids[i] && WIFEXITED(st) && WEXITSTATUS(st) == 0,
		      "hostile %s: status %x", i == 0 ? "sqpoll" : "enter", st);
	}
}

static void t_hostile_good_sqpoll(void) { run_with_hostiles(1); }
static void t_hostile_good_enter(void) { run_with_hostiles(0); }

int main(void)
{
	uint64_t start = param_read("pinned_bytes");

	setvbuf(stdout, NULL, _IOLBF, 0);
	run_test("hostile_vs_good_sqpoll", t_hostile_good_sqpoll);
	run_test("hostile_vs_good_enter", t_hostile_good_enter);
	t_failed = pinned_settle(start) != start;
	printf("TEST hostile_pinned_bytes %s\n", t_failed ? "FAIL not back to start" : "PASS");
	return t_total_failed || t_failed ? 1 : 0;
}
