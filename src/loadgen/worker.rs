//! One generator thread: many connections, one epoll loop, no async runtime.
//!
//! Each turn of the loop (1) lets every connection queue the requests it may send now (closed
//! loop: refill to `pipeline` in flight; open loop: every scheduled send that is due, up to
//! `pipeline` in flight) and writes each connection's queue with one `send`, (2) waits in
//! `epoll_wait` (a `timerfd` wakes it at the next scheduled send, to the nanosecond), and
//! (3) reads each readable connection once and judges every complete reply in the buffer.
//! Buffers are reused; a reply is parsed in place.

use std::collections::VecDeque;
use std::io::{self, Read as _, Write as _};
use std::net::TcpStream;
use std::os::fd::OwnedFd;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use rand::SeedableRng as _;
use rand::rngs::SmallRng;
use rustix::event::epoll;
use rustix::time::{Itimerspec, TimerfdClockId, TimerfdFlags, TimerfdTimerFlags, Timespec};

use super::reply::{self, Reply};
use super::stats::{Stats, Verdict};
use super::workload::{self, Op};
use super::{Config, Plan, Shared};

/// The epoll token of the worker's timerfd.
const TIMER_TOKEN: u64 = u64::MAX;
/// The longest `epoll_wait`, so deadlines and reply timeouts are checked regularly.
const WAIT_MAX: Duration = Duration::from_millis(5);
/// The first size of a connection's input buffer (it grows for larger replies).
const INPUT_BUFFER_INITIAL: usize = 64 * 1024;

/// A request on the wire.
#[derive(Debug, Clone, Copy)]
struct Pending {
    op: Op,
    /// When it was meant to be sent (closed loop: when it was queued).
    intended: Instant,
    /// When it was written (the reply timeout runs from here).
    sent: Instant,
    /// Whether it counts (sent after warm-up).
    measured: bool,
}

/// One connection's state.
struct Conn {
    stream: TcpStream,
    token: u64,
    out: Vec<u8>,
    written: usize,
    input: Vec<u8>,
    filled: usize,
    in_flight: VecDeque<Pending>,
    rng: SmallRng,
    sampler: workload::KeySampler,
    /// Measured requests this connection may still send (`u64::MAX`: until the deadline).
    quota: u64,
    /// Open loop: the next scheduled send.
    next_due: Instant,
    /// No more sends (deadline, quota, or the connection is gone).
    sending_done: bool,
    /// Closed or broken: nothing more to read or write.
    dead: bool,
    /// Registered for writability (a send was short).
    want_write: bool,
}

/// Runs one worker over `streams` (already connected, blocking) until the plan's end; returns
/// what it measured.
///
/// # Errors
/// The epoll or timer set-up failed, or a socket could not be made non-blocking.
pub(super) fn run(
    config: &Config,
    plan: &Plan,
    shared: &Shared,
    streams: Vec<(usize, TcpStream)>,
) -> io::Result<Stats> {
    let sampler =
        workload::KeySampler::new(config.keyspace, config.key_dist).map_err(io::Error::other)?;
    let value = vec![b'x'; config.value_size];
    let epoll = epoll::create(epoll::CreateFlags::CLOEXEC)?;
    let timer = rustix::time::timerfd_create(
        TimerfdClockId::Monotonic,
        TimerfdFlags::NONBLOCK | TimerfdFlags::CLOEXEC,
    )?;
    // Edge-triggered: every expiry wakes the loop once, and re-arming resets the timer's count,
    // so it never needs a `read` (one system call less per scheduled send).
    let timer_flags = epoll::EventFlags::IN | epoll::EventFlags::ET;
    epoll::add(&epoll, &timer, epoll::EventData::new_u64(TIMER_TOKEN), timer_flags)?;
    let mut conns = Vec::with_capacity(streams.len());
    for (index, stream) in streams {
        stream.set_nonblocking(true)?;
        let token = u64::try_from(conns.len()).map_err(io::Error::other)?;
        epoll::add(&epoll, &stream, epoll::EventData::new_u64(token), epoll::EventFlags::IN)?;
        conns.push(Conn::new(stream, token, index, config, plan, &sampler));
    }
    let mut stats = Stats::new();
    let mut events: Vec<epoll::Event> = Vec::with_capacity(conns.len() + 1);
    let mut timer_armed_for: Option<Instant> = None;
    let ctx = Ctx { config, plan, shared, value: &value };
    loop {
        // Open loop: the earliest scheduled send of a connection that may send.
        let mut next_due: Option<Instant> = None;
        let mut live = false;
        for conn in &mut conns {
            // Read per connection (a vDSO call, ~30 ns): a closed-loop request is stamped just
            // before its own write, not before the writes of the connections ahead of it.
            let now = Instant::now();
            conn.expire(&ctx, now, &mut stats);
            conn.fill(&ctx, now, &mut stats);
            conn.flush(&epoll, &mut stats);
            live |= !(conn.dead || conn.sending_done && conn.in_flight.is_empty());
            if config.open_loop_rate.is_some() && conn.can_send(config.pipeline) {
                next_due = Some(next_due.map_or(conn.next_due, |due| due.min(conn.next_due)));
            }
        }
        if !live {
            break;
        }
        if let Some(due) = next_due
            && timer_armed_for != Some(due)
        {
            arm(&timer, due.saturating_duration_since(Instant::now()))?;
            timer_armed_for = Some(due);
        }
        events.clear();
        let timeout = Timespec::try_from(WAIT_MAX).map_err(io::Error::other)?;
        match epoll::wait(&epoll, rustix::buffer::spare_capacity(&mut events), Some(&timeout)) {
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => continue,
            Err(error) => return Err(error.into()),
        }
        for event in events.iter().copied() {
            // `Event` is packed: copy its fields out before calling methods on them.
            let (flags, data) = (event.flags, event.data);
            let token = data.u64();
            if token == TIMER_TOKEN {
                timer_armed_for = None;
                continue;
            }
            let Some(conn) = usize::try_from(token).ok().and_then(|at| conns.get_mut(at)) else {
                continue;
            };
            if flags.contains(epoll::EventFlags::OUT) {
                conn.flush(&epoll, &mut stats);
            }
            if flags.intersects(epoll::EventFlags::IN | epoll::EventFlags::HUP) {
                conn.receive(&ctx, &mut stats);
            }
        }
    }
    Ok(stats)
}

/// What every connection of a worker shares.
struct Ctx<'a> {
    config: &'a Config,
    plan: &'a Plan,
    shared: &'a Shared,
    value: &'a [u8],
}

/// Arms the timer to fire once after `delay` (at least 1 ns: 0 would disarm it).
fn arm(timer: &OwnedFd, delay: Duration) -> io::Result<()> {
    let delay = delay.max(Duration::from_nanos(1));
    let value = Timespec::try_from(delay).map_err(io::Error::other)?;
    let zero = Timespec { tv_sec: 0, tv_nsec: 0 };
    let spec = Itimerspec { it_interval: zero, it_value: value };
    rustix::time::timerfd_settime(timer, TimerfdTimerFlags::empty(), &spec)?;
    Ok(())
}

impl Conn {
    fn new(
        stream: TcpStream,
        token: u64,
        index: usize,
        config: &Config,
        plan: &Plan,
        sampler: &workload::KeySampler,
    ) -> Conn {
        let seed = config.seed ^ as_u64(index).wrapping_mul(0x9E37_79B9);
        // Open loop: connection i of n starts i/n of an interval late, so sends are spread.
        let offset = plan.interval.mul_f64(as_f64(index) / as_f64(config.clients));
        Conn {
            stream,
            token,
            out: Vec::with_capacity(4096),
            written: 0,
            input: vec![0; INPUT_BUFFER_INITIAL],
            filled: 0,
            in_flight: VecDeque::with_capacity(config.pipeline),
            rng: SmallRng::seed_from_u64(seed),
            sampler: sampler.for_connection(as_u64(index), as_u64(config.clients)),
            quota: plan.quotas.get(index).copied().unwrap_or(u64::MAX),
            next_due: plan.start + offset,
            sending_done: false,
            dead: false,
            want_write: false,
        }
    }

    fn can_send(&self, pipeline: usize) -> bool {
        !self.dead && !self.sending_done && self.in_flight.len() < pipeline
    }

    /// Queues every request this connection may send at `now`.
    fn fill(&mut self, ctx: &Ctx<'_>, now: Instant, stats: &mut Stats) {
        let pipeline = ctx.config.pipeline;
        let open_loop = ctx.config.open_loop_rate.is_some();
        while self.can_send(pipeline) {
            let intended = if open_loop { self.next_due } else { now };
            if open_loop && intended > now {
                break;
            }
            if ctx.plan.end.is_some_and(|end| intended >= end) {
                self.sending_done = true;
                break;
            }
            let measured = intended >= ctx.plan.measure_start;
            if measured {
                if self.quota == 0 {
                    self.sending_done = true;
                    break;
                }
                self.quota -= 1;
                if open_loop {
                    stats.record_send_lag(now.duration_since(intended), ctx.plan.late_after);
                }
            }
            let op = ctx.config.mix.pick(&mut self.rng);
            let key = self.sampler.sample(&mut self.rng);
            workload::encode(&mut self.out, op, key, ctx.value);
            self.in_flight.push_back(Pending { op, intended, sent: now, measured });
            if open_loop {
                self.next_due += ctx.plan.interval;
            }
        }
        // Open loop: sends still owed when the run ends were never made.
        if open_loop
            && !self.dead
            && !self.sending_done
            && let Some(end) = ctx.plan.end.filter(|end| now >= *end)
        {
            stats.dropped_sends += owed(self.next_due, end, ctx.plan.interval);
            self.sending_done = true;
        }
    }

    /// Writes what is queued; registers for writability if the socket is full.
    fn flush(&mut self, epoll: &OwnedFd, stats: &mut Stats) {
        while !self.dead && self.written < self.out.len() {
            match self.stream.write(&self.out[self.written..]) {
                Ok(0) => self.close("connection-closed", stats),
                Ok(n) => self.written += n,
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => break,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => self.close("connection-error", stats),
            }
        }
        if self.written == self.out.len() {
            self.out.clear();
            self.written = 0;
        }
        let want_write = !self.dead && !self.out.is_empty();
        if want_write != self.want_write && !self.dead {
            let mut flags = epoll::EventFlags::IN;
            if want_write {
                flags |= epoll::EventFlags::OUT;
            }
            let data = epoll::EventData::new_u64(self.token);
            if epoll::modify(epoll, &self.stream, data, flags).is_err() {
                self.close("connection-error", stats);
            }
            self.want_write = want_write;
        }
    }

    /// Reads once and judges every complete reply.
    fn receive(&mut self, ctx: &Ctx<'_>, stats: &mut Stats) {
        if self.dead {
            return;
        }
        if self.filled == self.input.len() {
            let grown = self.input.len() * 2;
            self.input.resize(grown, 0);
        }
        match self.stream.read(&mut self.input[self.filled..]) {
            Ok(0) => return self.close("connection-closed", stats),
            Ok(n) => self.filled += n,
            Err(error)
                if matches!(
                    error.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                ) =>
            {
                return;
            }
            Err(_) => return self.close("connection-error", stats),
        }
        let now = Instant::now();
        let mut at = 0;
        let mut measured_done = 0;
        while at < self.filled {
            let (reply, length) = match reply::parse(&self.input[at..self.filled]) {
                Ok(Some(parsed)) => parsed,
                Ok(None) => break,
                Err(error) => {
                    stats.note_protocol_error(&error.0);
                    return self.close("protocol-error", stats);
                }
            };
            let text = &self.input[at..at + length];
            at += length;
            if reply == Reply::Push {
                continue;
            }
            let Some(pending) = self.in_flight.pop_front() else {
                stats.note_protocol_error("a reply to no request");
                return self.close("protocol-error", stats);
            };
            if pending.measured {
                let verdict = Verdict::judge(pending.op, reply, text, ctx.value.len());
                stats.record(pending.op, verdict, now.duration_since(pending.intended), now);
                measured_done += 1;
            }
        }
        self.input.copy_within(at..self.filled, 0);
        self.filled -= at;
        if measured_done > 0 {
            ctx.shared.completed.fetch_add(measured_done, Ordering::Relaxed);
        }
    }

    /// A request older than the reply timeout ends the connection (its replies would be out of
    /// step); every measured request still in flight on it fails as `timeout`.
    fn expire(&mut self, ctx: &Ctx<'_>, now: Instant, stats: &mut Stats) {
        let Some(oldest) = self.in_flight.front() else { return };
        if self.dead || now.duration_since(oldest.sent) < ctx.config.timeout {
            return;
        }
        self.close("timeout", stats);
    }

    /// Ends the connection; every measured request still in flight fails with `kind`.
    fn close(&mut self, kind: &str, stats: &mut Stats) {
        for pending in self.in_flight.drain(..) {
            if pending.measured {
                stats.record_failure(pending.op, kind);
            }
        }
        stats.closed_connections += 1;
        self.dead = true;
        self.sending_done = true;
        let _ = self.stream.shutdown(std::net::Shutdown::Both);
    }
}

/// How many sends every `interval` from `from` fall before `end`.
fn owed(from: Instant, end: Instant, interval: Duration) -> u64 {
    if from >= end || interval.is_zero() {
        return 0;
    }
    let span = end.duration_since(from).as_nanos();
    u64::try_from(span.div_ceil(interval.as_nanos())).unwrap_or(u64::MAX)
}

fn as_u64(value: usize) -> u64 {
    u64::try_from(value).unwrap_or(u64::MAX)
}

#[expect(clippy::cast_precision_loss, reason = "connection counts are small")]
fn as_f64(value: usize) -> f64 {
    value as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owed_sends_round_up() {
        let start = Instant::now();
        let ms = Duration::from_millis(1);
        assert_eq!(owed(start, start + 10 * ms, ms), 10);
        assert_eq!(owed(start, start + ms / 2, ms), 1);
        assert_eq!(owed(start + ms, start, ms), 0);
    }
}
