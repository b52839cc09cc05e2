//! The Prometheus endpoint (`--metrics-listen`): `GET /metrics` answers the text exposition of
//! [`NodeStatus::render_prometheus`]; anything else gets 404.
//!
//! It runs on one plain thread with blocking sockets, not on the cores' executors and not on
//! a second async runtime: a scrape every few seconds is not worth a task on a core that
//! serves clients, and the thread sleeps in `accept` between scrapes. Requests are read up to
//! [`METRICS_REQUEST_BYTES_MAX`] with a timeout, one at a time; the thread notices the node
//! stopping within [`METRICS_POLL_MILLIS`].

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use tracing::{debug, info};

use super::node::Router;
use super::status::NodeStatus;

/// Most bytes of an HTTP request the endpoint reads (a scrape's request line and headers).
pub const METRICS_REQUEST_BYTES_MAX: usize = 8 * 1024;

/// How often the endpoint checks whether the node is stopping, in milliseconds.
pub const METRICS_POLL_MILLIS: u64 = 100;

/// How long one client may take to send its request or read the answer, in milliseconds.
pub const METRICS_CLIENT_TIMEOUT_MILLIS: u64 = 2_000;

/// The running endpoint: dropping it stops the thread (within [`METRICS_POLL_MILLIS`]) and
/// waits for it, so the port is free again when `runtime::run` returns, however it returns.
#[derive(Debug)]
pub struct Endpoint {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Binds `address` and serves scrapes on a thread until `router` stops or the [`Endpoint`]
/// is dropped.
///
/// # Errors
/// The address could not be bound.
pub fn start<C, R>(address: SocketAddr, router: Arc<Router<C, R>>) -> std::io::Result<Endpoint>
where
    C: Send + 'static,
    R: Send + 'static,
{
    let listener = TcpListener::bind(address)?;
    listener.set_nonblocking(true)?;
    let bound = listener.local_addr()?;
    info!(address = %bound, "metrics endpoint ready (GET /metrics)");
    let stop = Arc::new(AtomicBool::new(false));
    let stopped = Arc::clone(&stop);
    let thread =
        std::thread::Builder::new().name("klein-metrics".to_string()).spawn(move || {
            while !router.is_stopping() && !stopped.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        if let Err(error) = answer(stream, router.status()) {
                            debug!(%error, "metrics request failed");
                        }
                    }
                    Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(METRICS_POLL_MILLIS));
                    }
                    Err(error) => {
                        debug!(%error, "metrics accept failed");
                        std::thread::sleep(Duration::from_millis(METRICS_POLL_MILLIS));
                    }
                }
            }
        })?;
    Ok(Endpoint { stop, thread: Some(thread) })
}

fn answer(mut stream: TcpStream, status: &NodeStatus) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    let timeout = Some(Duration::from_millis(METRICS_CLIENT_TIMEOUT_MILLIS));
    stream.set_read_timeout(timeout)?;
    stream.set_write_timeout(timeout)?;
    let mut request = Vec::new();
    let mut buffer = [0_u8; 1024];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
        let read = stream.read(&mut buffer)?;
        if read == 0 {
            break;
        }
        request.extend_from_slice(&buffer[..read]);
        if request.len() > METRICS_REQUEST_BYTES_MAX {
            return respond(&mut stream, "431 Request Header Fields Too Large", "text/plain", "");
        }
    }
    let line = request.split(|b| *b == b'\n').next().unwrap_or_default();
    let mut parts = line.split(|b| *b == b' ');
    let (method, path) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
    if method != b"GET" {
        return respond(&mut stream, "405 Method Not Allowed", "text/plain", "GET only\n");
    }
    if path != b"/metrics" {
        return respond(&mut stream, "404 Not Found", "text/plain", "see /metrics\n");
    }
    let body = status.render_prometheus();
    respond(&mut stream, "200 OK", "text/plain; version=0.0.4; charset=utf-8", &body)
}

fn respond(stream: &mut TcpStream, status: &str, kind: &str, body: &str) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(body.as_bytes())?;
    stream.flush()
}
