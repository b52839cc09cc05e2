//! `klein admin`: the operator's client. It speaks RESP to a node's listener like any Redis
//! client and sends the node's admin commands (`KLEIN STATUS`), so whatever `klein admin`
//! can do, `redis-cli KLEIN ...` can do too.
//!
//! A deliberately small blocking client (one request, one reply, a timeout): the operator
//! tool needs no runtime and no pipelining.

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// How long `klein admin` waits to connect, and for the reply.
pub const ADMIN_TIMEOUT_MILLIS: u64 = 5_000;

/// Largest reply `klein admin` reads (a status of thousands of groups fits).
pub const ADMIN_REPLY_BYTES_MAX: usize = 16 * 1024 * 1024;

/// Sends `arguments` as one RESP command to `address` and returns the reply's text: a bulk or
/// simple string as is.
///
/// # Errors
/// The node cannot be reached, answers with an error (its text), or breaks the protocol.
pub fn request(address: SocketAddr, arguments: &[&str]) -> Result<String, String> {
    let timeout = Duration::from_millis(ADMIN_TIMEOUT_MILLIS);
    let mut stream = TcpStream::connect_timeout(&address, timeout)
        .map_err(|error| format!("cannot reach {address}: {error}"))?;
    stream.set_read_timeout(Some(timeout)).map_err(|error| error.to_string())?;
    let mut command = format!("*{}\r\n", arguments.len());
    for argument in arguments {
        let _ = write!(command, "${}\r\n{argument}\r\n", argument.len());
    }
    stream.write_all(command.as_bytes()).map_err(|error| format!("{address}: {error}"))?;
    let mut reply = Vec::new();
    let mut buffer = vec![0_u8; 16 * 1024];
    loop {
        if let Some(text) = parse(&reply)? {
            return text;
        }
        let read = stream.read(&mut buffer).map_err(|error| format!("{address}: {error}"))?;
        if read == 0 {
            return Err(format!("{address} closed the connection before replying"));
        }
        reply.extend_from_slice(&buffer[..read]);
        if reply.len() > ADMIN_REPLY_BYTES_MAX {
            return Err(format!("the reply passed {ADMIN_REPLY_BYTES_MAX} bytes"));
        }
    }
}

/// `Ok(None)`: incomplete; `Ok(Some(Ok(text)))`: a string reply; `Ok(Some(Err(text)))`: an
/// error reply.
#[allow(clippy::type_complexity)] // The three outcomes of reading a partial reply.
fn parse(bytes: &[u8]) -> Result<Option<Result<String, String>>, String> {
    let Some(end) = bytes.windows(2).position(|w| w == b"\r\n") else { return Ok(None) };
    let line = String::from_utf8_lossy(&bytes[1..end]).into_owned();
    match bytes.first() {
        Some(b'+') => Ok(Some(Ok(line))),
        Some(b'-') => Ok(Some(Err(line))),
        Some(b'$') => {
            let length: usize =
                line.parse().map_err(|_| format!("bad bulk length in reply: {line}"))?;
            let start = end + 2;
            if bytes.len() < start + length + 2 {
                return Ok(None);
            }
            Ok(Some(Ok(String::from_utf8_lossy(&bytes[start..start + length]).into_owned())))
        }
        _ => Err(format!("unexpected reply: {}", String::from_utf8_lossy(bytes))),
    }
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn replies_parse_when_complete() {
        assert_eq!(parse(b"$5\r\nhel"), Ok(None));
        assert_eq!(parse(b"$5\r\nhello\r\n"), Ok(Some(Ok("hello".to_string()))));
        assert_eq!(parse(b"+OK\r\n"), Ok(Some(Ok("OK".to_string()))));
        assert_eq!(parse(b"-ERR no\r\n"), Ok(Some(Err("ERR no".to_string()))));
        assert!(parse(b":1\r\n").is_err());
        assert_eq!(parse(b"+OK"), Ok(None));
    }
}
