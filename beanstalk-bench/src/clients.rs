//! The workloads, written with each adapter's public API as a user would
//! write them. Each function sets its connection up, then measures from the
//! first command to the last reply.
//!
//! - Request-response: one command at a time (`put`, `reserve` + `delete`).
//! - Pipelined, `Client`: `execute_many` for puts (in batches of
//!   `Spec::batch`, so memory stays flat however many jobs are put); for
//!   reserve+delete the blocking client keeps a sliding window of
//!   reservations with `send`/`recv` (every `Client` has them): each
//!   reservation that arrives is deleted and replaced by a new reserve.
//! - Bursts: as pipelined puts, in bursts of `Spec::burst` (one
//!   `execute_many` call, or a round of tasks on a shared handle), each
//!   after [`BURST_IDLE`] of silence that the meter leaves out.
//! - Pipelined, `SharedClient`: `tasks` tasks share one connection, each
//!   putting its share, or reserving (`reserve-with-timeout 0`) and deleting
//!   until the tube is empty, so at most `tasks` jobs are reserved at once.
//!   W3 runs fewer tasks (`--large-tasks`), which bounds the bytes in flight
//!   as the other clients' byte caps do.
//!
//! The async clients run as fits a process pinned to one core: tokio's
//! current-thread runtime (the shared handle's driver and tasks on it too);
//! `smol::block_on` for smol's `Client`, and for its shared handle smol's
//! global executor (one thread), which `SharedClient::connect` spawns the
//! driver on and `smol::spawn` the tasks.

use std::collections::VecDeque;
use std::error::Error as StdError;

use beanstalk_blocking::proto::Request;
use bytes::Bytes;

use crate::case::{Adapter, BURST_IDLE, Meter, Mode, Spec, Workload, share};
use crate::raw;

type Result<T = ()> = std::result::Result<T, Box<dyn StdError + Send + Sync>>;

/// Runs `spec` in this process, measuring with `meter`.
pub(crate) fn run(spec: &Spec, meter: &mut Meter) -> Result {
    match spec.adapter {
        Adapter::Raw => run_raw(spec, meter),
        Adapter::Blocking => run_blocking(spec, meter),
        Adapter::Tokio | Adapter::TokioShared => {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            if spec.adapter == Adapter::Tokio {
                runtime.block_on(run_tokio(spec, meter))
            } else {
                runtime.block_on(run_tokio_shared(spec, meter))
            }
        }
        Adapter::Smol => smol::block_on(run_smol(spec, meter)),
        Adapter::SmolShared => smol::block_on(run_smol_shared(spec, meter)),
    }
}

fn check_count(what: &str, done: u64, expected: u64) -> Result {
    if done == expected {
        Ok(())
    } else {
        Err(format!("{what}: {done} done, {expected} expected").into())
    }
}

/// The payload of a put: large bodies as `Bytes`, which the core queues by
/// reference instead of copying; small ones as a plain slice.
fn payload(workload: Workload) -> Bytes {
    Bytes::from(workload.body())
}

fn body(payload: &Bytes) -> beanstalk_blocking::proto::Body<'_> {
    if payload.len() >= beanstalk_blocking::proto::write_buf::DEFAULT_ZERO_COPY_MIN {
        payload.into()
    } else {
        (&payload[..]).into()
    }
}

fn put_request(payload: &Bytes) -> beanstalk_blocking::cmd::Put<'_> {
    beanstalk_blocking::cmd::Put::new(body(payload), Default::default())
        .expect("the bodies fit any server")
}

/// `execute_many` call sizes: `batch` at a time, or everything at once.
fn batches(jobs: u64, batch: usize) -> impl Iterator<Item = u64> {
    let batch = if batch == 0 {
        jobs.max(1)
    } else {
        batch as u64
    };
    let full = jobs / batch;
    let rest = jobs % batch;
    std::iter::repeat_n(batch, full as usize).chain((rest > 0).then_some(rest))
}

/// The `execute_many` calls of a pipelined or bursts run: how many puts
/// each, and whether an idle spell comes first.
fn put_calls(spec: &Spec) -> impl Iterator<Item = (u64, bool)> {
    let bursts = spec.mode == Mode::Bursts;
    let size = if bursts { spec.burst } else { spec.batch };
    batches(spec.jobs, size).map(move |n| (n, bursts))
}

/// Puts in each round of tasks on a shared handle: one round of every job,
/// or one per burst.
fn shared_rounds(spec: &Spec) -> Vec<u64> {
    if spec.mode == Mode::Bursts {
        batches(spec.jobs, spec.burst).collect()
    } else {
        vec![spec.jobs]
    }
}

/// Pipelined reserve+delete through a `Client`'s `send`/`recv` (`$recv`
/// is the call, awaited or not): a sliding window of `spec.window`
/// reserves, each reservation deleted and replaced by a new reserve in the
/// same write as it arrives.
macro_rules! reserve_delete_window {
    ($client:ident, $spec:ident, $recv:expr) => {{
        use beanstalk_blocking::cmd;
        let reserve = cmd::ReserveWithTimeout::new(0)?;
        let mut reserves = VecDeque::with_capacity($spec.window);
        let first = ($spec.window.max(1) as u64).min($spec.jobs);
        for _ in 0..first {
            reserves.push_back($client.send(&reserve)?);
        }
        let (mut asked, mut deleted) = (first, 0);
        while deleted < $spec.jobs {
            let (token, reply) = $recv?;
            if reserves.front() == Some(&token) {
                reserves.pop_front();
                let job = cmd::ReserveWithTimeout::from_response(reply)?;
                $client.send(&cmd::Delete::new(job.id))?;
                if asked < $spec.jobs {
                    reserves.push_back($client.send(&reserve)?);
                    asked += 1;
                }
            } else {
                cmd::Delete::from_response(reply)?;
                deleted += 1;
            }
        }
    }};
}

fn run_raw(spec: &Spec, meter: &mut Meter) -> Result {
    let addr = crate::resolve(&spec.addr)?;
    let mut conn = raw::Conn::connect(addr)?;
    conn.select_tube(&spec.tube)?;
    let body = spec.workload.body();
    meter.start();
    match (spec.mode, spec.workload) {
        (Mode::RequestResponse, Workload::W2) => conn.reserve_delete_one_by_one(spec.jobs)?,
        (Mode::RequestResponse, _) => conn.put_one_by_one(&body, spec.jobs)?,
        (Mode::Pipelined, Workload::W2) => conn.reserve_delete_pipelined(spec.jobs, spec.window)?,
        (Mode::Pipelined, _) => conn.put_pipelined(&body, spec.jobs)?,
        (Mode::Bursts, _) => {
            for n in batches(spec.jobs, spec.burst) {
                meter.stop();
                std::thread::sleep(BURST_IDLE);
                meter.start();
                conn.put_pipelined(&body, n)?;
            }
        }
    }
    meter.stop();
    Ok(())
}

fn run_blocking(spec: &Spec, meter: &mut Meter) -> Result {
    use beanstalk_blocking::{Client, Commands, Error, PutOptions};

    let mut client = Client::connect(&spec.addr)?;
    client.use_tube(spec.tube.as_str())?;
    client.watch(spec.tube.as_str())?;
    client.ignore("default")?;
    let payload = payload(spec.workload);
    meter.start();
    match (spec.mode, spec.workload) {
        (Mode::RequestResponse, Workload::W2) => {
            for _ in 0..spec.jobs {
                let job = client.reserve()?;
                client.delete(job.id)?;
            }
        }
        (Mode::RequestResponse, _) => {
            for _ in 0..spec.jobs {
                client.put(body(&payload), PutOptions::default())?;
            }
        }
        (Mode::Pipelined, Workload::W2) => {
            reserve_delete_window!(client, spec, client.recv());
        }
        (Mode::Pipelined | Mode::Bursts, _) => {
            for (n, idle_first) in put_calls(spec) {
                if idle_first {
                    meter.stop();
                    std::thread::sleep(BURST_IDLE);
                    meter.start();
                }
                let results = client.execute_many((0..n).map(|_| put_request(&payload)));
                results
                    .into_iter()
                    .collect::<std::result::Result<Vec<_>, Error>>()?;
            }
        }
    }
    meter.stop();
    Ok(())
}

/// The same code for both async `Client`s: they share the command traits
/// and `execute_many` has the same shape.
macro_rules! async_client_workload {
    ($client:ident, $spec:ident, $meter:ident, $error:ty, $idle:expr) => {{
        $client.use_tube($spec.tube.as_str()).await?;
        $client.watch($spec.tube.as_str()).await?;
        $client.ignore("default").await?;
        let payload = payload($spec.workload);
        $meter.start();
        match ($spec.mode, $spec.workload) {
            (Mode::RequestResponse, Workload::W2) => {
                for _ in 0..$spec.jobs {
                    let job = $client.reserve().await?;
                    $client.delete(job.id).await?;
                }
            }
            (Mode::RequestResponse, _) => {
                for _ in 0..$spec.jobs {
                    $client.put(body(&payload), Default::default()).await?;
                }
            }
            (Mode::Pipelined, Workload::W2) => {
                reserve_delete_window!($client, $spec, $client.recv().await);
            }
            (Mode::Pipelined | Mode::Bursts, _) => {
                for (n, idle_first) in put_calls($spec) {
                    if idle_first {
                        $meter.stop();
                        $idle.await;
                        $meter.start();
                    }
                    let results = $client
                        .execute_many((0..n).map(|_| put_request(&payload)))
                        .await;
                    results
                        .into_iter()
                        .collect::<std::result::Result<Vec<_>, $error>>()?;
                }
            }
        }
        $meter.stop();
        Ok(())
    }};
}

async fn run_tokio(spec: &Spec, meter: &mut Meter) -> Result {
    use beanstalk_tokio::{AsyncCommands, Client, Error};
    let mut client = Client::connect(&spec.addr).await?;
    async_client_workload!(client, spec, meter, Error, tokio::time::sleep(BURST_IDLE))
}

async fn run_smol(spec: &Spec, meter: &mut Meter) -> Result {
    use beanstalk_async_std::{AsyncCommands, Client, Error};
    let mut client = Client::connect(&spec.addr).await?;
    async_client_workload!(client, spec, meter, Error, smol::Timer::after(BURST_IDLE))
}

/// What one task of a shared-handle run does with its handle: put its
/// share, or reserve and delete until nothing is left. Returns how many
/// jobs it handled.
macro_rules! shared_task {
    ($handle:ident, $workload:expr, $share:expr, $payload:expr, $error:path) => {
        async move {
            let mut done = 0u64;
            if $workload == Workload::W2 {
                loop {
                    match $handle.reserve_with_timeout(0).await {
                        Ok(job) => $handle.delete(job.id).await?,
                        Err($error) => break,
                        Err(error) => return Err(error),
                    }
                    done += 1;
                }
            } else {
                for _ in 0..$share {
                    $handle.put(body(&$payload), Default::default()).await?;
                    done += 1;
                }
            }
            Ok(done)
        }
    };
}

/// A shared-handle run, the same for both runtimes but for the handle
/// type, how a task is spawned and how its join handle is awaited.
macro_rules! shared_workload {
    ($spec:ident, $meter:ident, $krate:ident, $spawn:path, $idle:expr, |$task:ident| $join:expr) => {{
        use $krate::{AsyncCommands, Error, SharedClient};
        let mut client = SharedClient::connect(&$spec.addr).await?;
        client.use_tube($spec.tube.as_str()).await?;
        client.watch($spec.tube.as_str()).await?;
        client.ignore("default").await?;
        let payload = payload($spec.workload);
        $meter.start();
        let mut done = 0;
        for round in shared_rounds(&$spec) {
            if $spec.mode == Mode::Bursts {
                $meter.stop();
                $idle.await;
                $meter.start();
            }
            let mut tasks = Vec::with_capacity($spec.tasks);
            for task in 0..$spec.tasks {
                // Each clone starts on the tube of the handle it came from.
                let mut handle = client.clone();
                let payload = payload.clone();
                let share = share(round, $spec.tasks, task);
                let workload = $spec.workload;
                tasks.push($spawn(shared_task!(
                    handle,
                    workload,
                    share,
                    payload,
                    Error::TimedOut
                )));
            }
            for $task in tasks {
                done += $join;
            }
        }
        $meter.stop();
        check_count("shared tasks", done, $spec.jobs)
    }};
}

async fn run_tokio_shared(spec: &Spec, meter: &mut Meter) -> Result {
    shared_workload!(
        spec,
        meter,
        beanstalk_tokio,
        tokio::spawn,
        tokio::time::sleep(BURST_IDLE),
        |task| task.await??
    )
}

async fn run_smol_shared(spec: &Spec, meter: &mut Meter) -> Result {
    shared_workload!(
        spec,
        meter,
        beanstalk_async_std,
        smol::spawn,
        smol::Timer::after(BURST_IDLE),
        |task| task.await?
    )
}
