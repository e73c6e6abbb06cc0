//! The background tasks of a process (memory trimming, pool warm-up, the schema watch, retention,
//! stats compaction, the OTLP finalizer, alert delivery). They share one cancellation token: at
//! shutdown each ends at its next pause, after the unit of work it is in (a purge batch, a
//! compaction transaction, a finalizer pass, a delivery pass), and the process waits for them before it closes the pools.

use std::time::Duration;

use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

#[derive(Default)]
pub(super) struct Background {
    stop: CancellationToken,
    tasks: Vec<(&'static str, JoinHandle<()>)>,
}

impl Background {
    /// Spawns `task`, handing it the token that tells it to stop.
    pub(super) fn spawn<F>(&mut self, name: &'static str, task: impl FnOnce(CancellationToken) -> F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.tasks
            .push((name, tokio::spawn(task(self.stop.clone()))));
    }

    /// Spawns a task that does not watch the token itself: once the token is cancelled it is
    /// dropped at its next `.await`.
    pub(super) fn spawn_until_stopped<F>(&mut self, name: &'static str, task: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.spawn(name, |stop| async move {
            stop.run_until_cancelled(task).await;
        });
    }

    /// Tells every task to stop; [`Background::wait`] waits for them.
    pub(super) fn cancel(&self) {
        self.stop.cancel();
    }

    /// Cancels every task and waits until each has ended. One still running at `deadline` is
    /// aborted (and waited for), so that none outlives the pools it uses.
    pub(super) async fn wait(self, deadline: Instant) {
        self.cancel();
        for (name, mut task) in self.tasks {
            match tokio::time::timeout_at(deadline, &mut task).await {
                Ok(Ok(())) => tracing::debug!(task = name, "background task stopped"),
                Ok(Err(error)) => tracing::warn!(task = name, %error, "background task failed"),
                Err(_) => {
                    tracing::warn!(task = name, "background task did not stop in time; aborted");
                    task.abort();
                    let _ = task.await;
                }
            }
        }
    }
}

/// How long shutdown waits for the background tasks, counted from its start (they are cancelled
/// then, while the listeners finish their requests): `server.shutdown_timeout_s`, at least 1 s.
pub(super) fn deadline(shutdown_timeout_s: u64) -> Instant {
    Instant::now() + Duration::from_secs(shutdown_timeout_s.max(1))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;

    /// Sets its flag when dropped: tells that a task's future is gone.
    struct Dropped(Arc<AtomicBool>);

    impl Drop for Dropped {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }

    #[tokio::test]
    async fn every_task_has_ended_when_wait_returns() {
        let mut background = Background::default();
        let finished = Arc::new(AtomicBool::new(false));
        let watching = finished.clone();
        background.spawn("watching", |stop| async move {
            stop.cancelled().await;
            watching.store(true, Ordering::SeqCst);
        });
        let dropped = Arc::new(AtomicBool::new(false));
        let guard = Dropped(dropped.clone());
        background.spawn_until_stopped("not watching", async move {
            let _guard = guard;
            std::future::pending::<()>().await;
        });
        let ignored = Arc::new(AtomicBool::new(false));
        let guard = Dropped(ignored.clone());
        background.spawn("ignoring the token", |_stop| async move {
            let _guard = guard;
            tokio::time::sleep(Duration::from_secs(3600)).await;
        });

        let started = Instant::now();
        background.wait(started + Duration::from_millis(200)).await;
        assert!(finished.load(Ordering::SeqCst), "a watching task finishes");
        assert!(
            dropped.load(Ordering::SeqCst),
            "a task that cannot watch is dropped"
        );
        assert!(
            ignored.load(Ordering::SeqCst),
            "a task past the deadline is aborted"
        );
        assert!(started.elapsed() < Duration::from_secs(10));
    }
}
