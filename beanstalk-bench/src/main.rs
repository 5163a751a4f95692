//! Throughput runner for beanstalk-rs: every adapter measured against a
//! minimal std-only client, in one run.
//!
//! ```sh
//! cargo run --release -p beanstalk-bench -- [--jobs 100000] [--repeat 3] [--json]
//! ```
//!
//! For each case (adapter x mode x workload x placement) the runner starts a
//! private beanstalkd (unless `--addr` is given), pins it to the first CPU,
//! preloads the case's fresh tube when the workload needs jobs, and runs the
//! case in a fresh child process (this executable, re-executed with a hidden
//! `--case` argument) pinned to the second CPU (cross-core) or to the
//! server's (same-core). The child reports its wall time, CPU time and peak
//! memory; the parent checks the tube holds what the case should have left,
//! and repeats every case `--repeat` times, cycling through all cases each
//! time so drift affects them alike, and starting each group of compared
//! cases one adapter further on each time, so that none always runs first.
//! It prints a Markdown table of medians, each also as a ratio to the raw
//! client in the same mode and placement, and the issue's targets, met or
//! missed; `--json` prints one JSON object per case instead (the table then
//! goes to stderr). `--modes bursts` adds pipelined puts in bursts after
//! idle spells, which the issue's targets do not cover: a check that
//! batching reads never stalls a client once its connection has gone
//! quiet.
//!
//! Run `--help` for the options.

use std::collections::BTreeMap;
use std::error::Error as StdError;
use std::io::Write as _;
use std::net::{SocketAddr, ToSocketAddrs};
use std::process::{Command, ExitCode, Stdio};
use std::time::Instant;

mod case;
mod clients;
mod raw;
mod report;
mod server;
mod sys;

use case::{Adapter, Meter, Mode, Placement, Spec, Workload};
use report::{Key, Sample};

type Result<T = ()> = std::result::Result<T, Box<dyn StdError + Send + Sync>>;

const USAGE: &str = "\
usage: beanstalk-bench [options]

  --jobs N          jobs for W1 (put 100 B) and W2 (reserve+delete)   [100000]
  --large-jobs N    jobs for W3 (put 60,000 B)                        [jobs/20]
  --repeat N        runs of each case; the median is reported          [3]
  --adapters LIST   raw,blocking,tokio,tokio-shared,smol,smol-shared   [all]
  --workloads LIST  w1,w2,w3                                           [all]
  --modes LIST      rr,pipelined,bursts                                [rr,pipelined]
  --bursts N        bursts of W1 puts in bursts mode, 300 ms apart     [20]
  --burst N         puts per burst                                     [300]
  --placements LIST cross,same (cross needs two CPUs)                  [both, or same]
  --window N        most jobs reserved at once in pipelined W2         [64]
  --tasks N         tasks sharing a connection (*-shared), W1 and W2   [64]
  --large-tasks N   the same for W3, so at most N x 60 KB is in flight [4]
  --batch N         commands per execute_many call (0: one call)       [16384]
  --addr HOST:PORT  use this server (not restarted, not pinned; tubes are drained)
  --json            one JSON object per case on stdout (table on stderr)
";

/// Parsed command line.
#[derive(Debug, Clone)]
struct Args {
    jobs: u64,
    large_jobs: Option<u64>,
    repeat: usize,
    adapters: Vec<Adapter>,
    workloads: Vec<Workload>,
    modes: Vec<Mode>,
    placements: Option<Vec<Placement>>,
    window: usize,
    tasks: usize,
    large_tasks: usize,
    batch: usize,
    bursts: u64,
    burst: usize,
    addr: Option<String>,
    json: bool,
}

impl Default for Args {
    fn default() -> Self {
        Self {
            jobs: 100_000,
            large_jobs: None,
            repeat: 3,
            adapters: Adapter::ALL.to_vec(),
            workloads: Workload::ALL.to_vec(),
            modes: Mode::DEFAULT.to_vec(),
            placements: None,
            window: 64,
            tasks: 64,
            large_tasks: 4,
            batch: 16_384,
            bursts: 20,
            burst: 300,
            addr: None,
            json: false,
        }
    }
}

fn parse_list<T: Copy>(value: &str, all: &[T], name: impl Fn(T) -> &'static str) -> Result<Vec<T>> {
    value
        .split(',')
        .map(|item| {
            let item = item.trim().to_ascii_lowercase();
            all.iter()
                .copied()
                .find(|candidate| {
                    let full = name(*candidate).to_ascii_lowercase();
                    full == item
                        || full.strip_suffix("-core") == Some(item.as_str())
                        || (item == "rr" && full == "request-response")
                })
                .ok_or_else(|| format!("unknown value {item:?}").into())
        })
        .collect()
}

fn parse_args(mut raw: impl Iterator<Item = String>) -> Result<Args> {
    let mut args = Args::default();
    while let Some(flag) = raw.next() {
        let mut value = || raw.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--jobs" => args.jobs = value()?.parse()?,
            "--large-jobs" => args.large_jobs = Some(value()?.parse()?),
            "--repeat" => args.repeat = value()?.parse::<usize>()?.max(1),
            "--adapters" => args.adapters = parse_list(&value()?, &Adapter::ALL, Adapter::name)?,
            "--workloads" => {
                args.workloads = parse_list(&value()?, &Workload::ALL, Workload::name)?;
            }
            "--modes" => args.modes = parse_list(&value()?, &Mode::ALL, Mode::name)?,
            "--placements" => {
                args.placements = Some(parse_list(&value()?, &Placement::ALL, Placement::name)?);
            }
            "--window" => args.window = value()?.parse::<usize>()?.max(1),
            "--tasks" => args.tasks = value()?.parse::<usize>()?.max(1),
            "--large-tasks" => args.large_tasks = value()?.parse::<usize>()?.max(1),
            "--batch" => args.batch = value()?.parse()?,
            "--bursts" => args.bursts = value()?.parse::<u64>()?.max(1),
            "--burst" => args.burst = value()?.parse::<usize>()?.max(1),
            "--addr" => args.addr = Some(value()?),
            "--json" => args.json = true,
            "-h" | "--help" => {
                print!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?}\n{USAGE}").into()),
        }
    }
    // No jobs is no measurement: rates of 0, ratios of 0/0, and the CPU of
    // setting up reported as CPU per job.
    if args.jobs == 0 || args.large_jobs == Some(0) {
        return Err("--jobs and --large-jobs must be at least 1".into());
    }
    Ok(args)
}

/// `host:port` (or `beanstalk://host:port`) to a socket address.
pub(crate) fn resolve(addr: &str) -> Result<SocketAddr> {
    let bare = addr.strip_prefix("beanstalk://").unwrap_or(addr);
    bare.to_socket_addrs()?
        .next()
        .ok_or_else(|| format!("{addr} resolves to no address").into())
}

fn main() -> ExitCode {
    let mut argv = std::env::args().skip(1).peekable();
    let outcome = if argv.peek().map(String::as_str) == Some("--case") {
        argv.next();
        child(argv)
    } else {
        parse_args(argv).and_then(parent)
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("beanstalk-bench: {error}");
            ExitCode::FAILURE
        }
    }
}

// ---- the child: one measured run ----

/// `--case adapter mode workload jobs addr tube window tasks batch burst cpu`
fn child(mut argv: impl Iterator<Item = String>) -> Result {
    let mut next = || argv.next().ok_or("--case: missing field");
    let adapter = parse_list(&next()?, &Adapter::ALL, Adapter::name)?[0];
    let mode = parse_list(&next()?, &Mode::ALL, Mode::name)?[0];
    let workload = parse_list(&next()?, &Workload::ALL, Workload::name)?[0];
    let jobs = next()?.parse()?;
    let addr = next()?;
    let tube = next()?;
    let window = next()?.parse()?;
    let tasks = next()?.parse::<usize>()?.max(1);
    let batch = next()?.parse()?;
    let burst = next()?.parse()?;
    let cpu: i64 = next()?.parse()?;
    if let Ok(cpu) = usize::try_from(cpu) {
        // Before any thread exists, so every thread inherits it.
        sys::pin(0, cpu)?;
    }
    let spec = Spec {
        adapter,
        mode,
        workload,
        jobs,
        addr,
        tube,
        window,
        tasks,
        batch,
        burst,
    };
    let mut meter = Meter::default();
    clients::run(&spec, &mut meter)?;
    println!(
        "RESULT {} {} {}",
        meter.elapsed.as_nanos(),
        meter.cpu.as_nanos(),
        sys::peak_rss_kib()
    );
    Ok(())
}

// ---- the parent: every case, repeated ----

/// One case to run in each repetition.
#[derive(Debug, Clone, Copy)]
struct Case {
    placement: Placement,
    workload: Workload,
    mode: Mode,
    adapter: Adapter,
}

fn parent(args: Args) -> Result {
    let cpus = sys::allowed_cpus();
    let placements = args.placements.clone().unwrap_or_else(|| {
        if cpus.len() >= 2 {
            Placement::ALL.to_vec()
        } else {
            vec![Placement::SameCore]
        }
    });
    if placements.contains(&Placement::CrossCore) && cpus.len() < 2 {
        return Err("cross-core placement needs two CPUs".into());
    }
    let (server_cpu, client_cpu) = (cpus[0], cpus.get(1).copied().unwrap_or(cpus[0]));
    let large_jobs = args.large_jobs.unwrap_or((args.jobs / 20).max(1));

    // Groups of cases compared with each other: one placement, workload
    // and mode, every adapter (the raw baseline among them) side by side.
    let mut groups = Vec::new();
    for &placement in &placements {
        for &workload in &args.workloads {
            for &mode in args.modes.iter().filter(|mode| mode.runs(workload)) {
                let mut adapters = args.adapters.clone();
                adapters.sort();
                adapters.dedup();
                let group: Vec<Case> = adapters
                    .into_iter()
                    .filter(|a| a.runs(mode))
                    .map(|adapter| Case {
                        placement,
                        workload,
                        mode,
                        adapter,
                    })
                    .collect();
                groups.push(group);
            }
        }
    }
    let cases_per_repetition: usize = groups.iter().map(Vec::len).sum();

    let load_before = sys::load_average();
    let started = Instant::now();
    let mut samples: BTreeMap<Key, Vec<Sample>> = BTreeMap::new();
    let total = cases_per_repetition * args.repeat;
    for repetition in 0..args.repeat {
        // Each repetition starts every group one adapter further on, so no
        // adapter always runs first, right after another group's cases.
        // With raw always first, raw one-at-a-time puts same-core came out
        // 10-15% above the blocking client in 4 of 5 runs, though both
        // make exactly the same syscalls.
        let cases = groups.iter().flat_map(|group| {
            let (tail, head) = group.split_at(repetition % group.len().max(1));
            head.iter().chain(tail)
        });
        for (index, case) in cases.enumerate() {
            let jobs = if case.mode == Mode::Bursts {
                args.bursts * args.burst as u64
            } else if case.workload == Workload::W3 {
                large_jobs
            } else {
                args.jobs
            };
            let run = repetition * cases_per_repetition + index + 1;
            eprint!(
                "[{run}/{total}] {} {} {} {} x{jobs} ... ",
                case.placement.name(),
                case.workload.name(),
                case.mode.name(),
                case.adapter.name()
            );
            let _ = std::io::stderr().flush();
            let client_cpu = match case.placement {
                Placement::CrossCore => client_cpu,
                Placement::SameCore => server_cpu,
            };
            let sample = run_case(&args, case, jobs, repetition, index, server_cpu, client_cpu)
                .map_err(|error| {
                    format!(
                        "{} {} {} {}: {error}",
                        case.placement.name(),
                        case.workload.name(),
                        case.mode.name(),
                        case.adapter.name()
                    )
                })?;
            eprintln!(
                "{:.0} jobs/s, {:.2} us CPU/job, {} KiB",
                sample.jobs_per_s(),
                sample.cpu_us_per_job(),
                sample.peak_rss_kib
            );
            samples
                .entry(Key {
                    placement: case.placement,
                    workload: case.workload,
                    mode: case.mode,
                    adapter: case.adapter,
                })
                .or_default()
                .push(sample);
        }
    }
    let load_after = sys::load_average();

    let summary = report::summarize(&samples);
    let context = report::Context {
        jobs: args.jobs,
        large_jobs,
        repeat: args.repeat,
        window: args.window,
        tasks: args.tasks,
        large_tasks: args.large_tasks,
        batch: args.batch,
        external: args.addr.clone(),
        server_cpu,
        client_cpu,
        load_before,
        load_after,
        seconds: started.elapsed().as_secs_f64(),
    };
    let table = report::markdown(&summary, &context);
    if args.json {
        eprint!("{table}");
        let stdout = std::io::stdout();
        let mut out = stdout.lock();
        for row in &summary {
            writeln!(out, "{}", report::json(row))?;
        }
    } else {
        print!("{table}");
    }
    Ok(())
}

/// Runs one case once: a fresh server (or tube), preload, the child, checks.
fn run_case(
    args: &Args,
    case: &Case,
    jobs: u64,
    repetition: usize,
    index: usize,
    server_cpu: usize,
    client_cpu: usize,
) -> Result<Sample> {
    // Dropping `server` at the end of the case kills it.
    let (server, addr) = match &args.addr {
        Some(addr) => (None, resolve(addr)?),
        None => {
            let server = server::Server::start()?;
            sys::pin(i32::try_from(server.pid())?, server_cpu)?;
            let addr = server.addr();
            (Some(server), addr)
        }
    };
    let tube = format!("bench-{}-{repetition}-{index}", std::process::id());

    // This connection uses and watches the tube for the whole case, so the
    // server keeps the tube (and its counters) even once it is empty.
    let mut keeper = raw::Conn::connect(addr)?;
    keeper.select_tube(&tube)?;
    if case.workload == Workload::W2 {
        keeper.put_pipelined(&Workload::W2.body(), jobs)?;
    }

    let output = Command::new(std::env::current_exe()?)
        .arg("--case")
        .args([
            case.adapter.name(),
            case.mode.name(),
            case.workload.name(),
            &jobs.to_string(),
            &addr.to_string(),
            &tube,
            &args.window.to_string(),
            &if case.workload == Workload::W3 {
                args.large_tasks
            } else {
                args.tasks
            }
            .to_string(),
            &args.batch.to_string(),
            &args.burst.to_string(),
            &client_cpu.to_string(),
        ])
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()?;
    if !output.status.success() {
        return Err(format!("the case's process failed ({})", output.status).into());
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let fields: Vec<u64> = stdout
        .lines()
        .find_map(|line| line.strip_prefix("RESULT "))
        .ok_or("the case's process printed no result")?
        .split_whitespace()
        .map(str::parse)
        .collect::<std::result::Result<_, _>>()?;
    let [elapsed_ns, cpu_ns, peak_rss_kib] = fields[..] else {
        return Err("malformed result line".into());
    };

    // The tube must hold exactly what the case leaves: every put job, or none.
    let stats = keeper.stats_tube(&tube)?;
    let stat = |key: &str| {
        stats
            .get(key)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(u64::MAX)
    };
    let expected_ready = if case.workload == Workload::W2 {
        0
    } else {
        jobs
    };
    if stat("current-jobs-ready") != expected_ready
        || stat("current-jobs-reserved") != 0
        || stat("total-jobs") != jobs
    {
        return Err(format!("tube {tube} holds the wrong jobs afterwards: {stats:?}").into());
    }
    if server.is_none() && expected_ready > 0 {
        // A shared server: leave it as it was found.
        keeper.reserve_delete_pipelined(expected_ready, args.window)?;
    }
    Ok(Sample {
        jobs,
        elapsed_ns,
        cpu_ns,
        peak_rss_kib,
    })
}
