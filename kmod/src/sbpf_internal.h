/* SPDX-License-Identifier: GPL-2.0 */
/*
 * sbpf_ring: private types shared by the module's files. The ordering contract between
 * the shared ring pages and the kernel is written once, at the top of ring.c.
 */
#ifndef _SBPF_INTERNAL_H
#define _SBPF_INTERNAL_H

#include <linux/atomic.h>
#include <linux/gfp.h>
#include <linux/mutex.h>
#include <linux/rcupdate.h>
#include <linux/refcount.h>
#include <linux/sched.h>
#include <linux/types.h>
#include <linux/uidgid.h>
#include <linux/wait.h>
#include <linux/workqueue.h>

#include "uapi/sbpf_ring.h"
#include "sbpf_validate.h"

/*
 * Memory a process asked for (rings, arenas, objects): charged to its memory cgroup,
 * zeroed, and a failure (also at the cgroup's memory.max) is ENOMEM with no
 * allocation-failure splat and no OOM kill on the requester's behalf.
 */
#define SBPF_GFP_USER_MEM	(GFP_KERNEL_ACCOUNT | __GFP_ZERO | __GFP_NOWARN | \
				 __GFP_RETRY_MAYFAIL)

/* Objects one file may hold attached at once. */
#define SBPF_MAX_ATTACHED	64

/*
 * A kernel object: zeroed memory (kmalloc up to a page, else vmalloc) addressed by a
 * global id, shared by every file that attaches it. Each attachment and each pread/pwrite
 * in flight holds a reference; the memory is freed one RCU grace period after the last
 * reference goes, so a consumer that found the object under rcu_read_lock() may finish
 * its operation on it.
 */
struct sbpf_kobj {
	refcount_t	ref;
	u32		id;		/* generation | index, never 0; immutable */
	u64		size;		/* bytes, multiple of 8; immutable */
	void		*mem;		/* 8-byte aligned words */
	kuid_t		owner;		/* charged for its cost until freed */
	struct rcu_work	free_work;
	struct sbpf_bpfmap *bpf;	/* a BPF map's object (bpfmap.c; mem = its values), else NULL */
};

/* What a request pins, charged to a uid (object.c). */
struct sbpf_charge {
	u64		bytes;
	u32		objects;
	u32		rings;
	u32		pollers;
};

/* Counters of struct sbpf_stats, kept by the kernel; the shared copy is a mirror. */
struct sbpf_counters {
	atomic64_t	v[sizeof(struct sbpf_stats) / sizeof(__u64)];
};

#define SBPF_CTR(field)	(offsetof(struct sbpf_stats, field) / sizeof(__u64))

/*
 * A ring: one per file after SETUP. Fields marked "consumer" belong to whoever consumes
 * the ring: the poller thread with SQPOLL, else ENTER under @consume_lock.
 */
struct sbpf_ring {
	void		*region;	/* header + sqes + cqes, vmalloc_user */
	size_t		region_size;	/* page rounded, the exact mmap size */
	void		*arena;		/* vmalloc_user, or NULL when arena_size is 0 */
	u64		arena_size;

	u32		sq_entries, sq_mask;
	u32		cq_entries, cq_mask;
	u32		flags;		/* SBPF_SETUP_* */
	u32		idle_ms;

	/* Pointers into @region; every one of them the process may overwrite at will. */
	u32		*sq_head_shared;	/* kernel writes (release) */
	u32		*sq_flags_shared;	/* kernel writes */
	u32		*cq_head_shared;	/* kernel reads (acquire), untrusted */
	u32		*cq_tail_shared;	/* kernel writes (release) */
	struct sbpf_sqe	*sqes;
	struct sbpf_cqe	*cqes;
	struct sbpf_stats *stats_shared;	/* kernel writes, never reads */

	/* Consumer state, never read back from shared memory. */
	u32		sq_head;		/* consumer */
	u32		cq_tail;		/* consumer; read by waiters via READ_ONCE */
	bool		cq_was_full;		/* consumer: counts cq_full per episode */

	/*
	 * Inline consumers (no SQPOLL), and shutdown: whoever sets @closed holds it, so no
	 * inline consumer is mid-pass once the ring is closed.
	 */
	struct mutex	consume_lock;
	wait_queue_head_t cq_wait;		/* ENTER(GETEVENTS) and poll() */
	wait_queue_head_t sq_wait;		/* the sleeping poller */
	struct task_struct *poller;		/* under consume_lock; NULL once stopped */
	bool		poller_asleep;		/* the poller sleeps on sq_wait */

	/*
	 * 0 while the ring consumes; then the positive errno that waiters and later ENTERs
	 * get: ESHUTDOWN (SHUTDOWN ioctl), EBADF (the owner's last fd closed), ENXIO (the
	 * last mapping of the ring region gone). The first cause sticks. Written under
	 * consume_lock, read with READ_ONCE.
	 */
	int		closed;
	struct files_struct *owner_files;	/* the fd table that set the ring up; compared only */
	atomic_t	region_maps;		/* vmas mapping the ring region */

	struct sbpf_counters ctr;
	struct sbpf_file *sf;			/* the file it belongs to */
	kuid_t		uid;			/* charged for it */
	struct sbpf_charge charge;		/* what is charged now; under consume_lock */
	pid_t		pid;			/* tgid that set it up, for debugfs */
};

/* Per open file of /dev/sbpf_ring. */
struct sbpf_file {
	struct mutex	lock;		/* SETUP, attach/detach/select */
	struct sbpf_ring *ring;		/* NULL until SETUP; then fixed (release/acquire) */
	/* Attached objects; read under RCU by consumers, written under @lock. */
	struct sbpf_kobj __rcu *attached[SBPF_MAX_ATTACHED];
	struct sbpf_kobj *selected;	/* holds a reference; under @lock */
	struct list_head node;		/* sbpf_files, for debugfs */
};

/* accounting and objects (object.c) */
extern unsigned long sbpf_max_user_bytes;
extern unsigned int sbpf_max_user_objects, sbpf_max_user_rings;
extern unsigned int sbpf_max_user_pollers, sbpf_max_pollers;
int sbpf_charge(kuid_t uid, const struct sbpf_charge *c);
void sbpf_uncharge(kuid_t uid, const struct sbpf_charge *c);
u64 sbpf_pinned_bytes(void);
void sbpf_objects_quiesce(void);
unsigned int sbpf_pollers_running(void);
u64 sbpf_vmalloc_cost(u64 size);
int sbpf_obj_create(struct sbpf_file *sf, struct sbpf_object *arg,
		    struct sbpf_object __user *uarg);
int sbpf_obj_attach(struct sbpf_file *sf, struct sbpf_object *arg,
		    struct sbpf_object __user *uarg);
int sbpf_obj_detach(struct sbpf_file *sf, u32 id);
int sbpf_obj_select(struct sbpf_file *sf, u32 id);
void sbpf_obj_detach_all(struct sbpf_file *sf);
struct sbpf_kobj *sbpf_obj_lookup_rcu(struct sbpf_file *sf, u32 id);
struct sbpf_kobj *sbpf_obj_get_selected(struct sbpf_file *sf);
void sbpf_obj_put(struct sbpf_kobj *obj);
int sbpf_obj_install(struct sbpf_file *sf, struct sbpf_kobj *obj,
		     int (*answer)(u32 id, void *ctx), void *ctx);
void sbpf_obj_init_free(struct sbpf_kobj *obj);
int sbpf_objects_init(void);
void sbpf_objects_exit(void);

void sbpf_execute(const struct sbpf_sqe *sqe, struct sbpf_kobj *obj, void *arena,
		  struct sbpf_cqe *cqe);	/* ring.c */

/* BPF maps as objects (bpfmap.c) */
struct sbpf_bpfmap;
int sbpf_map_attach(struct sbpf_file *sf, struct sbpf_map_attach *arg,
		    struct sbpf_map_attach __user *uarg);
void sbpf_map_execute(const struct sbpf_sqe *sqe, struct sbpf_kobj *obj, void *arena,
		      struct sbpf_cqe *cqe);
u64 sbpf_map_release(struct sbpf_kobj *obj);

/* who may use the device and SQPOLL (main.c) */
extern int sbpf_sqpoll_disabled, sbpf_sqpoll_group;
extern unsigned int sbpf_sqpoll_max_idle_ms;
bool sbpf_allowed(int disabled, int group, int cap);

/* rings (ring.c) */
int sbpf_ring_setup(struct sbpf_file *sf, struct sbpf_params *p,
		    struct sbpf_params __user *uarg);
void sbpf_ring_free(struct sbpf_file *sf, struct sbpf_ring *r);
void sbpf_ring_shutdown(struct sbpf_ring *r, int why);
void sbpf_ring_wake_poller(struct sbpf_ring *r);
int sbpf_ring_enter(struct sbpf_file *sf, struct sbpf_ring *r, const struct sbpf_enter *e);
unsigned int sbpf_ring_cq_ready(struct sbpf_ring *r);
void sbpf_ring_sync_op(struct sbpf_file *sf, struct sbpf_ring *r, struct sbpf_sync_op *op);
void sbpf_ring_stats(struct sbpf_ring *r, struct sbpf_stats *out);

#endif /* _SBPF_INTERNAL_H */
