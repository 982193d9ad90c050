//! Palisade's enforcement primitives and the firewall's enforcement backends.
//!
//! # What it provides
//!
//! - [`ExecKiller`]: an eBPF program on `tp_btf/sched_process_exec` sends `SIGKILL` to every
//!   process that executes a denied [`Binary`] (device + inode) before it runs one
//!   instruction, and reports each [`Kill`] through a ring buffer.
//! - [`ExecDenier`]: fanotify `FAN_OPEN_EXEC_PERM` events on a mount or file system; a denied
//!   binary's `execve` fails with `EPERM`. The module documents its bounded response path
//!   and its fail-open policy.
//! - [`ConnectFilter`]: `cgroup/connect4` and `cgroup/connect6` programs (and
//!   `cgroup/sendmsg4`/`sendmsg6`, for datagrams sent to an address without a connect) on a
//!   cgroup2 directory with an ordered list of [`NetRule`]s (prefix, port range, protocol;
//!   allow, alert or block), replaced live through maps; block makes `connect()` fail with
//!   `EPERM`, alert lets it pass. Either way the programs count the connect per
//!   [`ConnectMatch`] in a [`ConnectReports`] stream that any number of filters share,
//!   reporting a [`ConnectReport`] for a match's first connect only and counting the rest
//!   ([`ConnectCount`], taken per drain), so that a flood of identical connects loses
//!   nothing (one reader per node, on a thread of its own that empties the ring as reports
//!   arrive, into a bounded queue).
//! - [`Capabilities`]: which of these the running kernel accepts, and whether BPF-LSM is
//!   available (it is reported, never assumed).
//! - Firewall enforcement: [`workload_rules`] compiles the Palisade tier of a
//!   `palisade_firewall::State` into ordered [`NetRule`]s for one pod (in [`DefenseMode`]
//!   `Block` or `Alert`), which a [`WorkloadFirewall`] installs in a [`ConnectFilter`] on
//!   the workload's cgroup, in an [`NftFirewall`] (a Palisade-owned nftables table in its
//!   network namespace), or in both; they are replaced live, and
//!   [`WorkloadFirewall::open_connections_refused_by`] lists the connections already open
//!   that new rules would have refused; [`WorkloadFirewall::close_connections_refused_by`]
//!   closes them (socket diagnostics `SOCK_DESTROY`).
//!
//! # Design: embedded objects, layouts by offset
//!
//! The C programs in `src/bpf/` are compiled by clang at build time (CO-RE, against a
//! `vmlinux.h` generated from the build machine's BTF) and embedded in the library, so a
//! `palisade` binary carries its programs and needs no files at run time. Records and map
//! keys cross the boundary as fixed-width fields at documented offsets (`bpf/enforce.h`
//! pins their sizes with `_Static_assert`, the loaders check them), rather than as
//! `repr(C)` mirrors of C structs that could drift silently.
//!
//! # Example
//!
//! ```no_run
//! use std::time::Duration;
//! use palisade_enforce::{Binary, ExecKiller};
//!
//! let killer = ExecKiller::load()?;
//! killer.deny(Binary::path("/usr/local/bin/xmrig"))?;
//! for kill in killer.poll_kills(Duration::from_secs(1))? {
//!     println!("killed {} ({}) running {}", kill.pid, kill.comm, kill.filename);
//! }
//! # Ok::<(), palisade_enforce::Error>(())
//! ```
#![deny(missing_docs)]

mod binary;
mod bpf;
mod capability;
mod connect;
mod error;
mod exec_kill;
mod fanotify;
mod nft;
mod pins;
mod plan;
mod rule;
mod sockets;
mod stop_signal;
mod workload;

pub use crate::binary::{Binary, BinaryId};
pub use crate::capability::{Capabilities, Support};
pub use crate::connect::{
    ConnectCount, ConnectFilter, ConnectMatch, ConnectReport, ConnectReports, ConnectReportsDrain,
    ConnectReportsRing, Delivered, Delivery, MAX_CONNECT_RULES, TakenCounts, cgroup2_root,
};
pub use crate::error::{Error, ErrorKind};
pub use crate::exec_kill::{ExecKiller, Kill, MAX_DENIED_BINARIES};
pub use crate::fanotify::{ExecDenial, ExecDenier, MarkScope, ResponseStats};
pub use crate::nft::{MAX_NFT_RULES, NFT_TABLE, NftFirewall};
pub use crate::pins::{
    Adopted, DEFAULT_PIN_DIR, FirewallPins, PinnedWorkload, RemovedStream, ResetSummary,
    WorkloadIdentity, WorkloadPin, reset,
};
pub use crate::plan::{DefenseMode, WorkloadRules, workload_rules};
pub use crate::rule::{NetRule, deciding_rule};
pub use crate::sockets::{
    Closing, OpenConnection, WouldRefuse, close_tcp_connections_in_netns,
    close_tcp_connections_of_cgroup, open_tcp_connections_in_netns, open_tcp_connections_of_cgroup,
    would_refuse,
};
pub use crate::workload::{
    ConnectionsOf, RefusedClosing, WorkloadFirewall, open_connections_refused_at,
};
