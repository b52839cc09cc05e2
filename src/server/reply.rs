//! Writing a data command's [`Reply`] in the connection's protocol, and the texts of the
//! errors the node itself answers (overload, no master, loading).

use crate::embedded::{Error, Reply, ShardError};
use crate::server::resp::ReplyWriter;

/// Writes `reply` as Redis 7 does under the writer's protocol (the table on [`Reply`]).
pub fn write(reply: &Reply, out: &mut ReplyWriter<'_>) {
    match reply {
        Reply::Ok => out.simple("OK"),
        Reply::Simple(text) => out.simple(text),
        Reply::Error(text) => out.error(text),
        Reply::Integer(value) => out.integer(*value),
        Reply::Bulk(bytes) => out.bulk(bytes),
        Reply::Null => out.null(),
        Reply::NullArray => out.null_array(),
        Reply::Array(items) => {
            out.array(items.len());
            for item in items {
                write(item, out);
            }
        }
        Reply::Map(pairs) => {
            out.map(pairs.len());
            for (key, value) in pairs {
                write(key, out);
                write(value, out);
            }
        }
        Reply::Set(items) => {
            out.set(items.len());
            for item in items {
                write(item, out);
            }
        }
        Reply::Double(value) => out.double(*value),
        Reply::Boolean(value) => out.boolean(*value),
        Reply::ScoredMembers(pairs) => write_scored(pairs, out),
    }
}

/// `ZRANGE ... WITHSCORES`: RESP3 pairs `[member, score]`, RESP2 a flat array with the scores
/// as bulk strings.
fn write_scored(pairs: &[(Vec<u8>, f64)], out: &mut ReplyWriter<'_>) {
    use crate::server::resp::Protocol;
    match out.protocol() {
        Protocol::Resp3 => {
            out.array(pairs.len());
            for (member, score) in pairs {
                out.array(2);
                out.bulk(member);
                out.double(*score);
            }
        }
        Protocol::Resp2 => {
            out.array(pairs.len() * 2);
            for (member, score) in pairs {
                out.bulk(member);
                out.double(*score);
            }
        }
    }
}

/// The error line for a request the node could not run.
#[must_use]
pub fn error_text(error: &Error) -> String {
    match error {
        Error::Overloaded => {
            "BUSY Klein is overloaded: the key's group has too much queued; retry later".into()
        }
        Error::NotMaster { master: None } => {
            "TRYAGAIN no master for the key's group yet (an election is running); retry".into()
        }
        Error::NotMaster { master: Some(node) } => {
            format!("TRYAGAIN node {node} is the master of the key's group; send the command there")
        }
        Error::Unavailable(reason) if reason.contains("recovering") => {
            "LOADING Klein is loading the dataset in memory".into()
        }
        Error::Unavailable(reason) => format!("ERR unavailable: {reason}"),
        Error::Refused(text) => text.clone(),
    }
}

/// [`error_text`] of a shard's refusal.
#[must_use]
pub fn shard_error_text(error: ShardError) -> String {
    error_text(&Error::from(error))
}
