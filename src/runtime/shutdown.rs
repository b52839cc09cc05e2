//! SIGINT and SIGTERM as an awaitable event on every core.
//!
//! Each executor makes a Unix socket pair, registers one end with signal-hook (whose handler
//! only writes a byte to it: async-signal-safe) and awaits the other end. A signal therefore
//! wakes every core through its own `io_uring`, without a polling timer and without any state
//! shared between cores.
//!
//! glommio 0.9 offers no safe way to adopt an existing Unix socket, but its `TcpStream` adopts
//! any stream socket through `From<socket2::Socket>` and only ever calls `recv`/`send` and
//! `io_uring` polls on it, which behave the same on a Unix stream socket. The receiving end is
//! wrapped that way and used for nothing but one read.

use std::io;
use std::os::unix::net::UnixStream;

use futures_lite::AsyncReadExt;
use glommio::net::TcpStream;
use signal_hook::SigId;
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::low_level::pipe;

/// A registration of SIGINT and SIGTERM for one core.
pub struct ShutdownSignal {
    receiver: TcpStream,
    // signal-hook owns the write ends (one per signal) and closes each when its handler is
    // unregistered (in `Drop`), so a signal can never reach a reused descriptor.
    registrations: Vec<SigId>,
}

impl ShutdownSignal {
    /// Registers this core for SIGINT and SIGTERM. Must run on a glommio executor.
    ///
    /// # Errors
    /// Creating the socket pair or registering a handler failed.
    pub fn register() -> io::Result<ShutdownSignal> {
        let (receiver, sender) = UnixStream::pair()?;
        receiver.set_nonblocking(true)?;
        let receiver = TcpStream::from(socket2::Socket::from(receiver));
        let mut signal = ShutdownSignal { receiver, registrations: Vec::new() };
        signal.registrations.push(pipe::register(SIGINT, sender.try_clone()?)?);
        signal.registrations.push(pipe::register(SIGTERM, sender)?);
        Ok(signal)
    }

    /// Completes when SIGINT or SIGTERM arrives (or the socket pair fails, which is treated
    /// the same: the node could not be told to stop any more, so it stops).
    pub async fn wait(&mut self) {
        let mut byte = [0_u8; 1];
        let _ = self.receiver.read(&mut byte).await;
    }
}

impl Drop for ShutdownSignal {
    fn drop(&mut self) {
        for id in self.registrations.drain(..) {
            signal_hook::low_level::unregister(id);
        }
    }
}
