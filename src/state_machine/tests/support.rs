//! Test helpers: run argv through parse, encode, a batch and apply, like the runtime will.

use crate::state_machine::{BatchBuilder, Limits, Reply, StateMachine, parse};

/// A state machine with a clock, applying each command as a one-entry batch.
pub struct Harness {
    pub machine: StateMachine,
    pub now: u64,
    pub client: u64,
    pub sequence: u64,
}

impl Harness {
    pub fn new() -> Harness {
        Harness::with_limits(Limits::default())
    }

    pub fn with_limits(limits: Limits) -> Harness {
        Harness { machine: StateMachine::new(limits), now: 1_000_000, client: 1, sequence: 0 }
    }

    /// Parses `line` (space separated) and applies it through a batch.
    pub fn run(&mut self, line: &str) -> Reply {
        let words: Vec<&[u8]> = line.split(' ').map(str::as_bytes).collect();
        self.run_args(&words)
    }

    pub fn run_args(&mut self, args: &[&[u8]]) -> Reply {
        let command = match parse(args) {
            Ok(command) => command,
            Err(reply) => return reply,
        };
        self.sequence += 1;
        let mut batch = BatchBuilder::new();
        batch.push(self.client, self.sequence, &command);
        let mut replies = Vec::new();
        self.machine.apply_batch(self.now, &batch.finish(), &mut replies).unwrap();
        assert_eq!(replies.len(), 1);
        replies.pop().unwrap()
    }

    /// Parses `line` and serves it through the read path.
    pub fn read(&mut self, line: &str) -> Reply {
        let words: Vec<&[u8]> = line.split(' ').map(str::as_bytes).collect();
        match parse(&words) {
            Ok(command) => self.machine.read(self.now, &command),
            Err(reply) => reply,
        }
    }
}

pub fn ok() -> Reply {
    Reply::Ok
}

pub fn int(value: i64) -> Reply {
    Reply::Integer(value)
}

pub fn bulk(text: &str) -> Reply {
    Reply::Bulk(text.as_bytes().to_vec())
}

pub fn err(text: &str) -> Reply {
    Reply::Error(text.to_owned())
}

pub fn bulks(items: &[&str]) -> Reply {
    Reply::Array(items.iter().map(|item| bulk(item)).collect())
}

/// An array or set reply with its elements sorted (by bulk bytes), for unordered replies.
pub fn sorted(reply: Reply) -> Vec<Reply> {
    let mut items = match reply {
        Reply::Array(items) | Reply::Set(items) => items,
        other => panic!("not a collection: {other:?}"),
    };
    items.sort_by(|a, b| match (a, b) {
        (Reply::Bulk(a), Reply::Bulk(b)) => a.cmp(b),
        _ => std::cmp::Ordering::Equal,
    });
    items
}
