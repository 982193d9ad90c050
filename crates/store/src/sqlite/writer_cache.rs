//! How much page cache the writer connection gets, from the memory the process may use.
//!
//! A batch of new findings dirties pages all over the randomly keyed indexes (before
//! migration 0068, a page per asset in `findings_by_asset`: about 70 MB of pages once a
//! million alerts were stored); with the readers' 64 MiB the writer re-read the
//! pages it had evicted in every batch (SQL replay at 1,000,000 alerts: 62 -> 44 us per new
//! alert with 256 MiB, docs/benchmarks.md). But a cache fixed at 256 MiB could take a small
//! node's or a memory-limited container's memory: it fills as the writer touches pages, and
//! the writer touches every page of a table a migration rewrites, besides ingest's. So the
//! writer gets an eighth of the memory the process may use (the lowest of the machine's
//! `MemTotal` and the limits set on its memory cgroup and those enclosing it, v2's
//! `memory.max` or v1's `memory.limit_in_bytes`), at most 256 MiB and at least the readers'
//! 64 MiB; 64 MiB where none can be read.

use std::path::{Path, PathBuf};

use palisade_model::proc_cgroup::{unified_cgroup, v1_cgroup};

const MIB: u64 = 1 << 20;

/// The readers' page cache, which the writer gets at least.
pub(super) const READER_CACHE_BYTES: u64 = 64 * MIB;

/// The writer's page cache where memory allows.
const WRITER_CACHE_MAX_BYTES: u64 = 256 * MIB;

/// The writer's `PRAGMA cache_size` (negative: KiB) on this machine.
pub(super) fn writer_cache_size() -> String {
    pragma_kib(writer_cache_bytes(memory_limit()))
}

/// The `PRAGMA cache_size` value for a cache of `bytes` (negative: KiB).
pub(super) fn pragma_kib(bytes: u64) -> String {
    format!("-{}", bytes / 1024)
}

/// The writer's page cache for a process that may use `limit` bytes (`None`: unknown).
fn writer_cache_bytes(limit: Option<u64>) -> u64 {
    limit.map_or(READER_CACHE_BYTES, |limit| {
        (limit / 8).clamp(READER_CACHE_BYTES, WRITER_CACHE_MAX_BYTES)
    })
}

/// The memory this process may use: the lowest of the machine's and of the limits set on its
/// memory cgroup and the cgroups enclosing it (v2's `memory.max`, else v1's
/// `memory.limit_in_bytes`).
fn memory_limit() -> Option<u64> {
    let machine = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|meminfo| mem_total(&meminfo));
    let cgroup = std::fs::read_to_string("/proc/self/cgroup")
        .ok()
        .and_then(|membership| {
            let v2 = unified_cgroup(&membership)
                .and_then(|path| lowest_limit(Path::new("/sys/fs/cgroup"), path, "memory.max"));
            v2.or_else(|| {
                v1_cgroup(&membership, "memory").and_then(|path| {
                    lowest_limit(
                        Path::new("/sys/fs/cgroup/memory"),
                        path,
                        "memory.limit_in_bytes",
                    )
                })
            })
        });
    [machine, cgroup].into_iter().flatten().min()
}

/// `MemTotal` of `/proc/meminfo`, in bytes.
fn mem_total(meminfo: &str) -> Option<u64> {
    let line = meminfo
        .lines()
        .find_map(|line| line.strip_prefix("MemTotal:"))?;
    let kib = line.trim().strip_suffix("kB")?.trim().parse::<u64>().ok()?;
    kib.checked_mul(1024)
}

/// The lowest limit (`file`) set on the cgroup at `path` under `root` and the cgroups
/// enclosing it (a parent's limit binds its children).
fn lowest_limit(root: &Path, path: &Path, file: &str) -> Option<u64> {
    let mut cgroup: PathBuf = root.join(path);
    let mut lowest: Option<u64> = None;
    loop {
        if let Some(limit) = read_limit(&cgroup.join(file)) {
            lowest = Some(lowest.map_or(limit, |lowest| lowest.min(limit)));
        }
        if cgroup == root || !cgroup.pop() || !cgroup.starts_with(root) {
            return lowest;
        }
    }
}

/// A limit file's value in bytes; `None` if absent, unreadable or unlimited (v2's `max`; v1's
/// unlimited is a number near 2^63, which the machine's memory undercuts).
fn read_limit(file: &Path) -> Option<u64> {
    std::fs::read_to_string(file)
        .ok()
        .and_then(|text| text.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::{MIB, lowest_limit, mem_total, memory_limit, pragma_kib, writer_cache_bytes};

    /// Issue 2 (review): an eighth of the memory the process may use, between the readers'
    /// 64 MiB and 256 MiB; 64 MiB when unknown.
    #[test]
    fn the_writer_cache_is_an_eighth_of_the_memory_within_bounds() {
        const GIB: u64 = 1024 * MIB;
        assert_eq!(writer_cache_bytes(Some(GIB)), 128 * MIB);
        assert_eq!(
            writer_cache_bytes(Some(GIB / 2)),
            64 * MIB,
            "at least 64 MiB"
        );
        assert_eq!(
            writer_cache_bytes(Some(16 * GIB)),
            256 * MIB,
            "at most 256 MiB"
        );
        assert_eq!(writer_cache_bytes(Some(0)), 64 * MIB);
        assert_eq!(writer_cache_bytes(None), 64 * MIB);
        assert_eq!(pragma_kib(256 * MIB), "-262144");
    }

    /// `MemTotal` in bytes; `None` for a value that is not a number of kB. (The cgroup
    /// listing's parser is tested in `palisade_model::proc_cgroup`.)
    #[test]
    fn meminfo_s_total_is_read() {
        let meminfo = "MemFree:         1000 kB\nMemTotal:        2048000 kB\n";
        assert_eq!(mem_total(meminfo), Some(2_048_000 * 1024));
        assert_eq!(mem_total("MemTotal: lots\n"), None);
    }

    /// The lowest limit set on the cgroup or an enclosing one counts; `max` is no limit.
    #[test]
    fn the_lowest_enclosing_cgroup_limit_binds() {
        let root = tempfile::tempdir().unwrap();
        let leaf = root.path().join("a/b");
        std::fs::create_dir_all(&leaf).unwrap();
        std::fs::write(root.path().join("memory.max"), "max\n").unwrap();
        std::fs::write(root.path().join("a/memory.max"), "1073741824\n").unwrap();
        std::fs::write(leaf.join("memory.max"), "max\n").unwrap();
        assert_eq!(
            lowest_limit(root.path(), Path::new("a/b"), "memory.max"),
            Some(1 << 30)
        );
        std::fs::write(leaf.join("memory.max"), "536870912\n").unwrap();
        assert_eq!(
            lowest_limit(root.path(), Path::new("a/b"), "memory.max"),
            Some(1 << 29)
        );
        assert_eq!(lowest_limit(root.path(), Path::new(""), "memory.max"), None);
    }

    /// On Linux the machine's memory at least is read, and no limit read exceeds it.
    #[cfg(target_os = "linux")]
    #[test]
    fn this_machine_s_memory_limit_is_read() {
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap();
        let machine = mem_total(&meminfo).unwrap();
        let limit = memory_limit().unwrap();
        assert!(limit > 0 && limit <= machine, "{limit} of {machine}");
    }
}
