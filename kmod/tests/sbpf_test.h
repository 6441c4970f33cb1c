/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * A minimal user side of the ring for the guest tests: open, set up, map, publish
 * entries (the producer protocol of the ordering contract in src/ring.c), reap
 * completions; and the TEST marker lines the harness reads.
 */
#ifndef _SBPF_TEST_H
#define _SBPF_TEST_H

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <dirent.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "uapi/sbpf_ring.h"

#define DEV "/dev/sbpf_ring"
#define PARAM_DIR "/sys/module/sbpf_ring/parameters/"

/* ---- markers ---- */

static int t_failed;
static char t_why[512];
static int t_total_failed;

#define CHECK(cond, ...)                                                          \
	do {                                                                      \
		if (!(cond)) {                                                    \
			if (!t_failed) {                                          \
				int _n = snprintf(t_why, sizeof(t_why), "line %d: ", \
						  __LINE__);                      \
				snprintf(t_why + _n, sizeof(t_why) - _n, __VA_ARGS__); \
			}                                                         \
			t_failed = 1;                                             \
		}                                                                 \
	} while (0)

/* CHECK that a call failed with errno @e. */
#define CHECK_ERR(call, e)                                                        \
	do {                                                                      \
		errno = 0;                                                        \
		long _r = (long)(call);                                           \
		CHECK(_r == -1 && errno == (e), "%s: got %ld errno %d (%s), want errno %d", \
		      #call, _r, errno, strerror(errno), (e));                    \
	} while (0)

#define CHECK_OK(call)                                                            \
	do {                                                                      \
		errno = 0;                                                        \
		long _r = (long)(call);                                           \
		CHECK(_r >= 0, "%s: got %ld errno %d (%s)", #call, _r, errno,     \
		      strerror(errno));                                           \
	} while (0)

static void run_test(const char *name, void (*fn)(void))
{
	t_failed = 0;
	t_why[0] = 0;
	fn();
	if (t_failed) {
		printf("TEST %s FAIL %s\n", name, t_why);
		t_total_failed++;
	} else {
		printf("TEST %s PASS\n", name);
	}
	fflush(stdout);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

/* ---- module parameters ---- */

static uint64_t param_read(const char *name)
{
	char path[256], buf[64] = "";
	FILE *f;

	snprintf(path, sizeof(path), PARAM_DIR "%s", name);
	f = fopen(path, "r");
	if (!f)
		return ~0ULL;
	if (!fgets(buf, sizeof(buf), f))
		buf[0] = 0;
	fclose(f);
	return strtoull(buf, NULL, 0);
}

static int param_write(const char *name, uint64_t v)
{
	char path[256];
	FILE *f;
	int ret;

	snprintf(path, sizeof(path), PARAM_DIR "%s", name);
	f = fopen(path, "w");
	if (!f)
		return -1;
	ret = fprintf(f, "%" PRIu64 "\n", v) > 0 ? 0 : -1;
	if (fclose(f))
		ret = -1;
	return ret;
}

/* Waits up to 3 s for pinned_bytes to come back to @want. */
static uint64_t pinned_settle(uint64_t want)
{
	uint64_t v = 0;
	int i;

	for (i = 0; i < 300; i++) {
		v = param_read("pinned_bytes");
		if (v == want)
			break;
		usleep(10000);
	}
	return v;
}

/* ---- the ring ---- */

struct ring {
	int fd;
	struct sbpf_params p;
	void *region;
	uint8_t *arena;
	uint32_t *sq_head, *sq_tail, *sq_flags, *cq_head, *cq_tail;
	struct sbpf_sqe *sqes;
	struct sbpf_cqe *cqes;
	struct sbpf_stats *stats;
	uint32_t sq_mask, cq_mask;
	int sqpoll;
};

static int dev_open(void)
{
	return open(DEV, O_RDWR | O_CLOEXEC);
}

/* Sets up and maps a ring on @fd (or a new fd when @fd < 0). 0 or -errno. */
static int ring_init_fd(struct ring *r, int fd, uint32_t sq, uint32_t cq, uint32_t flags,
			uint32_t idle_ms, uint64_t arena)
{
	memset(r, 0, sizeof(*r));
	r->fd = fd >= 0 ? fd : dev_open();
	if (r->fd < 0)
		return -errno;
	r->p.sq_entries = sq;
	r->p.cq_entries = cq;
	r->p.flags = flags | (cq ? SBPF_SETUP_CQSIZE : 0);
	r->p.sq_idle_ms = idle_ms;
	r->p.arena_size = arena;
	if (ioctl(r->fd, SBPF_IOC_SETUP, &r->p))
		goto fail;
	r->region = mmap(NULL, r->p.ring_size, PROT_READ | PROT_WRITE, MAP_SHARED, r->fd,
			 SBPF_OFF_RING);
	if (r->region == MAP_FAILED)
		goto fail;
	if (arena) {
		r->arena = mmap(NULL, arena, PROT_READ | PROT_WRITE, MAP_SHARED, r->fd,
				SBPF_OFF_ARENA);
		if (r->arena == MAP_FAILED)
			goto fail;
	}
	uint8_t *b = r->region;
	r->sq_head = (uint32_t *)(b + r->p.sq_off.head);
	r->sq_tail = (uint32_t *)(b + r->p.sq_off.tail);
	r->sq_flags = (uint32_t *)(b + r->p.sq_off.flags);
	r->cq_head = (uint32_t *)(b + r->p.cq_off.head);
	r->cq_tail = (uint32_t *)(b + r->p.cq_off.tail);
	r->sqes = (struct sbpf_sqe *)(b + r->p.sq_off.sqes);
	r->cqes = (struct sbpf_cqe *)(b + r->p.cq_off.cqes);
	r->stats = (struct sbpf_stats *)(b + r->p.cq_off.stats);
	r->sq_mask = *(uint32_t *)(b + r->p.sq_off.ring_mask);
	r->cq_mask = *(uint32_t *)(b + r->p.cq_off.ring_mask);
	r->sqpoll = !!(flags & SBPF_SETUP_SQPOLL);
	return 0;
fail: {
		int e = -errno;

		if (fd < 0)
			close(r->fd);
		r->fd = -1;
		return e;
	}
}

static int ring_init(struct ring *r, uint32_t sq, uint32_t cq, uint32_t flags, uint32_t idle_ms,
		     uint64_t arena)
{
	return ring_init_fd(r, -1, sq, cq, flags, idle_ms, arena);
}

static void ring_exit(struct ring *r)
{
	if (r->region && r->region != MAP_FAILED)
		munmap(r->region, r->p.ring_size);
	if (r->arena && r->arena != MAP_FAILED)
		munmap(r->arena, r->p.arena_size);
	if (r->fd >= 0)
		close(r->fd);
	memset(r, 0, sizeof(*r));
	r->fd = -1;
}

static int ring_enter(struct ring *r, uint32_t to_submit, uint32_t min_complete, uint32_t flags,
		      uint64_t timeout_ns)
{
	struct sbpf_enter e = {
		.to_submit = to_submit, .min_complete = min_complete,
		.flags = flags, .timeout_ns = timeout_ns,
	};

	return ioctl(r->fd, SBPF_IOC_ENTER, &e);
}

/* Kicks the poller if it announced that it sleeps. */
static void ring_kick(struct ring *r)
{
	/* Full fence between our seq store and the flags load: pairs with [E]. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (r->sqpoll && __atomic_load_n(r->sq_flags, __ATOMIC_RELAXED) & SBPF_SQ_NEED_WAKEUP)
		ring_enter(r, 0, 0, SBPF_ENTER_SQ_WAKEUP, 0);
}

/* Publishes @sqe (multi-producer). 0, or -EAGAIN when the SQ is full. No kick. */
static int ring_push(struct ring *r, const struct sbpf_sqe *sqe)
{
	uint32_t pos = __atomic_load_n(r->sq_tail, __ATOMIC_RELAXED), head;
	struct sbpf_sqe *slot;

	do {
		head = __atomic_load_n(r->sq_head, __ATOMIC_ACQUIRE);
		if (pos - head >= r->p.sq_entries)
			return -EAGAIN;
	} while (!__atomic_compare_exchange_n(r->sq_tail, &pos, pos + 1, 1, __ATOMIC_RELAXED,
					      __ATOMIC_RELAXED));
	slot = &r->sqes[pos & r->sq_mask];
	memcpy(slot, sqe, offsetof(struct sbpf_sqe, seq));
	__atomic_store_n(&slot->seq, pos + 1, __ATOMIC_RELEASE);
	return 0;
}

static int ring_submit(struct ring *r, const struct sbpf_sqe *sqe)
{
	int ret = ring_push(r, sqe);

	if (!ret)
		ring_kick(r);
	return ret;
}

/* Takes one completion if there is one. */
static int ring_reap(struct ring *r, struct sbpf_cqe *out)
{
	uint32_t head = __atomic_load_n(r->cq_head, __ATOMIC_RELAXED);
	uint32_t tail = __atomic_load_n(r->cq_tail, __ATOMIC_ACQUIRE);

	if (head == tail)
		return 0;
	*out = r->cqes[head & r->cq_mask];
	__atomic_store_n(r->cq_head, head + 1, __ATOMIC_RELEASE);
	return 1;
}

static uint32_t ring_cq_ready(struct ring *r)
{
	return __atomic_load_n(r->cq_tail, __ATOMIC_ACQUIRE) -
	       __atomic_load_n(r->cq_head, __ATOMIC_RELAXED);
}

/* Gets one completion: drives the ring (inline ENTER, or kicks the poller) and waits. */
static int ring_wait(struct ring *r, struct sbpf_cqe *out, uint64_t timeout_ns)
{
	uint64_t deadline = now_ns() + timeout_ns;

	while (!ring_reap(r, out)) {
		if (now_ns() > deadline)
			return -ETIME;
		if (r->sqpoll) {
			ring_kick(r);
			ring_enter(r, 0, 1, SBPF_ENTER_GETEVENTS, 10000000);
		} else {
			ring_enter(r, r->p.sq_entries, 1, SBPF_ENTER_GETEVENTS, 10000000);
		}
	}
	return 0;
}

static struct sbpf_stats ring_stats(struct ring *r)
{
	struct sbpf_stats s;

	memset(&s, 0xff, sizeof(s));
	if (ioctl(r->fd, SBPF_IOC_STATS, &s))
		memset(&s, 0xff, sizeof(s));
	return s;
}

/*
 * Whether the SQPOLL poller is asleep for good, within about ten seconds: NEED_WAKEUP
 * holds across 20 ms with no wake-up in between. A kick still on its way to the poller
 * clears the flag, and the poller sets it again when it goes back to sleep.
 */
static int ring_poller_asleep(struct ring *r)
{
	int i;

	for (i = 0; i < 400; i++) {
		uint64_t wakeups = ring_stats(r).wakeups;

		if (__atomic_load_n(r->sq_flags, __ATOMIC_ACQUIRE) & SBPF_SQ_NEED_WAKEUP) {
			usleep(20000);
			if ((__atomic_load_n(r->sq_flags, __ATOMIC_ACQUIRE) &
			     SBPF_SQ_NEED_WAKEUP) && ring_stats(r).wakeups == wakeups)
				return 1;
		}
		usleep(5000);
	}
	return 0;
}

/* ---- objects and entries ---- */

static uint32_t obj_create(int fd, uint64_t size)
{
	struct sbpf_object o = { .size = size };

	return ioctl(fd, SBPF_IOC_OBJ_CREATE, &o) ? 0 : o.id;
}

static int obj_ioctl(int fd, unsigned long cmd, uint32_t id)
{
	struct sbpf_object o = { .id = id };

	return ioctl(fd, cmd, &o);
}

static struct sbpf_sqe sqe_make(uint8_t op, uint32_t obj, uint64_t obj_off, uint64_t arena_off,
				uint32_t len, uint64_t val, uint64_t cmp, uint64_t user_data)
{
	struct sbpf_sqe s = {
		.opcode = op, .obj_id = obj, .obj_off = obj_off, .arena_off = arena_off,
		.len = len, .val = val, .cmp = cmp, .user_data = user_data,
	};
	return s;
}

static int sync_op(int fd, const struct sbpf_sqe *sqe, struct sbpf_cqe *cqe)
{
	struct sbpf_sync_op op = { .sqe = *sqe };
	int ret = ioctl(fd, SBPF_IOC_SYNC_OP, &op);

	*cqe = op.cqe;
	return ret;
}

/* One op through the ring, waited for. Fills @cqe; returns 0 or -ETIME. */
static int ring_op(struct ring *r, const struct sbpf_sqe *sqe, struct sbpf_cqe *cqe)
{
	int ret;

	while ((ret = ring_submit(r, sqe)) == -EAGAIN)
		ring_enter(r, r->p.sq_entries, 0, 0, 0);
	return ring_wait(r, cqe, 5000000000ULL);
}

/* The tids of this process's poller threads ("sbpf-sqp/<tgid>"), at most @max; how many. */
static int poller_tids(int *tids, int max)
{
	char want[32], path[300], comm[64];
	struct dirent *d;
	DIR *dir = opendir("/proc");
	int n = 0;
	FILE *f;

	snprintf(want, sizeof(want), "sbpf-sqp/%d\n", getpid());
	while (dir && n < max && (d = readdir(dir))) {
		snprintf(path, sizeof(path), "/proc/%s/comm", d->d_name);
		f = fopen(path, "r");
		if (!f)
			continue;
		if (fgets(comm, sizeof(comm), f) && !strcmp(comm, want))
			tids[n++] = atoi(d->d_name);
		fclose(f);
	}
	if (dir)
		closedir(dir);
	return n;
}

/* Pins this process's poller threads to @poller_cpu and the caller to @self_cpu, so that a
 * spinning caller never shares a CPU with the poller it waits for; how many were pinned. */
static int pin_poller(int poller_cpu, int self_cpu)
{
	int tids[64], n = poller_tids(tids, 64), found = 0, i;
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(poller_cpu, &set);
	for (i = 0; i < n; i++)
		found += !sched_setaffinity(tids[i], sizeof(set), &set);
	CPU_ZERO(&set);
	CPU_SET(self_cpu, &set);
	sched_setaffinity(0, sizeof(set), &set);
	return found;
}

/*
 * Prints where this process's poller threads stand, for a bench's log: the CPU each last ran
 * on, the CPUs it may use, its cgroup, and its schedstat (ns on the CPU, ns waiting to run,
 * time slices). Prints this process's own CPU, and every other task running or runnable now
 * (it competes for a CPU).
 */
static void report_pollers(const char *who)
{
	int tids[64], n = poller_tids(tids, 64), i;
	char path[300], line[256];
	struct dirent *d;
	DIR *dir = opendir("/proc");
	FILE *f;

	printf("%s: caller on cpu %d\n", who, sched_getcpu());
	while (dir && (d = readdir(dir))) {
		int pid = atoi(d->d_name);
		char *p;

		snprintf(path, sizeof(path), "/proc/%s/stat", d->d_name);
		if (pid <= 0 || pid == getpid() || !(f = fopen(path, "r")))
			continue;
		p = fgets(line, sizeof(line), f) ? strrchr(line, ')') : NULL;
		if (p && p[1] == ' ' && p[2] == 'R') {
			p[1] = 0;
			printf("%s: runnable task %s\n", who, line);
		}
		fclose(f);
	}
	if (dir)
		closedir(dir);
	for (i = 0; i < n; i++) {
		printf("%s: poller %d:", who, tids[i]);
		snprintf(path, sizeof(path), "/proc/%d/status", tids[i]);
		if ((f = fopen(path, "r"))) {
			while (fgets(line, sizeof(line), f))
				if (!strncmp(line, "Cpus_allowed_list:", 18))
					printf(" allowed %s", line + 19);
			fclose(f);
		}
		snprintf(path, sizeof(path), "/proc/%d/stat", tids[i]);
		if ((f = fopen(path, "r"))) {
			/* Field 39, after the ")" that ends field 2: the CPU it last ran on. */
			if (fgets(line, sizeof(line), f)) {
				char *p = strrchr(line, ')');
				int field = 2;

				while (p && *p && field < 39)
					if (*p++ == ' ')
						field++;
				printf("    last cpu %d", field == 39 ? atoi(p) : -1);
			}
			fclose(f);
		}
		snprintf(path, sizeof(path), "/proc/%d/schedstat", tids[i]);
		if ((f = fopen(path, "r"))) {
			if (fgets(line, sizeof(line), f))
				printf(", schedstat (run ns, wait ns, slices) %s", line);
			fclose(f);
		}
		snprintf(path, sizeof(path), "/proc/%d/cgroup", tids[i]);
		if ((f = fopen(path, "r"))) {
			while (fgets(line, sizeof(line), f))
				printf("    cgroup %s", line);
			fclose(f);
		}
	}
}

static uint64_t xorshift64(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *s = x;
}

#endif /* _SBPF_TEST_H */
