// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * Resource limits, run in the guest (issue 11: an unprivileged user cannot exhaust the
 * machine). Each test reproduces one finding against the module's limits, mostly as uid
 * 1000 in a child process: a flood of tiny objects held by files that only mappings keep
 * alive; create/detach churn; SQPOLL pollers past the caps; the poller's CPU against its
 * owner's cgroup; memory.current and memory.max of the caller's cgroup; read-only argument
 * buffers; who may open the device and use SQPOLL; object ids that cannot run out.
 */
#include "sbpf_test.h"

#include <sys/resource.h>

/*
 * <sys/mount.h> and <sys/stat.h> (with _GNU_SOURCE) pull in <linux/types.h>, whose __u64
 * the uapi header defines itself in user space.
 */
int mount(const char *source, const char *target, const char *type, unsigned long flags,
	  const void *data);
int mkdir(const char *path, mode_t mode);

#define USER_UID	1000
#define CGROOT		"/sys/fs/cgroup"

/* ---- helpers ---- */

static int file_write(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC), ok;

	if (fd < 0)
		return -1;
	ok = write(fd, s, strlen(s)) == (ssize_t)strlen(s);
	close(fd);
	return ok ? 0 : -1;
}

/* The number after "@key " in a "key value" file (meminfo, cpu.stat), or ~0. */
static uint64_t file_key(const char *path, const char *key)
{
	char line[256];
	size_t n = strlen(key);
	uint64_t v = ~0ULL;
	FILE *f = fopen(path, "r");

	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, key, n) && (line[n] == ' ' || line[n] == ':')) {
			v = strtoull(line + n + 1, NULL, 10);
			break;
		}
	if (f)
		fclose(f);
	return v;
}

static uint64_t file_u64(const char *path)
{
	char buf[64] = "";
	FILE *f = fopen(path, "r");

	if (!f)
		return ~0ULL;
	if (!fgets(buf, sizeof(buf), f))
		buf[0] = 0;
	fclose(f);
	return strtoull(buf, NULL, 10);
}

static uint64_t mem_available(void)
{
	return file_key("/proc/meminfo", "MemAvailable") * 1024;
}

/* Results a child writes for its parent: a shared anonymous page. */
struct shared {
	int code;		/* 0: the child's checks passed */
	char why[256];
	uint64_t v[8];
};

static struct shared *shared_new(void)
{
	struct shared *s = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
				-1, 0);

	return s == MAP_FAILED ? NULL : memset(s, 0, sizeof(*s));
}

#define CHILD_FAIL(s, ...)                                                        \
	do {                                                                      \
		if (!(s)->code) {                                                 \
			(s)->code = __LINE__;                                     \
			snprintf((s)->why, sizeof((s)->why), __VA_ARGS__);        \
		}                                                                 \
	} while (0)

/* Runs @fn in a child as @uid (root when 0); 0 if it exited 0. */
static int run_as(uid_t uid, void (*fn)(struct shared *), struct shared *s)
{
	int st;
	pid_t pid = fork();

	if (pid == 0) {
		if (uid && (setgid(uid) || setuid(uid)))
			_exit(90);
		fn(s);
		_exit(s->code ? 1 : 0);
	}
	if (pid < 0 || waitpid(pid, &st, 0) != pid)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* Sets module parameter @name for one test; restored by params_restore(). */
static struct { const char *name; uint64_t v; } saved[16];
static int nsaved;

static int param_set(const char *name, uint64_t v)
{
	if (nsaved < 16) {
		saved[nsaved].name = name;
		saved[nsaved].v = param_read(name);
		nsaved++;
	}
	return param_write(name, v);
}

static void params_restore(void)
{
	while (nsaved > 0) {
		nsaved--;
		param_write(saved[nsaved].name, saved[nsaved].v);
	}
}

/* An fd with a tiny mapped ring and no fd left: the file lives in its mapping only. */
static int mapped_ring_no_fd(void)
{
	struct ring r;
	int ret = ring_init(&r, 1, 0, 0, 0, 0);

	if (ret)
		return ret;
	close(r.fd);
	return 0;
}

/* ---- finding 1: charged what they cost; rings without fds still count ---- */

static void flood_child(struct shared *s)
{
	uint64_t m0 = mem_available(), objects = 0;
	int files = 0, err = 0;

	while (objects < 8192 && !err) {
		struct ring r;
		int i, ret = ring_init(&r, 1, 0, 0, 0, 0);

		if (ret) {
			err = -ret;
			break;
		}
		files++;
		for (i = 0; i < 64 && objects < 8192; i++) {
			if (!obj_create(r.fd, 8)) {
				err = errno;
				break;
			}
			objects++;
		}
		close(r.fd);	/* the mapping keeps the file, its ring and objects */
	}
	s->v[0] = objects;
	s->v[1] = err;
	s->v[2] = m0 - mem_available();
	s->v[3] = files;
	s->v[4] = param_read("pinned_bytes");
}

static void t_tiny_object_flood(void)
{
	struct shared *s = shared_new();
	uint64_t budget = 1 << 20, start = param_read("pinned_bytes");

	CHECK(!param_set("max_user_bytes", budget), "set max_user_bytes");
	CHECK(run_as(USER_UID, flood_child, s) == 0, "child");
	printf("flood: %llu objects in %llu files, stopped by errno %llu, MemAvailable fell by "
	       "%lld KiB\n", (unsigned long long)s->v[0], (unsigned long long)s->v[3],
	       (unsigned long long)s->v[1], (long long)s->v[2] / 1024);
	CHECK(s->v[0] < 8192 && s->v[1] == ENOMEM, "flood of %llu 8-byte objects not stopped "
	      "(errno %llu)", (unsigned long long)s->v[0], (unsigned long long)s->v[1]);
	CHECK(s->v[4] - start <= budget, "charged %llu over a budget of %llu",
	      (unsigned long long)(s->v[4] - start), (unsigned long long)budget);
	CHECK((int64_t)s->v[2] < (int64_t)(budget + (4 << 20)),
	      "MemAvailable fell by %lld KiB for a %llu KiB budget", (long long)s->v[2] / 1024,
	      (unsigned long long)budget >> 10);
	params_restore();
	CHECK(pinned_settle(start) == start, "pinned %llu, start %llu",
	      (unsigned long long)param_read("pinned_bytes"), (unsigned long long)start);
	munmap(s, 4096);
}

/* Each object and ring is charged at least its whole pages, and not much more. */
static void t_charged_cost(void)
{
	uint64_t start = param_read("pinned_bytes"), d, tiny, page1;
	int fd = dev_open();
	uint32_t id;

	id = obj_create(fd, 8);
	d = tiny = param_read("pinned_bytes") - start;
	CHECK(id && d >= 64 && d <= 512, "8-byte object charged %llu", (unsigned long long)d);
	obj_ioctl(fd, SBPF_IOC_OBJ_DETACH, id);
	CHECK(pinned_settle(start) == start, "uncharged");
	id = obj_create(fd, 4096 + 8);
	d = page1 = param_read("pinned_bytes") - start;
	CHECK(id && d >= 8192 && d <= 8192 + 1024, "4104-byte object charged %llu",
	      (unsigned long long)d);
	obj_ioctl(fd, SBPF_IOC_OBJ_DETACH, id);
	CHECK(pinned_settle(start) == start, "uncharged");
	{
		struct ring r;

		CHECK(!ring_init_fd(&r, fd, 8, 0, 0, 0, 8192), "ring");
		d = param_read("pinned_bytes") - start;
		CHECK(d >= 4096 + 8192 + 1024 && d <= 4096 + 8192 + 8192, "ring charged %llu",
		      (unsigned long long)d);
		ring_exit(&r);
	}
	printf("charged: 8-byte object %llu bytes, 4104-byte object %llu, ring of 8 entries "
	       "with an 8 KiB arena %llu\n", (unsigned long long)tiny, (unsigned long long)page1,
	       (unsigned long long)d);
	CHECK(pinned_settle(start) == start, "uncharged");
}

static void object_cap_child(struct shared *s)
{
	int fd = dev_open(), fd2 = dev_open(), i;

	for (i = 0; i < 100; i++)
		if (!obj_create(i < 50 ? fd : fd2, 8))
			CHILD_FAIL(s, "create %d: %s", i, strerror(errno));
	if (obj_create(dev_open(), 8) || errno != ENOSPC)
		CHILD_FAIL(s, "object 101: %s", strerror(errno));
}

static void t_object_cap(void)
{
	struct shared *s = shared_new();

	CHECK(param_read("max_user_objects") == 16384, "default max_user_objects %llu",
	      (unsigned long long)param_read("max_user_objects"));
	CHECK(!param_set("max_user_objects", 100), "set max_user_objects");
	CHECK(run_as(USER_UID, object_cap_child, s) == 0, "%s", s->why);
	params_restore();
	munmap(s, 4096);
}

static void ring_cap_child(struct shared *s)
{
	struct rlimit rl = { 16, 16 };
	int i, ret = 0;

	setrlimit(RLIMIT_NOFILE, &rl);
	for (i = 0; i < 40 && !ret; i++)
		ret = mapped_ring_no_fd();
	s->v[0] = i - (ret != 0);
	s->v[1] = -ret;
}

/* Rings kept alive by mappings alone count: RLIMIT_NOFILE does not bound them. */
static void t_ring_cap(void)
{
	struct shared *s = shared_new();

	CHECK(param_read("max_user_rings") == 256, "default max_user_rings");
	CHECK(!param_set("max_user_rings", 20), "set max_user_rings");
	CHECK(run_as(USER_UID, ring_cap_child, s) == 0, "child");
	CHECK(s->v[0] == 20 && s->v[1] == EMFILE, "%llu rings without fds, then errno %llu",
	      (unsigned long long)s->v[0], (unsigned long long)s->v[1]);
	params_restore();
	munmap(s, 4096);
}

/* ---- finding 2: the budget comes back only when the memory does ---- */

/* Bytes of vmalloc areas that sbpf_obj_create allocated, from /proc/vmallocinfo. */
static uint64_t vmalloc_held(void)
{
	char line[512];
	uint64_t sum = 0;
	FILE *f = fopen("/proc/vmallocinfo", "r");

	while (f && fgets(line, sizeof(line), f)) {
		char *p = strstr(line, " pages=");

		if (p && strstr(line, "sbpf_obj_create"))
			sum += strtoull(p + 7, NULL, 10) * 4096;
	}
	if (f)
		fclose(f);
	return sum;
}

/*
 * Creates and detaches 1 MiB objects as fast as it can, on its own file: 50 of them, or for
 * 5 s. Several run at once, as the attack did, so frees pending on one file overlap
 * creations on the others.
 */
static void *churn_thread(void *arg)
{
	struct shared *s = arg;
	int fd = dev_open();
	uint64_t ok = 0, refused = 0, t0 = now_ns();

	while (ok < 50 && now_ns() - t0 < 5000000000ULL) {
		uint32_t id = obj_create(fd, 1 << 20);

		if (!id) {
			refused++;
			usleep(1000);
			continue;
		}
		ok++;
		obj_ioctl(fd, SBPF_IOC_OBJ_DETACH, id);
	}
	close(fd);
	/* Relaxed: read after pthread_join and the child's exit, which order them. */
	__atomic_add_fetch(&s->v[0], ok, __ATOMIC_RELAXED);
	__atomic_add_fetch(&s->v[1], refused, __ATOMIC_RELAXED);
	return NULL;
}

#define CHURN_THREADS	4

static void churn_child(struct shared *s)
{
	pthread_t th[CHURN_THREADS];
	int i, n = 0;

	for (i = 0; i < CHURN_THREADS; i++)
		n += !pthread_create(&th[n], NULL, churn_thread, s);
	for (i = 0; i < n; i++)
		pthread_join(th[i], NULL);
}

struct sampler {
	volatile int stop;
	uint64_t max;
};

static void *sampler_main(void *arg)
{
	struct sampler *sm = arg;

	while (!__atomic_load_n(&sm->stop, __ATOMIC_RELAXED)) {
		uint64_t v = vmalloc_held();

		if (v > sm->max)
			sm->max = v;
	}
	return NULL;
}

static void t_churn(void)
{
	struct shared *s = shared_new();
	struct sampler sm = { 0 };
	uint64_t budget = 4 << 20, start = param_read("pinned_bytes");
	pthread_t th;

	CHECK(!param_set("max_user_bytes", budget), "set max_user_bytes");
	pthread_create(&th, NULL, sampler_main, &sm);
	CHECK(run_as(USER_UID, churn_child, s) == 0, "child");
	__atomic_store_n(&sm.stop, 1, __ATOMIC_RELAXED);
	pthread_join(th, NULL);
	printf("churn: %llu created, %llu refused while frees were pending, at most %llu KiB "
	       "held\n",
	       (unsigned long long)s->v[0], (unsigned long long)s->v[1],
	       (unsigned long long)sm.max >> 10);
	CHECK(s->v[0] >= 10, "only %llu creations in 5 s", (unsigned long long)s->v[0]);
	CHECK(sm.max <= budget, "churn held %llu KiB of objects, budget %llu KiB",
	      (unsigned long long)sm.max >> 10, (unsigned long long)budget >> 10);
	params_restore();
	CHECK(pinned_settle(start) == start, "pinned %llu, start %llu",
	      (unsigned long long)param_read("pinned_bytes"), (unsigned long long)start);
	munmap(s, 4096);
}

/* ---- finding 3: poller threads are capped ---- */

static void poller_cap_child(struct shared *s)
{
	struct ring r[64];
	int i, n = 0, err = 0;
	pid_t pid;

	for (i = 0; i < 64; i++) {
		int ret = ring_init(&r[i], 1, 0, SBPF_SETUP_SQPOLL, 1, 0);

		if (ret) {
			err = -ret;
			break;
		}
		n++;
	}
	s->v[0] = n;
	s->v[1] = err;
	pid = fork();
	if (pid == 0)
		_exit(7);
	s->v[2] = pid > 0 && waitpid(pid, &i, 0) == pid && WIFEXITED(i) && WEXITSTATUS(i) == 7;
	/* a ring without a poller is still allowed */
	{
		struct ring plain;

		s->v[3] = !ring_init(&plain, 1, 0, 0, 0, 0);
		ring_exit(&plain);
	}
	while (n--)
		ring_exit(&r[n]);
}

static void t_poller_cap(void)
{
	struct shared *s = shared_new();
	uint64_t base = param_read("pollers");

	CHECK(param_read("max_user_pollers") == 4 && param_read("max_pollers") == 64,
	      "default caps %llu %llu", (unsigned long long)param_read("max_user_pollers"),
	      (unsigned long long)param_read("max_pollers"));
	CHECK(run_as(USER_UID, poller_cap_child, s) == 0, "child");
	CHECK(s->v[0] == 4 && s->v[1] == EAGAIN, "uid got %llu pollers, then errno %llu",
	      (unsigned long long)s->v[0], (unsigned long long)s->v[1]);
	CHECK(s->v[2], "fork() failed at the poller cap");
	CHECK(s->v[3], "a ring without SQPOLL refused at the poller cap");
	/* the per-uid cap spares root (CAP_SYS_RESOURCE, CAP_SYS_ADMIN); the global one not */
	CHECK(!param_set("max_user_pollers", 1), "set max_user_pollers");
	CHECK(!param_set("max_pollers", base + 2), "set max_pollers");
	memset(s, 0, sizeof(*s));
	CHECK(run_as(0, poller_cap_child, s) == 0, "child");
	CHECK(s->v[0] == 2 && s->v[1] == EAGAIN, "root got %llu pollers under a per-uid cap of "
	      "1 and a global cap of 2, then errno %llu", (unsigned long long)s->v[0],
	      (unsigned long long)s->v[1]);
	params_restore();
	CHECK(param_read("pollers") == base, "pollers %llu, were %llu",
	      (unsigned long long)param_read("pollers"), (unsigned long long)base);
	munmap(s, 4096);
}

/* ---- finding 4: the poller runs in its owner's cgroups, at its nice ---- */

static int cgroup_setup(const char *name, const char *controllers)
{
	char path[256];

	if (access(CGROOT "/cgroup.controllers", F_OK)) {
		mkdir(CGROOT, 0755);
		if (mount("cgroup2", CGROOT, "cgroup2", 0, NULL))
			return -1;
	}
	if (file_write(CGROOT "/cgroup.subtree_control", controllers))
		return -1;
	snprintf(path, sizeof(path), CGROOT "/%s", name);
	if (mkdir(path, 0755) && errno != EEXIST)
		return -1;
	return 0;
}

static int cgroup_enter(const char *name)
{
	char path[256], pid[32];

	snprintf(path, sizeof(path), CGROOT "/%s/cgroup.procs", name);
	snprintf(pid, sizeof(pid), "%d", getpid());
	return file_write(path, pid);
}

/* The tid of this process's poller, or 0. */
static int poller_tid(void)
{
	int tid;

	return poller_tids(&tid, 1) ? tid : 0;
}

/* utime + stime (clock ticks) and nice of task @tid. */
static int task_stat(int tid, uint64_t *ticks, long *nice)
{
	char path[64], buf[1024], *p;
	unsigned long ut, st;
	FILE *f;
	int n;

	snprintf(path, sizeof(path), "/proc/%d/stat", tid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n > 0 ? n : 0] = 0;
	p = strrchr(buf, ')');
	/* after "pid (comm)": state(3) ... utime(14) stime(15) ... nice(19) */
	if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu %*d %*d %*d %ld",
			 &ut, &st, nice) != 3)
		return -1;
	*ticks = ut + st;
	return 0;
}

static void cpu_child(struct shared *s)
{
	struct sbpf_sqe e = sqe_make(SBPF_OP_NOP, 0, 0, 0, 0, 0, 0, 0);
	struct sbpf_cqe c;
	uint64_t u0, u1, t0, t1, w0;
	char path[300], line[256];
	struct ring r;
	long nice = 0;
	int tid, in_cg = 0;
	FILE *f;

	if (cgroup_enter("sbpf-cpu") || file_write(CGROOT "/sbpf-cpu/cpu.max", "20000 100000")) {
		CHILD_FAIL(s, "cgroup: %s", strerror(errno));
		return;
	}
	if (setpriority(PRIO_PROCESS, 0, 5)) {
		CHILD_FAIL(s, "nice: %s", strerror(errno));
		return;
	}
	/* the poller spins 100 ms after each entry; one every 20 ms keeps it spinning */
	if (ring_init(&r, 8, 0, SBPF_SETUP_SQPOLL, 100, 0)) {
		CHILD_FAIL(s, "ring_init: %s", strerror(errno));
		return;
	}
	tid = poller_tid();
	snprintf(path, sizeof(path), "/proc/%d/cgroup", tid);
	f = fopen(path, "r");
	while (f && fgets(line, sizeof(line), f))
		in_cg |= !!strstr(line, "/sbpf-cpu");
	if (f)
		fclose(f);
	if (!tid || !in_cg)
		CHILD_FAIL(s, "poller %d not in the owner's cgroup", tid);
	if (tid && task_stat(tid, &t0, &nice) == 0 && nice != 5)
		CHILD_FAIL(s, "poller nice %ld, owner 5", nice);
	u0 = file_key(CGROOT "/sbpf-cpu/cpu.stat", "usage_usec");
	w0 = now_ns();
	while (now_ns() - w0 < 2000000000ULL) {
		ring_op(&r, &e, &c);
		usleep(20000);
	}
	u1 = file_key(CGROOT "/sbpf-cpu/cpu.stat", "usage_usec");
	task_stat(tid, &t1, &nice);
	s->v[0] = (t1 - t0) * 10000;		/* poller, usec (USER_HZ 100) */
	s->v[1] = u1 - u0;			/* the cgroup, usec */
	s->v[2] = (now_ns() - w0) / 1000;	/* wall, usec */
	ring_exit(&r);
}

static void t_poller_cgroup(void)
{
	struct shared *s = shared_new();

	CHECK(!cgroup_setup("sbpf-cpu", "+cpu"), "cgroup2 with cpu: %s", strerror(errno));
	CHECK(run_as(0, cpu_child, s) == 0, "%s", s->why);
	printf("poller cpu: poller %llu ms, owner's cgroup %llu ms, wall %llu ms, cpu.max 20%%\n",
	       (unsigned long long)s->v[0] / 1000, (unsigned long long)s->v[1] / 1000,
	       (unsigned long long)s->v[2] / 1000);
	CHECK(s->v[1] >= s->v[0] * 8 / 10, "the owner's cgroup counted %llu ms of the "
	      "poller's %llu ms", (unsigned long long)s->v[1] / 1000,
	      (unsigned long long)s->v[0] / 1000);
	CHECK(s->v[0] <= s->v[2] * 35 / 100, "poller used %llu ms of %llu ms under cpu.max 20%%",
	      (unsigned long long)s->v[0] / 1000, (unsigned long long)s->v[2] / 1000);
	rmdir(CGROOT "/sbpf-cpu");
	munmap(s, 4096);
}

/* ---- finding 5: memory cgroups see and limit what is pinned ---- */

static void memcg_child(struct shared *s)
{
	uint64_t m0, m1, m2;
	int fd = dev_open();
	struct ring r;
	char max[64];

	if (cgroup_enter("sbpf-mem")) {
		CHILD_FAIL(s, "cgroup: %s", strerror(errno));
		return;
	}
	m0 = file_u64(CGROOT "/sbpf-mem/memory.current");
	if (!obj_create(fd, 8 << 20))
		CHILD_FAIL(s, "create: %s", strerror(errno));
	m1 = file_u64(CGROOT "/sbpf-mem/memory.current");
	if (ring_init(&r, 64, 0, 0, 0, 4 << 20))
		CHILD_FAIL(s, "ring_init: %s", strerror(errno));
	m2 = file_u64(CGROOT "/sbpf-mem/memory.current");
	s->v[0] = m1 - m0;
	s->v[1] = m2 - m1;
	/* at memory.max: refused (ENOMEM), and nobody is OOM-killed */
	snprintf(max, sizeof(max), "%llu", (unsigned long long)(m2 + (2 << 20)));
	if (file_write(CGROOT "/sbpf-mem/memory.max", max))
		CHILD_FAIL(s, "memory.max: %s", strerror(errno));
	s->v[2] = obj_create(fd, 8 << 20) ? 0 : errno;
	s->v[3] = obj_create(fd, 64 << 10) != 0;	/* what fits still works */
	ring_exit(&r);
	close(fd);
}

static void t_memcg(void)
{
	struct shared *s = shared_new();
	uint64_t start = param_read("pinned_bytes");

	CHECK(!cgroup_setup("sbpf-mem", "+memory"), "cgroup2 with memory: %s", strerror(errno));
	CHECK(run_as(0, memcg_child, s) == 0, "%s", s->why);
	printf("memcg: 8 MiB object +%llu KiB, ring with a 4 MiB arena +%llu KiB\n",
	       (unsigned long long)s->v[0] >> 10, (unsigned long long)s->v[1] >> 10);
	CHECK(s->v[0] >= (8 << 20) && s->v[0] <= (9 << 20), "memory.current rose by %llu KiB "
	      "for an 8 MiB object", (unsigned long long)s->v[0] >> 10);
	CHECK(s->v[1] >= (4 << 20) && s->v[1] <= (5 << 20), "memory.current rose by %llu KiB "
	      "for a ring with a 4 MiB arena", (unsigned long long)s->v[1] >> 10);
	CHECK(s->v[2] == ENOMEM, "an 8 MiB object past memory.max: errno %llu",
	      (unsigned long long)s->v[2]);
	CHECK(s->v[3], "a 64 KiB object under memory.max refused");
	CHECK(pinned_settle(start) == start, "pinned %llu, start %llu",
	      (unsigned long long)param_read("pinned_bytes"), (unsigned long long)start);
	rmdir(CGROOT "/sbpf-mem");
	munmap(s, 4096);
}

/* ---- finding 6: a refused answer leaves nothing behind ---- */

/* A page holding @len bytes of @src, then made read-only. */
static void *ro_copy(const void *src, size_t len)
{
	void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	memcpy(p, src, len);
	mprotect(p, 4096, PROT_READ);
	return p;
}

static void t_readonly_args(void)
{
	uint64_t start = param_read("pinned_bytes"), base = param_read("pollers"), with_ring;
	struct sbpf_params p = { .sq_entries = 8, .flags = SBPF_SETUP_SQPOLL,
				 .arena_size = 1 << 20 };
	struct sbpf_object o = { .size = 1 << 20 };
	int fd = dev_open(), fd2 = dev_open();
	void *ro;
	uint32_t id;

	/* SETUP: no ring, no poller, no charge; a later SETUP works */
	ro = ro_copy(&p, sizeof(p));
	CHECK_ERR(ioctl(fd, SBPF_IOC_SETUP, ro), EFAULT);
	CHECK(param_read("pinned_bytes") == start, "SETUP left %llu bytes charged",
	      (unsigned long long)(param_read("pinned_bytes") - start));
	CHECK(param_read("pollers") == base, "SETUP left a poller");
	CHECK_ERR(ioctl(fd, SBPF_IOC_STATS, &(struct sbpf_stats){ 0 }), EINVAL);
	CHECK_OK(ioctl(fd, SBPF_IOC_SETUP, &p));
	munmap(ro, 4096);
	with_ring = param_read("pinned_bytes");

	/* OBJ_CREATE: no object */
	ro = ro_copy(&o, sizeof(o));
	CHECK_ERR(ioctl(fd2, SBPF_IOC_OBJ_CREATE, ro), EFAULT);
	CHECK(param_read("pinned_bytes") == with_ring, "OBJ_CREATE left %llu bytes charged",
	      (unsigned long long)(param_read("pinned_bytes") - with_ring));
	munmap(ro, 4096);

	/* OBJ_ATTACH: not attached (the object goes with its creator's detach) */
	id = obj_create(fd2, 4096);
	o = (struct sbpf_object){ .id = id };
	ro = ro_copy(&o, sizeof(o));
	CHECK_ERR(ioctl(fd, SBPF_IOC_OBJ_ATTACH, ro), EFAULT);
	CHECK_ERR(obj_ioctl(fd, SBPF_IOC_OBJ_DETACH, id), ENOENT);
	munmap(ro, 4096);

	/* SYNC_OP: the store did not happen, and no op was counted */
	CHECK_OK(obj_ioctl(fd, SBPF_IOC_OBJ_ATTACH, id));
	{
		struct sbpf_sync_op op = { .sqe = sqe_make(SBPF_OP_STORE64, id, 0, 0, 0, 77, 0, 1) };
		struct sbpf_sqe ld = sqe_make(SBPF_OP_LOAD64, id, 0, 0, 0, 0, 0, 2);
		struct sbpf_cqe c;
		struct sbpf_stats st0, st1;

		ioctl(fd, SBPF_IOC_STATS, &st0);
		ro = ro_copy(&op, sizeof(op));
		CHECK_ERR(ioctl(fd, SBPF_IOC_SYNC_OP, ro), EFAULT);
		ioctl(fd, SBPF_IOC_STATS, &st1);
		CHECK(st1.sync_ops == st0.sync_ops, "SYNC_OP counted");
		CHECK(!sync_op(fd, &ld, &c) && c.value == 0, "the store happened: %llu",
		      (unsigned long long)c.value);
		munmap(ro, 4096);
	}
	close(fd);
	close(fd2);
	CHECK(pinned_settle(start) == start, "pinned %llu, start %llu",
	      (unsigned long long)param_read("pinned_bytes"), (unsigned long long)start);
}

/* ---- who may open the device and use SQPOLL ---- */

static void privilege_child(struct shared *s)
{
	struct ring r;
	int fd;

	s->v[0] = (fd = dev_open()) < 0 ? errno : 0;
	if (fd >= 0)
		close(fd);
	s->v[1] = -ring_init(&r, 1, 0, SBPF_SETUP_SQPOLL, 1, 0);
	ring_exit(&r);
	s->v[2] = -ring_init(&r, 1, 0, 0, 0, 0);
	ring_exit(&r);
}

static void t_privilege(void)
{
	struct shared *s = shared_new();
	struct ring r;

	CHECK(!param_set("sqpoll_disabled", 1), "set sqpoll_disabled");
	CHECK(run_as(USER_UID, privilege_child, s) == 0, "child");
	CHECK(!s->v[0] && s->v[1] == EPERM && !s->v[2], "sqpoll_disabled=1: open %llu sqpoll "
	      "%llu plain %llu", (unsigned long long)s->v[0], (unsigned long long)s->v[1],
	      (unsigned long long)s->v[2]);
	CHECK(!ring_init(&r, 1, 0, SBPF_SETUP_SQPOLL, 1, 0), "root refused SQPOLL");
	ring_exit(&r);
	CHECK(!param_set("sqpoll_group", USER_UID), "set sqpoll_group");
	CHECK(run_as(USER_UID, privilege_child, s) == 0 && !s->v[1], "sqpoll_group member "
	      "refused: %llu", (unsigned long long)s->v[1]);
	CHECK(!param_set("sqpoll_disabled", 2), "set sqpoll_disabled");
	CHECK(ring_init(&r, 1, 0, SBPF_SETUP_SQPOLL, 1, 0) == -EPERM, "sqpoll_disabled=2 "
	      "let root use SQPOLL");
	ring_exit(&r);
	CHECK(!param_set("device_disabled", 1), "set device_disabled");
	CHECK(run_as(USER_UID, privilege_child, s) == 0 && s->v[0] == EPERM, "device_disabled=1"
	      " let uid %d open: %llu", USER_UID, (unsigned long long)s->v[0]);
	CHECK(dev_open() >= 0, "device_disabled=1 refused root");
	CHECK(!param_set("device_group", USER_UID), "set device_group");
	CHECK(run_as(USER_UID, privilege_child, s) == 0 && !s->v[0], "device_group member "
	      "refused: %llu", (unsigned long long)s->v[0]);
	params_restore();
	munmap(s, 4096);
}

/* ---- object ids: reused cyclically with a generation, never for a live object ---- */

static void t_object_ids(void)
{
	const uint32_t mask = (1U << SBPF_OBJ_INDEX_BITS) - 1;
	int keep = dev_open(), fd = -1, again_fd = -1, n = 0;
	uint32_t live = obj_create(keep, 8), stale = 0, again = 0, id, prev = live, laps = 0;
	uint64_t i;

	CHECK(live, "create");
	/* more than one lap of the index space, 64 objects per file */
	for (i = 0; i < (1ULL << SBPF_OBJ_INDEX_BITS) + 256 && !t_failed; i++) {
		if (n == 0)
			fd = dev_open();
		id = obj_create(fd, 8);
		/* frees pending a grace period are still charged: wait for them */
		for (int tries = 0; !id && (errno == ENOSPC || errno == ENOMEM) && tries < 1000;
		     tries++) {
			usleep(1000);
			id = obj_create(fd, 8);
		}
		CHECK(id, "create %llu: %s", (unsigned long long)i, strerror(errno));
		CHECK((id & mask) != (live & mask), "index of a live object reissued: %#x, %#x",
		      id, live);
		if ((id & mask) < (prev & mask)) {
			laps++;
			uint32_t gen = ((prev >> SBPF_OBJ_INDEX_BITS) + 1) &
				       ((1U << (32 - SBPF_OBJ_INDEX_BITS)) - 1);

			CHECK(id >> SBPF_OBJ_INDEX_BITS == gen, "generation %#x after %#x", id,
			      prev);
		}
		if (i == 0) {
			stale = id;	/* freed with its file below; its index comes back */
		} else if (!again && (id & mask) == (stale & mask)) {
			again = id;	/* the same index, live: its file stays open */
			again_fd = fd;
		}
		prev = id;
		if (++n == 64) {
			if (fd != again_fd)
				close(fd);
			n = 0;
		}
	}
	if (n && fd != again_fd)
		close(fd);
	CHECK(laps == 1, "%u laps of the index space", laps);
	CHECK(again && again != stale, "index of %#x reissued as %#x", stale, again);
	/* The old id must not reach the live object that now has its index. */
	CHECK_ERR(obj_ioctl(keep, SBPF_IOC_OBJ_ATTACH, stale), ENOENT);
	CHECK_OK(obj_ioctl(keep, SBPF_IOC_OBJ_ATTACH, again));
	CHECK_OK(obj_ioctl(keep, SBPF_IOC_OBJ_ATTACH, live));
	close(keep);
	if (again_fd >= 0)
		close(again_fd);
}

int main(void)
{
	uint64_t start = param_read("pinned_bytes");

	setvbuf(stdout, NULL, _IOLBF, 0);
	run_test("charged_cost", t_charged_cost);
	run_test("tiny_object_flood", t_tiny_object_flood);
	run_test("object_cap", t_object_cap);
	run_test("ring_cap_without_fds", t_ring_cap);
	run_test("churn_within_budget", t_churn);
	run_test("poller_cap", t_poller_cap);
	run_test("poller_in_owner_cgroup", t_poller_cgroup);
	run_test("memcg_charged", t_memcg);
	run_test("readonly_args", t_readonly_args);
	run_test("privilege", t_privilege);
	run_test("object_ids", t_object_ids);
	params_restore();
	{
		uint64_t end = pinned_settle(start);

		t_failed = end != start;
		printf("TEST limits_pinned_bytes %s", t_failed ? "FAIL" : "PASS");
		if (t_failed)
			printf(" pinned %llu, start %llu", (unsigned long long)end,
			       (unsigned long long)start);
		printf("\n");
		t_total_failed += t_failed;
	}
	return t_total_failed ? 1 : 0;
}
