// SPDX-License-Identifier: GPL-2.0
/*
 * sbpf_ring: BPF maps as objects (SBPF_IOC_MAP_ATTACH, docs/ABI.md "BPF maps").
 *
 * A map attached by fd becomes an object of the calling file. The object holds a reference
 * on the map (bpf_map_get(), dropped by bpf_map_put() when the object is freed: one grace
 * period after detach, release or the owner's death), so entries in flight never outlive
 * the map. Array values are the object's memory (obj->mem = the bpf_array's values), so
 * READ, WRITE and the word operations are the module's ordinary ones; MAP_UPDATE,
 * MAP_LOOKUP and MAP_DELETE go through the map's own operations, as kernel/bpf/syscall.c
 * calls them.
 *
 * BPF's rules, as the bpf() syscall applies them:
 *  - permissions come from the fd: FMODE_CAN_READ for reads, FMODE_CAN_WRITE for writes
 *    (a BPF_F_RDONLY fd or map answers -EPERM to writes), taken once at attach;
 *  - a frozen map refuses every write. Each write raises map->writecnt before it looks
 *    at map->frozen, as bpf_map_write_active_inc() does for the syscall path, so
 *    BPF_MAP_FREEZE either sees the write in flight (EBUSY) or the write sees the map
 *    frozen;
 *  - keys and values are copied out of the arena (which the process may rewrite at any
 *    time) into a kernel buffer before the map sees them;
 *  - lookups use map_lookup_elem_sys_only where the map has one (LRU: a syscall lookup
 *    does not mark the element used);
 *  - updates and deletes run under rcu_read_lock() (the consumer's) with preemption off.
 *
 * What a module can and cannot do here (checked against Module.symvers of Debian's 6.1
 * and 6.12 kernels): bpf_map_get() (EXPORT_SYMBOL; on 6.12 in the BPF_INTERNAL symbol
 * namespace, which this file imports, the namespace bpf_preload uses) and bpf_map_put()
 * (GPL) are exported, so the reference is the syscall path's own. __bpf_map_get(),
 * bpf_map_get_with_uref() and bpf_map_fops are not exported; fget() is, and serves to
 * read the fd's open mode. bpf_disable_instrumentation() is not
 * usable: it increments the per-CPU bpf_prog_active, which is not exported. Its job in
 * the syscall path is to keep kprobe and tracepoint programs from running on this CPU
 * inside the map operation, where they could re-enter the same map. For a hash map's
 * bucket lock the per-bucket map_locked counters turn such a re-entry into -EBUSY for
 * the tracing program. The LRU hash's free-list locks have no such guard: a kprobe or
 * tracepoint program attached inside the LRU's locked region that updates the same LRU
 * map, on the CPU where our poller holds that lock, would spin on it forever. Attaching
 * such a program takes CAP_BPF and CAP_PERFMON; docs/ABI.md states the residual risk.
 * bpf_map_offload_ops is not exported either, so bpf_map_is_offloaded() cannot be
 * called: an offloaded map is recognised by its ops (it has no map_lookup_elem) and
 * refused. sysctl_unprivileged_bpf_disabled is not exported: MAP_ATTACH requires
 * bpf_capable() (CAP_BPF or CAP_SYS_ADMIN), as bpf() does on kernels that disable
 * unprivileged BPF (Debian's default); never looser than bpf() itself.
 *
 * Refused at attach (EOPNOTSUPP): per-CPU and other map types, values with special
 * fields (spin locks, timers, kptrs, ...), offloaded maps, keys or values larger than
 * SBPF_MAX_IO_LEN, hash maps whose key and value together are.
 */
#include <linux/bpf.h>
#include <linux/capability.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/module.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/uaccess.h>
#include <linux/version.h>

#include "sbpf_internal.h"

#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 2, 0)
MODULE_IMPORT_NS(BPF_INTERNAL);	/* bpf_map_get() */
#endif

struct sbpf_bpfmap {
	struct bpf_map	*map;		/* holds a reference */
	u32		rights;		/* SBPF_RIGHT_*, from the fd at attach */
	/* Serializes users of @scratch: the ring's consumer and SYNC_OP callers. */
	spinlock_t	lock;
	u8		*scratch;	/* key (8-aligned), then the value */
	u32		value_off;	/* round_up(key_size, 8) */
};

/* Values with fields user space must not write as bytes (spin locks, timers, kptrs). */
static bool sbpf_map_has_special_fields(const struct bpf_map *map)
{
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 2, 0)
	return !IS_ERR_OR_NULL(map->record);
#else
	return map_value_has_spin_lock(map) || map_value_has_timer(map) ||
	       map_value_has_kptrs(map);
#endif
}

static int sbpf_map_supported(const struct bpf_map *map)
{
	switch (map->map_type) {
	case BPF_MAP_TYPE_ARRAY:
	case BPF_MAP_TYPE_HASH:
	case BPF_MAP_TYPE_LRU_HASH:
		break;
	default:
		return -EOPNOTSUPP;	/* per-CPU values and every other type */
	}
	/* Offloaded maps have no host-side element operations (see the top comment). */
	if (!map->ops->map_lookup_elem || !map->ops->map_update_elem ||
	    !map->ops->map_delete_elem)
		return -EOPNOTSUPP;
	if (sbpf_map_has_special_fields(map))
		return -EOPNOTSUPP;
	if (map->key_size > SBPF_MAX_IO_LEN || map->value_size > SBPF_MAX_IO_LEN)
		return -EOPNOTSUPP;
	/*
	 * MAP_UPDATE carries key and value in one arena range of at most SBPF_MAX_IO_LEN: a
	 * hash map whose pair is larger could be attached and never updated. (An array's
	 * values stay usable through READ and WRITE.)
	 */
	if (map->map_type != BPF_MAP_TYPE_ARRAY &&
	    (u64)map->key_size + map->value_size > SBPF_MAX_IO_LEN)
		return -EOPNOTSUPP;
	return 0;
}

/* What a map object costs its owner beside the map (which BPF charges itself). */
static u64 sbpf_map_cost(const struct sbpf_bpfmap *bm)
{
	return kmalloc_size_roundup(sizeof(struct sbpf_kobj)) +
	       kmalloc_size_roundup(sizeof(*bm)) +
	       kmalloc_size_roundup(bm->value_off + bm->map->value_size) + 16;
}

static void sbpf_bpfmap_destroy(struct sbpf_bpfmap *bm)
{
	bpf_map_put(bm->map);
	kfree(bm->scratch);
	kfree(bm);
}

/* Frees @obj's map side (in process context, a grace period after the last put). */
u64 sbpf_map_release(struct sbpf_kobj *obj)
{
	u64 cost = sbpf_map_cost(obj->bpf);

	sbpf_bpfmap_destroy(obj->bpf);
	obj->bpf = NULL;
	return cost;
}

struct sbpf_map_answer {
	struct sbpf_map_attach *arg;
	struct sbpf_map_attach __user *uarg;
};

static int sbpf_map_answer(u32 id, void *ctx)
{
	struct sbpf_map_answer *a = ctx;

	a->arg->id = id;
	return copy_to_user(a->uarg, a->arg, sizeof(*a->arg)) ? -EFAULT : 0;
}

int sbpf_map_attach(struct sbpf_file *sf, struct sbpf_map_attach *arg,
		    struct sbpf_map_attach __user *uarg)
{
	struct sbpf_map_answer answer = { .arg = arg, .uarg = uarg };
	struct sbpf_charge c = { .objects = 1 };
	kuid_t uid = current_uid();
	struct sbpf_bpfmap *bm;
	struct sbpf_kobj *obj;
	struct bpf_map *map;
	struct file *f;
	int ret;

	if (arg->flags || arg->resv[0] || arg->resv[1])
		return -EINVAL;
	if (!bpf_capable())
		return -EPERM;

	map = bpf_map_get(arg->fd);
	if (IS_ERR(map))
		return PTR_ERR(map);	/* EBADF: no fd; EINVAL: not a map */
	/*
	 * The permission is the fd's open mode. The fd may have been replaced since
	 * bpf_map_get(): only a file whose private_data is this very map (a map file:
	 * nothing else keeps a map there) speaks for it.
	 */
	f = fget(arg->fd);
	if (!f || f->private_data != map) {
		if (f)
			fput(f);
		bpf_map_put(map);
		return -EBADF;
	}
	arg->rights = SBPF_RIGHT_MAP;
	if (f->f_mode & FMODE_CAN_READ)
		arg->rights |= SBPF_RIGHT_READ;
	if (f->f_mode & FMODE_CAN_WRITE)
		arg->rights |= SBPF_RIGHT_WRITE;
	fput(f);

	ret = sbpf_map_supported(map);
	if (ret)
		goto put_map;

	ret = -ENOMEM;
	bm = kzalloc(sizeof(*bm), GFP_KERNEL_ACCOUNT);
	if (!bm)
		goto put_map;
	bm->map = map;
	bm->rights = arg->rights;
	spin_lock_init(&bm->lock);
	bm->value_off = round_up(map->key_size, 8);
	bm->scratch = kmalloc(bm->value_off + map->value_size, GFP_KERNEL_ACCOUNT);
	if (!bm->scratch)
		goto free_bm;
	obj = kzalloc(sizeof(*obj), GFP_KERNEL_ACCOUNT);
	if (!obj)
		goto free_bm;

	arg->map_type = map->map_type;
	arg->key_size = map->key_size;
	arg->value_size = map->value_size;
	arg->max_entries = map->max_entries;
	arg->size = 0;
	if (map->map_type == BPF_MAP_TYPE_ARRAY) {
		struct bpf_array *array = container_of(map, struct bpf_array, map);

		/* The values, laid out every elem_size bytes (value_size rounded up to 8). */
		arg->size = (u64)map->max_entries * array->elem_size;
		obj->mem = array->value;
	}
	refcount_set(&obj->ref, 1);
	obj->size = arg->size;
	obj->owner = uid;
	obj->bpf = bm;
	sbpf_obj_init_free(obj);

	c.bytes = sbpf_map_cost(bm);
	ret = sbpf_charge(uid, &c);
	if (ret)
		goto free_obj;
	ret = sbpf_obj_install(sf, obj, sbpf_map_answer, &answer);
	if (ret)
		goto uncharge;
	return 0;

uncharge:
	sbpf_uncharge(uid, &c);
free_obj:
	kfree(obj);
free_bm:
	kfree(bm->scratch);
	kfree(bm);
put_map:
	bpf_map_put(map);
	return ret;
}

static bool sbpf_map_op_writes(u8 opcode)
{
	switch (opcode) {
	case SBPF_OP_READ:
	case SBPF_OP_LOAD64:
	case SBPF_OP_MAP_LOOKUP:
		return false;
	default:
		return true;
	}
}

static bool sbpf_map_op_reads(u8 opcode)
{
	switch (opcode) {
	case SBPF_OP_WRITE:
	case SBPF_OP_STORE64:
	case SBPF_OP_MAP_UPDATE:
	case SBPF_OP_MAP_DELETE:
		return false;
	default:
		return true;
	}
}

/* MAP_UPDATE, MAP_LOOKUP, MAP_DELETE on @bm's map. Under rcu_read_lock(). */
static int sbpf_map_keyed(struct sbpf_bpfmap *bm, const struct sbpf_sqe *sqe, u8 *arena)
{
	struct bpf_map *map = bm->map;
	u32 k = map->key_size, v = map->value_size;
	u8 *key = bm->scratch, *value = bm->scratch + bm->value_off;
	void *ptr;
	int ret;

	if (sqe->len != (sqe->opcode == SBPF_OP_MAP_DELETE ? k : k + v))
		return -EINVAL;

	spin_lock(&bm->lock);
	/* A private copy: the process may rewrite the arena while the map hashes it. */
	memcpy(key, arena + sqe->arena_off, k);
	switch (sqe->opcode) {
	case SBPF_OP_MAP_UPDATE:
		memcpy(value, arena + sqe->arena_off + k, v);
		ret = map->ops->map_update_elem(map, key, value, sqe->val);
		break;
	case SBPF_OP_MAP_LOOKUP:
		if (map->ops->map_lookup_elem_sys_only)
			ptr = map->ops->map_lookup_elem_sys_only(map, key);
		else
			ptr = map->ops->map_lookup_elem(map, key);
		if (IS_ERR(ptr)) {
			ret = PTR_ERR(ptr);
		} else if (!ptr) {
			ret = -ENOENT;
		} else {
			/* No special fields (refused at attach): the value is plain bytes. */
			memcpy(arena + sqe->arena_off + k, ptr, v);
			ret = v;
		}
		break;
	default:
		ret = map->ops->map_delete_elem(map, key);
		break;
	}
	spin_unlock(&bm->lock);
	return ret;
}

static void sbpf_map_perform(struct sbpf_bpfmap *bm, const struct sbpf_sqe *sqe,
			     struct sbpf_kobj *obj, u8 *arena, struct sbpf_cqe *cqe)
{
	if (sqe->opcode >= SBPF_OP_MAP_UPDATE)
		cqe->res = sbpf_map_keyed(bm, sqe, arena);
	else if (bm->map->map_type == BPF_MAP_TYPE_ARRAY)
		sbpf_execute(sqe, obj, arena, cqe);	/* the values are obj->mem */
	else
		cqe->res = -EFAULT;	/* no values to address; validation saw size 0 */
}

/*
 * Performs a validated entry whose object is a BPF map's, or a MAP_* entry on any object
 * (-EOPNOTSUPP on a plain one), and fills @cqe->res. Under rcu_read_lock(); never sleeps.
 */
void sbpf_map_execute(const struct sbpf_sqe *sqe, struct sbpf_kobj *obj, void *arena,
		      struct sbpf_cqe *cqe)
{
	struct sbpf_bpfmap *bm = obj->bpf;
	bool writes = sbpf_map_op_writes(sqe->opcode);
	struct bpf_map *map;

	if (!bm) {
		cqe->res = -EOPNOTSUPP;
		return;
	}
	map = bm->map;
	if ((writes && !(bm->rights & SBPF_RIGHT_WRITE)) ||
	    (sbpf_map_op_reads(sqe->opcode) && !(bm->rights & SBPF_RIGHT_READ))) {
		cqe->res = -EPERM;
		return;
	}
	if (!writes) {
		sbpf_map_perform(bm, sqe, obj, arena, cqe);
		return;
	}
	/*
	 * As bpf_map_write_active_inc() in the syscall path: map_freeze() refuses (EBUSY)
	 * while writecnt is raised and only then sets frozen, so a write either sees the
	 * map frozen or is seen in flight.
	 */
	atomic64_inc(&map->writecnt);
	smp_mb__after_atomic();
	if (READ_ONCE(map->frozen))
		cqe->res = -EPERM;
	else
		sbpf_map_perform(bm, sqe, obj, arena, cqe);
	atomic64_dec(&map->writecnt);
}
