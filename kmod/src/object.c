// SPDX-License-Identifier: GPL-2.0
/*
 * sbpf_ring: kernel objects and resource accounting.
 *
 * Objects live in one global xarray. An id is (generation << SBPF_OBJ_INDEX_BITS) | index
 * (uapi/sbpf_ring.h): the index is allocated cyclically (xa_alloc_cyclic) in a bounded,
 * dense space, so freed indices are reused and ids never run out, and the generation
 * counts the wraps of that space, so a stale id names a new object at the same index only
 * after 2^12 wraps; a lookup compares the whole id. Each file that attaches an object
 * holds a reference in its attached[] table, and so does an in-flight pread/pwrite.
 * Consumers (the poller, inline ENTER, SYNC_OP) do not take references: they look the
 * object up and use it inside one rcu_read_lock() section, and the object is freed by an
 * rcu_work after the last reference is dropped, so a concurrent OBJ_DETACH or close can
 * never pull the memory from under an operation in progress. Operations copy at most
 * SBPF_MAX_IO_LEN bytes between kernel buffers and never sleep, so the read-side sections
 * are short.
 *
 * Object ids are not secrets: OBJ_ATTACH is allowed to the creator's uid and to
 * CAP_SYS_ADMIN only (EPERM otherwise).
 *
 * Accounting: whatever a request pins (ring region, arena, objects, and the metadata of
 * each: page arrays, vmalloc bookkeeping, our own structs, a poller's stack and task) is
 * charged to the real uid that asked for it, root included, *before* it is allocated, and
 * uncharged only *after* it is freed (objects: in process context, one grace period after
 * the last reference). The per-uid limits are module parameters: bytes (ENOMEM), objects
 * (ENOSPC), rings (EMFILE), poller threads (EAGAIN; also a global cap). Memory cgroups
 * see the same memory: every allocation a request makes uses __GFP_ACCOUNT.
 */
#include <linux/capability.h>
#include <linux/cred.h>
#include <linux/hashtable.h>
#include <linux/mm.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/uaccess.h>
#include <linux/vmalloc.h>
#include <linux/workqueue.h>
#include <linux/xarray.h>

#include "sbpf_internal.h"

unsigned long sbpf_max_user_bytes = 256UL << 20;
unsigned int sbpf_max_user_objects = 16384;
unsigned int sbpf_max_user_rings = 256;
unsigned int sbpf_max_user_pollers = 4;
unsigned int sbpf_max_pollers = 64;

struct sbpf_acct {
	struct hlist_node node;
	kuid_t uid;
	struct sbpf_charge used;
};

static DEFINE_SPINLOCK(sbpf_acct_lock);
static DEFINE_HASHTABLE(sbpf_acct_table, 6);
static atomic64_t sbpf_pinned = ATOMIC64_INIT(0);
static unsigned int sbpf_pollers_total;		/* under sbpf_acct_lock */

/* Index space of object ids, and the generation of its current lap. */
#define SBPF_OBJ_INDEX_MASK	((1U << SBPF_OBJ_INDEX_BITS) - 1)
static DEFINE_XARRAY_ALLOC1(sbpf_objects);
static u32 sbpf_obj_next;	/* xa_alloc_cyclic's cursor, under the xa_lock */
static u32 sbpf_obj_gen;	/* laps of the index space, under the xa_lock */

/* Frees objects in process context, where vfree() is immediate, then uncharges. */
static struct workqueue_struct *sbpf_free_wq;

static struct sbpf_acct *sbpf_acct_find(kuid_t uid)
{
	struct sbpf_acct *a;

	hash_for_each_possible(sbpf_acct_table, a, node, __kuid_val(uid))
		if (uid_eq(a->uid, uid))
			return a;
	return NULL;
}

static bool sbpf_charge_empty(const struct sbpf_charge *c)
{
	return !c->bytes && !c->objects && !c->rings && !c->pollers;
}

/* Whether adding @add to @used stays within @limit; no overflow. */
static bool sbpf_within(u64 used, u64 add, u64 limit)
{
	return add <= limit && used <= limit - add;
}

/*
 * Charges @c to @uid, all of it or nothing: 0, or the errno of the first limit it would
 * pass. The bookkeeping entry is charged to the caller's memory cgroup as well.
 */
int sbpf_charge(kuid_t uid, const struct sbpf_charge *c)
{
	/* As RLIMIT_NPROC: the per-uid thread cap spares administrators, the global cap not. */
	bool uncapped = c->pollers && (ns_capable_noaudit(&init_user_ns, CAP_SYS_RESOURCE) ||
				       ns_capable_noaudit(&init_user_ns, CAP_SYS_ADMIN));
	struct sbpf_acct *fresh, *a;
	int ret = 0;

	fresh = kzalloc(sizeof(*fresh), GFP_KERNEL_ACCOUNT);
	if (!fresh)
		return -ENOMEM;

	spin_lock(&sbpf_acct_lock);
	a = sbpf_acct_find(uid);
	if (!a) {
		a = fresh;
		fresh = NULL;
		a->uid = uid;
		hash_add(sbpf_acct_table, &a->node, __kuid_val(uid));
	}
	if (!sbpf_within(a->used.bytes, c->bytes, READ_ONCE(sbpf_max_user_bytes)))
		ret = -ENOMEM;
	else if (!sbpf_within(a->used.objects, c->objects, READ_ONCE(sbpf_max_user_objects)))
		ret = -ENOSPC;
	else if (!sbpf_within(a->used.rings, c->rings, READ_ONCE(sbpf_max_user_rings)))
		ret = -EMFILE;
	else if ((!uncapped &&
		  !sbpf_within(a->used.pollers, c->pollers, READ_ONCE(sbpf_max_user_pollers))) ||
		 !sbpf_within(sbpf_pollers_total, c->pollers, READ_ONCE(sbpf_max_pollers)))
		ret = -EAGAIN;
	if (!ret) {
		a->used.bytes += c->bytes;
		a->used.objects += c->objects;
		a->used.rings += c->rings;
		a->used.pollers += c->pollers;
		sbpf_pollers_total += c->pollers;
		atomic64_add(c->bytes, &sbpf_pinned);
	}
	if (sbpf_charge_empty(&a->used)) {
		hash_del(&a->node);
		fresh = a;
	}
	spin_unlock(&sbpf_acct_lock);
	kfree(fresh);
	return ret;
}

/* Call only once what @c stands for has been freed. */
void sbpf_uncharge(kuid_t uid, const struct sbpf_charge *c)
{
	struct sbpf_acct *a, *gone = NULL;

	spin_lock(&sbpf_acct_lock);
	a = sbpf_acct_find(uid);
	if (a) {
		u64 bytes = min(c->bytes, a->used.bytes);

		a->used.bytes -= bytes;
		a->used.objects -= min(c->objects, a->used.objects);
		a->used.rings -= min(c->rings, a->used.rings);
		sbpf_pollers_total -= min3(c->pollers, a->used.pollers, sbpf_pollers_total);
		a->used.pollers -= min(c->pollers, a->used.pollers);
		atomic64_sub(bytes, &sbpf_pinned);
		if (sbpf_charge_empty(&a->used)) {
			hash_del(&a->node);
			gone = a;
		}
	}
	spin_unlock(&sbpf_acct_lock);
	kfree(gone);
}

u64 sbpf_pinned_bytes(void)
{
	return atomic64_read(&sbpf_pinned);
}

/* Waits until every object already released is freed and uncharged. */
void sbpf_objects_quiesce(void)
{
	rcu_barrier();			/* each pending rcu_work is on the workqueue now */
	flush_workqueue(sbpf_free_wq);
}

unsigned int sbpf_pollers_running(void)
{
	return READ_ONCE(sbpf_pollers_total);
}

/*
 * What a zeroed __vmalloc() of @size really takes: whole pages, the array of their page
 * pointers, and the vm_struct and vmap_area that describe the area.
 */
u64 sbpf_vmalloc_cost(u64 size)
{
	u64 pages = PAGE_ALIGN(size) >> PAGE_SHIFT;
	u64 array = pages * sizeof(struct page *);

	if (!size)
		return 0;
	array = array > PAGE_SIZE ? PAGE_ALIGN(array) : kmalloc_size_roundup(array);
	return (pages << PAGE_SHIFT) + array +
	       kmalloc_size_roundup(sizeof(struct vm_struct)) +
	       kmalloc_size_roundup(sizeof(struct vmap_area));
}

/* Objects up to a page come from kmalloc (they are never mapped), larger from vmalloc. */
static bool sbpf_obj_small(u64 size)
{
	return size <= PAGE_SIZE;
}

/* The whole cost of an object of @size, bookkeeping included. */
static u64 sbpf_obj_cost(u64 size)
{
	u64 mem = sbpf_obj_small(size) ? kmalloc_size_roundup(size) : sbpf_vmalloc_cost(size);

	/* The struct, and about a slot's share of an xarray node (64 slots of 8 bytes). */
	return mem + kmalloc_size_roundup(sizeof(struct sbpf_kobj)) + 16;
}

static void sbpf_obj_free_work(struct work_struct *work)
{
	struct sbpf_kobj *obj = container_of(to_rcu_work(work), struct sbpf_kobj, free_work);
	struct sbpf_charge c = { .objects = 1 };
	kuid_t owner = obj->owner;

	if (obj->bpf) {
		c.bytes = sbpf_map_release(obj);	/* mem is the map's: drops our reference */
	} else {
		c.bytes = sbpf_obj_cost(obj->size);
		kvfree(obj->mem);
	}
	kfree(obj);
	sbpf_uncharge(owner, &c);
}

void sbpf_obj_put(struct sbpf_kobj *obj)
{
	if (!refcount_dec_and_test(&obj->ref))
		return;
	xa_erase(&sbpf_objects, obj->id & SBPF_OBJ_INDEX_MASK);
	/* After a grace period (consumers are done with it), in process context. */
	queue_rcu_work(sbpf_free_wq, &obj->free_work);
}

/* The object under @id, if any (the whole id, generation included, must match). */
static struct sbpf_kobj *sbpf_obj_find_rcu(u32 id)
{
	struct sbpf_kobj *obj = xa_load(&sbpf_objects, id & SBPF_OBJ_INDEX_MASK);

	return obj && obj->id == id ? obj : NULL;
}

/* A free slot in @sf's table, or -ENOSPC. Caller holds sf->lock. */
static int sbpf_free_slot(struct sbpf_file *sf)
{
	int i;

	for (i = 0; i < SBPF_MAX_ATTACHED; i++)
		if (!rcu_access_pointer(sf->attached[i]))
			return i;
	return -ENOSPC;
}

/* Slot of object @id in @sf's table, or -ENOENT. Caller holds sf->lock. */
static int sbpf_find_slot(struct sbpf_file *sf, u32 id)
{
	struct sbpf_kobj *obj;
	int i;

	for (i = 0; i < SBPF_MAX_ATTACHED; i++) {
		obj = rcu_dereference_protected(sf->attached[i], lockdep_is_held(&sf->lock));
		if (obj && obj->id == id)
			return i;
	}
	return -ENOENT;
}

/*
 * Creates an object, attaches it to @sf and writes the answer (@arg with its id) to
 * @uarg. The id is reserved (invisible to OBJ_ATTACH) until the answer is written, so a
 * caller that cannot take the answer gets EFAULT and nothing exists.
 */
int sbpf_obj_create(struct sbpf_file *sf, struct sbpf_object *arg,
		    struct sbpf_object __user *uarg)
{
	struct sbpf_charge c = { .objects = 1 };
	struct sbpf_kobj *obj;
	kuid_t uid = current_uid();
	int slot, ret;
	u32 index;

	if (arg->flags || arg->size < 8 || arg->size > SBPF_MAX_OBJECT_SIZE ||
	    arg->size % 8)
		return -EINVAL;
	c.bytes = sbpf_obj_cost(arg->size);

	mutex_lock(&sf->lock);
	slot = sbpf_free_slot(sf);
	if (slot < 0) {
		ret = slot;
		goto unlock;
	}
	ret = sbpf_charge(uid, &c);
	if (ret)
		goto unlock;

	ret = -ENOMEM;
	obj = kzalloc(sizeof(*obj), GFP_KERNEL_ACCOUNT);
	if (!obj)
		goto uncharge;
	if (sbpf_obj_small(arg->size))
		obj->mem = kmalloc(arg->size, SBPF_GFP_USER_MEM);
	else
		obj->mem = __vmalloc(arg->size, SBPF_GFP_USER_MEM);
	if (!obj->mem)
		goto free_obj;
	refcount_set(&obj->ref, 1);
	obj->size = arg->size;
	obj->owner = uid;
	INIT_RCU_WORK(&obj->free_work, sbpf_obj_free_work);

	xa_lock(&sbpf_objects);
	/* NULL reserves the index; the lap is read under the same lock as the allocation. */
	ret = __xa_alloc_cyclic(&sbpf_objects, &index, NULL,
				XA_LIMIT(1, SBPF_OBJ_INDEX_MASK), &sbpf_obj_next,
				GFP_KERNEL_ACCOUNT);
	if (ret == 1)
		sbpf_obj_gen = (sbpf_obj_gen + 1) & ((1U << (32 - SBPF_OBJ_INDEX_BITS)) - 1);
	if (ret >= 0)
		obj->id = sbpf_obj_gen << SBPF_OBJ_INDEX_BITS | index;
	xa_unlock(&sbpf_objects);
	if (ret < 0) {
		ret = ret == -EBUSY ? -ENOSPC : ret;	/* every index in use */
		goto free_mem;
	}

	arg->id = obj->id;
	if (copy_to_user(uarg, arg, sizeof(*arg))) {
		xa_erase(&sbpf_objects, index);
		ret = -EFAULT;
		goto free_mem;
	}
	xa_store(&sbpf_objects, index, obj, GFP_KERNEL);	/* fills the reserved slot */
	rcu_assign_pointer(sf->attached[slot], obj);
	mutex_unlock(&sf->lock);
	return 0;

free_mem:
	kvfree(obj->mem);
free_obj:
	kfree(obj);
uncharge:
	sbpf_uncharge(uid, &c);
unlock:
	mutex_unlock(&sf->lock);
	return ret;
}

/* Attaches object @arg->id to @sf and writes the answer (its size) to @uarg first. */
int sbpf_obj_attach(struct sbpf_file *sf, struct sbpf_object *arg,
		    struct sbpf_object __user *uarg)
{
	struct sbpf_kobj *obj;
	int slot, ret = 0;

	if (arg->flags || !arg->id)
		return -EINVAL;

	mutex_lock(&sf->lock);
	slot = sbpf_find_slot(sf, arg->id);
	if (slot >= 0) {	/* already attached: answer the size */
		obj = rcu_dereference_protected(sf->attached[slot], lockdep_is_held(&sf->lock));
		arg->size = obj->size;
		if (copy_to_user(uarg, arg, sizeof(*arg)))
			ret = -EFAULT;
		goto unlock;
	}
	slot = sbpf_free_slot(sf);
	if (slot < 0) {
		ret = slot;
		goto unlock;
	}
	rcu_read_lock();
	obj = sbpf_obj_find_rcu(arg->id);
	if (obj && !refcount_inc_not_zero(&obj->ref))
		obj = NULL;
	rcu_read_unlock();
	if (!obj) {
		ret = -ENOENT;
		goto unlock;
	}
	/* A BPF map's object is its file's: the map fd was the permission (bpfmap.c). */
	if (obj->bpf) {
		ret = -EPERM;
		goto put;
	}
	/* Ids are easy to guess: only the creator's uid (or an admin) may attach. */
	if (!uid_eq(obj->owner, current_uid()) && !capable(CAP_SYS_ADMIN)) {
		ret = -EPERM;
		goto put;
	}
	arg->size = obj->size;
	if (copy_to_user(uarg, arg, sizeof(*arg))) {
		ret = -EFAULT;
		goto put;
	}
	rcu_assign_pointer(sf->attached[slot], obj);
	goto unlock;
put:
	sbpf_obj_put(obj);
unlock:
	mutex_unlock(&sf->lock);
	return ret;
}

int sbpf_obj_detach(struct sbpf_file *sf, u32 id)
{
	struct sbpf_kobj *obj, *unselect = NULL;
	int slot;

	mutex_lock(&sf->lock);
	slot = sbpf_find_slot(sf, id);
	if (slot < 0) {
		mutex_unlock(&sf->lock);
		return slot;
	}
	obj = rcu_dereference_protected(sf->attached[slot], lockdep_is_held(&sf->lock));
	RCU_INIT_POINTER(sf->attached[slot], NULL);
	if (sf->selected == obj) {
		unselect = obj;
		sf->selected = NULL;
	}
	mutex_unlock(&sf->lock);

	/* Consumers still inside an RCU section with @obj keep it until a grace period. */
	if (unselect)
		sbpf_obj_put(unselect);
	sbpf_obj_put(obj);
	return 0;
}

void sbpf_obj_detach_all(struct sbpf_file *sf)
{
	struct sbpf_kobj *obj;
	int i;

	mutex_lock(&sf->lock);
	if (sf->selected) {
		sbpf_obj_put(sf->selected);
		sf->selected = NULL;
	}
	for (i = 0; i < SBPF_MAX_ATTACHED; i++) {
		obj = rcu_dereference_protected(sf->attached[i], lockdep_is_held(&sf->lock));
		if (obj) {
			RCU_INIT_POINTER(sf->attached[i], NULL);
			sbpf_obj_put(obj);
		}
	}
	mutex_unlock(&sf->lock);
}

int sbpf_obj_select(struct sbpf_file *sf, u32 id)
{
	struct sbpf_kobj *obj = NULL, *old;
	int slot;

	mutex_lock(&sf->lock);
	if (id) {
		slot = sbpf_find_slot(sf, id);
		if (slot < 0) {
			mutex_unlock(&sf->lock);
			return slot;
		}
		obj = rcu_dereference_protected(sf->attached[slot], lockdep_is_held(&sf->lock));
		/* pread/pwrite would bypass a map's rights and freezing (bpfmap.c). */
		if (obj->bpf) {
			mutex_unlock(&sf->lock);
			return -EOPNOTSUPP;
		}
		refcount_inc(&obj->ref);
	}
	old = sf->selected;
	sf->selected = obj;
	mutex_unlock(&sf->lock);
	if (old)
		sbpf_obj_put(old);
	return 0;
}

struct sbpf_kobj *sbpf_obj_get_selected(struct sbpf_file *sf)
{
	struct sbpf_kobj *obj;

	mutex_lock(&sf->lock);
	obj = sf->selected;
	if (obj)
		refcount_inc(&obj->ref);
	mutex_unlock(&sf->lock);
	return obj;
}

/* The attached object @id of @sf, valid until rcu_read_unlock(); NULL if not attached. */
struct sbpf_kobj *sbpf_obj_lookup_rcu(struct sbpf_file *sf, u32 id)
{
	struct sbpf_kobj *obj;
	int i;

	for (i = 0; i < SBPF_MAX_ATTACHED; i++) {
		obj = rcu_dereference(sf->attached[i]);
		if (obj && obj->id == id)
			return obj;
	}
	return NULL;
}

void sbpf_obj_init_free(struct sbpf_kobj *obj)
{
	INIT_RCU_WORK(&obj->free_work, sbpf_obj_free_work);
}

/*
 * Gives @obj (one reference, charged, sbpf_obj_init_free() done) an id and attaches it to
 * @sf. @answer gets the id before the object is reachable; if it fails, or no slot or id
 * is free, nothing is attached and the caller still owns @obj. For objects made outside
 * this file (bpfmap.c); the id is allocated as sbpf_obj_create() does.
 */
int sbpf_obj_install(struct sbpf_file *sf, struct sbpf_kobj *obj,
		     int (*answer)(u32 id, void *ctx), void *ctx)
{
	int slot, ret;
	u32 index;

	mutex_lock(&sf->lock);
	slot = sbpf_free_slot(sf);
	if (slot < 0) {
		ret = slot;
		goto unlock;
	}
	xa_lock(&sbpf_objects);
	ret = __xa_alloc_cyclic(&sbpf_objects, &index, NULL,
				XA_LIMIT(1, SBPF_OBJ_INDEX_MASK), &sbpf_obj_next,
				GFP_KERNEL_ACCOUNT);
	if (ret == 1)
		sbpf_obj_gen = (sbpf_obj_gen + 1) & ((1U << (32 - SBPF_OBJ_INDEX_BITS)) - 1);
	if (ret >= 0)
		obj->id = sbpf_obj_gen << SBPF_OBJ_INDEX_BITS | index;
	xa_unlock(&sbpf_objects);
	if (ret < 0) {
		ret = ret == -EBUSY ? -ENOSPC : ret;
		goto unlock;
	}
	ret = answer(obj->id, ctx);
	if (ret) {
		xa_erase(&sbpf_objects, index);
		goto unlock;
	}
	xa_store(&sbpf_objects, index, obj, GFP_KERNEL);	/* fills the reserved slot */
	rcu_assign_pointer(sf->attached[slot], obj);
unlock:
	mutex_unlock(&sf->lock);
	return ret;
}

int sbpf_objects_init(void)
{
	sbpf_free_wq = alloc_workqueue("sbpf_free", WQ_UNBOUND, 0);
	return sbpf_free_wq ? 0 : -ENOMEM;
}

void sbpf_objects_exit(void)
{
	/*
	 * Every file is closed, so every object is released: rcu_barrier() lets each pending
	 * rcu_work reach the workqueue, whose destruction runs it.
	 */
	rcu_barrier();
	destroy_workqueue(sbpf_free_wq);
	WARN_ON_ONCE(!xa_empty(&sbpf_objects));
	xa_destroy(&sbpf_objects);
}
