// SPDX-License-Identifier: GPL-2.0
/*
 * sbpf_ring: kernel objects and memory accounting.
 *
 * Objects live in one global xarray under ids that count up from 1 and are never reused
 * while the module is loaded. Each file that attaches an object holds a reference in its
 * attached[] table, and so does an in-flight pread/pwrite. Consumers (the poller, inline
 * ENTER, SYNC_OP) do not take references: they look the object up and use it inside one
 * rcu_read_lock() section, and the object's memory is freed by call_rcu() after the last
 * reference is dropped, so a concurrent OBJ_DETACH or close can never pull the memory
 * from under an operation in progress. Operations copy at most SBPF_MAX_IO_LEN bytes
 * between vmalloc areas and never sleep, so the read-side sections are short.
 *
 * Object ids are not secrets: OBJ_ATTACH is allowed to the creator's uid and to
 * CAP_SYS_ADMIN only (EPERM otherwise).
 *
 * Accounting: every byte pinned on behalf of a process (ring region, arena, objects) is
 * charged to the real uid that asked for it, root included, against max_user_bytes; the
 * module-wide total is the read-only parameter pinned_bytes.
 */
#include <linux/capability.h>
#include <linux/cred.h>
#include <linux/hashtable.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/vmalloc.h>
#include <linux/xarray.h>

#include "sbpf_internal.h"

unsigned long sbpf_max_user_bytes = 256UL << 20;

struct sbpf_acct {
	struct hlist_node node;
	kuid_t uid;
	u64 bytes;
};

static DEFINE_SPINLOCK(sbpf_acct_lock);
static DEFINE_HASHTABLE(sbpf_acct_table, 6);
static atomic64_t sbpf_pinned = ATOMIC64_INIT(0);

static DEFINE_XARRAY(sbpf_objects);
static u32 sbpf_next_id = 1;	/* under xa_lock(&sbpf_objects); 0 once exhausted */

static struct sbpf_acct *sbpf_acct_find(kuid_t uid)
{
	struct sbpf_acct *a;

	hash_for_each_possible(sbpf_acct_table, a, node, __kuid_val(uid))
		if (uid_eq(a->uid, uid))
			return a;
	return NULL;
}

int sbpf_charge(kuid_t uid, u64 bytes)
{
	struct sbpf_acct *fresh, *a;
	u64 limit = READ_ONCE(sbpf_max_user_bytes);
	int ret = 0;

	fresh = kzalloc(sizeof(*fresh), GFP_KERNEL);
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
	if (bytes > limit || a->bytes > limit - bytes) {
		ret = -ENOMEM;
	} else {
		a->bytes += bytes;
		atomic64_add(bytes, &sbpf_pinned);
	}
	if (!a->bytes) {
		hash_del(&a->node);
		fresh = a;
	}
	spin_unlock(&sbpf_acct_lock);
	kfree(fresh);
	return ret;
}

void sbpf_uncharge(kuid_t uid, u64 bytes)
{
	struct sbpf_acct *a, *gone = NULL;

	spin_lock(&sbpf_acct_lock);
	a = sbpf_acct_find(uid);
	if (a) {
		bytes = min(bytes, a->bytes);
		a->bytes -= bytes;
		atomic64_sub(bytes, &sbpf_pinned);
		if (!a->bytes) {
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

static void sbpf_obj_free_rcu(struct rcu_head *head)
{
	struct sbpf_kobj *obj = container_of(head, struct sbpf_kobj, rcu);

	vfree(obj->mem);	/* defers itself when called from softirq */
	kfree(obj);
}

void sbpf_obj_put(struct sbpf_kobj *obj)
{
	if (!refcount_dec_and_test(&obj->ref))
		return;
	xa_erase(&sbpf_objects, obj->id);
	sbpf_uncharge(obj->owner, obj->size);
	call_rcu(&obj->rcu, sbpf_obj_free_rcu);
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

int sbpf_obj_create(struct sbpf_file *sf, struct sbpf_object *arg)
{
	struct sbpf_kobj *obj;
	kuid_t uid = current_uid();
	int slot, ret;
	u32 id;

	if (arg->flags || arg->size < 8 || arg->size > SBPF_MAX_OBJECT_SIZE ||
	    arg->size % 8)
		return -EINVAL;

	mutex_lock(&sf->lock);
	slot = sbpf_free_slot(sf);
	if (slot < 0) {
		ret = slot;
		goto unlock;
	}
	ret = sbpf_charge(uid, arg->size);
	if (ret)
		goto unlock;

	ret = -ENOMEM;
	obj = kzalloc(sizeof(*obj), GFP_KERNEL);
	if (!obj)
		goto uncharge;
	obj->mem = __vmalloc(arg->size, SBPF_GFP_USER_MEM);
	if (!obj->mem)
		goto free_obj;
	refcount_set(&obj->ref, 1);
	obj->size = arg->size;
	obj->owner = uid;

	xa_lock(&sbpf_objects);
	id = sbpf_next_id;
	if (id) {
		/* Taken before the insert, which may drop the lock; 0 after U32_MAX. */
		sbpf_next_id = id + 1;
		obj->id = id;
		ret = __xa_insert(&sbpf_objects, id, obj, GFP_KERNEL);
	} else {
		ret = -ENOSPC;
	}
	xa_unlock(&sbpf_objects);
	if (ret)
		goto free_mem;

	rcu_assign_pointer(sf->attached[slot], obj);
	mutex_unlock(&sf->lock);
	arg->id = id;
	return 0;

free_mem:
	vfree(obj->mem);
free_obj:
	kfree(obj);
uncharge:
	sbpf_uncharge(uid, arg->size);
unlock:
	mutex_unlock(&sf->lock);
	return ret;
}

int sbpf_obj_attach(struct sbpf_file *sf, struct sbpf_object *arg)
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
		goto unlock;
	}
	slot = sbpf_free_slot(sf);
	if (slot < 0) {
		ret = slot;
		goto unlock;
	}
	rcu_read_lock();
	obj = xa_load(&sbpf_objects, arg->id);
	if (obj && !refcount_inc_not_zero(&obj->ref))
		obj = NULL;
	rcu_read_unlock();
	if (!obj) {
		ret = -ENOENT;
		goto unlock;
	}
	/* Ids are easy to guess: only the creator's uid (or an admin) may attach. */
	if (!uid_eq(obj->owner, current_uid()) && !capable(CAP_SYS_ADMIN)) {
		sbpf_obj_put(obj);
		ret = -EPERM;
		goto unlock;
	}
	rcu_assign_pointer(sf->attached[slot], obj);
	arg->size = obj->size;
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

void sbpf_objects_exit(void)
{
	/* Every file is closed, so every object is released; wait for their frees. */
	rcu_barrier();
	WARN_ON_ONCE(!xa_empty(&sbpf_objects));
	xa_destroy(&sbpf_objects);
}
