//! Reads replies (RESP2 and RESP3) from a connection's input buffer without allocating.
//!
//! [`parse`] looks at the front of the buffer and returns what the generator needs to judge a
//! reply: its top-level type, a bulk string's length, an error's first word (`ERR`, `BUSY`,
//! `OOM`, ...) as a byte range, and how many bytes the whole reply takes, nested aggregates
//! included. RESP3 attributes (`|`) before a reply are skipped; a push (`>`) is reported as
//! such so it is never taken for the reply to a request.

/// The top-level shape of one reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    /// `+...`: the text is `buf[start..end]`.
    Simple {
        /// First byte of the text.
        start: usize,
        /// One past the last byte.
        end: usize,
    },
    /// `-...` or RESP3 `!<len>`: the error's first word is `buf[start..end]`.
    Error {
        /// First byte of the first word.
        start: usize,
        /// One past its last byte.
        end: usize,
    },
    /// `:<n>`.
    Integer(i64),
    /// `$<len>` (or RESP3 verbatim `=<len>`): a string of `len` bytes.
    Bulk(usize),
    /// `$-1`, `*-1` or RESP3 `_`.
    Null,
    /// `*`, `%`, `~` (skipped whole), or RESP3 `,` `#` `(`.
    Other,
    /// RESP3 `>`: out-of-band, not the reply to any request.
    Push,
}

/// The buffer does not hold RESP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolError(pub String);

/// Values pending in one reply beyond which it is refused rather than walked.
const ELEMENTS_MAX: u64 = 1 << 32;

/// Parses the reply at the front of `buf`: `Ok(Some((reply, length)))`, `Ok(None)` if the
/// buffer ends before the reply does.
///
/// # Errors
/// Bytes that are not RESP (an unknown type byte, a bad length, a missing CRLF).
pub fn parse(buf: &[u8]) -> Result<Option<(Reply, usize)>, ProtocolError> {
    let mut pos = 0;
    loop {
        let start = pos;
        let Some((element, next)) = element(buf, pos)? else { return Ok(None) };
        let (count, reply) = match element {
            Element::Leaf(reply) => return Ok(Some((reply, next))),
            // An attribute map decorates the value after it: skip it, then read that value.
            Element::Attribute(count) => (count, None),
            Element::Aggregate(count) if buf[start] == b'>' => (count, Some(Reply::Push)),
            Element::Aggregate(count) => (count, Some(Reply::Other)),
        };
        let Some(end) = skip(buf, next, count)? else { return Ok(None) };
        match reply {
            Some(reply) => return Ok(Some((reply, end))),
            None => pos = end,
        }
    }
}

/// Skips `count` values from `pos` (nested aggregates whole): `Ok(Some(end))`, or `Ok(None)`
/// if the buffer ends first.
fn skip(buf: &[u8], mut pos: usize, count: u64) -> Result<Option<usize>, ProtocolError> {
    let mut pending = count;
    while pending > 0 {
        let Some((element, next)) = element(buf, pos)? else { return Ok(None) };
        pos = next;
        pending -= 1;
        let children = match element {
            Element::Leaf(_) => 0,
            Element::Aggregate(count) => count,
            Element::Attribute(count) => count + 1,
        };
        pending = pending
            .checked_add(children)
            .filter(|total| *total <= ELEMENTS_MAX)
            .ok_or_else(|| ProtocolError("aggregate too large".to_string()))?;
    }
    Ok(Some(pos))
}

/// One RESP element header (with its payload, for strings).
enum Element {
    Leaf(Reply),
    /// An aggregate with this many child values (maps count keys and values).
    Aggregate(u64),
    /// An attribute map with this many child values; the decorated value follows.
    Attribute(u64),
}

/// Reads the element at `pos`: `Ok(None)` if it is incomplete.
fn element(buf: &[u8], pos: usize) -> Result<Option<(Element, usize)>, ProtocolError> {
    let Some(&kind) = buf.get(pos) else { return Ok(None) };
    let Some(line_end) = find_crlf(buf, pos + 1) else { return Ok(None) };
    let line = &buf[pos + 1..line_end];
    let after = line_end + 2;
    let leaf = |reply| Ok(Some((Element::Leaf(reply), after)));
    match kind {
        b'+' => leaf(Reply::Simple { start: pos + 1, end: line_end }),
        b'-' => {
            let word = line.iter().position(|byte| *byte == b' ').unwrap_or(line.len());
            leaf(Reply::Error { start: pos + 1, end: pos + 1 + word })
        }
        b':' => leaf(Reply::Integer(integer(line)?)),
        b',' | b'#' | b'(' => leaf(Reply::Other),
        b'_' => leaf(Reply::Null),
        b'$' | b'=' | b'!' => {
            let length = integer(line)?;
            if length < 0 {
                return if kind == b'$' { leaf(Reply::Null) } else { Err(bad("length", line)) };
            }
            let length = usize::try_from(length).map_err(|_| bad("length", line))?;
            let end = after.checked_add(length).ok_or_else(|| bad("length", line))?;
            if buf.len() < end + 2 {
                return Ok(None);
            }
            if &buf[end..end + 2] != b"\r\n" {
                return Err(ProtocolError("bulk string without its CRLF".to_string()));
            }
            let reply = if kind == b'!' {
                let text = &buf[after..end];
                let word = text.iter().position(|byte| *byte == b' ').unwrap_or(text.len());
                Reply::Error { start: after, end: after + word }
            } else {
                Reply::Bulk(length)
            };
            Ok(Some((Element::Leaf(reply), end + 2)))
        }
        b'*' | b'~' | b'>' | b'%' | b'|' => {
            let count = integer(line)?;
            if count < 0 {
                return if kind == b'*' { leaf(Reply::Null) } else { Err(bad("count", line)) };
            }
            let count = u64::try_from(count).map_err(|_| bad("count", line))?;
            let values = if matches!(kind, b'%' | b'|') { count.saturating_mul(2) } else { count };
            let element =
                if kind == b'|' { Element::Attribute(values) } else { Element::Aggregate(values) };
            Ok(Some((element, after)))
        }
        other => Err(ProtocolError(format!("unknown RESP type byte 0x{other:02x}"))),
    }
}

fn bad(what: &str, line: &[u8]) -> ProtocolError {
    ProtocolError(format!("bad {what} `{}`", String::from_utf8_lossy(line)))
}

/// The index of the `\r` of the first CRLF at or after `from`.
fn find_crlf(buf: &[u8], from: usize) -> Option<usize> {
    let rest = buf.get(from..)?;
    let at = rest.iter().position(|byte| *byte == b'\r')?;
    match rest.get(at + 1) {
        Some(b'\n') => Some(from + at),
        // A lone CR inside a simple string: keep looking after it.
        Some(_) => find_crlf(buf, from + at + 1),
        None => None,
    }
}

/// A RESP integer line, without allocating.
fn integer(line: &[u8]) -> Result<i64, ProtocolError> {
    let (negative, digits) = match line.split_first() {
        Some((b'-', rest)) => (true, rest),
        Some((b'+', rest)) => (false, rest),
        _ => (false, line),
    };
    if digits.is_empty() || digits.len() > 19 {
        return Err(bad("integer", line));
    }
    let mut value: i64 = 0;
    for digit in digits {
        if !digit.is_ascii_digit() {
            return Err(bad("integer", line));
        }
        value = value
            .checked_mul(10)
            .and_then(|value| value.checked_add(i64::from(digit - b'0')))
            .ok_or_else(|| bad("integer", line))?;
    }
    Ok(if negative { -value } else { value })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(buf: &[u8]) -> (Reply, usize) {
        parse(buf).unwrap().unwrap()
    }

    #[test]
    fn resp2_types() {
        assert_eq!(one(b"+OK\r\n"), (Reply::Simple { start: 1, end: 3 }, 5));
        let error = b"-BUSY Redis is busy\r\n";
        assert_eq!(one(error), (Reply::Error { start: 1, end: 5 }, error.len()));
        assert_eq!(one(b"-ERR\r\n"), (Reply::Error { start: 1, end: 4 }, 6));
        assert_eq!(one(b":-42\r\n"), (Reply::Integer(-42), 6));
        assert_eq!(one(b"$3\r\nabc\r\n+OK\r\n"), (Reply::Bulk(3), 9));
        assert_eq!(one(b"$0\r\n\r\n"), (Reply::Bulk(0), 6));
        assert_eq!(one(b"$-1\r\n"), (Reply::Null, 5));
        assert_eq!(one(b"*-1\r\n"), (Reply::Null, 5));
        let nested = b"*2\r\n$1\r\na\r\n*2\r\n:1\r\n-ERR x\r\n";
        assert_eq!(one(nested), (Reply::Other, nested.len()));
        assert_eq!(one(b"*0\r\n"), (Reply::Other, 4));
    }

    #[test]
    fn resp3_types() {
        assert_eq!(one(b"_\r\n"), (Reply::Null, 3));
        assert_eq!(one(b",1.5\r\n"), (Reply::Other, 6));
        assert_eq!(one(b"#t\r\n"), (Reply::Other, 4));
        assert_eq!(one(b"(12345678901234567890\r\n"), (Reply::Other, 23));
        assert_eq!(one(b"=7\r\ntxt:abc\r\n"), (Reply::Bulk(7), 13));
        let blob = b"!21\r\nSYNTAX invalid syntax\r\n";
        assert_eq!(one(blob), (Reply::Error { start: 5, end: 11 }, blob.len()));
        let map = b"%2\r\n+a\r\n:1\r\n+b\r\n~1\r\n#f\r\n";
        assert_eq!(one(map), (Reply::Other, map.len()));
        let push = b">2\r\n+message\r\n+x\r\n";
        assert_eq!(one(push), (Reply::Push, push.len()));
        // An attribute decorates the reply after it; the reply's type is what counts.
        let decorated = b"|1\r\n+key\r\n*1\r\n:1\r\n$2\r\nhi\r\n";
        assert_eq!(one(decorated), (Reply::Bulk(2), decorated.len()));
    }

    #[test]
    fn incomplete_replies_wait_for_more() {
        let whole = b"*3\r\n$5\r\nhello\r\n%1\r\n+k\r\n:7\r\n|1\r\n+a\r\n+b\r\n_\r\n";
        assert_eq!(one(whole).1, whole.len());
        for cut in 0..whole.len() {
            assert_eq!(parse(&whole[..cut]), Ok(None), "cut at {cut}");
        }
        assert_eq!(parse(b"+OK\r"), Ok(None));
        assert_eq!(parse(b"$3\r\nab"), Ok(None));
    }

    #[test]
    fn garbage_is_refused() {
        for bad in [&b"?\r\n"[..], b":12a\r\n", b"$x\r\n", b"$3\r\nabcd\r\n", b"%-1\r\n", b":\r\n"]
        {
            assert!(parse(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }
}
