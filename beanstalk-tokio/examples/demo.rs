//! Pushes real jobs through a real beanstalkd and reports what happened.
//!
//! A producer puts jobs through one shared, pipelined connection while a
//! pool of workers, each on its own connection, reserves and deletes them.
//! Progress is shown live; at the end come throughput, put-to-delete
//! latency percentiles, and the tube's stats as the server reports them.
//!
//! Uses `BEANSTALKD_URL` when it is set; otherwise starts a private
//! beanstalkd on a free port and stops it afterwards.
//!
//! ```sh
//! cargo xtask demo -- --jobs 50000 --workers 8 --body-size 200 --tube demo
//! ```

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use beanstalk_test_support::Server;
use beanstalk_tokio::{AsyncCommands, Client, Error, PutOptions, SharedClient};
use tokio::sync::Mutex;

struct Args {
    jobs: u64,
    workers: usize,
    body_size: usize,
    tube: String,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        jobs: 20_000,
        workers: 4,
        body_size: 100,
        tube: "demo".to_owned(),
    };
    let mut words = std::env::args().skip(1);
    while let Some(flag) = words.next() {
        let mut value = || words.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--jobs" => args.jobs = value()?.parse().map_err(|e| format!("--jobs: {e}"))?,
            "--workers" => {
                args.workers = value()?.parse().map_err(|e| format!("--workers: {e}"))?
            }
            "--body-size" => {
                args.body_size = value()?.parse().map_err(|e| format!("--body-size: {e}"))?
            }
            "--tube" => args.tube = value()?,
            "--help" | "-h" => {
                return Err("options: --jobs N (20000) --workers N (4) --body-size BYTES (100) --tube NAME (demo)".into());
            }
            other => return Err(format!("unknown option {other}; try --help")),
        }
    }
    if args.workers == 0 || args.body_size < 8 {
        return Err("--workers must be at least 1 and --body-size at least 8".into());
    }
    Ok(args)
}

#[tokio::main]
async fn main() {
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("{message}");
            std::process::exit(2);
        }
    };
    if let Err(error) = run(args).await {
        eprintln!("\ndemo failed: {error}");
        std::process::exit(1);
    }
}

async fn run(args: Args) -> Result<(), Error> {
    // Keep a private server alive for the whole run when none is configured.
    let (address, _server) = match std::env::var("BEANSTALKD_URL") {
        Ok(url) if !url.trim().is_empty() => (url, None),
        _ => {
            let server = Server::start();
            println!(
                "started a private beanstalkd (pid {}) at {}",
                server.pid(),
                server.url()
            );
            (server.url(), Some(server))
        }
    };
    println!(
        "{} jobs of {} bytes into tube {:?}, {} workers, server {address}\n",
        args.jobs, args.body_size, args.tube, args.workers
    );

    let epoch = Instant::now();
    let deleted = Arc::new(AtomicU64::new(0));
    // Capped: `--jobs` may be larger than memory; the vector grows as needed.
    let latencies = Arc::new(Mutex::new(Vec::with_capacity(
        args.jobs.min(1 << 20) as usize
    )));
    // Set by the worker that deletes the last job, or by a producer that
    // failed; idle workers stop waiting. With no jobs there is nothing to wait for.
    let (done_tx, done_rx) = tokio::sync::watch::channel(args.jobs == 0);

    let mut workers = Vec::new();
    for _ in 0..args.workers {
        let mut client = Client::connect(&address).await?;
        client.watch(args.tube.as_str()).await?;
        if args.tube != "default" {
            client.ignore("default").await?;
        }
        let (deleted, latencies) = (Arc::clone(&deleted), Arc::clone(&latencies));
        let (total, done_tx, mut done_rx) = (args.jobs, done_tx.clone(), done_rx.clone());
        workers.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                // Dropping a waiting reserve closes its connection and the
                // server keeps the job for others, so racing it is safe.
                let job = tokio::select! {
                    job = client.reserve_with_timeout(1) => job,
                    _ = done_rx.wait_for(|done| *done) => break,
                };
                let job = match job {
                    Ok(job) => job,
                    Err(Error::TimedOut) => continue,
                    Err(error) => return Err(error),
                };
                client.delete(job.id).await?;
                let put_at = u64::from_le_bytes(job.body[..8].try_into().expect("8-byte stamp"));
                mine.push(epoch.elapsed().as_micros() as u64 - put_at);
                if deleted.fetch_add(1, Ordering::Relaxed) + 1 == total {
                    done_tx.send_replace(true);
                }
            }
            latencies.lock().await.extend(mine);
            Ok::<_, Error>(())
        }));
    }

    let producer = SharedClient::connect(&address).await?;
    let producers: Vec<_> = (0..16u64)
        .map(|lane| {
            let mut client = producer.clone();
            let (tube, jobs, size) = (args.tube.clone(), args.jobs, args.body_size);
            let done_tx = done_tx.clone();
            tokio::spawn(async move {
                let result = async {
                    client.use_tube(tube.as_str()).await?;
                    let mut body = vec![b'.'; size];
                    for _ in (lane..jobs).step_by(16) {
                        let stamp = epoch.elapsed().as_micros() as u64;
                        body[..8].copy_from_slice(&stamp.to_le_bytes());
                        client.put(&body[..], PutOptions::default()).await?;
                    }
                    Ok::<_, Error>(())
                }
                .await;
                // A failed put (a body over the server's max-job-size, say)
                // means the last job never comes: stop waiting for it.
                if result.is_err() {
                    done_tx.send_replace(true);
                }
                result
            })
        })
        .collect();

    let started = Instant::now();
    let mut monitor = producer.clone();
    let mut finished = done_rx.clone();
    loop {
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(200)) => {}
            _ = finished.wait_for(|done| *done) => break,
        }
        let stats = monitor.stats_tube(args.tube.as_str()).await.ok();
        draw_progress(
            deleted.load(Ordering::Relaxed),
            args.jobs,
            started.elapsed(),
            stats.as_ref(),
        );
        if workers.iter().all(|w| w.is_finished()) {
            break;
        }
    }
    // Measured when the last job was deleted, before the idle workers stop.
    let elapsed = started.elapsed();
    for task in producers {
        task.await.expect("producer panicked")?;
    }
    for worker in workers {
        worker.await.expect("worker panicked")?;
    }
    draw_progress(deleted.load(Ordering::Relaxed), args.jobs, elapsed, None);
    println!("\n");

    let mut latencies = latencies.lock().await.clone();
    latencies.sort_unstable();
    let percentile = |p: f64| {
        latencies
            .get(((latencies.len() as f64 - 1.0) * p) as usize)
            .copied()
            .unwrap_or(0)
    };
    println!(
        "throughput  {:.0} jobs/s ({} jobs in {:.2} s)",
        args.jobs as f64 / elapsed.as_secs_f64(),
        args.jobs,
        elapsed.as_secs_f64()
    );
    println!(
        "latency     put -> delete: p50 {} µs, p90 {} µs, p99 {} µs, max {} µs",
        percentile(0.50),
        percentile(0.90),
        percentile(0.99),
        latencies.last().copied().unwrap_or(0)
    );
    match monitor.stats_tube(args.tube.as_str()).await {
        Ok(tube) => println!(
            "server      tube {}: total-jobs {}, ready {}, reserved {}, buried {}, cmd-delete {}",
            tube.name,
            tube.total_jobs,
            tube.current_jobs_ready,
            tube.current_jobs_reserved,
            tube.current_jobs_buried,
            tube.cmd_delete
        ),
        // An empty tube nobody watches any more is freed by the server.
        Err(Error::NotFound) => println!(
            "server      tube {} is empty and no longer exists",
            args.tube
        ),
        Err(error) => return Err(error),
    }
    let stats = monitor.stats().await?;
    println!(
        "server      beanstalkd {} total-jobs {}, cmd-put {}, cmd-reserve-with-timeout {}, cmd-delete {}",
        stats.version,
        stats.total_jobs,
        stats.cmd_put,
        stats.cmd_reserve_with_timeout,
        stats.cmd_delete
    );
    Ok(())
}

fn draw_progress(
    done: u64,
    total: u64,
    elapsed: Duration,
    tube: Option<&beanstalk_tokio::TubeStats>,
) {
    const WIDTH: u64 = 40;
    let filled = (done * WIDTH).checked_div(total).unwrap_or(WIDTH) as usize;
    let rate = done as f64 / elapsed.as_secs_f64().max(1e-9);
    let queue = tube.map_or(String::new(), |t| {
        format!(
            " ready {:>6} reserved {:>3}",
            t.current_jobs_ready, t.current_jobs_reserved
        )
    });
    print!(
        "\r[{}{}] {done:>8}/{total} {rate:>8.0} jobs/s{queue}",
        "#".repeat(filled),
        " ".repeat(WIDTH as usize - filled)
    );
    let _ = std::io::stdout().flush();
}
