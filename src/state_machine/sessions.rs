//! Exactly-once retries: per client session, the replies to its newest sequence numbers.
//!
//! A retried entry (same client, same non-zero sequence) gets the reply it got the first time
//! instead of being applied again. Bounded three ways, all deterministic (driven only by the
//! log): replies per session ([`SESSION_REPLIES_COUNT_MAX`]) and bytes per session
//! ([`SESSION_REPLY_BYTES_MAX`]) drop the lowest sequence numbers first, and sessions
//! ([`SESSIONS_COUNT_MAX`]) drop the one with the oldest last stamp (then the lowest id). A
//! reply too large to keep ([`RETAINED_REPLY_BYTES_MAX`]) and a sequence number at or below
//! the forgotten ones get an error, never a second application. A forgotten session is
//! indistinguishable from a new one: its retries apply again (documented limit).

use std::collections::{BTreeMap, BTreeSet};

use super::codec::{DecodeError, Field, Reader, put_length, put_u64};
use super::limits::{
    RETAINED_REPLY_BYTES_MAX, SESSION_REPLIES_COUNT_MAX, SESSION_REPLY_BYTES_MAX,
    SESSIONS_COUNT_MAX,
};
use super::reply::{self, Reply};

/// One client's retained replies.
#[derive(Clone, Debug, Default, PartialEq)]
struct Session {
    last_stamp: u64,
    /// Highest sequence number whose reply was dropped; at or below it, a retry gets an error.
    floor: u64,
    /// Sequence number to the encoded reply (`None`: too large to retain).
    replies: BTreeMap<u64, Option<Vec<u8>>>,
    bytes: usize,
}

/// All client sessions.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Sessions {
    clients: BTreeMap<u64, Session>,
    by_age: BTreeSet<(u64, u64)>,
}

impl Sessions {
    /// The reply already given to `(client, sequence)`, if it was applied before.
    #[must_use]
    pub fn replay(&self, client: u64, sequence: u64) -> Option<Reply> {
        let session = self.clients.get(&client)?;
        match session.replies.get(&sequence) {
            Some(Some(encoded)) => Some(
                Reply::get(&mut Reader::new(encoded)).expect("retained replies were encoded here"),
            ),
            Some(None) => Some(Reply::error(reply::REPLY_NOT_RETAINED)),
            None if sequence <= session.floor => Some(Reply::error(reply::REPLY_NOT_RETAINED)),
            None => None,
        }
    }

    /// Records the reply to a newly applied `(client, sequence)` at `stamp`.
    pub fn record(&mut self, client: u64, sequence: u64, stamp: u64, reply: &Reply) {
        let mut encoded = Vec::new();
        reply.put(&mut encoded);
        let encoded = (encoded.len() <= RETAINED_REPLY_BYTES_MAX).then_some(encoded);
        let session = self.clients.entry(client).or_default();
        self.by_age.remove(&(session.last_stamp, client));
        session.last_stamp = session.last_stamp.max(stamp);
        self.by_age.insert((session.last_stamp, client));
        session.bytes += encoded.as_ref().map_or(0, Vec::len);
        session.replies.insert(sequence, encoded);
        while session.replies.len() > SESSION_REPLIES_COUNT_MAX
            || session.bytes > SESSION_REPLY_BYTES_MAX
        {
            let (dropped, encoded) = session.replies.pop_first().expect("over a bound");
            session.bytes -= encoded.map_or(0, |e| e.len());
            session.floor = session.floor.max(dropped);
        }
        while self.clients.len() > SESSIONS_COUNT_MAX {
            let (_, oldest) = self.by_age.pop_first().expect("one entry per session");
            self.clients.remove(&oldest);
        }
    }

    /// Number of sessions.
    #[must_use]
    pub fn len(&self) -> usize {
        self.clients.len()
    }

    /// Appends the sessions in client order.
    pub fn encode(&self, out: &mut Vec<u8>) {
        put_length(out, self.clients.len());
        for (client, session) in &self.clients {
            put_u64(out, *client);
            put_u64(out, session.last_stamp);
            put_u64(out, session.floor);
            put_length(out, session.replies.len());
            for (sequence, encoded) in &session.replies {
                put_u64(out, *sequence);
                encoded.put(out);
            }
        }
    }

    /// Decodes sessions written by [`Sessions::encode`].
    ///
    /// # Errors
    /// [`DecodeError`] on malformed bytes.
    pub fn decode(reader: &mut Reader<'_>) -> Result<Sessions, DecodeError> {
        let mut sessions = Sessions::default();
        for _ in 0..reader.count()? {
            let client = reader.u64()?;
            let mut session =
                Session { last_stamp: reader.u64()?, floor: reader.u64()?, ..Session::default() };
            for _ in 0..reader.count()? {
                let sequence = reader.u64()?;
                let encoded = Option::<Vec<u8>>::get(reader)?;
                if let Some(encoded) = &encoded {
                    Reply::get(&mut Reader::new(encoded))?;
                    session.bytes += encoded.len();
                }
                session.replies.insert(sequence, encoded);
            }
            sessions.by_age.insert((session.last_stamp, client));
            sessions.clients.insert(client, session);
        }
        Ok(sessions)
    }
}
