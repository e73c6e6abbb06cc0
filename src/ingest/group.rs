//! Group commit for `POST /v1/runs`: concurrent single-run requests share one transaction.
//!
//! Each request hands its validated run to a queue and waits. A few writer tasks each take what
//! the queue holds (at most `ingest.group_commit_max_runs`; never waiting for more to arrive, so an
//! idle server adds no latency) and write it with [`store::write_runs`] — the set-based statements
//! and per-run savepoint fallback of a batch, so one run's bad data costs no other run. A run
//! alone in its group (an idle server, one request at a time) is written by
//! [`store::write_one`] instead: one statement that commits on its own when the run is new, the
//! same path as a group's otherwise. Every request is answered only after its group's
//! transaction committed. The commit's cost (a WAL
//! flush with PostgreSQL's durability defaults) and the statements' round trips are shared by the
//! whole group, which is what lets single-run ingest approach the batch path's throughput.
//!
//! Two sends of one `run_id` never share a group: the later one waits for the next, and is then
//! answered as a resend (200), as if the two requests had arrived one after the other.

use std::collections::HashSet;
use std::sync::Arc;

use tokio::sync::{Mutex, mpsc, oneshot};
use uuid::Uuid;

use crate::error::ApiError;
use crate::model::NewRun;
use crate::state::Db;
use crate::store::{self, Outcome};

type Reply = Result<(NewRun, Outcome), ApiError>;

struct Job {
    run: NewRun,
    reply: oneshot::Sender<Reply>,
}

/// The queue in front of the writer tasks; cheap to share.
pub struct GroupCommit {
    queue: mpsc::Sender<Job>,
}

impl GroupCommit {
    /// Starts `writers` writer tasks on the current tokio runtime. They stop once this value (the
    /// last sender) is dropped and the queue is drained.
    pub fn start(db: Db, writers: usize, max_runs: usize) -> GroupCommit {
        let max_runs = max_runs.max(1);
        let (queue, receiver) = mpsc::channel(max_runs * writers.max(1) * 4);
        let receiver = Arc::new(Mutex::new(receiver));
        for _ in 0..writers.max(1) {
            tokio::spawn(writer(receiver.clone(), db.clone(), max_runs));
        }
        GroupCommit { queue }
    }

    /// Writes `run` in the next group; returns it with its outcome once the group committed.
    pub async fn write(&self, run: NewRun) -> Reply {
        let (reply, answer) = oneshot::channel();
        self.queue
            .send(Job { run, reply })
            .await
            .map_err(|_| ApiError::Unavailable("The service is shutting down, retry".into()))?;
        answer
            .await
            .map_err(|_| ApiError::internal("the group writer stopped"))?
    }
}

async fn writer(receiver: Arc<Mutex<mpsc::Receiver<Job>>>, db: Db, max_runs: usize) {
    loop {
        let mut jobs = {
            let mut receiver = receiver.lock().await;
            let Some(first) = receiver.recv().await else {
                return;
            };
            let mut jobs = vec![first];
            while jobs.len() < max_runs {
                match receiver.try_recv() {
                    Ok(job) => jobs.push(job),
                    Err(_) => break,
                }
            }
            jobs
        };
        metrics::histogram!("ingest_group_commit_runs").record(jobs.len() as f64);
        while !jobs.is_empty() {
            let mut seen: HashSet<Uuid> = HashSet::with_capacity(jobs.len());
            let (group, later): (Vec<Job>, Vec<Job>) =
                jobs.into_iter().partition(|j| seen.insert(j.run.run_id));
            commit(&db, group).await;
            jobs = later;
        }
    }
}

async fn commit(db: &Db, group: Vec<Job>) {
    let runs: Vec<&NewRun> = group.iter().map(|j| &j.run).collect();
    let result = db
        .run(async |conn| {
            // Alone in its group (an idle server, one request at a time): one statement, one
            // commit.
            if let [run] = runs[..] {
                return Ok(vec![store::write_one(conn, run).await?]);
            }
            Ok(store::write_runs(conn, &runs).await?)
        })
        .await;
    match result {
        Ok(outcomes) => {
            record_written(&runs, &outcomes);
            for (job, outcome) in group.into_iter().zip(outcomes) {
                // A requester that went away (client disconnect) no longer listens: its run is
                // committed all the same, and a resend is answered 200.
                let _ = job.reply.send(Ok((job.run, outcome)));
            }
        }
        Err(err) => {
            for job in group {
                let _ = job.reply.send(Err(err.for_each_request()));
            }
        }
    }
}

/// Counts what a write did with each run, for `runs_ingested_total` and its siblings.
pub(super) fn record_written(runs: &[&NewRun], outcomes: &[Outcome]) {
    for (run, outcome) in runs.iter().zip(outcomes) {
        match outcome {
            Outcome::Created { .. } | Outcome::Replaced { .. } => {
                metrics::counter!("runs_ingested_total").increment(1);
                metrics::counter!("steps_ingested_total").increment(run.steps.len() as u64);
            }
            Outcome::Unchanged => metrics::counter!("runs_duplicate_total").increment(1),
            Outcome::Rejected(_) => {
                metrics::counter!("runs_failed_total", "reason" => "rejected").increment(1)
            }
        }
    }
}
