//! Stopping a worker thread that sleeps in `poll`: an eventfd it polls beside its source.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// An eventfd that tells a worker thread to stop. The worker waits with
/// [`StopSignal::wait_readable`]; its owner calls [`StopSignal::raise`] and joins it.
pub(crate) struct StopSignal(OwnedFd);

/// Why [`StopSignal::wait_readable`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wake {
    /// The descriptor has something to read.
    Readable,
    /// The signal was raised.
    Stopped,
}

impl StopSignal {
    /// A new, lowered signal.
    pub(crate) fn new() -> io::Result<StopSignal> {
        // SAFETY: eventfd takes an initial value and flags and returns a new descriptor.
        let raw = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a new descriptor that nothing else owns.
        Ok(StopSignal(unsafe { OwnedFd::from_raw_fd(raw) }))
    }

    /// The same signal, for the worker thread to own.
    pub(crate) fn try_clone(&self) -> io::Result<StopSignal> {
        self.0.try_clone().map(StopSignal)
    }

    /// Raises the signal: every waiter returns [`Wake::Stopped`], now and later.
    pub(crate) fn raise(&self) {
        let one = 1u64.to_ne_bytes();
        // SAFETY: writes 8 bytes from a live buffer to our eventfd.
        unsafe { libc::write(self.0.as_raw_fd(), one.as_ptr().cast(), one.len()) };
    }

    /// Sleeps until `source` is readable or the signal is raised (the signal wins when both
    /// are). Interrupted waits are resumed.
    pub(crate) fn wait_readable(&self, source: BorrowedFd<'_>) -> io::Result<Wake> {
        loop {
            let mut poll_fds = [source.as_raw_fd(), self.0.as_raw_fd()].map(|fd| libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            });
            // SAFETY: two valid pollfd entries.
            let ready = unsafe { libc::poll(poll_fds.as_mut_ptr(), 2, -1) };
            if ready < 0 {
                let error = io::Error::last_os_error();
                if error.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(error);
            }
            if poll_fds[1].revents != 0 {
                return Ok(Wake::Stopped);
            }
            return Ok(Wake::Readable);
        }
    }
}
