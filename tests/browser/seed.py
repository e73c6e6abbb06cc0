"""Sends a realistic spread of runs to an AgentTracer ingest listener (Python stdlib only).

Usage: seed.py INGEST_URL [RUNS] [API_KEY]
Runs of three agents (two versions each, two environments) over the last 24 hours, with every
status, step type, a few models and failure codes, decisions and quality signals (whose mix differs
between versions); one run of 50 steps; one whose metadata holds
`<script>` (it must show as text); one OTLP/JSON trace with nested spans. Then behaviour drift
(`drift`): a fourth agent whose tool choice moved since its baseline, detection run, and an
inactive baseline of another agent. Prints a JSON object naming the special runs and the drift
events: {"fifty": id, "script": id, "otlp": id, "drift": [id, ...]}.
"""

import hashlib
import json
import random
import sys
import urllib.request
import uuid
from datetime import datetime, timedelta, timezone

rng = random.Random(20261202)
now = datetime.now(timezone.utc)
ingest = ""
key = None

AGENTS = [("support-bot", ["1.4.2", "1.5.0"]), ("research-agent", ["0.9.0", "1.0.0"]), ("billing-agent", ["2.1.0", "2.2.0"])]
MODELS = ["gpt-4o", "gpt-4o-mini", "claude-sonnet-4"]
CODES = {"tool": ["timeout", "http_500"], "model": ["rate_limited", "context_length_exceeded"], "retrieval": ["empty_result"], "orchestration": ["max_iterations"]}
TYPES = ["plan", "retrieve", "tool", "llm", "respond"]
# (decision_type, [(selected, reason_code)]): the first choice is likelier in a version's first
# release, the second in its next (so versions differ in behaviour).
DECISIONS = [("tool_selection", [("search_api", "fresh_data_required"), ("cache", "cached_data_sufficient")]),
             ("retrieval_strategy", [("hybrid", "hybrid_approach_needed"), ("semantic", "semantic_search_preferred")])]
SIGNALS = [("schema_valid", ["full_match", "partial_match"]), ("tool_success", ["first_attempt", "after_retry"])]


def iso(t):
    return t.isoformat().replace("+00:00", "Z")


def post(path, body, content_type="application/json"):
    """POSTs JSON to the ingest listener; raises on an answer other than 2xx."""
    return send(path, body, content_type)[0]


def send(path, body, content_type="application/json"):
    """POSTs JSON to the ingest listener: (status, the answer's JSON); raises on other than 2xx."""
    req = urllib.request.Request(f"{ingest}{path}", data=json.dumps(body).encode(), method="POST")
    req.add_header("Content-Type", content_type)
    if key:
        req.add_header("X-API-Key", key)
    with urllib.request.urlopen(req, timeout=60) as res:
        return res.status, json.loads(res.read() or b"null")


def run(started, agent, version, env, status, steps, metadata=None):
    run_id = str(uuid.uuid4())
    t = started
    out = []
    for i in range(steps):
        step_type = TYPES[i % len(TYPES)] if steps > 1 else "llm"
        latency = rng.randint(20, 900) if step_type != "llm" else rng.randint(300, 4000)
        meta = {"attempt": 1}
        if step_type == "llm":
            meta.update({"model": rng.choice(MODELS), "input_tokens": rng.randint(200, 3000), "output_tokens": rng.randint(20, 600)})
        if metadata and i == 0:
            meta.update(metadata)
        out.append({"step_id": str(uuid.uuid4()), "seq": i, "step_type": step_type, "name": f"{step_type}-{i}",
                    "latency_ms": latency, "started_at": iso(t), "ended_at": iso(t + timedelta(milliseconds=latency)), "metadata": meta})
        t += timedelta(milliseconds=latency + rng.randint(0, 50))
    body = {"run_id": run_id, "agent_id": agent, "agent_version": version, "environment": env, "status": status,
            "started_at": iso(started), "steps": out}
    if status != "running":
        body["ended_at"] = iso(t)
    newer = version.endswith((".5.0", "1.0.0", ".2.0"))
    body["decisions"] = []
    for dtype, options in DECISIONS:
        selected, reason = options[int(rng.random() < (0.55 if newer else 0.3))]
        body["decisions"].append({"decision_type": dtype, "selected": selected, "reason_code": reason,
                                  "candidates": [o[0] for o in options], "confidence": round(rng.uniform(0.5, 1), 2),
                                  "step_id": out[0]["step_id"] if out else None})
    body["quality_signals"] = [{"signal_type": stype, "signal_code": codes[int(rng.random() < 0.2)], "value": True}
                               for stype, codes in SIGNALS]
    if status in ("failure", "partial") and out:
        ftype = rng.choice(list(CODES))
        code = rng.choice(CODES[ftype])
        body["failure"] = {"failure_type": ftype, "failure_code": code,
                           "message": f"{ftype} failed after retries", "step_id": out[-1]["step_id"]}
        if code == "rate_limited":
            # What an OTLP failure keeps of what its library sent (README, failure codes).
            body["failure"]["metadata"] = {"error.type": "<class 'openai.RateLimitError'>",
                                           "http.response.status_code": 429}
    return body


def otlp_trace(started):
    trace = uuid.uuid4().hex
    span = lambda: uuid.uuid4().hex[:16]
    root, plan, tool, llm = span(), span(), span(), span()
    ns = lambda t: str(int(t.timestamp() * 1e9))
    def s(sid, parent, name, start_ms, dur_ms, attrs):
        out = {"traceId": trace, "spanId": sid, "name": name, "kind": 1,
               "startTimeUnixNano": ns(started + timedelta(milliseconds=start_ms)),
               "endTimeUnixNano": ns(started + timedelta(milliseconds=start_ms + dur_ms)),
               "attributes": [{"key": k, "value": {"stringValue": v} if isinstance(v, str) else {"intValue": str(v)}} for k, v in attrs.items()],
               "status": {"code": 1}}
        if parent:
            out["parentSpanId"] = parent
        return out
    spans = [
        s(root, None, "invoke_agent planner", 0, 2400, {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "otel-planner"}),
        s(plan, root, "plan trip", 10, 300, {"gen_ai.operation.name": "plan"}),
        s(tool, plan, "execute_tool search_flights", 40, 200, {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "search_flights"}),
        s(llm, root, "chat gpt-4o", 400, 1800, {"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o",
                                                 "gen_ai.usage.input_tokens": 812, "gen_ai.usage.output_tokens": 95}),
    ]
    body = {"resourceSpans": [{"resource": {"attributes": [
        {"key": "service.name", "value": {"stringValue": "otel-planner"}},
        {"key": "service.version", "value": {"stringValue": "3.0.0"}},
        {"key": "deployment.environment.name", "value": {"stringValue": "production"}}]},
        "scopeSpans": [{"scope": {"name": "seed"}, "spans": spans}]}]}
    post("/v1/traces", body)
    return str(uuid.UUID(trace))


def seed(ingest_url, count=120, api_key=None):
    """Sends the runs; returns the ids of the special ones."""
    global ingest, key
    ingest, key = ingest_url.rstrip("/"), api_key
    special = {}
    batch = []
    for i in range(count):
        agent, versions = AGENTS[i % len(AGENTS)]
        version = versions[(i // 3) % 2]
        env = "production" if i % 4 else "staging"
        status = rng.choices(["success", "failure", "partial", "running"], [70, 18, 8, 4])[0]
        started = now - timedelta(seconds=rng.randint(60, 23 * 3600))
        body = run(started, agent, version, env, status, rng.randint(1, 9))
        if i % 3 == 0:
            # A third of the runs belong to one of a dozen conversations.
            body["session_id"] = f"conv-{(i // 3) % 12:02d}"
            body["user_id"] = f"u-{hashlib.sha256(str((i // 3) % 5).encode()).hexdigest()[:12]}"
        batch.append(body)
    # One conversation of six runs, three minutes apart, across two agents; one fails.
    special["session"] = "chat-2f9c/a"
    for k in range(6):
        agent, status = ("support-bot", "1.5.0") if k % 3 else ("research-agent", "1.0.0"), "failure" if k == 4 else "success"
        body = run(now - timedelta(minutes=40 - 3 * k), agent[0], agent[1], "production", status, 4)
        body["session_id"], body["user_id"] = special["session"], "u-5e884898da28"
        batch.append(body)
    fifty = run(now - timedelta(minutes=20), "research-agent", "1.0.0", "production", "failure", 50)
    special["fifty"] = fifty["run_id"]
    # Its failure as an OTLP one arrives: our code, with what the library sent kept beside it.
    fifty["failure"] = {"failure_type": "model", "failure_code": "rate_limited",
                        "message": "Error code: 429 - Rate limit reached for requests per min (RPM)",
                        "step_id": fifty["steps"][48]["step_id"],  # an llm step
                        "metadata": {"error.type": "<class 'openai.RateLimitError'>",
                                     "http.response.status_code": 429}}
    script = run(now - timedelta(minutes=10), "support-bot", "1.5.0", "staging", "success", 3,
                 metadata={"note": "<script>alert('x')</script>"})
    special["script"] = script["run_id"]
    batch += [fifty, script]
    for i in range(0, len(batch), 50):
        post("/v1/runs/batch", {"runs": batch[i:i + 50]})
    special["otlp"] = otlp_trace(now - timedelta(minutes=5))
    special["drift"] = drift()
    return special


DRIFTING = ("triage-bot", "1.0.0")


def drift():
    """triage-bot 1.0.0: 110 runs three days ago choosing search_api 70 % of the time (its active
    baseline), 110 in the last day choosing it 35 %; detection run now, which finds the move. And
    an inactive baseline of support-bot 1.4.2's last day. Returns the drift events' ids."""
    agent, version = DRIFTING
    then = now - timedelta(days=3)

    def triage(started, api):
        body = run(started, agent, version, "production", "success", 2)
        body["decisions"] = [{"decision_type": "tool_selection", "selected": "search_api" if api else "cache",
                              "reason_code": "fresh_data_required" if api else "cached_data_sufficient",
                              "candidates": ["search_api", "cache"], "confidence": 0.8}]
        return body

    runs = [triage(then + timedelta(minutes=i), i % 10 < 7) for i in range(110)]
    runs += [triage(now - timedelta(hours=20) + timedelta(minutes=9 * i), i % 20 < 7) for i in range(110)]
    for i in range(0, len(runs), 55):
        post("/v1/runs/batch", {"runs": runs[i:i + 55]})
    post("/v1/drift/baselines", {
        "agent_id": agent, "agent_version": version, "environment": "production", "baseline_type": "version",
        "window_start": iso(then - timedelta(minutes=1)), "window_end": iso(then + timedelta(hours=2)),
        "min_sample_size": 100, "approved_by": "oncall@example.com", "description": "first days of 1.0.0",
        "auto_activate": True})
    post("/v1/drift/baselines", {
        "agent_id": "support-bot", "agent_version": "1.4.2", "environment": "production",
        "baseline_type": "time_window", "window_start": iso(now - timedelta(days=1)), "window_end": iso(now),
        "min_sample_size": 1, "auto_activate": False})
    _, report = send("/v1/drift/detect", {})
    return [d["drift_id"] for d in report["detected"]]


def one_run(agent="live-agent"):
    """Posts one new run now; returns its id."""
    body = run(datetime.now(timezone.utc), agent, "1.0.0", "production", "success", 2)
    post("/v1/runs", body)
    return body["run_id"]


if __name__ == "__main__":
    print(json.dumps(seed(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 120,
                          sys.argv[3] if len(sys.argv) > 3 else None)))
