// SPDX-License-Identifier: GPL-2.0
/* Refuse or report connects from a cgroup2 subtree: `cgroup/connect4` and `cgroup/connect6`,
 * and datagrams sent to an address without a connect: `cgroup/sendmsg4` and `cgroup/sendmsg6`.
 *
 * Rules are tried in order; the first `allow` or `block` rule that matches decides (block
 * returns 0, which makes connect() fail with EPERM); a matching `alert` rule counts and
 * reports the connect and evaluation goes on, the same semantics as Palisade's firewall tier.
 *
 * A matched connect is counted per key (`struct connect_key`: cgroup, destination, port,
 * protocol, rule, verdict) in `connect_attempts`, the first one too; a key's first attempt of
 * a generation also writes a report into the ring buffer (`counted` = 1: it announces the
 * match, the count holds the attempt), so a flood of identical connects costs one report and
 * counter updates, and every counted attempt is in the counters, which outlive the loader
 * when it pins them. The loader takes the counts one generation at a time (see
 * `enter_generation`). An attempt whose key finds the counters full is reported on its own
 * (`counted` = 0); one that finds the ring full too is counted in `lost_reports`: only a
 * flood of distinct connects loses any.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "enforce.h"

#define AF_INET 2
#define AF_INET6 10

char LICENSE[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2 * MAX_CONNECT_RULES);
	__type(key, __u32);
	__type(value, struct connect_rule);
} connect_rules SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct connect_config);
} connect_config SEC(".maps");

/* Matches per rule id (alert and block rules: the attempts count). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 2 * MAX_CONNECT_RULES);
	__type(key, __u32);
	__type(value, __u64);
} connect_hits SEC(".maps");

/* The loader may replace this map and `lost_reports` with ones shared by every attached
 * filter (one reader for all); a shared map keeps its own size. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, CONNECT_REPORTS_BYTES);
} connect_reports SEC(".maps");

/* Attempts counted per key and generation, shared like the ring buffer. A plain hash map,
 * not an LRU one: a full map refuses new keys (their attempts are reported one by one, or
 * counted lost) rather than evicting a key whose count the loader has not taken. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, CONNECT_KEYS);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct connect_key);
	__type(value, __u64);
} connect_attempts SEC(".maps");

/* GENERATION_CURRENT: the generation counted into; GENERATION_WRITERS + g: the programs
 * counting into generation g now. Shared like the ring buffer. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 3);
	__type(key, __u32);
	__type(value, __u64);
} connect_generation SEC(".maps");

/* Attempts neither counted nor reported: the counters and the ring buffer were both full
 * (the rule's hit is still counted). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} lost_reports SEC(".maps");

struct destination {
	__u32 addr[4];
	__u16 port;
	__u8 family;
	__u8 protocol;
};

static __always_inline bool word_matches(__u32 rule_word, __u32 word, int bits)
{
	if (bits <= 0)
		return true;
	__u32 mask = bits >= 32 ? 0xffffffff : bpf_htonl(0xffffffff << (32 - bits));
	return ((rule_word ^ word) & mask) == 0;
}

static __always_inline bool rule_matches(const struct connect_rule *rule,
					 const struct destination *dst)
{
	if (rule->family != dst->family)
		return false;
	if (rule->protocol && rule->protocol != dst->protocol)
		return false;
	if (dst->port < rule->port_first || dst->port > rule->port_last)
		return false;
	int bits = rule->prefix_len;
	return word_matches(rule->addr[0], dst->addr[0], bits) &&
	       word_matches(rule->addr[1], dst->addr[1], bits - 32) &&
	       word_matches(rule->addr[2], dst->addr[2], bits - 64) &&
	       word_matches(rule->addr[3], dst->addr[3], bits - 96);
}

static __always_inline void count_hit(__u32 rule_id)
{
	__u64 *hits = bpf_map_lookup_elem(&connect_hits, &rule_id);
	if (!hits) {
		__u64 zero = 0;
		bpf_map_update_elem(&connect_hits, &rule_id, &zero, BPF_NOEXIST);
		hits = bpf_map_lookup_elem(&connect_hits, &rule_id);
		if (!hits)
			return;
	}
	__sync_fetch_and_add(hits, 1);
}

/* Writes the report of one attempt; false when the ring buffer is full. */
static __always_inline bool report(__u32 rule_id, __u8 action, const struct destination *dst,
				   __u32 filter_tag, __u8 counted)
{
	struct connect_event *event = bpf_ringbuf_reserve(&connect_reports, sizeof(*event), 0);
	if (!event)
		return false;
	event->cgroup_id = bpf_get_current_cgroup_id();
	event->addr[0] = dst->addr[0];
	event->addr[1] = dst->addr[1];
	event->addr[2] = dst->addr[2];
	event->addr[3] = dst->addr[3];
	event->tgid = bpf_get_current_pid_tgid() >> 32;
	event->uid = (__u32)bpf_get_current_uid_gid();
	event->rule_id = rule_id;
	event->port = dst->port;
	event->family = dst->family;
	event->protocol = dst->protocol;
	event->action = action;
	event->counted = counted;
	event->pad[0] = event->pad[1] = 0;
	event->filter_tag = filter_tag;
	bpf_get_current_comm(event->comm, sizeof(event->comm));
	bpf_ringbuf_submit(event, 0);
	return true;
}

static __always_inline void count_lost(void)
{
	__u32 zero = 0;
	__u64 *lost = bpf_map_lookup_elem(&lost_reports, &zero);
	if (lost)
		__sync_fetch_and_add(lost, 1);
}

/* Joins the writers of the current generation and returns their count (to leave with
 * `__sync_fetch_and_sub`), or NULL. The loader switches GENERATION_CURRENT, then waits for
 * the old generation's writers to be 0 before it takes that generation's counts: a program
 * that joined before the switch is waited for; one that joins after it sees the new
 * generation when it checks again below (its increment is fully ordered before that read,
 * the loader's switch before its read of the writers), leaves the old one and joins the new.
 * So no count is added to a generation being taken. */
static __always_inline __u64 *enter_generation(__u8 *generation)
{
	__u32 current_idx = GENERATION_CURRENT;
	__u64 *current = bpf_map_lookup_elem(&connect_generation, &current_idx);
	if (!current)
		return NULL;
	for (int attempt = 0; attempt < 2; attempt++) {
		__u32 chosen = (__u32)(*(volatile __u64 *)current & 1);
		__u32 writers_idx = GENERATION_WRITERS + chosen;
		__u64 *writers = bpf_map_lookup_elem(&connect_generation, &writers_idx);
		if (!writers)
			return NULL;
		/* The fetching form: a fully ordered atomic in the BPF memory model. */
		if (__sync_fetch_and_add(writers, 1) == (__u64)-1)
			return NULL;
		if ((__u32)(*(volatile __u64 *)current & 1) == chosen) {
			*generation = (__u8)chosen;
			return writers;
		}
		__sync_fetch_and_sub(writers, 1);
	}
	return NULL;
}

/* Counts one attempt of rule `rule_id` on `dst`: the rule's hit; then into its key's
 * counter when the key is there; otherwise as the new key's first count, announced by a report
 * (`counted`; a full ring loses only the announcement); otherwise (the counters are full) as a
 * report of its own; otherwise as lost. A global function, so that the verifier checks it
 * once rather than at each of the rule loop's iterations. */
__attribute__((noinline)) int count_attempt(const struct destination *dst, __u32 rule_id,
					    __u32 action, __u32 filter_tag)
{
	if (!dst)
		return 0;
	count_hit(rule_id);
	struct connect_key key = {};
	__u64 *writers = enter_generation(&key.generation);
	if (!writers) {
		/* Not countable (no generation to join): reported one by one. */
		if (!report(rule_id, (__u8)action, dst, filter_tag, 0))
			count_lost();
		return 0;
	}
	key.cgroup_id = bpf_get_current_cgroup_id();
	key.addr[0] = dst->addr[0];
	key.addr[1] = dst->addr[1];
	key.addr[2] = dst->addr[2];
	key.addr[3] = dst->addr[3];
	key.rule_id = rule_id;
	key.filter_tag = filter_tag;
	key.port = dst->port;
	key.family = dst->family;
	key.protocol = dst->protocol;
	key.action = (__u8)action;
	__u64 *count = bpf_map_lookup_elem(&connect_attempts, &key);
	__u64 one = 1;
	if (count) {
		__sync_fetch_and_add(count, 1);
	} else if (bpf_map_update_elem(&connect_attempts, &key, &one, BPF_NOEXIST) == 0) {
		report(rule_id, (__u8)action, dst, filter_tag, 1);
	} else {
		/* Another CPU added the key meanwhile, or the counters are full. */
		count = bpf_map_lookup_elem(&connect_attempts, &key);
		if (count)
			__sync_fetch_and_add(count, 1);
		else if (!report(rule_id, (__u8)action, dst, filter_tag, 0))
			count_lost();
	}
	__sync_fetch_and_sub(writers, 1);
	return 0;
}

/* Returns 1 to let the connect proceed, 0 to refuse it. */
static __always_inline int decide(const struct destination *dst)
{
	__u32 zero = 0;
	struct connect_config *config = bpf_map_lookup_elem(&connect_config, &zero);
	if (!config)
		return 1;
	__u32 active = config->active & 1;
	__u32 count = config->count[active];

	for (__u32 idx = 0; idx < MAX_CONNECT_RULES; idx++) {
		if (idx >= count)
			break;
		__u32 slot = active * MAX_CONNECT_RULES + idx;
		struct connect_rule *rule = bpf_map_lookup_elem(&connect_rules, &slot);
		if (!rule)
			break;
		if (!rule_matches(rule, dst))
			continue;
		if (rule->action == CONNECT_ALLOW)
			return 1;
		count_attempt(dst, rule->rule_id, rule->action, config->filter_tag);
		if (rule->action == CONNECT_BLOCK)
			return 0;
	}
	return 1;
}

/* The destination of a connect() or an unconnected sendmsg() of an IPv4 socket. */
static __always_inline int decide4(struct bpf_sock_addr *ctx)
{
	struct destination dst = {};
	dst.family = 4;
	dst.addr[0] = ctx->user_ip4;
	dst.port = bpf_ntohs((__u16)ctx->user_port);
	dst.protocol = (__u8)ctx->protocol;
	return decide(&dst);
}

/* The same for an IPv6 socket. */
static __always_inline int decide6(struct bpf_sock_addr *ctx)
{
	struct destination dst = {};
	dst.port = bpf_ntohs((__u16)ctx->user_port);
	dst.protocol = (__u8)ctx->protocol;
	__u32 word0 = ctx->user_ip6[0];
	__u32 word1 = ctx->user_ip6[1];
	__u32 word2 = ctx->user_ip6[2];
	__u32 word3 = ctx->user_ip6[3];
	/* A v4-mapped address (::ffff:a.b.c.d) on a dual-stack socket reaches an IPv4 peer, so
	 * IPv4 rules decide it. */
	if (word0 == 0 && word1 == 0 && word2 == bpf_htonl(0x0000ffff)) {
		dst.family = 4;
		dst.addr[0] = word3;
	} else {
		dst.family = 6;
		dst.addr[0] = word0;
		dst.addr[1] = word1;
		dst.addr[2] = word2;
		dst.addr[3] = word3;
	}
	return decide(&dst);
}

SEC("cgroup/connect4")
int refuse_connect4(struct bpf_sock_addr *ctx)
{
	return decide4(ctx);
}

SEC("cgroup/connect6")
int refuse_connect6(struct bpf_sock_addr *ctx)
{
	return decide6(ctx);
}

/* A datagram sent with an address (UDP `sendto` without `connect`) reaches its destination
 * without a connect: judged the same way, a refused one fails with EPERM. */
SEC("cgroup/sendmsg4")
int refuse_sendmsg4(struct bpf_sock_addr *ctx)
{
	return decide4(ctx);
}

SEC("cgroup/sendmsg6")
int refuse_sendmsg6(struct bpf_sock_addr *ctx)
{
	return decide6(ctx);
}
