//! Shared fixtures for black-box tests: start a real `klein` process and find its address.

#![allow(dead_code)] // Each test binary uses a different subset.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long a test waits for a node to start or stop.
pub const PROCESS_TIMEOUT: Duration = Duration::from_secs(20);

/// The `klein` binary under test.
pub fn klein() -> Command {
    Command::new(env!("CARGO_BIN_EXE_klein"))
}

/// A `klein server` process on a loopback port the kernel picked, with a temporary data
/// directory. Killed on drop if still running.
pub struct Server {
    child: Child,
    /// The RESP address the node reported.
    pub address: SocketAddr,
    /// Everything the node logged up to the "ready" line.
    pub startup_log: Vec<String>,
    log_lines: mpsc::Receiver<String>,
    /// The temporary data directory a `start` made (removed with the server).
    data_dir_kept: Option<tempfile::TempDir>,
}

impl Server {
    /// Starts a node with `extra` flags after `--listen 127.0.0.1:0 --data-dir <tmp>`.
    pub fn start(extra: &[&str]) -> Server {
        let data_dir = tempfile::tempdir().expect("temporary data directory");
        let mut server = Server::start_in(data_dir.path(), extra);
        server.data_dir_kept = Some(data_dir);
        server
    }

    /// Starts a node on the data directory `dir` (kept after the node stops).
    pub fn start_in(dir: &std::path::Path, extra: &[&str]) -> Server {
        let mut child = klein()
            .args(["server", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn klein server");
        let stderr = child.stderr.take().expect("piped stderr");
        let (sender, log_lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = Instant::now() + PROCESS_TIMEOUT;
        let mut startup_log = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let Ok(line) = log_lines.recv_timeout(left) else {
                let _ = child.kill();
                panic!("klein did not report ready; log so far:\n{}", startup_log.join("\n"));
            };
            let ready = line.contains("RESP listener ready");
            startup_log.push(line);
            if ready {
                break;
            }
        }
        let ready_line = startup_log.last().expect("ready line");
        let address = ready_line
            .split_whitespace()
            .find_map(|field| field.strip_prefix("address="))
            .and_then(|text| text.parse().ok())
            .unwrap_or_else(|| panic!("no address in {ready_line:?}"));
        Server { child, address, startup_log, log_lines, data_dir_kept: None }
    }

    /// The port of the RESP listener.
    pub fn port(&self) -> u16 {
        self.address.port()
    }

    /// Sends `signal` to the node.
    pub fn signal(&self, signal: rustix::process::Signal) {
        let pid = rustix::process::Pid::from_raw(self.child.id().cast_signed()).expect("child pid");
        rustix::process::kill_process(pid, signal).expect("signal the node");
    }

    /// Kills the node with SIGKILL (no shutdown at all) and waits for it.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Waits for the node to exit; returns its status and the log lines after start-up.
    pub fn wait(mut self) -> (ExitStatus, Vec<String>) {
        let deadline = Instant::now() + PROCESS_TIMEOUT;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("wait for klein") {
                break status;
            }
            assert!(Instant::now() < deadline, "klein did not exit");
            std::thread::sleep(Duration::from_millis(20));
        };
        let lines = self.log_lines.try_iter().collect();
        (status, lines)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
