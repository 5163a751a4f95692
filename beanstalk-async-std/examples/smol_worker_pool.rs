//! A worker pool on smol: 8 jobs at once from the tube `example-jobs`,
//! failed jobs retried with backoff and buried at the third try, long jobs
//! touched, broken connections replaced (restart beanstalkd while it runs:
//! it carries on). It shuts down gracefully once no job has come for 5 s.
//!
//! ```sh
//! beanstalkd -l 127.0.0.1 -p 11300 &
//! cargo run -p beanstalk-async-std --example smol_producer
//! cargo run -p beanstalk-async-std --example smol_worker_pool
//! ```
//!
//! Connects to `BEANSTALKD_URL`, or `127.0.0.1:11300` when it is unset.

use std::time::Duration;

use beanstalk_async_std::proto::Endpoint;
use beanstalk_async_std::proto::retry::Backoff;
use beanstalk_async_std::worker::{Shutdown, Worker, WorkerJob};
use beanstalk_async_std::{Error, Outcome};

const TUBE: &str = "example-jobs";
/// How long the pool may go without a job before it stops.
const IDLE: Duration = Duration::from_secs(5);

fn main() -> Result<(), Error> {
    smol::block_on(async {
        let address = Endpoint::from_env()?.to_string();
        let worker = Worker::builder(&address)
            .tube(TUBE)
            .concurrency(8)
            .max_attempts(3)
            .release_backoff(Backoff::new(
                Duration::from_secs(2),
                Duration::from_secs(60),
            ))
            .build()?;
        let counters = worker.counters();
        let shutdown = Shutdown::new();
        // Stop once the counters have not moved for IDLE.
        smol::spawn({
            let shutdown = shutdown.clone();
            async move {
                let mut last = counters.snapshot();
                loop {
                    smol::Timer::after(IDLE).await;
                    let now = counters.snapshot();
                    if now == last {
                        eprintln!("no job for {IDLE:?}: stopping");
                        shutdown.trigger();
                        return;
                    }
                    eprintln!("{now:?}");
                    last = now;
                }
            }
        })
        .detach();

        eprintln!("{address}: working on {TUBE}");
        let totals = worker.run(handle, shutdown).await;
        eprintln!("stopped: {totals:?}");
        Ok(())
    })
}

/// The job's work. `Ok(())` deletes the job; an error releases it with a
/// growing delay, and buries it at the third try.
async fn handle(job: WorkerJob) -> Result<Outcome, String> {
    let text = std::str::from_utf8(job.body()).map_err(|e| e.to_string())?;
    println!("job {} (try {}): {text}", job.id(), job.attempt());
    match text {
        "fail" => Err("asked to fail".to_owned()),
        "" => Ok(Outcome::Bury),
        _ => Ok(Outcome::Delete),
    }
}
