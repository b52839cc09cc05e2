//! Server and client commands answered by the connection itself (tier 0 of
//! `../shared/REDIS-COMPAT.md`): `SELECT`, `RESET`, `AUTH`, `CLIENT ...`, `COMMAND ...`,
//! `CONFIG GET|SET`, `TIME`, `INFO`.
//!
//! What Klein reports where Redis reports its persistence settings: every acknowledged write
//! is on a majority's disks before the reply, so `CONFIG GET appendonly` says `yes` and
//! `appendfsync` says `always`; `save` is empty (snapshots are Klein's own, per group).

use std::time::{SystemTime, UNIX_EPOCH};

use super::{unknown_subcommand, wrong_arity};
use crate::embedded::Consistency;
use crate::server::resp::{Argument, Protocol, ReplyWriter};
use crate::server::session::{Flow, Session};

/// The fixed configuration parameters `CONFIG GET` answers, with their values; `timeout` and
/// `requirepass` come from the node's settings and `CONFIG SET` changes them.
const CONFIG: [(&str, &str); 7] = [
    ("save", ""),
    ("appendonly", "yes"),
    ("appendfsync", "always"),
    ("maxmemory", "0"),
    ("maxmemory-policy", "noeviction"),
    ("databases", "1"),
    ("proto-max-bulk-len", "16777216"),
];

/// Runs `name` if it is one of these commands; `None` if it is not.
pub fn dispatch(
    session: &mut Session,
    name: &[u8],
    arguments: &[Argument<'_>],
    out: &mut ReplyWriter<'_>,
) -> Option<Flow> {
    let upper = name.to_ascii_uppercase();
    match upper.as_slice() {
        b"SELECT" => select(arguments, out),
        b"RESET" => {
            *session = session.reset();
            out.set_protocol(Protocol::Resp2);
            out.simple("RESET");
        }
        b"AUTH" => auth(session, arguments, out),
        b"CLIENT" => client(session, arguments, out),
        b"COMMAND" => command(arguments, out),
        b"CONFIG" => config(session, arguments, out),
        b"TIME" => time(arguments, out),
        b"INFO" => super::info::info(session, arguments, out),
        b"KLEIN" => super::info::klein(session, arguments, out),
        _ => return None,
    }
    Some(Flow::Continue)
}

fn select(arguments: &[Argument<'_>], out: &mut ReplyWriter<'_>) {
    match arguments {
        [_, index] => match std::str::from_utf8(index).ok().and_then(|s| s.parse::<i64>().ok()) {
            Some(0) => out.simple("OK"),
            Some(_) => out.error("ERR DB index is out of range"),
            None => out.error("ERR value is not an integer or out of range"),
        },
        _ => out.error(&wrong_arity("select")),
    }
}

/// `AUTH [user] password` (Redis's texts: `WRONGPASS`, or the `AUTH <password> called
/// without any password configured` error when the default user has none).
fn auth(session: &mut Session, arguments: &[Argument<'_>], out: &mut ReplyWriter<'_>) {
    let result = match arguments {
        [_, password] => session.authenticate(None, password),
        [_, user, password] => session.authenticate(Some(user), password),
        _ => {
            out.error(&wrong_arity("auth"));
            return;
        }
    };
    match result {
        Ok(()) => out.simple("OK"),
        Err(text) => out.error(text),
    }
}

fn client(session: &mut Session, arguments: &[Argument<'_>], out: &mut ReplyWriter<'_>) {
    let Some(sub) = arguments.get(1) else {
        out.error(&wrong_arity("client"));
        return;
    };
    let sub = sub.to_ascii_uppercase();
    match (sub.as_slice(), arguments.len()) {
        (b"ID", 2) => out.integer(i64::try_from(session.client_id()).unwrap_or(i64::MAX)),
        (b"GETNAME", 2) => match session.name() {
            Some(name) => out.bulk(name),
            None => out.null(),
        },
        (b"SETNAME", 3) => {
            if arguments[2].iter().all(|byte| (b'!'..=b'~').contains(byte)) {
                session.set_name(&arguments[2]);
                out.simple("OK");
            } else {
                out.error(
                    "ERR Client names cannot contain spaces, newlines or special characters.",
                );
            }
        }
        (b"SETINFO", 4) => {
            let attribute = arguments[2].to_ascii_uppercase();
            if attribute == b"LIB-NAME" || attribute == b"LIB-VER" {
                out.simple("OK");
            } else {
                let attribute = String::from_utf8_lossy(&arguments[2]);
                out.error(&format!("ERR Unrecognized option '{attribute}'"));
            }
        }
        (b"INFO" | b"LIST", 2) => out.verbatim(&client_line(session)),
        (b"NO-EVICT" | b"NO-TOUCH", 3) => out.simple("OK"),
        (b"CONSISTENCY", 3) => {
            let consistency = match arguments[2].to_ascii_lowercase().as_slice() {
                b"linearizable" => Consistency::Linearizable,
                b"lease" => Consistency::Lease,
                b"stale" => Consistency::Stale,
                _ => {
                    out.error("ERR consistency must be linearizable, lease or stale");
                    return;
                }
            };
            session.set_consistency(consistency);
            out.simple("OK");
        }
        (b"CONSISTENCY", 2) => {
            let name = match session.consistency() {
                Consistency::Linearizable => "linearizable",
                Consistency::Lease => "lease",
                Consistency::Stale => "stale",
            };
            out.bulk(name.as_bytes());
        }
        _ => out.error(&unknown_subcommand(&arguments[1], "CLIENT")),
    }
}

/// One `CLIENT LIST` line for this connection (Klein lists only the caller's own).
fn client_line(session: &Session) -> String {
    let name = session.name().map(String::from_utf8_lossy).unwrap_or_default();
    format!(
        "id={} name={} db=0 user={} resp={} lib-name= lib-ver=\n",
        session.client_id(),
        name,
        String::from_utf8_lossy(session.user()),
        session.protocol().version()
    )
}

fn command(arguments: &[Argument<'_>], out: &mut ReplyWriter<'_>) {
    match arguments.get(1).map(|sub| sub.to_ascii_uppercase()) {
        // Clients fall back to static help when these fail; an empty reply is honest.
        None => out.array(0),
        Some(sub) if sub == b"COUNT" => out.integer(0),
        Some(sub) if sub == b"DOCS" => out.map(0),
        Some(sub) if sub == b"INFO" => {
            out.array(arguments.len() - 2);
            for _ in 2..arguments.len() {
                out.null();
            }
        }
        Some(_) => out.error(&unknown_subcommand(&arguments[1], "COMMAND")),
    }
}

fn config(session: &Session, arguments: &[Argument<'_>], out: &mut ReplyWriter<'_>) {
    let sub = arguments.get(1).map(|sub| sub.to_ascii_uppercase());
    match sub.as_deref() {
        Some(b"GET") if arguments.len() >= 3 => {
            let settings = session.settings();
            let timeout = settings.timeout_seconds().to_string().into_bytes();
            let requirepass = settings.requirepass();
            let mut all: Vec<(&str, &[u8])> =
                CONFIG.iter().map(|(name, value)| (*name, value.as_bytes())).collect();
            all.push(("timeout", &timeout));
            all.push(("requirepass", &requirepass));
            let matched: Vec<(&str, &[u8])> = all
                .into_iter()
                .filter(|(name, _)| {
                    arguments[2..].iter().any(|pattern| glob_matches(pattern, name.as_bytes()))
                })
                .collect();
            out.map(matched.len());
            for (name, value) in matched {
                out.bulk(name.as_bytes());
                out.bulk(value);
            }
        }
        Some(b"SET") if arguments.len() >= 4 && arguments.len().is_multiple_of(2) => {
            config_set(session, &arguments[2..], out);
        }
        Some(b"RESETSTAT") if arguments.len() == 2 => out.simple("OK"),
        Some(b"GET" | b"SET") => {
            let sub = String::from_utf8_lossy(&arguments[1]).to_ascii_lowercase();
            out.error(&wrong_arity(&format!("config|{sub}")));
        }
        Some(_) => out.error(&unknown_subcommand(&arguments[1], "CONFIG")),
        None => out.error(&wrong_arity("config")),
    }
}

/// `CONFIG SET name value [name value ...]`: `timeout` and `requirepass` change for the whole
/// node (every value is checked before any changes, as in Redis); other names are refused.
fn config_set(session: &Session, pairs: &[Argument<'_>], out: &mut ReplyWriter<'_>) {
    let mut timeout = None;
    let mut requirepass = None;
    for pair in pairs.chunks(2) {
        let name = String::from_utf8_lossy(&pair[0]).to_ascii_lowercase();
        match name.as_str() {
            "timeout" => {
                let parsed =
                    std::str::from_utf8(&pair[1]).ok().and_then(|text| text.parse::<u64>().ok());
                let Some(seconds) = parsed else {
                    out.error(
                        "ERR CONFIG SET failed (possibly related to argument 'timeout') - \
                         argument couldn't be parsed into an integer",
                    );
                    return;
                };
                timeout = Some(seconds);
            }
            "requirepass" => requirepass = Some(&pair[1]),
            _ => {
                out.error(&format!(
                    "ERR CONFIG SET failed (possibly related to argument '{name}') - Klein does \
                     not change this setting at runtime"
                ));
                return;
            }
        }
    }
    let settings = session.settings();
    if let Some(seconds) = timeout {
        settings.set_timeout_seconds(seconds);
    }
    if let Some(password) = requirepass {
        settings.set_requirepass(password);
    }
    out.simple("OK");
}

/// `*` and `?` globbing for `CONFIG GET` patterns (iterative, no backtracking blow-up).
fn glob_matches(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && (pattern[p] == b'?' || pattern[p].eq_ignore_ascii_case(&text[t])) {
            p += 1;
            t += 1;
        } else if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, t));
            p += 1;
        } else if let Some((star_p, star_t)) = star {
            p = star_p + 1;
            t = star_t + 1;
            star = Some((star_p, star_t + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&byte| byte == b'*')
}

fn time(arguments: &[Argument<'_>], out: &mut ReplyWriter<'_>) {
    if arguments.len() != 1 {
        out.error(&wrong_arity("time"));
        return;
    }
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    out.array(2);
    out.bulk(now.as_secs().to_string().as_bytes());
    out.bulk(now.subsec_micros().to_string().as_bytes());
}

/// `INFO`: the fields clients read (ioredis waits for `loading:0`).
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_globs_match_like_redis() {
        assert!(glob_matches(b"*", b"save"));
        assert!(glob_matches(b"max*", b"maxmemory-policy"));
        assert!(glob_matches(b"SAVE", b"save"));
        assert!(!glob_matches(b"max", b"maxmemory"));
        assert!(glob_matches(b"m?xmemory", b"maxmemory"));
    }

    fn run(session: &mut Session, words: &[&str]) -> String {
        let arguments: Vec<Argument<'_>> =
            words.iter().map(|word| std::borrow::Cow::Borrowed(word.as_bytes())).collect();
        let mut out = Vec::new();
        let mut writer = ReplyWriter::new(session.protocol(), &mut out);
        crate::server::commands::dispatch(session, &arguments, &mut writer);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn config_get_and_set_timeout_and_requirepass_for_the_whole_node() {
        let settings = std::sync::Arc::new(crate::server::access::ServerSettings::default());
        let mut session = Session::new(1).with_settings(std::sync::Arc::clone(&settings));
        assert_eq!(
            run(&mut session, &["CONFIG", "GET", "timeout"]),
            "*2\r\n$7\r\ntimeout\r\n$1\r\n0\r\n"
        );
        assert_eq!(
            run(&mut session, &["CONFIG", "SET", "timeout", "30", "requirepass", "pw"]),
            "+OK\r\n"
        );
        assert_eq!(
            run(&mut session, &["CONFIG", "GET", "timeout", "requirepass"]),
            "*4\r\n$7\r\ntimeout\r\n$2\r\n30\r\n$11\r\nrequirepass\r\n$2\r\npw\r\n"
        );
        assert_eq!(settings.timeout_seconds(), 30);
        // New connections (and RESET ones) must authenticate now; this one already is.
        assert!(session.is_authenticated());
        assert!(!session.reset().is_authenticated());
        assert!(
            !Session::new(2).with_settings(std::sync::Arc::clone(&settings)).is_authenticated()
        );
        // A bad value changes nothing, not even the good pairs before it.
        assert_eq!(
            run(&mut session, &["CONFIG", "SET", "requirepass", "", "timeout", "x"]),
            "-ERR CONFIG SET failed (possibly related to argument 'timeout') - argument couldn't \
             be parsed into an integer\r\n"
        );
        assert_eq!(settings.requirepass(), b"pw");
        assert!(
            run(&mut session, &["CONFIG", "SET", "maxmemory", "1"])
                .starts_with("-ERR CONFIG SET failed")
        );
        assert_eq!(run(&mut session, &["CONFIG", "SET", "requirepass", ""]), "+OK\r\n");
        assert!(Session::new(3).with_settings(settings).is_authenticated());
    }

    #[test]
    fn auth_answers_redis_texts() {
        let mut session = Session::new(1);
        assert_eq!(
            run(&mut session, &["AUTH", "x"]),
            format!("-{}\r\n", crate::server::access::AUTH_WITHOUT_PASSWORD)
        );
        assert_eq!(run(&mut session, &["AUTH", "default", "x"]), "+OK\r\n");
        assert_eq!(
            run(&mut session, &["AUTH", "bob", "x"]),
            "-WRONGPASS invalid username-password pair or user is disabled.\r\n"
        );
        assert_eq!(
            run(&mut session, &["AUTH"]),
            "-ERR wrong number of arguments for 'auth' command\r\n"
        );
    }
}
