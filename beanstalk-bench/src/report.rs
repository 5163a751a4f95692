//! Medians, ratios to the raw client, the Markdown table, JSON lines and
//! the targets.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::case::{Adapter, Mode, Placement, Workload};

/// Identifies a case across repetitions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Key {
    pub(crate) placement: Placement,
    pub(crate) workload: Workload,
    pub(crate) mode: Mode,
    pub(crate) adapter: Adapter,
}

/// One run of one case, as the child measured it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sample {
    pub(crate) jobs: u64,
    pub(crate) elapsed_ns: u64,
    pub(crate) cpu_ns: u64,
    pub(crate) peak_rss_kib: u64,
}

impl Sample {
    pub(crate) fn jobs_per_s(&self) -> f64 {
        self.jobs as f64 / (self.elapsed_ns.max(1) as f64 / 1e9)
    }

    pub(crate) fn cpu_us_per_job(&self) -> f64 {
        self.cpu_ns as f64 / 1e3 / self.jobs.max(1) as f64
    }
}

/// A case's figures over its repetitions.
#[derive(Debug, Clone)]
pub(crate) struct Row {
    pub(crate) key: Key,
    pub(crate) jobs: u64,
    pub(crate) median_jobs_per_s: f64,
    pub(crate) min_jobs_per_s: f64,
    pub(crate) max_jobs_per_s: f64,
    pub(crate) ratio_vs_raw: Option<f64>,
    pub(crate) cpu_us_per_job: f64,
    pub(crate) cpu_ratio_vs_raw: Option<f64>,
    /// The highest peak of any run.
    pub(crate) peak_rss_kib: u64,
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    match n {
        0 => f64::NAN,
        _ if n % 2 == 1 => values[n / 2],
        _ => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

/// Medians per case, and ratios to the raw client of the same placement,
/// workload and mode.
pub(crate) fn summarize(samples: &BTreeMap<Key, Vec<Sample>>) -> Vec<Row> {
    let mut rows: Vec<Row> = samples
        .iter()
        .map(|(key, runs)| {
            let rates: Vec<f64> = runs.iter().map(Sample::jobs_per_s).collect();
            Row {
                key: *key,
                jobs: runs.first().map_or(0, |s| s.jobs),
                median_jobs_per_s: median(rates.clone()),
                min_jobs_per_s: rates.iter().copied().fold(f64::INFINITY, f64::min),
                max_jobs_per_s: rates.iter().copied().fold(0.0, f64::max),
                ratio_vs_raw: None,
                cpu_us_per_job: median(runs.iter().map(Sample::cpu_us_per_job).collect()),
                cpu_ratio_vs_raw: None,
                peak_rss_kib: runs.iter().map(|s| s.peak_rss_kib).max().unwrap_or(0),
            }
        })
        .collect();
    let raw: BTreeMap<Key, (f64, f64)> = rows
        .iter()
        .filter(|row| row.key.adapter == Adapter::Raw)
        .map(|row| (row.key, (row.median_jobs_per_s, row.cpu_us_per_job)))
        .collect();
    for row in &mut rows {
        let raw_key = Key {
            adapter: Adapter::Raw,
            ..row.key
        };
        if let Some(&(rate, cpu)) = raw.get(&raw_key) {
            row.ratio_vs_raw = Some(row.median_jobs_per_s / rate);
            row.cpu_ratio_vs_raw = Some(row.cpu_us_per_job / cpu);
        }
    }
    rows
}

/// What the run was, for the table's header.
#[derive(Debug, Clone)]
pub(crate) struct Context {
    pub(crate) jobs: u64,
    pub(crate) large_jobs: u64,
    pub(crate) repeat: usize,
    pub(crate) window: usize,
    pub(crate) tasks: usize,
    pub(crate) large_tasks: usize,
    pub(crate) batch: usize,
    pub(crate) external: Option<String>,
    pub(crate) server_cpu: usize,
    pub(crate) client_cpu: usize,
    pub(crate) load_before: Option<[f64; 3]>,
    pub(crate) load_after: Option<[f64; 3]>,
    pub(crate) seconds: f64,
}

fn load(load: Option<[f64; 3]>) -> String {
    load.map_or_else(
        || "unknown".to_owned(),
        |[one, five, fifteen]| format!("{one:.2} {five:.2} {fifteen:.2}"),
    )
}

fn ratio(value: Option<f64>) -> String {
    value.map_or_else(|| "-".to_owned(), |r| format!("{r:.3}"))
}

/// The targets: (mode, placement, workloads, least ratio to raw).
const THROUGHPUT_TARGETS: [(Mode, Placement, &[Workload], f64); 4] = [
    (
        Mode::RequestResponse,
        Placement::CrossCore,
        &[Workload::W1, Workload::W2],
        0.97,
    ),
    (
        Mode::RequestResponse,
        Placement::SameCore,
        &[Workload::W1, Workload::W2],
        0.97,
    ),
    (
        Mode::Pipelined,
        Placement::CrossCore,
        &[Workload::W1, Workload::W2, Workload::W3],
        0.97,
    ),
    (
        Mode::Pipelined,
        Placement::SameCore,
        &[Workload::W1, Workload::W2],
        0.90,
    ),
];

/// Most client CPU per pipelined job, as a ratio to the raw client's.
const CPU_TARGET: f64 = 1.2;

/// The Markdown report: how the run was made, the table, the targets.
pub(crate) fn markdown(rows: &[Row], context: &Context) -> String {
    let mut out = String::new();
    let server = match &context.external {
        Some(addr) => format!("external server at {addr} (not pinned)"),
        None => format!(
            "private beanstalkd per case pinned to CPU {}",
            context.server_cpu
        ),
    };
    let _ = writeln!(out, "\n## beanstalk-bench\n");
    let _ = writeln!(
        out,
        "{server}; client process pinned to CPU {} (cross-core) or CPU {} (same-core). \
         W1 = {} puts of 100 B, W2 = reserve+delete of {} preloaded 100 B jobs, W3 = {} puts of 60,000 B. \
         Median of {} runs per case; pipelined W2 keeps at most {} jobs reserved; shared handles: {} tasks ({} for W3); \
         execute_many batches of {}. Load average before: {}, after: {} ({:.0} s).\n",
        context.client_cpu,
        context.server_cpu,
        context.jobs,
        context.jobs,
        context.large_jobs,
        context.repeat,
        context.window,
        context.tasks,
        context.large_tasks,
        if context.batch == 0 {
            "all jobs".to_owned()
        } else {
            context.batch.to_string()
        },
        load(context.load_before),
        load(context.load_after),
        context.seconds,
    );
    let _ = writeln!(
        out,
        "| placement | workload | mode | adapter | jobs | jobs/s (median) | min-max | x raw | CPU us/job | CPU x raw | peak RSS KiB |"
    );
    let _ = writeln!(out, "|---|---|---|---|--:|--:|--:|--:|--:|--:|--:|");
    for row in rows {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {:.0} | {:.0}-{:.0} | {} | {:.2} | {} | {} |",
            row.key.placement.name(),
            row.key.workload.name(),
            row.key.mode.name(),
            row.key.adapter.name(),
            row.jobs,
            row.median_jobs_per_s,
            row.min_jobs_per_s,
            row.max_jobs_per_s,
            ratio(row.ratio_vs_raw),
            row.cpu_us_per_job,
            ratio(row.cpu_ratio_vs_raw),
            row.peak_rss_kib,
        );
    }
    let _ = writeln!(out, "\nWorkloads: {}.", {
        let names: Vec<String> = Workload::ALL
            .iter()
            .map(|w| format!("{} {}", w.name(), w.describe()))
            .collect();
        names.join("; ")
    });

    let mut met = Vec::new();
    let mut missed = Vec::new();
    for row in rows.iter().filter(|row| row.key.adapter != Adapter::Raw) {
        let name = format!(
            "{} {} {} {}",
            row.key.placement.name(),
            row.key.workload.name(),
            row.key.mode.name(),
            row.key.adapter.name()
        );
        for (mode, placement, workloads, least) in THROUGHPUT_TARGETS {
            if row.key.mode == mode
                && row.key.placement == placement
                && workloads.contains(&row.key.workload)
            {
                if let Some(r) = row.ratio_vs_raw {
                    let line = format!("{name}: {r:.3}x raw jobs/s (target >= {least})");
                    if r >= least { &mut met } else { &mut missed }.push(line);
                }
            }
        }
        if row.key.mode == Mode::Pipelined {
            if let Some(r) = row.cpu_ratio_vs_raw {
                let line = format!("{name}: {r:.2}x raw CPU/job (target <= {CPU_TARGET})");
                if r <= CPU_TARGET {
                    &mut met
                } else {
                    &mut missed
                }
                .push(line);
            }
        }
    }
    let _ = writeln!(
        out,
        "\nTargets: {} met, {} missed.",
        met.len(),
        missed.len()
    );
    for line in &missed {
        let _ = writeln!(out, "- missed: {line}");
    }
    out
}

/// One case as a JSON object.
pub(crate) fn json(row: &Row) -> String {
    let number = |value: Option<f64>, digits: usize| {
        value
            .filter(|v| v.is_finite())
            .map_or_else(|| "null".to_owned(), |v| format!("{v:.digits$}"))
    };
    format!(
        "{{\"adapter\":\"{}\",\"mode\":\"{}\",\"placement\":\"{}\",\"workload\":\"{}\",\"jobs\":{},\
         \"median_jobs_per_s\":{},\"ratio_vs_raw\":{},\"client_cpu_us_per_job\":{},\"peak_rss_kib\":{}}}",
        row.key.adapter.name(),
        row.key.mode.name(),
        row.key.placement.name(),
        row.key.workload.name(),
        row.jobs,
        number(Some(row.median_jobs_per_s), 1),
        number(row.ratio_vs_raw, 4),
        number(Some(row.cpu_us_per_job), 3),
        row.peak_rss_kib,
    )
}
