-- Lists filtered by status (GET /v1/runs?status=…, the UI's explorer, the live tail and the
-- stream) read their page from this index in time order. Without it the list walked
-- ix_agent_runs_started_at_run_id and dropped every newer run of another status: a healthy
-- stretch of 100,000 successes before the last failure meant 100,000 rows read for one page
-- of failures. One more entry per run written (runs are one row in eleven of a native write).
CREATE INDEX ix_agent_runs_status_started_at_run_id
    ON agent_runs (status, started_at DESC, run_id DESC);
