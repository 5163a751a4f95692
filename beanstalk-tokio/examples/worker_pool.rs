//! A worker pool: reserves from one or more tubes, runs a handler per job
//! with several jobs at once, and shuts down gracefully on Ctrl-C or
//! SIGTERM. Connections that break are replaced (restart beanstalkd while
//! it runs: it carries on), long jobs are touched, failed jobs retried with
//! backoff and buried after 3 tries. Counters are printed every 5 s.
//!
//! ```sh
//! BEANSTALKD_URL=127.0.0.1:11300 cargo run -p beanstalk-tokio --example worker_pool -- emails sms
//! ```
//!
//! A body of `fail` makes the handler fail; `slow` takes 10 s.

use std::time::Duration;

use beanstalk_tokio::proto::Endpoint;
use beanstalk_tokio::proto::retry::Backoff;
use beanstalk_tokio::worker::{Shutdown, Worker, WorkerJob};
use beanstalk_tokio::{Error, Outcome};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let tubes: Vec<String> = std::env::args().skip(1).collect();
    let address = Endpoint::from_env()?.to_string();
    let worker = Worker::builder(&address)
        .tubes(tubes.clone())
        .concurrency(8)
        .max_attempts(3)
        .release_backoff(Backoff::new(
            Duration::from_secs(2),
            Duration::from_secs(60),
        ))
        .shutdown_grace(Duration::from_secs(20))
        .build()?;

    let counters = worker.counters();
    let shutdown = Shutdown::new();
    tokio::spawn({
        let shutdown = shutdown.clone();
        async move {
            wait_for_signal().await;
            eprintln!("stopping: no new jobs; in-flight jobs get 20 s");
            shutdown.trigger();
        }
    });
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(5)).await;
            eprintln!("{:?}", counters.snapshot());
        }
    });

    eprintln!("{address}: working on {tubes:?} (default when empty); Ctrl-C to stop");
    let totals = worker.run(handle, shutdown).await;
    eprintln!("stopped: {totals:?}");
    Ok(())
}

/// The job's work. `Ok(())` deletes the job; an error releases it with a
/// growing delay, and buries it at the third try.
async fn handle(job: WorkerJob) -> Result<Outcome, String> {
    let text = std::str::from_utf8(job.body()).map_err(|e| e.to_string())?;
    println!(
        "job {} from {} (try {}): {text}",
        job.id(),
        job.tube(),
        job.attempt()
    );
    match text {
        "fail" => Err("asked to fail".to_owned()),
        // Longer than a default 60 s TTR would allow? The worker touches it.
        "slow" => {
            tokio::time::sleep(Duration::from_secs(10)).await;
            Ok(Outcome::Delete)
        }
        // Not for us: put it aside for a person to look at.
        "" => Ok(Outcome::Bury),
        _ => Ok(Outcome::Delete),
    }
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}
