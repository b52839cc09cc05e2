//! `MULTI` / `EXEC` / `DISCARD` / `WATCH` against a real `klein server` process: the Rust
//! `redis` crate in RESP2 and RESP3, and raw bytes where the exact reply matters.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::Server;
use redis::{Commands, Connection, Value};

fn connect(server: &Server, resp3: bool) -> Connection {
    let protocol = if resp3 { "?protocol=resp3" } else { "" };
    let url = format!("redis://{}/{protocol}", server.address);
    let client = redis::Client::open(url).unwrap();
    let connection = client.get_connection_with_timeout(Duration::from_secs(10)).unwrap();
    connection.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    connection
}

/// Sends `request` on a fresh connection and reads until `expected.len()` bytes arrived.
fn raw(server: &Server, request: &str, expected: &str) {
    let mut stream = TcpStream::connect(server.address).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut received = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut buffer = [0; 4096];
    while received.len() < expected.len() && Instant::now() < deadline {
        let read = stream.read(&mut buffer).unwrap();
        if read == 0 {
            break;
        }
        received.extend_from_slice(&buffer[..read]);
    }
    assert_eq!(String::from_utf8_lossy(&received), expected, "after {request:?}");
}

/// The reply to `words`, or the error's code (`CROSSSLOT`, `EXECABORT`, `ERR`, ...).
fn query(connection: &mut Connection, words: &[&str]) -> Result<Value, String> {
    let mut command = redis::cmd(words[0]);
    for word in &words[1..] {
        command.arg(*word);
    }
    command.query(connection).map_err(|error| error.code().unwrap_or("?").to_string())
}

#[test]
fn a_transaction_applies_atomically_with_one_reply_array_in_resp2_and_resp3() {
    let server = Server::start(&[]);
    for resp3 in [false, true] {
        let mut connection = connect(&server, resp3);
        let () = connection.set("{t}n", 10).unwrap();
        let (n, list): (i64, Vec<String>) = redis::pipe()
            .atomic()
            .incr("{t}n", 5)
            .rpush("{t}l", "a")
            .ignore()
            .lrange("{t}l", 0, -1)
            .query(&mut connection)
            .unwrap();
        assert_eq!(n, 15);
        assert_eq!(list.last().map(String::as_str), Some("a"));
        // Connection commands are queued too and answer inside the array.
        assert_eq!(query(&mut connection, &["MULTI"]), Ok(Value::Okay));
        let queued = Value::SimpleString("QUEUED".into());
        for words in [&["SET", "{t}s", "x"][..], &["PING"], &["GET", "{t}s"]] {
            assert_eq!(query(&mut connection, words), Ok(queued.clone()));
        }
        let reply = query(&mut connection, &["EXEC"]);
        let pong = Value::SimpleString("PONG".into());
        assert_eq!(
            reply,
            Ok(Value::Array(vec![Value::Okay, pong, Value::BulkString(b"x".to_vec())]))
        );
    }
}

#[test]
fn transactions_inside_pipelines_get_exact_replies() {
    let server = Server::start(&[]);
    raw(
        &server,
        "SET {p}a 0\r\nMULTI\r\nINCR {p}a\r\nGET {p}a\r\nEXEC\r\nGET {p}a\r\n",
        "+OK\r\n+OK\r\n+QUEUED\r\n+QUEUED\r\n*2\r\n:1\r\n$1\r\n1\r\n$1\r\n1\r\n",
    );
    // WATCH, MULTI and EXEC in one write: the watch is read before the EXEC is sent.
    raw(
        &server,
        "WATCH {p}a\r\nMULTI\r\nINCR {p}a\r\nEXEC\r\n",
        "+OK\r\n+OK\r\n+QUEUED\r\n*1\r\n:2\r\n",
    );
    raw(
        &server,
        "MULTI\r\nSET {p}a\r\nGET {p}a\r\nEXEC\r\nGET {p}a\r\n",
        "+OK\r\n-ERR wrong number of arguments for 'set' command\r\n+QUEUED\r\n\
         -EXECABORT Transaction discarded because of previous errors.\r\n$1\r\n2\r\n",
    );
    // A command's own error is an element of the array; the others still apply.
    raw(
        &server,
        "MULTI\r\nSET {p}s x\r\nINCR {p}s\r\nGET {p}s\r\nEXEC\r\n",
        "+OK\r\n+QUEUED\r\n+QUEUED\r\n+QUEUED\r\n\
         *3\r\n+OK\r\n-ERR value is not an integer or out of range\r\n$1\r\nx\r\n",
    );
}

#[test]
fn watch_from_two_connections_invalidates_the_transaction_that_lost() {
    let server = Server::start(&[]);
    for resp3 in [false, true] {
        let mut first = connect(&server, resp3);
        let mut second = connect(&server, resp3);
        let () = first.set("{w}balance", 100).unwrap();
        assert_eq!(query(&mut first, &["WATCH", "{w}balance", "{w}absent"]), Ok(Value::Okay));
        let balance: i64 = first.get("{w}balance").unwrap();
        // Another client changes the watched key between WATCH and EXEC.
        let () = second.set("{w}balance", 50).unwrap();
        assert_eq!(query(&mut first, &["MULTI"]), Ok(Value::Okay));
        let queued = query(&mut first, &["SET", "{w}balance", &(balance - 30).to_string()]);
        assert_eq!(queued, Ok(Value::SimpleString("QUEUED".into())));
        assert_eq!(
            query(&mut first, &["EXEC"]),
            Ok(Value::Nil),
            "a changed watched key aborts EXEC"
        );
        let now: i64 = second.get("{w}balance").unwrap();
        assert_eq!(now, 50, "nothing of the aborted transaction applied");
        // EXEC unwatched everything: the next transaction applies.
        let () = second.set("{w}balance", 60).unwrap();
        let (after,): (i64,) =
            redis::pipe().atomic().incr("{w}balance", 1).query(&mut first).unwrap();
        assert_eq!(after, 61);
        // An unchanged watch lets the transaction through; a key created meanwhile does not.
        assert_eq!(query(&mut first, &["WATCH", "{w}balance"]), Ok(Value::Okay));
        let (after,): (i64,) =
            redis::pipe().atomic().incr("{w}balance", 1).query(&mut first).unwrap();
        assert_eq!(after, 62);
        let _: i64 = second.del("{w}new").unwrap();
        assert_eq!(query(&mut first, &["WATCH", "{w}new"]), Ok(Value::Okay));
        let () = second.set("{w}new", 1).unwrap();
        assert_eq!(query(&mut first, &["MULTI"]), Ok(Value::Okay));
        assert!(query(&mut first, &["INCR", "{w}balance"]).is_ok());
        assert_eq!(query(&mut first, &["EXEC"]), Ok(Value::Nil));
        // UNWATCH and DISCARD forget the watch.
        assert_eq!(query(&mut first, &["WATCH", "{w}new"]), Ok(Value::Okay));
        let () = second.set("{w}new", 2).unwrap();
        assert_eq!(query(&mut first, &["UNWATCH"]), Ok(Value::Okay));
        let (after,): (i64,) =
            redis::pipe().atomic().incr("{w}balance", 1).query(&mut first).unwrap();
        assert_eq!(after, 63);
        let _: i64 = second.del("{w}new").unwrap();
    }
}

#[test]
fn a_transaction_across_groups_is_refused_with_crossslot_and_applies_nothing() {
    let server = Server::start(&[]);
    let mut connection = connect(&server, false);
    let keys: Vec<String> = (0..8).map(|index| format!("cross{index}")).collect();
    assert_eq!(query(&mut connection, &["MULTI"]), Ok(Value::Okay));
    for key in &keys {
        let queued = query(&mut connection, &["SET", key, "1"]);
        assert_eq!(queued, Ok(Value::SimpleString("QUEUED".into())));
    }
    assert_eq!(query(&mut connection, &["EXEC"]), Err("CROSSSLOT".to_string()));
    let existing: i64 = redis::cmd("EXISTS").arg(&keys).query(&mut connection).unwrap();
    assert_eq!(existing, 0);
    // A watched key of another group than the commands' is refused the same way.
    let mut crossed = 0;
    for tag in 0..8 {
        assert_eq!(query(&mut connection, &["WATCH", "{w}k"]), Ok(Value::Okay));
        assert_eq!(query(&mut connection, &["MULTI"]), Ok(Value::Okay));
        assert!(query(&mut connection, &["SET", &format!("{{{tag}}}k"), "1"]).is_ok());
        match query(&mut connection, &["EXEC"]) {
            Err(code) if code == "CROSSSLOT" => crossed += 1,
            Ok(Value::Array(items)) => assert_eq!(items, vec![Value::Okay]),
            other => panic!("{other:?}"),
        }
    }
    assert!(crossed > 0, "eight tags all in the group of {{w}}");
    // Keyspace-wide commands cannot run inside a transaction of one group.
    assert_eq!(query(&mut connection, &["MULTI"]), Ok(Value::Okay));
    assert_eq!(query(&mut connection, &["DBSIZE"]), Err("ERR".to_string()));
    assert_eq!(query(&mut connection, &["EXEC"]), Err("EXECABORT".to_string()));
}
