//! Producers and a worker over time, through mixed faults: the scenario
//! every adapter runs ([`mixed_faults_lose_no_confirmed_job`]), and the
//! same scenario counting the file descriptors and threads it leaves
//! behind ([`mixed_faults_leave_nothing_behind`]).
//!
//! A server with a binlog sits behind a [`FaultProxy`]. Producers put jobs
//! with unique bodies through the adapter's `ReconnectingClient` and note
//! each put as confirmed (an id came back), of unknown outcome
//! ([`Error::outcome_unknown`]: the job may exist) or refused (it surely
//! does not). A `Worker` handles the jobs, noting each body it is handed,
//! and deletes them. Meanwhile a schedule drawn from a seed cuts every
//! connection, stalls them for less and for more than the read timeout,
//! and once kills the server (`kill -9`) and starts it again on the same
//! binlog. Then the faults stop, the producers stop, the worker drains the
//! tube, and everything shuts down. The seed is printed; set
//! `BEANSTALK_SOAK_SEED` to replay a schedule.
//!
//! An adapter takes part through [`SoakClients`]: it starts the producers
//! and the worker in the background and stops them on demand. The async
//! adapters get it from [`AsyncClients`] (written once over
//! [`WorkerRuntime`], run by the adapter's `block_on` on a thread of its
//! own); the blocking adapter implements it with threads in its tests.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::{Future, poll_fn};
use std::marker::PhantomData;
use std::pin::{Pin, pin};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::Poll;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use proto::reconnecting::Reconnecting;
use proto::retry::ReconnectPolicy;
use proto::worker::{CounterSnapshot, Pool, Shutdown, WorkerJob, WorkerRuntime};
use proto::{AsyncCommands, Error, Options, PutOptions};

use crate::{FaultPlan, FaultProxy, Server};

/// The environment variable that replays a fault schedule: the seed a
/// run printed, in decimal or as `0x...`.
pub const SEED_VARIABLE: &str = "BEANSTALK_SOAK_SEED";

/// The seed used when [`SEED_VARIABLE`] is not set, so CI runs one known
/// schedule per adapter.
pub const DEFAULT_SEED: u64 = 0x5eed_0fbe_4e57_a1d5;

/// The read timeout of every client in the scenario: stalls are drawn
/// shorter and longer than it.
const READ_TIMEOUT: Duration = Duration::from_millis(500);

/// How long the faults go on. With the warm-up, the recovery and the
/// drain, a run takes about five seconds per adapter.
const FAULT_TIME: Duration = Duration::from_secs(4);

/// Clean running before the faults, and after them before the producers
/// stop (long enough to see puts confirmed again).
const WARM_UP: Duration = Duration::from_millis(300);
const RECOVERY: Duration = Duration::from_millis(400);

/// How long the worker may take to empty the tube once the producers have
/// stopped. It takes well under a second; the bound is for a loaded CI
/// machine, and only a failing run waits it out.
const DRAIN_LIMIT: Duration = Duration::from_secs(15);

/// How long the producers and the worker may take to return once told to
/// stop. Nothing is faulty by then and every handler takes milliseconds,
/// so they return at once; the bound allows for a loaded machine.
const STOP_LIMIT: Duration = Duration::from_secs(3);

/// What an adapter runs: where, how many, and with which settings.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The proxy's URL, which the producers and the worker use.
    pub url: String,
    /// The tube every job goes to.
    pub tube: String,
    /// How many producers.
    pub producers: usize,
    /// The worker's concurrency.
    pub slots: usize,
    /// Every connection's options (the read timeout matters).
    pub options: Options,
    /// How long a producer waits between two puts.
    pub put_pause: Duration,
    /// How long the handler works on a job.
    pub work: Duration,
    /// Every `slow_every`-th put of a producer (0: none) is a job with a
    /// TTR of 2 s that the handler works on for `slow_work`, long enough
    /// for the worker to touch it (every 2/3 s) through the faults.
    pub slow_every: u64,
    /// How long the handler works on a slow job.
    pub slow_work: Duration,
    /// The worker's shutdown grace period.
    pub grace: Duration,
    /// Where puts and handled jobs are written down.
    pub ledger: Arc<Ledger>,
}

impl Plan {
    /// The body of producer `producer`'s `n`-th put: unique in the run.
    pub fn body(&self, producer: usize, n: u64) -> String {
        format!("p{producer}-{n}")
    }

    /// The options of producer `producer`'s `n`-th put: the defaults (a TTR
    /// of 60 s), or a TTR of 2 s for a slow job.
    pub fn put_options(&self, n: u64) -> PutOptions {
        if self.is_slow(n) {
            PutOptions::default().ttr(2)
        } else {
            PutOptions::default()
        }
    }

    /// How long the handler works on the job with this body.
    pub fn work_for(&self, body: &[u8]) -> Duration {
        let n = std::str::from_utf8(body)
            .ok()
            .and_then(|body| body.rsplit('-').next())
            .and_then(|n| n.parse().ok());
        if n.is_some_and(|n| self.is_slow(n)) {
            self.slow_work
        } else {
            self.work
        }
    }

    fn is_slow(&self, n: u64) -> bool {
        // Not the first put: the warm-up would wait for it.
        self.slow_every > 0 && n % self.slow_every == self.slow_every / 2
    }

    /// The producers' reconnect policy: the default, as the README
    /// recommends for producers (8 attempts per call, at-most-once puts).
    pub fn producer_policy(&self) -> ReconnectPolicy {
        ReconnectPolicy::default()
    }
}

/// What the producers put and what the worker handled, written down as it
/// happens from any thread.
#[derive(Debug, Default)]
pub struct Ledger {
    puts: Mutex<Puts>,
    handled: Mutex<HashMap<String, u32>>,
    producers_finished: Mutex<Vec<Instant>>,
}

#[derive(Debug, Default, Clone)]
struct Puts {
    /// An id came back: the job exists (or existed).
    confirmed: HashSet<String>,
    /// The put failed with `outcome_unknown()`: the job may exist.
    unknown: HashSet<String>,
    /// The put failed with an error after which the job surely does not
    /// exist, and why.
    refused: Vec<(String, String)>,
}

impl Ledger {
    /// Notes how the put of `body` ended.
    pub fn record_put<T>(&self, body: String, result: &Result<T, Error>) {
        let mut puts = lock(&self.puts);
        match result {
            Ok(_) => {
                puts.confirmed.insert(body);
            }
            Err(error) if error.outcome_unknown() => {
                puts.unknown.insert(body);
            }
            Err(error) => puts.refused.push((body, error.to_string())),
        }
    }

    /// Notes that the worker handed a job with this body to the handler.
    pub fn record_handled(&self, body: &[u8]) {
        let body = String::from_utf8_lossy(body).into_owned();
        *lock(&self.handled).entry(body).or_default() += 1;
    }

    /// Notes that a producer has stopped and closed its connection.
    pub fn producer_finished(&self) {
        lock(&self.producers_finished).push(Instant::now());
    }

    fn puts(&self) -> Puts {
        lock(&self.puts).clone()
    }

    fn confirmed(&self) -> usize {
        lock(&self.puts).confirmed.len()
    }

    fn handled(&self) -> HashMap<String, u32> {
        lock(&self.handled).clone()
    }

    fn producers_finished(&self) -> Vec<Instant> {
        lock(&self.producers_finished).clone()
    }
}

/// A ledger entry is one insert, consistent even if a holder panicked.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// How an adapter's producers and worker ended; returned by the thread
/// that ran them.
#[derive(Debug, Clone)]
pub struct Report {
    /// The worker's final counters, as `run` returned them.
    pub worker: CounterSnapshot,
    /// When the worker's `run` returned.
    pub worker_returned: Instant,
    /// Tasks still alive on the adapter's runtime once everything
    /// returned, where the runtime can count them (tokio); `None` if not.
    pub tasks_left: Option<usize>,
}

/// Producers and a worker running in the background: what
/// [`SoakClients::start`] returns.
#[must_use = "the clients run until stopped"]
pub struct Running {
    stop_producers: Option<Box<dyn FnOnce() + Send>>,
    stop_worker: Option<Box<dyn FnOnce() + Send>>,
    done: Option<JoinHandle<Report>>,
}

impl std::fmt::Debug for Running {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Running").finish_non_exhaustive()
    }
}

impl Running {
    /// Clients run by the thread `done`: `stop_producers` tells the
    /// producers to stop after the put in hand (each then calls
    /// [`Ledger::producer_finished`]); `stop_worker` triggers the worker's
    /// shutdown. The thread returns the [`Report`] once all have returned.
    pub fn new(
        stop_producers: impl FnOnce() + Send + 'static,
        stop_worker: impl FnOnce() + Send + 'static,
        done: JoinHandle<Report>,
    ) -> Self {
        Self {
            stop_producers: Some(Box::new(stop_producers)),
            stop_worker: Some(Box::new(stop_worker)),
            done: Some(done),
        }
    }

    fn stop_producers(&mut self) {
        if let Some(stop) = self.stop_producers.take() {
            stop();
        }
    }

    fn stop_worker(&mut self) {
        if let Some(stop) = self.stop_worker.take() {
            stop();
        }
    }

    /// Panics with the clients' own panic if their thread has died.
    fn check_alive(&mut self) {
        if self.done.as_ref().is_some_and(JoinHandle::is_finished) {
            let done = self.done.take().expect("checked above");
            if let Err(panic) = done.join() {
                std::panic::resume_unwind(panic);
            }
            panic!("the clients returned before they were stopped");
        }
    }

    /// Waits up to `limit` for the clients' thread; `None` if it still runs.
    fn join_within(&mut self, limit: Duration) -> Option<Report> {
        let deadline = Instant::now() + limit;
        while !self.done.as_ref()?.is_finished() {
            if Instant::now() >= deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(2));
        }
        match self.done.take()?.join() {
            Ok(report) => Some(report),
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }
}

impl Drop for Running {
    /// A failed run stops its clients, so they do not go on hammering a
    /// server that is being dropped.
    fn drop(&mut self) {
        self.stop_producers();
        self.stop_worker();
    }
}

/// What the scenario needs of an adapter: its producers and worker, run
/// in the background.
pub trait SoakClients {
    /// Starts `plan.producers` producers and a worker of `plan.slots`
    /// slots, all on `plan.url`, and returns at once.
    ///
    /// Producer `p` connects with the adapter's `ReconnectingClient`
    /// (`plan.options`, [`Plan::producer_policy`]), uses `plan.tube`, then
    /// puts [`Plan::body`]`(p, n)` for `n` = 0, 1, ... with
    /// [`Plan::put_options`]`(n)`, each noted with [`Ledger::record_put`], pausing
    /// `plan.put_pause` after each, until told to stop; it then drops its
    /// client and calls [`Ledger::producer_finished`]. The worker watches
    /// `plan.tube` with `plan.options` and `plan.grace`; its handler calls
    /// [`Ledger::record_handled`] with the body, works
    /// [`Plan::work_for`] the body, and succeeds (the worker deletes the
    /// job).
    fn start(plan: Plan) -> Running;
}

/// Runs a future to completion on an async runtime: an adapter's
/// `block_on`, for [`AsyncClients`].
pub trait BlockOn: 'static {
    /// Runs `future` on the calling thread until it completes.
    fn block_on<F: Future>(future: F) -> F::Output;

    /// How many tasks are still alive on the runtime `block_on` runs,
    /// called from inside it; `None` when the runtime cannot say.
    fn tasks_alive() -> Option<usize> {
        None
    }
}

/// [`SoakClients`] for an async adapter whose `Client` is `C`, run by
/// `R::block_on` on a thread of its own: the producers are futures polled
/// by `block_on` itself, the worker is the core's [`Pool`] over `C`, whose
/// slots and handlers are the runtime's tasks.
#[derive(Debug)]
pub struct AsyncClients<C, R>(PhantomData<fn() -> (C, R)>);

impl<C: WorkerRuntime, R: BlockOn> SoakClients for AsyncClients<C, R> {
    fn start(plan: Plan) -> Running {
        let (producers_stop, worker_stop) = (Shutdown::new(), Shutdown::new());
        let done = thread::Builder::new()
            .name("soak-clients".into())
            .spawn({
                let (producers_stop, worker_stop) = (producers_stop.clone(), worker_stop.clone());
                move || R::block_on(run_async::<C, R>(plan, producers_stop, worker_stop))
            })
            .expect("spawn the clients' thread");
        Running::new(
            move || producers_stop.trigger(),
            move || worker_stop.trigger(),
            done,
        )
    }
}

async fn run_async<C: WorkerRuntime, R: BlockOn>(
    plan: Plan,
    producers_stop: Shutdown,
    worker_stop: Shutdown,
) -> Report {
    let worker = Pool::<C>::builder(&plan.url)
        .tube(plan.tube.as_str())
        .concurrency(plan.slots)
        .options(plan.options)
        .shutdown_grace(plan.grace)
        .build()
        .expect("a valid worker");
    let handler = {
        let plan = plan.clone();
        move |job: WorkerJob| {
            let ledger = Arc::clone(&plan.ledger);
            let work = plan.work_for(job.body());
            async move {
                ledger.record_handled(job.body());
                C::sleep(work).await;
                Ok::<(), String>(())
            }
        }
    };
    let worker = async {
        let totals = worker.run(handler, worker_stop).await;
        (totals, Instant::now())
    };
    let producers = join_all(
        (0..plan.producers)
            .map(|p| produce::<C>(&plan, p, producers_stop.clone()))
            .collect(),
    );
    let ((worker, worker_returned), _) = join(worker, producers).await;
    // Cancelled handler tasks and finished slots are let go of as their
    // handles are dropped; give the runtime a moment to count them out.
    let mut tasks_left = R::tasks_alive();
    let deadline = Instant::now() + Duration::from_millis(200);
    while tasks_left.is_some_and(|n| n > 0) && Instant::now() < deadline {
        C::sleep(Duration::from_millis(5)).await;
        tasks_left = R::tasks_alive();
    }
    Report {
        worker,
        worker_returned,
        tasks_left,
    }
}

/// One producer on an async adapter, as [`SoakClients::start`] describes.
async fn produce<C: WorkerRuntime>(plan: &Plan, producer: usize, stop: Shutdown) {
    let mut client =
        Reconnecting::<C>::connect_with(&plan.url, plan.options, plan.producer_policy())
            .await
            .expect("a producer connects");
    client
        .use_tube(plan.tube.as_str())
        .await
        .expect("a producer uses its tube");
    for n in 0.. {
        if stop.is_triggered() {
            break;
        }
        let body = plan.body(producer, n);
        let put = client.put(body.clone(), plan.put_options(n)).await;
        plan.ledger.record_put(body, &put);
        if race(stop.triggered(), C::sleep(plan.put_pause)).await {
            break;
        }
    }
    drop(client);
    plan.ledger.producer_finished();
}

/// Whether `first` completed before `second`.
async fn race(first: impl Future, second: impl Future) -> bool {
    let (mut first, mut second) = (pin!(first), pin!(second));
    poll_fn(|cx| {
        if first.as_mut().poll(cx).is_ready() {
            return Poll::Ready(true);
        }
        second.as_mut().poll(cx).map(|_| false)
    })
    .await
}

/// Both outputs, the futures polled side by side.
async fn join<A: Future, B: Future>(a: A, b: B) -> (A::Output, B::Output) {
    let (mut a, mut b) = (pin!(a), pin!(b));
    let (mut a_out, mut b_out) = (None, None);
    poll_fn(|cx| {
        if a_out.is_none() {
            if let Poll::Ready(out) = a.as_mut().poll(cx) {
                a_out = Some(out);
            }
        }
        if b_out.is_none() {
            if let Poll::Ready(out) = b.as_mut().poll(cx) {
                b_out = Some(out);
            }
        }
        if a_out.is_some() && b_out.is_some() {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await;
    (
        a_out.expect("polled to the end"),
        b_out.expect("polled to the end"),
    )
}

/// Every future polled side by side until all are done.
async fn join_all<F: Future<Output = ()>>(futures: Vec<F>) {
    let mut running: Vec<Option<Pin<Box<F>>>> =
        futures.into_iter().map(|f| Some(Box::pin(f))).collect();
    poll_fn(|cx| {
        for slot in &mut running {
            if slot
                .as_mut()
                .is_some_and(|f| f.as_mut().poll(cx).is_ready())
            {
                *slot = None;
            }
        }
        if running.iter().all(Option::is_none) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await;
}

/// A tiny xorshift generator: the fault schedule must be the same for the
/// same seed on every machine, and needs no better randomness than this.
#[derive(Debug, Clone)]
struct XorShift(u64);

impl XorShift {
    fn new(seed: u64) -> Self {
        // Zero is xorshift's one fixed point.
        Self(if seed == 0 { DEFAULT_SEED } else { seed })
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    /// A duration in `[low, high)`, to the millisecond.
    fn between(&mut self, low: Duration, high: Duration) -> Duration {
        let span = high.saturating_sub(low).as_millis();
        low + Duration::from_millis(self.below(u64::try_from(span).unwrap_or(u64::MAX)))
    }
}

/// The seed from [`SEED_VARIABLE`], or [`DEFAULT_SEED`].
///
/// # Panics
/// If the variable is set to something that is not a number.
pub fn seed() -> u64 {
    let Ok(text) = std::env::var(SEED_VARIABLE) else {
        return DEFAULT_SEED;
    };
    let text = text.trim();
    let parsed = match text.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => text.parse(),
    };
    parsed.unwrap_or_else(|_| panic!("{SEED_VARIABLE}={text:?} is not a number"))
}

/// One fault of the schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// `cut_all`: every connection through the proxy ends at once.
    Cut,
    /// `stall_now` for this long, then `resume`.
    Stall(Duration),
    /// `kill -9`, down for this long, then a restart on the same binlog.
    Restart(Duration),
}

/// Draws the next fault: the first three are a cut, a stall shorter than
/// the read timeout and one longer, in an order of the seed's choosing, so
/// every schedule has each kind; then cuts, short and long stalls at 5:3:2.
fn draw(rng: &mut XorShift, drawn: usize, order: &[u8; 3]) -> Fault {
    let kind = match order.get(drawn) {
        Some(&kind) => kind,
        None => match rng.below(10) {
            0..=4 => 0,
            5..=7 => 1,
            _ => 2,
        },
    };
    match kind {
        0 => Fault::Cut,
        // Short: at most 60% of the read timeout, so a reply held back
        // still arrives in time.
        1 => Fault::Stall(rng.between(Duration::from_millis(50), READ_TIMEOUT * 3 / 5)),
        // Long: 1.4 to 2.2 read timeouts, so calls in flight time out and
        // the next connection's restore waits too.
        _ => Fault::Stall(rng.between(READ_TIMEOUT * 7 / 5, READ_TIMEOUT * 11 / 5)),
    }
}

/// A shuffle of the three kinds of [`draw`].
fn first_three(rng: &mut XorShift) -> [u8; 3] {
    let mut order = [0, 1, 2];
    for i in (1..order.len()).rev() {
        let j = usize::try_from(rng.below(i as u64 + 1)).unwrap_or(0);
        order.swap(i, j);
    }
    order
}

/// What one run did, for the log and for the leak check.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    /// The seed of the fault schedule.
    pub seed: u64,
    /// Puts confirmed.
    pub confirmed: usize,
    /// Puts whose outcome was unknown.
    pub unknown: usize,
    /// Puts refused (the job surely does not exist).
    pub refused: usize,
    /// Distinct bodies handled.
    pub handled: usize,
    /// Handlings beyond the first of a body.
    pub repeats: u64,
    /// Bodies of unknown outcome that were handled (so their job existed).
    pub unknown_handled: usize,
    /// Cuts of every connection.
    pub cuts: usize,
    /// Stalls shorter than the read timeout.
    pub short_stalls: usize,
    /// Stalls longer than the read timeout.
    pub long_stalls: usize,
    /// Restarts of the server (one).
    pub restarts: usize,
    /// Connections the proxy accepted.
    pub connections: usize,
    /// The worker's final counters.
    pub worker: CounterSnapshot,
    /// From the producers' stop signal to an empty tube with every
    /// confirmed job handled.
    pub drain: Duration,
    /// From the stop signal to the last producer's return.
    pub producers_stop: Duration,
    /// From the shutdown signal to the worker's return.
    pub worker_stop: Duration,
    /// The whole run.
    pub took: Duration,
}

/// The scenario of the [module docs](self), with the seed from
/// [`seed`], as every adapter's worker tests run it; see
/// [`mixed_faults_with_seed`] for what it asserts.
pub fn mixed_faults_lose_no_confirmed_job<A: SoakClients>() -> Summary {
    let seed = seed();
    announce(seed);
    let summary = mixed_faults_with_seed::<A>(seed);
    eprintln!("mixed faults: {summary:?}");
    summary
}

/// Prints the seed before a run, so that a run that fails in any way can
/// be replayed.
fn announce(seed: u64) {
    eprintln!("mixed faults: seed {seed:#x} (replay with {SEED_VARIABLE}={seed:#x})");
}

/// The scenario with fault schedule `seed`. It asserts:
/// - every body whose put was confirmed was handled at least once;
/// - every body handled was put (confirmed, or of unknown outcome): none
///   was invented, none whose put was refused;
/// - a body handled more than once had an earlier handling that did not
///   end in a confirmed delete, which the worker counts as `lost`: the
///   repeats are at most `lost`, and no job was released, buried or failed;
/// - the producers confirmed puts again after the faults stopped;
/// - once the producers stopped, the tube empties (nothing ready,
///   reserved, delayed or buried) while the worker runs, and is still
///   empty after it shut down;
/// - the producers and the worker return within 3 s of being told to
///   stop, and no task of theirs is left on a runtime that can count them.
///
/// What may be left in the tube: nothing. A job exists only if a put
/// created it, confirmed or of unknown outcome (its command reached the
/// server before the connection failed, or was held in the stalled proxy
/// and went on after the client gave up). Jobs that come back after the
/// restart (reserved at the kill, or handled and not yet deleted in the
/// binlog) and jobs whose connection broke while reserved are ready
/// again. Nothing in the scenario releases with a delay or buries, so
/// every job is ready or reserved by a slot at work on it, and a worker
/// that keeps reserving ends up deleting them all, the unknown and the
/// repeated ones included: a job left ready, reserved, delayed or buried
/// would be the client's fault.
///
/// # Panics
/// On any of the failures above, with the fault log and the counts.
pub fn mixed_faults_with_seed<A: SoakClients>(seed: u64) -> Summary {
    let started = Instant::now();
    // The binlog is written before each reply, so `kill -9` loses nothing
    // the server confirmed; fsync only guards against a power cut.
    let mut server = Server::builder().binlog_temp().fsync_never().start();
    let proxy = FaultProxy::start(&server.addr(), FaultPlan::new());
    let ledger = Arc::new(Ledger::default());
    let plan = Plan {
        url: proxy.url(),
        tube: "soak".into(),
        producers: 2,
        slots: 4,
        options: Options::default().read_timeout(READ_TIMEOUT),
        put_pause: Duration::from_millis(8),
        work: Duration::from_millis(2),
        slow_every: 200,
        slow_work: Duration::from_millis(1200),
        grace: Duration::from_secs(2),
        ledger: Arc::clone(&ledger),
    };
    let producers = plan.producers;
    let mut clients = A::start(plan);
    let mut summary = Summary {
        seed,
        ..Summary::default()
    };

    // Warm up, then the faults.
    thread::sleep(WARM_UP);
    clients.check_alive();
    let mut rng = XorShift::new(seed);
    let order = first_three(&mut rng);
    let faults_started = Instant::now();
    let mut drawn = 0;
    let mut log = Vec::new();
    while faults_started.elapsed() < FAULT_TIME {
        let fault = if summary.restarts == 0 && faults_started.elapsed() >= FAULT_TIME / 2 {
            Fault::Restart(rng.between(Duration::from_millis(50), Duration::from_millis(400)))
        } else {
            drawn += 1;
            draw(&mut rng, drawn - 1, &order)
        };
        let at = faults_started.elapsed();
        match fault {
            Fault::Cut => {
                proxy.cut_all();
                summary.cuts += 1;
            }
            Fault::Stall(time) => {
                proxy.stall_now();
                thread::sleep(time);
                proxy.resume();
                if time < READ_TIMEOUT {
                    summary.short_stalls += 1;
                } else {
                    summary.long_stalls += 1;
                }
            }
            Fault::Restart(down) => {
                server.kill9();
                thread::sleep(down);
                server.restart();
                summary.restarts += 1;
            }
        }
        log.push(format!("{:>5} ms {fault:?}", at.as_millis()));
        clients.check_alive();
        thread::sleep(rng.between(Duration::from_millis(50), Duration::from_millis(350)));
    }
    // For failure messages; nothing is printed on success, so that a leak
    // check sees no output buffer grow.
    let log = format!(
        "seed {seed:#x} (replay with {SEED_VARIABLE}={seed:#x}), faults:\n{}",
        log.join("\n")
    );

    // Recovery: the producers go on putting through a healthy proxy.
    let confirmed_at_the_end_of_faults = ledger.confirmed();
    thread::sleep(RECOVERY);
    clients.check_alive();
    let stopped_producers = Instant::now();
    clients.stop_producers();
    let finished = wait_until(STOP_LIMIT, || {
        ledger.producers_finished().len() == producers
    });
    assert!(
        finished,
        "the producers still ran {STOP_LIMIT:?} after they were told to stop\n{log}"
    );
    let last_producer = ledger.producers_finished().into_iter().max();
    summary.producers_stop = last_producer.map_or(Duration::ZERO, |at| at - stopped_producers);
    let puts = ledger.puts();
    assert!(
        puts.confirmed.len() > confirmed_at_the_end_of_faults,
        "no put was confirmed in the {RECOVERY:?} after the faults ({} before)\n{log}",
        puts.confirmed.len()
    );

    // Drain: the worker handles every confirmed job and empties the tube.
    let drained = wait_until(DRAIN_LIMIT, || {
        let handled = ledger.handled();

        puts.confirmed.iter().all(|body| handled.contains_key(body))
            && tube_counts(&server, "soak").values().all(|&n| n == 0)
    });
    summary.drain = stopped_producers.elapsed();
    let handled = ledger.handled();
    let missing: Vec<&String> = puts
        .confirmed
        .iter()
        .filter(|body| !handled.contains_key(*body))
        .collect();
    assert!(
        missing.is_empty(),
        "{} confirmed jobs were never handled within {DRAIN_LIMIT:?} of the faults' end \
         (first: {:?}); tube {:?}\n{log}",
        missing.len(),
        missing.iter().take(5).collect::<Vec<_>>(),
        tube_counts(&server, "soak"),
    );
    assert!(
        drained,
        "the tube did not empty while the worker ran: {:?}, worker {:?}\n{log}",
        tube_counts(&server, "soak"),
        clients_counters_hint(&handled),
    );

    // Shut the worker down.
    let triggered = Instant::now();
    clients.stop_worker();
    let report = clients.join_within(STOP_LIMIT).unwrap_or_else(|| {
        panic!("the worker still ran {STOP_LIMIT:?} after its shutdown was triggered\n{log}")
    });
    summary.worker_stop = report.worker_returned.saturating_duration_since(triggered);
    assert_eq!(
        report.tasks_left.unwrap_or(0),
        0,
        "tasks were left on the runtime after the worker and producers returned\n{log}"
    );
    let left = tube_counts(&server, "soak");
    assert!(
        left.values().all(|&n| n == 0),
        "jobs left in the tube after shutdown: {left:?}\n{log}"
    );

    // Every job handled was put, and repeats are accounted for.
    let invented: Vec<&String> = handled
        .keys()
        .filter(|body| !puts.confirmed.contains(*body) && !puts.unknown.contains(*body))
        .collect();
    assert!(
        invented.is_empty(),
        "handled jobs no confirmed or unknown put created: {:?} (refused puts: {:?})\n{log}",
        invented.iter().take(5).collect::<Vec<_>>(),
        puts.refused.iter().take(5).collect::<Vec<_>>(),
    );
    let worker = report.worker;
    let repeats: u64 = handled.values().map(|&n| u64::from(n) - 1).sum();
    let handlings: u64 = handled.values().map(|&n| u64::from(n)).sum();
    assert_eq!(
        (worker.failed, worker.released, worker.buried),
        (0, 0, 0),
        "no handler failed and nothing asked for a release or a bury: {worker:?}\n{log}"
    );
    assert!(
        repeats <= worker.lost,
        "{repeats} repeated handlings but only {} jobs lost by the worker: {worker:?}\n{log}",
        worker.lost
    );
    assert!(
        worker.succeeded <= handled.len() as u64 && handlings <= worker.succeeded + worker.lost,
        "{handlings} handlings of {} bodies do not match the worker's counters {worker:?}\n{log}",
        handled.len()
    );

    summary.confirmed = puts.confirmed.len();
    summary.unknown = puts.unknown.len();
    summary.refused = puts.refused.len();
    summary.handled = handled.len();
    summary.repeats = repeats;
    summary.unknown_handled = puts
        .unknown
        .iter()
        .filter(|body| handled.contains_key(*body))
        .count();
    summary.connections = proxy.connections();
    summary.worker = worker;
    drop(proxy);
    drop(server);
    summary.took = started.elapsed();
    summary
}

/// Counters of what the handler saw, for a failure message.
fn clients_counters_hint(handled: &HashMap<String, u32>) -> String {
    let handlings: u32 = handled.values().sum();
    format!("{} bodies handled, {handlings} handlings", handled.len())
}

/// Polls `done` every 10 ms for up to `limit`; whether it came true.
fn wait_until(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if done() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(10));
    }
}

/// The tube's jobs by state (`ready`, `reserved`, `delayed`, `buried`),
/// asked of the server directly; all zero for a tube the server does not
/// know (it forgets an empty tube nobody uses or watches).
///
/// # Panics
/// If the server answers anything else.
pub fn tube_counts(server: &Server, tube: &str) -> BTreeMap<&'static str, u64> {
    let reply = server.raw_command(format!("stats-tube {tube}\r\n").as_bytes());
    let text = String::from_utf8_lossy(&reply);
    let states = ["ready", "reserved", "delayed", "buried"];
    if text.starts_with("NOT_FOUND") {
        return states.into_iter().map(|s| (s, 0)).collect();
    }
    assert!(text.starts_with("OK "), "stats-tube answered {text:?}");
    states
        .into_iter()
        .map(|state| {
            let key = format!("current-jobs-{state}: ");
            let count = text
                .lines()
                .find_map(|line| line.strip_prefix(key.as_str()))
                .and_then(|n| n.trim().parse().ok())
                .unwrap_or_else(|| panic!("no {key:?} in {text:?}"));
            (state, count)
        })
        .collect()
}

/// The process's open file descriptors and what each refers to
/// (`socket:[...]`, `pipe:[...]`, a path), from `/proc/self/fd`.
///
/// # Panics
/// If `/proc/self/fd` cannot be read (the check needs Linux's procfs).
pub fn open_fds() -> BTreeMap<u32, String> {
    let entries = std::fs::read_dir("/proc/self/fd").expect("read /proc/self/fd");
    entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let fd = entry.file_name().to_str()?.parse().ok()?;
            // The directory's own descriptor is gone by the time it is read.
            let target = std::fs::read_link(entry.path()).ok()?;
            Some((fd, target.display().to_string()))
        })
        .collect()
}

/// The process's threads and their names, from `/proc/self/task`.
///
/// # Panics
/// If `/proc/self/task` cannot be read.
pub fn threads() -> BTreeMap<u32, String> {
    let entries = std::fs::read_dir("/proc/self/task").expect("read /proc/self/task");
    entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let tid = entry.file_name().to_str()?.parse().ok()?;
            let name = std::fs::read_to_string(entry.path().join("comm")).ok()?;
            Some((tid, name.trim().to_owned()))
        })
        .collect()
}

/// Which resources [`mixed_faults_leave_nothing_behind`] counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Count {
    /// Open file descriptors.
    Fds,
    /// Open file descriptors and threads: for an adapter that starts
    /// threads of its own (the blocking one), where a runtime's pool would
    /// otherwise be counted.
    FdsAndThreads,
}

/// How many bytes more than before may be live after a run, when the
/// binary counts them ([`crate::large_allocations::LargeAllocationCounter`]).
/// The blocking and tokio clients keep none; smol's and async-std's
/// executors keep a few hundred bytes more after a busy run than after the
/// warm-up (64 to 256 measured), whatever the number of reconnects. A
/// connection's buffers alone are 8 KiB, so one kept per reconnect (the
/// runs make 6 to 25) shows far above this.
pub const LIVE_BYTES_SLACK: isize = 2048;

/// Runs the scenario once with nothing wrong to create what lives for the
/// whole process (an async runtime's reactor and executor threads), then
/// runs it with faults, and checks that the file descriptors (and, with
/// [`Count::FdsAndThreads`], the threads) the process has once everything
/// is shut down and dropped are those it had before; and, if the binary's
/// global allocator is [`crate::large_allocations::LargeAllocationCounter`],
/// that the bytes live are too, within [`LIVE_BYTES_SLACK`].
///
/// It must run alone in its process: another test's sockets, threads and
/// allocations would be counted. Each adapter gives it a test binary of
/// its own with this one test. Nothing is printed between the two counts,
/// since a test's captured output is a buffer that grows.
///
/// # Panics
/// If anything is left, listing it; or as [`mixed_faults_with_seed`].
pub fn mixed_faults_leave_nothing_behind<A: SoakClients>(count: Count) -> Summary {
    use crate::large_allocations::live_bytes;
    let seed = seed();
    announce(seed);
    warm_up::<A>();
    let counting_bytes = live_bytes() > 0;
    let fds_before = open_fds();
    let threads_before = threads();
    // Counted with the two maps above alive, as after the run below.
    let live_before = live_bytes();

    let summary = mixed_faults_with_seed::<A>(seed);

    // Bytes first: the counts that follow allocate.
    let live_at_once = live_bytes();
    let at_once = (open_fds().len(), threads().len(), live_at_once);
    // A joined thread's `/proc` entry goes a moment after `join` returns
    // (the kernel wakes the joiner as the thread exits, before it is
    // reaped). The wait is for that moment only: a real leak stays, and
    // the counts compared below say whether it settled.
    let _ = wait_until(Duration::from_secs(1), || {
        open_fds().len() == fds_before.len()
            && (count == Count::Fds || threads().len() == threads_before.len())
    });
    let live_after = live_bytes();
    let fds_after = open_fds();
    let threads_after = threads();

    eprintln!(
        "mixed faults: {summary:?}\nmixed faults: fds {} before, {} after ({} at once); \
         threads {} before, {} after ({} at once); bytes live {live_before} before, \
         {live_after} after ({} at once)",
        fds_before.len(),
        fds_after.len(),
        at_once.0,
        threads_before.len(),
        threads_after.len(),
        at_once.1,
        at_once.2,
    );
    let new_fds: Vec<_> = fds_after
        .iter()
        .filter(|(fd, target)| fds_before.get(fd) != Some(target))
        .collect();
    assert_eq!(
        fds_after.len(),
        fds_before.len(),
        "file descriptors left after shutdown and drop, over {} reconnects of the worker \
         and {} connections: new {new_fds:?}",
        summary.worker.reconnects,
        summary.connections,
    );
    if count == Count::FdsAndThreads {
        let new_threads: Vec<_> = threads_after
            .iter()
            .filter(|(tid, _)| !threads_before.contains_key(tid))
            .collect();
        assert_eq!(
            threads_after.len(),
            threads_before.len(),
            "threads left after shutdown and drop: {new_threads:?}"
        );
    }
    if counting_bytes {
        assert!(
            live_after - live_before <= LIVE_BYTES_SLACK,
            "{} bytes more live after shutdown and drop, over {} reconnects of the worker \
             and {} connections",
            live_after - live_before,
            summary.worker.reconnects,
            summary.connections,
        );
    }
    summary
}

/// A short run without faults: producers and a worker on a plain server
/// until a few jobs went through, then stopped.
fn warm_up<A: SoakClients>() {
    let server = Server::start();
    let ledger = Arc::new(Ledger::default());
    let plan = Plan {
        url: server.url(),
        tube: "warm-up".into(),
        producers: 1,
        slots: 1,
        options: Options::default(),
        put_pause: Duration::from_millis(1),
        work: Duration::ZERO,
        slow_every: 0,
        slow_work: Duration::ZERO,
        grace: Duration::from_secs(1),
        ledger: Arc::clone(&ledger),
    };
    let mut clients = A::start(plan);
    let warmed = wait_until(Duration::from_secs(5), || ledger.handled().len() >= 10);
    clients.stop_producers();
    clients.stop_worker();
    assert!(warmed, "no job went through in the warm-up");
    clients
        .join_within(STOP_LIMIT)
        .expect("the warm-up's clients stop");
}
