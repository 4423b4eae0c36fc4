//! Reaching a gRPC server a test has just started, in process or as a child process.

use std::time::{Duration, Instant};
use tonic::transport::Channel;

/// A channel to `url`, retried every 20 ms until `within` has passed: the server may still be
/// binding its port. Panics naming the address when it never answers.
pub async fn connect(url: &str, within: Duration) -> Channel {
    let deadline = Instant::now() + within;
    loop {
        if let Ok(c) = Channel::from_shared(url.to_string())
            .expect("a valid URL")
            .connect()
            .await
        {
            return c;
        }
        if Instant::now() >= deadline {
            panic!("no gRPC server at {url} within {within:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
