//! Every limit in Klein, in one place.
//!
//! Each limit is a named constant with a unit suffix (`*_max`, `*_min`, `*_bytes`, `*_count`).
//! Relations between limits are checked at compile time at the bottom of this file, so a change
//! that breaks one fails the build instead of a test run.
//!
//! This module must never depend on anything else in the crate: every layer may read it.

/// Largest bulk string a client may send, in bytes (Redis: `proto-max-bulk-len`, 512 MiB).
///
/// Lower than Redis on purpose: every write is replicated through Paxos, so one huge value
/// stalls a whole group. See `../shared/VERIFICATION.md`, section 5.
pub const RESP_BULK_SIZE_BYTES_MAX: usize = 16 * 1024 * 1024;

/// Largest number of arguments in one multibulk request.
pub const RESP_ARGUMENTS_COUNT_MAX: usize = 1024 * 1024;

/// Largest inline request (a command line without RESP framing), in bytes
/// (Redis: `PROTO_INLINE_MAX_SIZE`).
pub const RESP_INLINE_SIZE_BYTES_MAX: usize = 64 * 1024;

/// Largest unparsed input buffered for one connection, in bytes (Redis:
/// `client-query-buffer-limit`, 1 GiB). A request larger than this is refused.
pub const CONNECTION_QUERY_BUFFER_BYTES_MAX: usize = 64 * 1024 * 1024;

/// Reply bytes a connection may have pending before it stops reading more requests.
///
/// The connection loop writes all pending replies before it parses the next read, so this is
/// the most one batch of pipelined requests can produce before a flush is forced.
pub const CONNECTION_REPLY_BUFFER_BYTES_FLUSH: usize = 64 * 1024;

/// Size of one read from a client socket, in bytes.
pub const CONNECTION_READ_SIZE_BYTES: usize = 16 * 1024;

/// Most client connections one node serves at once (Redis: `maxclients`), shared evenly
/// between cores.
pub const CONNECTIONS_COUNT_MAX: usize = 10_000;

/// Most cores (executors) one node runs.
pub const CORES_COUNT_MAX: usize = 256;

/// Registered I/O memory glommio gets per executor when the memory-lock limit allows it.
pub const IO_MEMORY_BYTES_DEFAULT: usize = 10 * 1024 * 1024;

/// Smallest registered I/O memory glommio accepts per executor (it rounds up to this).
pub const IO_MEMORY_BYTES_MIN: usize = 64 * 1024;

/// Memory-lock budget reserved per executor for the `io_uring` rings themselves.
///
/// glommio refuses to start when `RLIMIT_MEMLOCK` is below 512 KiB; it creates three rings per
/// executor (main, latency, poll).
pub const IO_RING_LOCKED_BYTES_PER_EXECUTOR: usize = 512 * 1024;

/// How many rings register each executor's I/O memory; every registration pins (and is
/// charged to `RLIMIT_MEMLOCK`) separately.
pub const IO_MEMORY_REGISTRATIONS_COUNT: usize = 3;

const _: () = assert!(RESP_INLINE_SIZE_BYTES_MAX <= CONNECTION_QUERY_BUFFER_BYTES_MAX);
const _: () = assert!(RESP_BULK_SIZE_BYTES_MAX <= CONNECTION_QUERY_BUFFER_BYTES_MAX);
const _: () = assert!(CONNECTION_READ_SIZE_BYTES <= RESP_INLINE_SIZE_BYTES_MAX);
const _: () = assert!(IO_MEMORY_BYTES_MIN <= IO_MEMORY_BYTES_DEFAULT);
const _: () = assert!(CORES_COUNT_MAX <= CONNECTIONS_COUNT_MAX);

// Log record format.

/// Largest payload of one log record, in bytes: one Paxos instance's value (an rkyv archive of
/// a batch of commands). The 1 MiB of headroom over [`RESP_BULK_SIZE_BYTES_MAX`] is for the
/// rest of a command carrying one maximal bulk string (its key, other arguments) and the
/// archive's own framing; a batch never grows past this limit.
pub const LOG_RECORD_PAYLOAD_BYTES_MAX: usize = RESP_BULK_SIZE_BYTES_MAX + 1024 * 1024;

/// Largest log segment, in bytes: a record header stores the record's offset within its
/// segment in 32 bits (`log/format.rs`).
pub const LOG_SEGMENT_SIZE_BYTES_MAX: u64 = 1 << 32;

const _: () = assert!(RESP_BULK_SIZE_BYTES_MAX < LOG_RECORD_PAYLOAD_BYTES_MAX);

// Snapshots.

/// Bytes between the starts of two chunks of a snapshot file: a chunk's 64-byte header and up
/// to this much less 64 bytes of payload (`log/snapshot.rs`). Also the unit a snapshot travels
/// in between replicas.
pub const SNAPSHOT_CHUNK_STRIDE_BYTES: usize = 1024 * 1024;

/// Most chunks in one snapshot (about 1 TiB).
pub const SNAPSHOT_CHUNKS_COUNT_MAX: usize = 1 << 20;

/// Chunk writes of one snapshot queued or in flight before pushes are refused.
pub const SNAPSHOT_WRITES_IN_FLIGHT_MAX: usize = 4;

/// Most bytes a snapshot staging file grows by at once (it doubles until then).
pub const SNAPSHOT_GROWTH_BYTES_MAX: u64 = 64 * 1024 * 1024;

/// Exit code of a node that stopped because its storage failed: a failed write or fsync of
/// its log, or a full disk (`ENOSPC`). Fail-stop: the durability of what was in flight is
/// unknown, so the node exits rather than retry (`log/disk.rs`). Distinct from the `klein`
/// binary's 1 (could not start, other runtime failures) and 2 (command line or configuration),
/// so a supervisor can tell "look at the disk" from "look at the configuration".
pub const EXIT_CODE_STORAGE_FAILURE: u8 = 3;

// Superblock.

/// Bytes one copy of a core's acceptor-metadata superblock occupies in its file; copy `i`
/// starts at byte `i * SUPERBLOCK_COPY_SIZE_BYTES` (`log/superblock.rs`).
pub const SUPERBLOCK_COPY_SIZE_BYTES: usize = 64 * 1024;

/// Copies of the superblock in its file: two pairs, written alternately by sequence parity, so
/// a crash mid-write never touches the newest durable version.
pub const SUPERBLOCK_COPIES_COUNT: usize = 4;

/// Most Paxos groups one core hosts: every hosted group's acceptor metadata lives in the
/// core's superblock.
pub const SUPERBLOCK_GROUPS_COUNT_MAX: usize = 256;

/// Most voters in one group's membership.
pub const SUPERBLOCK_GROUP_MEMBERS_COUNT_MAX: usize = 9;

/// Most learners (non-voting members) in one group's membership.
pub const SUPERBLOCK_GROUP_LEARNERS_COUNT_MAX: usize = 9;

const _: () = assert!(SUPERBLOCK_COPY_SIZE_BYTES.is_multiple_of(4096));
const _: () = assert!(SUPERBLOCK_COPIES_COUNT == 4);

// Checkers of the simulator.

/// Search steps the linearizability checker (`sim/linearizability.rs`) spends on one key of a
/// history before it answers "unknown", unless its caller passes its own budget.
///
/// A step visits one call or return of the history: about one model step and one hash of the
/// linearized set. A history without overlapping operations takes one step per operation, so
/// this is room for a million-operation key, or for a long search on a short one; the memo
/// cache holds at most one entry per step, which bounds its memory.
pub const LINEARIZABILITY_SEARCH_STEPS_DEFAULT: u64 = 1 << 20;

// Consensus (`src/consensus/`, `docs/design/protocol.md`). Times are in ticks: the runtime calls
// `Replica::on_tick` every `TICK_MILLIS`, the simulator with drift.

/// Milliseconds between two ticks of a replica.
pub const TICK_MILLIS: u64 = 10;

/// The pipeline window `W`: most slots a master has proposed and not yet seen chosen, and the
/// `alpha` of membership changes (a change chosen in slot `s` governs slots `s + W` onwards).
pub const PIPELINE_WINDOW_SLOTS: u64 = 32;

/// Ticks between two heartbeats (and lease rounds) of a master.
pub const HEARTBEAT_INTERVAL_TICKS: u64 = 10;

/// Shortest election timeout: ticks a follower waits without hearing from a master before it
/// campaigns, and how long it refuses `Prepare` after hearing from one (stickiness). 300 ms:
/// three missed heartbeats, and writes resume within a second of a master's crash (issue 5).
pub const ELECTION_TIMEOUT_TICKS_MIN: u64 = 30;

/// Longest election timeout; each timeout is drawn from `[MIN, MAX)` with the replica's seed.
pub const ELECTION_TIMEOUT_TICKS_MAX: u64 = 60;

/// How far two replicas' tick rates may drift apart over one election timeout, in ticks.
pub const DRIFT_MARGIN_TICKS: u64 = 10;

/// How long a lease lasts after the start of the heartbeat round a quorum acknowledged.
pub const LEASE_TICKS: u64 = 18;

/// Most lease rounds a master remembers while it waits for their acknowledgements.
pub const LEASE_ROUNDS_MAX: usize = 16;

/// Most slots one `Promise` reports: it covers `[from, from + PROMISE_ENTRIES_MAX)`, and an
/// acceptor holding anything beyond answers "behind" instead. Equal to `W`, so the values a new
/// master must re-propose always fit in its window.
pub const PROMISE_ENTRIES_MAX: u64 = PIPELINE_WINDOW_SLOTS;

/// Most chosen values in one `CatchUp` message.
pub const CATCH_UP_ENTRIES_MAX: u64 = 64;

/// Ticks before a catch-up request without an answer is sent again.
pub const CATCH_UP_RETRY_TICKS: u64 = 20;

/// Most persists one replica has waiting for completion. Acceptor work (`Accept`, `Prepare`
/// from peers) is dropped beyond `PERSISTS_IN_FLIGHT_MAX - PERSISTS_RESERVED_COUNT`, so a new
/// or current master always has room for its own window.
pub const PERSISTS_IN_FLIGHT_MAX: usize = 128;

/// Persist slots kept for a replica's own phase 1 and window (`W` records, a promise, a claim).
pub const PERSISTS_RESERVED_COUNT: usize = 34;

/// How far beyond its commit frontier an acceptor accepts slots; further `Accept`s are
/// dropped (the sender has other acceptors; the laggard catches up), which bounds memory.
pub const ACCEPT_AHEAD_SLOTS_MAX: u64 = 16 * PIPELINE_WINDOW_SLOTS;

/// Most reads a master holds waiting for a lease round or the applied frontier.
pub const READS_PENDING_MAX: usize = 1024;

/// Applied slots above the truncation point after which a replica asks for a snapshot.
pub const SNAPSHOT_INTERVAL_SLOTS: u64 = 4096;

/// Bytes of snapshot state one wire chunk carries: well under a frame, so a chunk never
/// delays a connection's other traffic by more than about one socket buffer's worth.
pub const SNAPSHOT_CHUNK_BYTES: usize = 1024 * 1024;

/// Chunks a serving core sends per request: the fetcher asks for the next window when this
/// one has arrived, so at most this many chunks of one transfer are in flight.
pub const SNAPSHOT_CHUNKS_PER_REQUEST: usize = 4;

/// A snapshot fetch that received nothing for this long is aborted (the replica asks again
/// later and the fetch resumes from the bytes already received).
pub const SNAPSHOT_FETCH_TIMEOUT_MILLIS: u64 = 5_000;

/// Snapshot frames (requests, chunks) a link holds for one peer; beyond it they are dropped
/// and the fetcher's timeout resumes the transfer.
pub const PEER_PENDING_SNAPSHOT_FRAMES_MAX: usize = 2 * SNAPSHOT_CHUNKS_PER_REQUEST;

/// Snapshot frames received and not yet taken by the shard task; a reader waits beyond it.
pub const PEER_INBOUND_SNAPSHOT_FRAMES_MAX: usize = 2 * SNAPSHOT_CHUNKS_PER_REQUEST;

/// Ticks a leader transfer may take before the master gives up and serves again.
pub const TRANSFER_TICKS_MAX: u64 = ELECTION_TIMEOUT_TICKS_MIN;

// ----- The shard: batching client writes into slots (`runtime/shard/host.rs`). -----

/// Most bytes of client writes one slot carries; a larger single write goes alone.
pub const SHARD_BATCH_BYTES_MAX: usize = 1024 * 1024;

/// Most writes waiting in one group's queue for the pipeline window; beyond it a write is
/// refused as overloaded (`-BUSY` for Redis clients).
pub const SHARD_QUEUE_ENTRIES_MAX: usize = 64 * 1024;

/// Most bytes of writes waiting in one group's queue (a single larger write is still taken
/// into an empty queue).
pub const SHARD_QUEUE_BYTES_MAX: usize = 64 * 1024 * 1024;

/// Ticks between two housekeeping passes of a master (active expiry, eviction).
pub const SHARD_HOUSEKEEPING_TICKS: u64 = 10;

/// Envelopes (batches of operations for one core) one core's inbox holds; a full inbox
/// refuses the envelope as overloaded.
pub const NODE_INBOX_ENVELOPES_MAX: usize = 4096;

/// Messages one peer link holds while disconnected or while its write is in flight; more are
/// dropped (consensus retransmits what matters).
pub const PEER_PENDING_MESSAGES_MAX: usize = 64 * 1024;

/// Messages received from peers that wait for a core's shard task; readers stop reading
/// beyond it (TCP pushes back on the senders).
pub const PEER_INBOUND_MESSAGES_MAX: usize = 64 * 1024;

/// First and longest pause between two attempts to reach a peer, in milliseconds.
pub const PEER_RECONNECT_MILLIS_MIN: u64 = 20;
/// See [`PEER_RECONNECT_MILLIS_MIN`].
pub const PEER_RECONNECT_MILLIS_MAX: u64 = 1000;

/// Core `k` of a node listens for peers on its peer port plus `k` times this.
pub const PEER_PORT_CORE_STRIDE: u32 = 1000;

/// How long a connection attempt to a peer may take, in milliseconds.
pub const PEER_CONNECT_TIMEOUT_MILLIS: u64 = 1000;

/// Groups per core a node creates (the group count is fixed in the data directory's layout).
pub const GROUPS_PER_CORE: usize = 4;

/// The first counter value of embedded handles' client ids (RESP connections are handles too).
pub const EMBEDDED_CLIENT_ID_BASE: u64 = 1;

/// Low bits of a client id that count the process's handles; the high bits are a random
/// per-process prefix (`embedded::client_prefix`), so ids are unique across nodes and restarts
/// with overwhelming probability (40 random bits).
pub const CLIENT_ID_COUNTER_BITS: u32 = 24;

/// Bits of a `SCAN` cursor below the group index: the group's own cursor.
pub const SCAN_CURSOR_GROUP_SHIFT: u32 = 48;

/// Most operations one pass of a connection's pipeline submits at once; the rest of the
/// buffered requests wait for the next pass.
pub const CONNECTION_PIPELINE_OPS_MAX: usize = 4096;

/// Most bytes of an incomplete request a client that has not authenticated may make the node
/// buffer; more is a protocol error and the connection is closed (Redis refuses unauthenticated
/// bulk lengths over 16 KiB the same way).
pub const CONNECTION_UNAUTHENTICATED_QUERY_BYTES_MAX: usize = 16 * 1024;

/// How long a client may take to receive one pass of replies (the bounded reply buffer of its
/// connection), in milliseconds: a client that does not read its replies is closed, with a
/// log line, after this long, so it cannot hold that buffer forever.
pub const CONNECTION_REPLY_STALL_MILLIS_MAX: u64 = 10_000;

/// Most commands one `MULTI` queues; one more discards the transaction with an error (Redis
/// has no bound; Klein's `EXEC` is one log entry, so its size must be bounded).
pub const MULTI_QUEUED_COMMANDS_MAX: usize = 10_000;

/// Most argument bytes (each argument counted with 8 bytes of overhead) one `MULTI` queues;
/// more discards the transaction with an error. The whole `EXEC` fits one log record.
pub const MULTI_QUEUED_BYTES_MAX: usize = RESP_BULK_SIZE_BYTES_MAX;

/// Most keys one connection watches at once (`WATCH`); more is refused with an error.
pub const WATCHED_KEYS_COUNT_MAX: usize = 10_000;

/// Ticks a request waits on a core for its group to elect a master (an election after start
/// or after a master failed) before it is refused; 3 s, above the longest election timeout.
pub const SHARD_MASTER_WAIT_TICKS: u64 = 300;

/// Ticks between two checks of a master whether a live voter with a lower node id should
/// take its group over.
pub const SHARD_MASTER_PREFERENCE_TICKS: u64 = 50;

/// A peer heard from within this many ticks counts as live for master preference.
pub const SHARD_PEER_LIVE_TICKS: u64 = 3 * HEARTBEAT_INTERVAL_TICKS;

/// Forwarded requests (batches sent to a group's master) one group of a follower keeps in
/// flight; writes beyond it wait in the group's queue (whose bounds refuse them as overloaded).
pub const SHARD_FORWARDS_IN_FLIGHT_MAX: usize = 64;

/// Ticks after which a forwarded request without an answer is sent again, to the master known
/// then (writes are deduplicated by client and sequence where they apply).
pub const SHARD_FORWARD_RESEND_TICKS: u64 = 50;

/// Ticks after which a forwarded request refused by a node that is not (or not yet) the
/// serving master is sent again, to the master known then.
pub const SHARD_FORWARD_RETRY_TICKS: u64 = 5;

/// Forwarded requests one master shard runs at once (all followers, all groups); more are
/// refused as overloaded.
pub const SHARD_REMOTE_REQUESTS_MAX: usize = 4096;

/// Ticks after which a forwarded request still without an answer fails: its outcome is
/// unknown to the caller (the write may or may not have been applied).
pub const SHARD_FORWARD_GIVE_UP_TICKS: u64 = SHARD_MASTER_WAIT_TICKS;

/// Largest batch or reply set one forwarding frame carries: a frame less room for its
/// envelope. A reply set larger than this is refused (the client reads at the master).
pub const FORWARD_PAYLOAD_BYTES_MAX: usize = WIRE_FRAME_SIZE_BYTES_MAX - 64 * 1024;

/// Forwarding frames a link holds for one peer; beyond it they are dropped (the sender's
/// resend timer sends them again).
pub const PEER_PENDING_FORWARD_FRAMES_MAX: usize = 4 * SHARD_FORWARDS_IN_FLIGHT_MAX;

/// Forwarding frames received and not yet taken by the shard task; a reader waits beyond it.
pub const PEER_INBOUND_FORWARD_FRAMES_MAX: usize = 4 * SHARD_FORWARDS_IN_FLIGHT_MAX;

/// Most keys one housekeeping pass of one group deletes.
pub const SHARD_HOUSEKEEPING_KEYS_MAX: usize = 256;

const _: () = assert!(HEARTBEAT_INTERVAL_TICKS < LEASE_TICKS);
const _: () = assert!(ELECTION_TIMEOUT_TICKS_MIN < ELECTION_TIMEOUT_TICKS_MAX);
// The lease argument: a lease ends before any acknowledging acceptor stops refusing Prepare,
// even if its ticks run faster by the drift margin.
const _: () = assert!(LEASE_TICKS < ELECTION_TIMEOUT_TICKS_MIN - DRIFT_MARGIN_TICKS);
const _: () = assert!(LEASE_ROUNDS_MAX as u64 > LEASE_TICKS / HEARTBEAT_INTERVAL_TICKS);
const _: () = assert!(PROMISE_ENTRIES_MAX == PIPELINE_WINDOW_SLOTS);
const _: () = assert!(PERSISTS_IN_FLIGHT_MAX > 2 * PERSISTS_RESERVED_COUNT);
const _: () = assert!(PERSISTS_RESERVED_COUNT as u64 == PIPELINE_WINDOW_SLOTS + 2);
const _: () = assert!(ACCEPT_AHEAD_SLOTS_MAX >= 2 * PIPELINE_WINDOW_SLOTS);
const _: () = assert!(CATCH_UP_ENTRIES_MAX >= 1);
const _: () = assert!(SNAPSHOT_INTERVAL_SLOTS > ACCEPT_AHEAD_SLOTS_MAX);
const _: () = assert!(SNAPSHOT_CHUNK_BYTES * 16 <= WIRE_FRAME_SIZE_BYTES_MAX);
const _: () = assert!(SHARD_BATCH_BYTES_MAX < LOG_RECORD_PAYLOAD_BYTES_MAX);
const _: () = assert!(LOG_RECORD_PAYLOAD_BYTES_MAX <= FORWARD_PAYLOAD_BYTES_MAX);
const _: () = assert!(SHARD_FORWARD_RESEND_TICKS < SHARD_FORWARD_GIVE_UP_TICKS);
const _: () = assert!(SHARD_MASTER_WAIT_TICKS > ELECTION_TIMEOUT_TICKS_MAX);

// Node-to-node wire format (`src/wire/`, `docs/design/wire.md`).

/// Largest frame (header, payload and padding) a node sends or accepts from a peer, in bytes.
/// A peer announcing a longer frame is refused before any of it is buffered: this bounds the
/// receive buffer of one peer connection.
pub const WIRE_FRAME_SIZE_BYTES_MAX: usize = 64 * 1024 * 1024;

/// Payload an encoder gathers in one frame before it starts the next one, in bytes (an
/// estimate that bounds the archive from above). Frames of one loop turn still leave in one
/// write; smaller frames only bound the receiver's buffer and the span one checksum covers.
pub const WIRE_FRAME_PAYLOAD_TARGET_BYTES: usize = 1024 * 1024;

/// Largest batch a value received from a peer may carry, in bytes: what one log record holds,
/// with room for the value's own encoding. A peer sending more is refused at conversion,
/// because persisting it would stop the acceptor's log (`log/format.rs` asserts the limit).
pub const WIRE_BATCH_SIZE_BYTES_MAX: usize = LOG_RECORD_PAYLOAD_BYTES_MAX - 4096;

/// Size of one read from a peer socket into a frame reader's buffer, in bytes.
pub const WIRE_READ_SIZE_BYTES: usize = 64 * 1024;

// One maximal value, with room for its message's own fields, fits one frame.
const _: () = assert!(LOG_RECORD_PAYLOAD_BYTES_MAX + 64 * 1024 <= WIRE_FRAME_SIZE_BYTES_MAX);
const _: () = assert!(WIRE_FRAME_PAYLOAD_TARGET_BYTES <= WIRE_FRAME_SIZE_BYTES_MAX);
const _: () = assert!(WIRE_READ_SIZE_BYTES.is_multiple_of(16));
const _: () = assert!(RESP_BULK_SIZE_BYTES_MAX < WIRE_BATCH_SIZE_BYTES_MAX);
// A whole transaction, with room for its encoding, fits one log record.
const _: () = assert!(MULTI_QUEUED_BYTES_MAX + 64 * 1024 < WIRE_BATCH_SIZE_BYTES_MAX);
// Lengths inside an archive are 32-bit (rkyv's default `FixedUsize`).
const _: () = assert!(WIRE_FRAME_SIZE_BYTES_MAX < u32::MAX as usize);

// History checkers of the Jepsen-style harness (`src/jepsen/`, `docs/design/jepsen.md`).

/// Search steps the harness's linearizability checker (`jepsen/linearizability.rs`) spends on
/// one key before it answers "unknown", unless its caller passes its own budget. One step is
/// one visit of a call or return entry (a model step plus a memo lookup).
pub const JEPSEN_LINEARIZABILITY_STEPS_MAX: u64 = 1 << 22;

/// Wall-clock time the harness's linearizability checker may spend on one key before it
/// answers "unknown", in milliseconds, unless its caller passes its own budget.
pub const JEPSEN_LINEARIZABILITY_TIME_MILLIS_MAX: u64 = 10_000;

/// Search steps between two looks at the clock while checking linearizability: reading the
/// clock costs more than a step, and a budget overshoot of this many steps is a millisecond.
pub const JEPSEN_LINEARIZABILITY_STEPS_PER_CLOCK_READ: u64 = 1024;

/// Operations of the linearized prefix a linearizability counterexample prints before its
/// failing window (older ones are summarized by a count).
pub const JEPSEN_COUNTEREXAMPLE_PREFIX_OPERATIONS_COUNT_MAX: usize = 8;

/// Deepest nesting of collections the EDN reader accepts: Jepsen histories nest four deep
/// (map, transaction, micro-operation, read list), so this only stops a hostile or corrupt
/// file from exhausting the stack of the recursive reader.
pub const JEPSEN_EDN_DEPTH_MAX: usize = 32;

/// Anomalies of one kind the list-append and counter checkers keep in full; past this they
/// only count, so a badly broken history cannot make a report of gigabytes.
pub const JEPSEN_ANOMALIES_PER_KIND_COUNT_MAX: usize = 32;

const _: () = assert!(JEPSEN_LINEARIZABILITY_STEPS_PER_CLOCK_READ > 0);
const _: () =
    assert!(JEPSEN_LINEARIZABILITY_STEPS_PER_CLOCK_READ < JEPSEN_LINEARIZABILITY_STEPS_MAX);
const _: () = assert!(JEPSEN_EDN_DEPTH_MAX >= 4);

/// Anti-dependency edges of one strongly connected component the list-append checker tries
/// as the single `rw` edge of a G-single cycle (a breadth-first search each) before it falls
/// back to reporting a cycle with several.
pub const JEPSEN_GSINGLE_RW_EDGES_TRIED_MAX: usize = 256;
