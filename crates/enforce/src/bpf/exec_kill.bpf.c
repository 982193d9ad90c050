// SPDX-License-Identifier: GPL-2.0
/* Kill at exec: SIGKILL every process that executes a denied binary (device + inode).
 *
 * `tp_btf/sched_process_exec` fires after the new image is committed and before the task
 * returns to user space, so the signal is delivered before the binary runs one instruction.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "enforce.h"

#define SIGKILL 9

char LICENSE[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_DENIED_BINARIES);
	__type(key, struct binary_key);
	__type(value, __u8);
} denied_binaries SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} kills SEC(".maps");

/* Kills whose report did not fit in the ring buffer (the kill itself still happened). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} lost_reports SEC(".maps");

SEC("tp_btf/sched_process_exec")
int BPF_PROG(kill_denied_exec, struct task_struct *task, pid_t old_pid, struct linux_binprm *bprm)
{
	struct binary_key key = {};
	struct inode *inode = BPF_CORE_READ(bprm, file, f_inode);
	key.ino = BPF_CORE_READ(inode, i_ino);
	key.dev = BPF_CORE_READ(inode, i_sb, s_dev);

	if (!bpf_map_lookup_elem(&denied_binaries, &key))
		return 0;

	long signal_result = bpf_send_signal(SIGKILL);

	struct kill_event *event = bpf_ringbuf_reserve(&kills, sizeof(*event), 0);
	if (!event) {
		__u32 zero = 0;
		__u64 *lost = bpf_map_lookup_elem(&lost_reports, &zero);
		if (lost)
			__sync_fetch_and_add(lost, 1);
		return 0;
	}
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	event->ino = key.ino;
	event->cgroup_id = bpf_get_current_cgroup_id();
	event->dev = key.dev;
	event->tgid = pid_tgid >> 32;
	event->tid = (__u32)pid_tgid;
	event->uid = (__u32)bpf_get_current_uid_gid();
	event->signal_result = (__s32)signal_result;
	event->pad = 0;
	bpf_get_current_comm(event->comm, sizeof(event->comm));
	const char *filename = BPF_CORE_READ(bprm, filename);
	if (bpf_probe_read_kernel_str(event->filename, sizeof(event->filename), filename) < 0)
		event->filename[0] = 0;
	bpf_ringbuf_submit(event, 0);
	return 0;
}
