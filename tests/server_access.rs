//! Passwords, users and connection limits of a real `klein server` process: `--requirepass`,
//! `--user`, `AUTH` and `HELLO ... AUTH` with Redis's texts, the unauthenticated request cap,
//! the idle `timeout` (flag and `CONFIG SET`) and a client that does not read its replies.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::Server;
use redis::{Commands, Connection};

fn connect(url: &str) -> redis::RedisResult<Connection> {
    let client = redis::Client::open(url)?;
    let connection = client.get_connection_with_timeout(Duration::from_secs(10))?;
    connection.set_read_timeout(Some(Duration::from_secs(10)))?;
    Ok(connection)
}

/// Writes `request` and reads what arrives until `expected.len()` bytes or the end.
fn exchange(stream: &mut TcpStream, request: &[u8], expected: &str) {
    stream.write_all(request).unwrap();
    let mut received = Vec::new();
    let mut buffer = [0; 4096];
    while received.len() < expected.len() {
        match stream.read(&mut buffer) {
            Ok(0) => break,
            Ok(read) => received.extend_from_slice(&buffer[..read]),
            Err(error) => panic!("{error} after {:?}", String::from_utf8_lossy(&received)),
        }
    }
    assert_eq!(String::from_utf8_lossy(&received), expected);
}

/// Whether the server closes `stream` within `within` (reads until end of stream).
fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    stream.set_read_timeout(Some(within)).unwrap();
    let deadline = Instant::now() + within;
    let mut buffer = vec![0; 64 * 1024];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(error) if error.kind() == ErrorKind::ConnectionReset => return true,
            Err(_) => return false,
        }
        if Instant::now() > deadline {
            return false;
        }
    }
}

#[test]
fn requirepass_and_users_gate_every_command_until_auth() {
    let server = Server::start(&["--requirepass", "s3cret", "--user", "alice:wonder"]);
    let address = server.address;
    // Without a password: NOAUTH for data and server commands alike.
    let mut anonymous = connect(&format!("redis://{address}/")).unwrap();
    let refused: redis::RedisResult<Option<String>> = anonymous.get("k");
    let error = refused.unwrap_err();
    assert_eq!(error.code(), Some("NOAUTH"), "{error}");
    assert_eq!(error.detail(), Some("Authentication required."));
    let wrong: redis::RedisResult<()> = redis::cmd("AUTH").arg("nope").query(&mut anonymous);
    let error = wrong.unwrap_err();
    assert_eq!(error.code(), Some("WRONGPASS"), "{error}");
    assert_eq!(error.detail(), Some("invalid username-password pair or user is disabled."));
    let () = redis::cmd("AUTH").arg("s3cret").query(&mut anonymous).unwrap();
    let () = anonymous.set("k", "v").unwrap();
    // The client's own AUTH (RESP2) and HELLO 3 AUTH (RESP3), for the default and a named user.
    let mut default = connect(&format!("redis://:s3cret@{address}/")).unwrap();
    let value: String = default.get("k").unwrap();
    assert_eq!(value, "v");
    let mut alice = connect(&format!("redis://alice:wonder@{address}/?protocol=resp3")).unwrap();
    let value: String = alice.get("k").unwrap();
    assert_eq!(value, "v");
    assert!(connect(&format!("redis://alice:s3cret@{address}/")).is_err());
    let password: Vec<String> =
        redis::cmd("CONFIG").arg("GET").arg("requirepass").query(&mut default).unwrap();
    assert_eq!(password, vec!["requirepass", "s3cret"]);
    // Raw: exact texts, and RESET forgets the authentication.
    let mut stream = TcpStream::connect(address).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    exchange(
        &mut stream,
        b"PING\r\nAUTH alice wonder\r\nPING\r\nRESET\r\nGET k\r\n",
        "-NOAUTH Authentication required.\r\n+OK\r\n+PONG\r\n+RESET\r\n\
         -NOAUTH Authentication required.\r\n",
    );
    // Before authentication only small requests are read.
    let mut big = b"*2\r\n$4\r\nAUTH\r\n$1000000\r\n".to_vec();
    big.resize(big.len() + 100_000, b'x');
    let mut stream = TcpStream::connect(address).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    // The server may close while the client is still writing; what it said first counts.
    let _ = stream.write_all(&big);
    let mut received = Vec::new();
    let _ = stream.read_to_end(&mut received);
    assert_eq!(
        String::from_utf8_lossy(&received),
        "-ERR Protocol error: unauthenticated request too large\r\n"
    );
}

#[test]
fn idle_clients_are_closed_after_the_timeout_which_config_set_changes() {
    let server = Server::start(&["--timeout", "1"]);
    let mut idle = TcpStream::connect(server.address).unwrap();
    idle.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    exchange(&mut idle, b"PING\r\n", "+PONG\r\n");
    let started = Instant::now();
    assert!(closed_within(&mut idle, Duration::from_secs(10)), "idle client not closed");
    assert!(started.elapsed() >= Duration::from_millis(900), "{:?}", started.elapsed());
    // CONFIG SET timeout 0 turns it off (for reads that start after it).
    let mut admin = connect(&format!("redis://{}/", server.address)).unwrap();
    let timeout: Vec<String> =
        redis::cmd("CONFIG").arg("GET").arg("timeout").query(&mut admin).unwrap();
    assert_eq!(timeout, vec!["timeout", "1"]);
    let () = redis::cmd("CONFIG").arg("SET").arg("timeout").arg("0").query(&mut admin).unwrap();
    let mut stream = TcpStream::connect(server.address).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    exchange(&mut stream, b"PING\r\n", "+PONG\r\n");
    assert!(!closed_within(&mut stream, Duration::from_millis(2500)), "closed without a timeout");
    exchange(&mut stream, b"PING\r\n", "+PONG\r\n");
}

#[test]
fn a_client_that_does_not_read_its_replies_is_closed() {
    let server = Server::start(&[]);
    let mut writer = connect(&format!("redis://{}/", server.address)).unwrap();
    let () = writer.set("big", "x".repeat(1024 * 1024)).unwrap();
    let mut stream = TcpStream::connect(server.address).unwrap();
    stream.set_write_timeout(Some(Duration::from_secs(30))).unwrap();
    // Ask for far more than the sockets' buffers hold, and do not read for longer than the
    // server waits for a stalled write (`CONNECTION_REPLY_STALL_MILLIS_MAX`, 10 s).
    for _ in 0..64 {
        if stream.write_all(b"GET big\r\n").is_err() {
            break;
        }
    }
    std::thread::sleep(Duration::from_secs(13));
    // What the kernel buffered is still delivered, then the end of the stream.
    assert!(closed_within(&mut stream, Duration::from_secs(30)), "a non-reading client stays");
    let (status, lines) = {
        drop(writer);
        server.signal(rustix::process::Signal::TERM);
        server.wait()
    };
    assert!(status.success(), "{status}");
    assert!(
        lines.iter().any(|line| line.contains("closing a client that does not read its replies")),
        "{lines:?}"
    );
}
