//! Stopping a walk from another thread: [`Cancel`], and [`CancelOnDrop`] for the async code
//! that runs walks on blocking threads.

use std::sync::{Arc, OnceLock};
use std::time::Instant;

/// A request to stop a walk, shared by the code that walks and the code that decides to stop
/// it (an agent's scan task whose lease was lost). Clones share one request.
///
/// Walks look at it before every entry and every layer, and inside every read of a file's
/// content, which is why reads through a [`crate::FileVisit`] and through a layer's stream
/// return at most [`Cancel::MAX_READ_BYTES`] at a time: a walk stops within one such read of
/// the request, whatever the size of the file being read or skipped. Catalogers that work
/// through a whole file in memory look at it between bounded pieces too: nested archives
/// per read, an rpm sqlite database per package, the search of an executable for Go build
/// information per [`Cancel::MAX_READ_BYTES`], the Berkeley DB and NDB rpm databases per
/// page, slot and package. A stopped walk returns
/// [`crate::ErrorKind::Cancelled`]; what it built is dropped, and the temporary files of the
/// catalogers are removed as they always are.
#[derive(Debug, Clone, Default)]
pub struct Cancel {
    requested_at: Arc<OnceLock<Instant>>,
}

/// The error a read returns once the walk is cancelled (never `Interrupted`, which readers
/// retry).
#[derive(Debug, thiserror::Error)]
#[error("the walk was cancelled")]
struct CancelledRead;

impl Cancel {
    /// The most bytes one read of a file's content or of a layer's stream returns: about a
    /// millisecond's work from the page cache, so a request is seen promptly.
    pub const MAX_READ_BYTES: usize = 4 << 20;

    /// A request not made yet.
    pub fn new() -> Cancel {
        Cancel::default()
    }

    /// Asks every walk holding a clone to stop. The first request's time is kept.
    pub fn cancel(&self) {
        let _ = self.requested_at.set(Instant::now());
    }

    /// True once [`Cancel::cancel`] was called on any clone.
    pub fn is_cancelled(&self) -> bool {
        self.requested_at.get().is_some()
    }

    /// When the stop was first asked for, to measure how long a walk took to stop.
    pub fn requested_at(&self) -> Option<Instant> {
        self.requested_at.get().copied()
    }

    /// A guard that cancels when dropped: held by the future that waits for a walk on a
    /// blocking thread, so that dropping the future (an abandoned task) stops the walk.
    pub fn on_drop(&self) -> CancelOnDrop {
        CancelOnDrop(self.clone())
    }

    /// The first position of `needle` in `haystack` that `accept` takes, searched in pieces
    /// of [`Cancel::MAX_READ_BYTES`] with the request looked at before each: a search through
    /// a whole executable stops as promptly as a read does. `Err` once cancelled.
    pub(crate) fn find(
        &self,
        haystack: &[u8],
        needle: &[u8],
        accept: impl Fn(usize) -> bool,
    ) -> Result<Option<usize>, String> {
        let finder = memchr::memmem::Finder::new(needle);
        let mut start = 0;
        while start < haystack.len() {
            self.checkpoint()?;
            // The piece overlaps the next by one needle, so that no match is split.
            let end = haystack
                .len()
                .min(start + Cancel::MAX_READ_BYTES + needle.len().saturating_sub(1));
            let found = finder
                .find_iter(&haystack[start..end])
                .take_while(|at| *at < Cancel::MAX_READ_BYTES)
                .map(|at| start + at)
                .find(|at| accept(*at));
            if found.is_some() {
                return Ok(found);
            }
            start += Cancel::MAX_READ_BYTES;
        }
        Ok(None)
    }

    /// `Err("cancelled")` once cancelled: what catalogers return between bounded pieces of
    /// work on a file in memory (the caller then reports the walk as cancelled).
    pub(crate) fn checkpoint(&self) -> Result<(), String> {
        if self.is_cancelled() {
            return Err("cancelled".to_owned());
        }
        Ok(())
    }

    /// An error for the reader once cancelled.
    pub(crate) fn check(&self) -> std::io::Result<()> {
        if self.is_cancelled() {
            return Err(std::io::Error::other(CancelledRead));
        }
        Ok(())
    }
}

/// Cancels its [`Cancel`] when dropped (see [`Cancel::on_drop`]).
#[derive(Debug)]
pub struct CancelOnDrop(Cancel);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

/// A reader that fails once `cancel` is cancelled, in reads of at most
/// [`Cancel::MAX_READ_BYTES`]: for what catalogers decompress from memory (nested archives).
pub(crate) struct Checked<'a, R> {
    pub(crate) inner: R,
    pub(crate) cancel: &'a Cancel,
}

impl<R: std::io::Read> std::io::Read for Checked<'_, R> {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        self.cancel.check()?;
        self.inner.read(bounded(buffer))
    }
}

/// Shortens a read buffer to [`Cancel::MAX_READ_BYTES`].
pub(crate) fn bounded(buffer: &mut [u8]) -> &mut [u8] {
    let len = buffer.len().min(Cancel::MAX_READ_BYTES);
    &mut buffer[..len]
}

#[cfg(test)]
mod tests {
    use super::Cancel;

    #[test]
    fn a_search_finds_matches_across_pieces_and_stops_once_cancelled() {
        let needle = b"\xff Go buildinf:";
        let mut haystack = vec![0u8; 3 * Cancel::MAX_READ_BYTES];
        // A match split between the first two pieces, one rejected, one accepted.
        let split = Cancel::MAX_READ_BYTES - 5;
        haystack[split..split + needle.len()].copy_from_slice(needle);
        let later = 2 * Cancel::MAX_READ_BYTES + 32;
        haystack[later..later + needle.len()].copy_from_slice(needle);
        let cancel = Cancel::new();
        assert_eq!(cancel.find(&haystack, needle, |_| true), Ok(Some(split)));
        assert_eq!(
            cancel.find(&haystack, needle, |at| at % 16 == 0),
            Ok(Some(later))
        );
        assert_eq!(cancel.find(&haystack[..split], needle, |_| true), Ok(None));
        cancel.cancel();
        assert_eq!(
            cancel.find(&haystack, needle, |_| true),
            Err("cancelled".to_owned())
        );
    }

    #[test]
    fn clones_share_the_request_and_the_guard_cancels_on_drop() {
        let cancel = Cancel::new();
        let walk_side = cancel.clone();
        assert!(!walk_side.is_cancelled());
        assert!(walk_side.check().is_ok());
        drop(cancel.on_drop());
        assert!(walk_side.is_cancelled());
        let first = walk_side.requested_at();
        cancel.cancel();
        assert_eq!(walk_side.requested_at(), first);
        let error = walk_side.check().unwrap_err();
        assert_ne!(error.kind(), std::io::ErrorKind::Interrupted);
    }
}
