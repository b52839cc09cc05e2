//! Linearizability of histories: a Wing & Gong search with Lowe's memoization, in the shape
//! of Porcupine's `checkSingle`, per key, with a budget of steps and of wall-clock time.
//!
//! A history is linearizable when every operation can be given one instant between its call
//! and its return such that applying the operations in that order to the [`Model`] from its
//! initial state gives exactly the outputs the clients saw. An operation of unknown outcome
//! (`:info`, or never completed) has no return: it may take effect at any instant after its
//! call, or never (Knossos's infinite return time). A `:fail` operation never took effect and
//! is not part of the search.
//!
//! The search (Wing & Gong 1993; Lowe 2017; Porcupine):
//!
//! ```text
//!   calls and returns sorted by time, call before return on ties (= concurrent):
//!   HEAD -> c1 -> c2 -> r1 -> c3 -> r2 -> r3
//!   walk from HEAD: at a call, if the model accepts its output from the current state and the
//!   configuration (linearized bitset, state) is new, lift the op (its call and return) out of
//!   the list, push it, restart at HEAD; at a return, that op had to be linearized already:
//!   pop the last choice, put it back (dancing links) and try the entry after it.
//!   No return entry left: linearizable. Return entry with an empty stack: not linearizable.
//! ```
//!
//! Per-key decomposition: linearizability is local (Herlihy & Wing 1990), so a history over
//! independent keys is linearizable iff each key's sub-history is; each key is searched
//! separately (P-compositionality, Horn & Kroening 2015), and a key that runs out of budget
//! does not stop the others.
//!
//! Memoization: what can follow a configuration depends only on which ops are linearized and
//! the model state, so a configuration seen once is never explored again (Lowe's cache). An
//! unknown-outcome op that would leave the state unchanged is never linearized: that reaches
//! the configuration it would leave anyway, minus a bit.
//!
//! Budget: the problem is NP-complete (Gibbons & Korach 1997); the search is exponential in
//! how many operations overlap, not in the history's length. With at most `c` ops pending at
//! once and `s` distinct states the memo bounds the work to about `n * 2^c * s` steps. Each
//! key gets [`Budget::steps_max`] steps and [`Budget::time_max`] of wall-clock time; when
//! either runs out the key is [`KeyVerdict::Unknown`], never guessed. Valid and invalid
//! verdicts never depend on the clock; only how early "unknown" comes does.
//!
//! Counterexample: when no linearization exists, the report shows the deepest linearized
//! prefix the search reached (its last few ops with the state after each), the op whose
//! return could not be passed, and the failing window: every op still unlinearized that was
//! called before that return, i.e. the only candidates for the next linearization point, none
//! of which the model accepts (or each of which leads to a dead end).
//!
//! Must never: do I/O, or answer valid or invalid when a budget ran out.

use std::collections::{BTreeMap, HashSet};
use std::fmt::{self, Debug, Write as _};
use std::hash::{BuildHasherDefault, DefaultHasher, Hash};
use std::time::{Duration, Instant};

use super::history::{History, HistoryError, OpType, RegisterOp};
use crate::constants::{
    JEPSEN_COUNTEREXAMPLE_PREFIX_OPERATIONS_COUNT_MAX, JEPSEN_LINEARIZABILITY_STEPS_MAX,
    JEPSEN_LINEARIZABILITY_STEPS_PER_CLOCK_READ, JEPSEN_LINEARIZABILITY_TIME_MILLIS_MAX,
};

/// Fixed-key `SipHash` for the memo: no verdict or step count depends on a random seed.
type FixedState = BuildHasherDefault<DefaultHasher>;

/// A sequential specification of one object (Porcupine's `Model`).
///
/// # Correctness
/// - `step` must be a function of its arguments: equal states must behave equally, since the
///   memo identifies configurations by state.
/// - An unknown outcome (`output == None`) must be accepted from every state (the op may
///   always take effect, at worst as a no-op); the search relies on that to leave ops of
///   unknown outcome pending to the end.
pub trait Model {
    /// The object's state.
    type State: Clone + Eq + Hash + Debug;
    /// What a client asked for.
    type Input: Clone + Debug;
    /// What a client was answered.
    type Output: Clone + Debug;

    /// The state before the history.
    fn init(&self) -> Self::State;

    /// The state after `input` takes effect in `state` answering `output` (`None`: nobody
    /// knows the answer); `None` when that answer is impossible from that state.
    fn step(
        &self,
        state: &Self::State,
        input: &Self::Input,
        output: Option<&Self::Output>,
    ) -> Option<Self::State>;
}

/// One operation of a single object's history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Operation<I, O> {
    /// The history index of its invocation (for reports).
    pub id: u64,
    /// The client process (for reports).
    pub process: u64,
    /// What was asked.
    pub input: I,
    /// What was answered; `None` for an unknown outcome.
    pub output: Option<O>,
    /// When it was called.
    pub call: u64,
    /// When it returned; `None` for an unknown outcome (infinitely late).
    pub ret: Option<u64>,
}

impl<I: Debug, O: Debug> fmt::Display for Operation<I, O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "op {} (process {}) {:?} -> ", self.id, self.process, self.input)?;
        match (&self.output, self.ret) {
            (Some(output), Some(ret)) => write!(f, "{output:?}  [t {}..{ret}]", self.call),
            _ => write!(f, "unknown  [t {}..]", self.call),
        }
    }
}

/// How much one key's search may spend.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    /// Steps (visits of a call or return entry).
    pub steps_max: u64,
    /// Wall-clock time; `None` for no limit (then verdicts are fully deterministic).
    pub time_max: Option<Duration>,
}

impl Default for Budget {
    fn default() -> Budget {
        Budget {
            steps_max: JEPSEN_LINEARIZABILITY_STEPS_MAX,
            time_max: Some(Duration::from_millis(JEPSEN_LINEARIZABILITY_TIME_MILLIS_MAX)),
        }
    }
}

/// Why a key's verdict is unknown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exhausted {
    /// [`Budget::steps_max`] ran out.
    Steps,
    /// [`Budget::time_max`] ran out.
    Time,
}

/// Where the search for one key got stuck.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Counterexample<I, O, S> {
    /// How many ops the deepest linearization reached covered.
    pub linearized_count: usize,
    /// Its last ops (at most [`JEPSEN_COUNTEREXAMPLE_PREFIX_OPERATIONS_COUNT_MAX`]), each with
    /// the state after it.
    pub prefix_tail: Vec<(Operation<I, O>, S)>,
    /// The state after the prefix.
    pub state: S,
    /// The op whose return the search could not pass from that prefix.
    pub blocked: Operation<I, O>,
    /// The failing window: every unlinearized op called before `blocked` returned (including
    /// `blocked`), sorted by call time: the only candidates for the next step, and none leads
    /// to a linearization.
    pub window: Vec<Operation<I, O>>,
}

impl<I: Debug, O: Debug, S: Debug> fmt::Display for Counterexample<I, O, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hidden = self.linearized_count - self.prefix_tail.len();
        writeln!(f, "deepest linearization: {} ops", self.linearized_count)?;
        if hidden > 0 {
            writeln!(f, "  ... {hidden} earlier ops")?;
        }
        for (op, state) in &self.prefix_tail {
            writeln!(f, "  {op}  => state {state:?}")?;
        }
        writeln!(
            f,
            "state {:?}; op {} must be linearized by t {}",
            self.state,
            self.blocked.id,
            self.blocked.ret.unwrap_or(u64::MAX)
        )?;
        writeln!(
            f,
            "failing window ({} ops; no order of them extends the prefix):",
            self.window.len()
        )?;
        for op in &self.window {
            writeln!(f, "  {op}")?;
        }
        Ok(())
    }
}

/// The verdict on one key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyVerdict<I, O, S> {
    /// A linearization exists.
    Linearizable,
    /// None exists.
    NotLinearizable(Box<Counterexample<I, O, S>>),
    /// The budget ran out first.
    Unknown(Exhausted),
}

/// The outcome of a whole check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Every key is linearizable.
    Valid,
    /// Some key is not.
    Invalid,
    /// No key is invalid, but some ran out of budget.
    Unknown,
}

/// Every key's verdict.
#[derive(Clone, Debug)]
pub struct Report<K, I, O, S> {
    /// Per key, in key order.
    pub keys: BTreeMap<K, KeyVerdict<I, O, S>>,
    /// Steps spent, all keys together.
    pub steps: u64,
}

impl<K, I, O, S> Report<K, I, O, S> {
    /// Invalid if any key is, else unknown if any key is, else valid.
    #[must_use]
    pub fn verdict(&self) -> Verdict {
        let mut verdict = Verdict::Valid;
        for key in self.keys.values() {
            match key {
                KeyVerdict::NotLinearizable(_) => return Verdict::Invalid,
                KeyVerdict::Unknown(_) => verdict = Verdict::Unknown,
                KeyVerdict::Linearizable => {}
            }
        }
        verdict
    }
}

impl<K: Debug, I: Debug, O: Debug, S: Debug> Report<K, I, O, S> {
    /// A human-readable summary: the verdict, then every key that is not linearizable with
    /// its counterexample and every key whose verdict is unknown.
    #[must_use]
    pub fn describe(&self) -> String {
        let mut text = format!(
            "linearizability: {:?} ({} keys, {} steps)\n",
            self.verdict(),
            self.keys.len(),
            self.steps
        );
        for (key, verdict) in &self.keys {
            match verdict {
                KeyVerdict::Linearizable => {}
                KeyVerdict::Unknown(why) => {
                    let _ = writeln!(text, "key {key:?}: unknown ({why:?} budget exhausted)");
                }
                KeyVerdict::NotLinearizable(counterexample) => {
                    let _ = write!(text, "key {key:?}: not linearizable\n{counterexample}");
                }
            }
        }
        text
    }
}

/// One object's operations for model `M`.
pub type Operations<M> = Vec<Operation<<M as Model>::Input, <M as Model>::Output>>;

/// The verdict on one object of model `M`.
pub type ModelVerdict<M> =
    KeyVerdict<<M as Model>::Input, <M as Model>::Output, <M as Model>::State>;

/// The report on keys `K` of model `M`.
pub type ModelReport<K, M> =
    Report<K, <M as Model>::Input, <M as Model>::Output, <M as Model>::State>;

/// Checks each key's operations against `model`.
pub fn check_keys<K, M>(
    model: &M,
    keys: BTreeMap<K, Operations<M>>,
    budget: Budget,
) -> ModelReport<K, M>
where
    K: Ord,
    M: Model,
{
    let mut report = Report { keys: BTreeMap::new(), steps: 0 };
    for (key, operations) in keys {
        let (verdict, steps) = check_operations(model, &operations, budget);
        report.steps += steps;
        report.keys.insert(key, verdict);
    }
    report
}

/// Checks one object's operations against `model`; returns the verdict and the steps spent.
///
/// # Panics
/// If an operation's `output` and `ret` disagree on whether its outcome is known, or it
/// returns before it is called (bugs in the caller).
pub fn check_operations<M: Model>(
    model: &M,
    operations: &[Operation<M::Input, M::Output>],
    budget: Budget,
) -> (ModelVerdict<M>, u64) {
    for op in operations {
        assert_eq!(op.output.is_some(), op.ret.is_some(), "op {}: output without return", op.id);
        assert!(op.ret.is_none_or(|ret| ret >= op.call), "op {} returns before its call", op.id);
    }
    let mut search = Search::new(model, operations, budget);
    let verdict = search.run();
    (verdict, search.steps)
}

/// One entry of the time-ordered list: a call or a return of `op`.
#[derive(Clone, Copy, Debug)]
struct Entry {
    op: usize,
    is_call: bool,
}

const NIL: usize = usize::MAX;
const HEAD: usize = 0;

struct Search<'a, M: Model> {
    model: &'a M,
    ops: &'a [Operation<M::Input, M::Output>],
    budget: Budget,
    started: Instant,
    steps: u64,
    /// Entry `i` of the list is `entries[i - 1]`; 0 is the head sentinel.
    entries: Vec<Entry>,
    next: Vec<usize>,
    prev: Vec<usize>,
    /// Position of each op's call and return entries (`NIL` if it has no return).
    call_at: Vec<usize>,
    return_at: Vec<usize>,
    /// The best (deepest) stack seen when the search had to backtrack: (op, state after).
    best: Vec<(usize, M::State)>,
}

impl<'a, M: Model> Search<'a, M> {
    fn new(model: &'a M, ops: &'a [Operation<M::Input, M::Output>], budget: Budget) -> Self {
        let mut events: Vec<(u64, bool, usize)> = Vec::with_capacity(ops.len() * 2);
        for (at, op) in ops.iter().enumerate() {
            events.push((op.call, false, at));
            if let Some(ret) = op.ret {
                events.push((ret, true, at));
            }
        }
        // Calls before returns at equal times: equal times are concurrent.
        events.sort_unstable();
        let entries: Vec<Entry> =
            events.iter().map(|&(_, is_return, op)| Entry { op, is_call: !is_return }).collect();
        let count = entries.len() + 1;
        let next = (0..count).map(|i| if i + 1 < count { i + 1 } else { NIL }).collect();
        let prev = (0..count).map(|i| if i == 0 { NIL } else { i - 1 }).collect();
        let mut call_at = vec![NIL; ops.len()];
        let mut return_at = vec![NIL; ops.len()];
        for (position, entry) in entries.iter().enumerate() {
            if entry.is_call {
                call_at[entry.op] = position + 1;
            } else {
                return_at[entry.op] = position + 1;
            }
        }
        Search {
            model,
            ops,
            budget,
            started: Instant::now(),
            steps: 0,
            entries,
            next,
            prev,
            call_at,
            return_at,
            best: Vec::new(),
        }
    }

    fn unlink(&mut self, at: usize) {
        let (prev, next) = (self.prev[at], self.next[at]);
        self.next[prev] = next;
        if next != NIL {
            self.prev[next] = prev;
        }
    }

    fn relink(&mut self, at: usize) {
        let (prev, next) = (self.prev[at], self.next[at]);
        self.next[prev] = at;
        if next != NIL {
            self.prev[next] = at;
        }
    }

    fn lift(&mut self, op: usize) {
        self.unlink(self.call_at[op]);
        if self.return_at[op] != NIL {
            self.unlink(self.return_at[op]);
        }
    }

    fn unlift(&mut self, op: usize) {
        // Dancing links: undo in the reverse order of `lift`.
        if self.return_at[op] != NIL {
            self.relink(self.return_at[op]);
        }
        self.relink(self.call_at[op]);
    }

    fn exhausted(&self) -> Option<Exhausted> {
        if self.steps >= self.budget.steps_max {
            return Some(Exhausted::Steps);
        }
        if let Some(time_max) = self.budget.time_max
            && self.steps.is_multiple_of(JEPSEN_LINEARIZABILITY_STEPS_PER_CLOCK_READ)
            && self.started.elapsed() >= time_max
        {
            return Some(Exhausted::Time);
        }
        None
    }

    fn run(&mut self) -> KeyVerdict<M::Input, M::Output, M::State> {
        let words = self.ops.len().div_ceil(64);
        let mut linearized = vec![0_u64; words];
        let mut memo: HashSet<(Vec<u64>, M::State), FixedState> = HashSet::default();
        let mut state = self.model.init();
        // (op, state before it) for every linearized op, in order.
        let mut stack: Vec<(usize, M::State)> = Vec::new();
        let mut returns_left = self.return_at.iter().filter(|at| **at != NIL).count();
        let mut entry = self.next[HEAD];
        while returns_left > 0 {
            if let Some(why) = self.exhausted() {
                return KeyVerdict::Unknown(why);
            }
            self.steps += 1;
            assert!(entry != NIL, "a return entry is always ahead while returns are left");
            let Entry { op, is_call } = self.entries[entry - 1];
            if is_call {
                let operation = &self.ops[op];
                if let Some(after) =
                    self.model.step(&state, &operation.input, operation.output.as_ref())
                {
                    let unknown = operation.ret.is_none();
                    linearized[op / 64] |= 1 << (op % 64);
                    let fresh = !(unknown && after == state)
                        && memo.insert((linearized.clone(), after.clone()));
                    if fresh {
                        stack.push((op, std::mem::replace(&mut state, after)));
                        self.lift(op);
                        if !unknown {
                            returns_left -= 1;
                        }
                        entry = self.next[HEAD];
                        continue;
                    }
                    linearized[op / 64] &= !(1 << (op % 64));
                }
                entry = self.next[entry];
            } else {
                if stack.len() > self.best.len() || self.best.is_empty() {
                    self.remember_best(&stack, &state);
                }
                let Some((last, before)) = stack.pop() else {
                    return KeyVerdict::NotLinearizable(Box::new(self.counterexample()));
                };
                state = before;
                linearized[last / 64] &= !(1 << (last % 64));
                self.unlift(last);
                if self.ops[last].ret.is_some() {
                    returns_left += 1;
                }
                entry = self.next[self.call_at[last]];
            }
        }
        KeyVerdict::Linearizable
    }

    /// Records the stack as (op, state after op).
    fn remember_best(&mut self, stack: &[(usize, M::State)], state: &M::State) {
        self.best.clear();
        for (at, (op, _)) in stack.iter().enumerate() {
            let after = stack.get(at + 1).map_or(state, |(_, before)| before);
            self.best.push((*op, after.clone()));
        }
    }

    fn counterexample(&self) -> Counterexample<M::Input, M::Output, M::State> {
        let mut done = vec![false; self.ops.len()];
        for (op, _) in &self.best {
            done[*op] = true;
        }
        let state = self.best.last().map_or_else(|| self.model.init(), |(_, state)| state.clone());
        // The first return (in time order) of an op the prefix did not linearize.
        let blocked = self
            .entries
            .iter()
            .find(|entry| !entry.is_call && !done[entry.op])
            .map(|entry| entry.op)
            .expect("a failed search stops at a return of an unlinearized op");
        let deadline = self.ops[blocked].ret.expect("a return entry has a return time");
        let mut window: Vec<usize> =
            (0..self.ops.len()).filter(|&op| !done[op] && self.ops[op].call <= deadline).collect();
        window.sort_by_key(|&op| (self.ops[op].call, op));
        let tail_start =
            self.best.len().saturating_sub(JEPSEN_COUNTEREXAMPLE_PREFIX_OPERATIONS_COUNT_MAX);
        Counterexample {
            linearized_count: self.best.len(),
            prefix_tail: self.best[tail_start..]
                .iter()
                .map(|(op, state)| (self.ops[*op].clone(), state.clone()))
                .collect(),
            state,
            blocked: self.ops[blocked].clone(),
            window: window.into_iter().map(|op| self.ops[op].clone()).collect(),
        }
    }
}

/// A register holding an integer or nothing (`nil`), with read, write and compare-and-set.
#[derive(Clone, Copy, Debug, Default)]
pub struct RegisterModel;

/// What a register operation answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RegisterOutput {
    /// A read saw this value.
    Read(Option<i64>),
    /// A write was applied.
    Written,
    /// A compare-and-set matched and swapped (`true`), or definitely did not match (`false`).
    Cas(bool),
}

impl Model for RegisterModel {
    type State = Option<i64>;
    type Input = RegisterOp;
    type Output = RegisterOutput;

    fn init(&self) -> Option<i64> {
        None
    }

    fn step(
        &self,
        state: &Option<i64>,
        input: &RegisterOp,
        output: Option<&RegisterOutput>,
    ) -> Option<Option<i64>> {
        match (input, output) {
            (RegisterOp::Read(_), None) => Some(*state),
            (RegisterOp::Read(_), Some(RegisterOutput::Read(seen))) => {
                (seen == state).then_some(*state)
            }
            (RegisterOp::Write(value), None | Some(RegisterOutput::Written)) => Some(Some(*value)),
            (RegisterOp::Cas(old, new), output) => {
                let matched = *state == Some(*old);
                match output {
                    None => Some(if matched { Some(*new) } else { *state }),
                    Some(RegisterOutput::Cas(true)) => matched.then_some(Some(*new)),
                    Some(RegisterOutput::Cas(false)) => (!matched).then_some(*state),
                    Some(_) => None,
                }
            }
            (_, Some(_)) => None,
        }
    }
}

/// The register operations of a history, per key, in invocation order.
///
/// Jepsen's reading: `:ok` took effect with the value seen; `:fail` certainly did not take
/// effect and is left out (a compare-and-set refused because it did not match is recorded as
/// `:fail`, as in Jepsen's cas-register); `:info` and never-completed are unknown.
///
/// # Errors
/// The history does not pair up, or a value lacks the register workload's shape.
pub fn register_operations(
    history: &History,
) -> Result<BTreeMap<i64, Operations<RegisterModel>>, HistoryError> {
    let mut keys: BTreeMap<i64, Vec<_>> = BTreeMap::new();
    for pair in history.pairs()? {
        let outcome = pair.outcome();
        if outcome == OpType::Fail {
            continue;
        }
        let (key, input) =
            RegisterOp::decode(pair.invoke.f, &pair.invoke.value, pair.invoke.index)?;
        let output = match pair.completion {
            Some(completion) if completion.kind == OpType::Ok => {
                let (_, seen) =
                    RegisterOp::decode(completion.f, &completion.value, completion.index)?;
                Some(match seen {
                    RegisterOp::Read(value) => RegisterOutput::Read(value),
                    RegisterOp::Write(_) => RegisterOutput::Written,
                    RegisterOp::Cas(..) => RegisterOutput::Cas(true),
                })
            }
            _ => None,
        };
        keys.entry(key).or_default().push(Operation {
            id: pair.invoke.index,
            process: pair.invoke.process,
            input,
            output,
            call: pair.call_time(),
            ret: pair.return_time(),
        });
    }
    Ok(keys)
}

/// Checks a register history, key by key.
///
/// # Errors
/// As [`register_operations`].
pub fn check_register_history(
    history: &History,
    budget: Budget,
) -> Result<Report<i64, RegisterOp, RegisterOutput, Option<i64>>, HistoryError> {
    Ok(check_keys(&RegisterModel, register_operations(history)?, budget))
}

#[cfg(test)]
mod tests;
