//! Command dispatch: the command name picks a family, the family checks arity and runs it.
//!
//! One file per command family (Dragonfly's `*_family`), each with its tests. Unknown commands
//! get Redis's exact `ERR unknown command` text: clients (Lettuce's RESP2 fallback among them)
//! branch on it, and a command Klein does not support must never produce a wrong result.

pub mod connection;
pub mod info;
pub mod server;

use super::resp::{Argument, ReplyWriter};
use super::session::{Flow, Session};

/// Longest command name or argument quoted back in an error, as in Redis (`%.128s`).
const ERROR_QUOTE_BYTES_MAX: usize = 128;

/// Runs one request (`arguments` is never empty) if it is a connection or server command and
/// writes its reply; `None` for a data command, which goes to the node.
pub fn dispatch(
    session: &mut Session,
    arguments: &[Argument<'_>],
    out: &mut ReplyWriter<'_>,
) -> Option<Flow> {
    debug_assert!(!arguments.is_empty());
    let name = &arguments[0];
    connection::dispatch(session, name, arguments, out)
        .or_else(|| server::dispatch(session, name, arguments, out))
}

/// Redis's error for an unknown subcommand of `command` (upper case, as Redis prints it).
#[must_use]
pub fn unknown_subcommand(sub: &[u8], command: &str) -> String {
    format!(
        "ERR unknown subcommand '{}'. Try {command} HELP.",
        lossy_prefix(sub, ERROR_QUOTE_BYTES_MAX)
    )
}

/// Redis's `unknown command` error: the name and the first arguments, quoted, at most 128
/// bytes of each and about 128 bytes of arguments in all (`processCommand` in server.c). The
/// text is the state machine's, so a node with and without a data path answer alike.
#[must_use]
pub fn unknown_command(arguments: &[Argument<'_>]) -> String {
    let args: Vec<&[u8]> = arguments.iter().map(AsRef::as_ref).collect();
    crate::embedded::unknown_command_text(&args)
}

/// Redis's arity error for `command` (lower case, as Redis prints its full name).
#[must_use]
pub fn wrong_arity(command: &str) -> String {
    format!("ERR wrong number of arguments for '{command}' command")
}

fn lossy_prefix(bytes: &[u8], max: usize) -> String {
    String::from_utf8_lossy(&bytes[..bytes.len().min(max)]).into_owned()
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use super::*;

    fn arguments<'a>(words: &[&'a str]) -> Vec<Argument<'a>> {
        words.iter().map(|word| Cow::Borrowed(word.as_bytes())).collect()
    }

    #[test]
    fn unknown_command_text_matches_redis() {
        assert_eq!(
            unknown_command(&arguments(&["foo"])),
            "ERR unknown command 'foo', with args beginning with: "
        );
        assert_eq!(
            unknown_command(&arguments(&["foo", "a", "b"])),
            "ERR unknown command 'foo', with args beginning with: 'a' 'b' "
        );
    }

    #[test]
    fn unknown_command_quotes_at_most_about_128_bytes() {
        let long = "x".repeat(300);
        let text = unknown_command(&arguments(&[&long, &long, &long]));
        assert!(text.len() < 2 * ERROR_QUOTE_BYTES_MAX + 80, "{}", text.len());
    }
}
