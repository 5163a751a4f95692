//! Puts a few jobs into a tube.
//!
//! ```sh
//! BEANSTALKD_URL=127.0.0.1:11300 cargo run -p beanstalk-tokio --example producer -- emails 10
//! ```

use beanstalk_tokio::{AsyncCommands, Client, Error, PutOptions};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let mut args = std::env::args().skip(1);
    let tube = args.next().unwrap_or_else(|| "default".to_owned());
    let count: u32 = args.next().and_then(|n| n.parse().ok()).unwrap_or(10);

    let mut client = Client::connect_default().await?;
    client.use_tube(tube.as_str()).await?;
    for i in 0..count {
        let receipt = client
            .put(format!("job {i}"), PutOptions::default().ttr(30))
            .await?;
        println!("put job {} into {tube}", receipt.id);
    }
    Ok(())
}
