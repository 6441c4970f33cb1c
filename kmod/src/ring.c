// SPDX-License-Identifier: GPL-2.0
/*
 * sbpf_ring: the rings, their consumer (inline in ENTER, or a poller thread), and the
 * operations on kernel objects.
 *
 * The ordering contract between user space and this file. Shared fields live in the
 * ring region (uapi/sbpf_ring.h); the process may write any byte of it at any time, so
 * the kernel reads exactly two things from it: the seq word of the next submission slot
 * and the completion head. Every index it acts on is its own.
 *
 * Submission queue (many producers, one consumer: us):
 *
 *  - Producers reserve position pos with a CAS on sq tail (the kernel never reads sq
 *    tail), write the 64-byte entry, then store seq = pos + 1 with release.
 *  - We keep a private head. At slot head & mask we smp_load_acquire(&sqe->seq) [A];
 *    it pairs with the producer's release store of seq, so an entry whose seq equals
 *    head + 1 is fully visible. Any other value means "not published". We then copy the
 *    entry once with READ_ONCE of each of its eight words (sbpf_copy_sqe()) and use only
 *    the copy, which is what gets validated: nothing is read twice, so a racing writer
 *    can only change what we copy, never what we checked.
 *  - smp_store_release(sq head, head + 1) [B] orders our copy before the producer's
 *    acquire load of sq head that lets it reuse the slot.
 *
 * Completion queue (us to one consumer):
 *
 *  - We take a submission only when a completion slot is free: cq_head =
 *    smp_load_acquire(cq head) [C], pairing with the consumer's release store of cq head
 *    after it read its entries, so we never overwrite an unread completion. Full means
 *    cq_tail - cq_head >= cq_entries in u32 arithmetic; a garbage head only makes the
 *    ring look full (or less full) — indices are always our private cq_tail & mask.
 *  - We write the entries, then smp_store_release(cq tail, tail) [D], pairing with the
 *    consumer's acquire load of cq tail. Exactly one completion per consumed entry; a
 *    full CQ is back-pressure, nothing is dropped.
 *  - Waiters (ENTER with GETEVENTS, poll) sleep on cq_wait; after [D] we wake them if
 *    wq_has_sleeper(), whose smp_mb() pairs with set_current_state() in the waiter.
 *
 * Poller wake-up (SQPOLL):
 *
 *  - After sq_idle_ms without work (counted from its 64th empty look) the poller stores
 *    SBPF_SQ_NEED_WAKEUP in sq flags, smp_mb() [E], and looks once more for a published
 *    entry with CQ room; only then it sleeps. A producer publishes seq, issues a full
 *    fence, then reads sq flags: either we see its seq after [E], or it sees NEED_WAKEUP
 *    and kicks us with ENTER(SBPF_ENTER_SQ_WAKEUP). The poller also sleeps, by the same
 *    protocol, when the CQ stays full.
 *  - The kernel does not rely on that kick alone: before it sleeps, the poller also sets
 *    its private poller_asleep (release) ahead of [E]. poll() and ENTER(GETEVENTS) issue
 *    smp_mb() [F] and, if it is set and the poller's wake condition (a published entry
 *    at its head, room in the CQ) holds, wake it. [F] pairs with [E]: the caller's
 *    earlier store of cq head (or seq) is seen by the poller's last look, or the caller
 *    sees poller_asleep and the room. So a consumer that frees CQ room and then waits,
 *    in either call, never waits for a poller that sleeps on a full CQ.
 *
 * Closing (sbpf_ring_shutdown(): the SHUTDOWN ioctl, the owner's last close, the last
 * unmap of the ring region, release):
 *
 *  - Under consume_lock it sets closed, stops and joins the poller (kthread_stop()
 *    returns after its current pass), and stores the final sq head and cq tail again,
 *    so sq head names exactly the first entry never consumed. Inline consumers check
 *    closed under the same lock, so nothing consumes the ring afterwards.
 *  - Then wake_up_all(cq_wait): every waiter re-checks its condition, which includes
 *    closed (set before the wake-up, whose waitqueue lock orders it).
 */
#include <linux/cgroup.h>
#include <linux/cred.h>
#include <linux/fs.h>
#include <linux/hrtimer.h>
#include <linux/kthread.h>
#include <linux/mm.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>
#include <linux/vmalloc.h>

#include "sbpf_internal.h"

#define SBPF_DEFAULT_IDLE_MS	1	/* spin after the last work before sleeping */
#define SBPF_MAX_IDLE_MS	10000	/* accepted by SETUP; clamped to sqpoll_max_idle_ms */
#define SBPF_BATCH		128	/* entries per consumer pass */
/*
 * About what a poller thread pins besides the ring: its stack, its task_struct and the
 * rest of a task (FPU state, kthread and pid structs).
 */
#define SBPF_POLLER_BYTES	(THREAD_SIZE + sizeof(struct task_struct) + PAGE_SIZE)
#define SBPF_NCTR		ARRAY_SIZE(((struct sbpf_counters *)0)->v)

/* The counter each fault is charged to, as in the validation table of docs/ABI.md. */
static const u8 sbpf_fault_ctr[SBPF_FAULT_COUNT] = {
	[SBPF_FAULT_OPCODE]	= SBPF_CTR(rejected_opcode),
	[SBPF_FAULT_RESERVED]	= SBPF_CTR(rejected_reserved),
	[SBPF_FAULT_OBJECT]	= SBPF_CTR(rejected_object),
	[SBPF_FAULT_LENGTH]	= SBPF_CTR(rejected_bounds),
	[SBPF_FAULT_BOUNDS]	= SBPF_CTR(rejected_bounds),
	[SBPF_FAULT_ALIGN]	= SBPF_CTR(rejected_align),
};

static void sbpf_counters_add(struct sbpf_ring *r, const u64 *delta)
{
	unsigned int i;

	for (i = 0; i < SBPF_NCTR; i++)
		if (delta[i])
			atomic64_add(delta[i], &r->ctr.v[i]);
}

/* The shared copy is written, never read: the atomics above are authoritative. */
static void sbpf_stats_mirror(struct sbpf_ring *r)
{
	u64 *dst = (u64 *)r->stats_shared;
	unsigned int i;

	for (i = 0; i < SBPF_NCTR; i++)
		WRITE_ONCE(dst[i], atomic64_read(&r->ctr.v[i]));
}

void sbpf_ring_stats(struct sbpf_ring *r, struct sbpf_stats *out)
{
	u64 *dst = (u64 *)out;
	unsigned int i;

	for (i = 0; i < SBPF_NCTR; i++)
		dst[i] = atomic64_read(&r->ctr.v[i]);
	memset(out->resv, 0, sizeof(out->resv));
}

/* One fetch of each word of a shared entry; only the copy is used afterwards. */
static void sbpf_copy_sqe(struct sbpf_sqe *dst, const struct sbpf_sqe *src)
{
	const u64 *s = (const u64 *)src;
	u64 w[sizeof(*src) / sizeof(u64)];
	unsigned int i;

	BUILD_BUG_ON(sizeof(*src) % sizeof(u64));
	for (i = 0; i < ARRAY_SIZE(w); i++)
		w[i] = READ_ONCE(s[i]);
	memcpy(dst, w, sizeof(w));
}

/*
 * Performs a validated READ, WRITE or word operation on @obj->mem (a module object, or an
 * array map's values). Never sleeps (callers hold rcu_read_lock()).
 */
void sbpf_execute(const struct sbpf_sqe *sqe, struct sbpf_kobj *obj, void *arena,
		  struct sbpf_cqe *cqe)
{
	u8 *mem = obj->mem;
	atomic64_t *word = (atomic64_t *)(mem + sqe->obj_off);
	s64 old;

	switch (sqe->opcode) {
	case SBPF_OP_READ:
		memcpy((u8 *)arena + sqe->arena_off, mem + sqe->obj_off, sqe->len);
		cqe->res = sqe->len;
		break;
	case SBPF_OP_WRITE:
		memcpy(mem + sqe->obj_off, (u8 *)arena + sqe->arena_off, sqe->len);
		cqe->res = sqe->len;
		break;
	case SBPF_OP_LOAD64:
		cqe->value = atomic64_read(word);
		break;
	case SBPF_OP_STORE64:
		atomic64_set(word, sqe->val);
		break;
	case SBPF_OP_FETCH_ADD64:
		cqe->value = atomic64_fetch_add(sqe->val, word);
		break;
	case SBPF_OP_CAS64:
		old = atomic64_cmpxchg(word, sqe->cmp, sqe->val);
		cqe->value = old;
		cqe->res = (u64)old == sqe->cmp;
		break;
	}
}

/*
 * Validates @sqe (a private copy) in the order of docs/ABI.md and performs it; fills
 * @cqe and adds to @delta's counters. Shared by the ring consumer and SYNC_OP.
 */
static void sbpf_process(struct sbpf_file *sf, struct sbpf_ring *r,
			 const struct sbpf_sqe *sqe, struct sbpf_cqe *cqe, u64 *delta)
{
	enum sbpf_fault fault;
	struct sbpf_kobj *obj;

	cqe->user_data = sqe->user_data;
	cqe->res = 0;
	cqe->flags = 0;
	cqe->value = 0;
	cqe->resv = 0;

	fault = sbpf_check_fields(sqe);
	if (fault == SBPF_FAULT_NONE && sqe->opcode != SBPF_OP_NOP) {
		rcu_read_lock();
		obj = sbpf_obj_lookup_rcu(sf, sqe->obj_id);
		if (!obj)
			fault = SBPF_FAULT_OBJECT;
		else
			fault = sbpf_check_bounds(sqe, r->arena_size, obj->size);
		if (fault == SBPF_FAULT_NONE && (obj->bpf || sqe->opcode >= SBPF_OP_MAP_UPDATE))
			sbpf_map_execute(sqe, obj, r->arena, cqe);	/* bpfmap.c */
		else if (fault == SBPF_FAULT_NONE)
			sbpf_execute(sqe, obj, r->arena, cqe);
		rcu_read_unlock();
	}
	if (fault != SBPF_FAULT_NONE) {
		cqe->res = sbpf_fault_errno(fault);
		delta[SBPF_CTR(rejected)]++;
		delta[sbpf_fault_ctr[fault]]++;
	}
}

/* Completions the consumer has not taken yet, clamped if the shared head is garbage. */
unsigned int sbpf_ring_cq_ready(struct sbpf_ring *r)
{
	u32 n = READ_ONCE(r->cq_tail) - smp_load_acquire(r->cq_head_shared);	/* [C] */

	return min(n, r->cq_entries);
}

/* READ_ONCE: also called by other threads than the consumer, with a head that may lag. */
static bool sbpf_sq_published(struct sbpf_ring *r)
{
	u32 head = READ_ONCE(r->sq_head);
	struct sbpf_sqe *slot = &r->sqes[head & r->sq_mask];

	return smp_load_acquire(&slot->seq) == head + 1;	/* [A] */
}

static bool sbpf_cq_has_room(struct sbpf_ring *r)
{
	return READ_ONCE(r->cq_tail) - smp_load_acquire(r->cq_head_shared) <	/* [C] */
	       r->cq_entries;
}

/*
 * Wakes a sleeping poller whose wake condition holds: for poll() and ENTER(GETEVENTS),
 * so that freeing CQ room (or publishing) without the user-side fence and kick still
 * gets the poller going. A spurious wake-up costs one look.
 */
void sbpf_ring_wake_poller(struct sbpf_ring *r)
{
	if (!(r->flags & SBPF_SETUP_SQPOLL))
		return;
	smp_mb();						/* [F] */
	if (smp_load_acquire(&r->poller_asleep) && sbpf_sq_published(r) &&
	    sbpf_cq_has_room(r))
		wake_up(&r->sq_wait);
}

/*
 * One consumer pass: takes up to @max published entries while the CQ has room. The
 * caller is the ring's only consumer (the poller, or ENTER under consume_lock).
 */
static unsigned int sbpf_consume(struct sbpf_file *sf, struct sbpf_ring *r, unsigned int max)
{
	u64 delta[SBPF_NCTR] = {};
	u32 head = r->sq_head, tail = r->cq_tail;
	u32 cq_head = smp_load_acquire(r->cq_head_shared);	/* [C] */
	struct sbpf_sqe sqe;
	struct sbpf_cqe cqe;
	unsigned int n = 0;

	while (n < max) {
		struct sbpf_sqe *slot = &r->sqes[head & r->sq_mask];

		if (smp_load_acquire(&slot->seq) != head + 1)	/* [A] */
			break;
		if (tail - cq_head >= r->cq_entries) {
			cq_head = smp_load_acquire(r->cq_head_shared);	/* [C] */
			if (tail - cq_head >= r->cq_entries) {
				if (!r->cq_was_full)
					delta[SBPF_CTR(cq_full)]++;
				r->cq_was_full = true;
				break;
			}
		}
		r->cq_was_full = false;
		sbpf_copy_sqe(&sqe, slot);
		head++;
		if (!(n % 32))	/* let producers reuse slots early in a long pass */
			smp_store_release(r->sq_head_shared, head);	/* [B] */

		sbpf_process(sf, r, &sqe, &cqe, delta);
		r->cqes[tail & r->cq_mask] = cqe;
		tail++;
		n++;
	}
	if (n) {
		WRITE_ONCE(r->sq_head, head);
		smp_store_release(r->sq_head_shared, head);		/* [B] */
		delta[SBPF_CTR(submitted)] += n;
		delta[SBPF_CTR(completed)] += n;
	}
	/* Counters first, so that they already include every completion a reader sees. */
	if (n || delta[SBPF_CTR(cq_full)]) {
		sbpf_counters_add(r, delta);
		sbpf_stats_mirror(r);
	}
	if (n) {
		WRITE_ONCE(r->cq_tail, tail);
		smp_store_release(r->cq_tail_shared, tail);		/* [D] */
		if (wq_has_sleeper(&r->cq_wait))
			wake_up_interruptible(&r->cq_wait);
	}
	return n;
}

static int sbpf_poller(void *data)
{
	struct sbpf_ring *r = data;
	struct sbpf_file *sf = r->sf;
	u64 idle = (u64)r->idle_ms * NSEC_PER_MSEC;
	u64 idle_since = 0, now;
	u64 looks = 0;	/* empty looks since the last work (never wraps) */
	bool published;
	DEFINE_WAIT(wait);

	while (!kthread_should_stop()) {
		if (sbpf_consume(sf, r, SBPF_BATCH)) {
			looks = 0;
			cond_resched();
			continue;
		}
		/*
		 * The clock once every 64 empty looks, never while busy: a clock read can cost
		 * far more than a look (HPET, where the TSC is unstable). The idle spin starts
		 * at the first read, 64 looks after the last work. No cpu_relax(), as in
		 * io_uring's SQPOLL loop: this polls for work, it does not wait for a lock, and
		 * hypervisors take PAUSE loops for lock waiters (pause-loop exiting; under
		 * QEMU's TCG every PAUSE leaves the vCPU loop).
		 */
		if (++looks % 64) {
			cond_resched();
			continue;
		}
		now = ktime_get_ns();
		if (looks == 64)
			idle_since = now;
		if (now - idle_since < idle) {
			cond_resched();
			continue;
		}

		prepare_to_wait(&r->sq_wait, &wait, TASK_INTERRUPTIBLE);
		WRITE_ONCE(*r->sq_flags_shared, SBPF_SQ_NEED_WAKEUP);
		smp_store_release(&r->poller_asleep, true);	/* after our sq_head, cq_tail */
		smp_mb();						/* [E] */
		published = sbpf_sq_published(r);
		if ((published && sbpf_cq_has_room(r)) || kthread_should_stop()) {
			finish_wait(&r->sq_wait, &wait);
			WRITE_ONCE(r->poller_asleep, false);
			WRITE_ONCE(*r->sq_flags_shared, 0);
			looks = 0;
			continue;
		}
		/* An entry published since our last pass waits for room: an episode too. */
		if (published && !r->cq_was_full) {
			r->cq_was_full = true;
			atomic64_inc(&r->ctr.v[SBPF_CTR(cq_full)]);
			sbpf_stats_mirror(r);
		}
		schedule();
		finish_wait(&r->sq_wait, &wait);
		WRITE_ONCE(r->poller_asleep, false);
		WRITE_ONCE(*r->sq_flags_shared, 0);
		atomic64_inc(&r->ctr.v[SBPF_CTR(wakeups)]);
		sbpf_stats_mirror(r);
		looks = 0;
	}
	return 0;
}

/* 0 once @min_complete completions are ready; -ETIME, -EINTR, or -closed. */
static int sbpf_wait_cq(struct sbpf_ring *r, u32 min_complete, u64 timeout_ns)
{
	ktime_t timeout = ns_to_ktime(min_t(u64, timeout_ns, KTIME_MAX));
	long ret;

	/* More than the ring holds can never be ready: wait for a full ring instead. */
	min_complete = min(min_complete, r->cq_entries);
	if (!min_complete)
		return 0;
	if (!timeout_ns)
		ret = wait_event_interruptible(r->cq_wait,
					       sbpf_ring_cq_ready(r) >= min_complete ||
					       READ_ONCE(r->closed));
	else
		ret = wait_event_interruptible_hrtimeout(r->cq_wait,
							 sbpf_ring_cq_ready(r) >= min_complete ||
							 READ_ONCE(r->closed),
							 timeout);
	if (ret == -ERESTARTSYS)
		return -EINTR;
	if (ret)
		return ret;
	if (sbpf_ring_cq_ready(r) >= min_complete)
		return 0;
	return -READ_ONCE(r->closed);
}

int sbpf_ring_enter(struct sbpf_file *sf, struct sbpf_ring *r, const struct sbpf_enter *e)
{
	bool sqpoll = r->flags & SBPF_SETUP_SQPOLL;
	unsigned int left, n;
	int done = 0, ret;

	if (e->flags & ~SBPF_ENTER_FLAGS_ALL || e->resv)
		return -EINVAL;

	if (!sqpoll && e->to_submit) {
		if (mutex_lock_interruptible(&r->consume_lock))
			return -EINTR;
		/* At most one SQ's worth, so a call fed by another thread returns. */
		left = r->closed ? 0 : min(e->to_submit, r->sq_entries);
		while (left) {
			n = sbpf_consume(sf, r, min_t(unsigned int, left, SBPF_BATCH));
			if (!n)
				break;
			done += n;
			left -= n;
			if (fatal_signal_pending(current))
				break;
			cond_resched();
		}
		mutex_unlock(&r->consume_lock);
	}
	if (e->flags & SBPF_ENTER_SQ_WAKEUP && sqpoll)
		wake_up(&r->sq_wait);
	if (e->flags & SBPF_ENTER_GETEVENTS) {
		sbpf_ring_wake_poller(r);
		ret = sbpf_wait_cq(r, e->min_complete, e->timeout_ns);
		if (ret && !done)
			return ret;
		return done;
	}
	if (!done && READ_ONCE(r->closed))
		return -READ_ONCE(r->closed);
	return done;
}

/*
 * Closes the ring for good (see "Closing" above). @why, the positive errno that woken
 * waiters and later ENTERs get, sticks if it is the first cause. Idempotent; may sleep
 * for one consumer pass.
 */
void sbpf_ring_shutdown(struct sbpf_ring *r, int why)
{
	mutex_lock(&r->consume_lock);
	if (!r->closed)
		WRITE_ONCE(r->closed, why);
	if (r->poller) {
		struct sbpf_charge c = { .bytes = SBPF_POLLER_BYTES, .pollers = 1 };

		kthread_stop(r->poller);	/* returns once it left its loop */
		r->poller = NULL;
		/* The thread is gone: its place under the caps is free again. */
		r->charge.bytes -= c.bytes;
		r->charge.pollers = 0;
		sbpf_uncharge(r->uid, &c);
	}
	/* Our own positions, whatever the process wrote over its copies. */
	smp_store_release(r->sq_head_shared, r->sq_head);
	smp_store_release(r->cq_tail_shared, r->cq_tail);
	mutex_unlock(&r->consume_lock);
	wake_up_all(&r->cq_wait);
}

void sbpf_ring_sync_op(struct sbpf_file *sf, struct sbpf_ring *r, struct sbpf_sync_op *op)
{
	u64 delta[SBPF_NCTR] = {};

	delta[SBPF_CTR(sync_ops)] = 1;
	sbpf_process(sf, r, &op->sqe, &op->cqe, delta);
	sbpf_counters_add(r, delta);
}

/* Zeroed, page-backed memory for a mapping (see SBPF_GFP_USER_MEM). */
static void *sbpf_vmalloc(size_t size)
{
	return __vmalloc(size, SBPF_GFP_USER_MEM);
}

static bool sbpf_pow2_in(u32 v, u32 lo, u32 hi)
{
	return v >= lo && v <= hi && is_power_of_2(v);
}

static int sbpf_check_params(struct sbpf_params *p)
{
	unsigned int i;

	if (p->flags & ~SBPF_SETUP_FLAGS_ALL || p->resv0 || p->sq_off.resv[0] ||
	    p->sq_off.resv[1] || p->cq_off.resv)
		return -EINVAL;
	for (i = 0; i < ARRAY_SIZE(p->resv); i++)
		if (p->resv[i])
			return -EINVAL;
	if (!sbpf_pow2_in(p->sq_entries, 1, SBPF_MAX_SQ_ENTRIES))
		return -EINVAL;
	if (p->flags & SBPF_SETUP_CQSIZE) {
		if (!sbpf_pow2_in(p->cq_entries, p->sq_entries, SBPF_MAX_CQ_ENTRIES))
			return -EINVAL;
	} else {
		p->cq_entries = 2 * p->sq_entries;
	}
	if (p->sq_idle_ms > SBPF_MAX_IDLE_MS)
		return -EINVAL;
	if (p->arena_size % 4096 || p->arena_size > SBPF_MAX_ARENA_SIZE)
		return -EINVAL;
	return 0;
}

/* Everything a ring pins, charged before it is allocated (see object.c). */
static void sbpf_ring_cost(struct sbpf_charge *c, size_t region_size, u64 arena_size,
			   bool sqpoll)
{
	c->bytes = sbpf_vmalloc_cost(region_size) + sbpf_vmalloc_cost(arena_size) +
		   kmalloc_size_roundup(sizeof(struct sbpf_ring)) +
		   /* the file it keeps alive, even without an fd, through its mappings */
		   kmalloc_size_roundup(sizeof(struct sbpf_file)) + sizeof(struct file);
	c->objects = 0;
	c->rings = 1;
	c->pollers = sqpoll;
	if (sqpoll)
		c->bytes += SBPF_POLLER_BYTES;
}

/* Frees what is left of @r, then returns its charge. */
static void sbpf_ring_destroy(struct sbpf_ring *r)
{
	struct sbpf_charge c = r->charge;
	kuid_t uid = r->uid;

	vfree(r->arena);
	vfree(r->region);
	kfree(r);
	sbpf_uncharge(uid, &c);
}

/* Starts @r's SQPOLL poller: a kthread in every cgroup of its owner, at its nice value. */
static int sbpf_poller_start(struct sbpf_ring *r)
{
	struct task_struct *poller;
	int ret;

	poller = kthread_create(sbpf_poller, r, "sbpf-sqp/%d", r->pid);
	if (IS_ERR(poller))
		return PTR_ERR(poller);
	/*
	 * As vhost does for its workers: the poller runs in every cgroup of its owner (its
	 * CPU time counts there, cpu.max and cpuset apply) and at the owner's nice value.
	 */
	ret = cgroup_attach_task_all(current, poller);
	if (ret) {
		kthread_stop(poller);	/* never woken: it exits without running */
		return ret;
	}
	set_user_nice(poller, task_nice(current));
	r->poller = poller;
	/* Before the ring is visible: a SHUTDOWN may stop the poller right after. */
	wake_up_process(poller);
	return 0;
}

/*
 * Sets up @sf's ring and writes the answer to @uarg before the ring becomes visible: a
 * caller that cannot take the answer gets EFAULT and no ring, poller or charge is left.
 */
int sbpf_ring_setup(struct sbpf_file *sf, struct sbpf_params *p,
		    struct sbpf_params __user *uarg)
{
	bool sqpoll = p->flags & SBPF_SETUP_SQPOLL;
	struct sbpf_charge charge;
	kuid_t uid = current_uid();
	struct sbpf_ring *r;
	size_t cq_off, region_size;
	int ret;

	ret = sbpf_check_params(p);
	if (ret)
		return ret;
	if (sqpoll && !sbpf_allowed(READ_ONCE(sbpf_sqpoll_disabled), READ_ONCE(sbpf_sqpoll_group),
				    CAP_SYS_NICE))
		return -EPERM;

	mutex_lock(&sf->lock);
	if (sf->ring) {
		ret = -EBUSY;
		goto unlock;
	}

	cq_off = SBPF_SQES_OFF + (size_t)p->sq_entries * sizeof(struct sbpf_sqe);
	region_size = PAGE_ALIGN(cq_off + (size_t)p->cq_entries * sizeof(struct sbpf_cqe));
	sbpf_ring_cost(&charge, region_size, p->arena_size, sqpoll);
	ret = sbpf_charge(uid, &charge);
	if (ret)
		goto unlock;
	r = kzalloc(sizeof(*r), GFP_KERNEL_ACCOUNT);
	if (!r) {
		sbpf_uncharge(uid, &charge);
		ret = -ENOMEM;
		goto unlock;
	}
	r->uid = uid;
	r->charge = charge;
	r->region_size = region_size;
	r->arena_size = p->arena_size;
	r->region = sbpf_vmalloc(r->region_size);
	if (r->arena_size)
		r->arena = sbpf_vmalloc(r->arena_size);
	if (!r->region || (r->arena_size && !r->arena)) {
		ret = -ENOMEM;
		goto destroy;
	}

	r->sq_entries = p->sq_entries;
	r->sq_mask = p->sq_entries - 1;
	r->cq_entries = p->cq_entries;
	r->cq_mask = p->cq_entries - 1;
	r->flags = p->flags;
	r->idle_ms = min(p->sq_idle_ms ? p->sq_idle_ms : SBPF_DEFAULT_IDLE_MS,
			 max(READ_ONCE(sbpf_sqpoll_max_idle_ms), 1U));
	r->sq_head_shared = r->region + SBPF_SQ_HEAD_OFF;
	r->sq_flags_shared = r->region + SBPF_SQ_FLAGS_OFF;
	r->cq_head_shared = r->region + SBPF_CQ_HEAD_OFF;
	r->cq_tail_shared = r->region + SBPF_CQ_TAIL_OFF;
	r->sqes = r->region + SBPF_SQES_OFF;
	r->cqes = r->region + cq_off;
	r->stats_shared = r->region + SBPF_STATS_OFF;
	*(u32 *)(r->region + SBPF_SQ_MASK_OFF) = r->sq_mask;
	*(u32 *)(r->region + SBPF_SQ_ENTRIES_OFF) = r->sq_entries;
	*(u32 *)(r->region + SBPF_CQ_MASK_OFF) = r->cq_mask;
	*(u32 *)(r->region + SBPF_CQ_ENTRIES_OFF) = r->cq_entries;
	mutex_init(&r->consume_lock);
	init_waitqueue_head(&r->cq_wait);
	init_waitqueue_head(&r->sq_wait);
	r->pid = task_tgid_nr(current);
	r->sf = sf;
	r->owner_files = current->files;
	atomic_set(&r->region_maps, 0);

	p->cq_entries = r->cq_entries;
	p->sq_idle_ms = sqpoll ? r->idle_ms : 0;
	p->ring_size = r->region_size;
	p->features = 0;
	p->sq_off = (struct sbpf_sq_offsets) {
		.head = SBPF_SQ_HEAD_OFF,
		.tail = SBPF_SQ_TAIL_OFF,
		.flags = SBPF_SQ_FLAGS_OFF,
		.ring_mask = SBPF_SQ_MASK_OFF,
		.ring_entries = SBPF_SQ_ENTRIES_OFF,
		.sqes = SBPF_SQES_OFF,
	};
	p->cq_off = (struct sbpf_cq_offsets) {
		.head = SBPF_CQ_HEAD_OFF,
		.tail = SBPF_CQ_TAIL_OFF,
		.flags = SBPF_CQ_FLAGS_OFF,
		.ring_mask = SBPF_CQ_MASK_OFF,
		.ring_entries = SBPF_CQ_ENTRIES_OFF,
		.cqes = cq_off,
		.stats = SBPF_STATS_OFF,
	};
	if (sqpoll) {
		ret = sbpf_poller_start(r);
		if (ret)
			goto destroy;
	}
	/* Last: only a complete ring answers, and an unwritable answer undoes it all. */
	if (copy_to_user(uarg, p, sizeof(*p))) {
		ret = -EFAULT;
		goto stop;
	}
	smp_store_release(&sf->ring, r);	/* pairs with sbpf_ring_of() */
	mutex_unlock(&sf->lock);
	return 0;

stop:
	if (r->poller)
		kthread_stop(r->poller);	/* it saw nothing published: never mapped */
destroy:
	sbpf_ring_destroy(r);
unlock:
	mutex_unlock(&sf->lock);
	return ret;
}

/* Called at release: no ioctl, mapping or poll can reach @r any more. */
void sbpf_ring_free(struct sbpf_file *sf, struct sbpf_ring *r)
{
	sbpf_ring_shutdown(r, EBADF);
	/* The poller was the last consumer; objects may go now. */
	sbpf_obj_detach_all(sf);
	sbpf_ring_destroy(r);
}
