//! Elle-style checker of list-append histories (Kingsbury & Alvaro, "Elle: Inferring
//! Isolation Anomalies from Experimental Observations", VLDB 2020).
//!
//! Transactions append unique elements to lists and read whole lists (`RPUSH`/`LRANGE`, also
//! inside `MULTI`). Because a list is the history of its own appends, every read reveals a
//! prefix of its key's version order, which makes the dependencies between transactions
//! visible without guessing:
//!
//! 1. Per key, the version order is the longest read; every other read must be a prefix of
//!    it, else the order is **incompatible** (two histories of one key).
//! 2. Element checks on every read: **duplicate** (an element twice in one read), **garbage**
//!    (never appended by anyone), **aborted read** (G1a: appended by a `:fail` transaction),
//!    **intermediate read** (G1b: the read ends at an element its writer followed with another
//!    append to the same key), **internal** (a read inside a transaction that does not end
//!    with that transaction's own earlier appends).
//! 3. **Lost append**: an `:ok` append of `e` to `k`, and an `:ok` read of `k` by a transaction
//!    called strictly after the append's transaction returned that does not contain `e`.
//!    Under strict serializability (linearizability of each key), real time orders the two,
//!    so the read must see it. Elle reports the same situation as a real-time cycle when `e`'s
//!    position is known (`G-single-realtime`); this check also catches an acknowledged append
//!    that no read ever shows while later reads of the key exist (the classic lost write).
//! 4. **Cycles**: a graph over `:ok` and `:info` transactions with, per key, `ww` (`a` appended
//!    the element right before `b`'s), `wr` (`b` read a list ending at `a`'s element), `rw`
//!    (`a` read a list that `b`'s element extends next: anti-dependency) and real-time edges
//!    (`a` returned before `b` was called; transitively reduced). Tarjan's algorithm finds the
//!    strongly connected components; in each one the checker looks for the cycle of the
//!    strongest anomaly first and reports it with its edges: **G0** (write cycle: `ww` only),
//!    **G1c** (`ww`/`wr`), **G-single** (exactly one `rw`), **G2** (several `rw`), and the
//!    same with `-realtime` when the cycle needs a real-time edge.
//!
//! Cost: building the graph is O(n log n + r * l) for `n` transactions and `r` reads of at
//! most `l` elements; Tarjan is O(V + E); each cycle search in a component is a BFS, and the
//! G-single search tries at most [`JEPSEN_GSINGLE_RW_EDGES_TRIED_MAX`] anti-dependency edges
//! per component, so no step is exponential (Elle's point: no NP-hard search).
//!
//! Must never: do I/O; report a cycle that is not a cycle of the graph.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::fmt::{self, Write as _};

use super::history::{History, HistoryError, Mop, OpType, decode_txn};
use crate::constants::{JEPSEN_ANOMALIES_PER_KIND_COUNT_MAX, JEPSEN_GSINGLE_RW_EDGES_TRIED_MAX};

/// What connects two transactions in the dependency graph.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EdgeKind {
    /// Write-write: the source's append comes right before the target's in a key's order.
    Ww,
    /// Write-read: the target read a list whose last element the source appended.
    Wr,
    /// Read-write (anti-dependency): the source read a list the target's append extends.
    Rw,
    /// Real time: the source returned before the target was called.
    Realtime,
}

/// One edge of a reported cycle.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    /// History index (of the invocation) of the source transaction.
    pub from: u64,
    /// History index of the target transaction.
    pub to: u64,
    /// Why the source precedes the target.
    pub kind: EdgeKind,
    /// The key of a data edge; `None` for real time.
    pub key: Option<i64>,
}

/// The anomaly class of a cycle (Adya's, as Elle names them).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CycleKind {
    /// `ww` edges only.
    G0,
    /// `ww` and `wr`, at least one `wr`.
    G1c,
    /// Exactly one `rw`.
    GSingle,
    /// More than one `rw`.
    G2,
}

/// Something the history shows that a strictly serializable list store cannot do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Anomaly {
    /// Two appends of the same element to the same key: the workload broke Elle's uniqueness
    /// assumption, so inferences about this key are unsound.
    NonUniqueAppend {
        /// The key.
        key: i64,
        /// The element.
        element: i64,
        /// The two transactions.
        txns: [u64; 2],
    },
    /// An element appears twice in one read.
    Duplicate {
        /// The key.
        key: i64,
        /// The element.
        element: i64,
        /// The reading transaction.
        reader: u64,
        /// What it read.
        list: Vec<i64>,
    },
    /// An element nobody appended.
    Garbage {
        /// The key.
        key: i64,
        /// The element.
        element: i64,
        /// The reading transaction.
        reader: u64,
    },
    /// G1a: an element appended by a transaction that failed.
    AbortedRead {
        /// The key.
        key: i64,
        /// The element.
        element: i64,
        /// The reading transaction.
        reader: u64,
        /// The failed transaction.
        writer: u64,
    },
    /// G1b: a read ending at an element its writer later followed, in the same transaction.
    IntermediateRead {
        /// The key.
        key: i64,
        /// The last element read.
        element: i64,
        /// The reading transaction.
        reader: u64,
        /// The writing transaction.
        writer: u64,
    },
    /// A read that does not end with its own transaction's earlier appends to the key.
    Internal {
        /// The key.
        key: i64,
        /// The transaction.
        txn: u64,
        /// What it read.
        list: Vec<i64>,
        /// Its own appends it should end with.
        expected_suffix: Vec<i64>,
    },
    /// Two reads of a key where neither is a prefix of the other.
    IncompatibleOrder {
        /// The key.
        key: i64,
        /// The longest read and its transaction.
        longest: (u64, Vec<i64>),
        /// The read that is not its prefix and its transaction.
        other: (u64, Vec<i64>),
    },
    /// An acknowledged append missing from a read that began after it was acknowledged.
    LostAppend {
        /// The key.
        key: i64,
        /// The element.
        element: i64,
        /// The appending transaction.
        appender: u64,
        /// A reader called after the append returned that misses it (the shortest such read).
        reader: u64,
        /// What that reader saw.
        list: Vec<i64>,
    },
    /// A dependency cycle.
    Cycle {
        /// Its class.
        kind: CycleKind,
        /// Whether it needs a real-time edge (`G0-realtime` and so on).
        realtime: bool,
        /// The edges, each one's `to` being the next one's `from`, the last one's `to` the
        /// first one's `from`.
        steps: Vec<Step>,
    },
}

impl Anomaly {
    /// The anomaly's name, as Elle spells it where Elle has one.
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self {
            Anomaly::NonUniqueAppend { .. } => "non-unique-append",
            Anomaly::Duplicate { .. } => "duplicate-elements",
            Anomaly::Garbage { .. } => "garbage-elements",
            Anomaly::AbortedRead { .. } => "G1a",
            Anomaly::IntermediateRead { .. } => "G1b",
            Anomaly::Internal { .. } => "internal",
            Anomaly::IncompatibleOrder { .. } => "incompatible-order",
            Anomaly::LostAppend { .. } => "lost-append",
            Anomaly::Cycle { kind, realtime, .. } => match (kind, realtime) {
                (CycleKind::G0, false) => "G0",
                (CycleKind::G0, true) => "G0-realtime",
                (CycleKind::G1c, false) => "G1c",
                (CycleKind::G1c, true) => "G1c-realtime",
                (CycleKind::GSingle, false) => "G-single",
                (CycleKind::GSingle, true) => "G-single-realtime",
                (CycleKind::G2, false) => "G2",
                (CycleKind::G2, true) => "G2-realtime",
            },
        }
    }
}

impl fmt::Display for Anomaly {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.name())?;
        match self {
            Anomaly::Cycle { steps, .. } => {
                for step in steps {
                    write!(f, "T{} -{:?}", step.from, step.kind)?;
                    if let Some(key) = step.key {
                        write!(f, "(k {key})")?;
                    }
                    write!(f, "-> ")?;
                }
                match steps.first() {
                    Some(first) => write!(f, "T{}", first.from),
                    None => Ok(()),
                }
            }
            // Reads can be thousands of elements long: show where they matter, not all of it.
            Anomaly::IncompatibleOrder { key, longest, other } => {
                let at = longest.1.iter().zip(&other.1).take_while(|(a, b)| a == b).count();
                write!(
                    f,
                    "key {key}: T{} read {} elements, diverging at position {at} ({:?}) from \
                     T{}'s {} elements ({:?})",
                    other.0,
                    other.1.len(),
                    other.1.get(at),
                    longest.0,
                    longest.1.len(),
                    longest.1.get(at),
                )
            }
            Anomaly::LostAppend { key, element, appender, reader, list } => write!(
                f,
                "key {key}: T{appender} appended {element}, T{reader} (called after) read {} \
                 elements without it (last {:?})",
                list.len(),
                list.last(),
            ),
            Anomaly::Duplicate { key, element, reader, list } => {
                write!(f, "key {key}: T{reader} read {element} twice in {} elements", list.len())
            }
            other => write!(f, "{other:?}"),
        }
    }
}

/// The list-append checker's findings.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListAppendReport {
    /// Transactions in the history (any outcome).
    pub txns: usize,
    /// Keys seen.
    pub keys: usize,
    /// Anomalies found, at most [`JEPSEN_ANOMALIES_PER_KIND_COUNT_MAX`] of each name.
    pub anomalies: Vec<Anomaly>,
    /// How many of each name were found, kept or not.
    pub counts: BTreeMap<&'static str, usize>,
}

impl ListAppendReport {
    /// No anomaly.
    #[must_use]
    pub fn is_valid(&self) -> bool {
        self.counts.is_empty()
    }

    fn push(&mut self, anomaly: Anomaly) {
        let count = self.counts.entry(anomaly.name()).or_default();
        *count += 1;
        if *count <= JEPSEN_ANOMALIES_PER_KIND_COUNT_MAX {
            self.anomalies.push(anomaly);
        }
    }

    /// A human-readable summary: counts per anomaly, then each kept anomaly.
    #[must_use]
    pub fn describe(&self) -> String {
        let mut text = format!(
            "list-append: {} txns, {} keys, anomalies {:?}\n",
            self.txns, self.keys, self.counts
        );
        for anomaly in &self.anomalies {
            // Writing to a String cannot fail.
            let _ = writeln!(text, "  {anomaly}");
        }
        text
    }
}

/// One transaction, decoded.
struct Txn {
    id: u64,
    outcome: OpType,
    call: u64,
    ret: Option<u64>,
    /// The completion's micro-ops if `:ok` (reads filled in), else the invocation's.
    mops: Vec<Mop>,
}

/// An `:ok` read of a key, with the part of it that is not its own transaction's appends.
struct Read {
    txn: usize,
    list: Vec<i64>,
    /// Length of the prefix written by other transactions.
    external: usize,
}

/// Checks a list-append history.
///
/// # Errors
/// The history does not pair up, or a transaction's value is not a list of micro-ops.
pub fn check_list_append_history(history: &History) -> Result<ListAppendReport, HistoryError> {
    let mut txns = Vec::new();
    for pair in history.pairs()? {
        let outcome = pair.outcome();
        let mops = decode_txn(pair.value(), pair.invoke.index)?;
        txns.push(Txn {
            id: pair.invoke.index,
            outcome,
            call: pair.call_time(),
            ret: if outcome == OpType::Ok { pair.return_time() } else { None },
            mops,
        });
    }
    Ok(check_txns(&txns))
}

fn check_txns(txns: &[Txn]) -> ListAppendReport {
    let mut report = ListAppendReport { txns: txns.len(), ..ListAppendReport::default() };
    // (key, element) -> (txn, whether the txn appends to the key again after it).
    let mut writers: HashMap<(i64, i64), (usize, bool)> = HashMap::new();
    let mut keys: BTreeMap<i64, Vec<Read>> = BTreeMap::new();
    for (at, txn) in txns.iter().enumerate() {
        let mut own: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
        for mop in &txn.mops {
            match mop {
                Mop::Append { key, element } => {
                    if let Some(&(other, _)) = writers.get(&(*key, *element)) {
                        report.push(Anomaly::NonUniqueAppend {
                            key: *key,
                            element: *element,
                            txns: [txns[other].id, txn.id],
                        });
                    }
                    if let Some(&last) = own.get(key).and_then(|own| own.last()) {
                        writers.insert((*key, last), (at, true));
                    }
                    writers.insert((*key, *element), (at, false));
                    own.entry(*key).or_default().push(*element);
                    keys.entry(*key).or_default();
                }
                Mop::Read { key, list } => {
                    keys.entry(*key).or_default();
                    let (Some(list), OpType::Ok) = (list, txn.outcome) else { continue };
                    let mine = own.get(key).map_or(&[][..], Vec::as_slice);
                    if !list.ends_with(mine) {
                        report.push(Anomaly::Internal {
                            key: *key,
                            txn: txn.id,
                            list: list.clone(),
                            expected_suffix: mine.to_vec(),
                        });
                    }
                    let external =
                        if list.ends_with(mine) { list.len() - mine.len() } else { list.len() };
                    keys.entry(*key).or_default().push(Read {
                        txn: at,
                        list: list.clone(),
                        external,
                    });
                }
            }
        }
    }
    report.keys = keys.len();
    let mut graph = Graph::new(txns.len());
    for (key, reads) in &keys {
        check_elements(txns, &writers, *key, reads, &mut report);
        let Some(order) = version_order(txns, *key, reads, &mut report) else { continue };
        lost_appends(txns, &writers, *key, reads, &order, &mut report);
        data_edges(txns, &writers, *key, reads, &order, &mut graph);
    }
    realtime_edges(txns, &mut graph);
    for cycle in graph.cycles() {
        report.push(cycle_anomaly(txns, &cycle));
    }
    report
}

fn check_elements(
    txns: &[Txn],
    writers: &HashMap<(i64, i64), (usize, bool)>,
    key: i64,
    reads: &[Read],
    report: &mut ListAppendReport,
) {
    for read in reads {
        let reader = txns[read.txn].id;
        let mut seen = HashSet::new();
        for &element in &read.list {
            if !seen.insert(element) {
                report.push(Anomaly::Duplicate { key, element, reader, list: read.list.clone() });
            }
            match writers.get(&(key, element)) {
                None => report.push(Anomaly::Garbage { key, element, reader }),
                Some(&(writer, _)) if txns[writer].outcome == OpType::Fail => {
                    report.push(Anomaly::AbortedRead {
                        key,
                        element,
                        reader,
                        writer: txns[writer].id,
                    });
                }
                Some(_) => {}
            }
        }
        if let Some(&last) = read.list[..read.external].last()
            && let Some(&(writer, true)) = writers.get(&(key, last))
            && writer != read.txn
        {
            report.push(Anomaly::IntermediateRead {
                key,
                element: last,
                reader,
                writer: txns[writer].id,
            });
        }
    }
}

/// The key's version order (the longest read), or `None` when reads disagree.
fn version_order(
    txns: &[Txn],
    key: i64,
    reads: &[Read],
    report: &mut ListAppendReport,
) -> Option<Vec<i64>> {
    let longest = reads.iter().max_by_key(|read| read.list.len())?;
    let mut compatible = true;
    for read in reads {
        if !longest.list.starts_with(&read.list) {
            compatible = false;
            report.push(Anomaly::IncompatibleOrder {
                key,
                longest: (txns[longest.txn].id, longest.list.clone()),
                other: (txns[read.txn].id, read.list.clone()),
            });
        }
    }
    let mut seen = HashSet::new();
    // A duplicate makes positions ambiguous; the anomaly is already reported.
    let unique = longest.list.iter().all(|element| seen.insert(*element));
    (compatible && unique).then(|| longest.list.clone())
}

fn lost_appends(
    txns: &[Txn],
    writers: &HashMap<(i64, i64), (usize, bool)>,
    key: i64,
    reads: &[Read],
    order: &[i64],
    report: &mut ListAppendReport,
) {
    // Reads by call time, and for each position the shortest read called at or after it.
    let mut by_call: Vec<&Read> = reads.iter().collect();
    by_call.sort_by_key(|read| (txns[read.txn].call, read.list.len()));
    let mut shortest_from: Vec<usize> = vec![0; by_call.len()];
    for at in (0..by_call.len()).rev() {
        let later = shortest_from.get(at + 1).copied().filter(|_| at + 1 < by_call.len());
        shortest_from[at] = match later {
            Some(later) if by_call[later].list.len() < by_call[at].list.len() => later,
            _ => at,
        };
    }
    let position: HashMap<i64, usize> =
        order.iter().enumerate().map(|(at, element)| (*element, at + 1)).collect();
    let mut appends: Vec<(i64, usize)> = writers
        .iter()
        .filter(|((k, _), (writer, _))| *k == key && txns[*writer].outcome == OpType::Ok)
        .map(|((_, element), (writer, _))| (*element, *writer))
        .collect();
    appends.sort_unstable();
    for (element, writer) in appends {
        let ret = txns[writer].ret.expect("an ok transaction has returned");
        let first = by_call.partition_point(|read| txns[read.txn].call <= ret);
        let Some(&shortest) = shortest_from.get(first) else { continue };
        let needed = position.get(&element).copied().unwrap_or(usize::MAX);
        let read = by_call[shortest];
        if read.list.len() < needed {
            report.push(Anomaly::LostAppend {
                key,
                element,
                appender: txns[writer].id,
                reader: txns[read.txn].id,
                list: read.list.clone(),
            });
        }
    }
}

fn data_edges(
    txns: &[Txn],
    writers: &HashMap<(i64, i64), (usize, bool)>,
    key: i64,
    reads: &[Read],
    order: &[i64],
    graph: &mut Graph,
) {
    let writer = |element: i64| {
        writers
            .get(&(key, element))
            .map(|(writer, _)| *writer)
            .filter(|writer| txns[*writer].outcome != OpType::Fail)
    };
    for pair in order.windows(2) {
        if let (Some(a), Some(b)) = (writer(pair[0]), writer(pair[1])) {
            graph.add(a, b, EdgeKind::Ww, Some(key));
        }
    }
    for read in reads {
        if read.external > 0
            && let Some(a) = writer(order[read.external - 1])
        {
            graph.add(a, read.txn, EdgeKind::Wr, Some(key));
        }
        if let Some(&next) = order.get(read.external)
            && let Some(b) = writer(next)
        {
            graph.add(read.txn, b, EdgeKind::Rw, Some(key));
        }
    }
}

/// Real-time edges, transitively reduced as Elle does: when `b` is called, an edge from each
/// transaction in the frontier (returned, and not already followed by another that returned
/// before `b`'s call); when `b` returns, it replaces in the frontier the ones it follows.
fn realtime_edges(txns: &[Txn], graph: &mut Graph) {
    let mut events: Vec<(u64, bool, usize)> = Vec::new();
    for (at, txn) in txns.iter().enumerate() {
        if txn.outcome == OpType::Fail {
            continue;
        }
        events.push((txn.call, false, at));
        if let Some(ret) = txn.ret {
            // Returns sort after calls at equal times: equal times are concurrent.
            events.push((ret, true, at));
        }
    }
    events.sort_unstable();
    let mut frontier: Vec<usize> = Vec::new();
    let mut predecessors: HashMap<usize, Vec<usize>> = HashMap::new();
    for (_, is_return, at) in events {
        if is_return {
            let before = predecessors.remove(&at).unwrap_or_default();
            frontier.retain(|txn| !before.contains(txn));
            frontier.push(at);
        } else {
            for &from in &frontier {
                graph.add(from, at, EdgeKind::Realtime, None);
            }
            predecessors.insert(at, frontier.clone());
        }
    }
}

/// A path or cycle in the graph: (from, to, kind, key) per edge.
type Path = Vec<(usize, usize, EdgeKind, Option<i64>)>;

/// Which edge kinds a search may follow.
type Allowed<'a> = &'a dyn Fn(EdgeKind) -> bool;

/// The dependency graph: adjacency lists of (target, kind, key), deduplicated.
struct Graph {
    edges: Vec<Vec<(usize, EdgeKind, Option<i64>)>>,
    seen: HashSet<(usize, usize, EdgeKind)>,
}

impl Graph {
    fn new(nodes: usize) -> Graph {
        Graph { edges: vec![Vec::new(); nodes], seen: HashSet::new() }
    }

    fn add(&mut self, from: usize, to: usize, kind: EdgeKind, key: Option<i64>) {
        if from != to && self.seen.insert((from, to, kind)) {
            self.edges[from].push((to, kind, key));
        }
    }

    /// Tarjan's strongly connected components (iterative), those with more than one node.
    fn components(&self, allowed: Allowed<'_>, nodes: &[usize]) -> Vec<Vec<usize>> {
        let inside: HashSet<usize> = nodes.iter().copied().collect();
        let mut index: HashMap<usize, usize> = HashMap::new();
        let mut low: HashMap<usize, usize> = HashMap::new();
        let mut on_stack: HashSet<usize> = HashSet::new();
        let mut stack: Vec<usize> = Vec::new();
        let mut components = Vec::new();
        let mut counter = 0;
        for &root in nodes {
            if index.contains_key(&root) {
                continue;
            }
            // (node, next edge to look at)
            let mut work: Vec<(usize, usize)> = vec![(root, 0)];
            index.insert(root, counter);
            low.insert(root, counter);
            counter += 1;
            stack.push(root);
            on_stack.insert(root);
            while let Some(&mut (node, ref mut edge)) = work.last_mut() {
                if let Some(&(to, kind, _)) = self.edges[node].get(*edge) {
                    *edge += 1;
                    if !allowed(kind) || !inside.contains(&to) {
                        continue;
                    }
                    if let Some(&to_index) = index.get(&to) {
                        if on_stack.contains(&to) {
                            let low_node = low[&node].min(to_index);
                            low.insert(node, low_node);
                        }
                    } else {
                        index.insert(to, counter);
                        low.insert(to, counter);
                        counter += 1;
                        stack.push(to);
                        on_stack.insert(to);
                        work.push((to, 0));
                    }
                    continue;
                }
                work.pop();
                if let Some(&(parent, _)) = work.last() {
                    let low_parent = low[&parent].min(low[&node]);
                    low.insert(parent, low_parent);
                }
                if low[&node] == index[&node] {
                    let mut component = Vec::new();
                    while let Some(member) = stack.pop() {
                        on_stack.remove(&member);
                        component.push(member);
                        if member == node {
                            break;
                        }
                    }
                    if component.len() > 1 {
                        component.sort_unstable();
                        components.push(component);
                    }
                }
            }
        }
        components
    }

    /// The shortest path from `from` to `to` over allowed edges inside `nodes`, as steps.
    fn path(
        &self,
        from: usize,
        to: usize,
        allowed: Allowed<'_>,
        nodes: &HashSet<usize>,
    ) -> Option<Path> {
        let mut came: HashMap<usize, (usize, EdgeKind, Option<i64>)> = HashMap::new();
        let mut queue = VecDeque::from([from]);
        let mut visited = HashSet::from([from]);
        while let Some(node) = queue.pop_front() {
            for &(next, kind, key) in &self.edges[node] {
                if !allowed(kind) || !nodes.contains(&next) {
                    continue;
                }
                if next == to {
                    let mut path = vec![(node, next, kind, key)];
                    let mut at = node;
                    while at != from {
                        let (previous, kind, key) = came[&at];
                        path.push((previous, at, kind, key));
                        at = previous;
                    }
                    path.reverse();
                    return Some(path);
                }
                if visited.insert(next) {
                    came.insert(next, (node, kind, key));
                    queue.push_back(next);
                }
            }
        }
        None
    }

    /// A cycle through `component` using only allowed edges, if there is one.
    fn cycle_in(&self, component: &[usize], allowed: Allowed<'_>) -> Option<Path> {
        let inner = self.components(allowed, component);
        let first = inner.first()?;
        let nodes: HashSet<usize> = first.iter().copied().collect();
        let start = first[0];
        self.path(start, start, allowed, &nodes)
    }

    /// One cycle per strongly connected component, of the strongest anomaly it holds.
    fn cycles(&self) -> Vec<Path> {
        let all: Vec<usize> = (0..self.edges.len()).collect();
        let mut cycles = Vec::new();
        for component in self.components(&|_| true, &all) {
            let nodes: HashSet<usize> = component.iter().copied().collect();
            let ww = |kind| kind == EdgeKind::Ww;
            let wwr = |kind| matches!(kind, EdgeKind::Ww | EdgeKind::Wr);
            let data = |kind| kind != EdgeKind::Realtime;
            if let Some(cycle) = self.cycle_in(&component, &ww) {
                cycles.push(cycle);
                continue;
            }
            if let Some(cycle) = self.cycle_in(&component, &wwr) {
                cycles.push(cycle);
                continue;
            }
            if let Some(cycle) = self.single_rw_cycle(&component, &nodes, &wwr) {
                cycles.push(cycle);
                continue;
            }
            if let Some(cycle) = self.cycle_in(&component, &data) {
                cycles.push(cycle);
                continue;
            }
            let with_realtime_wwr = |kind| kind != EdgeKind::Rw;
            if let Some(cycle) = self.cycle_in(&component, &with_realtime_wwr) {
                cycles.push(cycle);
                continue;
            }
            let not_rw = |kind| kind != EdgeKind::Rw;
            if let Some(cycle) = self.single_rw_cycle(&component, &nodes, &not_rw) {
                cycles.push(cycle);
                continue;
            }
            let start = component[0];
            cycles.push(self.path(start, start, &|_| true, &nodes).expect("an SCC has a cycle"));
        }
        cycles
    }

    /// A cycle with exactly one `rw` edge whose way back uses only `back` edges.
    fn single_rw_cycle(
        &self,
        component: &[usize],
        nodes: &HashSet<usize>,
        back: Allowed<'_>,
    ) -> Option<Path> {
        let mut tried = 0;
        for &from in component {
            for &(to, kind, key) in &self.edges[from] {
                if kind != EdgeKind::Rw || !nodes.contains(&to) {
                    continue;
                }
                if tried == JEPSEN_GSINGLE_RW_EDGES_TRIED_MAX {
                    return None;
                }
                tried += 1;
                if let Some(mut path) = self.path(to, from, back, nodes) {
                    path.insert(0, (from, to, kind, key));
                    return Some(path);
                }
            }
        }
        None
    }
}

fn cycle_anomaly(txns: &[Txn], cycle: &[(usize, usize, EdgeKind, Option<i64>)]) -> Anomaly {
    let rw = cycle.iter().filter(|(_, _, kind, _)| *kind == EdgeKind::Rw).count();
    let wr = cycle.iter().any(|(_, _, kind, _)| *kind == EdgeKind::Wr);
    let realtime = cycle.iter().any(|(_, _, kind, _)| *kind == EdgeKind::Realtime);
    let kind = match (rw, wr) {
        (0, false) => CycleKind::G0,
        (0, true) => CycleKind::G1c,
        (1, _) => CycleKind::GSingle,
        _ => CycleKind::G2,
    };
    let steps = cycle
        .iter()
        .map(|&(from, to, kind, key)| Step { from: txns[from].id, to: txns[to].id, kind, key })
        .collect();
    Anomaly::Cycle { kind, realtime, steps }
}

#[cfg(test)]
mod tests;
