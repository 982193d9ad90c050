/* Layouts shared by the kernel programs and their Rust loaders.
 *
 * Every field has a fixed width and explicit padding so that the Rust side can decode ring
 * buffer records and encode map keys by offset, without mirroring C structs as `repr(C)`
 * types. The `_Static_assert`s pin the sizes the Rust side checks.
 */
#ifndef PALISADE_ENFORCE_H
#define PALISADE_ENFORCE_H

#define MAX_DENIED_BINARIES 4096
#define MAX_CONNECT_RULES 256
/* The declared size of the connect programs' report ring buffer; the loader shares its own
 * ring (`ConnectReportsRing`, this size by default) in its place. */
#define CONNECT_REPORTS_BYTES (1024 * 1024)
/* The declared number of keys of the connect programs' attempt counters; the loader shares
 * its own map (as many keys as its ring holds reports) in its place. */
#define CONNECT_KEYS 14563
#define FILENAME_LEN 256
#define COMM_LEN 16

/* Key of `denied_binaries`: the executable's inode and the kernel's encoding of its device
 * (MAJOR << 20 | MINOR, as in `super_block.s_dev`). */
struct binary_key {
	__u64 ino;
	__u32 dev;
	__u32 pad;
};
_Static_assert(sizeof(struct binary_key) == 16, "binary_key layout");

/* One record of the `kills` ring buffer. */
struct kill_event {
	__u64 ino;
	__u64 cgroup_id;
	__u32 dev;
	__u32 tgid;
	__u32 tid;
	__u32 uid;
	__s32 signal_result;
	__u32 pad;
	char comm[COMM_LEN];
	char filename[FILENAME_LEN];
};
_Static_assert(sizeof(struct kill_event) == 312, "kill_event layout");

#define CONNECT_ALLOW 1
#define CONNECT_ALERT 2
#define CONNECT_BLOCK 3

/* One connect rule. Addresses are in network byte order; an IPv4 address fills `addr[0]`.
 * Ports are in host byte order, inclusive. `protocol` 0 means any. */
struct connect_rule {
	__u32 addr[4];
	__u32 rule_id;
	__u16 port_first;
	__u16 port_last;
	__u8 family; /* 4 or 6 */
	__u8 prefix_len;
	__u8 protocol;
	__u8 action;
};
_Static_assert(sizeof(struct connect_rule) == 28, "connect_rule layout");

/* The rule table is double-buffered: the loader writes the inactive half, then flips
 * `active`, so a program never sees a half-written rule set. */
struct connect_config {
	__u32 active;
	__u32 count[2];
	/* Chosen by the loader per attached filter and copied into every report, so that one
	 * reader of a ring buffer shared by many filters knows which filter reported. */
	__u32 filter_tag;
};
_Static_assert(sizeof(struct connect_config) == 16, "connect_config layout");

/* One record of the `connect_reports` ring buffer: a connect an alert or block rule matched. */
struct connect_event {
	__u64 cgroup_id;
	__u32 addr[4];
	__u32 tgid;
	__u32 uid;
	__u32 rule_id;
	__u16 port;
	__u8 family;
	__u8 protocol;
	__u8 action;
	/* 1: the attempt is in `connect_attempts` (the report only announces its match);
	 * 0: the report is the attempt (the counters had no room for its key). */
	__u8 counted;
	__u8 pad[2];
	char comm[COMM_LEN];
	__u32 filter_tag;
};
_Static_assert(sizeof(struct connect_event) == 64, "connect_event layout");

/* What the connect programs count attempts by, in `connect_attempts`: one connect an alert
 * or block rule matched, without the process (the flow, the rule and the generation). */
struct connect_key {
	__u64 cgroup_id;
	__u32 addr[4];
	__u32 rule_id;
	__u32 filter_tag;
	__u16 port;
	__u8 family;
	__u8 protocol;
	__u8 action;
	__u8 generation;
	__u8 pad[2];
};
_Static_assert(sizeof(struct connect_key) == 40, "connect_key layout");

/* Indexes of `connect_generation`: the generation of `connect_attempts` keys the programs
 * count into (0 or 1, switched by the loader), and the programs counting into each one now. */
#define GENERATION_CURRENT 0
#define GENERATION_WRITERS 1

#endif
