//! The RESP front end over a real socket: a `klein server` process answers the handshake that
//! Redis clients send (PING, ECHO, HELLO 2|3, QUIT), pipelined and inline requests, Redis's
//! exact error texts, and stops in order (exit 0) on SIGTERM and SIGINT.
//!
//! Clients: raw TCP (exact bytes), the Rust `redis` crate in RESP2 and RESP3, and `redis-cli`
//! (installed by `.ci/run`; these tests fail if it is missing, they do not skip).

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use common::Server;
use rustix::process::Signal;

/// Sends `request` and reads until the reply has `expected_len` bytes (or the peer closes).
fn exchange(stream: &mut TcpStream, request: &[u8], expected_len: usize) -> String {
    stream.write_all(request).unwrap();
    let mut reply = Vec::new();
    let mut buffer = [0_u8; 4096];
    while reply.len() < expected_len {
        let read = stream.read(&mut buffer).unwrap();
        if read == 0 {
            break;
        }
        reply.extend_from_slice(&buffer[..read]);
    }
    String::from_utf8(reply).unwrap()
}

fn connect(server: &Server) -> TcpStream {
    let stream = TcpStream::connect(server.address).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    stream
}

#[test]
fn raw_socket_gets_exact_replies_to_pipelined_and_inline_requests() {
    let server = Server::start(&[]);
    let mut stream = connect(&server);
    let expected = "+PONG\r\n$5\r\nhello\r\n+PONG\r\n$1\r\nx\r\n\
                    -ERR unknown command 'NOPE', with args beginning with: 'a' 'b' \r\n";
    let request = b"*1\r\n$4\r\nPING\r\n*2\r\n$4\r\nECHO\r\n$5\r\nhello\r\nPING\r\nping x\r\n\
                    NOPE a b\r\n";
    assert_eq!(exchange(&mut stream, request, expected.len()), expected);

    // A request split across writes is answered once it is complete.
    stream.write_all(b"*2\r\n$4\r\nEC").unwrap();
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(exchange(&mut stream, b"HO\r\n$2\r\nhi\r\n", 8), "$2\r\nhi\r\n");

    // QUIT answers +OK and closes; nothing after it runs.
    assert_eq!(exchange(&mut stream, b"QUIT\r\nPING\r\n", usize::MAX), "+OK\r\n");
}

#[test]
fn protocol_error_is_reported_and_closes_the_connection() {
    let server = Server::start(&[]);
    let mut stream = connect(&server);
    let reply = exchange(&mut stream, b"*1\r\n$4\r\nPING\r\n*x\r\n", usize::MAX);
    assert_eq!(reply, "+PONG\r\n-ERR Protocol error: invalid multibulk length\r\n");
    // The server keeps serving other connections.
    assert_eq!(exchange(&mut connect(&server), b"PING\r\n", 7), "+PONG\r\n");
}

#[test]
fn hello_switches_protocols_on_the_wire() {
    let server = Server::start(&[]);
    let mut stream = connect(&server);
    let reply = exchange(&mut stream, b"HELLO 3\r\n", 1);
    let mut reply = reply;
    while !reply.contains("klein_version") || !reply.ends_with("\r\n") {
        let mut buffer = [0_u8; 4096];
        let read = stream.read(&mut buffer).unwrap();
        assert!(read > 0);
        reply.push_str(std::str::from_utf8(&buffer[..read]).unwrap());
    }
    assert!(reply.starts_with("%8\r\n$6\r\nserver\r\n$5\r\nredis\r\n"), "{reply}");
    assert!(reply.contains("$5\r\nproto\r\n:3\r\n"), "{reply}");
    // RESP3 null-free replies look the same; a version Klein does not speak is refused.
    let expected = "-NOPROTO unsupported protocol version\r\n";
    assert_eq!(exchange(&mut stream, b"HELLO 4\r\n", expected.len()), expected);
}

#[test]
fn redis_crate_handshakes_in_resp2_and_resp3() {
    let server = Server::start(&[]);
    let port = server.port();

    let client = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap();
    let mut connection = client.get_connection().unwrap();
    let pong: String = redis::cmd("PING").query(&mut connection).unwrap();
    assert_eq!(pong, "PONG");
    let echoed: Vec<u8> =
        redis::cmd("ECHO").arg(&b"bin\x00ary"[..]).query(&mut connection).unwrap();
    assert_eq!(echoed, b"bin\x00ary");
    let error = redis::cmd("GETX").arg("k").query::<String>(&mut connection).unwrap_err();
    assert!(error.to_string().contains("unknown command"), "{error}");

    let client = redis::Client::open(format!("redis://127.0.0.1:{port}/?protocol=resp3")).unwrap();
    let mut connection = client.get_connection().unwrap();
    let hello: redis::Value = redis::cmd("HELLO").arg(3).query(&mut connection).unwrap();
    let redis::Value::Map(fields) = hello else { panic!("HELLO 3 is not a map: {hello:?}") };
    let field = |name: &str| {
        fields.iter().find_map(|(key, value)| match key {
            redis::Value::BulkString(key) if key == name.as_bytes() => Some(value.clone()),
            _ => None,
        })
    };
    assert_eq!(field("proto"), Some(redis::Value::Int(3)));
    assert_eq!(field("server"), Some(redis::Value::BulkString(b"redis".to_vec())));
    assert_eq!(field("mode"), Some(redis::Value::BulkString(b"standalone".to_vec())));
    assert_eq!(field("role"), Some(redis::Value::BulkString(b"master".to_vec())));
    assert!(matches!(field("id"), Some(redis::Value::Int(id)) if id > 0));
    assert!(matches!(field("version"), Some(redis::Value::BulkString(_))));
    let pong: String = redis::cmd("PING").query(&mut connection).unwrap();
    assert_eq!(pong, "PONG");
}

fn redis_cli(server: &Server, args: &[&str]) -> String {
    let output = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &server.port().to_string()])
        .args(args)
        .output()
        .expect("redis-cli must be installed (apt-get install redis-tools; .ci/run does this)");
    assert!(output.status.success(), "redis-cli {args:?}: {output:?}");
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn redis_cli_ping_hello_and_unknown_command() {
    let server = Server::start(&[]);
    assert_eq!(redis_cli(&server, &["PING"]), "PONG\n");
    assert_eq!(redis_cli(&server, &["ECHO", "hi there"]), "hi there\n");
    let hello = redis_cli(&server, &["-3", "HELLO", "3"]);
    // Without a terminal redis-cli prints a map as one "key value" line per field.
    assert!(hello.lines().any(|line| line == "proto 3"), "{hello}");
    assert!(hello.lines().any(|line| line == "server redis"), "{hello}");
    let unknown = redis_cli(&server, &["FOO", "bar"]);
    assert!(unknown.starts_with("ERR unknown command 'FOO'"), "{unknown}");
}

#[test]
fn sigterm_and_sigint_stop_the_node_in_order_with_exit_0() {
    for signal in [Signal::TERM, Signal::INT] {
        let server = Server::start(&["--cores", "2"]);
        let mut idle = connect(&server);
        assert_eq!(exchange(&mut idle, b"PING\r\n", 7), "+PONG\r\n");
        server.signal(signal);
        // The open connection is closed by the shutdown.
        let mut rest = Vec::new();
        assert_eq!(idle.read_to_end(&mut rest).unwrap(), 0);
        let (status, log) = server.wait();
        assert_eq!(status.code(), Some(0), "{signal:?}: {status:?}\n{}", log.join("\n"));
        assert!(log.iter().any(|line| line.contains("shutdown complete")), "{log:?}");
    }
}

#[test]
fn startup_log_says_how_locked_memory_was_handled() {
    let server = Server::start(&[]);
    assert!(
        server.startup_log.iter().any(|line| line.contains("RLIMIT_MEMLOCK")),
        "{:?}",
        server.startup_log
    );
}

#[test]
fn a_second_node_on_the_same_data_directory_or_port_is_refused() {
    let server = Server::start(&[]);
    // Same port, other data directory: refused instead of silently sharing the port.
    let other_dir = tempfile::tempdir().unwrap();
    let output = common::klein()
        .args(["server", "--listen", &server.address.to_string(), "--data-dir"])
        .arg(other_dir.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("cannot listen on"));
}
