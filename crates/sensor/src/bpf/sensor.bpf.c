// SPDX-License-Identifier: GPL-2.0
/* Palisade's observation probes.
 *
 * Scheduler tracepoints (tp_btf) report exec, fork and exit; each observed system call has a
 * `tracepoint/syscalls/sys_exit_*` program that builds the event with the return value and
 * the arguments still in the caller's saved registers (nothing runs at system call entry).
 * Each event is assembled in a per-CPU scratch buffer and copied into the ring buffer with
 * only the bytes it uses; a failed copy is counted per CPU, never silently lost.
 *
 * fentry, kprobes and BPF-LSM are unavailable on the kernels Palisade must support, so
 * paths are rebuilt from dentries here instead of with bpf_d_path.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_endian.h>
#include "sensor.h"

char LICENSE[] SEC("license") = "GPL";

/* Set by the loader before load. */
const volatile u32 self_tgid = 0;
/* Non-zero when a loaded rule reads the environment (proc.env, proc.aenv): only then is it
 * copied at exec, since it costs up to ENV_MAX bytes per exec and holds secrets. */
const volatile u32 capture_env = 0;
/* Non-zero when a loaded rule reads proc.fdopencount, proc.fdlimit or proc.fdusage: only then
 * does every record carry the descriptor limit. */
const volatile u32 read_fd_state = 0;
/* Non-zero (with read_fd_state) when a loaded rule reads proc.fdopencount or proc.fdusage:
 * only then are the open descriptors counted, since the count reads the table's bitmap on
 * every event; proc.fdlimit alone costs one load. */
const volatile u32 count_open_fds = 0;

/* Non-zero when a loaded rule reads proc.stdin.type, proc.stdout.type, proc.stderr.type or
 * fd.types: only then does every record carry what descriptors 0, 1 and 2 are. */
const volatile u32 read_std_fds = 0;

/* Non-zero when a loaded rule reads thread.cgroups or thread.cgroup.<controller>: only then
 * do exec and fork records carry the task's cgroup for each of Falco's five controllers,
 * since that walks five cgroup trees and copies their names on every exec and fork. */
const volatile u32 read_cgroups = 0;

/* Unread bytes in the ring past which every record wakes the reader (see submit): a quarter
 * of the ring, which the loader sizes, so that no record asks the ring for its size. */
const volatile u32 wake_at_bytes = 0;

/* Referenced so that their BTF (and so the skeleton's Rust types) exists. */
struct event event_layout = {};
enum probe_kind probe_kind_layout = PK_EXEC;
enum string_slot string_slot_layout = SLOT_CGROUP;
struct task_resources task_resources_layout = {};
struct opened_file opened_file_layout = {};
enum overlay_layer overlay_layer_layout = LAYER_NONE;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 8 * 1024 * 1024);
} events SEC(".maps");

/* Per CPU: [COUNTER_SENT] events written, [COUNTER_LOST] events the ring buffer refused. */
enum { COUNTER_SENT, COUNTER_LOST, N_COUNTERS };
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, N_COUNTERS);
	__type(key, u32);
	__type(value, u64);
} counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct event);
} scratch SEC(".maps");

#define PATH_DEPTH 48
#define NAME_MAX_LEN 256
#define AT_FDCWD_ARG -100
#define S_IFMT 00170000
#define S_IFSOCK 0140000
#define OVERLAYFS_SUPER_MAGIC 0x794c7630
#define PF_EXITING 0x00000004
#define RLIMIT_NOFILE 7
/* Set in a file's f_mode by the open that created it (since Linux 4.19). */
#define FMODE_CREATED 0x100000
#define NSFS_MAGIC 0x6e736673
#define AF_INET 2
#define AF_INET6 10
#define CLONE_VM 0x00000100
#define CLONE_FS 0x00000200
#define CLONE_FILES 0x00000400
#define CLONE_SIGHAND 0x00000800
#define CLONE_VFORK 0x00004000
#define CLONE_THREAD 0x00010000
#define CLONE_NEWNS 0x00020000
#define CLONE_NEWCGROUP 0x02000000
#define CLONE_NEWUTS 0x04000000
#define CLONE_NEWIPC 0x08000000
#define CLONE_NEWUSER 0x10000000
#define CLONE_NEWPID 0x20000000
#define CLONE_NEWNET 0x40000000

/* A kernel pointer read as plain data, typed again so that its fields are read with direct
 * loads (which the verifier turns into fault-tolerant loads) rather than helper calls. */
extern void *bpf_rdonly_cast(const void *obj, __u32 btf_id) __ksym;
#define as_kernel(ptr, type) ((type *)bpf_rdonly_cast((ptr), bpf_core_type_id_kernel(type)))

/* Probe argument descriptions. */
#define NONE -1 /* no such argument */
#define CWD -2	/* a path relative to the working directory (no dirfd argument) */
#define RET -3	/* the fd is the return value */

static __always_inline void count(u32 counter)
{
	u64 *value = bpf_map_lookup_elem(&counters, &counter);
	if (value)
		*value += 1;
}

static __always_inline struct event *scratch_event(void)
{
	u32 zero = 0;
	return bpf_map_lookup_elem(&scratch, &zero);
}

static __noinline void put_user_str(struct event *e, int slot, const void *src)
{
	u32 off = e->tail_len;
	if (off >= TAIL_LIMIT || slot < 0 || slot >= N_SLOTS || !src)
		return;
	long n = bpf_probe_read_user_str(&e->tail[off & (TAIL_LIMIT - 1)], STR_MAX, src);
	if (n <= 0)
		return;
	e->lens[slot] = n;
	e->tail_len = off + n;
}

static __noinline void put_user_bytes(struct event *e, int slot, const void *src, u32 len)
{
	u32 off = e->tail_len;
	if (off >= TAIL_LIMIT || slot < 0 || slot >= N_SLOTS || !src || len == 0)
		return;
	/* Longer blocks keep their first STR_MAX - 1 bytes (the decoder sees the truncation). */
	if (len > STR_MAX - 1)
		len = STR_MAX - 1;
	/* A no-op after the clamp, but one the verifier can bound (the barrier keeps the
	 * compiler from dropping it). */
	barrier_var(len);
	len &= STR_MAX - 1;
	if (bpf_probe_read_user(&e->tail[off & (TAIL_LIMIT - 1)], len, src) < 0)
		return;
	e->lens[slot] = len;
	e->tail_len = off + len;
}

/* Appends a fixed-size block to the tail as `slot` and returns where to write it; NULL when
 * the tail is full. */
static __always_inline void *reserve_tail(struct event *e, int slot, u32 len)
{
	u32 off = e->tail_len;
	if (off >= TAIL_LIMIT || slot < 0 || slot >= N_SLOTS)
		return NULL;
	e->lens[slot] = len;
	e->tail_len = off + len;
	return &e->tail[off & (TAIL_LIMIT - 1)];
}

struct path_walk {
	struct dentry *dentry;
	struct mount *mnt;
	/* mnt's root dentry: read once per mount the walk is on, not at every step. */
	struct dentry *mnt_root;
	struct event *e;
	u32 depth;
	u32 off;
	const unsigned char *names[PATH_DEPTH];
};

/* Bytes of a dentry read from d_parent on: d_parent and d_name (whose name pointer the walk
 * keeps) lie within these in every kernel layout (d_name follows d_parent). */
#define DENTRY_SPAN 32

/* `dentry`'s parent and the address of its name, with one probe read instead of two: the walk
 * runs on every exec (the executable and the working directory) and on path arguments
 * relative to a directory, and a helper call per field was most of its cost. The pointers are
 * read as plain numbers, as BPF_CORE_READ reads them: typed pointers kept across bpf_loop
 * iterations make the verifier exceed its instruction budget. */
static __always_inline void read_parent_and_name(struct dentry *dentry, struct dentry **parent,
						 const unsigned char **name)
{
	u32 parent_at = bpf_core_field_offset(struct dentry, d_parent);
	u32 name_at = bpf_core_field_offset(struct dentry, d_name.name);
	if (name_at < parent_at || name_at - parent_at > DENTRY_SPAN - sizeof(u64) ||
	    (name_at - parent_at) % sizeof(u64)) {
		/* A layout where they are further apart: one read each. */
		*parent = BPF_CORE_READ(dentry, d_parent);
		*name = BPF_CORE_READ(dentry, d_name.name);
		return;
	}
	u64 words[DENTRY_SPAN / sizeof(u64)] = {};
	bpf_probe_read_kernel(words, sizeof(words), (char *)dentry + parent_at);
	*parent = (struct dentry *)words[0];
	*name = (const unsigned char *)words[((name_at - parent_at) / sizeof(u64)) &
					     (DENTRY_SPAN / sizeof(u64) - 1)];
}

/* One step up: to the parent directory, or across a mount point to where it is mounted. */
static long walk_up(u32 index, struct path_walk *walk)
{
	struct dentry *dentry = walk->dentry;
	struct dentry *mnt_root = walk->mnt_root;
	struct dentry *parent;
	const unsigned char *name;
	read_parent_and_name(dentry, &parent, &name);
	/* A pseudo file (a memfd) is its own root without being its mount's root: its name is
	 * the whole path, "/memfd:NAME". */
	int pseudo_root = dentry == parent && dentry != mnt_root;
	if (!pseudo_root && (dentry == mnt_root || dentry == parent)) {
		struct mount *mnt = walk->mnt;
		struct mount *mnt_parent = BPF_CORE_READ(mnt, mnt_parent);
		if (mnt_parent == mnt || !mnt_parent)
			return 1;
		walk->dentry = BPF_CORE_READ(mnt, mnt_mountpoint);
		walk->mnt = mnt_parent;
		walk->mnt_root = BPF_CORE_READ(mnt_parent, mnt.mnt_root);
		return 0;
	}
	if (walk->depth >= PATH_DEPTH)
		return 1;
	walk->names[walk->depth & (PATH_DEPTH - 1)] = name;
	walk->depth++;
	walk->dentry = parent;
	return pseudo_root;
}

/* Appends one component, root first: names[depth - 1 - index]. */
static long write_component(u32 index, struct path_walk *walk)
{
	struct event *e = walk->e;
	u32 off = walk->off;
	if (index >= walk->depth || off >= TAIL_LIMIT)
		return 1;
	e->tail[off & (TAIL_LIMIT - 1)] = '/';
	off++;
	u32 name_index = walk->depth - 1 - index;
	long n = bpf_probe_read_kernel_str(&e->tail[off & (TAIL_LIMIT - 1)], NAME_MAX_LEN,
					   walk->names[name_index & (PATH_DEPTH - 1)]);
	if (n > 1)
		off += n - 1;
	walk->off = off;
	return 0;
}

/* Appends the absolute path of `dentry` on `vfsmnt`, as seen from the mount namespace's
 * root, walking parents and crossing mount points. bpf_loop keeps verification linear in
 * the depth. */
static __noinline void put_path(struct event *e, int slot, struct dentry *dentry,
				struct vfsmount *vfsmnt)
{
	struct path_walk walk = {};
	if (slot < 0 || slot >= N_SLOTS || !dentry || !vfsmnt)
		return;
	walk.dentry = dentry;
	walk.mnt = container_of(vfsmnt, struct mount, mnt);
	walk.mnt_root = BPF_CORE_READ(vfsmnt, mnt_root);
	walk.e = e;
	bpf_loop(PATH_DEPTH * 2, walk_up, &walk, 0);

	u32 start = e->tail_len;
	if (start >= TAIL_LIMIT)
		return;
	walk.off = start;
	if (walk.depth == 0) {
		e->tail[start & (TAIL_LIMIT - 1)] = '/';
		walk.off++;
	}
	bpf_loop(PATH_DEPTH, write_component, &walk, 0);
	u32 off = walk.off;
	if (off >= TAIL_LIMIT)
		return;
	e->tail[off & (TAIL_LIMIT - 1)] = 0;
	off++;
	e->lens[slot] = off - start;
	e->tail_len = off;
}

/* The descriptor table of `task` (a BTF pointer: direct loads), or NULL once the task has
 * let go of its files (exit_files). Every descriptor read below starts here. */
static __always_inline struct fdtable *task_fdtable(struct task_struct *task)
{
	struct files_struct *files = task->files;
	return files ? files->fdt : NULL;
}

/* The file open as `fd` in the descriptor table `fdt` (a plain pointer: read it through
 * as_kernel or probe reads), or NULL. */
static __always_inline struct file *fdtable_file(struct fdtable *fdt, long fd)
{
	if (!fdt || fd < 0 || fd >= fdt->max_fds)
		return NULL;
	struct file *file = NULL;
	bpf_probe_read_kernel(&file, sizeof(file), &fdt->fd[fd]);
	return file;
}

/* The file open as `fd` in `task`'s table, or NULL. */
static __always_inline struct file *fd_file(struct task_struct *task, long fd)
{
	return fdtable_file(task_fdtable(task), fd);
}

/* A namespace file's name is made up when it is read (d_dname), not stored in its dentry:
 * rebuild it the way readlink shows it, "uts:[4026531838]". */
static __noinline void put_namespace_name(struct event *e, struct inode *inode)
{
	u32 off = e->tail_len;
	if (off >= TAIL_LIMIT)
		return;
	struct ns_common *ns = BPF_CORE_READ(inode, i_private);
	u64 data[2] = { (u64)BPF_CORE_READ(ns, ops, name), BPF_CORE_READ(inode, i_ino) };
	long n = bpf_snprintf((char *)&e->tail[off & (TAIL_LIMIT - 1)], NAME_MAX_LEN, "%s:[%lu]",
			      data, sizeof(data));
	if (n <= 0)
		return;
	if (n > NAME_MAX_LEN)
		n = NAME_MAX_LEN;
	e->lens[SLOT_FD_PATH] = n;
	e->tail_len = off + n;
}

/* Records what the descriptor is: its file type, its socket, or its path. */
static __noinline void put_fd(struct event *e, struct task_struct *task, long fd, int want_path)
{
	struct file *file_ptr = fd_file(task, fd);
	if (!file_ptr)
		return;
	/* Direct loads through a typed view of the file instead of a probe-read helper call per
	 * field: this runs on every connect, accept and bind, eleven reads for a socket. */
	struct file *file = as_kernel(file_ptr, struct file);
	struct inode *inode = file->f_inode;
	u32 mode = inode->i_mode & S_IFMT;
	e->fd_mode = mode;
	if (mode == S_IFSOCK) {
		struct socket *sock = as_kernel(file->private_data, struct socket);
		struct sock *sk = sock->sk;
		u16 family = sk->__sk_common.skc_family;
		e->socket.family = family;
		e->socket.type = sk->sk_type;
		e->socket.protocol = sk->sk_protocol;
		e->socket.local_port = sk->__sk_common.skc_num;
		e->socket.remote_port = bpf_ntohs(sk->__sk_common.skc_dport);
		if (family == AF_INET) {
			u32 local = sk->__sk_common.skc_rcv_saddr;
			u32 remote = sk->__sk_common.skc_daddr;
			__builtin_memcpy(e->socket.local_addr, &local, sizeof(local));
			__builtin_memcpy(e->socket.remote_addr, &remote, sizeof(remote));
		} else if (family == AF_INET6) {
			struct in6_addr local = sk->__sk_common.skc_v6_rcv_saddr;
			struct in6_addr remote = sk->__sk_common.skc_v6_daddr;
			__builtin_memcpy(e->socket.local_addr, &local, sizeof(local));
			__builtin_memcpy(e->socket.remote_addr, &remote, sizeof(remote));
		}
		return;
	}
	if (!want_path)
		return;
	if (inode->i_sb->s_magic == NSFS_MAGIC)
		put_namespace_name(e, inode);
	else
		put_path(e, SLOT_FD_PATH, BPF_CORE_READ(file_ptr, f_path.dentry),
			 BPF_CORE_READ(file_ptr, f_path.mnt));
}

/* Appends the directory a relative path argument is resolved against. */
static __noinline void put_base(struct event *e, int slot, struct task_struct *task, long dirfd)
{
	if (dirfd == AT_FDCWD_ARG) {
		put_path(e, slot, BPF_CORE_READ(task, fs, pwd.dentry),
			 BPF_CORE_READ(task, fs, pwd.mnt));
		return;
	}
	struct file *file = fd_file(task, dirfd);
	if (file)
		put_path(e, slot, BPF_CORE_READ(file, f_path.dentry),
			 BPF_CORE_READ(file, f_path.mnt));
}

/* Kernels before 6.15 name the field `parent`. */
struct kernfs_node___before_6_15 {
	struct kernfs_node *parent;
};

/* `kn`'s parent; `kn` may be a BTF pointer (direct loads) or a plain one (probe reads). */
static __always_inline struct kernfs_node *kernfs_parent(struct kernfs_node *kn)
{
	if (bpf_core_field_exists(kn->__parent))
		return BPF_CORE_READ(kn, __parent);
	return BPF_CORE_READ((struct kernfs_node___before_6_15 *)kn, parent);
}

/* The same through a BTF pointer, with a direct load. */
static __always_inline struct kernfs_node *kernfs_parent_btf(struct kernfs_node *kn)
{
	if (bpf_core_field_exists(kn->__parent))
		return kn->__parent;
	return ((struct kernfs_node___before_6_15 *)kn)->parent;
}

/* The path of the cgroup2 directory `kn`, the node whose id the record carries: reading the
 * task's cgroup again here could see another one, since a runtime moves its init process
 * into the container's cgroup while that process runs (the old id would then be reported
 * with the new path for good, the new id never with its own). */
static __noinline void put_cgroup(struct event *e, struct kernfs_node *kn)
{
	struct kernfs_node *names[CGROUP_DEPTH];
	int depth = 0;
	for (int i = 0; i < CGROUP_DEPTH; i++) {
		if (!kn)
			break;
		names[i] = kn;
		depth++;
		kn = kernfs_parent(kn);
	}
	u32 off = e->tail_len;
	u32 start = off;
	/* Leaf last; the root's name is empty and contributes only its slash. */
	for (int i = CGROUP_DEPTH - 1; i >= 0; i--) {
		if (i >= depth || off >= TAIL_LIMIT)
			continue;
		const char *name = BPF_CORE_READ(names[i], name);
		e->tail[off & (TAIL_LIMIT - 1)] = '/';
		off++;
		long n = bpf_probe_read_kernel_str(&e->tail[off & (TAIL_LIMIT - 1)], NAME_MAX_LEN,
						   name);
		if (n > 1)
			off += n - 1;
	}
	if (off >= TAIL_LIMIT)
		return;
	e->tail[off & (TAIL_LIMIT - 1)] = 0;
	off++;
	e->lens[SLOT_CGROUP] = off - start;
	e->tail_len = off;
}

/* Appends "subsystem=/path/of/its/cgroup" and a NUL for one controller: the name the kernel
 * gives the controller and the path of the task's cgroup in the hierarchy the controller is
 * bound to (a cgroup v1 hierarchy, or the unified one), as Falco's driver writes its cgroups
 * parameter. At most CGROUPS_PATH_DEPTH components, leaf last; the root is "/". `task` is a
 * BTF pointer: the walk uses direct loads, and only the names are copied with helpers. */
static __noinline void put_cgroup_subsys(struct event *e, struct task_struct *task, u32 id)
{
	if (id >= CGROUP_SUBSYS_COUNT)
		return;
	struct cgroup_subsys_state *css = task->cgroups->subsys[id];
	if (!css)
		return;
	const char *subsys_name = css->ss->name;
	struct kernfs_node *kn = css->cgroup->kn;
	const char *names[CGROUPS_PATH_DEPTH];
	int depth = 0;
	for (int i = 0; i < CGROUPS_PATH_DEPTH; i++) {
		if (!kn)
			break;
		names[i] = kn->name;
		depth++;
		kn = kernfs_parent_btf(kn);
	}
	u32 start = e->tail_len;
	u32 off = start;
	if (off >= TAIL_LIMIT)
		return;
	long n = bpf_probe_read_kernel_str(&e->tail[off & (TAIL_LIMIT - 1)], NAME_MAX_LEN,
					   subsys_name);
	if (n <= 1)
		return;
	off += n - 1;
	e->tail[off & (TAIL_LIMIT - 1)] = '=';
	off++;
	u32 path_start = off;
	for (int i = CGROUPS_PATH_DEPTH - 1; i >= 0; i--) {
		if (i >= depth || off >= TAIL_LIMIT)
			continue;
		/* The root's name is empty: it adds nothing. */
		e->tail[off & (TAIL_LIMIT - 1)] = '/';
		long len = bpf_probe_read_kernel_str(&e->tail[(off + 1) & (TAIL_LIMIT - 1)],
						     NAME_MAX_LEN, names[i]);
		if (len > 1)
			off += len;
	}
	if (off >= TAIL_LIMIT)
		return;
	if (off == path_start) {
		e->tail[off & (TAIL_LIMIT - 1)] = '/';
		off++;
	}
	if (off >= TAIL_LIMIT)
		return;
	e->tail[off & (TAIL_LIMIT - 1)] = 0;
	off++;
	e->lens[SLOT_CGROUPS] += off - start;
	e->tail_len = off;
}

/* The five controllers Falco reports (thread.cgroups), in its order. */
static __always_inline void put_cgroups(struct event *e, struct task_struct *task)
{
	if (bpf_core_enum_value_exists(enum cgroup_subsys_id, cpuset_cgrp_id))
		put_cgroup_subsys(e, task, bpf_core_enum_value(enum cgroup_subsys_id, cpuset_cgrp_id));
	if (bpf_core_enum_value_exists(enum cgroup_subsys_id, cpu_cgrp_id))
		put_cgroup_subsys(e, task, bpf_core_enum_value(enum cgroup_subsys_id, cpu_cgrp_id));
	if (bpf_core_enum_value_exists(enum cgroup_subsys_id, cpuacct_cgrp_id))
		put_cgroup_subsys(e, task,
				  bpf_core_enum_value(enum cgroup_subsys_id, cpuacct_cgrp_id));
	if (bpf_core_enum_value_exists(enum cgroup_subsys_id, io_cgrp_id))
		put_cgroup_subsys(e, task, bpf_core_enum_value(enum cgroup_subsys_id, io_cgrp_id));
	if (bpf_core_enum_value_exists(enum cgroup_subsys_id, memory_cgrp_id))
		put_cgroup_subsys(e, task, bpf_core_enum_value(enum cgroup_subsys_id, memory_cgrp_id));
}

/* Kernels before 6.2 count resident pages in struct mm_rss_stat. */
struct mm_rss_stat___before_6_2 {
	atomic_long_t count[NR_MM_COUNTERS];
};
struct mm_struct___before_6_2 {
	struct mm_rss_stat___before_6_2 rss_stat;
};

/* One of the mm's page counters, as get_mm_counter reads it (never negative). `mm` is a BTF
 * pointer. */
static __always_inline u64 mm_counter(struct mm_struct *mm, int counter)
{
	s64 pages;
	if (bpf_core_type_exists(struct mm_rss_stat___before_6_2))
		pages = ((struct mm_struct___before_6_2 *)mm)->rss_stat.count[counter].counter;
	else
		pages = mm->rss_stat[counter].count;
	return pages > 0 ? pages : 0;
}

/* The task's memory (in pages: user space knows the page size), page faults and descriptor
 * limit, read with direct loads through the task's BTF pointer. */
static __always_inline void put_resources(struct event *e, struct task_struct *task)
{
	struct task_resources *resources = reserve_tail(e, SLOT_RESOURCES, sizeof(*resources));
	if (!resources)
		return;
	struct mm_struct *mm = task->mm;
	resources->vm_size_pages = 0;
	resources->vm_rss_pages = 0;
	resources->vm_swap_pages = 0;
	if (mm) {
		resources->vm_size_pages = mm->total_vm;
		resources->vm_rss_pages = mm_counter(mm, MM_FILEPAGES) +
					  mm_counter(mm, MM_ANONPAGES) +
					  mm_counter(mm, MM_SHMEMPAGES);
		resources->vm_swap_pages = mm_counter(mm, MM_SWAPENTS);
	}
	resources->major_faults = task->maj_flt;
	resources->minor_faults = task->min_flt;
	resources->fd_limit = task->signal->rlim[RLIMIT_NOFILE].rlim_cur;
}

/* The device, inode and overlay layer of the file behind `fd`. A file of an overlay mount is in
 * the upper layer when its overlay inode has an upper dentry with an inode, as Falco's driver
 * decides it (fd.is_upper_layer). */
static __noinline void put_opened_file(struct event *e, struct task_struct *task, long fd)
{
	/* Direct loads through the current task's BTF pointers (and a typed view of the file
	 * pointer read from the descriptor array) instead of a probe-read helper call per field:
	 * this runs on every successful open. */
	struct file *file_ptr = fd_file(task, fd);
	if (!file_ptr)
		return;
	struct opened_file *opened = reserve_tail(e, SLOT_OPENED_FILE, sizeof(*opened));
	if (!opened)
		return;
	struct file *file = as_kernel(file_ptr, struct file);
	struct inode *inode = file->f_inode;
	struct super_block *sb = inode->i_sb;
	u32 dev = sb->s_dev;
	u32 major = dev >> 20;
	u32 minor = dev & 0xfffff;
	opened->dev = (minor & 0xff) | (major << 8) | ((minor & ~0xffU) << 12);
	opened->ino = inode->i_ino;
	opened->layer = LAYER_NONE;
	opened->created = (file->f_mode & FMODE_CREATED) != 0;
	opened->pad = 0;
	if (sb->s_magic == OVERLAYFS_SUPER_MAGIC) {
		struct ovl_inode *ovl = container_of((struct inode *)(u64)inode, struct ovl_inode,
						     vfs_inode);
		struct dentry *upper = BPF_CORE_READ(ovl, __upperdentry);
		opened->layer = upper && BPF_CORE_READ(upper, d_inode, i_ino) ? LAYER_UPPER : LAYER_LOWER;
	}
}

/* Per CPU: one chunk of a descriptor table's open_fds bitmap, copied to be counted. */
struct fd_words {
	u64 words[FD_CHUNK_WORDS];
};
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct fd_words);
} fd_scratch SEC(".maps");

struct fd_count {
	const u64 *bitmap;
	struct fd_words *chunk;
	u32 words;
	u32 open;
	u32 failed;
};

/* Counts the open descriptors of chunk `index` of the bitmap. */
static long count_fd_chunk(u32 index, struct fd_count *count)
{
	u32 first = index * FD_CHUNK_WORDS;
	if (first >= count->words)
		return 1;
	u32 n = count->words - first;
	if (n > FD_CHUNK_WORDS)
		n = FD_CHUNK_WORDS;
	/* A no-op after the clamp, but one the verifier can bound. */
	barrier_var(n);
	n &= 2 * FD_CHUNK_WORDS - 1;
	if (n == 0 || n > FD_CHUNK_WORDS)
		return 1;
	if (bpf_probe_read_kernel(count->chunk->words, n * sizeof(u64), count->bitmap + first) < 0) {
		count->failed = 1;
		return 1;
	}
	for (u32 i = 0; i < FD_CHUNK_WORDS && i < n; i++)
		count->open += __builtin_popcountll(count->chunk->words[i]);
	return 0;
}

/* The descriptor limit and the open descriptors of `task`'s table now (Falco's fdlimit, which
 * its driver sends with execve and clone and libsinsp follows through setrlimit and prlimit,
 * and its count of the table it keeps). The count is the bitmap's population: a bit is set
 * from the descriptor's allocation to its close, as /proc/<pid>/fd lists them. */
static __noinline void put_fd_state(struct event *e, struct task_struct *task)
{
	e->fd_limit = task->signal->rlim[RLIMIT_NOFILE].rlim_cur;
	e->fd_read = 1;
	if (!count_open_fds)
		return;
	struct fdtable *fdt = task_fdtable(task);
	if (!fdt)
		return;
	u32 max_fds = fdt->max_fds;
	if (max_fds > FD_COUNT_MAX_FDS)
		return;
	u32 zero = 0;
	struct fd_count count = {
		.bitmap = (const u64 *)fdt->open_fds,
		.chunk = bpf_map_lookup_elem(&fd_scratch, &zero),
		.words = (max_fds + 63) / 64,
	};
	if (!count.chunk || !count.bitmap)
		return;
	bpf_loop(FD_COUNT_MAX_FDS / 64 / FD_CHUNK_WORDS, count_fd_chunk, &count, 0);
	if (!count.failed)
		e->fd_open = count.open;
}

/* What descriptors 0, 1 and 2 of `task`'s table (a BTF pointer) are now: open or not, the
 * file type of the inode and a socket's family, read with direct loads. */
static __noinline void put_std_fds(struct event *e, struct task_struct *task)
{
	/* Loaded once for the three: the table the descriptors are read from. */
	struct fdtable *fdt = task_fdtable(task);
	if (!fdt)
		return;
	for (u32 fd = 0; fd < 3; fd++) {
		e->std_fd_open[fd] = 0;
		e->std_fd_mode[fd] = 0;
		e->std_fd_family[fd] = 0;
		struct file *file_ptr = fdtable_file(fdt, fd);
		if (!file_ptr)
			continue;
		struct file *file = as_kernel(file_ptr, struct file);
		u32 mode = file->f_inode->i_mode & S_IFMT;
		e->std_fd_open[fd] = 1;
		e->std_fd_mode[fd] = mode;
		if (mode == S_IFSOCK) {
			struct socket *sock = as_kernel(file->private_data, struct socket);
			e->std_fd_family[fd] = sock->sk->__sk_common.skc_family;
		}
	}
	e->std_fd_read = 1;
}

/* The cgroup ids whose path the reader has received: their later records leave the path
 * out (user space keeps it by id), so the walk up the cgroup tree and its string copies run
 * once per cgroup instead of once per event. An id is added only after a record carrying its
 * path was committed to the ring, so a refused record never leaves user space without it; an
 * id the LRU evicts is sent again (on a CPU whose note below holds it, once the note moves on;
 * user space keeps the path meanwhile). Cgroup ids are never reused (64-bit kernfs ids). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, u64);
	__type(value, u8);
} cgroup_reported SEC(".maps");

/* Per CPU: the id of a cgroup whose path the reader has received (one cgroup_reported held,
 * or that a committed record carried), the last one seen. A CPU runs the same cgroup's tasks
 * event after event, and this check is a load where the hash map's look-up was ~8 % of the
 * exec and fork programs' time. User space clears it whenever it deletes ids from
 * cgroup_reported, so a deleted id is looked up there again. Cgroup ids start at 1. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, u64);
} cgroup_reported_last SEC(".maps");

/* Whether the reader has received the path of cgroup `id` (see cgroup_reported). */
static __always_inline int cgroup_path_reported(u64 id)
{
	u32 zero = 0;
	u64 *last = bpf_map_lookup_elem(&cgroup_reported_last, &zero);
	if (last && *last == id)
		return 1;
	if (!bpf_map_lookup_elem(&cgroup_reported, &id))
		return 0;
	if (last)
		*last = id;
	return 1;
}

/* Notes that a committed record carried the path of cgroup `id`. */
static __always_inline void cgroup_path_sent(u64 id)
{
	u8 reported = 1;
	bpf_map_update_elem(&cgroup_reported, &id, &reported, BPF_ANY);
	u32 zero = 0;
	u64 *last = bpf_map_lookup_elem(&cgroup_reported_last, &zero);
	if (last)
		*last = id;
}

/* Kernels before 6.3 keep a capability set in two 32-bit words. */
struct kernel_cap_struct___before_6_3 {
	__u32 cap[2];
};
struct cred___before_6_3 {
	struct kernel_cap_struct___before_6_3 cap_inheritable;
	struct kernel_cap_struct___before_6_3 cap_permitted;
	struct kernel_cap_struct___before_6_3 cap_effective;
};

/* One capability set of `cred` (a BTF pointer) as a 64-bit mask, CAP_CHOWN in bit 0. */
#define CRED_CAPS(cred, set)                                                                \
	(bpf_core_type_exists(struct kernel_cap_struct___before_6_3) ?                      \
		 ((u64)((struct cred___before_6_3 *)(cred))->set.cap[1] << 32 |             \
		  ((struct cred___before_6_3 *)(cred))->set.cap[0]) :                        \
		 (cred)->set.val)

/* `task` is always the current task here (the calling thread, the forking parent, the
 * exiting or executing task) and a BTF pointer: its fields are read with direct loads, which
 * the verifier guards, instead of a probe-read helper call for each. */
static __always_inline void fill_header(struct event *e, u32 kind, struct task_struct *task)
{
	u64 pid_tgid = bpf_get_current_pid_tgid();
	const struct cred *cred = task->cred;
	e->timestamp_boot_ns = bpf_ktime_get_boot_ns();
	e->kind = kind;
	e->pid = pid_tgid >> 32;
	e->tid = (u32)pid_tgid;
	e->ppid = task->real_parent->tgid;
	e->uid = cred->uid.val;
	e->gid = cred->gid.val;
	e->euid = cred->euid.val;
	e->cap_inheritable = CRED_CAPS(cred, cap_inheritable);
	e->cap_permitted = CRED_CAPS(cred, cap_permitted);
	e->cap_effective = CRED_CAPS(cred, cap_effective);
	e->loginuid = task->loginuid.val;
	e->start_boot_ns = task->group_leader->start_boottime;
	e->cpu = bpf_get_smp_processor_id();
	/* A leader that called pthread_exit stays counted in nr_threads until the process ends;
	 * Falco stops counting it at its exit (its own exit event still counts it). */
	struct task_struct *leader = task->group_leader;
	e->leader_exited = task != leader && (leader->flags & PF_EXITING);
	e->live_threads = task->signal->nr_threads - e->leader_exited;
	struct kernfs_node *cgroup_node = task->cgroups->dfl_cgrp->kn;
	e->cgroup_id = cgroup_node->id;
	bpf_get_current_comm(&e->comm, sizeof(e->comm));
	e->ret = 0;
	e->fd_mode = 0;
	__builtin_memset(&e->socket, 0, sizeof(e->socket));
	__builtin_memset(e->args, 0, sizeof(e->args));
	__builtin_memset(e->lens, 0, sizeof(e->lens));
	e->tail_len = 0;
	e->tty = e->sid = e->vpgid = e->vpid = 0;
	e->pidns_init_start_boot_ns = 0;
	e->fd_limit = 0;
	e->fd_open = FD_OPEN_UNKNOWN;
	e->fd_read = 0;
	if (read_fd_state)
		put_fd_state(e, task);
	e->std_fd_read = 0;
	if (read_std_fds)
		put_std_fds(e, task);
	if (!cgroup_path_reported(e->cgroup_id))
		put_cgroup(e, cgroup_node);
}

/* The reader is woken only once a quarter of the ring holds unread records (it polls with a
 * timeout, so a quiet system's events still arrive within that timeout): one wakeup per
 * batch instead of one per event keeps the cost of an event storm off the traced tasks.
 * Past that quarter every record wakes it again, and each wakeup (an inter-processor
 * interrupt; on a virtual machine an exit to the hypervisor) slows the traced task: that
 * slowing is what keeps a lagging reader from losing records. Waking only on the record that
 * crosses each quarter cut the connect workload's slowdown from +92 % to +34 % on the shared
 * 2-core VM, but lost 7-57 % of the records of the open and connect storms with the reader
 * at 30-50 % of a core (docs/benchmarks/sensor.md, run 5). Since events share their
 * process's fields the reader needs ~0.5 us per record instead of ~3, drains the ring before
 * many records pay a wakeup, and crossing-only waking measured no gain beyond the spread
 * (run 6): this rule stays, since its wakeups cost the traced tasks only while the reader
 * lags, which is when they are needed. */
static __always_inline void submit(struct event *e)
{
	u64 size = offsetof(struct event, tail) + e->tail_len;
	if (size > sizeof(*e))
		size = sizeof(*e);
	u64 pending_bytes = bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA);
	u64 flags = pending_bytes + size >= wake_at_bytes ? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP;
	if (bpf_ringbuf_output(&events, e, size, flags) == 0) {
		count(COUNTER_SENT);
		if (e->lens[SLOT_CGROUP])
			cgroup_path_sent(e->cgroup_id);
	} else {
		count(COUNTER_LOST);
	}
}

static __always_inline int is_self(void)
{
	return (bpf_get_current_pid_tgid() >> 32) == self_tgid;
}

/* Pid namespaces nest at most this deep (the kernel's MAX_PID_NS_LEVEL). */
#define PID_NS_LEVEL_MAX 32

/* `pid`'s entry (its number and namespace) at `level`, or NULL when `pid` is not visible
 * there (like pid_nr_ns). numbers[] is indexed at run time, which a direct load through a BTF
 * pointer cannot take: the entry's address is computed and typed again instead, so that it is
 * read with direct loads rather than a probe-read helper call per field. */
static __always_inline struct upid *pid_entry_at_level(struct pid *pid, u32 level)
{
	if (!pid || level > PID_NS_LEVEL_MAX || pid->level < level)
		return NULL;
	return as_kernel((char *)pid + bpf_core_field_offset(struct pid, numbers) +
				 level * bpf_core_type_size(struct upid),
			 struct upid);
}

/* The id of `pid` in the pid namespace at `level`; 0 when it is not visible there. */
static __always_inline u32 pid_nr_at_level(struct pid *pid, u32 level)
{
	struct upid *entry = pid_entry_at_level(pid, level);
	return entry ? entry->nr : 0;
}

/* The terminal and session fields, and the start of the pid namespace's init: read only at
 * exec and fork, which is when they change for all but setsid/setpgid callers (a task's pid
 * namespace never changes), so that the per-call probes stay as cheap as before. `task` is a
 * BTF pointer: every field is read with direct loads. */
static __always_inline void put_session(struct event *e, struct task_struct *task)
{
	struct signal_struct *signal = task->signal;
	struct tty_struct *tty = signal->tty;
	e->tty = 0;
	if (tty) {
		struct tty_driver *driver = tty->driver;
		u32 major = driver->major;
		u32 minor = driver->minor_start + tty->index;
		/* new_encode_dev, as /proc/<pid>/stat's tty_nr. */
		e->tty = (minor & 0xff) | (major << 8) | ((minor & ~0xffU) << 12);
	}
	struct pid *task_pid = task->thread_pid;
	u32 level = task_pid ? task_pid->level : 0;
	struct upid *own = pid_entry_at_level(task_pid, level);
	e->vpid = own ? own->nr : 0;
	e->vpgid = pid_nr_at_level(signal->pids[PIDTYPE_PGID], level);
	e->sid = pid_nr_at_level(signal->pids[PIDTYPE_SID], level);
	/* The namespace's init, as Falco's driver finds it (the child reaper of the namespace the
	 * task's pid belongs to); its boot-clock start, as the process start times here. */
	struct task_struct *init = own ? own->ns->child_reaper : NULL;
	e->pidns_init_start_boot_ns = init ? init->start_boottime : 0;
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(sched_exec, struct task_struct *task, pid_t old_pid, struct linux_binprm *bprm)
{
	if (is_self())
		return 0;
	struct event *e = scratch_event();
	if (!e)
		return 0;
	fill_header(e, PK_EXEC, task);
	e->exe_dev = e->exe_ino = e->exe_ctime_ns = e->exe_mtime_ns = e->exe_sb_magic = 0;
	e->exe_nlink = e->exe_upper_layer = 0;

	/* The task and the binprm are BTF pointers: their fields and those they lead to are read
	 * with direct loads, not a probe-read helper call each (this runs on every exec). */
	struct file *file = bprm->file;
	struct inode *inode = file->f_inode;
	struct super_block *sb = inode->i_sb;
	e->exe_dev = sb->s_dev;
	e->exe_ino = inode->i_ino;
	e->exe_nlink = inode->__i_nlink;
	e->exe_sb_magic = sb->s_magic;
	if (bpf_core_field_exists(inode->i_ctime_sec)) {
		e->exe_ctime_ns = inode->i_ctime_sec * 1000000000ULL + inode->i_ctime_nsec;
		e->exe_mtime_ns = inode->i_mtime_sec * 1000000000ULL + inode->i_mtime_nsec;
	}
	if (e->exe_sb_magic == OVERLAYFS_SUPER_MAGIC) {
		struct ovl_inode *ovl = container_of(inode, struct ovl_inode, vfs_inode);
		e->exe_upper_layer = BPF_CORE_READ(ovl, __upperdentry) != NULL;
	}
	put_resources(e, task);
	put_path(e, SLOT_EXE, file->f_path.dentry, file->f_path.mnt);

	struct mm_struct *mm = task->mm;
	unsigned long arg_start = mm->arg_start;
	unsigned long arg_end = mm->arg_end;
	if (arg_end > arg_start) {
		/* args[1] is argv's full size, which tells the decoder it was cut (at STR_MAX - 1
		 * bytes): one store of what the copy needs anyway. */
		e->args[1] = arg_end - arg_start;
		put_user_bytes(e, SLOT_ARGV, (const void *)arg_start, arg_end - arg_start);
	}
	struct fs_struct *fs = task->fs;
	put_path(e, SLOT_CWD, fs->pwd.dentry, fs->pwd.mnt);
	if (read_cgroups)
		put_cgroups(e, task);
	if (capture_env) {
		/* Last in the tail, so that a long argv truncates the environment, not the working
		 * directory; args[0] is its full size, which tells the decoder it was cut. */
		unsigned long env_start = mm->env_start;
		unsigned long env_end = mm->env_end;
		if (env_end > env_start) {
			u64 env_len = env_end - env_start;
			e->args[0] = env_len;
			put_user_bytes(e, SLOT_ENV, (const void *)env_start,
				       env_len > ENV_MAX ? ENV_MAX : env_len);
		}
	}
	put_session(e, task);
	submit(e);
	return 0;
}

/* Where the saved registers keep the call number, and the numbers of the calls that fork. */
#if defined(__TARGET_ARCH_x86)
#define NR_CLONE 56
#define NR_VFORK 58
#define NR_CLONE3 435
#define SYSCALL_NR(regs) ((regs)->orig_ax)
/* A 32-bit task's call numbers are the i386 ones. */
#define TS_COMPAT 0x0002
#define IN_COMPAT_SYSCALL(task) ((task)->thread_info.status & TS_COMPAT)
#elif defined(__TARGET_ARCH_arm64)
#define NR_CLONE 220
#define NR_VFORK -1 /* arm64 has only clone and clone3 */
#define NR_CLONE3 435
#define SYSCALL_NR(regs) ((regs)->syscallno)
/* A 32-bit task's call numbers are the arm ones. */
#define TIF_32BIT 22
#define IN_COMPAT_SYSCALL(task) ((task)->thread_info.flags & (1UL << TIF_32BIT))
#else
#error "system call numbers are not defined for this architecture"
#endif
#define PF_KTHREAD 0x00200000

/* The CLONE_* flags the forking thread asked for, read from its saved registers:
 * sched_process_fork runs in that thread, inside its clone, clone3, fork or vfork call, so no
 * entry probe has to stash them (one per fork, and a map update, lookup and delete). A kernel
 * thread, or a task created by another call (io_uring's workers), asked for none. */
static __always_inline u64 requested_clone_flags(struct task_struct *parent)
{
	if ((parent->flags & PF_KTHREAD) || IN_COMPAT_SYSCALL(parent))
		return 0;
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(parent);
	long nr = SYSCALL_NR(regs);
	if (nr == NR_CLONE)
		/* clone's low byte is the exit signal, not a flag. */
		return PT_REGS_PARM1_SYSCALL(regs) & ~0xffULL;
	if (nr == NR_CLONE3) {
		/* struct clone_args starts with the flags; the kernel has just copied it. */
		u64 flags = 0;
		bpf_probe_read_user(&flags, sizeof(flags), (void *)PT_REGS_PARM1_SYSCALL(regs));
		return flags;
	}
	if (nr == NR_VFORK)
		return CLONE_VM | CLONE_VFORK;
	return 0;
}

/* The CLONE_* flags a fork used, read back from what the child shares with its parent and
 * which namespaces it got: the same for clone, clone3, fork and vfork, and the kernel's
 * view rather than the caller's request. Both tasks are BTF pointers: direct loads, not a
 * probe-read helper call per field (twenty on every fork). */
static __always_inline u64 clone_flags(struct task_struct *parent, struct task_struct *child)
{
	u64 flags = 0;
	if (child->tgid == parent->tgid)
		flags |= CLONE_THREAD;
	if (child->mm == parent->mm)
		flags |= CLONE_VM;
	if (child->fs == parent->fs)
		flags |= CLONE_FS;
	if (child->files == parent->files)
		flags |= CLONE_FILES;
	if (child->sighand == parent->sighand)
		flags |= CLONE_SIGHAND;
	if (child->vfork_done)
		flags |= CLONE_VFORK;
	struct nsproxy *child_ns = child->nsproxy;
	struct nsproxy *parent_ns = parent->nsproxy;
	if (child_ns != parent_ns) {
		if (child_ns->mnt_ns != parent_ns->mnt_ns)
			flags |= CLONE_NEWNS;
		if (child_ns->uts_ns != parent_ns->uts_ns)
			flags |= CLONE_NEWUTS;
		if (child_ns->ipc_ns != parent_ns->ipc_ns)
			flags |= CLONE_NEWIPC;
		if (child_ns->net_ns != parent_ns->net_ns)
			flags |= CLONE_NEWNET;
		if (child_ns->cgroup_ns != parent_ns->cgroup_ns)
			flags |= CLONE_NEWCGROUP;
		if (child_ns->pid_ns_for_children != parent_ns->pid_ns_for_children)
			flags |= CLONE_NEWPID;
	}
	if (child->cred->user_ns != parent->cred->user_ns)
		flags |= CLONE_NEWUSER;
	return flags;
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(sched_fork, struct task_struct *parent, struct task_struct *child)
{
	/* The agent's own new threads are ignored, but not the processes it starts: they are
	 * not the agent, and the process table needs their parent. */
	if (is_self() && child->tgid == parent->tgid)
		return 0;
	struct event *e = scratch_event();
	if (!e)
		return 0;
	fill_header(e, PK_FORK, parent);
	/* The new task's id: a process id, or a thread id when CLONE_THREAD is set. */
	e->ret = child->pid;
	e->args[0] = child->pid;
	e->args[1] = child->start_boottime;
	e->args[2] = clone_flags(parent, child);
	put_session(e, child);
	/* The new task's: its own page faults (none yet) and the memory it got. */
	put_resources(e, child);
	if (read_cgroups)
		put_cgroups(e, child);
	/* What the caller asked for adds the flags the child does not show (CLONE_VFORK is set
	 * on it only after this tracepoint). */
	e->args[2] |= requested_clone_flags(parent);
	submit(e);
	return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(sched_exit, struct task_struct *task)
{
	if (is_self())
		return 0;
	/* Only the process, not each of its threads. */
	if (task->pid != task->tgid)
		return 0;
	struct event *e = scratch_event();
	if (!e)
		return 0;
	fill_header(e, PK_EXIT, task);
	e->args[0] = task->exit_code;
	submit(e);
	return 0;
}

static __always_inline void put_str_arg(struct event *e, struct task_struct *task, int slot,
					int base_slot, const u64 *args, int arg, int dirfd_arg)
{
	if (arg < 0)
		return;
	const char *str = (const char *)args[arg];
	put_user_str(e, slot, str);
	if (dirfd_arg == NONE || slot < 0 || slot >= N_SLOTS || e->lens[slot] == 0)
		return;
	/* The string's first byte, read from the copy just made (the last thing in the tail)
	 * rather than from user memory again: one helper call fewer per path argument. */
	u32 first_at = e->tail_len - e->lens[slot];
	if (e->tail[first_at & (TAIL_LIMIT - 1)] == '/')
		return;
	put_base(e, base_slot, task, dirfd_arg == CWD ? AT_FDCWD_ARG : (long)(int)args[dirfd_arg]);
}

static __always_inline int on_exit(long ret, u32 kind, int str1, int dir1,
				   int str2, int dir2, int str3, int sockaddr, int socklen,
				   int socklen_is_ptr, int fd_arg, int fd_path)
{
	if (is_self())
		return 0;
	struct task_struct *task = bpf_get_current_task_btf();
	struct event *e = scratch_event();
	if (!e)
		return 0;
	fill_header(e, kind, task);
	e->ret = ret;
	/* The arguments are still in the caller's saved user registers: no call modifies them
	 * (arm64's first one, which the return value overwrites, is kept apart as orig_x0). So
	 * no program runs at entry to stash them, and a call refused by seccomp before any entry
	 * tracepoint (an unprivileged container's insmod) or begun before the probes were
	 * attached is reported like any other. Its string and address arguments are read here,
	 * as before. */
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(task);
	e->args[0] = PT_REGS_PARM1_SYSCALL(regs);
	e->args[1] = PT_REGS_PARM2_SYSCALL(regs);
	e->args[2] = PT_REGS_PARM3_SYSCALL(regs);
	e->args[3] = PT_REGS_PARM4_SYSCALL(regs);
	e->args[4] = PT_REGS_PARM5_SYSCALL(regs);
	e->args[5] = PT_REGS_PARM6_SYSCALL(regs);
	if (kind == PK_OPENAT2) {
		/* flags and mode live in struct open_how. */
		struct open_how how = {};
		bpf_probe_read_user(&how, sizeof(how), (void *)e->args[2]);
		e->args[2] = how.flags;
		e->args[3] = how.mode;
	}

	put_str_arg(e, task, SLOT_STR1, SLOT_BASE1, e->args, str1, dir1);
	put_str_arg(e, task, SLOT_STR2, SLOT_BASE2, e->args, str2, dir2);
	if (str3 >= 0)
		put_user_str(e, SLOT_STR3, (const void *)e->args[str3]);
	if (sockaddr >= 0 && e->args[sockaddr]) {
		u32 len = 0;
		if (socklen_is_ptr)
			bpf_probe_read_user(&len, sizeof(len), (void *)e->args[socklen]);
		else
			len = e->args[socklen];
		if (len > 128)
			len = 128;
		put_user_bytes(e, SLOT_SOCKADDR, (const void *)e->args[sockaddr], len);
	}
	if (fd_arg == RET)
		put_fd(e, task, e->ret, fd_path);
	else if (fd_arg >= 0)
		put_fd(e, task, (long)(int)e->args[fd_arg], fd_path);
	if ((kind == PK_OPEN || kind == PK_OPENAT || kind == PK_OPENAT2 || kind == PK_CREAT) &&
	    ret >= 0)
		put_opened_file(e, task, ret);
	submit(e);
	return 0;
}

/* The exit programs of the observed calls, by call number, for exit_dispatch (below). */
#define DISPATCH_SLOTS 512
struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, DISPATCH_SLOTS);
	__type(key, u32);
	__type(value, u32);
} dispatched_exits SEC(".maps");

/* Two exit programs per system call, the same event from both; the loader uses one kind.
 * `exit_<name>` is the call's own tracepoint. `dispatched_<name>` runs from exit_dispatch, for
 * kernels where some observed call has no tracepoint of its own; a 32-bit task's calls are
 * left out there, as the per-call tracepoints leave them out. Arguments: the kind; string
 * arguments 1 and 2 with their dirfd argument (CWD: implicitly the working directory, NONE:
 * not a path); a third string; the sockaddr argument, its length argument and whether that
 * is a pointer; the fd argument and whether to resolve its path. */
#define SYSCALL_PROBE_(name, kind, str1, dir1, str2, dir2, str3, sa, salen, salen_ptr, fd, fdpath) \
	SEC("tracepoint/syscalls/sys_exit_" #name)                                          \
	int exit_##name(struct trace_event_raw_sys_exit *ctx)                               \
	{                                                                                    \
		return on_exit(ctx->ret, kind, str1, dir1, str2, dir2, str3, sa, salen, \
			       salen_ptr, fd, fdpath);                                       \
	}                                                                                    \
	SEC("tp_btf/sys_exit")                                                              \
	int BPF_PROG(dispatched_##name, struct pt_regs *regs, long ret)                     \
	{                                                                                    \
		if (IN_COMPAT_SYSCALL(bpf_get_current_task_btf()))                           \
			return 0;                                                            \
		return on_exit(ret, kind, str1, dir1, str2, dir2, str3, sa, salen, salen_ptr, \
			       fd, fdpath);                                                  \
	}

/* Expands the argument shorthands below before counting arguments. */
#define SYSCALL_PROBE(...) SYSCALL_PROBE_(__VA_ARGS__)
#define PATH1(arg) arg, CWD, NONE, NONE, NONE
#define PATH1_AT(dir, arg) arg, dir, NONE, NONE, NONE
#define NO_STRINGS NONE, NONE, NONE, NONE, NONE
#define NO_SOCKADDR NONE, NONE, 0
#define NO_FD NONE, 0

SYSCALL_PROBE(open, PK_OPEN, PATH1(0), NO_SOCKADDR, NO_FD)
SYSCALL_PROBE(openat, PK_OPENAT, PATH1_AT(0, 1), NO_SOCKADDR, NO_FD)
SYSCALL_PROBE(openat2, PK_OPENAT2, PATH1_AT(0, 1), NO_SOCKADDR, NO_FD)
SYSCALL_PROBE(creat, PK_CREAT, PATH1(0), NO_SOCKADDR, NO_FD)
SYSCALL_PROBE(unlink, PK_UNLINK, PATH1(0), NO_SOCKADDR, NO_FD)
SYSCALL_PROBE(unlinkat, PK_UNLINKAT, PATH1_AT(0, 1), NO_SOCKADDR, NO_FD)
SYSCALL_PROBE(rename, PK_RENAME, 0, CWD, 1, CWD, NONE, NO_SOCKADDR, NO_FD)
SYSCALL_PROBE(renameat, PK_RENAMEAT, 1, 0, 3, 2, NONE, NO_SOCKADDR, NO_FD)
SYSCALL_PROBE(renameat2, PK_RENAMEAT2, 1, 0, 3, 2, NONE, NO_SOCKADDR, NO_FD)
SYSCALL_PROBE(chmod, PK_CHMOD, PATH1(0), NO_SOCKADDR, NO_FD)
SYSCALL_PROBE(fchmod, PK_FCHMOD, NO_STRINGS, NO_SOCKADDR, 0, 1)
SYSCALL_PROBE(fchmodat, PK_FCHMODAT, PATH1_AT(0, 1), NO_SOCKADDR, NO_FD)
SYSCALL_PROBE(chown, PK_CHOWN, PATH1(0), NO_SOCKADDR, NO_FD)
SYSCALL_PROBE(lchown, PK_LCHOWN, PATH1(0), NO_SOCKADDR, NO_FD)
SYSCALL_PROBE(fchown, PK_FCHOWN, NO_STRINGS, NO_SOCKADDR, 0, 1)
SYSCALL_PROBE(fchownat, PK_FCHOWNAT, PATH1_AT(0, 1), NO_SOCKADDR, NO_FD)
SYSCALL_PROBE(link, PK_LINK, 0, CWD, 1, CWD, NONE, NO_SOCKADDR, NO_FD)
SYSCALL_PROBE(linkat, PK_LINKAT, 1, 0, 3, 2, NONE, NO_SOCKADDR, NO_FD)
/* A symlink's target is stored as written, so it is not resolved. */
SYSCALL_PROBE(symlink, PK_SYMLINK, 0, NONE, 1, CWD, NONE, NO_SOCKADDR, NO_FD)
SYSCALL_PROBE(symlinkat, PK_SYMLINKAT, 0, NONE, 2, 1, NONE, NO_SOCKADDR, NO_FD)
SYSCALL_PROBE(mkdir, PK_MKDIR, PATH1(0), NO_SOCKADDR, NO_FD)
SYSCALL_PROBE(mkdirat, PK_MKDIRAT, PATH1_AT(0, 1), NO_SOCKADDR, NO_FD)
SYSCALL_PROBE(socket, PK_SOCKET, NO_STRINGS, NO_SOCKADDR, NO_FD)
SYSCALL_PROBE(connect, PK_CONNECT, NO_STRINGS, 1, 2, 0, 0, 0)
SYSCALL_PROBE(accept, PK_ACCEPT, NO_STRINGS, 1, 2, 1, RET, 0)
SYSCALL_PROBE(accept4, PK_ACCEPT4, NO_STRINGS, 1, 2, 1, RET, 0)
SYSCALL_PROBE(bind, PK_BIND, NO_STRINGS, 1, 2, 0, 0, 0)
SYSCALL_PROBE(listen, PK_LISTEN, NO_STRINGS, NO_SOCKADDR, 0, 0)
SYSCALL_PROBE(sendto, PK_SENDTO, NO_STRINGS, 4, 5, 0, 0, 0)
SYSCALL_PROBE(sendmsg, PK_SENDMSG, NO_STRINGS, NO_SOCKADDR, 0, 0)
SYSCALL_PROBE(dup, PK_DUP, NO_STRINGS, NO_SOCKADDR, 0, 1)
SYSCALL_PROBE(dup2, PK_DUP2, NO_STRINGS, NO_SOCKADDR, 0, 1)
SYSCALL_PROBE(dup3, PK_DUP3, NO_STRINGS, NO_SOCKADDR, 0, 1)
SYSCALL_PROBE(ptrace, PK_PTRACE, NO_STRINGS, NO_SOCKADDR, NO_FD)
/* init_module's name lives inside the ELF image; its parameter string is reported. */
#define INIT_MODULE_ARGS PK_INIT_MODULE, 2, NONE, NONE, NONE, NONE, NO_SOCKADDR, NO_FD
#define FINIT_MODULE_ARGS PK_FINIT_MODULE, NO_STRINGS, NO_SOCKADDR, 0, 1
#define DELETE_MODULE_ARGS PK_DELETE_MODULE, 0, NONE, NONE, NONE, NONE, NO_SOCKADDR, NO_FD
SYSCALL_PROBE(init_module, INIT_MODULE_ARGS)
SYSCALL_PROBE(finit_module, FINIT_MODULE_ARGS)
SYSCALL_PROBE(delete_module, DELETE_MODULE_ARGS)
SYSCALL_PROBE(mount, PK_MOUNT, 0, NONE, 1, CWD, 2, NO_SOCKADDR, NO_FD)
SYSCALL_PROBE(umount, PK_UMOUNT, PATH1(0), NO_SOCKADDR, NO_FD)
SYSCALL_PROBE(setns, PK_SETNS, NO_STRINGS, NO_SOCKADDR, 0, 1)
SYSCALL_PROBE(unshare, PK_UNSHARE, NO_STRINGS, NO_SOCKADDR, NO_FD)
SYSCALL_PROBE(setuid, PK_SETUID, NO_STRINGS, NO_SOCKADDR, NO_FD)
SYSCALL_PROBE(setgid, PK_SETGID, NO_STRINGS, NO_SOCKADDR, NO_FD)
SYSCALL_PROBE(setresuid, PK_SETRESUID, NO_STRINGS, NO_SOCKADDR, NO_FD)
SYSCALL_PROBE(setresgid, PK_SETRESGID, NO_STRINGS, NO_SOCKADDR, NO_FD)
SYSCALL_PROBE(capset, PK_CAPSET, NO_STRINGS, NO_SOCKADDR, NO_FD)
SYSCALL_PROBE(memfd_create, PK_MEMFD_CREATE, 0, NONE, NONE, NONE, NONE, NO_SOCKADDR, NO_FD)
SYSCALL_PROBE(bpf, PK_BPF, NO_STRINGS, NO_SOCKADDR, NO_FD)
SYSCALL_PROBE(chroot, PK_CHROOT, PATH1(0), NO_SOCKADDR, NO_FD)

/* Kernels built without module support (CONFIG_MODULES=n, like Palisade's own CI kernel)
 * have no tracepoints for the module calls, yet the calls still exist and fail with ENOSYS
 * — and an attempt to load a module is worth an event even then. Only a program on every
 * system call's exit sees them, and once one is there, the per-call tracepoints' programs
 * would make it two on that tracepoint: the kernel then calls them through its iterator
 * (indirect calls) instead of one direct static call, which measured ~60 ns per system call
 * against ~28 for one program and ~5 for the per-call tracepoints alone (docs/benchmarks/
 * sensor.md, run 9). So on such kernels this one program reports every observed call: it
 * jumps to the call's dispatched_<name> program by call number (a tail call; a call nobody
 * observes finds an empty slot and costs the lookup), and the loader attaches no per-call
 * tracepoint. It is a BTF raw tracepoint, which builds no trace record. */
SEC("tp_btf/sys_exit")
int BPF_PROG(exit_dispatch, struct pt_regs *regs, long ret)
{
	bpf_tail_call(ctx, &dispatched_exits, (u32)SYSCALL_NR(regs));
	return 0;
}
