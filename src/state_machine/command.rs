//! The typed commands of the state machine and their log encoding.
//!
//! A [`Command`] is what `parse` makes of a client's argv and what one log entry carries.
//! The encoding is `COMMAND_FORMAT_VERSION`, then a tag byte per variant (fixed forever: a tag
//! is never reused), then the variant's fields in declaration order. Relative times (`EX`,
//! `PX`, `EXPIRE`) stay relative in the log: the applying replica adds the batch's master
//! stamp, so every replica computes the same deadline.
//!
//! Must never: depend on anything outside the state machine but `constants` and `types`.

use super::codec::{COMMAND_FORMAT_VERSION, DecodeError, Field, Reader};

/// Whether a command may change the state: writes go through the log; reads may also be
/// served by the read path (`StateMachine::read`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Never changes the replicated state.
    Read,
    /// May change the replicated state.
    Write,
}

/// `Field` for a fieldless enum encoded as one byte.
macro_rules! byte_enum {
    (
        $(#[$meta:meta])* $name:ident {
            $($(#[$vmeta:meta])* $variant:ident = $tag:literal),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum $name { $($(#[$vmeta])* $variant),* }

        impl Field for $name {
            fn put(&self, out: &mut Vec<u8>) {
                out.push(match self { $($name::$variant => $tag),* });
            }
            fn get(reader: &mut Reader<'_>) -> Result<$name, DecodeError> {
                match reader.u8()? {
                    $($tag => Ok($name::$variant),)*
                    tag => Err(DecodeError::UnknownTag(tag)),
                }
            }
        }
    };
}

byte_enum!(
    /// `NX`/`XX` of `SET`.
    Condition {
        /// No condition.
        Always = 0,
        /// `NX`: only when the key does not exist.
        IfAbsent = 1,
        /// `XX`: only when the key exists.
        IfPresent = 2,
    }
);

byte_enum!(
    /// Which command a `Command::Set` came from: its name in errors.
    SetOrigin {
        /// `SET`.
        Set = 0,
        /// `SETEX`.
        SetEx = 1,
        /// `PSETEX`.
        PSetEx = 2,
    }
);

byte_enum!(
    /// Which of the `EXPIRE` family a `Command::Expire` came from.
    ExpireKind {
        /// `EXPIRE key seconds`.
        Expire = 0,
        /// `PEXPIRE key milliseconds`.
        PExpire = 1,
        /// `EXPIREAT key unix-seconds`.
        ExpireAt = 2,
        /// `PEXPIREAT key unix-milliseconds`.
        PExpireAt = 3,
    }
);

byte_enum!(
    /// The `NX`/`XX`/`GT`/`LT` option of the `EXPIRE` family.
    ExpireCondition {
        /// No option.
        Always = 0,
        /// Only when the key has no deadline.
        Nx = 1,
        /// Only when the key has a deadline.
        Xx = 2,
        /// Only when the new deadline is later (no deadline counts as infinite).
        Gt = 3,
        /// Only when the new deadline is earlier (no deadline counts as infinite).
        Lt = 4,
        /// `XX LT`: only when the key has a deadline and the new one is earlier.
        XxLt = 5,
    }
);

impl SetOrigin {
    /// The command's name in error texts.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            SetOrigin::Set => "set",
            SetOrigin::SetEx => "setex",
            SetOrigin::PSetEx => "psetex",
        }
    }
}

impl ExpireKind {
    /// The command's name in error texts.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            ExpireKind::Expire => "expire",
            ExpireKind::PExpire => "pexpire",
            ExpireKind::ExpireAt => "expireat",
            ExpireKind::PExpireAt => "pexpireat",
        }
    }

    /// Whether the amount is relative to the master's stamp.
    #[must_use]
    pub fn is_relative(self) -> bool {
        matches!(self, ExpireKind::Expire | ExpireKind::PExpire)
    }
}

/// What a write does to a key's deadline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ttl {
    /// Leave the deadline as it is (`SET ... KEEPTTL`, `GETEX` without options).
    Keep,
    /// Remove the deadline (plain `SET`, `GETEX ... PERSIST`).
    Clear,
    /// Expire this many milliseconds after the applying batch's stamp (`EX`, `PX`); > 0.
    RelativeMillis(i64),
    /// Expire at this Unix time in milliseconds (`EXAT`, `PXAT`); > 0.
    AbsoluteMillis(i64),
    /// `GETEX` with an expire argument that is not an integer: Redis 7.0 reports it only after
    /// the key lookup (a missing key is nil, a non-string WRONGTYPE), so it travels to apply.
    NotInteger,
    /// `GETEX` with an expire that is not > 0 or overflows; reported after the lookup likewise.
    InvalidExpire,
}

impl Field for Ttl {
    fn put(&self, out: &mut Vec<u8>) {
        match *self {
            Ttl::Keep => out.push(0),
            Ttl::Clear => out.push(1),
            Ttl::RelativeMillis(millis) => {
                out.push(2);
                millis.put(out);
            }
            Ttl::AbsoluteMillis(millis) => {
                out.push(3);
                millis.put(out);
            }
            Ttl::NotInteger => out.push(4),
            Ttl::InvalidExpire => out.push(5),
        }
    }
    fn get(reader: &mut Reader<'_>) -> Result<Ttl, DecodeError> {
        Ok(match reader.u8()? {
            0 => Ttl::Keep,
            1 => Ttl::Clear,
            2 => Ttl::RelativeMillis(i64::get(reader)?),
            3 => Ttl::AbsoluteMillis(i64::get(reader)?),
            4 => Ttl::NotInteger,
            5 => Ttl::InvalidExpire,
            tag => return Err(DecodeError::UnknownTag(tag)),
        })
    }
}

/// The options of `ZADD`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[allow(clippy::struct_excessive_bools)] // One flag per Redis option.
pub struct ZAddFlags {
    /// `NX`: only add new members.
    pub nx: bool,
    /// `XX`: only update existing members.
    pub xx: bool,
    /// `GT`: only update to a greater score.
    pub gt: bool,
    /// `LT`: only update to a smaller score.
    pub lt: bool,
    /// `CH`: count changed members, not only added ones.
    pub ch: bool,
    /// `INCR` (and `ZINCRBY`): add to the score, reply with the new score.
    pub incr: bool,
}

impl Field for ZAddFlags {
    fn put(&self, out: &mut Vec<u8>) {
        let bits = [self.nx, self.xx, self.gt, self.lt, self.ch, self.incr]
            .iter()
            .enumerate()
            .fold(0_u8, |bits, (index, &flag)| bits | (u8::from(flag) << index));
        out.push(bits);
    }
    fn get(reader: &mut Reader<'_>) -> Result<ZAddFlags, DecodeError> {
        let bits = reader.u8()?;
        if bits >= 1 << 6 {
            return Err(DecodeError::Malformed("zadd flags"));
        }
        let flag = |index: u8| bits & (1 << index) != 0;
        Ok(ZAddFlags {
            nx: flag(0),
            xx: flag(1),
            gt: flag(2),
            lt: flag(3),
            ch: flag(4),
            incr: flag(5),
        })
    }
}

byte_enum!(
    /// Which set operation a `Command::SetAlgebra` computes.
    SetOperation {
        /// `SINTER`.
        Inter = 0,
        /// `SUNION`.
        Union = 1,
        /// `SDIFF`.
        Diff = 2,
    }
);

byte_enum!(
    /// Which collection `HSCAN`/`SSCAN`/`ZSCAN` iterates.
    CollectionKind {
        /// `HSCAN`.
        Hash = 0,
        /// `SSCAN`.
        Set = 1,
        /// `ZSCAN`.
        ZSet = 2,
    }
);

byte_enum!(
    /// What `OBJECT` reports.
    ObjectField {
        /// `OBJECT ENCODING`.
        Encoding = 0,
        /// `OBJECT FREQ` (LFU policies only).
        Freq = 1,
        /// `OBJECT IDLETIME` (not under LFU policies).
        IdleTime = 2,
        /// `OBJECT REFCOUNT`.
        RefCount = 3,
    }
);

/// One end of a score range: `1.5`, `(1.5` (exclusive), `-inf`, `+inf`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ScoreBound {
    /// The score.
    pub value: f64,
    /// Whether the score itself is excluded.
    pub exclusive: bool,
}

impl Field for ScoreBound {
    fn put(&self, out: &mut Vec<u8>) {
        self.value.put(out);
        self.exclusive.put(out);
    }
    fn get(reader: &mut Reader<'_>) -> Result<ScoreBound, DecodeError> {
        Ok(ScoreBound { value: f64::get(reader)?, exclusive: bool::get(reader)? })
    }
}

/// One end of a lex range: `-`, `+`, `[member` (inclusive), `(member` (exclusive).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LexBound {
    /// `-`: below every member.
    Min,
    /// `+`: above every member.
    Max,
    /// `[member`.
    Inclusive(Vec<u8>),
    /// `(member`.
    Exclusive(Vec<u8>),
}

impl Field for LexBound {
    fn put(&self, out: &mut Vec<u8>) {
        match self {
            LexBound::Min => out.push(0),
            LexBound::Max => out.push(1),
            LexBound::Inclusive(member) => {
                out.push(2);
                member.put(out);
            }
            LexBound::Exclusive(member) => {
                out.push(3);
                member.put(out);
            }
        }
    }
    fn get(reader: &mut Reader<'_>) -> Result<LexBound, DecodeError> {
        Ok(match reader.u8()? {
            0 => LexBound::Min,
            1 => LexBound::Max,
            2 => LexBound::Inclusive(Vec::get(reader)?),
            3 => LexBound::Exclusive(Vec::get(reader)?),
            tag => return Err(DecodeError::UnknownTag(tag)),
        })
    }
}

/// What a `ZRANGE` selects.
#[derive(Clone, Debug, PartialEq)]
pub enum ZRangeBy {
    /// Ranks `start..=stop` (negative from the end).
    Index {
        /// First rank.
        start: i64,
        /// Last rank.
        stop: i64,
    },
    /// Scores between `min` and `max` (for `REV`, `min` is still the lower bound).
    Score {
        /// Lower bound.
        min: ScoreBound,
        /// Upper bound.
        max: ScoreBound,
    },
    /// Members between `min` and `max` by bytes (meaningful when all scores are equal).
    Lex {
        /// Lower bound.
        min: LexBound,
        /// Upper bound.
        max: LexBound,
    },
}

impl Field for ZRangeBy {
    fn put(&self, out: &mut Vec<u8>) {
        match self {
            ZRangeBy::Index { start, stop } => {
                out.push(0);
                start.put(out);
                stop.put(out);
            }
            ZRangeBy::Score { min, max } => {
                out.push(1);
                min.put(out);
                max.put(out);
            }
            ZRangeBy::Lex { min, max } => {
                out.push(2);
                min.put(out);
                max.put(out);
            }
        }
    }
    fn get(reader: &mut Reader<'_>) -> Result<ZRangeBy, DecodeError> {
        Ok(match reader.u8()? {
            0 => ZRangeBy::Index { start: i64::get(reader)?, stop: i64::get(reader)? },
            1 => ZRangeBy::Score { min: ScoreBound::get(reader)?, max: ScoreBound::get(reader)? },
            2 => ZRangeBy::Lex { min: LexBound::get(reader)?, max: LexBound::get(reader)? },
            tag => return Err(DecodeError::UnknownTag(tag)),
        })
    }
}

/// Declares `Command` with its tags and derives its encoding from the field types.
macro_rules! commands {
    (
        $($(#[$meta:meta])* $tag:literal => $variant:ident {
            $($field:ident : $type:ty),* $(,)?
        }),* $(,)?
    ) => {
        /// One state-machine command. Fields are named after the Redis arguments they carry;
        /// byte strings are `Vec<u8>`. The tag (left) is the log encoding, fixed forever.
        #[derive(Clone, Debug, PartialEq)]
        #[allow(missing_docs)] // Fields are the Redis arguments the variant's doc names.
        pub enum Command {
            $($(#[$meta])* $variant { $($field: $type),* }),*
        }

        impl Command {
            fn encode_body(&self, out: &mut Vec<u8>) {
                match self {
                    $(Command::$variant { $($field),* } => {
                        out.push($tag);
                        $(Field::put($field, out);)*
                    })*
                }
            }

            fn decode_body(reader: &mut Reader<'_>) -> Result<Command, DecodeError> {
                match reader.u8()? {
                    $($tag => Ok(Command::$variant {
                        $($field: <$type as Field>::get(reader)?),*
                    }),)*
                    tag => Err(DecodeError::UnknownTag(tag)),
                }
            }
        }
    };
}

commands! {
    /// `GET key`.
    1 => Get { key: Vec<u8> },
    /// `SET key value [NX|XX] [GET] [EX|PX|EXAT|PXAT|KEEPTTL]`, `SETEX`, `PSETEX`.
    2 => Set { key: Vec<u8>, value: Vec<u8>, ttl: Ttl, condition: Condition, get: bool,
        origin: SetOrigin },
    /// `SETNX key value`.
    3 => SetNx { key: Vec<u8>, value: Vec<u8> },
    /// `MGET key...`.
    4 => MGet { keys: Vec<Vec<u8>> },
    /// `MSET key value...`.
    5 => MSet { pairs: Vec<(Vec<u8>, Vec<u8>)> },
    /// `MSETNX key value...`.
    6 => MSetNx { pairs: Vec<(Vec<u8>, Vec<u8>)> },
    /// `GETSET key value`.
    7 => GetSet { key: Vec<u8>, value: Vec<u8> },
    /// `GETDEL key`.
    8 => GetDel { key: Vec<u8> },
    /// `GETEX key [EX|PX|EXAT|PXAT|PERSIST]`.
    9 => GetEx { key: Vec<u8>, ttl: Ttl },
    /// `INCR`, `DECR`, `INCRBY`, `DECRBY`.
    10 => IncrBy { key: Vec<u8>, delta: i64 },
    /// `INCRBYFLOAT key delta`.
    11 => IncrByFloat { key: Vec<u8>, delta: f64 },
    /// `APPEND key value`.
    12 => Append { key: Vec<u8>, value: Vec<u8> },
    /// `STRLEN key`.
    13 => StrLen { key: Vec<u8> },
    /// `GETRANGE key start end` (and `SUBSTR`).
    14 => GetRange { key: Vec<u8>, start: i64, end: i64 },
    /// `SETRANGE key offset value`; offset >= 0.
    15 => SetRange { key: Vec<u8>, offset: u64, value: Vec<u8> },
    /// `DEL key...` and `UNLINK key...`.
    20 => Del { keys: Vec<Vec<u8>> },
    /// `EXISTS key...`.
    21 => Exists { keys: Vec<Vec<u8>> },
    /// `TYPE key`.
    22 => Type { key: Vec<u8> },
    /// `TOUCH key...`.
    23 => Touch { keys: Vec<Vec<u8>> },
    /// `RENAME source destination`, or `RENAMENX` when `only_if_absent`.
    24 => Rename { source: Vec<u8>, destination: Vec<u8>, only_if_absent: bool },
    /// `COPY source destination [DB 0] [REPLACE]`.
    25 => Copy { source: Vec<u8>, destination: Vec<u8>, replace: bool },
    /// `KEYS pattern`.
    26 => Keys { pattern: Vec<u8> },
    /// `SCAN cursor [MATCH pattern] [COUNT count] [TYPE type]`.
    27 => Scan { cursor: u64, pattern: Option<Vec<u8>>, count: u64, type_name: Option<Vec<u8>> },
    /// `RANDOMKEY`.
    28 => RandomKey {},
    /// `DBSIZE`.
    29 => DbSize {},
    /// `FLUSHDB` and `FLUSHALL` (`ASYNC`/`SYNC` accepted, same effect).
    30 => FlushAll {},
    /// The `EXPIRE` family; `amount_millis` is already in milliseconds.
    31 => Expire { key: Vec<u8>, amount_millis: i64, kind: ExpireKind, condition: ExpireCondition },
    /// `TTL` (seconds, relative), `PTTL`, `EXPIRETIME` (absolute), `PEXPIRETIME`.
    32 => Ttl { key: Vec<u8>, millis: bool, absolute: bool },
    /// `PERSIST key`.
    33 => Persist { key: Vec<u8> },
    /// `HSET key field value...`, or `HMSET` (replies `OK`) when `reply_ok`.
    40 => HSet { key: Vec<u8>, pairs: Vec<(Vec<u8>, Vec<u8>)>, reply_ok: bool },
    /// `HGET key field`.
    41 => HGet { key: Vec<u8>, field: Vec<u8> },
    /// `HMGET key field...`.
    42 => HMGet { key: Vec<u8>, fields: Vec<Vec<u8>> },
    /// `HGETALL key`.
    43 => HGetAll { key: Vec<u8> },
    /// `HDEL key field...`.
    44 => HDel { key: Vec<u8>, fields: Vec<Vec<u8>> },
    /// `HEXISTS key field`.
    45 => HExists { key: Vec<u8>, field: Vec<u8> },
    /// `HLEN key`.
    46 => HLen { key: Vec<u8> },
    /// `HKEYS key`.
    47 => HKeys { key: Vec<u8> },
    /// `HVALS key`.
    48 => HVals { key: Vec<u8> },
    /// `HINCRBY key field delta`.
    49 => HIncrBy { key: Vec<u8>, field: Vec<u8>, delta: i64 },
    /// `HINCRBYFLOAT key field delta`.
    50 => HIncrByFloat { key: Vec<u8>, field: Vec<u8>, delta: f64 },
    /// `HSETNX key field value`.
    51 => HSetNx { key: Vec<u8>, field: Vec<u8>, value: Vec<u8> },
    /// `HSTRLEN key field`.
    52 => HStrLen { key: Vec<u8>, field: Vec<u8> },
    /// `LPUSH`/`RPUSH` (`left`), `LPUSHX`/`RPUSHX` (`only_if_exists`).
    60 => Push { key: Vec<u8>, values: Vec<Vec<u8>>, left: bool, only_if_exists: bool },
    /// `LPOP`/`RPOP key [count]`.
    61 => Pop { key: Vec<u8>, left: bool, count: Option<u64> },
    /// `LRANGE key start stop`.
    62 => LRange { key: Vec<u8>, start: i64, stop: i64 },
    /// `LLEN key`.
    63 => LLen { key: Vec<u8> },
    /// `LINDEX key index`.
    64 => LIndex { key: Vec<u8>, index: i64 },
    /// `LSET key index element`.
    65 => LSet { key: Vec<u8>, index: i64, value: Vec<u8> },
    /// `LTRIM key start stop`.
    66 => LTrim { key: Vec<u8>, start: i64, stop: i64 },
    /// `LREM key count element`.
    67 => LRem { key: Vec<u8>, count: i64, value: Vec<u8> },
    /// `LINSERT key BEFORE|AFTER pivot element`.
    68 => LInsert { key: Vec<u8>, before: bool, pivot: Vec<u8>, value: Vec<u8> },
    /// `LMOVE source destination LEFT|RIGHT LEFT|RIGHT` and `RPOPLPUSH`.
    69 => LMove { source: Vec<u8>, destination: Vec<u8>, from_left: bool, to_left: bool },
    /// `SADD key member...`.
    70 => SAdd { key: Vec<u8>, members: Vec<Vec<u8>> },
    /// `SREM key member...`.
    71 => SRem { key: Vec<u8>, members: Vec<Vec<u8>> },
    /// `SMEMBERS key`.
    72 => SMembers { key: Vec<u8> },
    /// `SISMEMBER key member`.
    73 => SIsMember { key: Vec<u8>, member: Vec<u8> },
    /// `SCARD key`.
    74 => SCard { key: Vec<u8> },
    /// `SPOP key [count]`: members chosen by a hash of the key, the set and the stamp.
    75 => SPop { key: Vec<u8>, count: Option<u64> },
    /// `SMISMEMBER key member...`.
    76 => SMIsMember { key: Vec<u8>, members: Vec<Vec<u8>> },
    /// `SRANDMEMBER key [count]`: chosen by a hash of the key, the set and the time.
    77 => SRandMember { key: Vec<u8>, count: Option<i64> },
    /// `SMOVE source destination member`.
    78 => SMove { source: Vec<u8>, destination: Vec<u8>, member: Vec<u8> },
    /// `SINTER`/`SUNION`/`SDIFF key...`, or their `...STORE destination key...` forms.
    79 => SetAlgebra { operation: SetOperation, destination: Option<Vec<u8>>,
        keys: Vec<Vec<u8>> },
    /// `ZADD key [NX|XX] [GT|LT] [CH] [INCR] score member...` and `ZINCRBY`.
    80 => ZAdd { key: Vec<u8>, flags: ZAddFlags, pairs: Vec<(f64, Vec<u8>)> },
    /// `ZREM key member...`.
    81 => ZRem { key: Vec<u8>, members: Vec<Vec<u8>> },
    /// `ZSCORE key member`.
    82 => ZScore { key: Vec<u8>, member: Vec<u8> },
    /// `ZRANGE`, `ZREVRANGE`, `ZRANGEBYSCORE`, `ZRANGEBYLEX` and their `REV` forms; `limit`
    /// is (offset, count).
    83 => ZRange { key: Vec<u8>, by: ZRangeBy, rev: bool, limit: Option<(i64, i64)>,
        with_scores: bool },
    /// `ZCARD key`.
    84 => ZCard { key: Vec<u8> },
    /// `ZPOPMIN`/`ZPOPMAX` (`max`) `key [count]`.
    85 => ZPop { key: Vec<u8>, max: bool, count: Option<u64> },
    /// `ZRANK`/`ZREVRANK` (`rev`) `key member`.
    86 => ZRank { key: Vec<u8>, member: Vec<u8>, rev: bool },
    /// `ZCOUNT key min max`.
    87 => ZCount { key: Vec<u8>, min: ScoreBound, max: ScoreBound },
    /// `ZMSCORE key member...`.
    88 => ZMScore { key: Vec<u8>, members: Vec<Vec<u8>> },
    /// `ZREMRANGEBYSCORE key min max`.
    89 => ZRemRangeByScore { key: Vec<u8>, min: ScoreBound, max: ScoreBound },
    /// `ZREMRANGEBYRANK key start stop`.
    90 => ZRemRangeByRank { key: Vec<u8>, start: i64, stop: i64 },
    /// `HSCAN`/`SSCAN`/`ZSCAN key cursor [MATCH pattern] [COUNT count] [NOVALUES]`: the whole
    /// collection in one reply with cursor 0 (Redis does the same for small encodings).
    91 => ScanCollection { key: Vec<u8>, kind: CollectionKind, cursor: u64,
        pattern: Option<Vec<u8>>, no_values: bool },
    /// `OBJECT ENCODING|FREQ|IDLETIME|REFCOUNT key`.
    92 => Object { key: Vec<u8>, field: ObjectField },
    /// `MEMORY USAGE key [SAMPLES count]`: the key's accounted bytes.
    93 => MemoryUsage { key: Vec<u8> },
    /// `ZLEXCOUNT key min max`.
    94 => ZLexCount { key: Vec<u8>, min: LexBound, max: LexBound },
    /// `MULTI ... EXEC`: applied atomically, one reply array. All keys must route to one group.
    100 => Exec { commands: Vec<Command> },
    /// Active expiry proposed by `housekeeping`: delete `key` if its deadline is at or before
    /// the applying batch's stamp (a key rewritten since the proposal survives).
    101 => Expired { key: Vec<u8> },
    /// Eviction proposed by `housekeeping`: delete `key` (the master chose it under the
    /// policy; replicas do not re-decide).
    102 => Evict { key: Vec<u8> },
    /// `SET key value IFEQ comparison [GET] [EX|PX|EXAT|PXAT|KEEPTTL]` (Valkey 8.1): set only
    /// when the key holds a string equal to `comparison`. A tag of its own so logs written
    /// before it keep decoding `Set` unchanged.
    103 => SetIfEq { key: Vec<u8>, value: Vec<u8>, comparison: Vec<u8>, ttl: Ttl, get: bool },
    /// `WATCH key...` as the server reads it: each key's modification version (0 when absent
    /// or expired). Built by the server, never by `parse`.
    104 => KeyVersions { keys: Vec<Vec<u8>> },
    /// `WATCH` ... `MULTI` ... `EXEC`: when every guard's key still has its version, the
    /// commands apply atomically (one reply array); otherwise nothing applies and the reply
    /// is a null array. Built by the server, never by `parse`.
    105 => WatchedExec { guards: Vec<(Vec<u8>, u64)>, commands: Vec<Command> },
}

impl Command {
    /// Appends the versioned encoding of the command.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.push(COMMAND_FORMAT_VERSION);
        self.encode_body(out);
    }

    /// Decodes one command from the start of `bytes`; returns it and the bytes it used.
    ///
    /// # Errors
    /// [`DecodeError`] on an unknown version or tag, or truncated bytes.
    pub fn decode(bytes: &[u8]) -> Result<(Command, usize), DecodeError> {
        let mut reader = Reader::new(bytes);
        let version = reader.u8()?;
        if version != COMMAND_FORMAT_VERSION {
            return Err(DecodeError::UnknownVersion(version));
        }
        let command = Command::decode_body(&mut reader)?;
        Ok((command, reader.position()))
    }
}

impl Field for Command {
    fn put(&self, out: &mut Vec<u8>) {
        self.encode_body(out);
    }
    /// Decodes a command nested in `Exec`: a nested `Exec` is refused before it recurses, so
    /// no input can nest deeper than one level (and exhaust the stack).
    fn get(reader: &mut Reader<'_>) -> Result<Command, DecodeError> {
        if matches!(reader.peek()?, EXEC_TAG | WATCHED_EXEC_TAG) {
            return Err(DecodeError::Malformed("nested exec"));
        }
        Command::decode_body(reader)
    }
}

/// The tag of `Command::Exec` (see the table in `commands!`).
const EXEC_TAG: u8 = 100;

/// The tag of `Command::WatchedExec` (see the table in `commands!`).
const WATCHED_EXEC_TAG: u8 = 105;
