//! Reserves jobs from a tube, processes them and deletes them, until
//! Ctrl-C. A job whose processing fails is released with a delay.
//!
//! ```sh
//! BEANSTALKD_URL=127.0.0.1:11300 cargo run -p beanstalk-tokio --example worker -- emails
//! ```

use beanstalk_tokio::{AsyncCommands, Client, Error, Job};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let tube = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "default".to_owned());
    let mut client = Client::connect_default().await?;
    client.watch(tube.as_str()).await?;
    if tube != "default" {
        client.ignore("default").await?;
    }
    println!("waiting for jobs on {tube}; Ctrl-C to stop");
    loop {
        // Dropping a waiting reserve closes the connection, so the server
        // hands the job it might have reserved to someone else: safe to race.
        let job = tokio::select! {
            job = client.reserve() => job?,
            _ = tokio::signal::ctrl_c() => break,
        };
        match process(&job).await {
            Ok(()) => client.delete(job.id).await?,
            Err(reason) => {
                eprintln!("job {} failed: {reason}; retrying in 10 s", job.id);
                client.release(job.id, 1024, 10).await?;
            }
        }
    }
    Ok(())
}

async fn process(job: &Job) -> Result<(), String> {
    let text = std::str::from_utf8(&job.body).map_err(|e| e.to_string())?;
    println!("job {}: {text}", job.id);
    Ok(())
}
