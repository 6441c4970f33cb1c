// SPDX-License-Identifier: GPL-2.0
/*
 * sbpf_ring: the misc device /dev/sbpf_ring — file operations, ioctls, mappings,
 * module parameters and debugfs. The ring protocol and its ordering contract are in
 * ring.c; objects and memory accounting in object.c; the ABI in uapi/sbpf_ring.h and
 * docs/ABI.md.
 *
 * Object ioctls (OBJ_CREATE, OBJ_ATTACH, OBJ_DETACH, OBJ_SELECT) and pread/pwrite work
 * before SETUP; ENTER, SYNC_OP, STATS, SHUTDOWN, mmap need a ring and answer EINVAL
 * without one.
 *
 * A ring is closed (ring.c, sbpf_ring_shutdown()) by the SHUTDOWN ioctl (ESHUTDOWN), by
 * the last close of an fd to it in the fd table that set it up (EBADF: ->flush runs on
 * every close, also while another thread is inside an ioctl on the file), and by the last
 * unmap of its ring region (ENXIO). A forked child's or another table's fds do not close
 * it: the ring belongs to its owner's fd table, and a child exiting (or exec'ing with
 * O_CLOEXEC) must not stop the parent's ring. The memory stays until release.
 */
#include <linux/capability.h>
#include <linux/cred.h>
#include <linux/debugfs.h>
#include <linux/fdtable.h>
#include <linux/fs.h>
#include <linux/miscdevice.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/poll.h>
#include <linux/seq_file.h>
#include <linux/sizes.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <linux/version.h>
#include <linux/vmalloc.h>

#include "sbpf_internal.h"

/*
 * Resource limits (README "Resource model"). Each is per real uid, root included, and
 * checked when a request charges; lowering one refuses new requests, never takes back.
 */
module_param_named(max_user_bytes, sbpf_max_user_bytes, ulong, 0644);
MODULE_PARM_DESC(max_user_bytes,
		 "bytes one uid may pin: rings, arenas, objects, pollers, with their metadata");
module_param_named(max_user_objects, sbpf_max_user_objects, uint, 0644);
MODULE_PARM_DESC(max_user_objects, "objects one uid may keep alive (ENOSPC past it)");
module_param_named(max_user_rings, sbpf_max_user_rings, uint, 0644);
MODULE_PARM_DESC(max_user_rings,
		 "rings one uid may keep alive, with an fd or only a mapping (EMFILE past it)");
module_param_named(max_user_pollers, sbpf_max_user_pollers, uint, 0644);
MODULE_PARM_DESC(max_user_pollers, "SQPOLL poller threads one uid may run (EAGAIN past it)");
module_param_named(max_pollers, sbpf_max_pollers, uint, 0644);
MODULE_PARM_DESC(max_pollers, "SQPOLL poller threads of all uids together (EAGAIN past it)");

/*
 * Who may use the device and SQPOLL, as the io_uring_disabled sysctl: 0 everyone, 1 only
 * CAP_SYS_ADMIN (SQPOLL: or CAP_SYS_NICE) or members of the group, 2 nobody (EPERM).
 */
static int sbpf_device_disabled;
static int sbpf_device_group = -1;
int sbpf_sqpoll_disabled;
int sbpf_sqpoll_group = -1;
unsigned int sbpf_sqpoll_max_idle_ms = 100;

module_param_named(device_disabled, sbpf_device_disabled, int, 0644);
MODULE_PARM_DESC(device_disabled,
		 "open(): 0 everyone, 1 CAP_SYS_ADMIN or device_group only, 2 nobody");
module_param_named(device_group, sbpf_device_group, int, 0644);
MODULE_PARM_DESC(device_group, "gid allowed to open the device when device_disabled is 1");
module_param_named(sqpoll_disabled, sbpf_sqpoll_disabled, int, 0644);
MODULE_PARM_DESC(sqpoll_disabled,
		 "SQPOLL: 0 everyone, 1 CAP_SYS_ADMIN, CAP_SYS_NICE or sqpoll_group only, 2 nobody");
module_param_named(sqpoll_group, sbpf_sqpoll_group, int, 0644);
MODULE_PARM_DESC(sqpoll_group, "gid allowed SQPOLL when sqpoll_disabled is 1");
module_param_named(sqpoll_max_idle_ms, sbpf_sqpoll_max_idle_ms, uint, 0644);
MODULE_PARM_DESC(sqpoll_max_idle_ms,
		 "longest spin of an idle poller before it sleeps; larger sq_idle_ms is clamped");

bool sbpf_allowed(int disabled, int group, int cap)
{
	if (disabled <= 0)
		return true;
	if (disabled >= 2)
		return false;
	if (group >= 0 && in_group_p(make_kgid(&init_user_ns, group)))
		return true;
	return capable(CAP_SYS_ADMIN) || (cap >= 0 && capable(cap));
}

/*
 * Settled first for an administrator, so that the total counts no object released before
 * the read. rcu_barrier() is not a thing every local user may run in a loop: others read
 * the total as it stands, frees still pending included.
 */
static int sbpf_param_get_pinned(char *buf, const struct kernel_param *kp)
{
	if (capable(CAP_SYS_ADMIN))
		sbpf_objects_quiesce();
	return scnprintf(buf, PAGE_SIZE, "%llu\n", sbpf_pinned_bytes());
}

static const struct kernel_param_ops sbpf_pinned_ops = {
	.get = sbpf_param_get_pinned,
};
module_param_cb(pinned_bytes, &sbpf_pinned_ops, NULL, 0444);
MODULE_PARM_DESC(pinned_bytes,
		 "bytes charged to all uids together, once released objects are freed (read-only)");

static int sbpf_param_get_pollers(char *buf, const struct kernel_param *kp)
{
	return scnprintf(buf, PAGE_SIZE, "%u\n", sbpf_pollers_running());
}

static const struct kernel_param_ops sbpf_pollers_ops = {
	.get = sbpf_param_get_pollers,
};
module_param_cb(pollers, &sbpf_pollers_ops, NULL, 0444);
MODULE_PARM_DESC(pollers, "SQPOLL poller threads running (read-only)");

static LIST_HEAD(sbpf_files);
static DEFINE_MUTEX(sbpf_files_lock);
static struct dentry *sbpf_debugfs;

static int sbpf_open(struct inode *inode, struct file *file)
{
	struct sbpf_file *sf;

	if (!sbpf_allowed(READ_ONCE(sbpf_device_disabled), READ_ONCE(sbpf_device_group), -1))
		return -EPERM;
	sf = kzalloc(sizeof(*sf), GFP_KERNEL_ACCOUNT);
	if (!sf)
		return -ENOMEM;
	mutex_init(&sf->lock);
	file->private_data = sf;
	mutex_lock(&sbpf_files_lock);
	list_add(&sf->node, &sbpf_files);
	mutex_unlock(&sbpf_files_lock);
	return 0;
}

/* Runs when the last fd and the last mapping are gone (each mapping holds the file). */
static int sbpf_release(struct inode *inode, struct file *file)
{
	struct sbpf_file *sf = file->private_data;

	mutex_lock(&sbpf_files_lock);
	list_del(&sf->node);
	mutex_unlock(&sbpf_files_lock);
	if (sf->ring)
		sbpf_ring_free(sf, sf->ring);
	sbpf_obj_detach_all(sf);
	kfree(sf);
	return 0;
}

static struct sbpf_ring *sbpf_ring_of(struct file *file)
{
	struct sbpf_file *sf = file->private_data;

	return smp_load_acquire(&sf->ring);	/* pairs with the release in SETUP */
}

static int sbpf_fd_is(const void *file, struct file *f, unsigned int fd)
{
	return f == file;
}

/* Whether @files (an fd table) still has an fd to @file. */
static bool sbpf_files_hold(struct files_struct *files, struct file *file)
{
	return files && iterate_fd(files, 0, sbpf_fd_is, file);
}

/*
 * Every close(2) of an fd to the file, dup2() over one, exec's O_CLOEXEC and exit: @id is
 * the fd table, whose entry is already gone. Closes the ring once its owner's table has
 * no fd to it left, waking every waiter even while another thread is inside an ioctl
 * (which holds the file, so ->release cannot run yet).
 */
static int sbpf_flush(struct file *file, fl_owner_t id)
{
	struct sbpf_ring *r = sbpf_ring_of(file);

	if (r && id == r->owner_files && !READ_ONCE(r->closed) &&
	    !sbpf_files_hold(id, file))
		sbpf_ring_shutdown(r, EBADF);
	return 0;
}

static long sbpf_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	struct sbpf_file *sf = file->private_data;
	void __user *uarg = (void __user *)arg;
	struct sbpf_ring *r = sbpf_ring_of(file);
	union {
		struct sbpf_params params;
		struct sbpf_enter enter;
		struct sbpf_object obj;
		struct sbpf_sync_op op;
		struct sbpf_stats stats;
		struct sbpf_map_attach map;
	} u;
	long ret;

	switch (cmd) {
	case SBPF_IOC_SETUP:
		if (copy_from_user(&u.params, uarg, sizeof(u.params)))
			return -EFAULT;
		ret = sbpf_ring_setup(sf, &u.params, uarg);
		if (ret)
			return ret;
		/* A close that raced with SETUP found no ring to close: close it now. */
		r = sbpf_ring_of(file);
		if (!sbpf_files_hold(r->owner_files, file))
			sbpf_ring_shutdown(r, EBADF);
		return 0;
	case SBPF_IOC_ENTER:
		if (!r)
			return -EINVAL;
		if (copy_from_user(&u.enter, uarg, sizeof(u.enter)))
			return -EFAULT;
		return sbpf_ring_enter(sf, r, &u.enter);
	case SBPF_IOC_OBJ_CREATE:
	case SBPF_IOC_OBJ_ATTACH:
		if (copy_from_user(&u.obj, uarg, sizeof(u.obj)))
			return -EFAULT;
		if (cmd == SBPF_IOC_OBJ_CREATE)
			return sbpf_obj_create(sf, &u.obj, uarg);
		return sbpf_obj_attach(sf, &u.obj, uarg);
	case SBPF_IOC_MAP_ATTACH:	/* bpfmap.c */
		if (copy_from_user(&u.map, uarg, sizeof(u.map)))
			return -EFAULT;
		return sbpf_map_attach(sf, &u.map, uarg);
	case SBPF_IOC_OBJ_DETACH:
	case SBPF_IOC_OBJ_SELECT:
		if (copy_from_user(&u.obj, uarg, sizeof(u.obj)))
			return -EFAULT;
		if (u.obj.flags)
			return -EINVAL;
		if (cmd == SBPF_IOC_OBJ_DETACH)
			return sbpf_obj_detach(sf, u.obj.id);
		return sbpf_obj_select(sf, u.obj.id);
	case SBPF_IOC_SYNC_OP:
		if (!r)
			return -EINVAL;
		if (copy_from_user(&u.op, uarg, sizeof(u.op)))
			return -EFAULT;
		/*
		 * The operation cannot be undone, so the answer must be writable first:
		 * write the caller's own bytes back as a probe. Only a concurrent
		 * mprotect/munmap between the two writes can still fail the second.
		 */
		if (copy_to_user(uarg + offsetof(struct sbpf_sync_op, cqe), &u.op.cqe,
				 sizeof(u.op.cqe)))
			return -EFAULT;
		sbpf_ring_sync_op(sf, r, &u.op);
		if (copy_to_user(uarg + offsetof(struct sbpf_sync_op, cqe), &u.op.cqe,
				 sizeof(u.op.cqe)))
			return -EFAULT;
		return 0;
	case SBPF_IOC_STATS:
		if (!r)
			return -EINVAL;
		sbpf_ring_stats(r, &u.stats);
		if (copy_to_user(uarg, &u.stats, sizeof(u.stats)))
			return -EFAULT;
		return 0;
	case SBPF_IOC_SHUTDOWN:
		if (!r)
			return -EINVAL;
		sbpf_ring_shutdown(r, ESHUTDOWN);
		return 0;
	default:
		return -ENOTTY;
	}
}

/*
 * Counts the vmas of the ring region (split, fork and mremap copy them); the last one gone
 * closes the ring, so no waiter stays blocked on a ring nobody can see.
 */
static void sbpf_region_vm_open(struct vm_area_struct *vma)
{
	struct sbpf_ring *r = vma->vm_private_data;

	atomic_inc(&r->region_maps);
}

static void sbpf_region_vm_close(struct vm_area_struct *vma)
{
	struct sbpf_ring *r = vma->vm_private_data;

	/* The vma holds the file, so @r lives. */
	if (atomic_dec_and_test(&r->region_maps))
		sbpf_ring_shutdown(r, ENXIO);
}

static const struct vm_operations_struct sbpf_region_vm_ops = {
	.open	= sbpf_region_vm_open,
	.close	= sbpf_region_vm_close,
};

/*
 * Inserts the pages of a zeroed vmalloc area (ring.c's sbpf_vmalloc()) into @vma. Each
 * inserted page holds a reference, and the mapping holds the file, whose release frees
 * the area: the pages outlive neither.
 */
static int sbpf_map_pages(struct vm_area_struct *vma, void *mem, unsigned long size)
{
	unsigned long off;
	int ret;

	for (off = 0; off < size; off += PAGE_SIZE) {
		ret = vm_insert_page(vma, vma->vm_start + off, vmalloc_to_page(mem + off));
		if (ret)
			return ret;
		if (!(off & (SZ_4M - 1)))
			cond_resched();
	}
	return 0;
}

static int sbpf_mmap(struct file *file, struct vm_area_struct *vma)
{
	struct sbpf_ring *r = sbpf_ring_of(file);
	unsigned long size = vma->vm_end - vma->vm_start;
	u64 off = (u64)vma->vm_pgoff << PAGE_SHIFT;
	void *mem;
	u64 want;
	int ret;

	if (!r)
		return -EINVAL;
	if (vma->vm_flags & VM_EXEC)
		return -EPERM;
	if (off == SBPF_OFF_RING) {
		mem = r->region;
		want = r->region_size;
	} else if (off == SBPF_OFF_ARENA && r->arena) {
		mem = r->arena;
		want = r->arena_size;
	} else {
		return -EINVAL;
	}
	/* A private (copy-on-write) mapping could not carry the protocol. */
	if (size != want || !(vma->vm_flags & VM_SHARED))
		return -EINVAL;

#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 3, 0)
	vm_flags_mod(vma, VM_DONTEXPAND | VM_DONTDUMP, VM_MAYEXEC);
#else
	vma->vm_flags = (vma->vm_flags | VM_DONTEXPAND | VM_DONTDUMP) & ~VM_MAYEXEC;
#endif
	ret = sbpf_map_pages(vma, mem, size);
	/* Counted only once mapped: a failed mmap never calls ->close. */
	if (!ret && mem == r->region) {
		vma->vm_private_data = r;
		vma->vm_ops = &sbpf_region_vm_ops;
		atomic_inc(&r->region_maps);
	}
	return ret;
}

static __poll_t sbpf_poll(struct file *file, struct poll_table_struct *pt)
{
	struct sbpf_ring *r = sbpf_ring_of(file);

	__poll_t mask = 0;

	if (!r)
		return EPOLLERR;
	poll_wait(file, &r->cq_wait, pt);
	sbpf_ring_wake_poller(r);
	if (sbpf_ring_cq_ready(r))
		mask |= EPOLLIN | EPOLLRDNORM;
	if (READ_ONCE(r->closed))	/* after poll_wait(): the close wakes us, or we see it */
		mask |= EPOLLHUP;
	return mask;
}

static ssize_t sbpf_read(struct file *file, char __user *buf, size_t count, loff_t *ppos)
{
	struct sbpf_kobj *obj = sbpf_obj_get_selected(file->private_data);
	loff_t pos = *ppos;
	ssize_t ret = 0;
	size_t n;

	if (!obj)
		return -EINVAL;
	if (pos < 0) {
		ret = -EINVAL;
	} else if (pos < obj->size && count) {
		n = min_t(u64, count, obj->size - pos);
		ret = n - copy_to_user(buf, (u8 *)obj->mem + pos, n);
		if (!ret)
			ret = -EFAULT;
		else
			*ppos = pos + ret;
	}
	sbpf_obj_put(obj);
	return ret;
}

static ssize_t sbpf_write(struct file *file, const char __user *buf, size_t count,
			  loff_t *ppos)
{
	struct sbpf_kobj *obj = sbpf_obj_get_selected(file->private_data);
	loff_t pos = *ppos;
	ssize_t ret = 0;
	size_t n;

	if (!obj)
		return -EINVAL;
	if (pos < 0) {
		ret = -EINVAL;
	} else if (count && pos >= obj->size) {
		ret = -ENOSPC;
	} else if (count) {
		n = min_t(u64, count, obj->size - pos);
		ret = n - copy_from_user((u8 *)obj->mem + pos, buf, n);
		if (!ret)
			ret = -EFAULT;
		else
			*ppos = pos + ret;
	}
	sbpf_obj_put(obj);
	return ret;
}

static const struct file_operations sbpf_fops = {
	.owner		= THIS_MODULE,
	.open		= sbpf_open,
	.release	= sbpf_release,
	.flush		= sbpf_flush,
	.unlocked_ioctl	= sbpf_ioctl,
	.compat_ioctl	= compat_ptr_ioctl,
	.mmap		= sbpf_mmap,
	.poll		= sbpf_poll,
	.read		= sbpf_read,
	.write		= sbpf_write,
	.llseek		= default_llseek,
};

static struct miscdevice sbpf_misc = {
	.minor	= MISC_DYNAMIC_MINOR,
	.name	= "sbpf_ring",
	.fops	= &sbpf_fops,
	.mode	= 0666,
};

static int sbpf_rings_show(struct seq_file *m, void *v)
{
	static const char * const names[] = {
		"submitted", "completed", "rejected", "rejected_opcode", "rejected_reserved",
		"rejected_object", "rejected_bounds", "rejected_align", "wakeups", "cq_full",
		"sync_ops",
	};
	struct sbpf_stats st;
	struct sbpf_file *sf;
	struct sbpf_ring *r;
	unsigned int i;

	seq_printf(m, "pinned_bytes %llu pollers %u\n", sbpf_pinned_bytes(),
		   sbpf_pollers_running());
	mutex_lock(&sbpf_files_lock);
	list_for_each_entry(sf, &sbpf_files, node) {
		r = smp_load_acquire(&sf->ring);	/* pairs with the release in SETUP */
		if (!r)
			continue;
		sbpf_ring_stats(r, &st);
		seq_printf(m, "pid %d sq_entries %u cq_entries %u arena %llu sqpoll %d closed %d",
			   r->pid, r->sq_entries, r->cq_entries, r->arena_size,
			   !!(r->flags & SBPF_SETUP_SQPOLL), READ_ONCE(r->closed));
		for (i = 0; i < ARRAY_SIZE(names); i++)
			seq_printf(m, " %s %llu", names[i], ((u64 *)&st)[i]);
		seq_putc(m, '\n');
	}
	mutex_unlock(&sbpf_files_lock);
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(sbpf_rings);

static int __init sbpf_init(void)
{
	int ret;

	BUILD_BUG_ON(offsetof(struct sbpf_stats, sync_ops) != 10 * sizeof(__u64));
	BUILD_BUG_ON(SBPF_SQES_OFF % sizeof(struct sbpf_sqe));
	ret = sbpf_objects_init();
	if (ret)
		return ret;
	ret = misc_register(&sbpf_misc);
	if (ret) {
		sbpf_objects_exit();
		return ret;
	}
	sbpf_debugfs = debugfs_create_dir("sbpf_ring", NULL);
	debugfs_create_file("rings", 0400, sbpf_debugfs, NULL, &sbpf_rings_fops);
	return 0;
}

static void __exit sbpf_exit(void)
{
	debugfs_remove_recursive(sbpf_debugfs);
	misc_deregister(&sbpf_misc);
	sbpf_objects_exit();
}

module_init(sbpf_init);
module_exit(sbpf_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("Shared-memory request rings between user space and kernel objects");
MODULE_AUTHOR("sbpf-ring contributors");
