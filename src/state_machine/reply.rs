//! What a command answers: the shape Redis 7 replies with, independent of the protocol.
//!
//! A [`Reply`] carries RESP3's richer types; the server's writer downgrades them for RESP2
//! exactly as Redis does (the table on [`Reply`]). Replies are plain data compared by value:
//! every replica computes the same reply for the same log entry. Also owns the exact Redis
//! error texts the state machine produces.

/// One reply, as Redis 7 shapes it. RESP2/RESP3 mapping of each variant:
///
/// | variant | RESP3 | RESP2 |
/// | --- | --- | --- |
/// | `Ok` | `+OK` | `+OK` |
/// | `Simple(s)` | `+s` | `+s` |
/// | `Error(s)` | `-s` (s starts with the code: `ERR`, `WRONGTYPE`, `OOM`) | same |
/// | `Integer(n)` | `:n` | `:n` |
/// | `Bulk(b)` | `$len b` | same |
/// | `Null` | `_` | `$-1` (null bulk) |
/// | `NullArray` | `_` | `*-1` (null array: `LPOP key count` on a missing key) |
/// | `Array(v)` | `*n` | same |
/// | `Map(v)` | `%n` (HGETALL) | flat `*2n` k1 v1 k2 v2 |
/// | `Set(v)` | `~n` (SMEMBERS, SPOP with count) | `*n` |
/// | `Double(d)` | `,d` (ZSCORE, ZINCRBY) | bulk string of d in Redis's formatting |
/// | `Boolean(b)` | `#t`/`#f` | `:1`/`:0` |
/// | `ScoredMembers(v)` | `*n` of `*2` [bulk, double] | flat `*2n` member, score as bulk |
///
/// `ScoredMembers` is the shape of `ZRANGE ... WITHSCORES` and `ZPOPMIN key count`. The server
/// formats doubles with its own `format_double` (shortest round-trip text, `inf`, `-inf`).
#[derive(Clone, Debug, PartialEq)]
pub enum Reply {
    /// `+OK`.
    Ok,
    /// A status line, e.g. `TYPE`'s `string`.
    Simple(String),
    /// An error line; the text starts with the error code.
    Error(String),
    /// An integer.
    Integer(i64),
    /// A bulk string.
    Bulk(Vec<u8>),
    /// A missing value (null bulk in RESP2).
    Null,
    /// A missing array (null array in RESP2).
    NullArray,
    /// An array of replies.
    Array(Vec<Reply>),
    /// Field/value pairs (a flat array in RESP2).
    Map(Vec<(Reply, Reply)>),
    /// An unordered collection (an array in RESP2).
    Set(Vec<Reply>),
    /// A floating point number (a bulk string in RESP2).
    Double(f64),
    /// A boolean (an integer 1/0 in RESP2).
    Boolean(bool),
    /// Member/score pairs: nested pairs in RESP3, a flat array in RESP2.
    ScoredMembers(Vec<(Vec<u8>, f64)>),
}

impl Reply {
    /// An error reply with `text` (which starts with its code).
    #[must_use]
    pub fn error(text: &str) -> Reply {
        Reply::Error(text.to_owned())
    }

    /// Whether this is an error reply.
    #[must_use]
    pub fn is_error(&self) -> bool {
        matches!(self, Reply::Error(_))
    }

    /// A bulk reply of `bytes`.
    #[must_use]
    pub fn bulk(bytes: &[u8]) -> Reply {
        Reply::Bulk(bytes.to_vec())
    }

    /// An array of bulk strings.
    #[must_use]
    pub fn bulks<'a>(items: impl IntoIterator<Item = &'a [u8]>) -> Reply {
        Reply::Array(items.into_iter().map(Reply::bulk).collect())
    }
}

/// `WRONGTYPE`: the key holds another type.
pub const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";
/// An argument or a stored value is not a 64-bit integer.
pub const NOT_INTEGER: &str = "ERR value is not an integer or out of range";
/// An argument or a stored value is not a float.
pub const NOT_FLOAT: &str = "ERR value is not a valid float";
/// Options that do not parse.
pub const SYNTAX: &str = "ERR syntax error";
/// A write refused over `maxmemory`.
pub const OOM: &str = "OOM command not allowed when used memory > 'maxmemory'.";
/// `INCR` and friends past the 64-bit range.
pub const OVERFLOW: &str = "ERR increment or decrement would overflow";
/// `DECRBY` by the smallest integer.
pub const DECREMENT_OVERFLOW: &str = "ERR decrement would overflow";
/// `INCRBYFLOAT`/`HINCRBYFLOAT` that would store NaN or an infinity.
pub const NAN_OR_INFINITY: &str = "ERR increment would produce NaN or Infinity";
/// `HINCRBY` on a field that is not an integer.
pub const HASH_NOT_INTEGER: &str = "ERR hash value is not an integer";
/// `HINCRBYFLOAT` on a field that is not a float.
pub const HASH_NOT_FLOAT: &str = "ERR hash value is not a float";
/// `RENAME` of a missing key.
pub const NO_SUCH_KEY: &str = "ERR no such key";
/// A string that would grow past [`super::limits::STRING_SIZE_BYTES_MAX`].
pub const STRING_TOO_LONG: &str = "ERR string exceeds maximum allowed size (proto-max-bulk-len)";
/// A negative `SETRANGE` offset.
pub const OFFSET_OUT_OF_RANGE: &str = "ERR offset is out of range";
/// A negative count (`LPOP`, `SPOP`, `ZPOPMIN`).
pub const NOT_POSITIVE: &str = "ERR value is out of range, must be positive";
/// A sorted-set score that became NaN.
pub const SCORE_NAN: &str = "ERR resulting score is not a number (NaN)";
/// A range bound of `ZRANGEBYSCORE` that is not a float.
pub const MIN_MAX_NOT_FLOAT: &str = "ERR min or max is not a float";
/// `SCAN` with a cursor that is not an unsigned integer.
pub const INVALID_CURSOR: &str = "ERR invalid cursor";
/// `COPY ... DB n` for a database other than 0, `SELECT`-style.
pub const DB_OUT_OF_RANGE: &str = "ERR DB index is out of range";
/// `COPY` onto itself.
pub const SAME_OBJECT: &str = "ERR source and destination objects are the same";
/// A retried request whose reply was too large (or too old) to be retained.
pub const REPLY_NOT_RETAINED: &str =
    "ERR this request was already applied; its reply is no longer retained";
/// A write command sent through the read path (a bug of the caller).
pub const NOT_READ_ONLY: &str = "ERR write command on the read path";

/// Redis's arity error for `name` (lower case).
#[must_use]
pub fn wrong_arity(name: &str) -> Reply {
    Reply::Error(format!("ERR wrong number of arguments for '{name}' command"))
}

/// Redis's expire-time error for `name` (lower case).
#[must_use]
pub fn invalid_expire(name: &str) -> Reply {
    Reply::Error(format!("ERR invalid expire time in '{name}' command"))
}
