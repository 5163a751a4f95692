//! A producer on smol: several tasks put jobs through one shared
//! connection, each command pipelined with the others'.
//!
//! ```sh
//! beanstalkd -l 127.0.0.1 -p 11300 &
//! cargo run -p beanstalk-async-std --example smol_producer -- 100
//! ```
//!
//! Connects to `BEANSTALKD_URL`, or `127.0.0.1:11300` when it is unset, and
//! puts the given number of jobs (default 100) into the tube `example-jobs`;
//! `smol_worker` takes them out.

use beanstalk_async_std::{AsyncCommands, Error, PutOptions, SharedClient};

const TUBE: &str = "example-jobs";
const TASKS: u32 = 4;

fn main() -> Result<(), Error> {
    let count: u32 = match std::env::args().nth(1) {
        Some(arg) => arg.parse().expect("the job count must be a number"),
        None => 100,
    };
    smol::block_on(async {
        let client = SharedClient::connect_default().await?;
        let tasks: Vec<_> = (0..TASKS)
            .map(|task| {
                // Each clone has its own tube in use; the connection is shared.
                let mut client = client.clone();
                smol::spawn(async move {
                    client.use_tube(TUBE).await?;
                    for i in (task..count).step_by(TASKS as usize) {
                        let body = format!("job {i} from task {task}");
                        client.put(body, PutOptions::default().ttr(60)).await?;
                    }
                    Ok::<_, Error>(())
                })
            })
            .collect();
        for task in tasks {
            task.await?;
        }
        let stats = client.clone().stats_tube(TUBE).await?;
        println!(
            "put {count} jobs into {TUBE}; {} ready there now",
            stats.current_jobs_ready
        );
        Ok(())
    })
}
