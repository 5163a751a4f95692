//! A worker on async-std: reserves jobs, processes them and deletes them, until
//! the tube has been empty for a few seconds.
//!
//! ```sh
//! beanstalkd -l 127.0.0.1 -p 11300 &
//! cargo run -p beanstalk-async-std --example async_std_producer
//! cargo run -p beanstalk-async-std --example async_std_worker
//! ```
//!
//! Connects to `BEANSTALKD_URL`, or `127.0.0.1:11300` when it is unset, and
//! works the tube `example-jobs`.

use beanstalk_async_std::{AsyncCommands, Client, Error, Job};

const TUBE: &str = "example-jobs";
/// How long to wait for a job before deciding the work is done.
const IDLE_SECONDS: u32 = 3;

fn main() -> Result<(), Error> {
    async_std::task::block_on(async {
        // A worker owns its connection: reserved jobs belong to it.
        let mut client = Client::connect_default().await?;
        client.watch(TUBE).await?;
        client.ignore("default").await?;
        let mut done = 0;
        loop {
            let job = match client.reserve_with_timeout(IDLE_SECONDS).await {
                Ok(job) => job,
                Err(Error::TimedOut) => break,
                Err(error) => return Err(error),
            };
            process(&job);
            // Deleting acknowledges the job; had the worker died before
            // this, the server would hand the job out again after its TTR.
            client.delete(job.id).await?;
            done += 1;
        }
        println!("processed {done} jobs; no job for {IDLE_SECONDS} s, stopping");
        Ok(())
    })
}

fn process(job: &Job) {
    println!("job {}: {}", job.id, String::from_utf8_lossy(&job.body));
}
