//! Giving back what only the start of a long-running command used: the pages of the
//! executable that were read while starting, and the heap the start freed.
//!
//! Starting `palisade up` runs code that never runs again (argument parsing, migrations,
//! certificate generation, rule compilation, the eBPF load) and reads data only it reads (the
//! embedded eBPF objects, rules, migrations). Every page of it stays mapped, with the 64 KiB
//! the kernel maps around each page it faults in, until memory pressure takes it: on an idle
//! node 21 MB of resident memory was the executable (docs/benchmarks.md, "Idle memory").
//! Once the start has settled those mappings are dropped (`MADV_DONTNEED`): the pages stay in
//! the page cache, and what still runs is mapped again at its next use (a minor fault).
//!
//! Only mappings of the executable that are not writable and hold no anonymous page, resident
//! or swapped out, are dropped: their content is the file's, so dropping them changes nothing but residency. A
//! page written at start (the relocated read-only data, whose copies are anonymous) or a
//! breakpoint's copy of a code page would lose its content, so a mapping holding one is kept.

use std::time::Duration;

/// How long after the start the memory is given back: the server, the agent's join and the
/// sensor are running by then, and the first scheduled scans (60 s after start) are done.
pub const SETTLED_AFTER: Duration = Duration::from_secs(90);

/// Calls [`release`] on the current Tokio runtime once [`SETTLED_AFTER`] has passed.
pub fn release_when_settled() {
    tokio::spawn(async {
        tokio::time::sleep(SETTLED_AFTER).await;
        match release() {
            Ok(released) => tracing::debug!(
                executable_bytes = released.executable_bytes,
                mappings_kept = released.mappings_kept,
                "Gave back the memory only the start used."
            ),
            Err(error) => tracing::warn!(%error, "Cannot read this process's mappings."),
        }
    });
}

/// What [`release`] gave back, for the log.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Released {
    /// Resident bytes of the executable's mappings that were dropped.
    pub executable_bytes: u64,
    /// Mappings of the executable kept because they hold anonymous pages.
    pub mappings_kept: usize,
}

/// Drops the executable's clean resident pages and returns the heap's free pages to the
/// system. A mapping that cannot be dropped is left as it is; only reading the process's
/// own mappings can fail.
pub fn release() -> std::io::Result<Released> {
    let executable = std::fs::read_link("/proc/self/exe")?;
    let smaps = std::fs::read_to_string("/proc/self/smaps")?;
    let mut released = Released::default();
    for mapping in read_only_mappings(&smaps, &executable.to_string_lossy()) {
        match mapping {
            ExecutableMapping::Clean(mapping) => {
                // SAFETY: the range is a whole mapping of the executable's file that is not
                // writable and holds only the file's own pages (no anonymous copy), so
                // dropping it changes no content: the next access maps the same bytes again.
                let rc = unsafe {
                    libc::madvise(
                        mapping.start as *mut libc::c_void,
                        mapping.end - mapping.start,
                        libc::MADV_DONTNEED,
                    )
                };
                if rc == 0 {
                    released.executable_bytes += mapping.resident_bytes;
                }
            }
            ExecutableMapping::WithCopies => released.mappings_kept += 1,
        }
    }
    trim_heap();
    Ok(released)
}

/// Returns the free pages of glibc's arenas to the system (the start's freed buffers, the
/// closed eBPF object's copies).
fn trim_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only gives free memory of the arenas back to the system.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// A not-writable mapping of the executable.
#[derive(Debug, PartialEq, Eq)]
enum ExecutableMapping {
    /// Only the file's pages: [`release`] drops it.
    Clean(Mapping),
    /// Anonymous copies of some pages (written at start, or a breakpoint's): kept.
    WithCopies,
}

/// A mapping's range and resident size.
#[derive(Debug, PartialEq, Eq)]
struct Mapping {
    start: usize,
    end: usize,
    resident_bytes: u64,
}

/// The not-writable mappings of `path` in `smaps` (the format of `/proc/PID/smaps`).
fn read_only_mappings(smaps: &str, path: &str) -> Vec<ExecutableMapping> {
    let mut found = Vec::new();
    let mut current: Option<(Mapping, bool)> = None;
    for line in smaps.lines() {
        if let Some((start, end, writable, name)) = mapping_header(line) {
            found.extend(current.take().map(finished));
            if name == path && !writable {
                current = Some((
                    Mapping {
                        start,
                        end,
                        resident_bytes: 0,
                    },
                    false,
                ));
            }
        } else if let Some((mapping, anonymous)) = &mut current {
            if let Some(kib) = field_kib(line, "Rss:") {
                mapping.resident_bytes = kib * 1024;
            } else if let Some(kib) =
                field_kib(line, "Anonymous:").or_else(|| field_kib(line, "Swap:"))
            {
                // A copy swapped out is counted under `Swap:`, not `Anonymous:`, and
                // `MADV_DONTNEED` would free it too (the relocated data would read as the file's
                // unrelocated bytes).
                *anonymous |= kib > 0;
            }
        }
    }
    found.extend(current.map(finished));
    found
}

fn finished((mapping, anonymous): (Mapping, bool)) -> ExecutableMapping {
    if anonymous {
        ExecutableMapping::WithCopies
    } else {
        ExecutableMapping::Clean(mapping)
    }
}

/// A mapping's first line, `start-end perms offset dev inode [path]`: its range, whether it
/// is writable, and its path (empty when anonymous).
fn mapping_header(line: &str) -> Option<(usize, usize, bool, &str)> {
    let mut fields = line.splitn(6, ' ');
    let (start, end) = fields.next()?.split_once('-')?;
    let start = usize::from_str_radix(start, 16).ok()?;
    let end = usize::from_str_radix(end, 16).ok()?;
    let permissions = fields.next()?;
    if permissions.len() != 4 {
        return None;
    }
    let _offset = fields.next()?;
    let _device = fields.next()?;
    let _inode = fields.next()?;
    let path = fields.next().unwrap_or("").trim_start();
    Some((start, end, permissions.as_bytes()[1] == b'w', path))
}

/// The kB value of field `name` (`Rss:      1234 kB`).
fn field_kib(line: &str, name: &str) -> Option<u64> {
    line.strip_prefix(name)?
        .trim()
        .strip_suffix("kB")?
        .trim()
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMAPS: &str = "\
55d0c0000000-55d0c0764000 r--p 00000000 fd:01 1234 /usr/bin/palisade
Size:               7568 kB
Rss:                2850 kB
Anonymous:             0 kB
55d0c0764000-55d0c20e0000 r-xp 00764000 fd:01 1234 /usr/bin/palisade
Size:              26096 kB
Rss:               21300 kB
Anonymous:             0 kB
55d0c20e0000-55d0c21c0000 r--p 020e0000 fd:01 1234 /usr/bin/palisade
Size:                896 kB
Rss:                 896 kB
Anonymous:           896 kB
Swap:                  0 kB
55d0c21b0000-55d0c21c0000 r--p 021b0000 fd:01 1234 /usr/bin/palisade
Size:                 64 kB
Rss:                   0 kB
Anonymous:             0 kB
Swap:                 64 kB
SwapPss:              64 kB
55d0c21c0000-55d0c21d0000 rw-p 021c0000 fd:01 1234 /usr/bin/palisade
Size:                 64 kB
Rss:                  40 kB
Anonymous:            40 kB
55d0c4000000-55d0c4800000 rw-p 00000000 00:00 0                          [heap]
Size:               8192 kB
Rss:                6000 kB
Anonymous:          6000 kB
7f0000000000-7f0000200000 r-xp 00000000 fd:01 99 /usr/lib/x86_64-linux-gnu/libc.so.6
Size:               2048 kB
Rss:                1200 kB
Anonymous:             0 kB
7f0000400000-7f0000401000 r-xp 00000000 fd:01 1235 /usr/bin/palisade-other
Size:                  4 kB
Rss:                   4 kB
Anonymous:             0 kB
";

    #[test]
    fn only_the_executables_clean_read_only_mappings_are_dropped() {
        let found = read_only_mappings(SMAPS, "/usr/bin/palisade");
        assert_eq!(
            found,
            vec![
                ExecutableMapping::Clean(Mapping {
                    start: 0x55d0c0000000,
                    end: 0x55d0c0764000,
                    resident_bytes: 2850 * 1024,
                }),
                ExecutableMapping::Clean(Mapping {
                    start: 0x55d0c0764000,
                    end: 0x55d0c20e0000,
                    resident_bytes: 21300 * 1024,
                }),
                // The relocated read-only data: written at start, so its pages are copies.
                ExecutableMapping::WithCopies,
                // Copies swapped out: none resident, but dropping would free them too.
                ExecutableMapping::WithCopies,
            ]
        );
    }

    #[test]
    fn a_path_with_spaces_or_a_deleted_file_is_matched_whole() {
        let smaps = "\
1000-2000 r-xp 00000000 fd:01 7 /opt/my tools/palisade (deleted)
Rss:                   4 kB
Anonymous:             0 kB
";
        assert_eq!(
            read_only_mappings(smaps, "/opt/my tools/palisade (deleted)"),
            vec![ExecutableMapping::Clean(Mapping {
                start: 0x1000,
                end: 0x2000,
                resident_bytes: 4096,
            })]
        );
        assert!(read_only_mappings(smaps, "/opt/my tools/palisade").is_empty());
    }

    /// The resident bytes of this process's clean read-only mappings of its executable.
    fn clean_executable_resident_bytes() -> u64 {
        let executable = std::fs::read_link("/proc/self/exe").unwrap();
        let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
        read_only_mappings(&smaps, &executable.to_string_lossy())
            .iter()
            .map(|mapping| match mapping {
                ExecutableMapping::Clean(mapping) => mapping.resident_bytes,
                ExecutableMapping::WithCopies => 0,
            })
            .sum()
    }

    #[test]
    fn the_executables_pages_are_dropped_and_mapped_again_when_used() {
        let before = clean_executable_resident_bytes();
        let released = release().expect("own smaps readable");
        assert!(released.executable_bytes > 0, "{released:?}");
        // Only what ran since (this test, the harness's other threads) is mapped again.
        let after = clean_executable_resident_bytes();
        assert!(
            after < before,
            "{after} bytes resident after, {before} before"
        );
        // The relocated read-only data is kept: dropping it would undo the relocations.
        assert!(released.mappings_kept >= 1, "{released:?}");
    }
}
