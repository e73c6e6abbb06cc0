//! `GET /v1/runs/stream`: server-sent events of newly committed runs — the list's filters,
//! `Last-Event-ID` resume, the heartbeat. (The replica case is in tests/api/replica.rs.)

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::*;

/// One server-sent event (or a comment, with `event` empty and the comment in `data`).
#[derive(Debug)]
pub struct Event {
    pub id: String,
    pub event: String,
    pub data: String,
}

/// A stream being read.
pub struct Sse {
    res: reqwest::Response,
    buf: String,
}

impl Sse {
    /// `GET /v1/runs/stream{query}`, with `Last-Event-ID` when given: the answer as it comes.
    pub async fn request(
        app: &TestApp,
        query: &str,
        last_event_id: Option<&str>,
    ) -> reqwest::Response {
        let mut req = app
            .client
            .get(format!("{}/v1/runs/stream{query}", app.query));
        if let Some(id) = last_event_id {
            req = req.header("Last-Event-ID", id);
        }
        req.send().await.unwrap()
    }

    pub async fn open(app: &TestApp, query: &str, last_event_id: Option<&str>) -> Sse {
        let res = Sse::request(app, query, last_event_id).await;
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(res.headers()["content-type"], "text/event-stream");
        Sse {
            res,
            buf: String::new(),
        }
    }

    /// The next event or comment, or `None` when `within` passes first.
    pub async fn next(&mut self, within: Duration) -> Option<Event> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                let mut event = Event {
                    id: String::new(),
                    event: String::new(),
                    data: String::new(),
                };
                for line in block.lines() {
                    if let Some(comment) = line.strip_prefix(':') {
                        event.data = comment.trim().to_owned();
                    } else if let Some((field, value)) = line.split_once(": ") {
                        match field {
                            "id" => event.id = value.to_owned(),
                            "event" => event.event = value.to_owned(),
                            "data" => event.data = value.to_owned(),
                            _ => {}
                        }
                    }
                }
                return Some(event);
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            match tokio::time::timeout(left, self.res.chunk()).await {
                Ok(Ok(Some(chunk))) => self.buf.push_str(&String::from_utf8_lossy(&chunk)),
                _ => return None,
            }
        }
    }

    /// The `run` events that arrive within `within` (comments skipped).
    pub async fn runs(&mut self, within: Duration) -> Vec<(String, Value)> {
        let deadline = Instant::now() + within;
        let mut runs = Vec::new();
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.next(left).await {
                Some(e) if e.event == "run" => {
                    runs.push((e.id, serde_json::from_str(&e.data).unwrap()))
                }
                Some(_) => {}
                None => break,
            }
        }
        runs
    }
}

fn ids(runs: &[(String, Value)]) -> Vec<String> {
    runs.iter().map(|(_, r)| run_id_of(r)).collect()
}

fn run_of(agent: &str, status: &str) -> Value {
    let mut run = sample_run(2, status);
    run["agent_id"] = agent.into();
    run
}

#[tokio::test]
async fn a_stream_sends_the_runs_its_filters_select_as_they_are_committed() {
    let app = spawn_app_with(|c| c.query.stream_poll_ms = 100).await;
    let mut stream = Sse::open(&app, "?agent_id=alpha&status=failure", None).await;
    let first = stream.next(Duration::from_secs(2)).await.unwrap();
    assert_eq!(first.data, "", "the stream opens with its retry hint");
    let wanted = run_of("alpha", "failure");
    for run in [
        run_of("beta", "failure"),
        run_of("alpha", "success"),
        wanted.clone(),
    ] {
        assert_eq!(app.post_run(&run).await.status(), StatusCode::CREATED);
    }
    let posted = Instant::now();
    let got = stream.runs(Duration::from_secs(3)).await;
    assert_eq!(
        ids(&got),
        vec![run_id_of(&wanted)],
        "only the run the filters select"
    );
    let run = &got[0].1;
    assert_eq!(
        run["steps"].as_array().unwrap().len(),
        2,
        "the list's run shape"
    );
    assert_eq!(run["failures"][0]["failure_code"], "timeout");
    assert!(posted.elapsed() < Duration::from_secs(4));

    // A failure filter and time bounds select as the list does.
    let mut by_code = Sse::open(
        &app,
        "?failure_code=timeout&start_time=2024-01-01T00:00:00Z",
        None,
    )
    .await;
    let failed = run_of("gamma", "failure");
    app.post_run(&run_of("gamma", "success")).await;
    app.post_run(&failed).await;
    assert_eq!(
        ids(&by_code.runs(Duration::from_secs(2)).await),
        vec![run_id_of(&failed)]
    );

    // Invalid filters and ids are 422s naming them.
    for (query, header, name) in [
        ("?status=nope", None, "status"),
        ("", Some("not-an-id"), "last-event-id"),
    ] {
        let res = Sse::request(&app, query, header).await;
        assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert!(res.text().await.unwrap().contains(name));
    }
    app.stop().await;
}

#[tokio::test]
async fn last_event_id_resumes_after_the_last_run_seen() {
    let app = spawn_app_with(|c| c.query.stream_poll_ms = 100).await;
    let mut stream = Sse::open(&app, "?agent_id=resumer", None).await;
    let one = run_of("resumer", "success");
    app.post_run(&one).await;
    let got = stream.runs(Duration::from_secs(2)).await;
    assert_eq!(ids(&got), vec![run_id_of(&one)]);
    let last_id = got[0].0.clone();
    drop(stream);

    // While no one listens, two more are committed (and one of another agent).
    let (two, three) = (run_of("resumer", "failure"), run_of("resumer", "partial"));
    app.post_run(&two).await;
    app.post_run(&run_of("someone-else", "success")).await;
    app.post_run(&three).await;
    let mut resumed = Sse::open(&app, "?agent_id=resumer", Some(&last_id)).await;
    let got = resumed.runs(Duration::from_secs(2)).await;
    assert_eq!(
        ids(&got),
        vec![run_id_of(&two), run_id_of(&three)],
        "in commit order, once"
    );
    // And it goes on live.
    let four = run_of("resumer", "success");
    app.post_run(&four).await;
    assert_eq!(
        ids(&resumed.runs(Duration::from_secs(2)).await),
        vec![run_id_of(&four)]
    );
    app.stop().await;
}

#[tokio::test]
async fn an_idle_stream_gets_heartbeats() {
    let app = spawn_app_with(|c| c.query.stream_heartbeat_s = 1).await;
    let mut stream = Sse::open(&app, "", None).await;
    let opened = Instant::now();
    let mut beats = 0;
    while beats < 2 {
        let e = stream
            .next(Duration::from_secs(3))
            .await
            .expect("a heartbeat");
        if e.data == "heartbeat" {
            beats += 1;
        }
    }
    let took = opened.elapsed();
    assert!(
        took >= Duration::from_millis(1500) && took < Duration::from_secs(5),
        "{took:?}"
    );
    app.stop().await;
}
