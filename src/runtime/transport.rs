//! The peer transport of one core: consensus messages to and from the same core of every other
//! node, over TCP, in `wire` frames.
//!
//! ```text
//!  core k, node A                                         core k, node B
//!  shard task --send(to, group, msg)--> Link(B).pending   listener on B's peer port + k
//!                                          | link task:     accept -> handshake check
//!                                          | connect, hs    -> FrameReader -> messages
//!      one write per loop turn: every     v                   -> inbound queue -> shard task
//!      pending message, all groups ---> [ TCP A->B ] ------->
//! ```
//!
//! Core `k` of a node listens on its peer address's port plus `k * PEER_PORT_CORE_STRIDE`
//! (so `--initial-cluster 1=h:7101,2=h:7102` works with any core count: core 1 of node 1 is
//! on 8101), and dials the same offset of each peer: group `g` lives on core `g % cores` of
//! every node, so every message of a core's groups has exactly one destination core. Every
//! node of a cluster therefore runs the same number of cores (the data directory's `LAYOUT`
//! pins it). Each direction has its own
//! connection: a core sends only on the connection it dialled and receives only on the ones it
//! accepted, so no simultaneous-dial tie-break is needed.
//!
//! A connection opens with a handshake each way (cluster id, node ids, the dialled node, core,
//! wire versions; `wire::Handshake::accept`). A peer from another cluster, with no common wire
//! version, of the wrong node or core, or sending bytes that fail the frame checks is refused
//! with one warning line naming it and why; the connection closes and the node keeps serving.
//!
//! Messages are not queued without bound: a link holds at most [`PEER_PENDING_MESSAGES_MAX`]
//! messages while disconnected or while its write is in flight and drops the rest (consensus
//! retransmits: heartbeats, catch-up, retries); the inbound queue holds at most
//! [`PEER_INBOUND_MESSAGES_MAX`] and a reader waits (TCP pushes back on the sender) beyond it.
//! Snapshot transfer (`snapshot_fetch.rs`) runs on a parallel path over the same connections:
//! [`Transport::send_snapshot`] queues a snapshot frame (at most
//! [`PEER_PENDING_SNAPSHOT_FRAMES_MAX`] per link; the fetcher's timeout resumes a transfer
//! whose frames were dropped), the link writes it in the same single write per turn as the
//! consensus messages, and received snapshot frames wait in their own inbound queue (at most
//! [`PEER_INBOUND_SNAPSHOT_FRAMES_MAX`]) for [`Transport::receive_snapshots`]. Forwarded
//! requests and their answers (`shard/host/forward.rs`) take a third such path
//! ([`Transport::send_forward`], [`Transport::receive_forwards`]; bounds
//! [`PEER_PENDING_FORWARD_FRAMES_MAX`] and [`PEER_INBOUND_FORWARD_FRAMES_MAX`]; a dropped
//! request is resent by the follower's timer).
//! Reconnects back off from [`PEER_RECONNECT_MILLIS_MIN`] to [`PEER_RECONNECT_MILLIS_MAX`].

use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::rc::Rc;
use std::task::{Poll, Waker};
use std::time::Duration;

use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::{TcpListener, TcpStream};
use tracing::{debug, info, warn};

use crate::consensus::Message;
use crate::constants::{
    PEER_CONNECT_TIMEOUT_MILLIS, PEER_INBOUND_FORWARD_FRAMES_MAX, PEER_INBOUND_MESSAGES_MAX,
    PEER_INBOUND_SNAPSHOT_FRAMES_MAX, PEER_PENDING_FORWARD_FRAMES_MAX, PEER_PENDING_MESSAGES_MAX,
    PEER_PENDING_SNAPSHOT_FRAMES_MAX, PEER_PORT_CORE_STRIDE, PEER_RECONNECT_MILLIS_MAX,
    PEER_RECONNECT_MILLIS_MIN,
};
use crate::types::{CoreIndex, GroupId, NodeId};
use crate::wire::{
    CheckedBody, Encoder, ForwardMessage, FrameReader, Handshake, SnapshotMessage, WireError,
    WireForward, WireSnapshot,
};

/// Who this core is, for handshakes.
#[derive(Clone, Copy, Debug)]
pub struct Identity {
    /// The cluster id.
    pub cluster: u64,
    /// This node.
    pub node: NodeId,
    /// This core.
    pub core: CoreIndex,
}

/// Messages received from peers, waiting for the shard task.
#[derive(Default)]
struct Inbound {
    messages: VecDeque<(NodeId, GroupId, Message)>,
    /// Snapshot-transfer messages, apart: a chunk must not wait behind a full message queue.
    snapshots: VecDeque<(NodeId, SnapshotMessage)>,
    /// Forwarded requests and their answers, apart for the same reason.
    forwards: VecDeque<(NodeId, ForwardMessage)>,
    /// The shard task, woken when messages arrive.
    consumer: Option<Waker>,
    /// Readers waiting for room.
    producers: Vec<Waker>,
}

/// One peer: the outgoing connection and what waits to go on it.
struct Link {
    peer: NodeId,
    address: SocketAddr,
    pending: Vec<(GroupId, Message)>,
    snapshots: Vec<WireSnapshot>,
    forwards: Vec<WireForward>,
    dropped: u64,
    writer: Option<Waker>,
}

/// A core's transport. See the module documentation.
pub struct Transport {
    links: BTreeMap<NodeId, Rc<RefCell<Link>>>,
    inbound: Rc<RefCell<Inbound>>,
}

impl Transport {
    /// Starts the transport of this core: a listener on `listen` and one link task per peer
    /// (`peers`: each peer's base peer address; this core dials its port plus the core index).
    ///
    /// # Errors
    /// The listener could not be bound.
    pub fn start(
        identity: Identity,
        listen: SocketAddr,
        peers: &BTreeMap<NodeId, SocketAddr>,
    ) -> std::io::Result<Rc<Transport>> {
        let listen = offset(listen, identity.core);
        let listener = TcpListener::bind(listen).map_err(std::io::Error::from)?;
        info!(core = %identity.core, %listen, "peer listener ready");
        let inbound = Rc::new(RefCell::new(Inbound::default()));
        let mut links = BTreeMap::new();
        for (&peer, &address) in peers.iter().filter(|(peer, _)| **peer != identity.node) {
            let address = offset(address, identity.core);
            let link = Rc::new(RefCell::new(Link {
                peer,
                address,
                pending: Vec::new(),
                snapshots: Vec::new(),
                forwards: Vec::new(),
                dropped: 0,
                writer: None,
            }));
            glommio::spawn_local(run_link(identity, Rc::clone(&link))).detach();
            links.insert(peer, link);
        }
        glommio::spawn_local(accept_loop(identity, listener, Rc::clone(&inbound))).detach();
        Ok(Rc::new(Transport { links, inbound }))
    }

    /// Queues `message` for `group` on `to`'s link; the link task writes everything queued in
    /// one write. Dropped beyond the bound, or for an unknown peer.
    pub fn send(&self, to: NodeId, group: GroupId, message: Message) {
        let Some(link) = self.links.get(&to) else {
            debug!(%to, "no link to this node; message dropped");
            return;
        };
        let mut link = link.borrow_mut();
        if link.pending.len() >= PEER_PENDING_MESSAGES_MAX {
            link.dropped += 1;
            return;
        }
        link.pending.push((group, message));
        if let Some(writer) = link.writer.take() {
            writer.wake();
        }
    }

    /// Queues a snapshot-transfer message for `to`; written with the link's next write.
    /// Dropped beyond the bound, or for an unknown peer (the fetcher's timeout resumes).
    pub fn send_snapshot(&self, to: NodeId, message: &SnapshotMessage) {
        let Some(link) = self.links.get(&to) else {
            debug!(%to, "no link to this node; snapshot frame dropped");
            return;
        };
        let mut link = link.borrow_mut();
        if link.snapshots.len() >= PEER_PENDING_SNAPSHOT_FRAMES_MAX {
            link.dropped += 1;
            return;
        }
        link.snapshots.push(message.into());
        if let Some(writer) = link.writer.take() {
            writer.wake();
        }
    }

    /// Queues a forwarding message for `to`; written with the link's next write. Dropped
    /// beyond the bound, or for an unknown peer (the forwarding follower resends).
    pub fn send_forward(&self, to: NodeId, message: &ForwardMessage) {
        let Some(link) = self.links.get(&to) else {
            debug!(%to, "no link to this node; forwarding frame dropped");
            return;
        };
        let mut link = link.borrow_mut();
        if link.forwards.len() >= PEER_PENDING_FORWARD_FRAMES_MAX {
            link.dropped += 1;
            return;
        }
        link.forwards.push(message.into());
        if let Some(writer) = link.writer.take() {
            writer.wake();
        }
    }

    /// Takes every forwarding message received so far.
    #[must_use]
    pub fn receive_forwards(&self) -> Vec<(NodeId, ForwardMessage)> {
        let mut inbound = self.inbound.borrow_mut();
        for producer in inbound.producers.drain(..) {
            producer.wake();
        }
        inbound.forwards.drain(..).collect()
    }

    /// Takes every snapshot-transfer message received so far.
    #[must_use]
    pub fn receive_snapshots(&self) -> Vec<(NodeId, SnapshotMessage)> {
        let mut inbound = self.inbound.borrow_mut();
        for producer in inbound.producers.drain(..) {
            producer.wake();
        }
        inbound.snapshots.drain(..).collect()
    }

    /// Takes every message received so far.
    #[must_use]
    pub fn receive(&self) -> Vec<(NodeId, GroupId, Message)> {
        let mut inbound = self.inbound.borrow_mut();
        for producer in inbound.producers.drain(..) {
            producer.wake();
        }
        inbound.messages.drain(..).collect()
    }

    /// Completes when a message has arrived.
    pub async fn arrived(&self) {
        futures_lite::future::poll_fn(|context| {
            let mut inbound = self.inbound.borrow_mut();
            if inbound.messages.is_empty()
                && inbound.snapshots.is_empty()
                && inbound.forwards.is_empty()
            {
                inbound.consumer = Some(context.waker().clone());
                Poll::Pending
            } else {
                Poll::Ready(())
            }
        })
        .await;
    }
}

/// The peer address of core `core` of the node whose base peer address is `address`, if the
/// port fits.
#[must_use]
pub fn core_address(address: SocketAddr, core: CoreIndex) -> Option<SocketAddr> {
    let port = u32::from(address.port()) + u32::from(core.0) * PEER_PORT_CORE_STRIDE;
    let mut address = address;
    address.set_port(u16::try_from(port).ok()?);
    Some(address)
}

fn offset(address: SocketAddr, core: CoreIndex) -> SocketAddr {
    core_address(address, core).expect("checked at start-up: every core's peer port fits")
}

/// Dials the peer, exchanges handshakes, then writes whatever is pending; reconnects with
/// backoff after any failure.
async fn run_link(identity: Identity, link: Rc<RefCell<Link>>) {
    let (peer, address) = {
        let link = link.borrow();
        (link.peer, link.address)
    };
    let mut backoff = PEER_RECONNECT_MILLIS_MIN;
    loop {
        match connect(identity, peer, address).await {
            Ok((stream, encoder)) => {
                info!(core = %identity.core, %peer, %address, "connected to peer");
                backoff = PEER_RECONNECT_MILLIS_MIN;
                let error = write_loop(stream, encoder, &link).await;
                warn!(core = %identity.core, %peer, %address, %error, "peer link lost");
            }
            Err(error) => {
                debug!(core = %identity.core, %peer, %address, %error, "cannot reach peer");
            }
        }
        // Messages queued for a dead link are stale by the time it is back: drop them.
        {
            let mut link = link.borrow_mut();
            link.pending.clear();
            link.snapshots.clear();
            link.forwards.clear();
        }
        glommio::timer::sleep(Duration::from_millis(backoff)).await;
        backoff = (backoff * 2).min(PEER_RECONNECT_MILLIS_MAX);
    }
}

async fn connect(
    identity: Identity,
    peer: NodeId,
    address: SocketAddr,
) -> Result<(TcpStream, Encoder), String> {
    let timeout = Duration::from_millis(PEER_CONNECT_TIMEOUT_MILLIS);
    let mut stream =
        TcpStream::connect_timeout(address, timeout).await.map_err(|error| error.to_string())?;
    let _ = stream.set_nodelay(true);
    let ours = Handshake::ours(identity.cluster, identity.node, Some(peer), identity.core);
    let mut encoder = Encoder::new(identity.node);
    encoder.handshake(&ours);
    stream.write_all(encoder.finish()).await.map_err(|error| error.to_string())?;
    encoder.clear();
    // The acceptor answers with its own handshake, or closes if it refuses ours.
    let mut reader = FrameReader::new();
    let theirs = loop {
        let read = stream.read(reader.spare()).await.map_err(|error| error.to_string())?;
        if read == 0 {
            return Err("the peer closed the connection during the handshake".to_string());
        }
        reader.filled(read);
        if let Some(frame) = reader.next_frame().map_err(|error| error.to_string())? {
            break frame.handshake().map_err(|error| error.to_string())?;
        }
    };
    check_handshake(identity, &ours, &theirs)?;
    let version = ours.accept(&theirs).map_err(|error| error.to_string())?;
    encoder.set_version(version);
    Ok((stream, encoder))
}

/// The peer must be the same core of another node of this cluster.
fn check_handshake(identity: Identity, ours: &Handshake, theirs: &Handshake) -> Result<(), String> {
    ours.accept(theirs).map_err(|error| describe(&error))?;
    if theirs.core != identity.core {
        return Err(format!(
            "peer core {} reached core {}: nodes must run the same number of cores",
            theirs.core, identity.core
        ));
    }
    Ok(())
}

fn describe(error: &WireError) -> String {
    if error.is_incompatible_peer() {
        format!("incompatible peer: {error}")
    } else {
        error.to_string()
    }
}

/// Writes pending messages, all of them in one write per wake-up, until the connection fails.
async fn write_loop(
    mut stream: TcpStream,
    mut encoder: Encoder,
    link: &Rc<RefCell<Link>>,
) -> String {
    loop {
        let batch = futures_lite::future::poll_fn(|context| {
            let mut link = link.borrow_mut();
            if link.pending.is_empty() && link.snapshots.is_empty() && link.forwards.is_empty() {
                link.writer = Some(context.waker().clone());
                Poll::Pending
            } else {
                Poll::Ready((
                    std::mem::take(&mut link.pending),
                    std::mem::take(&mut link.snapshots),
                    std::mem::take(&mut link.forwards),
                ))
            }
        })
        .await;
        let (batch, snapshots, forwards) = batch;
        for (group, message) in &batch {
            if let Err(error) = encoder.push(*group, message) {
                warn!(%group, %error, "message not sent");
            }
        }
        for snapshot in &snapshots {
            encoder.push_snapshot(snapshot);
        }
        for forward in &forwards {
            encoder.push_forward(forward);
        }
        if let Err(error) = stream.write_all(encoder.finish()).await {
            return error.to_string();
        }
        encoder.clear();
    }
}

/// Accepts peer connections on this core's peer port.
async fn accept_loop(identity: Identity, listener: TcpListener, inbound: Rc<RefCell<Inbound>>) {
    loop {
        match listener.accept().await {
            Ok(stream) => {
                let _ = stream.set_nodelay(true);
                let inbound = Rc::clone(&inbound);
                glommio::spawn_local(async move {
                    let peer = stream.peer_addr().ok();
                    if let Err(error) = read_loop(identity, stream, &inbound).await {
                        warn!(core = %identity.core, ?peer, %error, "peer connection closed");
                    }
                })
                .detach();
            }
            Err(error) => {
                warn!(core = %identity.core, %error, "peer accept failed");
                glommio::timer::sleep(Duration::from_millis(PEER_RECONNECT_MILLIS_MIN)).await;
            }
        }
    }
}

/// Serves one accepted connection: handshake, then messages into the inbound queue.
async fn read_loop(
    identity: Identity,
    mut stream: TcpStream,
    inbound: &Rc<RefCell<Inbound>>,
) -> Result<(), String> {
    let mut reader = FrameReader::new();
    let mut from: Option<NodeId> = None;
    loop {
        let read = stream.read(reader.spare()).await.map_err(|error| error.to_string())?;
        if read == 0 {
            return Ok(());
        }
        reader.filled(read);
        let mut received = Vec::new();
        let mut snapshots = Vec::new();
        let mut forwards = Vec::new();
        while let Some(frame) = reader.next_frame().map_err(|error| describe(&error))? {
            let Some(sender) = from else {
                let theirs = frame.handshake().map_err(|error| describe(&error))?;
                let ours = Handshake::ours(identity.cluster, identity.node, None, identity.core);
                check_handshake(identity, &ours, &theirs)?;
                from = Some(theirs.node);
                let mut encoder = Encoder::new(identity.node);
                encoder.handshake(&ours);
                let reply = encoder.finish().to_vec();
                stream.write_all(&reply).await.map_err(|error| error.to_string())?;
                info!(core = %identity.core, peer = %theirs.node, "peer connected");
                // The reader borrow ends with this frame; take the next one.
                continue;
            };
            match frame.body() {
                CheckedBody::Snapshot(snapshot) => {
                    let message =
                        snapshot.to_snapshot_message().map_err(|error| describe(&error))?;
                    snapshots.push((sender, message));
                }
                CheckedBody::Forward(forward) => {
                    let message = forward.to_forward_message().map_err(|error| describe(&error))?;
                    forwards.push((sender, message));
                }
                CheckedBody::Handshake(_) | CheckedBody::Messages(_) => {}
            }
            for envelope in frame.messages() {
                let message = envelope.message().to_message().map_err(|error| describe(&error))?;
                received.push((sender, envelope.group(), message));
            }
        }
        deliver(inbound, received, snapshots, forwards).await;
    }
}

/// Hands messages to the shard task, waiting while the inbound queue is full.
async fn deliver(
    inbound: &Rc<RefCell<Inbound>>,
    received: Vec<(NodeId, GroupId, Message)>,
    snapshots: Vec<(NodeId, SnapshotMessage)>,
    forwards: Vec<(NodeId, ForwardMessage)>,
) {
    if received.is_empty() && snapshots.is_empty() && forwards.is_empty() {
        return;
    }
    futures_lite::future::poll_fn(|context| {
        let mut inbound = inbound.borrow_mut();
        if inbound.messages.len() >= PEER_INBOUND_MESSAGES_MAX
            || (!snapshots.is_empty()
                && inbound.snapshots.len() >= PEER_INBOUND_SNAPSHOT_FRAMES_MAX)
            || (!forwards.is_empty() && inbound.forwards.len() >= PEER_INBOUND_FORWARD_FRAMES_MAX)
        {
            inbound.producers.push(context.waker().clone());
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    let mut inbound = inbound.borrow_mut();
    inbound.messages.extend(received);
    inbound.snapshots.extend(snapshots);
    inbound.forwards.extend(forwards);
    if let Some(consumer) = inbound.consumer.take() {
        consumer.wake();
    }
}
