//! The reply builder: one writer for RESP2 and RESP3, chosen per connection.
//!
//! Commands describe their reply in RESP3 terms (map, set, double, boolean, null, push...); the
//! writer encodes it in the connection's protocol, downgrading RESP3-only types the way Redis
//! does for RESP2 clients (a map becomes a flat array of key/value pairs, a boolean an integer,
//! a double a bulk string, null `$-1`).
//!
//! Replies are appended to one buffer per connection, so all replies to one read of pipelined
//! requests leave in a single write.

use std::io::Write as _;

/// The protocol a connection speaks, set by `HELLO`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// RESP2: the default for a new connection.
    Resp2,
    /// RESP3, after `HELLO 3`.
    Resp3,
}

impl Protocol {
    /// The protocol version number as clients write it (`2` or `3`).
    #[must_use]
    pub fn version(self) -> i64 {
        match self {
            Protocol::Resp2 => 2,
            Protocol::Resp3 => 3,
        }
    }
}

/// Appends encoded replies to a byte buffer.
#[derive(Debug)]
pub struct ReplyWriter<'buffer> {
    protocol: Protocol,
    out: &'buffer mut Vec<u8>,
}

impl<'buffer> ReplyWriter<'buffer> {
    /// A writer appending to `out` in `protocol`.
    pub fn new(protocol: Protocol, out: &'buffer mut Vec<u8>) -> ReplyWriter<'buffer> {
        ReplyWriter { protocol, out }
    }

    /// The protocol replies are written in.
    #[must_use]
    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    /// Switches the protocol for the replies that follow (used by `HELLO`).
    pub fn set_protocol(&mut self, protocol: Protocol) {
        self.protocol = protocol;
    }

    /// `+text`: a status reply. `text` must not contain CR or LF.
    pub fn simple(&mut self, text: &str) {
        debug_assert!(!text.contains(['\r', '\n']));
        self.line(b'+', text.as_bytes());
    }

    /// `-text`: an error reply; `text` starts with the error code (`ERR`, `NOPROTO`, ...).
    /// CR and LF inside it are replaced by spaces, as Redis does, so a reply is always one line.
    pub fn error(&mut self, text: &str) {
        self.out.push(b'-');
        self.out.extend(
            text.bytes().map(|byte| if byte == b'\r' || byte == b'\n' { b' ' } else { byte }),
        );
        self.out.extend_from_slice(b"\r\n");
    }

    /// `:n`: an integer reply.
    pub fn integer(&mut self, value: i64) {
        self.out.push(b':');
        write_decimal(self.out, value);
        self.out.extend_from_slice(b"\r\n");
    }

    /// `$len` + bytes: a bulk string reply.
    pub fn bulk(&mut self, bytes: &[u8]) {
        self.header(b'$', bytes.len());
        self.out.extend_from_slice(bytes);
        self.out.extend_from_slice(b"\r\n");
    }

    /// A missing value: RESP3 `_`, RESP2 `$-1`.
    pub fn null(&mut self) {
        match self.protocol {
            Protocol::Resp3 => self.out.extend_from_slice(b"_\r\n"),
            Protocol::Resp2 => self.out.extend_from_slice(b"$-1\r\n"),
        }
    }

    /// Bytes already written in this writer's protocol (a reply rendered earlier).
    pub fn raw(&mut self, bytes: &[u8]) {
        self.out.extend_from_slice(bytes);
    }

    /// A missing array: RESP3 `_`, RESP2 `*-1` (an aborted `EXEC`).
    pub fn null_array(&mut self) {
        match self.protocol {
            Protocol::Resp3 => self.out.extend_from_slice(b"_\r\n"),
            Protocol::Resp2 => self.out.extend_from_slice(b"*-1\r\n"),
        }
    }

    /// Starts an array of `count` elements; the caller writes them next.
    pub fn array(&mut self, count: usize) {
        self.header(b'*', count);
    }

    /// Starts a map of `count` key/value pairs (RESP2: a flat array of `2 * count`).
    pub fn map(&mut self, count: usize) {
        match self.protocol {
            Protocol::Resp3 => self.header(b'%', count),
            Protocol::Resp2 => self.header(b'*', count * 2),
        }
    }

    /// Starts a set of `count` elements (RESP2: an array).
    pub fn set(&mut self, count: usize) {
        match self.protocol {
            Protocol::Resp3 => self.header(b'~', count),
            Protocol::Resp2 => self.header(b'*', count),
        }
    }

    /// Starts an out-of-band push message of `count` elements (RESP2: an array, as used by
    /// subscribe mode).
    pub fn push(&mut self, count: usize) {
        match self.protocol {
            Protocol::Resp3 => self.header(b'>', count),
            Protocol::Resp2 => self.header(b'*', count),
        }
    }

    /// A boolean: RESP3 `#t`/`#f`, RESP2 `:1`/`:0`.
    pub fn boolean(&mut self, value: bool) {
        match self.protocol {
            Protocol::Resp3 => {
                self.out.extend_from_slice(if value { b"#t\r\n" } else { b"#f\r\n" });
            }
            Protocol::Resp2 => self.integer(i64::from(value)),
        }
    }

    /// A double: RESP3 `,value`, RESP2 a bulk string, both in Redis's formatting
    /// (`inf`, `-inf`, `nan`, and the shortest text that reads back as the same value).
    pub fn double(&mut self, value: f64) {
        let text = format_double(value);
        match self.protocol {
            Protocol::Resp3 => self.line(b',', text.as_bytes()),
            Protocol::Resp2 => self.bulk(text.as_bytes()),
        }
    }

    /// A big number: RESP3 `(digits`, RESP2 a bulk string. `digits` is a decimal integer.
    pub fn big_number(&mut self, digits: &str) {
        debug_assert!(digits.trim_start_matches('-').bytes().all(|byte| byte.is_ascii_digit()));
        match self.protocol {
            Protocol::Resp3 => self.line(b'(', digits.as_bytes()),
            Protocol::Resp2 => self.bulk(digits.as_bytes()),
        }
    }

    /// Verbatim text: RESP3 `=len` + `txt:` + text, RESP2 a bulk string of the text.
    pub fn verbatim(&mut self, text: &str) {
        match self.protocol {
            Protocol::Resp3 => {
                self.header(b'=', text.len() + 4);
                self.out.extend_from_slice(b"txt:");
                self.out.extend_from_slice(text.as_bytes());
                self.out.extend_from_slice(b"\r\n");
            }
            Protocol::Resp2 => self.bulk(text.as_bytes()),
        }
    }

    /// Starts an attribute of `count` pairs that decorates the next reply. RESP2 has no
    /// attributes, so a RESP2 caller must not write the pairs; this returns whether to write
    /// them.
    #[must_use]
    pub fn attribute(&mut self, count: usize) -> bool {
        match self.protocol {
            Protocol::Resp3 => {
                self.header(b'|', count);
                true
            }
            Protocol::Resp2 => false,
        }
    }

    fn header(&mut self, kind: u8, count: usize) {
        self.out.push(kind);
        write!(self.out, "{count}").expect("writing to a Vec cannot fail");
        self.out.extend_from_slice(b"\r\n");
    }

    fn line(&mut self, kind: u8, text: &[u8]) {
        self.out.push(kind);
        self.out.extend_from_slice(text);
        self.out.extend_from_slice(b"\r\n");
    }
}

fn write_decimal(out: &mut Vec<u8>, value: i64) {
    write!(out, "{value}").expect("writing to a Vec cannot fail");
}

/// Formats a double as Redis does in replies: `inf`, `-inf`, `nan`, integers without a
/// fraction, otherwise the shortest representation that parses back to the same value.
#[must_use]
pub fn format_double(value: f64) -> String {
    if value.is_nan() {
        "nan".into()
    } else if value.is_infinite() {
        if value > 0.0 { "inf".into() } else { "-inf".into() }
    } else {
        // Rust's `{}` for f64 is the shortest round-trip representation, without exponent.
        format!("{value}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written(protocol: Protocol, build: impl FnOnce(&mut ReplyWriter<'_>)) -> String {
        let mut out = Vec::new();
        build(&mut ReplyWriter::new(protocol, &mut out));
        String::from_utf8(out).unwrap()
    }

    fn both(build: impl Fn(&mut ReplyWriter<'_>)) -> (String, String) {
        (written(Protocol::Resp2, &build), written(Protocol::Resp3, &build))
    }

    #[test]
    fn scalar_replies_are_encoded() {
        assert_eq!(both(|w| w.simple("OK")).0, "+OK\r\n");
        assert_eq!(both(|w| w.integer(-7)).0, ":-7\r\n");
        assert_eq!(both(|w| w.bulk(b"a\r\nb")).0, "$4\r\na\r\nb\r\n");
        assert_eq!(both(|w| w.bulk(b"")).1, "$0\r\n\r\n");
    }

    #[test]
    fn errors_are_always_one_line() {
        assert_eq!(both(|w| w.error("ERR bad\r\nthing")).0, "-ERR bad  thing\r\n");
    }

    #[test]
    #[expect(
        clippy::redundant_closure_for_method_calls,
        reason = "a method path is not general over the writer's lifetime"
    )]
    fn resp3_types_downgrade_for_resp2() {
        assert_eq!(both(|w| w.null()), ("$-1\r\n".into(), "_\r\n".into()));
        assert_eq!(both(|w| w.null_array()), ("*-1\r\n".into(), "_\r\n".into()));
        assert_eq!(both(|w| w.map(2)), ("*4\r\n".into(), "%2\r\n".into()));
        assert_eq!(both(|w| w.set(3)), ("*3\r\n".into(), "~3\r\n".into()));
        assert_eq!(both(|w| w.push(2)), ("*2\r\n".into(), ">2\r\n".into()));
        assert_eq!(both(|w| w.boolean(true)), (":1\r\n".into(), "#t\r\n".into()));
        assert_eq!(both(|w| w.double(1.5)), ("$3\r\n1.5\r\n".into(), ",1.5\r\n".into()));
        assert_eq!(both(|w| w.big_number("123")), ("$3\r\n123\r\n".into(), "(123\r\n".into()));
        assert_eq!(both(|w| w.verbatim("hi")), ("$2\r\nhi\r\n".into(), "=6\r\ntxt:hi\r\n".into()));
    }

    #[test]
    fn attributes_exist_only_in_resp3() {
        assert_eq!(
            both(|w| assert_eq!(w.attribute(1), w.protocol() == Protocol::Resp3)).1,
            "|1\r\n"
        );
        assert_eq!(
            both(|w| {
                let _ = w.attribute(1);
            })
            .0,
            ""
        );
    }

    #[test]
    fn doubles_use_redis_spelling() {
        assert_eq!(format_double(f64::INFINITY), "inf");
        assert_eq!(format_double(f64::NEG_INFINITY), "-inf");
        assert_eq!(format_double(f64::NAN), "nan");
        assert_eq!(format_double(3.0), "3");
        assert_eq!(format_double(0.1), "0.1");
    }
}
