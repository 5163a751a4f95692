//! What one measured run is, and the meter the child process reads.

use std::fmt;
use std::time::{Duration, Instant};

use crate::sys;

/// Which client runs the workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Adapter {
    /// The std-only baseline.
    Raw,
    /// `beanstalk-blocking`.
    Blocking,
    /// `beanstalk-tokio`'s `Client` (a connection owned by one task).
    Tokio,
    /// `beanstalk-tokio`'s `SharedClient` with many tasks (pipelined only).
    TokioShared,
    /// `beanstalk-async-std`'s `Client` on smol.
    Smol,
    /// `beanstalk-async-std`'s `SharedClient` on smol with many tasks
    /// (pipelined only).
    SmolShared,
}

impl Adapter {
    pub(crate) const ALL: [Self; 6] = [
        Self::Raw,
        Self::Blocking,
        Self::Tokio,
        Self::TokioShared,
        Self::Smol,
        Self::SmolShared,
    ];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Raw => "raw",
            Self::Blocking => "blocking",
            Self::Tokio => "tokio",
            Self::TokioShared => "tokio-shared",
            Self::Smol => "smol",
            Self::SmolShared => "smol-shared",
        }
    }

    /// Shared handles exist to pipeline many tasks' commands; one task
    /// awaiting one command at a time is the `Client` case.
    pub(crate) fn runs(self, mode: Mode) -> bool {
        !(matches!(self, Self::TokioShared | Self::SmolShared) && mode == Mode::RequestResponse)
    }
}

/// One command in flight, or many.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Mode {
    RequestResponse,
    Pipelined,
    /// Pipelined puts in bursts, each after [`BURST_IDLE`] of silence: the
    /// server's TCP then starts over from a small congestion window, which
    /// a client waiting for batches of replies must not stall on. Only the
    /// bursts are timed.
    Bursts,
}

/// The silence before each burst: longer than loopback's shortest
/// retransmission timeout (200 ms), after which TCP restarts slowly.
pub(crate) const BURST_IDLE: Duration = Duration::from_millis(300);

impl Mode {
    pub(crate) const ALL: [Self; 3] = [Self::RequestResponse, Self::Pipelined, Self::Bursts];

    /// The modes of the targets, run unless `--modes` says otherwise.
    pub(crate) const DEFAULT: [Self; 2] = [Self::RequestResponse, Self::Pipelined];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::RequestResponse => "request-response",
            Self::Pipelined => "pipelined",
            Self::Bursts => "bursts",
        }
    }

    /// Bursts are of small puts (W1) only.
    pub(crate) fn runs(self, workload: Workload) -> bool {
        self != Self::Bursts || workload == Workload::W1
    }
}

/// The three workloads of the issue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Workload {
    /// Put 100-byte jobs.
    W1,
    /// Reserve and delete preloaded 100-byte jobs.
    W2,
    /// Put 60,000-byte jobs.
    W3,
}

/// Body size of W1's puts and W2's preloaded jobs.
pub(crate) const SMALL_BODY: usize = 100;
/// Body size of W3's puts.
pub(crate) const LARGE_BODY: usize = 60_000;

impl Workload {
    pub(crate) const ALL: [Self; 3] = [Self::W1, Self::W2, Self::W3];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::W1 => "W1",
            Self::W2 => "W2",
            Self::W3 => "W3",
        }
    }

    pub(crate) fn describe(self) -> &'static str {
        match self {
            Self::W1 => "put, 100-byte jobs",
            Self::W2 => "reserve+delete, 100-byte jobs",
            Self::W3 => "put, 60,000-byte jobs",
        }
    }

    /// The body a put of this workload sends.
    pub(crate) fn body(self) -> Vec<u8> {
        let len = if self == Self::W3 {
            LARGE_BODY
        } else {
            SMALL_BODY
        };
        (0..len).map(|i| b'a' + (i % 26) as u8).collect()
    }
}

/// Where the server and the client run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Placement {
    /// Server on one core, client on another.
    CrossCore,
    /// Both on one core.
    SameCore,
}

impl Placement {
    pub(crate) const ALL: [Self; 2] = [Self::CrossCore, Self::SameCore];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::CrossCore => "cross-core",
            Self::SameCore => "same-core",
        }
    }
}

/// Everything the child process needs to run one case.
#[derive(Debug, Clone)]
pub(crate) struct Spec {
    pub(crate) adapter: Adapter,
    pub(crate) mode: Mode,
    pub(crate) workload: Workload,
    pub(crate) jobs: u64,
    /// `host:port` of the server.
    pub(crate) addr: String,
    /// A fresh tube for this case.
    pub(crate) tube: String,
    /// Most jobs reserved or asked for at once in pipelined W2.
    pub(crate) window: usize,
    /// Tasks sharing a connection in the shared-handle cases.
    pub(crate) tasks: usize,
    /// Commands per `execute_many` call (0: all in one).
    pub(crate) batch: usize,
    /// Puts per burst in [`Mode::Bursts`].
    pub(crate) burst: usize,
}

impl fmt::Display for Spec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {} x{}",
            self.adapter.name(),
            self.mode.name(),
            self.workload.name(),
            self.jobs
        )
    }
}

/// Times the measured part of a run: wall clock and the process's CPU.
#[derive(Debug, Default)]
pub(crate) struct Meter {
    started: Option<(Instant, Duration)>,
    pub(crate) elapsed: Duration,
    pub(crate) cpu: Duration,
}

impl Meter {
    /// Call once the connection is set up, right before the first command.
    pub(crate) fn start(&mut self) {
        self.started = Some((Instant::now(), sys::cpu_time()));
    }

    /// Call right after the last reply. Each start-stop span adds to the
    /// totals, so bursts can leave their idle spells out.
    pub(crate) fn stop(&mut self) {
        if let Some((at, cpu)) = self.started.take() {
            self.elapsed += at.elapsed();
            self.cpu += sys::cpu_time().saturating_sub(cpu);
        }
    }
}

/// Splits `jobs` over `tasks` as evenly as possible.
pub(crate) fn share(jobs: u64, tasks: usize, task: usize) -> u64 {
    let tasks = tasks.max(1) as u64;
    let task = task as u64;
    jobs / tasks + u64::from(task < jobs % tasks)
}
