/* Layout shared by the eBPF programs and the Rust decoder.
 *
 * The Rust side never mirrors these by hand: libbpf-cargo generates `types::event` and
 * `types::probe_kind` from this file's BTF (see the `*_layout` globals in sensor.bpf.c).
 */
#ifndef PALISADE_SENSOR_H
#define PALISADE_SENSOR_H

/* What produced an event: a scheduler tracepoint or one system call. */
enum probe_kind {
	PK_EXEC = 1,
	PK_FORK,
	PK_EXIT,
	PK_OPEN,
	PK_OPENAT,
	PK_OPENAT2,
	PK_CREAT,
	PK_UNLINK,
	PK_UNLINKAT,
	PK_RENAME,
	PK_RENAMEAT,
	PK_RENAMEAT2,
	PK_CHMOD,
	PK_FCHMOD,
	PK_FCHMODAT,
	PK_CHOWN,
	PK_LCHOWN,
	PK_FCHOWN,
	PK_FCHOWNAT,
	PK_LINK,
	PK_LINKAT,
	PK_SYMLINK,
	PK_SYMLINKAT,
	PK_MKDIR,
	PK_MKDIRAT,
	PK_SOCKET,
	PK_CONNECT,
	PK_ACCEPT,
	PK_ACCEPT4,
	PK_BIND,
	PK_LISTEN,
	PK_SENDTO,
	PK_SENDMSG,
	PK_DUP,
	PK_DUP2,
	PK_DUP3,
	PK_PTRACE,
	PK_INIT_MODULE,
	PK_FINIT_MODULE,
	PK_DELETE_MODULE,
	PK_MOUNT,
	PK_UMOUNT,
	PK_SETNS,
	PK_UNSHARE,
	PK_SETUID,
	PK_SETGID,
	PK_SETRESUID,
	PK_SETRESGID,
	PK_CAPSET,
	PK_MEMFD_CREATE,
	PK_BPF,
	PK_CHROOT,
};

/* Variable-length strings follow the fixed part in this order; `lens[slot]` is the length
 * of each including its NUL (0 when absent). */
enum string_slot {
	SLOT_CGROUP,   /* cgroup2 path, leaf last, at most CGROUP_DEPTH levels */
	SLOT_STR1,     /* first path or string argument */
	SLOT_BASE1,    /* directory a relative STR1 is resolved against */
	SLOT_STR2,     /* second path or string argument */
	SLOT_BASE2,    /* directory a relative STR2 is resolved against */
	SLOT_STR3,     /* third string argument (mount's fstype) */
	SLOT_SOCKADDR, /* raw struct sockaddr bytes passed to or returned by the call */
	SLOT_FD_PATH,  /* path of the file behind the fd argument */
	SLOT_OPENED_FILE, /* open calls that succeeded: struct opened_file */
	SLOT_RESOURCES,	  /* exec and fork: struct task_resources */
	SLOT_EXE,      /* exec: absolute path of the executable */
	SLOT_ARGV,     /* exec: NUL-separated argv */
	SLOT_CWD,      /* exec: working directory */
	SLOT_CGROUPS,  /* exec and fork: NUL-separated "subsystem=path" for Falco's five controllers */
	SLOT_ENV,      /* exec, when rules read it: NUL-separated environment, at most ENV_MAX */
	N_SLOTS,
};

#define TAIL_LIMIT 8192
#define STR_MAX 4096
#define CGROUP_DEPTH 4
/* At most this many bytes of a process's environment are captured (the rest is marked
 * truncated): environments are usually 1-3 KiB, and the record's tail is shared with argv. */
#define ENV_MAX (STR_MAX - 1)

/* How many components of a cgroup's path SLOT_CGROUPS keeps, the root included: deeper paths
 * lose their top levels. Falco's modern probe keeps 6, its kernel module the whole path;
 * container runtimes' paths are 2-5 levels deep. */
#define CGROUPS_PATH_DEPTH 8

/* The open descriptors are counted from the descriptor table's open_fds bitmap, read in
 * chunks of FD_CHUNK_WORDS words, for tables of at most FD_COUNT_MAX_FDS descriptors (the
 * table's size, max_fds, not how many are open: a table only grows). A larger table is not
 * counted: the record then says FD_OPEN_UNKNOWN, and the field is absent rather than low. */
#define FD_CHUNK_WORDS 64
#define FD_COUNT_MAX_FDS 16384
#define FD_OPEN_UNKNOWN 0xffffffffU

/* What a task's memory, page faults and descriptor limit were when it executed a program or
 * was forked: the values Falco's driver sends with its execve and clone exit events (memory in
 * pages, which user space converts to kB; faults of the task itself). */
struct task_resources {
	unsigned long long vm_size_pages;
	unsigned long long vm_rss_pages;
	unsigned long long vm_swap_pages;
	unsigned long long major_faults;
	unsigned long long minor_faults;
	/* RLIMIT_NOFILE's soft limit; RLIM_INFINITY is all ones. */
	unsigned long long fd_limit;
};

/* Overlay layer of an opened file, decided as Falco's driver decides it. */
enum overlay_layer {
	LAYER_NONE, /* not on an overlay file system */
	LAYER_LOWER,
	LAYER_UPPER,
};

/* The file behind the descriptor an open call returned. */
struct opened_file {
	unsigned long long ino;
	/* The superblock's device, as stat's st_dev encodes it (new_encode_dev). */
	unsigned int dev;
	unsigned int layer;
	/* Non-zero when this open created the file: the kernel's FMODE_CREATED, which Falco's
	 * driver sends as PPM_O_F_CREATED (evt.is_open_create). */
	unsigned int created;
	unsigned int pad;
};

/* Socket behind an fd, read from the kernel's struct sock. */
struct socket_info {
	unsigned short family;
	unsigned short type;
	unsigned short protocol;
	unsigned short local_port;
	unsigned short remote_port;
	unsigned short pad;
	unsigned char local_addr[16];
	unsigned char remote_addr[16];
};

struct event {
	unsigned long long timestamp_boot_ns;
	unsigned long long cgroup_id;
	unsigned long long start_boot_ns;
	long long ret;
	unsigned long long args[6];
	/* The calling thread's capability sets when the event happened (read from the cred its
	 * uid comes from; Falco's driver sends them with execve, clone and capset). */
	unsigned long long cap_inheritable;
	unsigned long long cap_permitted;
	unsigned long long cap_effective;
	unsigned int kind;
	unsigned int pid;
	unsigned int tid;
	unsigned int ppid;
	unsigned int uid;
	unsigned int gid;
	unsigned int euid;
	unsigned int loginuid;
	/* The process's live threads, counting the leader until it has exited (Falco's
	 * proc.nthreads), and whether it has. */
	unsigned int live_threads;
	unsigned int leader_exited;
	char comm[16];
	/* The fd argument (or the returned fd for accept): S_IFMT bits of its inode, and its
	 * socket when it is one. */
	unsigned int fd_mode;
	/* The CPU the event happened on. */
	unsigned int cpu;
	struct socket_info socket;
	/* exec only */
	unsigned long long exe_dev;
	unsigned long long exe_ino;
	unsigned long long exe_ctime_ns;
	unsigned long long exe_mtime_ns;
	unsigned long long exe_sb_magic;
	unsigned int exe_nlink;
	unsigned int exe_upper_layer;
	/* exec and fork only (for fork: the new task's): the boot-clock start of the init task
	 * (child reaper) of the task's pid namespace, as Falco's driver reads it for
	 * proc.pidns_init_start_ts; 0 when the namespace has none. */
	unsigned long long pidns_init_start_boot_ns;
	/* exec and fork only (for fork: the new task's), as /proc shows them: the controlling
	 * terminal's device number (stat's tty_nr, 0 when none), and the session, process group
	 * and process ids in the task's own pid namespace. */
	unsigned int tty;
	unsigned int sid;
	unsigned int vpgid;
	unsigned int vpid;
	/* With the loader's read_fd_state set (a rule reads proc.fdopencount, proc.fdlimit or
	 * proc.fdusage), on every record: RLIMIT_NOFILE's soft limit (RLIM_INFINITY is all ones)
	 * and, with count_open_fds set too (proc.fdopencount or proc.fdusage), the open
	 * descriptors of the task's table (FD_OPEN_UNKNOWN when not counted) when the event
	 * happened; fd_read says whether they were read. */
	unsigned long long fd_limit;
	unsigned int fd_open;
	unsigned int fd_read;
	/* With the loader's read_std_fds set (a rule reads proc.stdin.type, proc.stdout.type,
	 * proc.stderr.type or fd.types), on every record: descriptors 0, 1 and 2 of the task's
	 * table when the event happened: whether each is open, the S_IFMT bits of its inode and,
	 * for a socket, its family; std_fd_read says whether they were read. */
	unsigned int std_fd_mode[3];
	unsigned short std_fd_family[3];
	unsigned char std_fd_open[3];
	unsigned char std_fd_read;
	unsigned int tail_len;
	unsigned short lens[N_SLOTS];
	unsigned char tail[TAIL_LIMIT + STR_MAX];
};

#endif
