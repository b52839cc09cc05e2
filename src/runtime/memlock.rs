//! Sizing glommio's registered I/O memory to the process's memory-lock limit.
//!
//! glommio registers each executor's I/O memory with its three `io_uring` rings, and the kernel
//! charges every registration to `RLIMIT_MEMLOCK`. The default limit on many machines (8 MiB
//! here) is below what the defaults need (10 MiB per executor, registered three times), and
//! glommio then merely logs a warning and falls back to slower unregistered buffers. So at
//! start-up Klein raises the limit when it is allowed to (root, or a hard limit high enough);
//! otherwise it shrinks the I/O memory per executor to fit what it may lock, and says which it
//! did in the log.

use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};

use crate::constants::{
    IO_MEMORY_BYTES_DEFAULT, IO_MEMORY_BYTES_MIN, IO_MEMORY_REGISTRATIONS_COUNT,
    IO_RING_LOCKED_BYTES_PER_EXECUTOR,
};

/// How much I/O memory each executor gets, and how the limit was handled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IoMemoryPlan {
    /// Bytes of registered I/O memory per executor.
    pub io_memory_bytes: usize,
    /// What happened to `RLIMIT_MEMLOCK`.
    pub outcome: MemlockOutcome,
}

/// What start-up did about `RLIMIT_MEMLOCK`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemlockOutcome {
    /// The limit already covered the default I/O memory of every executor (`None`: unlimited).
    Sufficient {
        /// The soft limit found, in bytes.
        limit_bytes: Option<u64>,
    },
    /// The limit was raised to cover the default I/O memory.
    Raised {
        /// The soft limit before, in bytes.
        from_bytes: u64,
        /// The soft limit now, in bytes.
        to_bytes: u64,
    },
    /// The limit could not be raised enough; the I/O memory was shrunk to fit it.
    Fitted {
        /// The soft limit in force, in bytes.
        limit_bytes: u64,
    },
}

/// The limit is too small for glommio to start at all.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "RLIMIT_MEMLOCK is {limit_bytes} bytes and cannot be raised; {cores} executors need at \
     least {needed_bytes} (raise it with `ulimit -l`, or run fewer --cores)"
)]
pub struct MemlockTooSmall {
    /// The soft limit in force, in bytes.
    pub limit_bytes: u64,
    /// The executors requested.
    pub cores: usize,
    /// The least that would do, in bytes.
    pub needed_bytes: u64,
}

/// Locked bytes `cores` executors need with `io_memory_bytes` each.
fn locked_bytes_needed(cores: usize, io_memory_bytes: usize) -> u64 {
    let per_executor =
        IO_MEMORY_REGISTRATIONS_COUNT * io_memory_bytes + IO_RING_LOCKED_BYTES_PER_EXECUTOR;
    (cores * per_executor) as u64
}

/// Reads the limit, raises it if allowed, and returns the plan for `cores` executors.
///
/// # Errors
/// [`MemlockTooSmall`] when even the smallest I/O memory cannot be locked.
pub fn prepare(cores: usize) -> Result<IoMemoryPlan, MemlockTooSmall> {
    let current = getrlimit(Resource::Memlock);
    plan(cores, current, |wanted| setrlimit(Resource::Memlock, wanted).is_ok())
}

/// The decision, separated from the system calls so it can be tested: `current` is the limit
/// found and `try_set` attempts to install a new one.
fn plan(
    cores: usize,
    current: Rlimit,
    mut try_set: impl FnMut(Rlimit) -> bool,
) -> Result<IoMemoryPlan, MemlockTooSmall> {
    assert!(cores > 0);
    let needed = locked_bytes_needed(cores, IO_MEMORY_BYTES_DEFAULT);
    let Some(soft) = current.current else {
        return Ok(IoMemoryPlan {
            io_memory_bytes: IO_MEMORY_BYTES_DEFAULT,
            outcome: MemlockOutcome::Sufficient { limit_bytes: None },
        });
    };
    if soft >= needed {
        return Ok(IoMemoryPlan {
            io_memory_bytes: IO_MEMORY_BYTES_DEFAULT,
            outcome: MemlockOutcome::Sufficient { limit_bytes: Some(soft) },
        });
    }
    // Raise the soft limit, and the hard limit too if it is in the way (needs privilege).
    let hard = current.maximum.map(|hard| hard.max(needed));
    if try_set(Rlimit { current: Some(needed), maximum: hard }) {
        return Ok(IoMemoryPlan {
            io_memory_bytes: IO_MEMORY_BYTES_DEFAULT,
            outcome: MemlockOutcome::Raised { from_bytes: soft, to_bytes: needed },
        });
    }
    // Unprivileged: the soft limit may still go up to the hard one.
    let mut limit = soft;
    if let Some(hard) = current.maximum
        && hard > soft
        && try_set(Rlimit { current: Some(hard), maximum: Some(hard) })
    {
        limit = hard;
    }
    let needed_min = locked_bytes_needed(cores, IO_MEMORY_BYTES_MIN);
    if limit < needed_min {
        return Err(MemlockTooSmall { limit_bytes: limit, cores, needed_bytes: needed_min });
    }
    let per_executor = usize::try_from(limit).unwrap_or(usize::MAX) / cores;
    let io_memory_bytes =
        (per_executor - IO_RING_LOCKED_BYTES_PER_EXECUTOR) / IO_MEMORY_REGISTRATIONS_COUNT / 4096
            * 4096;
    assert!(io_memory_bytes >= IO_MEMORY_BYTES_MIN);
    assert!(locked_bytes_needed(cores, io_memory_bytes) <= limit);
    Ok(IoMemoryPlan { io_memory_bytes, outcome: MemlockOutcome::Fitted { limit_bytes: limit } })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1024 * 1024;

    fn limit(soft: u64, hard: u64) -> Rlimit {
        Rlimit { current: Some(soft), maximum: Some(hard) }
    }

    #[test]
    fn sufficient_limit_is_left_alone() {
        let plan = plan(2, limit(100 * MIB, 100 * MIB), |_| panic!("must not set")).unwrap();
        assert_eq!(plan.io_memory_bytes, IO_MEMORY_BYTES_DEFAULT);
        assert_eq!(plan.outcome, MemlockOutcome::Sufficient { limit_bytes: Some(100 * MIB) });
        let unlimited = Rlimit { current: None, maximum: None };
        assert!(matches!(
            plan_unlimited(unlimited),
            MemlockOutcome::Sufficient { limit_bytes: None }
        ));
    }

    fn plan_unlimited(current: Rlimit) -> MemlockOutcome {
        plan(2, current, |_| panic!("must not set")).unwrap().outcome
    }

    #[test]
    fn privileged_process_raises_the_limit() {
        let mut installed = None;
        let plan = plan(2, limit(8 * MIB, 8 * MIB), |wanted| {
            installed = Some(wanted);
            true
        })
        .unwrap();
        let needed = locked_bytes_needed(2, IO_MEMORY_BYTES_DEFAULT);
        assert_eq!(plan.outcome, MemlockOutcome::Raised { from_bytes: 8 * MIB, to_bytes: needed });
        let installed = installed.unwrap();
        assert_eq!(installed.current, Some(needed));
        assert_eq!(installed.maximum, Some(needed));
    }

    #[test]
    fn unprivileged_process_fits_io_memory_to_the_limit() {
        let plan = plan(2, limit(8 * MIB, 8 * MIB), |_| false).unwrap();
        assert_eq!(plan.outcome, MemlockOutcome::Fitted { limit_bytes: 8 * MIB });
        assert!(plan.io_memory_bytes < IO_MEMORY_BYTES_DEFAULT);
        assert!(plan.io_memory_bytes >= IO_MEMORY_BYTES_MIN);
        assert_eq!(plan.io_memory_bytes % 4096, 0);
        assert!(locked_bytes_needed(2, plan.io_memory_bytes) <= 8 * MIB);
    }

    #[test]
    fn unprivileged_process_uses_its_hard_limit() {
        let mut calls = 0;
        let plan = plan(1, limit(MIB, 16 * MIB), |wanted| {
            calls += 1;
            wanted.maximum == Some(16 * MIB) && wanted.current == Some(16 * MIB)
        })
        .unwrap();
        assert_eq!(calls, 2);
        assert_eq!(plan.outcome, MemlockOutcome::Fitted { limit_bytes: 16 * MIB });
    }

    #[test]
    fn a_tiny_limit_is_refused_with_the_numbers() {
        let error = plan(2, limit(64 * 1024, 64 * 1024), |_| false).unwrap_err();
        assert_eq!(error.limit_bytes, 64 * 1024);
        assert!(error.to_string().contains("ulimit -l"));
    }
}
