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

/// The configuration parameters `CONFIG GET` answers, with their values.
const CONFIG: [(&str, &str); 8] = [
    ("save", ""),
    ("appendonly", "yes"),
    ("appendfsync", "always"),
    ("maxmemory", "0"),
    ("maxmemory-policy", "noeviction"),
    ("databases", "1"),
    ("timeout", "0"),
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
        b"AUTH" => auth(arguments, out),
        b"CLIENT" => client(session, arguments, out),
        b"COMMAND" => command(arguments, out),
        b"CONFIG" => config(arguments, out),
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

/// `AUTH [user] password`: until users and passwords exist, the only user is `default`
/// without a password, and Redis answers that case this way.
fn auth(arguments: &[Argument<'_>], out: &mut ReplyWriter<'_>) {
    match arguments.len() {
        2 => out.error(
            "ERR AUTH <password> called without any password configured for the default \
             user. Are you sure your configuration is correct?",
        ),
        3 if arguments[1].as_ref() == b"default" => out.simple("OK"),
        3 => out.error("WRONGPASS invalid username-password pair or user is disabled."),
        _ => out.error(&wrong_arity("auth")),
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
        "id={} name={} db=0 resp={} lib-name= lib-ver=\n",
        session.client_id(),
        name,
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

fn config(arguments: &[Argument<'_>], out: &mut ReplyWriter<'_>) {
    let sub = arguments.get(1).map(|sub| sub.to_ascii_uppercase());
    match sub.as_deref() {
        Some(b"GET") if arguments.len() >= 3 => {
            let matched: Vec<(&str, &str)> = CONFIG
                .iter()
                .copied()
                .filter(|(name, _)| {
                    arguments[2..].iter().any(|pattern| glob_matches(pattern, name.as_bytes()))
                })
                .collect();
            out.map(matched.len());
            for (name, value) in matched {
                out.bulk(name.as_bytes());
                out.bulk(value.as_bytes());
            }
        }
        Some(b"SET") if arguments.len() >= 4 && arguments.len().is_multiple_of(2) => {
            let name = String::from_utf8_lossy(&arguments[2]).to_ascii_lowercase();
            out.error(&format!(
                "ERR CONFIG SET failed (possibly related to argument '{name}') - Klein does not \
                 change this setting at runtime yet"
            ));
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
}
