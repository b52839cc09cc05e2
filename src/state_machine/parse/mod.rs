//! Client argv to [`Command`]: the command table (name, arity, parser) and the argument
//! helpers every family shares, with Redis's exact error texts.
//!
//! Parsing is pure and total: any argv yields a command or an error reply, never a panic.
//! Checks that need the applying batch's stamp (expire-time overflow) or the keyspace
//! (`WRONGTYPE`) happen at apply time, in the same order Redis makes them.

mod collections;
mod keys;
mod strings;
mod zsets;

use super::command::Command;
use super::reply::{self, Reply};

/// Longest command name or argument quoted back in an error, as in Redis (`%.128s`).
const ERROR_QUOTE_BYTES_MAX: usize = 128;

/// Longest command name in the table, in bytes.
const COMMAND_NAME_BYTES_MAX: usize = 16;

/// A parser of one command's argv (`args[0]` is the name).
type Parser = fn(&[&[u8]]) -> Result<Command, Reply>;

/// Parses a client's argv (`args[0]` is the command name, any case).
///
/// # Errors
/// The Redis error reply for an unknown command, a wrong argument count, or a malformed
/// argument. `MULTI`/`EXEC`/`DISCARD`/`WATCH` are connection state, handled by the server:
/// it builds [`Command::Exec`] itself; here they are unknown.
pub fn parse(args: &[&[u8]]) -> Result<Command, Reply> {
    let Some(name) = args.first() else {
        return Err(Reply::error("ERR empty command"));
    };
    let mut lower = [0_u8; COMMAND_NAME_BYTES_MAX];
    let Some((arity, parser, full_name)) = lower_name(name, &mut lower).and_then(lookup) else {
        return Err(unknown_command(args));
    };
    let count = i64::try_from(args.len()).unwrap_or(i64::MAX);
    if (arity > 0 && count != arity) || count < -arity {
        return Err(reply::wrong_arity(full_name));
    }
    parser(args)
}

fn lower_name<'a>(name: &[u8], buffer: &'a mut [u8; COMMAND_NAME_BYTES_MAX]) -> Option<&'a str> {
    let slot = buffer.get_mut(..name.len())?;
    for (to, from) in slot.iter_mut().zip(name) {
        *to = from.to_ascii_lowercase();
    }
    std::str::from_utf8(slot).ok()
}

/// The arity (Redis's convention: exact if positive, minimum if negative), the parser, and
/// the name errors use.
fn lookup(name: &str) -> Option<(i64, Parser, &'static str)> {
    strings::lookup(name)
        .or_else(|| keys::lookup(name))
        .or_else(|| collections::lookup(name))
        .or_else(|| zsets::lookup(name))
}

/// Redis's `unknown command` error: the name and the first arguments, quoted, at most 128
/// bytes of each and about 128 bytes of arguments in all (the server's text, same format).
#[must_use]
pub fn unknown_command(args: &[&[u8]]) -> Reply {
    Reply::Error(unknown_command_text(args))
}

/// The text of [`unknown_command`]'s error; the RESP server answers with it too, so a
/// command unknown to both layers reads the same wherever it is refused.
#[must_use]
pub fn unknown_command_text(args: &[&[u8]]) -> String {
    let mut quoted = String::new();
    for argument in args.iter().skip(1) {
        if quoted.len() >= ERROR_QUOTE_BYTES_MAX {
            break;
        }
        let room = ERROR_QUOTE_BYTES_MAX - quoted.len();
        quoted.push('\'');
        quoted.push_str(&lossy_prefix(argument, room));
        quoted.push_str("' ");
    }
    let name =
        args.first().map_or_else(String::new, |name| lossy_prefix(name, ERROR_QUOTE_BYTES_MAX));
    format!("ERR unknown command '{name}', with args beginning with: {quoted}")
}

fn lossy_prefix(bytes: &[u8], max: usize) -> String {
    String::from_utf8_lossy(&bytes[..bytes.len().min(max)]).into_owned()
}

/// Whether `argument` is `word` in any case.
fn is(argument: &[u8], word: &str) -> bool {
    argument.eq_ignore_ascii_case(word.as_bytes())
}

/// Redis's `string2ll`: optional `-`, no leading zeros, no `+`, no spaces, in `i64` range.
#[must_use]
pub fn parse_i64(bytes: &[u8]) -> Option<i64> {
    if bytes == b"0" {
        return Some(0);
    }
    let (negative, digits) = match bytes.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, bytes),
    };
    let first = *digits.first()?;
    if !(b'1'..=b'9').contains(&first) || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut value: u64 = 0;
    for &digit in digits {
        value = value.checked_mul(10)?.checked_add(u64::from(digit - b'0'))?;
    }
    if negative { 0_i64.checked_sub_unsigned(value) } else { i64::try_from(value).ok() }
}

/// Redis's `strtod`-based float argument: no spaces, no NaN; `inf` and `-inf` allowed.
#[must_use]
pub fn parse_f64(bytes: &[u8]) -> Option<f64> {
    let text = std::str::from_utf8(bytes).ok()?;
    if text.is_empty() || text.starts_with(|c: char| c.is_ascii_whitespace()) {
        return None;
    }
    let value: f64 = text.parse().ok()?;
    (!value.is_nan()).then_some(value)
}

/// An integer argument, or Redis's integer error.
fn integer(argument: &[u8]) -> Result<i64, Reply> {
    parse_i64(argument).ok_or_else(|| Reply::error(reply::NOT_INTEGER))
}

/// A float argument, or Redis's float error.
fn float(argument: &[u8]) -> Result<f64, Reply> {
    parse_f64(argument).ok_or_else(|| Reply::error(reply::NOT_FLOAT))
}

/// An optional count argument of `LPOP`/`SPOP`/`ZPOPMIN`: an integer >= 0.
fn positive_count(argument: &[u8]) -> Result<u64, Reply> {
    let count = integer(argument)?;
    u64::try_from(count).map_err(|_| Reply::error(reply::NOT_POSITIVE))
}

fn owned(arguments: &[&[u8]]) -> Vec<Vec<u8>> {
    arguments.iter().map(|argument| argument.to_vec()).collect()
}

fn pairs(arguments: &[&[u8]]) -> Vec<(Vec<u8>, Vec<u8>)> {
    arguments.chunks_exact(2).map(|pair| (pair[0].to_vec(), pair[1].to_vec())).collect()
}
