// SPDX-License-Identifier: GPL-2.0
/* The smallest BPF-LSM program: loading it tells whether this kernel accepts BPF-LSM
 * programs (CONFIG_BPF_LSM and `bpf` in the active LSM list). It is loaded, never attached. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "GPL";

SEC("lsm/bprm_check_security")
int BPF_PROG(probe_bprm_check, struct linux_binprm *bprm, int ret)
{
	return ret;
}
