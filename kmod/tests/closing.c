// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * Closing a ring, run in the guest: SHUTDOWN, the owner's last close and the last unmap
 * of the ring region each wake every thread blocked in ENTER(GETEVENTS) or poll() within
 * WAKE_LIMIT; after SHUTDOWN nothing is consumed and sq head is exact; a poller asleep on
 * a full CQ is woken by poll() or ENTER alone; an ENTER fed by another thread returns.
 */
#include "sbpf_test.h"

#include <sys/epoll.h>

#define WAKE_LIMIT_NS	2000000000ULL
#define BLOCK_US	150000		/* time for the waiter to block before we act */

enum wait_kind { WAIT_ENTER, WAIT_POLL, WAIT_EPOLL };

struct waiter {
	int fd;
	enum wait_kind kind;
	pthread_t th;
	int ret, err;
	short revents;
	uint32_t events;
	uint64_t woke_ns;
	volatile int done;
};

static void on_usr1(int sig) { (void)sig; }

static void *waiter_main(void *arg)
{
	struct waiter *w = arg;
	struct sbpf_enter e = { .min_complete = 1, .flags = SBPF_ENTER_GETEVENTS };
	struct pollfd pfd = { .fd = w->fd, .events = POLLIN };
	struct epoll_event ev = { .events = EPOLLIN };
	int ep;

	errno = 0;
	switch (w->kind) {
	case WAIT_ENTER:
		w->ret = ioctl(w->fd, SBPF_IOC_ENTER, &e);
		break;
	case WAIT_POLL:
		w->ret = poll(&pfd, 1, -1);
		w->revents = pfd.revents;
		break;
	case WAIT_EPOLL:
		ep = epoll_create1(EPOLL_CLOEXEC);
		epoll_ctl(ep, EPOLL_CTL_ADD, w->fd, &ev);
		w->ret = epoll_wait(ep, &ev, 1, -1);
		w->events = ev.events;
		close(ep);
		break;
	}
	w->err = errno;
	w->woke_ns = now_ns();
	__atomic_store_n(&w->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

static void waiter_start(struct waiter *w, int fd, enum wait_kind kind)
{
	struct sigaction sa = { .sa_handler = on_usr1 };	/* no SA_RESTART */

	sigaction(SIGUSR1, &sa, NULL);
	memset(w, 0, sizeof(*w));
	w->fd = fd;
	w->kind = kind;
	pthread_create(&w->th, NULL, waiter_main, w);
	usleep(BLOCK_US);
}

/*
 * Waits for the waiter to return, at most WAKE_LIMIT_NS after @t0; 1 if it did. A waiter
 * still blocked is interrupted with a signal so that the test ends either way.
 */
static int waiter_join(struct waiter *w, uint64_t t0)
{
	int woke;

	while (!__atomic_load_n(&w->done, __ATOMIC_ACQUIRE) && now_ns() - t0 < WAKE_LIMIT_NS)
		usleep(1000);
	woke = __atomic_load_n(&w->done, __ATOMIC_ACQUIRE);
	while (!__atomic_load_n(&w->done, __ATOMIC_ACQUIRE)) {
		pthread_kill(w->th, SIGUSR1);
		usleep(10000);
	}
	pthread_join(w->th, NULL);
	return woke && w->woke_ns - t0 < WAKE_LIMIT_NS;
}

static const char *kind_name(enum wait_kind k)
{
	return k == WAIT_ENTER ? "ENTER" : k == WAIT_POLL ? "poll" : "epoll";
}

/* A waiter of @kind blocked on an empty ring is woken by SHUTDOWN from this thread. */
static void shutdown_wakes(uint32_t flags, enum wait_kind kind)
{
	struct ring r;
	struct waiter w;
	uint64_t t0;

	CHECK(!ring_init(&r, 8, 0, flags, 1, 0), "ring_init");
	waiter_start(&w, r.fd, kind);
	CHECK(!w.done, "%s returned before SHUTDOWN: %d errno %d", kind_name(kind), w.ret, w.err);
	t0 = now_ns();
	CHECK_OK(ioctl(r.fd, SBPF_IOC_SHUTDOWN));
	CHECK(waiter_join(&w, t0), "%s not woken by SHUTDOWN within 2 s", kind_name(kind));
	switch (kind) {
	case WAIT_ENTER:
		CHECK(w.ret == -1 && w.err == ESHUTDOWN, "ENTER: %d errno %d", w.ret, w.err);
		break;
	case WAIT_POLL:
		CHECK(w.ret == 1 && (w.revents & POLLHUP) && !(w.revents & POLLIN),
		      "poll: %d revents %x", w.ret, w.revents);
		break;
	case WAIT_EPOLL:
		CHECK(w.ret == 1 && (w.events & EPOLLHUP), "epoll: %d events %x", w.ret,
		      w.events);
		break;
	}
	ring_exit(&r);
}

static void t_shutdown_wakes_enter(void)
{
	shutdown_wakes(0, WAIT_ENTER);
	shutdown_wakes(SBPF_SETUP_SQPOLL, WAIT_ENTER);
}

static void t_shutdown_wakes_poll(void)
{
	shutdown_wakes(0, WAIT_POLL);
	shutdown_wakes(SBPF_SETUP_SQPOLL, WAIT_POLL);
	shutdown_wakes(SBPF_SETUP_SQPOLL, WAIT_EPOLL);
}

/*
 * The ring is dropped from this thread: close() then munmap() (EBADF, at the close), or
 * munmap() alone (ENXIO, the fd stays open).
 */
static void drop_wakes(uint32_t flags, enum wait_kind kind, int do_close)
{
	struct ring r;
	struct waiter w;
	uint64_t t0;

	CHECK(!ring_init(&r, 8, 0, flags, 1, 4096), "ring_init");
	waiter_start(&w, r.fd, kind);
	CHECK(!w.done, "%s returned early", kind_name(kind));
	t0 = now_ns();
	if (do_close) {
		close(r.fd);
		r.fd = -1;
	}
	munmap(r.region, r.p.ring_size);
	r.region = NULL;
	CHECK(waiter_join(&w, t0), "%s not woken by %s within 2 s", kind_name(kind),
	      do_close ? "close+munmap" : "munmap");
	if (kind == WAIT_ENTER)
		CHECK(w.ret == -1 && w.err == (do_close ? EBADF : ENXIO), "ENTER: %d errno %d",
		      w.ret, w.err);
	else if (do_close)	/* poll() looks the fd up again: it is gone */
		CHECK(w.ret == 1 && (w.revents & POLLNVAL), "poll: %d revents %x", w.ret,
		      w.revents);
	else
		CHECK(w.ret == 1 && (w.revents & POLLHUP), "poll: %d revents %x", w.ret,
		      w.revents);
	if (!do_close) {
		struct sbpf_enter e = { .to_submit = 1 };

		CHECK_ERR(ioctl(r.fd, SBPF_IOC_ENTER, &e), ENXIO);
	}
	ring_exit(&r);
}

static void t_close_wakes_enter(void)
{
	drop_wakes(0, WAIT_ENTER, 1);
	drop_wakes(SBPF_SETUP_SQPOLL, WAIT_ENTER, 1);
	drop_wakes(0, WAIT_ENTER, 0);
	drop_wakes(SBPF_SETUP_SQPOLL, WAIT_ENTER, 0);
}

static void t_close_wakes_poll(void)
{
	drop_wakes(0, WAIT_POLL, 1);
	drop_wakes(SBPF_SETUP_SQPOLL, WAIT_POLL, 1);
	drop_wakes(0, WAIT_POLL, 0);
}

/* Closing a dup, or a forked child's copy, does not close the owner's ring. */
static void t_close_rules(void)
{
	struct ring r;
	struct sbpf_sqe s = sqe_make(SBPF_OP_NOP, 0, 0, 0, 0, 0, 0, 3);
	struct sbpf_cqe c;
	int d, st;
	pid_t pid;

	CHECK(!ring_init(&r, 8, 0, SBPF_SETUP_SQPOLL, 1, 0), "ring_init");
	d = dup(r.fd);
	CHECK(d >= 0 && !close(d), "dup+close");
	pid = fork();
	if (pid == 0)
		_exit(close(r.fd) ? 1 : 0);	/* and exits, closing the rest */
	CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && !WEXITSTATUS(st), "child %x", st);
	CHECK(!ring_op(&r, &s, &c) && c.user_data == 3, "ring closed by a dup or a child");
	/* ... but a second fd of the owner keeps it open until both are closed */
	d = dup(r.fd);
	close(r.fd);
	r.fd = d;
	CHECK(!ring_op(&r, &s, &c) && c.user_data == 3, "ring closed with a dup left");
	/* SHUTDOWN is idempotent; the first cause sticks */
	CHECK_OK(ioctl(r.fd, SBPF_IOC_SHUTDOWN));
	CHECK_OK(ioctl(r.fd, SBPF_IOC_SHUTDOWN));
	munmap(r.region, r.p.ring_size);
	r.region = NULL;
	CHECK_ERR(ring_enter(&r, 0, 1, SBPF_ENTER_GETEVENTS, WAKE_LIMIT_NS), ESHUTDOWN);
	ring_exit(&r);
	/* before SETUP */
	d = dev_open();
	CHECK_ERR(ioctl(d, SBPF_IOC_SHUTDOWN), EINVAL);
	close(d);
}

struct feeder {
	struct ring *r;
	volatile int stop;
	uint64_t pushed;
	int reap;
	uint64_t deadline;	/* stops on its own then, so an ENTER it feeds must end */
};

/* Publishes NOPs as fast as it can (and, with @reap, reaps completions) until stopped. */
static void *feeder_main(void *arg)
{
	struct feeder *f = arg;
	struct sbpf_sqe s = sqe_make(SBPF_OP_NOP, 0, 0, 0, 0, 0, 0, 0);
	struct sbpf_cqe c;

	while (!__atomic_load_n(&f->stop, __ATOMIC_RELAXED) &&
	       (!f->deadline || now_ns() < f->deadline)) {
		s.user_data = f->pushed;
		if (!ring_push(f->r, &s)) {
			f->pushed++;
			if (!(f->pushed % 8))
				ring_kick(f->r);
		}
		while (f->reap && ring_reap(f->r, &c))
			;
	}
	return NULL;
}

/*
 * After SHUTDOWN returns, sq head stays where it is, equal to the number of completions
 * posted (every consumed entry got one), and ENTER consumes nothing.
 */
static void shutdown_stops(uint32_t flags)
{
	struct ring r;
	struct feeder f = { .r = &r };
	pthread_t th;
	uint32_t head, tail;
	struct sbpf_enter e = { .to_submit = 8 };
	int i;

	CHECK(!ring_init(&r, 8, 64, flags, 1, 0), "ring_init");
	pthread_create(&th, NULL, feeder_main, &f);
	for (i = 0; i < 100 && __atomic_load_n(r.sq_head, __ATOMIC_ACQUIRE) < 16; i++) {
		if (!(flags & SBPF_SETUP_SQPOLL))
			ring_enter(&r, 8, 0, 0, 0);
		usleep(1000);
	}
	CHECK_OK(ioctl(r.fd, SBPF_IOC_SHUTDOWN));
	head = __atomic_load_n(r.sq_head, __ATOMIC_ACQUIRE);
	tail = __atomic_load_n(r.cq_tail, __ATOMIC_ACQUIRE);
	CHECK(head == tail, "sq head %u, cq tail %u", head, tail);
	CHECK_ERR(ioctl(r.fd, SBPF_IOC_ENTER, &e), ESHUTDOWN);
	ring_kick(&r);
	usleep(100000);
	__atomic_store_n(&f.stop, 1, __ATOMIC_RELAXED);
	pthread_join(th, NULL);
	CHECK(f.pushed > head, "feeder published %llu, consumed %u",
	      (unsigned long long)f.pushed, head);
	CHECK(__atomic_load_n(r.sq_head, __ATOMIC_ACQUIRE) == head, "sq head moved %u -> %u",
	      head, *r.sq_head);
	CHECK(__atomic_load_n(r.cq_tail, __ATOMIC_ACQUIRE) == tail, "cq tail moved");
	CHECK(ring_stats(&r).submitted == head, "submitted %llu, head %u",
	      (unsigned long long)ring_stats(&r).submitted, head);
	/* completions stay readable; GETEVENTS answers what is ready, else ESHUTDOWN */
	CHECK(ring_cq_ready(&r) == head && head > 0, "cq ready %u", ring_cq_ready(&r));
	CHECK(ring_enter(&r, 0, 1, SBPF_ENTER_GETEVENTS, 0) == 0, "GETEVENTS with one ready");
	{
		struct sbpf_cqe c;

		CHECK(ring_reap(&r, &c), "reap");	/* fewer ready than the CQ holds */
	}
	CHECK_ERR(ring_enter(&r, 0, 64, SBPF_ENTER_GETEVENTS, WAKE_LIMIT_NS), ESHUTDOWN);
	CHECK_ERR(ring_enter(&r, 0, 0, 0, 0), ESHUTDOWN);
	{
		struct pollfd pfd = { .fd = r.fd, .events = POLLIN };

		CHECK(head > 1, "consumed %u", head);
		CHECK(poll(&pfd, 1, 0) == 1 && pfd.revents == (POLLIN | POLLHUP),
		      "poll revents %x", pfd.revents);
	}
	/* STATS and SYNC_OP still answer */
	{
		struct sbpf_sqe s = sqe_make(SBPF_OP_NOP, 0, 0, 0, 0, 0, 0, 9);
		struct sbpf_cqe c;

		CHECK(!sync_op(r.fd, &s, &c) && c.user_data == 9, "SYNC_OP after SHUTDOWN");
	}
	ring_exit(&r);
}

static void t_shutdown_stops_sqpoll(void) { shutdown_stops(SBPF_SETUP_SQPOLL); }
static void t_shutdown_stops_inline(void) { shutdown_stops(0); }

/*
 * The poller sleeps on a full CQ; the consumer reaps everything (a store to cq head, no
 * fence, no kick) and then waits in poll() or ENTER(GETEVENTS) without SQ_WAKEUP: the
 * wait alone must get the poller going.
 */
static void full_cq_woken(enum wait_kind kind)
{
	struct ring r;
	struct sbpf_sqe s = sqe_make(SBPF_OP_NOP, 0, 0, 0, 0, 0, 0, 0);
	struct sbpf_cqe c;
	uint64_t t0;
	int i, n = 0;

	CHECK(!ring_init(&r, 8, 8, SBPF_SETUP_SQPOLL, 1, 0), "ring_init");
	for (i = 0; i < 12; i++) {
		s.user_data = i;
		while (ring_push(&r, &s) == -EAGAIN)
			usleep(1000);
		ring_kick(&r);
	}
	for (i = 0; i < 1000 && ring_cq_ready(&r) < 8; i++)
		usleep(10000);
	/* it has seen an entry against the full CQ (not merely been kicked), then sleeps */
	for (i = 0; i < 1000 && ring_stats(&r).cq_full < 1; i++)
		usleep(10000);
	CHECK(ring_poller_asleep(&r) && ring_cq_ready(&r) == 8,
	      "poller not asleep on a full CQ: ready %u flags %x, wakeups %llu",
	      ring_cq_ready(&r), *r.sq_flags, (unsigned long long)ring_stats(&r).wakeups);
	while (ring_reap(&r, &c))
		n++;
	t0 = now_ns();
	if (kind == WAIT_POLL) {
		struct pollfd pfd = { .fd = r.fd, .events = POLLIN };

		CHECK(poll(&pfd, 1, 2000) == 1 && (pfd.revents & POLLIN), "poll: revents %x",
		      pfd.revents);
	} else {
		CHECK(ring_enter(&r, 0, 4, SBPF_ENTER_GETEVENTS, WAKE_LIMIT_NS) == 0,
		      "ENTER(GETEVENTS): %s", strerror(errno));
	}
	CHECK(now_ns() - t0 < WAKE_LIMIT_NS, "took %llu ms",
	      (unsigned long long)(now_ns() - t0) / 1000000);
	for (i = 0; i < 200 && ring_cq_ready(&r) < 4; i++)
		usleep(10000);
	while (ring_reap(&r, &c)) {
		CHECK(c.user_data == (uint64_t)n, "order %llu want %d",
		      (unsigned long long)c.user_data, n);
		n++;
	}
	CHECK(n == 12, "completions %d", n);
	ring_exit(&r);
}

static void t_full_cq_poll(void) { full_cq_woken(WAIT_POLL); }
static void t_full_cq_enter(void) { full_cq_woken(WAIT_ENTER); }

/* An inline ENTER asked for everything returns after at most one SQ's worth. */
static void t_fed_enter_returns(void)
{
	struct ring r;
	struct feeder f = { .r = &r, .reap = 1, .deadline = now_ns() + 3 * WAKE_LIMIT_NS };
	pthread_t th;
	uint64_t t0;
	int n, i, max = 0;

	CHECK(!ring_init(&r, 16, 0, 0, 0, 0), "ring_init");
	pthread_create(&th, NULL, feeder_main, &f);
	for (i = 0; i < 50 && now_ns() < f.deadline; i++) {
		t0 = now_ns();
		n = ring_enter(&r, 0xffffffffu, 0, 0, 0);
		CHECK(now_ns() - t0 < WAKE_LIMIT_NS, "ENTER took %llu ms",
		      (unsigned long long)(now_ns() - t0) / 1000000);
		if (n > max)
			max = n;
		usleep(1000);
	}
	__atomic_store_n(&f.stop, 1, __ATOMIC_RELAXED);
	pthread_join(th, NULL);
	CHECK(max <= 16 && max > 0, "ENTER consumed %d of a 16-entry SQ", max);
	ring_exit(&r);
}

int main(void)
{
	uint64_t start = param_read("pinned_bytes");

	setvbuf(stdout, NULL, _IOLBF, 0);
	run_test("shutdown_wakes_enter", t_shutdown_wakes_enter);
	run_test("shutdown_wakes_poll", t_shutdown_wakes_poll);
	run_test("close_wakes_enter", t_close_wakes_enter);
	run_test("close_wakes_poll", t_close_wakes_poll);
	run_test("close_rules", t_close_rules);
	run_test("shutdown_stops_sqpoll", t_shutdown_stops_sqpoll);
	run_test("shutdown_stops_inline", t_shutdown_stops_inline);
	run_test("full_cq_woken_by_poll", t_full_cq_poll);
	run_test("full_cq_woken_by_enter", t_full_cq_enter);
	run_test("fed_enter_returns", t_fed_enter_returns);
	{
		uint64_t end = pinned_settle(start);

		t_failed = end != start;
		printf("TEST closing_pinned_bytes %s", t_failed ? "FAIL" : "PASS");
		if (t_failed)
			printf(" pinned %llu, start %llu", (unsigned long long)end,
			       (unsigned long long)start);
		printf("\n");
		t_total_failed += t_failed;
	}
	return t_total_failed ? 1 : 0;
}
