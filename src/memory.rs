//! Giving memory back to the system once large requests are done (issue 14 item 3).
//!
//! glibc's allocator keeps what a request freed in its arenas, for reuse: after forty 6 MiB
//! bodies at once the process stayed hundreds of MiB larger than before, for good. Large work
//! (a body over 64 KiB, an OTLP/gRPC export) counts itself here when it ends; once a tick of
//! [`trim_when_idle`] passes with none ending, the free memory is returned (`malloc_trim`).
//! Under steady load nothing is trimmed: what was freed is about to be used again.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

static LARGE_WORK_DONE: AtomicU64 = AtomicU64::new(0);

/// Large work (its memory freed) has just ended.
pub fn large_work_done() {
    LARGE_WORK_DONE.fetch_add(1, Ordering::Relaxed);
}

/// Every `every`, returns free memory to the system if large work ended before the last tick
/// and none has ended since; until `stop` is cancelled.
pub async fn trim_when_idle(every: Duration, stop: CancellationToken) {
    let mut seen = LARGE_WORK_DONE.load(Ordering::Relaxed);
    let mut pending = false;
    let mut ticks = tokio::time::interval(every);
    while stop.run_until_cancelled(ticks.tick()).await.is_some() {
        let now = LARGE_WORK_DONE.load(Ordering::Relaxed);
        if now != seen {
            seen = now;
            pending = true;
        } else if pending {
            pending = false;
            trim();
        }
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn trim() {
    // SAFETY: malloc_trim takes no pointer and locks the arenas itself; it is safe to call from
    // any thread at any time.
    let released = unsafe { libc::malloc_trim(0) };
    metrics::counter!("memory_trims_total").increment(1);
    tracing::debug!(
        released = released != 0,
        "returned free memory to the system"
    );
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn trim() {}
