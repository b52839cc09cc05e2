//! Linearizability of client histories: a Wing & Gong search with Lowe's memoization, in the
//! shape of Porcupine's `checkSingle`, plus the models of what Klein serves.
//!
//! A history is what clients saw: for every operation its client, input, call time, and either
//! the output it returned with its return time, or [`Outcome::Unknown`] when the client timed
//! out or crashed. The history is linearizable when every operation can be given one instant
//! between its call and its return, such that applying the operations one by one in that order
//! to the [`Model`] from its initial state produces exactly the outputs the clients saw. An
//! unknown-outcome operation is pending forever (Knossos's `:info`, Porcupine's infinite return
//! time): it may take effect at any instant after its call, with any output, or never at all.
//!
//! Time is whatever the recorder counts (simulated ticks, nanoseconds); only order matters.
//! Operation `a` precedes `b` in real time when `a` returned strictly before `b` was called;
//! equal times are concurrent, which is the permissive reading of a recorder whose clock
//! cannot split them.
//!
//! How:
//! - Per-key decomposition. Linearizability is local (Herlihy & Wing 1990): a history is
//!   linearizable iff its sub-history on every independent object is. [`Model::key`] names the
//!   object of an input, and each key's operations are checked separately, in key order.
//! - The search (Wing & Gong 1993, Lowe 2017, Porcupine). Calls and returns are sorted by time
//!   into a doubly-linked list. Walking it from the head, a call entry is an operation that may
//!   be linearized next: if the model accepts its output from the current state, it is lifted
//!   out of the list (its call and return entries), pushed on a stack, and the walk restarts at
//!   the head. Reaching a return entry means that operation had to be linearized by now: the
//!   last choice is undone (dancing links) and the walk continues after it. The end of the list
//!   means every operation that returned is linearized: the history is linearizable, and the
//!   unknown-outcome operations still in the list are the ones that never took effect (they
//!   have no return entry, so nothing ever forces them in).
//! - Memoization. A configuration is the set of linearized operations (a bitset) and the model
//!   state; what can follow depends on nothing else, so a configuration reached a second time
//!   is not explored again. An unknown-outcome operation that would leave the state unchanged
//!   (a lost read, a failed compare-and-set) is never linearized: that is the configuration it
//!   would leave anyway, minus a bit.
//!
//! Complexity and the budget. Checking linearizability is NP-complete (Gibbons & Korach 1997),
//! so the search is exponential in the worst case - in how many operations overlap, not in the
//! history's length. One step visits one list entry: a model step plus hashing the bitset
//! (`n / 64` words for `n` operations of the key) and the state, or one undo. A history with
//! no overlap takes exactly one step per operation; with at most `c` operations pending at once
//! and `s` distinct states, the memo bounds the work to about `n * 2^c * s` steps. An
//! unknown-outcome operation that changes the state stays pending to the end, so it widens
//! every later window.
//! Memory is the cache, one entry per successful step: at most `steps * (n / 64 words + one
//! state)`. Each key gets a budget of steps ([`LINEARIZABILITY_SEARCH_STEPS_DEFAULT`], or the
//! caller's); a key that runs out of it is answered [`Verdict::Unknown`], never guessed, and the
//! other keys are still checked, so a definite violation elsewhere is still reported. A whole
//! check costs at most `keys * budget` steps.
//!
//! Models: [`KvModel`] (Redis strings: GET, SET, DEL, SETNX, INCR and a compare-and-set that
//! also serves lock release) and [`MutexModel`] (a lease-free mutex).
//!
//! Must never: read a clock, draw randomness or do I/O (the same history always gets the same
//! verdict in the same number of steps), or answer yes or no when the budget ran out.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::{self, Debug, Write as _};
use std::hash::{BuildHasherDefault, DefaultHasher, Hash};
use std::mem;

use crate::constants::LINEARIZABILITY_SEARCH_STEPS_DEFAULT;

/// Hashing for the memo cache: std's `SipHash` with fixed keys, so no run depends on a random
/// seed (the cache is only looked up, never iterated, but determinism is cheaper than proof).
type FixedState = BuildHasherDefault<DefaultHasher>;

/// Most operations of a prefix [`Counterexample::describe`] prints; it reports how many more
/// came before them.
const DESCRIBE_PREFIX_OPERATIONS_COUNT_MAX: usize = 10;

/// A sequential specification: the object the history should behave like (Porcupine's shape).
pub trait Model {
    /// What independent objects are called (a Redis key); `()` checks the history as one
    /// object.
    type Key: Clone + Ord + Debug;
    /// The object's state. The memo cache compares and hashes states, so two states that can
    /// behave differently must not be equal.
    type State: Clone + Eq + Hash + Debug;
    /// What a client asked for, including the key.
    type Input;
    /// What a client was answered.
    type Output;

    /// The object an input acts on. Operations on different keys must be independent:
    /// no input may read or write two keys.
    fn key(&self, input: &Self::Input) -> Self::Key;

    /// The state of every key before the history.
    fn init(&self) -> Self::State;

    /// The state after `input` takes effect in `state` and answers `output`; `None` when that
    /// answer is impossible from that state.
    fn step(
        &self,
        state: &Self::State,
        input: &Self::Input,
        output: &Self::Output,
    ) -> Option<Self::State>;

    /// The state after `input` takes effect in `state` with an answer nobody saw; `None` when
    /// it cannot take effect there at all. A model must have exactly one such state per input:
    /// nondeterministic models are not supported.
    fn step_unknown(&self, state: &Self::State, input: &Self::Input) -> Option<Self::State>;
}

/// One client operation of a history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Operation<I, O> {
    /// The client (process) that issued it; only reports use it.
    pub client: u64,
    /// What the client asked for.
    pub input: I,
    /// When the client sent it.
    pub call_time: u64,
    /// What came back.
    pub outcome: Outcome<O>,
}

/// How an operation ended, as its client saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome<O> {
    /// The client received `output` at `return_time` (not before the call time).
    Returned {
        /// The answer.
        output: O,
        /// When the client received it.
        return_time: u64,
    },
    /// The client timed out or crashed: the operation may have taken effect at any instant
    /// after its call, or never.
    Unknown,
}

impl<I, O> Operation<I, O> {
    /// An operation that returned `output` at `return_time`.
    #[must_use]
    pub fn returned(client: u64, input: I, call_time: u64, return_time: u64, output: O) -> Self {
        Operation { client, input, call_time, outcome: Outcome::Returned { output, return_time } }
    }

    /// An operation whose outcome the client never learned.
    #[must_use]
    pub fn unknown(client: u64, input: I, call_time: u64) -> Self {
        Operation { client, input, call_time, outcome: Outcome::Unknown }
    }

    /// When the client received the answer; `None` (never) for an unknown outcome.
    #[must_use]
    pub fn return_time(&self) -> Option<u64> {
        match &self.outcome {
            Outcome::Returned { return_time, .. } => Some(*return_time),
            Outcome::Unknown => None,
        }
    }

    /// Whether `self` returned strictly before `other` was called, so every linearization
    /// puts `self` first.
    #[must_use]
    pub fn precedes(&self, other: &Self) -> bool {
        self.return_time().is_some_and(|time| time < other.call_time)
    }
}

/// What a check found, and how much search it took.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report<K, S> {
    /// The answer.
    pub verdict: Verdict<K, S>,
    /// Search steps spent, over all keys (see the module doc for what a step is).
    pub steps: u64,
}

/// The answer of a check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict<K, S> {
    /// Every key's sub-history is linearizable.
    Linearizable,
    /// The first key, in key order, whose sub-history is not linearizable.
    NotLinearizable(Counterexample<K, S>),
    /// No key is known to be violated, but the first one here ran out of its budget of steps,
    /// so the history may or may not be linearizable.
    Unknown {
        /// The first key whose search was cut short.
        key: K,
    },
}

/// Why one key's sub-history is not linearizable: the longest linearizable prefix the search
/// found, and the operation that then could not be placed.
///
/// After `prefix` the model is in `state`. `blocked` is the first operation outside the prefix
/// to return, so it had to be linearized before that return; yet no operation called by then
/// (`blocked` among them) can take effect from `state` with the output its client saw, so
/// nothing can come next. It is the deepest such dead end of the search. Indices are positions
/// in the checked history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Counterexample<K, S> {
    /// The key.
    pub key: K,
    /// The operations linearized, in linearization order.
    pub prefix: Vec<usize>,
    /// The model's state after them.
    pub state: S,
    /// The operation that had to come next and could not.
    pub blocked: usize,
}

impl<K: Debug, S: Debug> Counterexample<K, S> {
    /// A human-readable account for a failing test or simulator run; `history` is the history
    /// that was checked.
    ///
    /// # Panics
    /// If an index is out of `history`'s range (it is not the checked history).
    #[must_use]
    pub fn describe<I: Debug, O: Debug>(&self, history: &[Operation<I, O>]) -> String {
        let mut text = String::new();
        let shown_from = self.prefix.len().saturating_sub(DESCRIBE_PREFIX_OPERATIONS_COUNT_MAX);
        let _ = writeln!(
            text,
            "key {:?} is not linearizable: the longest linearizable prefix found has {} \
             operations, leaving the state {:?}, and then operation #{} cannot take effect.",
            self.key,
            self.prefix.len(),
            self.state,
            self.blocked,
        );
        let _ = writeln!(text, "prefix ({shown_from} earlier operations not shown):");
        for index in &self.prefix[shown_from..] {
            let _ = writeln!(text, "  {}", describe_operation(*index, &history[*index]));
        }
        let _ = writeln!(text, "blocked:");
        let _ = writeln!(text, "  {}", describe_operation(self.blocked, &history[self.blocked]));
        text
    }
}

/// `#index client C [call, return] input -> output`, with `?` for an unknown outcome.
fn describe_operation<I: Debug, O: Debug>(index: usize, operation: &Operation<I, O>) -> String {
    let Operation { client, input, call_time, outcome } = operation;
    match outcome {
        Outcome::Returned { output, return_time } => {
            format!("#{index} client {client} [{call_time}, {return_time}] {input:?} -> {output:?}")
        }
        Outcome::Unknown => format!("#{index} client {client} [{call_time}, ?) {input:?} -> ?"),
    }
}

/// Checks `history` against `model` with the default budget of
/// [`LINEARIZABILITY_SEARCH_STEPS_DEFAULT`] steps per key.
///
/// # Panics
/// If an operation returned before it was called (the recorder is broken), or if the model
/// panics.
#[must_use]
pub fn check<M: Model>(
    model: &M,
    history: &[Operation<M::Input, M::Output>],
) -> Report<M::Key, M::State> {
    check_with_budget(model, history, LINEARIZABILITY_SEARCH_STEPS_DEFAULT)
}

/// Checks `history` against `model`, spending at most `steps_max` search steps on each key:
/// the whole check takes at most `keys * steps_max` steps. Keys are checked in order; the first
/// violation ends the check.
///
/// # Panics
/// If an operation returned before it was called (the recorder is broken), or if the model
/// panics.
#[must_use]
pub fn check_with_budget<M: Model>(
    model: &M,
    history: &[Operation<M::Input, M::Output>],
    steps_max: u64,
) -> Report<M::Key, M::State> {
    for operation in history {
        if let Some(return_time) = operation.return_time() {
            assert!(operation.call_time <= return_time, "an operation returned before its call");
        }
    }
    let mut partitions: BTreeMap<M::Key, Vec<usize>> = BTreeMap::new();
    for (index, operation) in history.iter().enumerate() {
        partitions.entry(model.key(&operation.input)).or_default().push(index);
    }
    let mut steps = 0;
    let mut first_unknown = None;
    for (key, operations) in partitions {
        let mut search = Search::new(model, history, &operations);
        let verdict = search.run(steps_max);
        steps += search.steps;
        match verdict {
            PartitionVerdict::Linearizable => {}
            PartitionVerdict::Unknown => {
                first_unknown.get_or_insert(key);
            }
            PartitionVerdict::NotLinearizable(failure) => {
                let counterexample = Counterexample {
                    key,
                    prefix: failure.prefix.iter().map(|local| operations[*local]).collect(),
                    state: failure.state,
                    blocked: operations[failure.blocked],
                };
                return Report { verdict: Verdict::NotLinearizable(counterexample), steps };
            }
        }
    }
    let verdict = match first_unknown {
        Some(key) => Verdict::Unknown { key },
        None => Verdict::Linearizable,
    };
    Report { verdict, steps }
}

// ---------------------------------------------------------------------------------------------
// The search over one key.
// ---------------------------------------------------------------------------------------------

/// The answer for one key; indices are local to the key's operations.
enum PartitionVerdict<S> {
    Linearizable,
    NotLinearizable(Failure<S>),
    Unknown,
}

/// The deepest point where the search had to undo: the linearized operations, the state, and
/// the operation whose return entry was reached.
struct Failure<S> {
    prefix: Vec<usize>,
    state: S,
    blocked: usize,
}

/// One linearized operation and the state before it.
struct Frame<S> {
    operation: usize,
    state_before: S,
}

/// Node 0 of the entry list: the head, before every entry.
const HEAD: usize = 0;

/// The calls and returns of one key's operations, sorted by time, as a doubly-linked list that
/// operations are lifted out of and put back into in stack order (dancing links).
///
/// Nodes: [`HEAD`], then one per entry, then the tail. An unknown-outcome operation has no
/// return entry: nothing forces it to be linearized.
struct EntryList {
    next: Vec<usize>,
    previous: Vec<usize>,
    /// Per node: the operation, and whether the node is its call.
    entries: Vec<(usize, bool)>,
    call_nodes: Vec<usize>,
    return_nodes: Vec<Option<usize>>,
}

impl EntryList {
    fn new<I, O>(history: &[Operation<I, O>], operations: &[usize]) -> EntryList {
        // (time, call before return at equal times, operation): equal times are concurrent.
        let mut events: Vec<(u64, bool, usize)> = Vec::with_capacity(operations.len() * 2);
        for (local, index) in operations.iter().enumerate() {
            let operation = &history[*index];
            events.push((operation.call_time, false, local));
            if let Some(return_time) = operation.return_time() {
                events.push((return_time, true, local));
            }
        }
        events.sort_unstable();
        let tail = events.len() + 1;
        let mut list = EntryList {
            next: (1..=tail).chain([tail]).collect(),
            previous: [HEAD].into_iter().chain(0..tail).collect(),
            entries: Vec::with_capacity(tail + 1),
            call_nodes: vec![0; operations.len()],
            return_nodes: vec![None; operations.len()],
        };
        list.entries.push((usize::MAX, false));
        for (node, (_, is_return, local)) in events.into_iter().enumerate() {
            let node = node + 1;
            list.entries.push((local, !is_return));
            if is_return {
                list.return_nodes[local] = Some(node);
            } else {
                list.call_nodes[local] = node;
            }
        }
        list.entries.push((usize::MAX, false));
        list
    }

    fn tail(&self) -> usize {
        self.entries.len() - 1
    }

    fn remove(&mut self, node: usize) {
        let (previous, next) = (self.previous[node], self.next[node]);
        self.next[previous] = next;
        self.previous[next] = previous;
    }

    /// Puts back the node removed last of those still removed.
    fn restore(&mut self, node: usize) {
        let (previous, next) = (self.previous[node], self.next[node]);
        self.next[previous] = node;
        self.previous[next] = node;
    }

    fn lift(&mut self, operation: usize) {
        self.remove(self.call_nodes[operation]);
        if let Some(node) = self.return_nodes[operation] {
            self.remove(node);
        }
    }

    fn unlift(&mut self, operation: usize) {
        if let Some(node) = self.return_nodes[operation] {
            self.restore(node);
        }
        self.restore(self.call_nodes[operation]);
    }
}

/// The search over one key's operations.
struct Search<'h, M: Model> {
    model: &'h M,
    history: &'h [Operation<M::Input, M::Output>],
    /// History indices of the key's operations; the search names them by position here.
    operations: &'h [usize],
    list: EntryList,
    linearized: Vec<u64>,
    cache: HashMap<Box<[u64]>, HashSet<M::State, FixedState>, FixedState>,
    stack: Vec<Frame<M::State>>,
    best: Option<Failure<M::State>>,
    /// The lowest the stack has been since `best` was recorded: `best.prefix` still equals
    /// the stack below it, so recording a deeper failure copies only what changed.
    low_water: usize,
    steps: u64,
}

impl<'h, M: Model> Search<'h, M> {
    fn new(
        model: &'h M,
        history: &'h [Operation<M::Input, M::Output>],
        operations: &'h [usize],
    ) -> Self {
        Search {
            model,
            history,
            operations,
            list: EntryList::new(history, operations),
            linearized: vec![0; operations.len().div_ceil(64)],
            cache: HashMap::with_hasher(FixedState::default()),
            stack: Vec::new(),
            best: None,
            low_water: 0,
            steps: 0,
        }
    }

    fn run(&mut self, steps_max: u64) -> PartitionVerdict<M::State> {
        let mut state = self.model.init();
        let mut node = self.list.next[HEAD];
        loop {
            if node == self.list.tail() {
                return PartitionVerdict::Linearizable;
            }
            if self.steps == steps_max {
                return PartitionVerdict::Unknown;
            }
            self.steps += 1;
            let (operation, is_call) = self.list.entries[node];
            if is_call {
                if let Some(state_after) = self.try_linearize(operation, &state) {
                    let state_before = mem::replace(&mut state, state_after);
                    self.stack.push(Frame { operation, state_before });
                    self.list.lift(operation);
                    node = self.list.next[HEAD];
                } else {
                    node = self.list.next[node];
                }
            } else {
                self.record_failure(operation, &state);
                let Some(frame) = self.stack.pop() else {
                    let failure = self.best.take().expect("a failure was just recorded");
                    return PartitionVerdict::NotLinearizable(failure);
                };
                self.low_water = self.low_water.min(self.stack.len());
                self.set_linearized(frame.operation, false);
                self.list.unlift(frame.operation);
                state = frame.state_before;
                node = self.list.next[self.list.call_nodes[frame.operation]];
            }
        }
    }

    /// The state after linearizing `operation` next, if the model allows it and the
    /// configuration it leads to is new; marks it linearized then.
    fn try_linearize(&mut self, operation: usize, state: &M::State) -> Option<M::State> {
        let Operation { input, outcome, .. } = &self.history[self.operations[operation]];
        let state_after = match outcome {
            Outcome::Returned { output, .. } => self.model.step(state, input, output)?,
            Outcome::Unknown => {
                self.model.step_unknown(state, input).filter(|after| after != state)?
            }
        };
        self.set_linearized(operation, true);
        if self.remember(&state_after) {
            return Some(state_after);
        }
        self.set_linearized(operation, false);
        None
    }

    /// Adds the current configuration with `state` to the cache; false if it was there.
    fn remember(&mut self, state: &M::State) -> bool {
        if let Some(states) = self.cache.get_mut(self.linearized.as_slice()) {
            return states.insert(state.clone());
        }
        let mut states = HashSet::with_hasher(FixedState::default());
        states.insert(state.clone());
        self.cache.insert(self.linearized.clone().into_boxed_slice(), states);
        true
    }

    fn set_linearized(&mut self, operation: usize, is_linearized: bool) {
        let (word, bit) = (operation / 64, 1_u64 << (operation % 64));
        if is_linearized {
            self.linearized[word] |= bit;
        } else {
            self.linearized[word] &= !bit;
        }
    }

    /// Keeps the deepest point where a return entry forced an undo.
    fn record_failure(&mut self, blocked: usize, state: &M::State) {
        let depth = self.stack.len();
        match &mut self.best {
            Some(best) if best.prefix.len() >= depth => return,
            Some(best) => {
                best.prefix.truncate(self.low_water);
                best.prefix.extend(self.stack[self.low_water..].iter().map(|f| f.operation));
                best.state = state.clone();
                best.blocked = blocked;
            }
            None => {
                let prefix = self.stack.iter().map(|frame| frame.operation).collect();
                self.best = Some(Failure { prefix, state: state.clone(), blocked });
            }
        }
        self.low_water = depth;
    }
}

// ---------------------------------------------------------------------------------------------
// Models.
// ---------------------------------------------------------------------------------------------

/// A byte string (a Redis key or value) that prints as `b"..."`, so reports stay readable.
#[derive(Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Bytes(pub Vec<u8>);

impl Debug for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "b\"{}\"", self.0.escape_ascii())
    }
}

impl From<&str> for Bytes {
    fn from(text: &str) -> Bytes {
        Bytes(text.as_bytes().to_vec())
    }
}

impl From<&[u8]> for Bytes {
    fn from(bytes: &[u8]) -> Bytes {
        Bytes(bytes.to_vec())
    }
}

/// Redis string keys, each an independent register: values are byte strings, and a missing
/// key is `None` (the initial state of every key).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KvModel;

/// One command on one key of [`KvModel`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KvInput {
    /// The key.
    pub key: Bytes,
    /// What to do with it.
    pub command: KvCommand,
}

/// The commands of [`KvModel`], each with the output it answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KvCommand {
    /// GET: [`KvOutput::Value`], the value or `None` when the key is missing.
    Get,
    /// SET: [`KvOutput::Done`].
    Set(Bytes),
    /// DEL of one key: [`KvOutput::Deleted`], whether the key existed.
    Del,
    /// SETNX: [`KvOutput::Stored`], whether the key was missing and is now set.
    SetNx(Bytes),
    /// INCR: [`KvOutput::Incremented`]. A missing key counts as 0; the value must be the
    /// canonical decimal form of an `i64` (Redis's `string2ll`: no sign but `-`, no leading
    /// zero, not `-0`), and the result is stored in that form.
    Incr,
    /// Compare-and-set: if the value is `expected` (`None`: the key is missing), make it `new`
    /// (`None`: delete the key). [`KvOutput::Swapped`], whether it did. Serves lock release
    /// ("delete if I still hold it") and fencing.
    Cas {
        /// The value the key must hold.
        expected: Option<Bytes>,
        /// The value it gets.
        new: Option<Bytes>,
    },
}

/// The answers of [`KvModel`]; each command has its own variant, and pairing a command with
/// another command's variant is a bug in the history's recorder (the check panics).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KvOutput {
    /// GET's value.
    Value(Option<Bytes>),
    /// SET's OK.
    Done,
    /// DEL: whether the key existed.
    Deleted(bool),
    /// SETNX: whether it set the key.
    Stored(bool),
    /// INCR: the new value, or why the key was left unchanged.
    Incremented(Result<i64, IncrError>),
    /// Compare-and-set: whether it swapped.
    Swapped(bool),
}

/// Why INCR left a key unchanged.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IncrError {
    /// The value is not the canonical decimal form of an `i64`.
    NotAnInteger,
    /// The value is `i64::MAX`.
    Overflow,
}

/// A history of [`KvModel`] operations.
pub type KvOperation = Operation<KvInput, KvOutput>;

impl KvModel {
    /// Runs `command` on a key holding `value`: the new value and the answer.
    #[must_use]
    pub fn apply(value: &Option<Bytes>, command: &KvCommand) -> (Option<Bytes>, KvOutput) {
        match command {
            KvCommand::Get => (value.clone(), KvOutput::Value(value.clone())),
            KvCommand::Set(new) => (Some(new.clone()), KvOutput::Done),
            KvCommand::Del => (None, KvOutput::Deleted(value.is_some())),
            KvCommand::SetNx(new) => match value {
                Some(_) => (value.clone(), KvOutput::Stored(false)),
                None => (Some(new.clone()), KvOutput::Stored(true)),
            },
            KvCommand::Incr => {
                let current = match value {
                    None => Some(0),
                    Some(bytes) => parse_integer(&bytes.0),
                };
                let result = match current {
                    None => Err(IncrError::NotAnInteger),
                    Some(current) => current.checked_add(1).ok_or(IncrError::Overflow),
                };
                match result {
                    Ok(next) => (
                        Some(Bytes::from(next.to_string().as_str())),
                        KvOutput::Incremented(result),
                    ),
                    Err(_) => (value.clone(), KvOutput::Incremented(result)),
                }
            }
            KvCommand::Cas { expected, new } => {
                if value == expected {
                    (new.clone(), KvOutput::Swapped(true))
                } else {
                    (value.clone(), KvOutput::Swapped(false))
                }
            }
        }
    }
}

/// The `i64` whose canonical decimal form `bytes` is (what Redis's INCR accepts).
fn parse_integer(bytes: &[u8]) -> Option<i64> {
    let (is_negative, digits) = match bytes.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, bytes),
    };
    let is_canonical = match digits {
        [] => false,
        [b'0'] => !is_negative,
        [first, ..] => (b'1'..=b'9').contains(first),
    };
    if !is_canonical || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(bytes).ok()?.parse().ok()
}

impl Model for KvModel {
    type Key = Bytes;
    type State = Option<Bytes>;
    type Input = KvInput;
    type Output = KvOutput;

    fn key(&self, input: &KvInput) -> Bytes {
        input.key.clone()
    }

    fn init(&self) -> Option<Bytes> {
        None
    }

    fn step(
        &self,
        state: &Option<Bytes>,
        input: &KvInput,
        output: &KvOutput,
    ) -> Option<Self::State> {
        let (state_after, expected) = KvModel::apply(state, &input.command);
        assert!(
            mem::discriminant(&expected) == mem::discriminant(output),
            "the output {output:?} cannot answer {:?}",
            input.command,
        );
        (expected == *output).then_some(state_after)
    }

    fn step_unknown(&self, state: &Option<Bytes>, input: &KvInput) -> Option<Self::State> {
        Some(KvModel::apply(state, &input.command).0)
    }
}

/// Lease-free mutexes, one per lock name: a holder keeps its lock until it releases it.
/// Acquiring a held lock fails, even for its holder (not reentrant, like SET NX); releasing
/// succeeds only for the holder.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MutexModel;

/// One command on one lock of [`MutexModel`]; the output is whether it succeeded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MutexInput {
    /// The lock's name.
    pub lock: Bytes,
    /// What to do with it.
    pub command: MutexCommand,
}

/// The commands of [`MutexModel`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MutexCommand {
    /// Take the lock if it is free.
    Acquire {
        /// Who takes it.
        owner: u64,
    },
    /// Free the lock if `owner` holds it.
    Release {
        /// Who frees it.
        owner: u64,
    },
}

impl MutexModel {
    /// Runs `command` on a lock held by `holder`: the new holder and whether it succeeded.
    #[must_use]
    pub fn apply(holder: Option<u64>, command: MutexCommand) -> (Option<u64>, bool) {
        match (holder, command) {
            (None, MutexCommand::Acquire { owner }) => (Some(owner), true),
            (Some(current), MutexCommand::Release { owner }) if current == owner => (None, true),
            (holder, _) => (holder, false),
        }
    }
}

impl Model for MutexModel {
    type Key = Bytes;
    type State = Option<u64>;
    type Input = MutexInput;
    type Output = bool;

    fn key(&self, input: &MutexInput) -> Bytes {
        input.lock.clone()
    }

    fn init(&self) -> Option<u64> {
        None
    }

    fn step(&self, state: &Option<u64>, input: &MutexInput, output: &bool) -> Option<Option<u64>> {
        let (state_after, expected) = MutexModel::apply(*state, input.command);
        (expected == *output).then_some(state_after)
    }

    fn step_unknown(&self, state: &Option<u64>, input: &MutexInput) -> Option<Option<u64>> {
        Some(MutexModel::apply(*state, input.command).0)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    // -----------------------------------------------------------------------------------------
    // Helpers for hand-written histories.
    // -----------------------------------------------------------------------------------------

    fn input(key: &str, command: KvCommand) -> KvInput {
        KvInput { key: key.into(), command }
    }

    fn returned(
        client: u64,
        call_time: u64,
        return_time: u64,
        key: &str,
        command: KvCommand,
        output: KvOutput,
    ) -> KvOperation {
        Operation::returned(client, input(key, command), call_time, return_time, output)
    }

    fn unknown(client: u64, call_time: u64, key: &str, command: KvCommand) -> KvOperation {
        Operation::unknown(client, input(key, command), call_time)
    }

    fn set(client: u64, call_time: u64, return_time: u64, key: &str, value: &str) -> KvOperation {
        let command = KvCommand::Set(value.into());
        returned(client, call_time, return_time, key, command, KvOutput::Done)
    }

    fn get(
        client: u64,
        call_time: u64,
        return_time: u64,
        key: &str,
        value: Option<&str>,
    ) -> KvOperation {
        let output = KvOutput::Value(value.map(Bytes::from));
        returned(client, call_time, return_time, key, KvCommand::Get, output)
    }

    fn verdict(history: &[KvOperation]) -> Verdict<Bytes, Option<Bytes>> {
        check(&KvModel, history).verdict
    }

    fn counterexample(history: &[KvOperation]) -> Counterexample<Bytes, Option<Bytes>> {
        match verdict(history) {
            Verdict::NotLinearizable(counterexample) => counterexample,
            other => panic!("expected a violation, got {other:?}"),
        }
    }

    // -----------------------------------------------------------------------------------------
    // Hand-written histories with known answers.
    // -----------------------------------------------------------------------------------------

    #[test]
    fn empty_history_is_linearizable_in_no_steps() {
        let report = check(&KvModel, &[]);
        assert_eq!(report.verdict, Verdict::Linearizable);
        assert_eq!(report.steps, 0);
    }

    #[test]
    fn stale_read_after_completed_write_is_not_linearizable() {
        let history = [set(1, 0, 1, "a", "1"), get(2, 2, 3, "a", None)];
        let counterexample = counterexample(&history);
        assert_eq!(counterexample.key, Bytes::from("a"));
        assert_eq!(counterexample.prefix, vec![0]);
        assert_eq!(counterexample.state, Some(Bytes::from("1")));
        assert_eq!(counterexample.blocked, 1);
    }

    #[test]
    fn read_concurrent_with_write_may_see_either_value() {
        for seen in [None, Some("1")] {
            let history = [set(1, 0, 10, "a", "1"), get(2, 2, 3, "a", seen)];
            assert_eq!(verdict(&history), Verdict::Linearizable);
        }
    }

    #[test]
    fn concurrent_writes_observed_in_either_order_are_linearizable() {
        for last in ["1", "2"] {
            let history = [
                set(1, 0, 10, "a", "1"),
                set(2, 1, 9, "a", "2"),
                get(3, 11, 12, "a", Some(last)),
                get(3, 13, 14, "a", Some(last)),
            ];
            assert_eq!(verdict(&history), Verdict::Linearizable, "last write {last}");
        }
    }

    #[test]
    fn reads_that_disagree_on_the_order_of_writes_are_not_linearizable() {
        let history = [
            set(1, 0, 10, "a", "1"),
            set(2, 1, 9, "a", "2"),
            get(3, 11, 12, "a", Some("2")),
            get(3, 13, 14, "a", Some("1")),
        ];
        assert_eq!(counterexample(&history).blocked, 3);
    }

    #[test]
    fn read_of_a_value_never_written_is_not_linearizable() {
        let history = [set(1, 0, 5, "a", "1"), get(2, 1, 4, "a", Some("2"))];
        let counterexample = counterexample(&history);
        assert_eq!(counterexample.blocked, 1);
        assert!(counterexample.prefix.len() <= 1);
    }

    #[test]
    fn unknown_write_whose_effect_is_seen_later_is_linearizable() {
        let history = [
            unknown(1, 0, "a", KvCommand::Set("1".into())),
            get(2, 5, 6, "a", None),
            get(2, 100, 101, "a", Some("1")),
        ];
        assert_eq!(verdict(&history), Verdict::Linearizable);
    }

    #[test]
    fn unknown_write_never_seen_is_linearizable() {
        let history = [
            unknown(1, 0, "a", KvCommand::Set("1".into())),
            get(2, 5, 6, "a", None),
            get(2, 7, 8, "a", None),
        ];
        assert_eq!(verdict(&history), Verdict::Linearizable);
    }

    #[test]
    fn unknown_write_seen_then_unseen_is_not_linearizable() {
        let history = [
            unknown(1, 0, "a", KvCommand::Set("1".into())),
            get(2, 5, 6, "a", Some("1")),
            get(2, 7, 8, "a", None),
        ];
        assert_eq!(counterexample(&history).blocked, 2);
    }

    #[test]
    fn unknown_write_seen_before_its_call_is_not_linearizable() {
        let history =
            [get(2, 0, 1, "a", Some("1")), unknown(1, 5, "a", KvCommand::Set("1".into()))];
        assert_eq!(counterexample(&history).blocked, 0);
    }

    #[test]
    fn unknown_increment_counts_at_most_once() {
        let history = [
            unknown(1, 0, "a", KvCommand::Incr),
            returned(2, 1, 2, "a", KvCommand::Incr, KvOutput::Incremented(Ok(2))),
        ];
        assert_eq!(verdict(&history), Verdict::Linearizable);
        let history = [
            unknown(1, 0, "a", KvCommand::Incr),
            returned(2, 1, 2, "a", KvCommand::Incr, KvOutput::Incremented(Ok(3))),
        ];
        assert_eq!(counterexample(&history).blocked, 1);
    }

    #[test]
    fn return_and_call_at_the_same_time_are_concurrent() {
        let history = [set(1, 0, 5, "a", "1"), get(2, 5, 6, "a", None)];
        assert_eq!(verdict(&history), Verdict::Linearizable);
        let history = [set(1, 0, 5, "a", "1"), get(2, 6, 7, "a", None)];
        assert_eq!(counterexample(&history).blocked, 1);
    }

    #[test]
    fn keys_are_checked_independently() {
        // Each key alone is fine; "a" then "b" in real time constrains nothing across keys.
        let history = [
            set(1, 0, 1, "a", "1"),
            set(2, 0, 1, "b", "2"),
            get(1, 2, 3, "b", Some("2")),
            get(2, 2, 3, "a", Some("1")),
        ];
        assert_eq!(verdict(&history), Verdict::Linearizable);
        // A stale read of "b" is reported under "b", with indices into the whole history.
        let history = [
            set(1, 0, 1, "a", "1"),
            set(1, 2, 3, "b", "2"),
            get(2, 4, 5, "a", Some("1")),
            get(2, 6, 7, "b", None),
        ];
        let counterexample = counterexample(&history);
        assert_eq!(counterexample.key, Bytes::from("b"));
        assert_eq!(counterexample.prefix, vec![1]);
        assert_eq!(counterexample.blocked, 3);
    }

    #[test]
    fn violation_on_a_later_key_is_reported_past_an_exhausted_one() {
        let mut history: Vec<KvOperation> =
            (0..12).map(|value| set(value, 0, 100, "a", &value.to_string())).collect();
        history.push(get(20, 101, 102, "a", Some("never")));
        history.extend([set(1, 200, 201, "b", "1"), get(2, 202, 203, "b", None)]);
        let report = check_with_budget(&KvModel, &history, 1_000);
        match report.verdict {
            Verdict::NotLinearizable(counterexample) => {
                assert_eq!(counterexample.key, Bytes::from("b"));
            }
            other => panic!("expected the violation on b, got {other:?}"),
        }
        // Without the violation on "b", the answer is "unknown", naming "a".
        history.truncate(history.len() - 1);
        let report = check_with_budget(&KvModel, &history, 1_000);
        assert_eq!(report.verdict, Verdict::Unknown { key: Bytes::from("a") });
    }

    #[test]
    fn exhausted_budget_answers_unknown_on_a_pathological_history() {
        // Sixteen concurrent writes and a read of a value none wrote: every order of every
        // subset of the writes is a distinct configuration (2^16 sets x 17 states).
        let mut history: Vec<KvOperation> =
            (0..16).map(|value| set(value, 0, 100, "a", &value.to_string())).collect();
        history.push(get(20, 101, 102, "a", Some("never")));
        let report = check_with_budget(&KvModel, &history, 50_000);
        assert_eq!(report.verdict, Verdict::Unknown { key: Bytes::from("a") });
        assert_eq!(report.steps, 50_000);
        // The same shape with six writes is small enough to refute within the default.
        let mut history: Vec<KvOperation> =
            (0..6).map(|value| set(value, 0, 100, "a", &value.to_string())).collect();
        history.push(get(20, 101, 102, "a", Some("never")));
        let report = check(&KvModel, &history);
        assert!(matches!(report.verdict, Verdict::NotLinearizable(_)));
        assert!(report.steps < LINEARIZABILITY_SEARCH_STEPS_DEFAULT);
    }

    #[test]
    fn sequential_history_takes_one_step_per_operation() {
        let history: Vec<KvOperation> = (0..10_000_u64)
            .map(|index| {
                let time = index * 2;
                returned(
                    1,
                    time,
                    time + 1,
                    "a",
                    KvCommand::Incr,
                    KvOutput::Incremented(Ok(i64::try_from(index).unwrap() + 1)),
                )
            })
            .collect();
        let report = check(&KvModel, &history);
        assert_eq!(report.verdict, Verdict::Linearizable);
        assert_eq!(report.steps, 10_000);
    }

    #[test]
    fn same_history_gets_same_report() {
        let mut history: Vec<KvOperation> =
            (0..8).map(|value| set(value, 0, 100, "a", &value.to_string())).collect();
        history.push(get(20, 101, 102, "a", Some("3")));
        history.push(get(21, 103, 104, "a", Some("4")));
        let first = check(&KvModel, &history);
        assert!(matches!(first.verdict, Verdict::NotLinearizable(_)));
        assert_eq!(check(&KvModel, &history), first);
    }

    #[test]
    fn describe_names_the_prefix_and_the_blocked_operation() {
        let history = [set(1, 0, 1, "a", "1"), get(2, 2, 3, "a", None)];
        let text = counterexample(&history).describe(&history);
        assert!(text.contains("key b\"a\""), "{text}");
        assert!(text.contains("#0 client 1 [0, 1]"), "{text}");
        assert!(text.contains("#1 client 2 [2, 3]"), "{text}");
        assert!(text.contains("Value(None)"), "{text}");
    }

    #[test]
    #[should_panic(expected = "cannot answer")]
    fn output_of_another_command_is_a_recorder_bug() {
        let history = [returned(1, 0, 1, "a", KvCommand::Get, KvOutput::Done)];
        let _ = check(&KvModel, &history);
    }

    #[test]
    #[should_panic(expected = "returned before its call")]
    fn return_before_call_is_a_recorder_bug() {
        let _ = check(&KvModel, &[set(1, 5, 4, "a", "1")]);
    }

    // -----------------------------------------------------------------------------------------
    // The models' semantics.
    // -----------------------------------------------------------------------------------------

    fn apply(value: Option<&str>, command: &KvCommand) -> (Option<Bytes>, KvOutput) {
        KvModel::apply(&value.map(Bytes::from), command)
    }

    #[test]
    fn incr_accepts_only_canonical_integers() {
        let incremented = |value: i64| {
            (Some(Bytes::from(value.to_string().as_str())), KvOutput::Incremented(Ok(value)))
        };
        assert_eq!(apply(None, &KvCommand::Incr), incremented(1));
        assert_eq!(apply(Some("41"), &KvCommand::Incr), incremented(42));
        assert_eq!(apply(Some("-1"), &KvCommand::Incr), incremented(0));
        assert_eq!(apply(Some("0"), &KvCommand::Incr), incremented(1));
        let min = i64::MIN.to_string();
        assert_eq!(apply(Some(&min), &KvCommand::Incr), incremented(i64::MIN + 1));
        for bad in ["", "-", "x", "01", "-0", "+1", " 1", "1 ", "9223372036854775808"] {
            let answer = KvOutput::Incremented(Err(IncrError::NotAnInteger));
            assert_eq!(apply(Some(bad), &KvCommand::Incr), (Some(bad.into()), answer), "{bad:?}");
        }
        let max = i64::MAX.to_string();
        let answer = KvOutput::Incremented(Err(IncrError::Overflow));
        assert_eq!(apply(Some(&max), &KvCommand::Incr), (Some(max.as_str().into()), answer));
    }

    #[test]
    fn setnx_del_and_cas_follow_redis() {
        let x = || Some(Bytes::from("x"));
        let setnx = KvCommand::SetNx("y".into());
        assert_eq!(apply(None, &setnx), (Some("y".into()), KvOutput::Stored(true)));
        assert_eq!(apply(Some("x"), &setnx), (x(), KvOutput::Stored(false)));
        assert_eq!(apply(Some("x"), &KvCommand::Del), (None, KvOutput::Deleted(true)));
        assert_eq!(apply(None, &KvCommand::Del), (None, KvOutput::Deleted(false)));
        let release = KvCommand::Cas { expected: x(), new: None };
        assert_eq!(apply(Some("x"), &release), (None, KvOutput::Swapped(true)));
        assert_eq!(apply(Some("z"), &release), (Some("z".into()), KvOutput::Swapped(false)));
        let acquire = KvCommand::Cas { expected: None, new: x() };
        assert_eq!(apply(None, &acquire), (x(), KvOutput::Swapped(true)));
        assert_eq!(apply(Some("z"), &acquire), (Some("z".into()), KvOutput::Swapped(false)));
    }

    fn lock(
        client: u64,
        call_time: u64,
        return_time: u64,
        command: MutexCommand,
        output: bool,
    ) -> Operation<MutexInput, bool> {
        let input = MutexInput { lock: "l".into(), command };
        Operation::returned(client, input, call_time, return_time, output)
    }

    #[test]
    fn mutex_is_held_by_one_owner_at_a_time() {
        let acquire = |owner| MutexCommand::Acquire { owner };
        let release = |owner| MutexCommand::Release { owner };
        let history = [
            lock(1, 0, 10, acquire(1), true),
            lock(2, 0, 10, acquire(2), false),
            lock(2, 11, 12, release(2), false),
            lock(1, 11, 12, release(1), true),
            lock(2, 13, 14, acquire(2), true),
        ];
        assert_eq!(check(&MutexModel, &history).verdict, Verdict::Linearizable);
        let history = [lock(1, 0, 10, acquire(1), true), lock(2, 0, 10, acquire(2), true)];
        assert!(matches!(check(&MutexModel, &history).verdict, Verdict::NotLinearizable(_)));
        let history = [lock(1, 0, 1, acquire(1), true), lock(1, 2, 3, acquire(1), true)];
        assert!(matches!(check(&MutexModel, &history).verdict, Verdict::NotLinearizable(_)));
        let unknown_release =
            Operation::unknown(1, MutexInput { lock: "l".into(), command: release(1) }, 2);
        let history = [
            lock(1, 0, 1, acquire(1), true),
            unknown_release,
            lock(2, 3, 4, acquire(2), false),
            lock(2, 5, 6, acquire(2), true),
        ];
        assert_eq!(check(&MutexModel, &history).verdict, Verdict::Linearizable);
    }

    // -----------------------------------------------------------------------------------------
    // Cross-check against brute force on small random histories.
    // -----------------------------------------------------------------------------------------

    /// Random histories of each kind (generated, then mutated) a cross-check runs.
    const KV_HISTORIES_COUNT: usize = 10_000;
    const MUTEX_HISTORIES_COUNT: usize = 5_000;

    /// Most operations in one random history: brute force tries every order.
    const RANDOM_HISTORY_OPERATIONS_COUNT_MAX: usize = 7;

    /// xorshift64* (Vigna 2016), seeded, so every run checks the same histories.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }

        fn below(&mut self, bound: u64) -> u64 {
            self.next() % bound
        }

        fn index(&mut self, length: usize) -> usize {
            usize::try_from(self.below(u64::try_from(length).unwrap())).unwrap()
        }

        fn one_in(&mut self, count: u64) -> bool {
            self.below(count) == 0
        }
    }

    /// Linearizable by definition: every returned operation and some subset of the unknown
    /// ones, in some order that respects real time, replay on `execute` from `initial` with the
    /// outputs the clients saw. Tries every subset and every such order (dropping an order at
    /// its first wrong output); no memo, no split by key, and none of the checker's code.
    fn brute_force<I, O: PartialEq, R: Clone>(
        history: &[Operation<I, O>],
        initial: &R,
        execute: &dyn Fn(&mut R, &I) -> O,
    ) -> bool {
        let is_unknown = |index: &usize| matches!(history[*index].outcome, Outcome::Unknown);
        let unknown: Vec<usize> = (0..history.len()).filter(is_unknown).collect();
        (0..1_u32 << unknown.len()).any(|mask| {
            let mut chosen: Vec<bool> = (0..history.len()).map(|i| !is_unknown(&i)).collect();
            for (bit, index) in unknown.iter().enumerate() {
                chosen[*index] |= mask >> bit & 1 == 1;
            }
            let mut placed = vec![false; history.len()];
            some_order_replays(history, &chosen, &mut placed, initial, execute)
        })
    }

    fn some_order_replays<I, O: PartialEq, R: Clone>(
        history: &[Operation<I, O>],
        chosen: &[bool],
        placed: &mut [bool],
        state: &R,
        execute: &dyn Fn(&mut R, &I) -> O,
    ) -> bool {
        let pending: Vec<usize> =
            (0..history.len()).filter(|i| chosen[*i] && !placed[*i]).collect();
        if pending.is_empty() {
            return true;
        }
        let returned_before = |earlier: usize, later: usize| match history[earlier].outcome {
            Outcome::Returned { return_time, .. } => return_time < history[later].call_time,
            Outcome::Unknown => false,
        };
        for candidate in pending.iter().copied() {
            if pending.iter().any(|other| returned_before(*other, candidate)) {
                continue;
            }
            let mut next = state.clone();
            let output = execute(&mut next, &history[candidate].input);
            if let Outcome::Returned { output: seen, .. } = &history[candidate].outcome
                && *seen != output
            {
                continue;
            }
            placed[candidate] = true;
            let found = some_order_replays(history, chosen, placed, &next, execute);
            placed[candidate] = false;
            if found {
                return true;
            }
        }
        false
    }

    /// A history of 2 to [`RANDOM_HISTORY_OPERATIONS_COUNT_MAX`] operations by 2-3 clients on
    /// 1-2 keys, run against `execute`: each operation takes effect at a random instant of its
    /// interval (an unknown-outcome one at a random instant after its call, or never), so the
    /// history is linearizable. Intervals of different clients overlap at random.
    fn random_history<I, O, R: Default>(
        rng: &mut Rng,
        random_input: &dyn Fn(&mut Rng, &str) -> I,
        execute: &dyn Fn(&mut R, &I) -> O,
    ) -> Vec<Operation<I, O>> {
        let clients = 2 + rng.index(2);
        let keys = 1 + rng.index(2);
        let length = 2 + rng.index(RANDOM_HISTORY_OPERATIONS_COUNT_MAX - 1);
        let mut free_at = vec![0; clients];
        let mut calls = Vec::with_capacity(length);
        // (instant, tie-break, operation) of every operation that takes effect.
        let mut effects = Vec::with_capacity(length);
        for index in 0..length {
            let client = rng.index(clients);
            let call_time = free_at[client] + rng.below(3);
            let duration = rng.below(6);
            let key = ["a", "b"][rng.index(keys)];
            let input = random_input(rng, key);
            let is_unknown = rng.one_in(5);
            if !is_unknown {
                effects.push((call_time + rng.below(duration + 1), rng.next(), index));
            } else if rng.one_in(2) {
                effects.push((call_time + rng.below(12), rng.next(), index));
            }
            let return_time = (!is_unknown).then_some(call_time + duration);
            calls.push((u64::try_from(client).unwrap(), input, call_time, return_time));
            // The next call of this client may come at this return time: a tie, concurrent.
            free_at[client] = call_time + duration + rng.below(2);
        }
        effects.sort_unstable();
        let mut outputs: Vec<Option<O>> = (0..length).map(|_| None).collect();
        let mut store = R::default();
        for (_, _, index) in effects {
            outputs[index] = Some(execute(&mut store, &calls[index].1));
        }
        let mut history = Vec::with_capacity(length);
        for ((client, input, call_time, return_time), output) in calls.into_iter().zip(outputs) {
            history.push(match return_time {
                Some(return_time) => {
                    let output = output.expect("a returned operation took effect");
                    Operation::returned(client, input, call_time, return_time, output)
                }
                None => Operation::unknown(client, input, call_time),
            });
        }
        history
    }

    /// One random change that may break linearizability: another output (for an
    /// unknown-outcome operation: an invented return), or, when that is not possible or by
    /// chance, the operation's interval moved earlier.
    fn mutate<I, O: PartialEq>(
        rng: &mut Rng,
        history: &mut [Operation<I, O>],
        random_output: &dyn Fn(&mut Rng, &I) -> O,
    ) {
        let index = rng.index(history.len());
        let operation = &mut history[index];
        let output = random_output(rng, &operation.input);
        let is_same = matches!(&operation.outcome, Outcome::Returned { output: seen, .. }
            if *seen == output);
        if is_same || rng.one_in(4) {
            let shift = 1 + rng.below(operation.call_time + 1);
            operation.call_time = operation.call_time.saturating_sub(shift);
            if let Outcome::Returned { return_time, .. } = &mut operation.outcome {
                *return_time = return_time.saturating_sub(shift);
            }
        } else {
            let return_time = operation.return_time().unwrap_or(operation.call_time + rng.below(4));
            operation.outcome = Outcome::Returned { output, return_time };
        }
    }

    /// What the cross-checks saw, by verdict, for the assertions that both verdicts are common.
    #[derive(Debug, Default)]
    struct Counts {
        linearizable: usize,
        not_linearizable: usize,
        linearizable_with_unknown: usize,
        not_linearizable_with_unknown: usize,
        not_linearizable_with_two_keys: usize,
    }

    /// Checks `history` both ways and asserts they agree; for a violation, also that the
    /// counterexample is a real one: its prefix respects real time and replays, and its blocked
    /// operation is the earliest-returning one left and cannot take effect after it.
    fn cross_check<M: Model, R: Clone + Default + Debug>(
        model: &M,
        history: &[Operation<M::Input, M::Output>],
        execute: &dyn Fn(&mut R, &M::Input) -> M::Output,
        counts: &mut Counts,
    ) -> bool
    where
        M::Input: Debug,
        M::Output: PartialEq + Debug,
    {
        let is_linearizable = brute_force(history, &R::default(), execute);
        let report = check(model, history);
        let has_unknown = history.iter().any(|operation| operation.return_time().is_none());
        match report.verdict {
            Verdict::Linearizable => {
                assert!(is_linearizable, "brute force disagrees: {history:#?}");
                counts.linearizable += 1;
                counts.linearizable_with_unknown += usize::from(has_unknown);
            }
            Verdict::NotLinearizable(counterexample) => {
                assert!(!is_linearizable, "brute force disagrees: {history:#?}");
                assert_counterexample_is_real(model, history, &counterexample, execute);
                let keys: BTreeSet<M::Key> =
                    history.iter().map(|operation| model.key(&operation.input)).collect();
                counts.not_linearizable += 1;
                counts.not_linearizable_with_unknown += usize::from(has_unknown);
                counts.not_linearizable_with_two_keys += usize::from(keys.len() > 1);
            }
            Verdict::Unknown { .. } => panic!("a tiny history ran out of budget: {history:#?}"),
        }
        is_linearizable
    }

    fn assert_counterexample_is_real<M: Model, R: Clone + Default + Debug>(
        model: &M,
        history: &[Operation<M::Input, M::Output>],
        counterexample: &Counterexample<M::Key, M::State>,
        execute: &dyn Fn(&mut R, &M::Input) -> M::Output,
    ) where
        M::Input: Debug,
        M::Output: PartialEq + Debug,
    {
        let Counterexample { key, prefix, blocked, .. } = counterexample;
        let text = counterexample.describe(history);
        let of_key: Vec<usize> =
            (0..history.len()).filter(|i| model.key(&history[*i].input) == *key).collect();
        let mut store = R::default();
        for (position, index) in prefix.iter().enumerate() {
            assert!(of_key.contains(index), "{text}");
            assert!(!prefix[..position].contains(index), "{text}");
            for other in &of_key {
                if history[*other].precedes(&history[*index]) {
                    assert!(prefix[..position].contains(other), "{text}");
                }
            }
            let output = execute(&mut store, &history[*index].input);
            if let Outcome::Returned { output: seen, .. } = &history[*index].outcome {
                assert_eq!(*seen, output, "{text}");
            }
        }
        let Some(blocked_return) = history[*blocked].return_time() else {
            panic!("an unknown outcome cannot block: {text}");
        };
        assert!(!prefix.contains(blocked), "{text}");
        for other in &of_key {
            let returned_earlier =
                history[*other].return_time().is_some_and(|t| t < blocked_return);
            assert!(!returned_earlier || prefix.contains(other), "{text}");
        }
        let Outcome::Returned { output: seen, .. } = &history[*blocked].outcome else {
            unreachable!("checked above")
        };
        assert_ne!(*seen, execute(&mut store, &history[*blocked].input), "{text}");
    }

    type KvStore = BTreeMap<Vec<u8>, Vec<u8>>;

    /// Redis strings written again, without the model's code: the brute force's reference.
    fn execute_kv(store: &mut KvStore, input: &KvInput) -> KvOutput {
        let key = input.key.0.clone();
        match &input.command {
            KvCommand::Get => KvOutput::Value(store.get(&key).cloned().map(Bytes)),
            KvCommand::Set(value) => {
                store.insert(key, value.0.clone());
                KvOutput::Done
            }
            KvCommand::Del => KvOutput::Deleted(store.remove(&key).is_some()),
            KvCommand::SetNx(value) => {
                let is_missing = !store.contains_key(&key);
                if is_missing {
                    store.insert(key, value.0.clone());
                }
                KvOutput::Stored(is_missing)
            }
            KvCommand::Incr => {
                let current = store.get(&key).map_or(Some(0), |value| round_trip_integer(value));
                let result = match current {
                    None => Err(IncrError::NotAnInteger),
                    Some(i64::MAX) => Err(IncrError::Overflow),
                    Some(current) => Ok(current + 1),
                };
                if let Ok(next) = result {
                    store.insert(key, next.to_string().into_bytes());
                }
                KvOutput::Incremented(result)
            }
            KvCommand::Cas { expected, new } => {
                let current = store.get(&key).map(Vec::as_slice);
                if current != expected.as_ref().map(|value| value.0.as_slice()) {
                    return KvOutput::Swapped(false);
                }
                match new {
                    Some(value) => store.insert(key, value.0.clone()),
                    None => store.remove(&key),
                };
                KvOutput::Swapped(true)
            }
        }
    }

    /// The `i64` that prints as exactly `bytes` (Redis accepts only the canonical form).
    fn round_trip_integer(bytes: &[u8]) -> Option<i64> {
        let value: i64 = std::str::from_utf8(bytes).ok()?.parse().ok()?;
        (value.to_string().as_bytes() == bytes).then_some(value)
    }

    /// Few values, so reads often see what writes wrote; `x` and `01` are not integers.
    const VALUES: [&str; 5] = ["0", "1", "9", "x", "01"];

    fn random_value(rng: &mut Rng) -> Bytes {
        VALUES[rng.index(VALUES.len())].into()
    }

    fn random_optional_value(rng: &mut Rng) -> Option<Bytes> {
        (!rng.one_in(4)).then(|| random_value(rng))
    }

    fn random_kv_input(rng: &mut Rng, key: &str) -> KvInput {
        let command = match rng.below(20) {
            0..=5 => KvCommand::Get,
            6..=9 => KvCommand::Set(random_value(rng)),
            10..=11 => KvCommand::Del,
            12..=13 => KvCommand::SetNx(random_value(rng)),
            14..=16 => KvCommand::Incr,
            _ => KvCommand::Cas {
                expected: random_optional_value(rng),
                new: random_optional_value(rng),
            },
        };
        input(key, command)
    }

    fn random_kv_output(rng: &mut Rng, input: &KvInput) -> KvOutput {
        match input.command {
            KvCommand::Get => KvOutput::Value(random_optional_value(rng)),
            KvCommand::Set(_) => KvOutput::Done,
            KvCommand::Del => KvOutput::Deleted(rng.one_in(2)),
            KvCommand::SetNx(_) => KvOutput::Stored(rng.one_in(2)),
            KvCommand::Incr if rng.one_in(4) => KvOutput::Incremented(Err(IncrError::NotAnInteger)),
            KvCommand::Incr => KvOutput::Incremented(Ok(i64::try_from(rng.below(4)).unwrap())),
            KvCommand::Cas { .. } => KvOutput::Swapped(rng.one_in(2)),
        }
    }

    #[test]
    fn kv_checker_agrees_with_brute_force_on_small_random_histories() {
        let mut rng = Rng(0x6B6C_6569_6E00_0001);
        let mut counts = Counts::default();
        for _ in 0..KV_HISTORIES_COUNT {
            let mut history = random_history(&mut rng, &random_kv_input, &execute_kv);
            let is_linearizable = cross_check(&KvModel, &history, &execute_kv, &mut counts);
            assert!(is_linearizable, "a sequential run made this: {history:#?}");
            mutate(&mut rng, &mut history, &random_kv_output);
            cross_check(&KvModel, &history, &execute_kv, &mut counts);
        }
        eprintln!("kv cross-check: {counts:?}");
        assert_both_verdicts_are_common(&counts, KV_HISTORIES_COUNT);
    }

    /// A test whose histories are all linearizable (or all not) could not catch a checker that
    /// always says yes (or no).
    fn assert_both_verdicts_are_common(counts: &Counts, histories: usize) {
        assert_eq!(counts.linearizable + counts.not_linearizable, histories * 2);
        assert!(counts.linearizable >= histories + histories / 4, "{counts:?}");
        assert!(counts.not_linearizable >= histories / 4, "{counts:?}");
        assert!(counts.linearizable_with_unknown >= histories / 2, "{counts:?}");
        assert!(counts.not_linearizable_with_unknown >= histories / 20, "{counts:?}");
        assert!(counts.not_linearizable_with_two_keys >= histories / 10, "{counts:?}");
    }

    type MutexStore = BTreeMap<Bytes, u64>;

    /// Lease-free mutexes written again, without the model's code.
    fn execute_mutex(holders: &mut MutexStore, input: &MutexInput) -> bool {
        let holder = holders.get(&input.lock).copied();
        match input.command {
            MutexCommand::Acquire { owner } if holder.is_none() => {
                holders.insert(input.lock.clone(), owner);
                true
            }
            MutexCommand::Release { owner } if holder == Some(owner) => {
                holders.remove(&input.lock);
                true
            }
            MutexCommand::Acquire { .. } | MutexCommand::Release { .. } => false,
        }
    }

    fn random_mutex_input(rng: &mut Rng, lock: &str) -> MutexInput {
        let owner = 1 + rng.below(3);
        let command = if rng.one_in(2) {
            MutexCommand::Acquire { owner }
        } else {
            MutexCommand::Release { owner }
        };
        MutexInput { lock: lock.into(), command }
    }

    #[test]
    fn mutex_checker_agrees_with_brute_force_on_small_random_histories() {
        let mut rng = Rng(0x6B6C_6569_6E00_0002);
        let mut counts = Counts::default();
        for _ in 0..MUTEX_HISTORIES_COUNT {
            let mut history = random_history(&mut rng, &random_mutex_input, &execute_mutex);
            let is_linearizable = cross_check(&MutexModel, &history, &execute_mutex, &mut counts);
            assert!(is_linearizable, "a sequential run made this: {history:#?}");
            mutate(&mut rng, &mut history, &|rng, _| rng.one_in(2));
            cross_check(&MutexModel, &history, &execute_mutex, &mut counts);
        }
        eprintln!("mutex cross-check: {counts:?}");
        assert_both_verdicts_are_common(&counts, MUTEX_HISTORIES_COUNT);
    }
}
