//! Cancelled walks stop: between files, between layer entries, and inside the read of a huge
//! file (one the callback reads, and one the tar reader skips), well within a second.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use palisade_inventory::{Cancel, Error, Image, Limits, RootFs, Target, inventory_cancellable};

use crate::support::{self, file};

/// Size of the sparse files: far more than any walk could read in the test's time.
const HUGE_BYTES: u64 = 256 << 30;
/// How long a walk may take to stop once cancelled.
const STOP_WITHIN: Duration = Duration::from_secs(1);

fn assert_cancelled(result: Result<impl std::fmt::Debug, Error>) {
    let error = result.expect_err("the walk ran to its end");
    assert!(error.is_cancelled(), "{error:?}");
    assert!(error.to_string().contains("cancelled"), "{error}");
}

#[test]
fn a_root_walk_cancelled_after_n_files_visits_no_more() {
    let dir = tempfile::tempdir().unwrap();
    for index in 0..200 {
        std::fs::write(dir.path().join(format!("file-{index}")), b"x").unwrap();
    }
    let cancel = Cancel::new();
    let mut visited = 0;
    let result = RootFs::new(dir.path()).for_each_file(&Limits::default(), &cancel, |_| {
        visited += 1;
        if visited == 10 {
            cancel.cancel();
        }
        Ok(())
    });
    assert_cancelled(result);
    assert_eq!(visited, 10);
}

#[test]
fn an_image_walk_cancelled_after_n_entries_visits_no_more_and_reads_no_more_layers() {
    let temp = tempfile::tempdir().unwrap();
    let names: Vec<String> = (0..100).map(|index| format!("etc/file-{index}")).collect();
    let entries: Vec<_> = names.iter().map(|name| file(name, b"content")).collect();
    let layer = support::tar(&entries);
    let layout = temp.path().join("oci");
    support::oci_layout(
        &layout,
        &[
            (support::gzip(&layer), layer.clone()),
            (support::gzip(&layer), layer),
        ],
    );
    let image = Image::open(&layout).unwrap();
    let cancel = Cancel::new();
    let mut visited = Vec::new();
    let result = image.for_each_file(&Limits::default(), &cancel, |visit| {
        visited.push((visit.layer_index, visit.path.to_owned()));
        if visited.len() == 5 {
            cancel.cancel();
        }
        Ok(())
    });
    assert_cancelled(result);
    assert_eq!(visited.len(), 5, "{visited:?}");
    assert!(visited.iter().all(|(layer, _)| *layer == 0), "{visited:?}");
}

/// Runs `walk` with a [`Cancel`] that another thread cancels 200 ms later, and checks that
/// the walk stopped with `Cancelled` within [`STOP_WITHIN`] of the request.
fn walk_cancelled_after_200_ms<T: std::fmt::Debug>(walk: impl FnOnce(&Cancel) -> Result<T, Error>) {
    let cancel = Cancel::new();
    let canceller = {
        let cancel = cancel.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(200));
            cancel.cancel();
        })
    };
    let result = walk(&cancel);
    let stopped = cancel
        .requested_at()
        .expect("the walk returned before it was cancelled")
        .elapsed();
    canceller.join().unwrap();
    assert_cancelled(result);
    assert!(
        stopped < STOP_WITHIN,
        "stopped {stopped:?} after the request"
    );
}

#[test]
fn a_root_walk_stops_inside_the_read_of_a_huge_file() {
    let dir = tempfile::tempdir().unwrap();
    let huge = std::fs::File::create(dir.path().join("huge")).unwrap();
    huge.set_len(HUGE_BYTES).unwrap();
    let mut copied = 0;
    walk_cancelled_after_200_ms(|cancel| {
        RootFs::new(dir.path()).for_each_file(&Limits::default(), cancel, |visit| {
            copied += std::io::copy(visit, &mut std::io::sink())?;
            Ok(())
        })
    });
    assert!(copied < HUGE_BYTES);
}

#[test]
fn an_image_walk_stops_while_the_tar_reader_skips_a_huge_entry_nobody_reads() {
    let temp = tempfile::tempdir().unwrap();
    let layout = temp.path().join("oci");
    let placeholder = support::tar(&[file("placeholder", b"x")]);
    support::oci_layout(&layout, &[(placeholder.clone(), placeholder.clone())]);
    // The layer blob becomes a sparse, uncompressed tar with one huge file (the reader does
    // not check blob digests; the walk must not need to read the blob to its end to stop).
    let blob = std::fs::read_dir(layout.join("blobs/sha256"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .find(|path| std::fs::read(path).unwrap() == placeholder)
        .unwrap();
    write_sparse_layer(&blob, "huge", HUGE_BYTES);

    let image = Image::open(&layout).unwrap();
    let mut visited = Vec::new();
    walk_cancelled_after_200_ms(|cancel| {
        image.for_each_file(&Limits::default(), cancel, |visit| {
            visited.push(visit.path.to_owned());
            Ok(())
        })
    });
    assert_eq!(visited, ["huge"]);
}

#[test]
fn a_cancelled_inventory_stops_and_reports_nothing() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("var/lib/dpkg")).unwrap();
    std::fs::write(
        dir.path().join("var/lib/dpkg/status"),
        "Package: zlib1g\nStatus: install ok installed\nVersion: 1:1.2.13.dfsg-1\n\n",
    )
    .unwrap();
    let target = Target::RootFs(RootFs::new(dir.path()));
    let limits = Limits::default();

    let cancel = Cancel::new();
    let mut sizes = Vec::new();
    let result = inventory_cancellable(&target, &limits, &cancel, &mut |size| {
        sizes.push(size);
        cancel.cancel();
    });
    assert_cancelled(result);
    assert_eq!(sizes.len(), 1, "{sizes:?}");

    // Not cancelled, the same inventory completes.
    let complete = inventory_cancellable(&target, &limits, &Cancel::new(), &mut |_| {}).unwrap();
    assert_eq!(complete.packages.len(), 1, "{:?}", complete.packages);
}

/// Writes an uncompressed layer holding one regular file of `size` zero bytes as a sparse
/// file (GNU base-256 size field, which tar readers accept for sizes over 8 GiB).
fn write_sparse_layer(path: &Path, name: &str, size: u64) {
    let mut header = tar::Header::new_gnu();
    header.set_path(name).unwrap();
    header.set_size(size);
    header.set_mode(0o644);
    header.set_entry_type(tar::EntryType::Regular);
    header.set_cksum();
    let mut layer = std::fs::File::create(path).unwrap();
    layer.write_all(header.as_bytes()).unwrap();
    let end = 512 + size.div_ceil(512) * 512 + 1024;
    layer.set_len(end).unwrap();
}
