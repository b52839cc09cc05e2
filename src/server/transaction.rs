//! `MULTI` / `EXEC` / `DISCARD` / `WATCH` / `UNWATCH`: a connection's transaction state and
//! what each of these commands (and every command inside `MULTI`) does with it.
//!
//! `MULTI` starts queueing: data commands are parsed at once (a syntax, arity or unknown
//! command error answers that command and dooms the transaction: `EXEC` then answers
//! `EXECABORT`); connection commands that only read or change this connection (`PING`,
//! `ECHO`, `CLIENT`, `CONFIG`, ...) are queued and run at `EXEC`. `EXEC` sends the queued data
//! commands as one `Exec` command to the one group owning all their keys (`CROSSSLOT`
//! otherwise), so they apply atomically at one log position on every replica, and answers
//! one array.
//!
//! `WATCH` reads the keys' modification versions linearizably through the node; `EXEC`
//! carries them as guards that the state machine checks when it applies the transaction,
//! answering a null array if any key changed (`docs/design/state-machine.md`, "Transactions").
//!
//! Bounds: [`MULTI_QUEUED_COMMANDS_MAX`] commands and [`MULTI_QUEUED_BYTES_MAX`] argument
//! bytes per transaction (over either: an error, and the transaction is discarded);
//! [`WATCHED_KEYS_COUNT_MAX`] watched keys per connection.

use super::commands::{self, wrong_arity};
use super::resp::{Argument, ReplyWriter};
use super::session::Session;
use crate::constants::{MULTI_QUEUED_BYTES_MAX, MULTI_QUEUED_COMMANDS_MAX, WATCHED_KEYS_COUNT_MAX};
use crate::embedded::{Command, Prepared};

/// Redis's answer to `EXEC` after a queued command was refused.
pub const EXECABORT: &str = "EXECABORT Transaction discarded because of previous errors.";

/// Redis's answer to a command that cannot be queued.
const NOT_ALLOWED: &str = "ERR Command not allowed inside a transaction";

/// Connection commands queued by `MULTI` and run by this connection at `EXEC`. `HELLO` and
/// `AUTH` are refused inside `MULTI` (they would change the protocol or the user in the
/// middle of the reply); `QUIT` and `RESET` act at once, as in Redis.
const QUEUED_LOCALLY: [&[u8]; 9] =
    [b"PING", b"ECHO", b"SELECT", b"CLIENT", b"COMMAND", b"CONFIG", b"TIME", b"INFO", b"UNWATCH"];

/// A queued command.
#[derive(Debug)]
enum Queued {
    /// A data command, for the group.
    Data(Command),
    /// A connection command, run by the connection at `EXEC` (its arguments).
    Local(Vec<Vec<u8>>),
}

/// An open `MULTI`.
#[derive(Debug, Default)]
pub struct Transaction {
    queued: Vec<Queued>,
    /// Argument bytes queued so far (each argument + 8).
    bytes: usize,
    /// A queued command was refused: `EXEC` answers [`EXECABORT`].
    doomed: bool,
}

/// What the connection does with a request after [`handle`].
pub enum Decision {
    /// Not a transaction matter: run the request as usual.
    NotHandled,
    /// Answered (the reply is written).
    Answered,
    /// `WATCH`: submit `prepared`; its reply (the versions) goes to [`watched`], and the
    /// client gets `+OK`.
    Watch {
        /// The version reads.
        prepared: Prepared,
        /// The keys, in the order of the versions.
        keys: Vec<Vec<u8>>,
    },
    /// `EXEC` with something to send: submit `prepared`, then answer with [`write_exec`].
    Exec {
        /// The one operation.
        prepared: Prepared,
        /// The reply array's elements in order.
        parts: Vec<Part>,
    },
}

/// One element of `EXEC`'s reply array.
#[derive(Debug)]
pub enum Part {
    /// A connection command's reply, already written in the session's protocol.
    Local(Vec<u8>),
    /// The next element of the group's reply.
    Data,
}

/// Handles `request` if it is a transaction command or if a `MULTI` is open.
pub fn handle(
    session: &mut Session,
    arguments: &[Argument<'_>],
    out: &mut ReplyWriter<'_>,
) -> Decision {
    let name = arguments[0].to_ascii_uppercase();
    let in_multi = session.transaction().is_some();
    match name.as_slice() {
        b"MULTI" if arguments.len() != 1 => out.error(&wrong_arity("multi")),
        b"MULTI" if in_multi => out.error("ERR MULTI calls can not be nested"),
        b"MULTI" => {
            session.set_transaction(Some(Transaction::default()));
            out.simple("OK");
        }
        b"EXEC" | b"DISCARD" if arguments.len() != 1 => {
            let name = String::from_utf8_lossy(&name).to_ascii_lowercase();
            doom(session, &wrong_arity(&name), out);
        }
        b"EXEC" | b"DISCARD" if !in_multi => {
            let name = String::from_utf8_lossy(&name);
            out.error(&format!("ERR {name} without MULTI"));
        }
        b"EXEC" => return exec(session, out),
        b"DISCARD" => {
            session.set_transaction(None);
            session.unwatch();
            out.simple("OK");
        }
        b"WATCH" if in_multi => out.error("ERR WATCH inside MULTI is not allowed"),
        b"WATCH" if arguments.len() < 2 => out.error(&wrong_arity("watch")),
        b"WATCH" => return watch(session, arguments, out),
        b"UNWATCH" if !in_multi && arguments.len() != 1 => out.error(&wrong_arity("unwatch")),
        b"UNWATCH" if !in_multi => {
            session.unwatch();
            out.simple("OK");
        }
        b"QUIT" | b"RESET" => return Decision::NotHandled,
        _ if !in_multi => return Decision::NotHandled,
        b"HELLO" | b"AUTH" => doom(session, NOT_ALLOWED, out),
        _ => queue(session, &name, arguments, out),
    }
    Decision::Answered
}

/// Answers `error` and dooms the open transaction (`EXEC` will answer [`EXECABORT`]).
fn doom(session: &mut Session, error: &str, out: &mut ReplyWriter<'_>) {
    if let Some(transaction) = session.transaction_mut() {
        transaction.doomed = true;
    }
    out.error(error);
}

fn queue(
    session: &mut Session,
    name: &[u8],
    arguments: &[Argument<'_>],
    out: &mut ReplyWriter<'_>,
) {
    let queued = if QUEUED_LOCALLY.contains(&name) {
        Queued::Local(arguments.iter().map(|argument| argument.to_vec()).collect())
    } else {
        let args: Vec<&[u8]> = arguments.iter().map(AsRef::as_ref).collect();
        let parsed = match session.handle() {
            Some(handle) => handle.parse_queued(&args),
            None => Err(crate::embedded::Reply::Error(commands::unknown_command(arguments))),
        };
        match parsed {
            Ok(command) => Queued::Data(command),
            Err(crate::embedded::Reply::Error(text)) => return doom(session, &text, out),
            Err(_) => return doom(session, "ERR the command cannot be queued", out),
        }
    };
    let bytes: usize = arguments.iter().map(|argument| argument.len() + 8).sum();
    let Some(transaction) = session.transaction_mut() else { return };
    if transaction.queued.len() >= MULTI_QUEUED_COMMANDS_MAX
        || transaction.bytes + bytes > MULTI_QUEUED_BYTES_MAX
    {
        session.set_transaction(None);
        session.unwatch();
        out.error(&format!(
            "ERR MULTI queue limit reached ({MULTI_QUEUED_COMMANDS_MAX} commands or \
             {MULTI_QUEUED_BYTES_MAX} bytes); transaction discarded"
        ));
        return;
    }
    transaction.bytes += bytes;
    transaction.queued.push(queued);
    out.simple("QUEUED");
}

fn watch(session: &mut Session, arguments: &[Argument<'_>], out: &mut ReplyWriter<'_>) -> Decision {
    let Some(handle) = session.handle() else {
        out.error("ERR WATCH needs the node's data path");
        return Decision::Answered;
    };
    let fresh: Vec<&[u8]> =
        arguments[1..].iter().map(AsRef::as_ref).filter(|key| !session.is_watched(key)).collect();
    if session.watched_count() + fresh.len() > WATCHED_KEYS_COUNT_MAX {
        out.error(&format!(
            "ERR too many watched keys (Klein watches at most {WATCHED_KEYS_COUNT_MAX} per \
             connection)"
        ));
        return Decision::Answered;
    }
    if fresh.is_empty() {
        out.simple("OK");
        return Decision::Answered;
    }
    let prepared = handle.prepare_watch(&fresh);
    let keys = fresh.iter().map(|key| key.to_vec()).collect();
    Decision::Watch { prepared, keys }
}

/// Records the versions a `WATCH` read (or its failure) and writes its reply.
pub fn watched(
    session: &mut Session,
    keys: Vec<Vec<u8>>,
    reply: Result<crate::embedded::Reply, String>,
    out: &mut ReplyWriter<'_>,
) {
    use crate::embedded::Reply;
    match reply {
        Ok(Reply::Array(versions)) if versions.len() == keys.len() => {
            for (key, version) in keys.into_iter().zip(versions) {
                let version = match version {
                    Reply::Integer(version) => u64::try_from(version).unwrap_or(0),
                    _ => 0,
                };
                session.watch(key, version);
            }
            out.simple("OK");
        }
        Ok(Reply::Error(text)) | Err(text) => {
            // The versions are unknown: the next EXEC must not trust the watch.
            session.break_watch();
            out.error(&text);
        }
        Ok(other) => {
            session.break_watch();
            out.error(&format!("ERR unexpected WATCH reply {other:?}"));
        }
    }
}

fn exec(session: &mut Session, out: &mut ReplyWriter<'_>) -> Decision {
    let transaction = session.set_transaction(None).unwrap_or_default();
    let (guards, broken) = session.unwatch();
    if transaction.doomed {
        out.error(EXECABORT);
        return Decision::Answered;
    }
    if broken {
        out.null_array();
        return Decision::Answered;
    }
    let mut parts = Vec::with_capacity(transaction.queued.len());
    let mut data = Vec::new();
    for queued in transaction.queued {
        match queued {
            Queued::Data(command) => {
                data.push(command);
                parts.push(Part::Data);
            }
            Queued::Local(arguments) => parts.push(Part::Local(run_local(session, &arguments))),
        }
    }
    let prepared = match session.handle() {
        Some(handle) => handle.prepare_exec(data, guards, session.consistency()),
        None => Ok(None),
    };
    match prepared {
        Ok(Some(prepared)) => Decision::Exec { prepared, parts },
        Ok(None) => {
            write_exec(&parts, Ok(crate::embedded::Reply::Array(Vec::new())), out);
            Decision::Answered
        }
        Err(reply) => {
            super::reply::write(&reply, out);
            Decision::Answered
        }
    }
}

/// Runs a queued connection command; its reply in the session's protocol.
fn run_local(session: &mut Session, arguments: &[Vec<u8>]) -> Vec<u8> {
    let mut bytes = Vec::new();
    let mut writer = ReplyWriter::new(session.protocol(), &mut bytes);
    if arguments[0].eq_ignore_ascii_case(b"UNWATCH") {
        if arguments.len() == 1 {
            writer.simple("OK");
        } else {
            writer.error(&wrong_arity("unwatch"));
        }
        return bytes;
    }
    let arguments: Vec<Argument<'_>> =
        arguments.iter().map(|argument| std::borrow::Cow::Borrowed(argument.as_slice())).collect();
    if commands::dispatch(session, &arguments, &mut writer).is_none() {
        writer.error(&commands::unknown_command(&arguments));
    }
    bytes
}

/// Writes `EXEC`'s reply: the array of `parts`, data parts taken in order from the group's
/// reply; a null array when a watched key changed; the error when the group refused.
pub fn write_exec(
    parts: &[Part],
    reply: Result<crate::embedded::Reply, String>,
    out: &mut ReplyWriter<'_>,
) {
    use crate::embedded::Reply;
    let mut data = match reply {
        Ok(Reply::Array(items)) => items.into_iter(),
        Ok(Reply::NullArray) => {
            out.null_array();
            return;
        }
        Ok(Reply::Error(text)) | Err(text) => {
            out.error(&text);
            return;
        }
        Ok(other) => {
            out.error(&format!("ERR unexpected EXEC reply {other:?}"));
            return;
        }
    };
    out.array(parts.len());
    for part in parts {
        match part {
            Part::Local(bytes) => out.raw(bytes),
            Part::Data => match data.next() {
                Some(reply) => super::reply::write(&reply, out),
                None => out.error("ERR EXEC reply is missing an element"),
            },
        }
    }
}
