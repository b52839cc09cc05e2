//! The history model: what the clients of a test did and saw, in Jepsen's shape.
//!
//! A history is a sequence of [`Op`]s in the order they happened. Every client operation
//! appears twice: its invocation (`:invoke`) and its completion, which is `:ok` (it took
//! effect, and the value says what it saw), `:fail` (it certainly did not take effect) or
//! `:info` (unknown: it may have taken effect at any time after its invocation, or never). A
//! process runs one operation at a time; an invocation with no completion is the same as one
//! completed with `:info`.
//!
//! Values follow Jepsen's workloads, with keys as in `jepsen.independent` (`[key value]`):
//!
//! | workload | `:f` | invoke `:value` | ok `:value` |
//! | --- | --- | --- | --- |
//! | register | `:read` | `[k nil]` | `[k v]` or `[k nil]` |
//! | register | `:write` | `[k v]` | `[k v]` |
//! | register | `:cas` | `[k [old new]]` | `[k [old new]]` |
//! | list-append | `:txn` | `[[:append k e] [:r k nil]]` | `[[:append k e] [:r k [e1 e2]]]` |
//! | counter | `:add` | `[k n]` | `[k n]` |
//! | counter | `:read` | `[k nil]` | `[k total]` |
//! | set | `:add` | `[k e]` | `[k e]` |
//! | set | `:read` | `[k nil]` | `[k #{e1 e2}]` |
//!
//! The workload decides how `:f` and `:value` are read ([`RegisterOp`], [`Mop`], [`CounterOp`],
//! [`SetOp`]); the checkers decode them and refuse malformed values with the op's index.
//!
//! Must never: do I/O other than reading and writing history files.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use super::edn::{self, Edn, EdnError};

/// How an operation's record ends (or that it starts).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum OpType {
    /// The client sent it.
    Invoke,
    /// It took effect; the value is what the client saw.
    Ok,
    /// It certainly did not take effect.
    Fail,
    /// Unknown outcome: it may have taken effect, at any time after its invocation.
    Info,
}

impl OpType {
    /// Jepsen's keyword for it (without the colon).
    #[must_use]
    pub fn keyword(self) -> &'static str {
        match self {
            OpType::Invoke => "invoke",
            OpType::Ok => "ok",
            OpType::Fail => "fail",
            OpType::Info => "info",
        }
    }

    fn from_keyword(name: &str) -> Option<OpType> {
        [OpType::Invoke, OpType::Ok, OpType::Fail, OpType::Info]
            .into_iter()
            .find(|kind| kind.keyword() == name)
    }
}

/// What an operation does (Jepsen's `:f`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Function {
    /// A register, counter or set read.
    Read,
    /// A register write.
    Write,
    /// A register compare-and-set.
    Cas,
    /// A list-append transaction.
    Txn,
    /// A counter increment or a set insertion.
    Add,
}

impl Function {
    /// Jepsen's keyword for it (without the colon).
    #[must_use]
    pub fn keyword(self) -> &'static str {
        match self {
            Function::Read => "read",
            Function::Write => "write",
            Function::Cas => "cas",
            Function::Txn => "txn",
            Function::Add => "add",
        }
    }

    fn from_keyword(name: &str) -> Option<Function> {
        [Function::Read, Function::Write, Function::Cas, Function::Txn, Function::Add]
            .into_iter()
            .find(|f| f.keyword() == name)
    }
}

/// One event of a history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Op {
    /// Position in the history, from 0.
    pub index: u64,
    /// The client process; it runs one operation at a time.
    pub process: u64,
    /// Invocation or one of the completions.
    pub kind: OpType,
    /// What it does.
    pub f: Function,
    /// The arguments (on invoke) or what was seen (on completion), in the workload's shape.
    pub value: Edn,
    /// When it happened, in nanoseconds from the start of the test (any monotonic unit works;
    /// only order matters to the checkers).
    pub time: u64,
}

impl Op {
    /// The op as one line of Jepsen EDN.
    #[must_use]
    pub fn to_edn(&self) -> Edn {
        Edn::Map(vec![
            (Edn::keyword("type"), Edn::keyword(self.kind.keyword())),
            (Edn::keyword("f"), Edn::keyword(self.f.keyword())),
            (Edn::keyword("value"), self.value.clone()),
            (Edn::keyword("process"), Edn::Int(clamp_i64(self.process))),
            (Edn::keyword("time"), Edn::Int(clamp_i64(self.time))),
            (Edn::keyword("index"), Edn::Int(clamp_i64(self.index))),
        ])
    }
}

fn clamp_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// Why a history cannot be read or checked.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    /// The file is not EDN.
    #[error(transparent)]
    Edn(#[from] EdnError),
    /// An op map lacks a field or has one of the wrong shape.
    #[error("op {position}: {message}")]
    Malformed {
        /// Position of the op in the file (0-based, counting every top-level value).
        position: usize,
        /// What is wrong.
        message: String,
    },
    /// Invocations and completions do not pair up per process.
    #[error("op index {index}: {message}")]
    Unpaired {
        /// The op's `:index`.
        index: u64,
        /// What is wrong.
        message: String,
    },
    /// An op's value does not have its workload's shape.
    #[error("op index {index}: bad value for the {workload} workload: {message}")]
    Value {
        /// The op's `:index`.
        index: u64,
        /// The workload that decoded it.
        workload: &'static str,
        /// What is wrong.
        message: String,
    },
    /// Reading or writing the file failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// A whole history.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct History {
    /// The events, in the order they happened.
    pub ops: Vec<Op>,
}

/// An operation: its invocation and, if it came, its completion.
#[derive(Clone, Copy, Debug)]
pub struct Pair<'h> {
    /// The `:invoke` event.
    pub invoke: &'h Op,
    /// The `:ok`, `:fail` or `:info` event; `None` if the history ended first.
    pub completion: Option<&'h Op>,
}

impl Pair<'_> {
    /// How it ended: an invocation without completion is [`OpType::Info`].
    #[must_use]
    pub fn outcome(&self) -> OpType {
        self.completion.map_or(OpType::Info, |op| op.kind)
    }

    /// When it was invoked.
    #[must_use]
    pub fn call_time(&self) -> u64 {
        self.invoke.time
    }

    /// When its definite outcome arrived; `None` for an unknown outcome, which may take effect
    /// at any time after the call (Knossos's infinite return time).
    #[must_use]
    pub fn return_time(&self) -> Option<u64> {
        match self.completion {
            Some(op) if matches!(op.kind, OpType::Ok | OpType::Fail) => Some(op.time),
            _ => None,
        }
    }

    /// The value the client saw (the completion's if `:ok`, else the invocation's).
    #[must_use]
    pub fn value(&self) -> &Edn {
        match self.completion {
            Some(op) if op.kind == OpType::Ok => &op.value,
            _ => &self.invoke.value,
        }
    }
}

impl History {
    /// The history as Jepsen EDN, one op map per line.
    #[must_use]
    pub fn to_edn(&self) -> String {
        let mut text = String::new();
        for op in &self.ops {
            // Writing to a String cannot fail.
            let _ = writeln!(text, "{}", op.to_edn());
        }
        text
    }

    /// Reads a history written in Jepsen EDN: a sequence of op maps (a top-level vector of
    /// them is accepted too). Ops whose `:process` is not an integer (`:nemesis`) are skipped:
    /// they record faults, not client operations. A missing `:index` is the position.
    ///
    /// # Errors
    /// The text is not EDN, or an op lacks `:type`, `:f`, `:process` or `:time`, or has a
    /// `:type` or `:f` this model does not know.
    pub fn from_edn(text: &str) -> Result<History, HistoryError> {
        let mut values = edn::parse_all(text)?;
        if values.len() == 1 && matches!(values[0], Edn::Vector(_) | Edn::List(_)) {
            let Some(Edn::Vector(items) | Edn::List(items)) = values.pop() else {
                unreachable!("checked just above")
            };
            values = items;
        }
        let mut ops = Vec::with_capacity(values.len());
        for (position, value) in values.iter().enumerate() {
            let malformed = |message: &str| HistoryError::Malformed {
                position,
                message: format!("{message} in {value}"),
            };
            let Some(process) = value.get("process") else { return Err(malformed("no :process")) };
            let Some(process) = process.as_int() else { continue };
            let process = u64::try_from(process).map_err(|_| malformed("negative :process"))?;
            let kind = value
                .get("type")
                .and_then(Edn::as_keyword)
                .and_then(OpType::from_keyword)
                .ok_or_else(|| malformed("no known :type"))?;
            let f = value
                .get("f")
                .and_then(Edn::as_keyword)
                .and_then(Function::from_keyword)
                .ok_or_else(|| malformed("no known :f"))?;
            let time = value
                .get("time")
                .and_then(Edn::as_int)
                .and_then(|time| u64::try_from(time).ok())
                .ok_or_else(|| malformed("no :time"))?;
            let index = match value.get("index") {
                Some(index) => index
                    .as_int()
                    .and_then(|index| u64::try_from(index).ok())
                    .ok_or_else(|| malformed("bad :index"))?,
                None => position as u64,
            };
            let value = value.get("value").cloned().unwrap_or(Edn::Nil);
            ops.push(Op { index, process, kind, f, value, time });
        }
        Ok(History { ops })
    }

    /// Writes [`History::to_edn`] to `path`.
    ///
    /// # Errors
    /// The file cannot be written.
    pub fn write_file(&self, path: &Path) -> Result<(), HistoryError> {
        std::fs::write(path, self.to_edn())?;
        Ok(())
    }

    /// Reads a history file written by [`History::write_file`] or by Jepsen.
    ///
    /// # Errors
    /// The file cannot be read or is not a history ([`History::from_edn`]).
    pub fn read_file(path: &Path) -> Result<History, HistoryError> {
        History::from_edn(&std::fs::read_to_string(path)?)
    }

    /// Pairs every invocation with its process's next completion, in invocation order.
    ///
    /// # Errors
    /// A completion without an invocation, an invocation while the process has one pending, a
    /// completion whose `:f` differs from its invocation's, or time going backwards.
    pub fn pairs(&self) -> Result<Vec<Pair<'_>>, HistoryError> {
        let mut pairs: Vec<Pair<'_>> = Vec::new();
        let mut pending: BTreeMap<u64, usize> = BTreeMap::new();
        let mut last_time = 0;
        for op in &self.ops {
            let unpaired = |message: String| HistoryError::Unpaired { index: op.index, message };
            if op.time < last_time {
                return Err(unpaired(format!("time {} is before {last_time}", op.time)));
            }
            last_time = op.time;
            if op.kind == OpType::Invoke {
                if let Some(&earlier) = pending.get(&op.process) {
                    let earlier = pairs[earlier].invoke.index;
                    return Err(unpaired(format!(
                        "process {} invokes while op {earlier} is pending",
                        op.process
                    )));
                }
                pending.insert(op.process, pairs.len());
                pairs.push(Pair { invoke: op, completion: None });
            } else {
                let Some(at) = pending.remove(&op.process) else {
                    return Err(unpaired(format!(
                        "process {} completes without an invocation",
                        op.process
                    )));
                };
                if pairs[at].invoke.f != op.f {
                    return Err(unpaired(format!(
                        "completion :{} of an invocation :{}",
                        op.f.keyword(),
                        pairs[at].invoke.f.keyword()
                    )));
                }
                pairs[at].completion = Some(op);
            }
        }
        Ok(pairs)
    }
}

/// Records a history as it happens: numbers the ops and checks that each process runs one
/// operation at a time.
#[derive(Debug, Default)]
pub struct Recorder {
    history: History,
    pending: BTreeMap<u64, Function>,
}

impl Recorder {
    /// An empty recorder.
    #[must_use]
    pub fn new() -> Recorder {
        Recorder::default()
    }

    /// Records an invocation.
    ///
    /// # Panics
    /// If `process` already has an operation pending (a bug in the harness).
    pub fn invoke(&mut self, process: u64, f: Function, value: Edn, time: u64) {
        let previous = self.pending.insert(process, f);
        assert!(previous.is_none(), "process {process} invoked twice");
        self.push(process, OpType::Invoke, f, value, time);
    }

    /// Records the completion of `process`'s pending operation.
    ///
    /// # Panics
    /// If `process` has nothing pending, or `kind` is [`OpType::Invoke`].
    pub fn complete(&mut self, process: u64, kind: OpType, value: Edn, time: u64) {
        assert!(kind != OpType::Invoke, "a completion cannot be an invocation");
        let f = self.pending.remove(&process).expect("completion without invocation");
        self.push(process, kind, f, value, time);
    }

    fn push(&mut self, process: u64, kind: OpType, f: Function, value: Edn, time: u64) {
        let index = self.history.ops.len() as u64;
        self.history.ops.push(Op { index, process, kind, f, value, time });
    }

    /// The history so far; pending operations have no completion (unknown outcome).
    #[must_use]
    pub fn finish(self) -> History {
        self.history
    }
}

/// `[k v]`, the `jepsen.independent` tuple.
#[must_use]
pub fn tuple(key: i64, value: Edn) -> Edn {
    Edn::Vector(vec![Edn::Int(key), value])
}

fn untuple(value: &Edn) -> Option<(i64, &Edn)> {
    match value.as_seq()? {
        [key, value] => Some((key.as_int()?, value)),
        _ => None,
    }
}

/// `nil` or an integer; `Err(())` for anything else.
fn int_or_nil(value: &Edn) -> Result<Option<i64>, ()> {
    match value {
        Edn::Nil => Ok(None),
        Edn::Int(value) => Ok(Some(*value)),
        _ => Err(()),
    }
}

fn ints(value: &Edn) -> Option<Vec<i64>> {
    value.as_seq()?.iter().map(Edn::as_int).collect()
}

fn ints_edn(values: &[i64]) -> Edn {
    Edn::Vector(values.iter().copied().map(Edn::Int).collect())
}

/// A register operation on one key, as decoded from a pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RegisterOp {
    /// A read, with what it saw (`None`: no value, or not known yet).
    Read(Option<i64>),
    /// A write of a value.
    Write(i64),
    /// Compare-and-set from `.0` to `.1`.
    Cas(i64, i64),
}

impl RegisterOp {
    /// `f` and the `:value` of this op on `key`.
    #[must_use]
    pub fn encode(self, key: i64) -> (Function, Edn) {
        match self {
            RegisterOp::Read(value) => {
                (Function::Read, tuple(key, value.map_or(Edn::Nil, Edn::Int)))
            }
            RegisterOp::Write(value) => (Function::Write, tuple(key, Edn::Int(value))),
            RegisterOp::Cas(old, new) => (Function::Cas, tuple(key, ints_edn(&[old, new]))),
        }
    }

    /// The key and op of an event of the register workload.
    ///
    /// # Errors
    /// The function is not a register's, or the value lacks the `[k v]` shape.
    pub fn decode(f: Function, value: &Edn, index: u64) -> Result<(i64, RegisterOp), HistoryError> {
        let bad = |message: &str| HistoryError::Value {
            index,
            workload: "register",
            message: format!("{message}: {value}"),
        };
        let (key, inner) = untuple(value).ok_or_else(|| bad("not [key value]"))?;
        let op = match f {
            Function::Read => RegisterOp::Read(int_or_nil(inner).map_err(|()| bad("read"))?),
            Function::Write => RegisterOp::Write(inner.as_int().ok_or_else(|| bad("write"))?),
            Function::Cas => match ints(inner).as_deref() {
                Some([old, new]) => RegisterOp::Cas(*old, *new),
                _ => return Err(bad("cas is not [old new]")),
            },
            Function::Txn | Function::Add => return Err(bad("not a register function")),
        };
        Ok((key, op))
    }
}

/// A micro-operation of a list-append transaction.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Mop {
    /// `[:append k e]`: append element `e` to the list at key `k`.
    Append {
        /// The key.
        key: i64,
        /// The element; unique per key over the whole history (Elle's assumption).
        element: i64,
    },
    /// `[:r k list]`: read the whole list at `k` (`None` until the read completes).
    Read {
        /// The key.
        key: i64,
        /// What it saw.
        list: Option<Vec<i64>>,
    },
}

impl Mop {
    /// The key it touches.
    #[must_use]
    pub fn key(&self) -> i64 {
        match self {
            Mop::Append { key, .. } | Mop::Read { key, .. } => *key,
        }
    }
}

/// The `:value` of a transaction.
#[must_use]
pub fn encode_txn(mops: &[Mop]) -> Edn {
    Edn::Vector(
        mops.iter()
            .map(|mop| match mop {
                Mop::Append { key, element } => {
                    Edn::Vector(vec![Edn::keyword("append"), Edn::Int(*key), Edn::Int(*element)])
                }
                Mop::Read { key, list } => Edn::Vector(vec![
                    Edn::keyword("r"),
                    Edn::Int(*key),
                    list.as_deref().map_or(Edn::Nil, ints_edn),
                ]),
            })
            .collect(),
    )
}

/// The micro-operations of a transaction's `:value`.
///
/// # Errors
/// The value is not a vector of `[:append k e]` and `[:r k list-or-nil]`.
pub fn decode_txn(value: &Edn, index: u64) -> Result<Vec<Mop>, HistoryError> {
    let bad = |message: &str| HistoryError::Value {
        index,
        workload: "list-append",
        message: format!("{message}: {value}"),
    };
    let mops = value.as_seq().ok_or_else(|| bad("not a vector of micro-ops"))?;
    mops.iter()
        .map(|mop| match mop.as_seq() {
            Some([f, key, arg]) => {
                let key = key.as_int().ok_or_else(|| bad("key is not an integer"))?;
                match f.as_keyword() {
                    Some("append") => {
                        let element = arg.as_int().ok_or_else(|| bad("element"))?;
                        Ok(Mop::Append { key, element })
                    }
                    Some("r") => {
                        let list = match arg {
                            Edn::Nil => None,
                            other => Some(ints(other).ok_or_else(|| bad("read list"))?),
                        };
                        Ok(Mop::Read { key, list })
                    }
                    _ => Err(bad("micro-op is neither :append nor :r")),
                }
            }
            _ => Err(bad("micro-op is not [f k v]")),
        })
        .collect()
}

/// A counter operation on one key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CounterOp {
    /// Add an amount (an `INCRBY`).
    Add(i64),
    /// Read the total (`None` until it completes).
    Read(Option<i64>),
}

impl CounterOp {
    /// `f` and the `:value` of this op on `key`.
    #[must_use]
    pub fn encode(self, key: i64) -> (Function, Edn) {
        match self {
            CounterOp::Add(amount) => (Function::Add, tuple(key, Edn::Int(amount))),
            CounterOp::Read(value) => {
                (Function::Read, tuple(key, value.map_or(Edn::Nil, Edn::Int)))
            }
        }
    }

    /// The key and op of an event of the counter workload.
    ///
    /// # Errors
    /// The function is not a counter's, or the value lacks the `[k n]` shape.
    pub fn decode(f: Function, value: &Edn, index: u64) -> Result<(i64, CounterOp), HistoryError> {
        let bad = |message: &str| HistoryError::Value {
            index,
            workload: "counter",
            message: format!("{message}: {value}"),
        };
        let (key, inner) = untuple(value).ok_or_else(|| bad("not [key value]"))?;
        match f {
            Function::Add => Ok((key, CounterOp::Add(inner.as_int().ok_or_else(|| bad("add"))?))),
            Function::Read => {
                Ok((key, CounterOp::Read(int_or_nil(inner).map_err(|()| bad("read"))?)))
            }
            _ => Err(bad("not a counter function")),
        }
    }
}

/// A set operation on one key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SetOp {
    /// Insert an element (`SADD`).
    Add(i64),
    /// Read all elements (`SMEMBERS`; `None` until it completes).
    Read(Option<Vec<i64>>),
}

impl SetOp {
    /// `f` and the `:value` of this op on `key`.
    #[must_use]
    pub fn encode(&self, key: i64) -> (Function, Edn) {
        match self {
            SetOp::Add(element) => (Function::Add, tuple(key, Edn::Int(*element))),
            SetOp::Read(elements) => (
                Function::Read,
                tuple(
                    key,
                    elements.as_ref().map_or(Edn::Nil, |elements| {
                        Edn::Set(elements.iter().copied().map(Edn::Int).collect())
                    }),
                ),
            ),
        }
    }

    /// The key and op of an event of the set workload.
    ///
    /// # Errors
    /// The function is not a set's, or the value lacks the `[k e]` / `[k #{...}]` shape.
    pub fn decode(f: Function, value: &Edn, index: u64) -> Result<(i64, SetOp), HistoryError> {
        let bad = |message: &str| HistoryError::Value {
            index,
            workload: "set",
            message: format!("{message}: {value}"),
        };
        let (key, inner) = untuple(value).ok_or_else(|| bad("not [key value]"))?;
        match f {
            Function::Add => Ok((key, SetOp::Add(inner.as_int().ok_or_else(|| bad("add"))?))),
            Function::Read => match inner {
                Edn::Nil => Ok((key, SetOp::Read(None))),
                other => Ok((key, SetOp::Read(Some(ints(other).ok_or_else(|| bad("read"))?)))),
            },
            _ => Err(bad("not a set function")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> History {
        let mut recorder = Recorder::new();
        let (f, value) = RegisterOp::Write(3).encode(7);
        recorder.invoke(0, f, value.clone(), 10);
        let (f, read) = RegisterOp::Read(None).encode(7);
        recorder.invoke(1, f, read, 11);
        recorder.complete(0, OpType::Ok, value, 12);
        let (_, seen) = RegisterOp::Read(Some(3)).encode(7);
        recorder.complete(1, OpType::Ok, seen, 13);
        let txn =
            encode_txn(&[Mop::Append { key: 5, element: 1 }, Mop::Read { key: 5, list: None }]);
        recorder.invoke(2, Function::Txn, txn, 14);
        let done = encode_txn(&[
            Mop::Append { key: 5, element: 1 },
            Mop::Read { key: 5, list: Some(vec![1]) },
        ]);
        recorder.complete(2, OpType::Info, done, 15);
        let (f, add) = SetOp::Add(4).encode(1);
        recorder.invoke(3, f, add, 16);
        recorder.finish()
    }

    #[test]
    fn history_round_trips_through_jepsen_edn() {
        let history = sample();
        let text = history.to_edn();
        assert!(
            text.starts_with(
                "{:type :invoke, :f :write, :value [7 3], :process 0, :time 10, :index 0}\n"
            ),
            "{text}"
        );
        assert!(text.contains(":value [[:append 5 1] [:r 5 [1]]]"), "{text}");
        assert_eq!(History::from_edn(&text).unwrap(), history);
    }

    #[test]
    fn pairs_match_invocations_to_completions_per_process() {
        let history = sample();
        let pairs = history.pairs().unwrap();
        assert_eq!(pairs.len(), 4);
        assert_eq!(pairs[0].return_time(), Some(12));
        assert_eq!(pairs[1].outcome(), OpType::Ok);
        assert_eq!(
            RegisterOp::decode(pairs[1].invoke.f, pairs[1].value(), 1).unwrap(),
            (7, RegisterOp::Read(Some(3)))
        );
        assert_eq!(pairs[2].outcome(), OpType::Info);
        assert_eq!(pairs[2].return_time(), None);
        assert!(pairs[3].completion.is_none());
        assert_eq!(pairs[3].outcome(), OpType::Info);
    }

    #[test]
    fn nemesis_ops_are_skipped_and_bad_pairs_refused() {
        let text = "{:type :info, :f :start, :process :nemesis, :time 1}\n\
                    {:type :ok, :f :read, :value [1 nil], :process 0, :time 2}";
        let history = History::from_edn(text).unwrap();
        assert_eq!(history.ops.len(), 1);
        assert!(matches!(history.pairs(), Err(HistoryError::Unpaired { index: 1, .. })));
        let twice = "{:type :invoke, :f :read, :value [1 nil], :process 0, :time 1}\n\
                     {:type :invoke, :f :read, :value [1 nil], :process 0, :time 2}";
        assert!(History::from_edn(twice).unwrap().pairs().is_err());
        assert!(History::from_edn("{:type :invoke, :f :frob, :process 0, :time 1}").is_err());
    }

    #[test]
    fn workload_values_decode_and_refuse_bad_shapes() {
        let txn = edn::parse("[[:append 5 1] [:r 5 [1 2]] [:r 6 nil]]").unwrap();
        assert_eq!(
            decode_txn(&txn, 0).unwrap(),
            vec![
                Mop::Append { key: 5, element: 1 },
                Mop::Read { key: 5, list: Some(vec![1, 2]) },
                Mop::Read { key: 6, list: None },
            ]
        );
        assert!(decode_txn(&edn::parse("[[:put 5 1]]").unwrap(), 0).is_err());
        let cas = edn::parse("[3 [1 2]]").unwrap();
        assert_eq!(RegisterOp::decode(Function::Cas, &cas, 0).unwrap(), (3, RegisterOp::Cas(1, 2)));
        assert!(RegisterOp::decode(Function::Cas, &edn::parse("[3 1]").unwrap(), 0).is_err());
        let set = edn::parse("[2 #{1 3}]").unwrap();
        assert_eq!(
            SetOp::decode(Function::Read, &set, 0).unwrap(),
            (2, SetOp::Read(Some(vec![1, 3])))
        );
        assert_eq!(
            CounterOp::decode(Function::Add, &edn::parse("[2 5]").unwrap(), 0).unwrap(),
            (2, CounterOp::Add(5))
        );
    }
}
