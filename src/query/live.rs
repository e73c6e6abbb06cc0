//! `GET /v1/runs/stream`: newly committed runs as server-sent events, for the live tail.
//!
//! One poller per process reads the runs committed since its last look, through the read-only
//! pool (so it works on a replica: no LISTEN/NOTIFY, which a standby does not deliver), and only
//! while someone listens. Each stream filters them with the list's filters and writes one `run`
//! event per run, in the list's run shape, with `id:` so that a client that reconnects with
//! `Last-Event-ID` resumes after the last run it saw; a comment every heartbeat keeps proxies
//! from closing an idle stream.
//!
//! Which runs are new: `created_at` is the writing transaction's start, so a run may become
//! visible after others with a later `created_at`, by up to the length of its transaction (and
//! on a replica, once replay reaches its commit). Each poll reads back to the horizon —
//! `pg_last_xact_replay_timestamp()` on a replica, the poll's own time on a primary — less
//! [`SLACK`], and skips the runs it has already sent. A transaction longer than [`SLACK`] could
//! be missed (ours last milliseconds; statement timeouts bound them).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use diesel::QueryableByName;
use diesel::sql_types::Timestamptz;
use diesel_async::RunQueryDsl;
use time::OffsetDateTime;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use super::filters::{Bind, Cursor, RunFilter, apply_binds};
use crate::db::PgPool;
use crate::db::prepared::prepared;
use crate::db::read::{self, PageBudget, RUN_COLUMNS, RunRow};
use crate::model::output::RunOut;

/// How far before the horizon each poll reads back (see the module's doc).
pub const SLACK: time::Duration = time::Duration::seconds(5);
/// Runs read by one poll at most; more wait for the next.
const POLL_LIMIT: i64 = 500;
/// Runs a resuming stream is sent at most before it joins the live feed.
pub const RESUME_LIMIT: i64 = 1000;

/// One committed run, ready to send.
#[derive(Debug)]
pub struct LiveRun {
    /// `(created_at, run_id)`: the event's id, and the order of the feed.
    pub position: Cursor,
    pub run: RunOut,
    /// The run as JSON, written once for every stream.
    pub json: String,
}

/// The event id of a position (the list's cursor format, over `created_at`).
pub fn event_id(position: &Cursor) -> String {
    position.encode()
}

/// Whether `run` is one the filter selects (as `GET /v1/runs` would).
pub fn matches(filter: &RunFilter, run: &RunOut) -> bool {
    let same = |want: &Option<String>, have: &str| want.as_deref().is_none_or(|w| w == have);
    same(&filter.agent_id, &run.agent_id)
        && same(&filter.agent_version, &run.agent_version)
        && same(&filter.environment, &run.environment)
        && filter
            .session_id
            .as_deref()
            .is_none_or(|w| run.session_id.as_deref() == Some(w))
        && filter
            .user_id
            .as_deref()
            .is_none_or(|w| run.user_id.as_deref() == Some(w))
        && filter.status.is_none_or(|s| s.as_str() == run.status)
        && filter.start_time.is_none_or(|t| run.started_at >= t)
        && filter.end_time.is_none_or(|t| run.started_at <= t)
        && (filter.failure_type.is_none() && filter.failure_code.is_none()
            || run.failures.iter().any(|f| {
                filter
                    .failure_type
                    .is_none_or(|t| t.as_str() == f.failure_type)
                    && same(&filter.failure_code, &f.failure_code)
            }))
}

#[derive(QueryableByName)]
struct Horizon {
    #[diesel(sql_type = Timestamptz)]
    horizon: OffsetDateTime,
}

/// The process's feed of committed runs.
pub struct LiveFeed {
    sender: broadcast::Sender<Arc<LiveRun>>,
    pool: PgPool,
    budget: PageBudget,
    poll: Duration,
    pub heartbeat: Duration,
    /// Cancelled when the poller ends (at shutdown): every stream ends with it.
    pub stop: CancellationToken,
}

impl LiveFeed {
    pub fn new(
        pool: PgPool,
        budget: PageBudget,
        poll: Duration,
        heartbeat: Duration,
    ) -> Arc<LiveFeed> {
        let (sender, _) = broadcast::channel(1024);
        Arc::new(LiveFeed {
            sender,
            pool,
            budget,
            poll,
            heartbeat,
            stop: CancellationToken::new(),
        })
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<LiveRun>> {
        self.sender.subscribe()
    }

    /// Runs after `after` that `filter` selects, oldest first, at most [`RESUME_LIMIT`]: what a
    /// reconnecting stream missed.
    pub async fn since(
        &self,
        after: Cursor,
        filter: &RunFilter,
    ) -> Result<Vec<Arc<LiveRun>>, crate::error::ApiError> {
        let mut conn = self.pool.get().await?;
        let mut binds = vec![Bind::Time(after.started_at), Bind::Uuid(after.run_id)];
        let conditions = filter.conditions(&mut binds);
        binds.push(Bind::Int(RESUME_LIMIT));
        let sql = format!(
            "SELECT {RUN_COLUMNS} FROM agent_runs r WHERE (r.created_at, r.run_id) > ($1, $2) AND {conditions} \
             ORDER BY r.created_at, r.run_id LIMIT ${}",
            binds.len()
        );
        let rows: Vec<RunRow> = apply_binds(prepared(sql), binds).load(&mut *conn).await?;
        Ok(self.assemble(&mut conn, rows).await?)
    }

    async fn assemble(
        &self,
        conn: &mut diesel_async::AsyncPgConnection,
        rows: Vec<RunRow>,
    ) -> diesel::QueryResult<Vec<Arc<LiveRun>>> {
        let runs = read::with_children(conn, rows, self.budget).await?;
        Ok(runs
            .into_iter()
            .map(|run| {
                let position = Cursor {
                    started_at: run.created_at,
                    run_id: run.run_id,
                };
                let json = serde_json::to_string(&run).unwrap_or_default();
                Arc::new(LiveRun {
                    position,
                    run,
                    json,
                })
            })
            .collect())
    }

    /// One poll from `low`: the horizon and the runs created after `low - SLACK`, oldest first.
    async fn poll_once(
        &self,
        low: OffsetDateTime,
    ) -> Result<(OffsetDateTime, Vec<Arc<LiveRun>>), crate::error::ApiError> {
        let mut conn = self.pool.get().await?;
        let horizon: Horizon = prepared(
            "SELECT coalesce(pg_last_xact_replay_timestamp(), statement_timestamp()) AS horizon",
        )
        .get_result(&mut *conn)
        .await?;
        let sql = format!(
            "SELECT {RUN_COLUMNS} FROM agent_runs r WHERE r.created_at > $1 \
             ORDER BY r.created_at, r.run_id LIMIT $2"
        );
        let rows: Vec<RunRow> = apply_binds(
            prepared(sql),
            vec![Bind::Time(low - SLACK), Bind::Int(POLL_LIMIT)],
        )
        .load(&mut *conn)
        .await?;
        let runs = self.assemble(&mut conn, rows).await?;
        Ok((horizon.horizon, runs))
    }

    /// The poller: while anyone listens, every `poll` sends each run not sent before, in
    /// `created_at` order (its first poll after a quiet spell sends the runs of the last
    /// [`SLACK`] too: a listener may see a few runs from just before it came). Ends when
    /// `stop` is cancelled, and ends every stream then.
    pub async fn run(self: Arc<Self>, stop: CancellationToken) {
        // Runs already sent, by id, with their created_at (forgotten once below the window).
        let mut sent: HashMap<uuid::Uuid, OffsetDateTime> = HashMap::new();
        let mut low: Option<OffsetDateTime> = None;
        loop {
            tokio::select! {
                _ = stop.cancelled() => {
                    self.stop.cancel();
                    return;
                }
                _ = tokio::time::sleep(self.poll) => {}
            }
            if self.sender.receiver_count() == 0 {
                low = None;
                sent.clear();
                continue;
            }
            let from = low.unwrap_or_else(OffsetDateTime::now_utc);
            let (horizon, runs) = match self.poll_once(from).await {
                Ok(found) => found,
                Err(err) => {
                    tracing::debug!(error = %err, "live feed: poll failed; retrying");
                    continue;
                }
            };
            let full = runs.len() as i64 >= POLL_LIMIT;
            let mut newest = None;
            for run in runs {
                newest = Some(run.position.started_at);
                if sent
                    .insert(run.run.run_id, run.position.started_at)
                    .is_some()
                {
                    continue;
                }
                let _ = self.sender.send(run);
            }
            // The next poll reads from the horizon (or, when this one was cut at its limit, from
            // the last run it read).
            let next = match (full, newest) {
                (true, Some(t)) => t + SLACK,
                _ => horizon,
            };
            low = Some(next.max(from));
            let forget = next - SLACK - SLACK;
            sent.retain(|_, created| *created >= forget);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::output::FailureOut;
    use time::macros::datetime;

    fn run() -> RunOut {
        RunOut {
            run_id: uuid::Uuid::nil(),
            agent_id: "a".into(),
            agent_version: "1".into(),
            environment: "prod".into(),
            status: "failure".into(),
            started_at: datetime!(2026-12-02 12:00 UTC),
            ended_at: None,
            created_at: datetime!(2026-12-02 12:00 UTC),
            source: "native".into(),
            cost_usd: None,
            session_id: Some("s-1".into()),
            user_id: None,
            steps: Vec::new(),
            steps_truncated: false,
            failures: vec![FailureOut {
                failure_id: uuid::Uuid::nil(),
                run_id: uuid::Uuid::nil(),
                step_id: None,
                failure_type: "tool".into(),
                failure_code: "timeout".into(),
                message: String::new(),
                created_at: datetime!(2026-12-02 12:00 UTC),
                metadata: crate::model::output::RawJson::from_value(&serde_json::json!({})),
            }],
            decisions: Vec::new(),
            quality_signals: Vec::new(),
        }
    }

    #[test]
    fn filters_select_as_the_list_does() {
        let r = run();
        let f = |change: fn(&mut RunFilter)| {
            let mut filter = RunFilter::default();
            change(&mut filter);
            matches(&filter, &r)
        };
        assert!(f(|_| {}));
        assert!(f(|x| x.agent_id = Some("a".into())));
        assert!(!f(|x| x.agent_id = Some("b".into())));
        assert!(f(|x| x.status = Some(crate::model::RunStatus::Failure)));
        assert!(!f(|x| x.status = Some(crate::model::RunStatus::Success)));
        assert!(f(|x| x.failure_code = Some("timeout".into())));
        assert!(!f(
            |x| x.failure_type = Some(crate::model::FailureType::Model)
        ));
        assert!(!f(|x| x.start_time = Some(datetime!(2026-12-02 12:01 UTC))));
        assert!(f(|x| x.end_time = Some(datetime!(2026-12-02 12:00 UTC))));
        assert!(f(|x| x.session_id = Some("s-1".into())));
        assert!(!f(|x| x.session_id = Some("s-2".into())));
        assert!(!f(|x| x.user_id = Some("u-1".into())));
    }
}
