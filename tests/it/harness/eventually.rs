//! The one poller of the integration tests: ask a question again and again
//! until it holds or a bound passes, then panic with what was awaited, the
//! bound and the last answer. Every wait in tests/it goes through here, so
//! a timed-out wait always says the same three things.

use std::time::{Duration, Instant};

/// How long [`eventually`] and [`until`] sleep between two checks.
pub const EVERY: Duration = Duration::from_millis(50);

/// Runs `check` until it returns `Ok`, and returns its value; panics with
/// `what`, `within` and the last error when `within` has passed. Checks at
/// least once, and once more after the bound when the bound passed while
/// sleeping.
pub async fn eventually<T>(
    within: Duration,
    what: &str,
    check: impl AsyncFnMut() -> Result<T, String>,
) -> T {
    eventually_every(within, EVERY, what, check).await
}

/// [`eventually`], sleeping `every` between two checks (for checks that
/// cost a query per node or a signature).
pub async fn eventually_every<T>(
    within: Duration,
    every: Duration,
    what: &str,
    mut check: impl AsyncFnMut() -> Result<T, String>,
) -> T {
    let deadline = Instant::now() + within;
    loop {
        match check().await {
            Ok(v) => return v,
            Err(e) if Instant::now() >= deadline => {
                panic!("{what}: not within {within:?}; last: {e}")
            }
            Err(_) => tokio::time::sleep(every).await,
        }
    }
}

/// [`eventually`] for a check that is only true or false.
pub async fn until(within: Duration, what: &str, mut check: impl AsyncFnMut() -> bool) {
    eventually(within, what, async || {
        if check().await {
            Ok(())
        } else {
            Err("still false".to_string())
        }
    })
    .await
}
