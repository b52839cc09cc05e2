//! Connection commands: `PING`, `ECHO`, `HELLO`, `QUIT`.
//!
//! These answer from the connection's own state and never touch the replicated log.

use super::wrong_arity;
use crate::server::resp::{Argument, Protocol, ReplyWriter};
use crate::server::session::{Flow, Session};

/// The Redis version Klein reports in `HELLO` (and later `INFO`). Clients gate features on it
/// (Jedis' client-side cache needs 7.4), so it names the Redis release whose commands and
/// replies Klein follows; Klein's own version is reported beside it.
pub const REDIS_COMPATIBLE_VERSION: &str = "7.4.0";

/// Redis's answer to `HELLO` without `AUTH` before the connection authenticated.
const HELLO_NOAUTH: &str = "NOAUTH HELLO must be called with the client already authenticated, \
    otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the \
    client and select the RESP protocol version at the same time";

/// Runs `name` if it is a connection command; `None` if it is not one.
pub fn dispatch(
    session: &mut Session,
    name: &[u8],
    arguments: &[Argument<'_>],
    out: &mut ReplyWriter<'_>,
) -> Option<Flow> {
    let flow = if name.eq_ignore_ascii_case(b"PING") {
        ping(arguments, out)
    } else if name.eq_ignore_ascii_case(b"ECHO") {
        echo(arguments, out)
    } else if name.eq_ignore_ascii_case(b"HELLO") {
        hello(session, arguments, out)
    } else if name.eq_ignore_ascii_case(b"QUIT") {
        out.simple("OK");
        Flow::Close
    } else {
        return None;
    };
    Some(flow)
}

fn ping(arguments: &[Argument<'_>], out: &mut ReplyWriter<'_>) -> Flow {
    match arguments {
        [_] => out.simple("PONG"),
        [_, message] => out.bulk(message),
        _ => out.error(&wrong_arity("ping")),
    }
    Flow::Continue
}

fn echo(arguments: &[Argument<'_>], out: &mut ReplyWriter<'_>) -> Flow {
    match arguments {
        [_, message] => out.bulk(message),
        _ => out.error(&wrong_arity("echo")),
    }
    Flow::Continue
}

/// `HELLO [protover [AUTH username password] [SETNAME clientname]]`, as in Redis 7
/// (`helloCommand`): checks everything before it changes anything, then switches the protocol
/// and replies with the server's handshake map in the new protocol.
fn hello(session: &mut Session, arguments: &[Argument<'_>], out: &mut ReplyWriter<'_>) -> Flow {
    let mut protocol = None;
    if let Some(version) = arguments.get(1) {
        let version = std::str::from_utf8(version).ok().and_then(|text| text.parse::<i64>().ok());
        protocol = match version {
            None => {
                out.error("ERR Protocol version is not an integer or out of range");
                return Flow::Continue;
            }
            Some(2) => Some(Protocol::Resp2),
            Some(3) => Some(Protocol::Resp3),
            Some(_) => {
                out.error("NOPROTO unsupported protocol version");
                return Flow::Continue;
            }
        };
    }
    let mut name = None;
    let mut credentials = None;
    let mut index = 2;
    while let Some(option) = arguments.get(index) {
        let more = arguments.len() - 1 - index;
        if option.eq_ignore_ascii_case(b"AUTH") && more >= 2 {
            credentials = Some((&arguments[index + 1], &arguments[index + 2]));
            index += 3;
        } else if option.eq_ignore_ascii_case(b"SETNAME") && more >= 1 {
            let candidate = &arguments[index + 1];
            if !is_valid_client_name(candidate) {
                out.error(
                    "ERR Client names cannot contain spaces, newlines or special characters.",
                );
                return Flow::Continue;
            }
            name = Some(candidate);
            index += 2;
        } else {
            let option = String::from_utf8_lossy(option);
            out.error(&format!("ERR Syntax error in HELLO option '{option}'"));
            return Flow::Continue;
        }
    }
    if let Some((user, password)) = credentials
        && let Err(text) = session.authenticate(Some(user), password)
    {
        out.error(text);
        return Flow::Continue;
    }
    if !session.is_authenticated() {
        out.error(HELLO_NOAUTH);
        return Flow::Continue;
    }
    if let Some(name) = name {
        session.set_name(name);
    }
    if let Some(protocol) = protocol {
        session.set_protocol(protocol);
        out.set_protocol(protocol);
    }
    out.map(8);
    out.bulk(b"server");
    out.bulk(b"redis");
    out.bulk(b"version");
    out.bulk(REDIS_COMPATIBLE_VERSION.as_bytes());
    out.bulk(b"proto");
    out.integer(out.protocol().version());
    out.bulk(b"id");
    out.integer(i64::try_from(session.client_id()).unwrap_or(i64::MAX));
    out.bulk(b"mode");
    out.bulk(b"standalone");
    out.bulk(b"role");
    out.bulk(b"master");
    out.bulk(b"modules");
    out.array(0);
    out.bulk(b"klein_version");
    out.bulk(env!("CARGO_PKG_VERSION").as_bytes());
    Flow::Continue
}

/// Redis accepts client names made of printable ASCII without spaces (`validateClientName`).
fn is_valid_client_name(name: &[u8]) -> bool {
    name.iter().all(|byte| (b'!'..=b'~').contains(byte))
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use super::*;
    use crate::server::commands;

    fn run(session: &mut Session, words: &[&str]) -> (String, Option<Flow>) {
        let arguments: Vec<Argument<'_>> =
            words.iter().map(|word| Cow::Borrowed(word.as_bytes())).collect();
        let mut out = Vec::new();
        let mut writer = ReplyWriter::new(session.protocol(), &mut out);
        let flow = commands::dispatch(session, &arguments, &mut writer);
        (String::from_utf8(out).unwrap(), flow)
    }

    fn reply(session: &mut Session, words: &[&str]) -> String {
        run(session, words).0
    }

    #[test]
    fn ping_and_echo() {
        let mut session = Session::new(1);
        assert_eq!(reply(&mut session, &["PING"]), "+PONG\r\n");
        assert_eq!(reply(&mut session, &["ping", "hi"]), "$2\r\nhi\r\n");
        assert_eq!(
            reply(&mut session, &["PING", "a", "b"]),
            "-ERR wrong number of arguments for 'ping' command\r\n"
        );
        assert_eq!(reply(&mut session, &["EcHo", "x"]), "$1\r\nx\r\n");
        assert_eq!(
            reply(&mut session, &["ECHO"]),
            "-ERR wrong number of arguments for 'echo' command\r\n"
        );
    }

    #[test]
    fn hello_3_switches_to_resp3_and_reports_the_handshake_fields() {
        let mut session = Session::new(7);
        let text = reply(&mut session, &["HELLO", "3"]);
        assert!(text.starts_with("%8\r\n$6\r\nserver\r\n$5\r\nredis\r\n"), "{text}");
        assert!(text.contains("$5\r\nproto\r\n:3\r\n"), "{text}");
        assert!(text.contains("$2\r\nid\r\n:7\r\n"), "{text}");
        assert!(text.contains("$4\r\nmode\r\n$10\r\nstandalone\r\n"), "{text}");
        assert!(text.contains("$4\r\nrole\r\n$6\r\nmaster\r\n"), "{text}");
        assert_eq!(session.protocol(), Protocol::Resp3);
        assert_eq!(reply(&mut session, &["HELLO", "2"]).get(..4), Some("*16\r"));
        assert_eq!(session.protocol(), Protocol::Resp2);
    }

    #[test]
    fn hello_without_version_keeps_the_protocol() {
        let mut session = Session::new(1);
        assert!(reply(&mut session, &["HELLO"]).contains("proto\r\n:2\r\n"));
    }

    #[test]
    fn hello_refuses_bad_versions_and_options_without_changing_anything() {
        let mut session = Session::new(1);
        assert_eq!(
            reply(&mut session, &["HELLO", "4"]),
            "-NOPROTO unsupported protocol version\r\n"
        );
        assert_eq!(
            reply(&mut session, &["HELLO", "x"]),
            "-ERR Protocol version is not an integer or out of range\r\n"
        );
        assert_eq!(
            reply(&mut session, &["HELLO", "3", "SETNAME"]),
            "-ERR Syntax error in HELLO option 'SETNAME'\r\n"
        );
        assert_eq!(
            reply(&mut session, &["HELLO", "3", "AUTH", "bob", "pw"]),
            "-WRONGPASS invalid username-password pair or user is disabled.\r\n"
        );
        assert_eq!(
            reply(&mut session, &["HELLO", "3", "SETNAME", "a b"]),
            "-ERR Client names cannot contain spaces, newlines or special characters.\r\n"
        );
        assert_eq!(session.protocol(), Protocol::Resp2);
        assert_eq!(session.name(), None);
    }

    #[test]
    fn hello_with_auth_default_and_setname_succeeds() {
        let mut session = Session::new(1);
        let text = reply(&mut session, &["hello", "3", "auth", "default", "x", "setname", "app"]);
        assert!(text.starts_with("%8\r\n"), "{text}");
        assert_eq!(session.name(), Some(&b"app"[..]));
    }

    #[test]
    fn quit_replies_ok_and_closes() {
        let mut session = Session::new(1);
        assert_eq!(run(&mut session, &["QUIT"]), ("+OK\r\n".into(), Some(Flow::Close)));
    }

    #[test]
    fn other_commands_are_left_to_the_node() {
        let mut session = Session::new(1);
        assert_eq!(run(&mut session, &["NOPE", "x"]), (String::new(), None));
        assert_eq!(run(&mut session, &["GET", "k"]), (String::new(), None));
    }
}
