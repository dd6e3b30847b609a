//! Bounding tests in time: an overall timeout for an async body, and a fresh
//! runtime whose shutdown is checked too. The timeouts only bound a hang;
//! nothing here asserts a speed.

use std::future::Future;
use std::time::Duration;

/// How long a runtime may take to shut down once the test body has ended.
/// Dropping a tokio runtime waits for its blocking threads, so a thread that
/// never ends (a leaked verifier, a stuck write) shows up here.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Runs `fut`, panicking with "test timed out" after `timeout`.
pub async fn bounded<T>(timeout: Duration, fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(timeout, fut)
        .await
        .expect("test timed out")
}

/// Runs `body` on a runtime of its own (2 workers, as CI has 2 cores),
/// bounded by `timeout`, then checks that the runtime shuts down within
/// [`SHUTDOWN_GRACE`]: no blocking thread may outlive the test.
///
/// # Panics
/// When the body times out or panics, or the runtime does not shut down.
pub fn e2e<T>(timeout: Duration, body: impl Future<Output = T>) -> T {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let out = runtime.block_on(bounded(timeout, body));
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        drop(runtime);
        let _ = done_tx.send(());
    });
    assert!(
        done_rx.recv_timeout(SHUTDOWN_GRACE).is_ok(),
        "the tokio runtime did not shut down within {SHUTDOWN_GRACE:?} after the test: a blocking thread \
         (spawn_blocking) is still running"
    );
    out
}
