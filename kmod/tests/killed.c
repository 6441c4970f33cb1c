// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * A client killed mid-submit: children set up rings (SQPOLL, and inline ENTER), create
 * objects and submit without pause; the parent SIGKILLs them at varied moments and
 * checks that every pinned byte comes back. `killed hold FILE` sets up a ring, creates
 * FILE and waits to be killed (the harness's rmmod-while-open check).
 */
#include "sbpf_test.h"

static void submitter(int sqpoll, int ready_fd)
{
	struct ring r;
	uint32_t ids[4];
	uint64_t n = 0;
	struct sbpf_cqe c;
	int i;

	if (ring_init(&r, 64, 0, sqpoll ? SBPF_SETUP_SQPOLL : 0, 1, 1 << 20))
		_exit(2);
	for (i = 0; i < 4; i++)
		if (!(ids[i] = obj_create(r.fd, 1 << 20)))
			_exit(3);
	if (write(ready_fd, "r", 1) != 1)
		_exit(4);
	for (;;) {
		struct sbpf_sqe s = sqe_make(n % 2 ? SBPF_OP_FETCH_ADD64 : SBPF_OP_WRITE,
					     ids[n % 4], (n * 64) % (1 << 20), n % 2 ? 0 : 4096,
					     n % 2 ? 0 : 4096, n % 2 ? 1 : 0, 0, n);

		if (n % 2)
			s.obj_off &= ~7ULL;
		else
			s.obj_off = (n * 4096) % (1 << 20);
		if (ring_push(&r, &s) == 0)
			n++;
		else if (!sqpoll)
			ring_enter(&r, 64, 0, 0, 0);
		if (sqpoll && !(n % 16))
			ring_kick(&r);
		while (ring_reap(&r, &c))
			;
	}
}

static void hold(const char *path)
{
	struct ring r;
	int fd;

	if (ring_init(&r, 8, 0, SBPF_SETUP_SQPOLL, 0, 4096) || !obj_create(r.fd, 4096))
		_exit(2);
	fd = open(path, O_CREAT | O_WRONLY, 0644);
	close(fd);
	for (;;)
		pause();
}

static void t_killed(void)
{
	uint64_t start = param_read("pinned_bytes");
	int round;

	for (round = 0; round < 8; round++) {
		int pfd[2], st;
		char b;
		pid_t pid;

		CHECK(!pipe(pfd), "pipe");
		pid = fork();
		if (pid == 0) {
			close(pfd[0]);
			submitter(round % 2 == 0, pfd[1]);
		}
		close(pfd[1]);
		CHECK(read(pfd[0], &b, 1) == 1, "child %d never got ready", round);
		close(pfd[0]);
		CHECK(param_read("pinned_bytes") > start, "child pinned nothing");
		usleep(20000 + round * 15000);
		kill(pid, SIGKILL);
		CHECK(waitpid(pid, &st, 0) == pid && WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL,
		      "child %d status %x", round, st);
		CHECK(pinned_settle(start) == start, "round %d: pinned %llu, start %llu", round,
		      (unsigned long long)param_read("pinned_bytes"), (unsigned long long)start);
	}
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc == 3 && !strcmp(argv[1], "hold"))
		hold(argv[2]);
	run_test("killed_mid_submit", t_killed);
	return t_total_failed ? 1 : 0;
}
