//! Incremental parser for client requests: RESP multibulk arrays and inline commands.
//!
//! The parser is pure: it looks at the bytes a connection has buffered and either returns one
//! complete request (its arguments borrowed from the buffer, no copies) with the number of bytes
//! it used, says that more bytes are needed, or reports a protocol error. It keeps no state
//! between calls, so a request that arrives in pieces is simply parsed again once the rest is
//! there; the cost of that is one scan of the request's length headers, never of its payload.
//!
//! Limits (see [`crate::constants`]): a bulk string longer than
//! [`RESP_BULK_SIZE_BYTES_MAX`], more than [`RESP_ARGUMENTS_COUNT_MAX`] arguments, or an inline
//! request or length line longer than [`RESP_INLINE_SIZE_BYTES_MAX`] is a protocol error. The
//! parser never allocates according to a length the client *claims*: arguments are only
//! collected once they have arrived.
//!
//! Error texts are Redis's own (`networking.c`), because clients and tests match on them.

use std::borrow::Cow;

use crate::constants::{
    RESP_ARGUMENTS_COUNT_MAX, RESP_BULK_SIZE_BYTES_MAX, RESP_INLINE_SIZE_BYTES_MAX,
};

/// One argument of a request: borrowed from the input unless an inline request's quoting
/// required decoding it.
pub type Argument<'input> = Cow<'input, [u8]>;

/// The outcome of one [`parse_request`] call that did not fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Parsed {
    /// A request was parsed into the argument vector; it used this many bytes of input.
    /// An empty argument vector means an empty request (`*0`, `*-1` or a blank inline line),
    /// which Redis ignores without a reply.
    Request {
        /// Bytes of input the request used.
        consumed: usize,
    },
    /// The input ends inside a request; call again with more bytes.
    Incomplete,
}

/// A request that breaks the protocol. The connection answers `-ERR Protocol error: ...` and
/// closes, as Redis does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProtocolError {
    /// An inline request without a newline within [`RESP_INLINE_SIZE_BYTES_MAX`] bytes.
    InlineTooBig,
    /// An inline request with an unterminated quote.
    UnbalancedQuotes,
    /// A multibulk count that is not a number or exceeds [`RESP_ARGUMENTS_COUNT_MAX`].
    InvalidMultibulkLength,
    /// A multibulk count line longer than [`RESP_INLINE_SIZE_BYTES_MAX`].
    MultibulkCountTooBig,
    /// Something other than `$` where a bulk string was expected (the byte found).
    ExpectedDollar(u8),
    /// A bulk length that is not a number, is negative, or exceeds
    /// [`RESP_BULK_SIZE_BYTES_MAX`].
    InvalidBulkLength,
    /// A bulk length line longer than [`RESP_INLINE_SIZE_BYTES_MAX`].
    BulkCountTooBig,
    /// A bulk string not followed by `\r\n`.
    MissingBulkTerminator,
}

impl ProtocolError {
    /// The error line sent to the client, without the leading `-` and trailing CRLF.
    #[must_use]
    pub fn message(self) -> String {
        match self {
            ProtocolError::InlineTooBig => "ERR Protocol error: too big inline request".into(),
            ProtocolError::UnbalancedQuotes => {
                "ERR Protocol error: unbalanced quotes in request".into()
            }
            ProtocolError::InvalidMultibulkLength => {
                "ERR Protocol error: invalid multibulk length".into()
            }
            ProtocolError::MultibulkCountTooBig => {
                "ERR Protocol error: too big mbulk count string".into()
            }
            ProtocolError::ExpectedDollar(byte) => {
                format!("ERR Protocol error: expected '$', got '{}'", printable(byte))
            }
            ProtocolError::InvalidBulkLength => "ERR Protocol error: invalid bulk length".into(),
            ProtocolError::BulkCountTooBig => {
                "ERR Protocol error: too big bulk count string".into()
            }
            ProtocolError::MissingBulkTerminator => {
                "ERR Protocol error: expected '\\r\\n' after bulk string".into()
            }
        }
    }
}

fn printable(byte: u8) -> char {
    if byte.is_ascii_graphic() || byte == b' ' { char::from(byte) } else { '?' }
}

/// Parses one request from the front of `input`, pushing its arguments into `arguments`
/// (which is cleared first).
///
/// A request that starts with `*` is a RESP multibulk array of bulk strings; anything else is
/// an inline request: one line split on spaces, with Redis's quoting rules.
///
/// # Errors
/// A [`ProtocolError`] when the bytes cannot be a valid request, however many more arrive.
pub fn parse_request<'input>(
    input: &'input [u8],
    arguments: &mut Vec<Argument<'input>>,
) -> Result<Parsed, ProtocolError> {
    arguments.clear();
    match input.first() {
        None => Ok(Parsed::Incomplete),
        Some(b'*') => parse_multibulk(input, arguments),
        Some(_) => parse_inline(input, arguments),
    }
}

fn parse_multibulk<'input>(
    input: &'input [u8],
    arguments: &mut Vec<Argument<'input>>,
) -> Result<Parsed, ProtocolError> {
    let Some((count_line, mut position)) = line_at(input, 1) else {
        return if input.len() > RESP_INLINE_SIZE_BYTES_MAX {
            Err(ProtocolError::MultibulkCountTooBig)
        } else {
            Ok(Parsed::Incomplete)
        };
    };
    let count = parse_integer(count_line).ok_or(ProtocolError::InvalidMultibulkLength)?;
    if count <= 0 {
        return Ok(Parsed::Request { consumed: position });
    }
    let count = usize::try_from(count).map_err(|_| ProtocolError::InvalidMultibulkLength)?;
    if count > RESP_ARGUMENTS_COUNT_MAX {
        return Err(ProtocolError::InvalidMultibulkLength);
    }
    for _ in 0..count {
        let Some(&first) = input.get(position) else {
            return Ok(Parsed::Incomplete);
        };
        if first != b'$' {
            return Err(ProtocolError::ExpectedDollar(first));
        }
        let Some((length_line, payload_start)) = line_at(input, position + 1) else {
            return if input.len() - position > RESP_INLINE_SIZE_BYTES_MAX {
                Err(ProtocolError::BulkCountTooBig)
            } else {
                Ok(Parsed::Incomplete)
            };
        };
        let length = parse_integer(length_line)
            .and_then(|length| usize::try_from(length).ok())
            .filter(|length| *length <= RESP_BULK_SIZE_BYTES_MAX)
            .ok_or(ProtocolError::InvalidBulkLength)?;
        let payload_end = payload_start + length;
        let Some(terminator) = input.get(payload_end..payload_end + 2) else {
            return Ok(Parsed::Incomplete);
        };
        if terminator != b"\r\n" {
            return Err(ProtocolError::MissingBulkTerminator);
        }
        arguments.push(Cow::Borrowed(&input[payload_start..payload_end]));
        position = payload_end + 2;
    }
    Ok(Parsed::Request { consumed: position })
}

/// Returns the line starting at `start` (without its `\r\n`) and the offset just past it.
fn line_at(input: &[u8], start: usize) -> Option<(&[u8], usize)> {
    let rest = input.get(start..)?;
    let newline = memchr(b'\n', rest)?;
    let line = rest.get(..newline)?;
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    Some((line, start + newline + 1))
}

fn memchr(needle: u8, haystack: &[u8]) -> Option<usize> {
    haystack.iter().position(|byte| *byte == needle)
}

/// Parses a decimal `i64` the way Redis's `string2ll` does: optional `-`, digits, no spaces,
/// no leading `+`, no leading zeros (except `0` itself).
fn parse_integer(text: &[u8]) -> Option<i64> {
    let (negative, digits) = match text.split_first() {
        Some((b'-', digits)) => (true, digits),
        _ => (false, text),
    };
    if digits.is_empty() || digits.len() > 19 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    if digits.len() > 1 && digits[0] == b'0' {
        return None;
    }
    let mut value: i64 = 0;
    for digit in digits {
        value = value.checked_mul(10)?.checked_add(i64::from(digit - b'0'))?;
    }
    if negative { value.checked_neg() } else { Some(value) }
}

fn parse_inline<'input>(
    input: &'input [u8],
    arguments: &mut Vec<Argument<'input>>,
) -> Result<Parsed, ProtocolError> {
    let Some(newline) = memchr(b'\n', input) else {
        return if input.len() > RESP_INLINE_SIZE_BYTES_MAX {
            Err(ProtocolError::InlineTooBig)
        } else {
            Ok(Parsed::Incomplete)
        };
    };
    if newline > RESP_INLINE_SIZE_BYTES_MAX {
        return Err(ProtocolError::InlineTooBig);
    }
    let line = &input[..newline];
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    split_inline(line, arguments)?;
    Ok(Parsed::Request { consumed: newline + 1 })
}

/// Splits an inline line into arguments with the rules of Redis's `sdssplitargs`.
///
/// Plain words are borrowed as they are. Inside `"..."` the escapes `\n`, `\r`, `\t`, `\b`,
/// `\a`, `\xHH` and `\<any>` are decoded; inside `'...'` only `\'` is. A quote may start in
/// the middle of a word (`a"b c"` is `ab c`), and a closing quote must be followed by a space or
/// the end of the line. Only arguments that needed decoding are copied.
fn split_inline<'input>(
    line: &'input [u8],
    arguments: &mut Vec<Argument<'input>>,
) -> Result<(), ProtocolError> {
    let mut position = 0;
    loop {
        while line.get(position).is_some_and(u8::is_ascii_whitespace) {
            position += 1;
        }
        if position >= line.len() {
            return Ok(());
        }
        let start = position;
        while line.get(position).is_some_and(|byte| !byte.is_ascii_whitespace() && !is_quote(*byte))
        {
            position += 1;
        }
        if line.get(position).copied().is_some_and(is_quote) {
            let mut decoded = line[start..position].to_vec();
            position = decode_quoted(line, position, &mut decoded)?;
            arguments.push(Cow::Owned(decoded));
        } else {
            arguments.push(Cow::Borrowed(&line[start..position]));
        }
        if arguments.len() > RESP_ARGUMENTS_COUNT_MAX {
            return Err(ProtocolError::InvalidMultibulkLength);
        }
    }
}

fn is_quote(byte: u8) -> bool {
    byte == b'"' || byte == b'\''
}

/// Decodes the rest of a word that contains quotes, starting at a quote; returns the offset
/// just past the word.
fn decode_quoted(
    line: &[u8],
    mut position: usize,
    out: &mut Vec<u8>,
) -> Result<usize, ProtocolError> {
    loop {
        match line.get(position) {
            None => return Ok(position),
            Some(byte) if byte.is_ascii_whitespace() => return Ok(position),
            Some(b'"') => {
                position += 1;
                loop {
                    match line.get(position) {
                        None => return Err(ProtocolError::UnbalancedQuotes),
                        Some(b'"') => break,
                        Some(b'\\') => {
                            let (byte, used) = decode_escape(&line[position + 1..]);
                            out.push(byte);
                            position += 1 + used;
                        }
                        Some(byte) => {
                            out.push(*byte);
                            position += 1;
                        }
                    }
                }
                position += 1;
                if line.get(position).is_some_and(|byte| !byte.is_ascii_whitespace()) {
                    return Err(ProtocolError::UnbalancedQuotes);
                }
            }
            Some(b'\'') => {
                position += 1;
                loop {
                    match line.get(position) {
                        None => return Err(ProtocolError::UnbalancedQuotes),
                        Some(b'\'') => break,
                        Some(b'\\') if line.get(position + 1) == Some(&b'\'') => {
                            out.push(b'\'');
                            position += 2;
                        }
                        Some(byte) => {
                            out.push(*byte);
                            position += 1;
                        }
                    }
                }
                position += 1;
                if line.get(position).is_some_and(|byte| !byte.is_ascii_whitespace()) {
                    return Err(ProtocolError::UnbalancedQuotes);
                }
            }
            Some(byte) => {
                out.push(*byte);
                position += 1;
            }
        }
    }
}

/// Decodes the escape after a backslash inside double quotes; returns the byte and how many
/// bytes after the backslash it used. A backslash at the very end stands for itself and the
/// missing closing quote is reported by the caller.
fn decode_escape(rest: &[u8]) -> (u8, usize) {
    match rest {
        [b'x', high, low, ..] if high.is_ascii_hexdigit() && low.is_ascii_hexdigit() => {
            (hex_value(*high) * 16 + hex_value(*low), 3)
        }
        [b'n', ..] => (b'\n', 1),
        [b'r', ..] => (b'\r', 1),
        [b't', ..] => (b'\t', 1),
        [b'b', ..] => (0x08, 1),
        [b'a', ..] => (0x07, 1),
        [other, ..] => (*other, 1),
        [] => (b'\\', 0),
    }
}

fn hex_value(digit: u8) -> u8 {
    match digit {
        b'0'..=b'9' => digit - b'0',
        b'a'..=b'f' => digit - b'a' + 10,
        _ => digit - b'A' + 10,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(input: &[u8]) -> Result<(Parsed, Vec<Vec<u8>>), ProtocolError> {
        let mut arguments = Vec::new();
        let parsed = parse_request(input, &mut arguments)?;
        Ok((parsed, arguments.iter().map(|argument| argument.to_vec()).collect()))
    }

    fn request(input: &[u8]) -> Vec<Vec<u8>> {
        match parse(input).unwrap() {
            (Parsed::Request { consumed }, arguments) => {
                assert_eq!(consumed, input.len());
                arguments
            }
            (Parsed::Incomplete, _) => panic!("incomplete: {input:?}"),
        }
    }

    fn words(words: &[&str]) -> Vec<Vec<u8>> {
        words.iter().map(|word| word.as_bytes().to_vec()).collect()
    }

    #[test]
    fn multibulk_request_is_parsed_without_copies() {
        assert_eq!(request(b"*2\r\n$4\r\nECHO\r\n$5\r\nhello\r\n"), words(&["ECHO", "hello"]));
        assert_eq!(request(b"*1\r\n$0\r\n\r\n"), words(&[""]));
    }

    #[test]
    fn binary_payload_may_hold_crlf() {
        assert_eq!(request(b"*1\r\n$4\r\na\r\nb\r\n"), vec![b"a\r\nb".to_vec()]);
    }

    #[test]
    fn every_prefix_of_a_request_is_incomplete() {
        let full = b"*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\n";
        for cut in 0..full.len() {
            assert_eq!(parse(&full[..cut]).unwrap().0, Parsed::Incomplete, "cut at {cut}");
        }
        assert_eq!(request(full), words(&["SET", "key", "value"]));
    }

    #[test]
    fn pipelined_requests_are_parsed_one_at_a_time() {
        let input = b"*1\r\n$4\r\nPING\r\nPING\r\n*1\r\n$4\r\nPING\r\n";
        let (parsed, _) = parse(input).unwrap();
        assert_eq!(parsed, Parsed::Request { consumed: 14 });
        let (parsed, arguments) = parse(&input[14..]).unwrap();
        assert_eq!(parsed, Parsed::Request { consumed: 6 });
        assert_eq!(arguments, words(&["PING"]));
    }

    #[test]
    fn empty_multibulk_is_an_empty_request() {
        assert_eq!(request(b"*0\r\n"), Vec::<Vec<u8>>::new());
        assert_eq!(request(b"*-1\r\n"), Vec::<Vec<u8>>::new());
    }

    #[test]
    fn inline_requests_split_on_spaces_and_accept_bare_newlines() {
        assert_eq!(request(b"PING\r\n"), words(&["PING"]));
        assert_eq!(request(b"set  k   v\n"), words(&["set", "k", "v"]));
        assert_eq!(
            request(b"echo \"hello world\" 'x y'\r\n"),
            words(&["echo", "hello world", "x y"])
        );
        assert_eq!(request(b"\r\n"), Vec::<Vec<u8>>::new());
        assert_eq!(parse(b"PING").unwrap().0, Parsed::Incomplete);
    }

    #[test]
    fn unbalanced_quotes_are_a_protocol_error() {
        assert_eq!(parse(b"echo \"abc\r\n"), Err(ProtocolError::UnbalancedQuotes));
        assert_eq!(parse(b"echo \"abc\"d\r\n"), Err(ProtocolError::UnbalancedQuotes));
        assert_eq!(parse(b"echo 'abc\r\n"), Err(ProtocolError::UnbalancedQuotes));
    }

    #[test]
    fn inline_quotes_decode_escapes_like_sdssplitargs() {
        assert_eq!(request(b"echo \"a\\nb\\x41\\\"\"\r\n")[1], b"a\nbA\"".to_vec());
        assert_eq!(request(b"echo 'it\\'s' 'a\\nb'\r\n")[1..], words(&["it's", "a\\nb"]));
        assert_eq!(request(b"echo a\"b c\"\r\n")[1], b"ab c".to_vec());
    }

    #[test]
    fn malformed_lengths_are_protocol_errors() {
        assert_eq!(parse(b"*x\r\n"), Err(ProtocolError::InvalidMultibulkLength));
        assert_eq!(parse(b"*+1\r\n"), Err(ProtocolError::InvalidMultibulkLength));
        assert_eq!(parse(b"*01\r\n"), Err(ProtocolError::InvalidMultibulkLength));
        assert_eq!(parse(b"*99999999999999999999\r\n"), Err(ProtocolError::InvalidMultibulkLength));
        assert_eq!(parse(b"*1\r\n+PING\r\n"), Err(ProtocolError::ExpectedDollar(b'+')));
        assert_eq!(parse(b"*1\r\n$-1\r\n"), Err(ProtocolError::InvalidBulkLength));
        assert_eq!(parse(b"*1\r\n$x\r\n"), Err(ProtocolError::InvalidBulkLength));
        assert_eq!(parse(b"*1\r\n$1\r\nab\r\n"), Err(ProtocolError::MissingBulkTerminator));
    }

    #[test]
    fn limits_are_enforced_before_the_bytes_arrive() {
        let too_many = format!("*{}\r\n", RESP_ARGUMENTS_COUNT_MAX + 1);
        assert_eq!(parse(too_many.as_bytes()), Err(ProtocolError::InvalidMultibulkLength));
        let too_long = format!("*1\r\n${}\r\n", RESP_BULK_SIZE_BYTES_MAX + 1);
        assert_eq!(parse(too_long.as_bytes()), Err(ProtocolError::InvalidBulkLength));
        // The largest allowed claim is accepted and waits for its bytes.
        let largest = format!("*1\r\n${RESP_BULK_SIZE_BYTES_MAX}\r\n");
        assert_eq!(parse(largest.as_bytes()).unwrap().0, Parsed::Incomplete);
    }

    #[test]
    fn endless_lines_are_refused() {
        let inline = vec![b'a'; RESP_INLINE_SIZE_BYTES_MAX + 1];
        assert_eq!(parse(&inline), Err(ProtocolError::InlineTooBig));
        let mut count = b"*".to_vec();
        count.extend(vec![b'1'; RESP_INLINE_SIZE_BYTES_MAX + 1]);
        assert_eq!(parse(&count), Err(ProtocolError::MultibulkCountTooBig));
        let mut length = b"*1\r\n$".to_vec();
        length.extend(vec![b'1'; RESP_INLINE_SIZE_BYTES_MAX + 1]);
        assert_eq!(parse(&length), Err(ProtocolError::BulkCountTooBig));
    }

    #[test]
    fn error_texts_match_redis() {
        assert_eq!(
            ProtocolError::InvalidMultibulkLength.message(),
            "ERR Protocol error: invalid multibulk length"
        );
        assert_eq!(
            ProtocolError::ExpectedDollar(b'+').message(),
            "ERR Protocol error: expected '$', got '+'"
        );
    }

    #[test]
    fn integers_follow_string2ll() {
        assert_eq!(parse_integer(b"0"), Some(0));
        assert_eq!(parse_integer(b"-12"), Some(-12));
        assert_eq!(parse_integer(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_integer(b"9223372036854775808"), None);
        assert_eq!(parse_integer(b""), None);
        assert_eq!(parse_integer(b"-"), None);
        assert_eq!(parse_integer(b" 1"), None);
    }
}
