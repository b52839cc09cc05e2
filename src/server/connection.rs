//! The per-connection loop: read, parse every complete request, run it, write all replies.
//!
//! One read is followed by at most one write for everything it made possible (pipelined
//! requests share a write): on this machine a `send` costs ~6.5 us of CPU, thirty times the
//! work of a SET (`../shared/PERFORMANCE.md`, 1.3). Only when the replies to one read exceed
//! [`CONNECTION_REPLY_BUFFER_BYTES_FLUSH`] are they written in several pieces, which bounds the
//! memory one connection can hold.
//!
//! The loop is generic over any byte stream, so it runs the same on a glommio socket (given
//! by the runtime) and on an in-memory pipe in tests; it names no runtime type.

use std::io;
use std::time::Duration;

use futures_lite::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::access::NOAUTH;
use super::commands;
use super::reply;
use super::resp::{Argument, Parsed, Protocol, ProtocolError, ReplyWriter, parse_request};
use super::session::{Flow, Session};
use super::transaction::{self, Decision, Part};
use crate::constants::{
    CONNECTION_PIPELINE_OPS_MAX, CONNECTION_QUERY_BUFFER_BYTES_MAX, CONNECTION_READ_SIZE_BYTES,
    CONNECTION_REPLY_BUFFER_BYTES_FLUSH, CONNECTION_REPLY_STALL_MILLIS_MAX,
    CONNECTION_UNAUTHENTICATED_QUERY_BYTES_MAX,
};
use crate::embedded::{Combine, Reply, ShardError};

/// Why a connection ended.
#[derive(Debug)]
pub enum Closed {
    /// The client closed its end.
    ByClient,
    /// The client sent `QUIT`.
    Quit,
    /// The client broke the protocol; it was told why.
    ProtocolError(ProtocolError),
    /// The client's unparsed input passed [`CONNECTION_QUERY_BUFFER_BYTES_MAX`].
    QueryBufferFull,
    /// Reading or writing the socket failed.
    Io(io::Error),
    /// The client took none of its replies for [`CONNECTION_REPLY_STALL_MILLIS_MAX`].
    RepliesNotRead,
    /// The client sent nothing for the node's idle `timeout`.
    IdleTimeout,
    /// The client sent more than [`CONNECTION_UNAUTHENTICATED_QUERY_BYTES_MAX`] of a request
    /// before it authenticated.
    UnauthenticatedTooLarge,
}

/// A client's byte stream: what the loop reads and writes, and the socket timeouts it sets.
pub trait ClientStream: AsyncRead + AsyncWrite + Unpin {
    /// How long a read may wait for data before it fails with `TimedOut` (`None`: forever).
    fn set_read_timeout(&mut self, timeout: Option<Duration>);
    /// Writes all of `bytes`, failing with `TimedOut` if the client has not taken them within
    /// `limit`.
    fn write_all_within(
        &mut self,
        bytes: &[u8],
        limit: Duration,
    ) -> impl std::future::Future<Output = io::Result<()>>;
}

impl<T: ClientStream + ?Sized> ClientStream for &mut T {
    fn set_read_timeout(&mut self, timeout: Option<Duration>) {
        (**self).set_read_timeout(timeout);
    }
    async fn write_all_within(&mut self, bytes: &[u8], limit: Duration) -> io::Result<()> {
        (**self).write_all_within(bytes, limit).await
    }
}

/// Serves one client connection until it closes.
///
/// Limits: a client that has not taken one pass's replies (flushed every
/// [`CONNECTION_REPLY_BUFFER_BYTES_FLUSH`], plus at most one larger reply) within
/// [`CONNECTION_REPLY_STALL_MILLIS_MAX`] is closed with a log line, so a client that does not
/// read cannot hold the node's reply buffer; one idle for the node's `timeout` (when not 0) is
/// closed; before it authenticates, a client may buffer at most
/// [`CONNECTION_UNAUTHENTICATED_QUERY_BYTES_MAX`] of an incomplete request.
pub async fn serve<S>(mut stream: S, mut session: Session) -> Closed
where
    S: ClientStream,
{
    let mut input: Vec<u8> = Vec::with_capacity(CONNECTION_READ_SIZE_BYTES);
    let mut output: Vec<u8> = Vec::with_capacity(CONNECTION_READ_SIZE_BYTES);
    let reply_limit = Duration::from_millis(CONNECTION_REPLY_STALL_MILLIS_MAX);
    let mut idle_timeout = None;
    loop {
        // Run every complete request buffered so far, writing replies as they accumulate.
        loop {
            let step = run_requests(&mut session, &input, &mut output).await;
            input.drain(..step.consumed);
            if let Some(error) = step.error {
                ReplyWriter::new(session.protocol(), &mut output).error(&error.message());
            }
            if !output.is_empty() {
                match stream.write_all_within(&output, reply_limit).await {
                    Ok(()) => output.clear(),
                    Err(error) if error.kind() == io::ErrorKind::TimedOut => {
                        tracing::warn!(
                            client_id = session.client_id(),
                            stalled_millis = CONNECTION_REPLY_STALL_MILLIS_MAX,
                            pending_bytes = output.len(),
                            "closing a client that does not read its replies"
                        );
                        return Closed::RepliesNotRead;
                    }
                    Err(error) => return Closed::Io(error),
                }
            }
            if let Some(error) = step.error {
                let _ = stream.flush().await;
                return Closed::ProtocolError(error);
            }
            if step.flow == Flow::Close {
                let _ = stream.flush().await;
                return Closed::Quit;
            }
            if !step.stopped_for_flush {
                break;
            }
        }
        if input.len() > CONNECTION_QUERY_BUFFER_BYTES_MAX {
            let mut reply = Vec::new();
            ReplyWriter::new(session.protocol(), &mut reply)
                .error("ERR Protocol error: query buffer limit exceeded");
            let _ = stream.write_all(&reply).await;
            return Closed::QueryBufferFull;
        }
        if !session.is_authenticated() && input.len() > CONNECTION_UNAUTHENTICATED_QUERY_BYTES_MAX {
            // Like Redis's "unauthenticated multibulk/bulk length" errors: a client that has
            // not authenticated may not make the node buffer a large request.
            let mut reply = Vec::new();
            ReplyWriter::new(session.protocol(), &mut reply)
                .error("ERR Protocol error: unauthenticated request too large");
            let _ = stream.write_all(&reply).await;
            let _ = stream.flush().await;
            return Closed::UnauthenticatedTooLarge;
        }
        let seconds = session.settings().timeout_seconds();
        let timeout = (seconds > 0).then(|| Duration::from_secs(seconds));
        if timeout != idle_timeout {
            stream.set_read_timeout(timeout);
            idle_timeout = timeout;
        }
        let filled = input.len();
        input.resize(filled + CONNECTION_READ_SIZE_BYTES, 0);
        let read = match stream.read(&mut input[filled..]).await {
            Ok(read) => read,
            Err(error) if error.kind() == io::ErrorKind::TimedOut => {
                tracing::debug!(client_id = session.client_id(), seconds, "idle client closed");
                return Closed::IdleTimeout;
            }
            Err(error) => return Closed::Io(error),
        };
        input.truncate(filled + read);
        if read == 0 {
            return Closed::ByClient;
        }
    }
}

/// What one pass over the buffered input did.
#[derive(Debug)]
struct Step {
    /// Input bytes used by the requests that ran.
    consumed: usize,
    /// `Close` when a request ended the connection.
    flow: Flow,
    /// Set when the next request broke the protocol; everything before it ran.
    error: Option<ProtocolError>,
    /// Set when the pass stopped early because the replies reached the flush size.
    stopped_for_flush: bool,
}

/// One request's place in the replies of a pass.
enum Item {
    /// Already answered: these bytes of the pass's scratch buffer.
    Ready(std::ops::Range<usize>),
    /// A data command: its operations' replies (this range of the ticket's) and how they
    /// combine, written in the protocol in force when the request was read.
    Pending { ops: std::ops::Range<usize>, combine: Combine, protocol: Protocol },
    /// `WATCH`: its version reads; the versions go to the session, the client gets `+OK`.
    Watch { ops: std::ops::Range<usize>, combine: Combine, keys: Vec<Vec<u8>>, protocol: Protocol },
    /// `EXEC`: its one operation and the reply array's parts.
    Exec { ops: std::ops::Range<usize>, combine: Combine, parts: Vec<Part>, protocol: Protocol },
}

/// Runs the complete requests at the front of `input`, appending their replies to `output`.
///
/// Connection commands answer at once; the data commands of the whole pass go to the node as
/// one submission (one envelope per core), and the pass's replies are written in request
/// order once they are all in.
async fn run_requests(session: &mut Session, input: &[u8], output: &mut Vec<u8>) -> Step {
    let mut arguments = Vec::new();
    let mut consumed = 0;
    let mut scratch = Vec::new();
    let mut items = Vec::new();
    let mut ops = Vec::new();
    let step = loop {
        if output.len() + scratch.len() >= CONNECTION_REPLY_BUFFER_BYTES_FLUSH
            || ops.len() >= CONNECTION_PIPELINE_OPS_MAX
        {
            break Step { consumed, flow: Flow::Continue, error: None, stopped_for_flush: true };
        }
        match parse_request(&input[consumed..], &mut arguments) {
            Err(error) => {
                let flow = Flow::Close;
                break Step { consumed, flow, error: Some(error), stopped_for_flush: false };
            }
            Ok(Parsed::Incomplete) => {
                let flow = Flow::Continue;
                break Step { consumed, flow, error: None, stopped_for_flush: false };
            }
            Ok(Parsed::Request { consumed: used }) => {
                consumed += used;
                if arguments.is_empty() {
                    continue;
                }
                let start = scratch.len();
                let protocol = session.protocol();
                let mut writer = ReplyWriter::new(protocol, &mut scratch);
                if !session.is_authenticated() && !allowed_before_auth(&arguments[0]) {
                    writer.error(NOAUTH);
                    items.push(Item::Ready(start..scratch.len()));
                    continue;
                }
                match transaction::handle(session, &arguments, &mut writer) {
                    Decision::NotHandled => {}
                    Decision::Answered => {
                        items.push(Item::Ready(start..scratch.len()));
                        continue;
                    }
                    Decision::Watch { prepared, keys } => {
                        let first = ops.len();
                        ops.extend(prepared.ops);
                        let combine = prepared.combine;
                        items.push(Item::Watch { ops: first..ops.len(), combine, keys, protocol });
                        // Later requests (an EXEC) need the versions: end the pass here.
                        let flow = Flow::Continue;
                        break Step { consumed, flow, error: None, stopped_for_flush: true };
                    }
                    Decision::Exec { prepared, parts } => {
                        let first = ops.len();
                        ops.extend(prepared.ops);
                        let combine = prepared.combine;
                        items.push(Item::Exec { ops: first..ops.len(), combine, parts, protocol });
                        continue;
                    }
                }
                let mut writer = ReplyWriter::new(protocol, &mut scratch);
                let flow = commands::dispatch(session, &arguments, &mut writer);
                if let Some(flow) = flow {
                    items.push(Item::Ready(start..scratch.len()));
                    if flow == Flow::Close {
                        break Step { consumed, flow, error: None, stopped_for_flush: false };
                    }
                    continue;
                }
                items.push(prepare(session, &arguments, &mut scratch, &mut ops));
            }
        }
    };
    let replies = match (ops.is_empty(), session.handle()) {
        (false, Some(handle)) => handle.submit(ops).await,
        _ => Vec::new(),
    };
    super::stats::commands_processed(items.len());
    render(session, items, &scratch, replies, output);
    step
}

/// The commands a client may send before it authenticates, as in Redis.
fn allowed_before_auth(name: &[u8]) -> bool {
    [&b"AUTH"[..], b"HELLO", b"QUIT", b"RESET"]
        .iter()
        .any(|allowed| name.eq_ignore_ascii_case(allowed))
}

/// Prepares a data command: its operations join `ops`, or its refusal is answered now.
fn prepare(
    session: &Session,
    arguments: &[Argument<'_>],
    scratch: &mut Vec<u8>,
    ops: &mut Vec<crate::embedded::Op<crate::embedded::Command>>,
) -> Item {
    let start = scratch.len();
    let protocol = session.protocol();
    let Some(handle) = session.handle() else {
        ReplyWriter::new(protocol, scratch).error(&commands::unknown_command(arguments));
        return Item::Ready(start..scratch.len());
    };
    let args: Vec<&[u8]> = arguments.iter().map(AsRef::as_ref).collect();
    match handle.prepare(&args, session.consistency()) {
        Ok(prepared) => {
            let first = ops.len();
            ops.extend(prepared.ops);
            Item::Pending { ops: first..ops.len(), combine: prepared.combine, protocol }
        }
        Err(reply) => {
            reply::write(&reply, &mut ReplyWriter::new(protocol, scratch));
            Item::Ready(start..scratch.len())
        }
    }
}

/// Writes every reply of a pass in request order.
fn render(
    session: &mut Session,
    items: Vec<Item>,
    scratch: &[u8],
    replies: Vec<Result<Reply, ShardError>>,
    output: &mut Vec<u8>,
) {
    let mut replies = replies.into_iter();
    for item in items {
        match item {
            Item::Ready(range) => output.extend_from_slice(&scratch[range]),
            Item::Pending { ops, combine, protocol } => {
                let mut writer = ReplyWriter::new(protocol, output);
                match combined(&mut replies, ops.len(), &combine) {
                    Ok(reply) => reply::write(&reply, &mut writer),
                    Err(text) => writer.error(&text),
                }
            }
            Item::Watch { ops, combine, keys, protocol } => {
                let reply = combined(&mut replies, ops.len(), &combine);
                transaction::watched(session, keys, reply, &mut ReplyWriter::new(protocol, output));
            }
            Item::Exec { ops, combine, parts, protocol } => {
                let reply = combined(&mut replies, ops.len(), &combine);
                transaction::write_exec(&parts, reply, &mut ReplyWriter::new(protocol, output));
            }
        }
    }
}

/// The next `count` replies combined, or the text of the first shard error among them.
fn combined(
    replies: &mut impl Iterator<Item = Result<Reply, ShardError>>,
    count: usize,
    combine: &Combine,
) -> Result<Reply, String> {
    // Take all `count` first: a shard error must not leave later replies to later items.
    let parts: Vec<Result<Reply, ShardError>> = replies.by_ref().take(count).collect();
    match parts.into_iter().collect::<Result<Vec<Reply>, ShardError>>() {
        Ok(parts) => Ok(crate::embedded::combine(combine, parts)),
        Err(error) => Err(reply::shard_error_text(error)),
    }
}

#[cfg(test)]
mod tests {
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use futures_lite::future::block_on;

    use super::*;

    /// An in-memory client: hands the server its input in chunks and records the writes.
    struct Script {
        chunks: Vec<Vec<u8>>,
        writes: Vec<Vec<u8>>,
    }

    impl AsyncRead for Script {
        fn poll_read(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &mut [u8],
        ) -> Poll<io::Result<usize>> {
            if self.chunks.is_empty() {
                return Poll::Ready(Ok(0));
            }
            let chunk = self.chunks.remove(0);
            assert!(chunk.len() <= buf.len());
            buf[..chunk.len()].copy_from_slice(&chunk);
            Poll::Ready(Ok(chunk.len()))
        }
    }

    impl ClientStream for Script {
        fn set_read_timeout(&mut self, _: Option<Duration>) {}
        async fn write_all_within(&mut self, bytes: &[u8], _: Duration) -> io::Result<()> {
            self.writes.push(bytes.to_vec());
            Ok(())
        }
    }

    impl AsyncWrite for Script {
        fn poll_write(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            self.writes.push(buf.to_vec());
            Poll::Ready(Ok(buf.len()))
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
        fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    fn converse(chunks: &[&[u8]]) -> (Vec<String>, Closed) {
        let mut script =
            Script { chunks: chunks.iter().map(|c| c.to_vec()).collect(), writes: vec![] };
        let closed = block_on(serve(&mut script, Session::new(1)));
        (script.writes.into_iter().map(|w| String::from_utf8(w).unwrap()).collect(), closed)
    }

    #[test]
    fn pipelined_requests_get_one_write() {
        let (writes, closed) = converse(&[b"PING\r\n*2\r\n$4\r\nECHO\r\n$1\r\nx\r\nPING\r\n"]);
        assert_eq!(writes, vec!["+PONG\r\n$1\r\nx\r\n+PONG\r\n"]);
        assert!(matches!(closed, Closed::ByClient));
    }

    #[test]
    fn a_request_split_across_reads_is_answered_once_complete() {
        let (writes, _) = converse(&[b"*2\r\n$4\r\nEC", b"HO\r\n$2\r\nhi", b"\r\n"]);
        assert_eq!(writes, vec!["$2\r\nhi\r\n"]);
    }

    #[test]
    fn protocol_error_answers_earlier_requests_then_closes() {
        let (writes, closed) = converse(&[b"PING\r\n*x\r\nPING\r\n"]);
        assert_eq!(writes, vec!["+PONG\r\n-ERR Protocol error: invalid multibulk length\r\n"]);
        assert!(matches!(closed, Closed::ProtocolError(ProtocolError::InvalidMultibulkLength)));
    }

    #[test]
    fn quit_stops_before_later_requests() {
        let (writes, closed) = converse(&[b"PING\r\nQUIT\r\nPING\r\n"]);
        assert_eq!(writes, vec!["+PONG\r\n+OK\r\n"]);
        assert!(matches!(closed, Closed::Quit));
    }

    #[test]
    fn large_reply_batches_are_written_in_bounded_pieces() {
        let request = format!("ECHO {}\r\n", "v".repeat(1000));
        let many = request.repeat(200);
        let mut chunks = Vec::new();
        for chunk in many.as_bytes().chunks(CONNECTION_READ_SIZE_BYTES) {
            chunks.push(chunk);
        }
        let (writes, _) = converse(&chunks);
        let total: usize = writes.iter().map(String::len).sum();
        // Each reply is `$1000\r\n` + 1000 bytes + `\r\n`.
        assert_eq!(total, 200 * (1 + 4 + 2 + 1000 + 2));
        let largest = writes.iter().map(String::len).max().unwrap();
        assert!(largest < CONNECTION_REPLY_BUFFER_BYTES_FLUSH + 2000, "{largest}");
    }

    #[test]
    fn multi_queues_connection_commands_and_exec_answers_one_array() {
        let (writes, _) = converse(&[b"MULTI\r\nPING\r\nECHO x\r\nUNWATCH\r\nEXEC\r\nPING\r\n"]);
        assert_eq!(
            writes.concat(),
            "+OK\r\n+QUEUED\r\n+QUEUED\r\n+QUEUED\r\n*3\r\n+PONG\r\n$1\r\nx\r\n+OK\r\n+PONG\r\n"
        );
        let (writes, _) = converse(&[b"HELLO 3\r\nMULTI\r\nEXEC\r\n"]);
        assert!(writes.concat().ends_with("+OK\r\n*0\r\n"), "{writes:?}");
    }

    #[test]
    fn transaction_commands_out_of_place_get_redis_errors() {
        let (writes, _) = converse(&[
            b"EXEC\r\nDISCARD\r\nMULTI\r\nMULTI\r\nWATCH k\r\nPING\r\nEXEC\r\nMULTI x\r\n",
        ]);
        assert_eq!(
            writes.concat(),
            "-ERR EXEC without MULTI\r\n-ERR DISCARD without MULTI\r\n+OK\r\n\
             -ERR MULTI calls can not be nested\r\n-ERR WATCH inside MULTI is not allowed\r\n\
             +QUEUED\r\n*1\r\n+PONG\r\n-ERR wrong number of arguments for 'multi' command\r\n"
        );
    }

    #[test]
    fn a_refused_queued_command_aborts_exec_and_discard_drops_the_queue() {
        let (writes, _) = converse(&[b"MULTI\r\nPING\r\nNOPE a\r\nHELLO 3\r\nEXEC\r\nEXEC\r\n"]);
        assert_eq!(
            writes.concat(),
            "+OK\r\n+QUEUED\r\n-ERR unknown command 'NOPE', with args beginning with: 'a' \r\n\
             -ERR Command not allowed inside a transaction\r\n\
             -EXECABORT Transaction discarded because of previous errors.\r\n\
             -ERR EXEC without MULTI\r\n"
        );
        let (writes, _) = converse(&[b"MULTI\r\nPING\r\nDISCARD\r\nEXEC\r\n"]);
        assert_eq!(writes.concat(), "+OK\r\n+QUEUED\r\n+OK\r\n-ERR EXEC without MULTI\r\n");
    }

    #[test]
    fn quit_and_reset_act_at_once_inside_multi() {
        let (writes, _) = converse(&[b"MULTI\r\nRESET\r\nEXEC\r\n"]);
        assert_eq!(writes.concat(), "+OK\r\n+RESET\r\n-ERR EXEC without MULTI\r\n");
        let (writes, closed) = converse(&[b"MULTI\r\nQUIT\r\nEXEC\r\n"]);
        assert_eq!(writes.concat(), "+OK\r\n+OK\r\n");
        assert!(matches!(closed, Closed::Quit));
    }

    #[test]
    fn a_transaction_over_the_queue_bound_is_discarded() {
        let mut input = b"MULTI\r\n".to_vec();
        for _ in 0..=crate::constants::MULTI_QUEUED_COMMANDS_MAX {
            input.extend_from_slice(b"PING\r\n");
        }
        input.extend_from_slice(b"EXEC\r\n");
        let chunks: Vec<&[u8]> = input.chunks(CONNECTION_READ_SIZE_BYTES).collect();
        let (writes, _) = converse(&chunks);
        let text = writes.concat();
        assert_eq!(text.matches("+QUEUED").count(), crate::constants::MULTI_QUEUED_COMMANDS_MAX);
        assert!(
            text.ends_with("transaction discarded\r\n-ERR EXEC without MULTI\r\n"),
            "{}",
            &text[text.len() - 200..]
        );
    }

    #[test]
    fn watch_needs_arguments_and_unwatch_answers_ok() {
        let (writes, _) = converse(&[b"WATCH\r\nUNWATCH\r\n"]);
        assert_eq!(
            writes.concat(),
            "-ERR wrong number of arguments for 'watch' command\r\n+OK\r\n"
        );
    }

    fn converse_as(session: Session, chunks: &[&[u8]]) -> (String, Closed) {
        let mut script =
            Script { chunks: chunks.iter().map(|c| c.to_vec()).collect(), writes: vec![] };
        let closed = block_on(serve(&mut script, session));
        (script.writes.into_iter().map(|w| String::from_utf8(w).unwrap()).collect(), closed)
    }

    fn protected() -> Session {
        let flags = crate::config::Settings {
            requirepass: Some("secret".into()),
            users: Some(vec!["alice:a1".into()]),
            ..crate::config::Settings::default()
        };
        let config = crate::config::Settings::resolve(None, flags, 1).unwrap();
        let settings = crate::server::access::ServerSettings::from_config(&config);
        Session::new(1).with_settings(std::sync::Arc::new(settings))
    }

    #[test]
    fn every_command_but_auth_hello_quit_reset_needs_authentication() {
        let (text, _) = converse_as(
            protected(),
            &[b"PING\r\nMULTI\r\nCLIENT ID\r\nAUTH wrong\r\nPING\r\nAUTH secret\r\nPING\r\n"],
        );
        assert_eq!(
            text,
            "-NOAUTH Authentication required.\r\n-NOAUTH Authentication required.\r\n\
             -NOAUTH Authentication required.\r\n\
             -WRONGPASS invalid username-password pair or user is disabled.\r\n\
             -NOAUTH Authentication required.\r\n+OK\r\n+PONG\r\n"
        );
    }

    #[test]
    fn named_users_and_hello_auth_authenticate_and_reset_forgets_it() {
        let (text, _) = converse_as(
            protected(),
            &[b"HELLO 3\r\nHELLO 3 AUTH alice a2\r\nHELLO 2 AUTH alice a1\r\nCLIENT INFO\r\n\
                RESET\r\nPING\r\nAUTH alice a1\r\nPING\r\n"],
        );
        assert!(
            text.starts_with(
                "-NOAUTH HELLO must be called with the client already authenticated, otherwise \
                 the HELLO <proto> AUTH <user> <pass> option"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "\r\n-WRONGPASS invalid username-password pair or user is disabled.\r\n*16\r\n"
            ),
            "{text}"
        );
        assert!(text.contains(" user=alice "), "{text}");
        assert!(
            text.ends_with("+RESET\r\n-NOAUTH Authentication required.\r\n+OK\r\n+PONG\r\n"),
            "{text}"
        );
    }

    #[test]
    fn a_large_request_before_authentication_is_refused_and_closes() {
        let big =
            format!("*2\r\n$4\r\nAUTH\r\n$100000\r\n{}", "x".repeat(CONNECTION_READ_SIZE_BYTES));
        let chunks: Vec<&[u8]> = big.as_bytes().chunks(CONNECTION_READ_SIZE_BYTES).collect();
        let (text, closed) = converse_as(protected(), &chunks);
        assert_eq!(text, "-ERR Protocol error: unauthenticated request too large\r\n");
        assert!(matches!(closed, Closed::UnauthenticatedTooLarge), "{closed:?}");
        // Once authenticated, the same request size is fine (the normal query limit applies).
        let mut session = protected();
        session.authenticate(None, b"secret").unwrap();
        let (text, closed) = converse_as(session, &chunks);
        assert_eq!(text, "");
        assert!(matches!(closed, Closed::ByClient), "{closed:?}");
    }
}
