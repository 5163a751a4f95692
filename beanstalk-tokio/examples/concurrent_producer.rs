//! Many tasks putting jobs through one shared, pipelined connection.
//!
//! ```sh
//! BEANSTALKD_URL=127.0.0.1:11300 cargo run --release -p beanstalk-tokio --example concurrent_producer -- 64 100000
//! ```

use std::time::Instant;

use beanstalk_tokio::{AsyncCommands, Endpoint, Error, Options, PutOptions, SharedClient};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let mut args = std::env::args().skip(1);
    let tasks: u64 = args.next().and_then(|n| n.parse().ok()).unwrap_or(64);
    let jobs: u64 = args.next().and_then(|n| n.parse().ok()).unwrap_or(100_000);

    let client = SharedClient::connect_endpoint(&Endpoint::from_env()?, Options::default()).await?;
    let started = Instant::now();
    let mut handles = Vec::new();
    for task in 0..tasks {
        let mut client = client.clone();
        let share = jobs / tasks + u64::from(task < jobs % tasks);
        handles.push(tokio::spawn(async move {
            client.use_tube("concurrent").await?;
            for i in 0..share {
                client
                    .put(format!("task {task} job {i}"), PutOptions::default())
                    .await?;
            }
            Ok::<_, Error>(())
        }));
    }
    for handle in handles {
        handle.await.expect("producer task panicked")?;
    }
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "{jobs} jobs from {tasks} tasks in {elapsed:.2} s: {:.0} jobs/s",
        jobs as f64 / elapsed
    );
    Ok(())
}
