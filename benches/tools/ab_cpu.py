#!/usr/bin/env python3
"""Server and PostgreSQL CPU per run of two builds, alternated (docs/performance.md); or, with
ITEMS=1, of one build (NEW_BIN) without and with 3 decisions and 3 signals on every run (the load
bench's `add_behaviour`), issue 17's comparison with the client's CPU and the bench's scatter out;
or, with ITEMS=both, of two builds with those items on every run of both.

Starts `serve --role all` of each build on the same database, posts pre-built batch bodies of 100
fresh runs (10 steps each, the load bench's models) from this client to one build at a time, in
phases A B B A repeated ROUNDS times, and reads the CPU time each phase cost the server process
and all `postgres` processes from /proc. Prints totals and per-phase medians per build.

    DATABASE_URL=postgresql://postgres:postgres@localhost:5497/agent_observability \\
    BASE_BIN=/path/to/old/agenttracer NEW_BIN=target/release/agenttracer ROUNDS=6 \\
    python3 benches/tools/ab_cpu.py [BODIES_PER_PHASE=10]

Use a scratch database (`AGENTTRACER_PGDATA=/tmp/abpg AGENTTRACER_PGPORT=5497
scripts/local-pg.sh start`) on an otherwise idle machine: a phase's CPU is in clock ticks (10 ms)
and PostgreSQL's includes every cluster on the machine.
"""
import json, os, random, statistics, subprocess, sys, threading, time, urllib.request, uuid

DB = os.environ["DATABASE_URL"]
ITEMS = os.environ.get("ITEMS") == "1"
# ITEMS=both: two builds (BASE_BIN, NEW_BIN) as without ITEMS, the items on every run of both.
BOTH = os.environ.get("ITEMS") == "both"
NEW_BIN = os.environ.get("NEW_BIN", "target/release/agenttracer")
BINS = {"base": NEW_BIN if ITEMS else os.environ["BASE_BIN"], "new": NEW_BIN}
LABELS = {"base": "without items", "new": "with items"} if ITEMS else {"base": "base", "new": "new"}
ROUNDS = int(os.environ.get("ROUNDS", "6"))
PER_PHASE = int(sys.argv[1]) if len(sys.argv) > 1 else 10
PORTS = {"base": 18100, "new": 18200}
MODELS = ["gpt-4o", "gpt-4o-mini", "claude-sonnet-4", "llama-3.1-70b"]


def run():
    steps = [{"seq": i, "step_type": ["plan", "retrieve", "tool", "llm", "respond"][i % 5], "name": f"step-{i}",
              "latency_ms": 10 + i, "started_at": "2026-12-01T12:00:00Z", "ended_at": "2026-12-01T12:00:01Z",
              "metadata": {"model": random.choice(MODELS), "provider": "openai", "input_tokens": random.randint(10, 2000),
                           "output_tokens": random.randint(1, 500), "temperature": 0.2, "tag": "x" * 200}}
             for i in range(10)]
    return {"run_id": str(uuid.uuid4()), "agent_id": "agent-%02d" % random.randint(0, 9), "agent_version": "1.0",
            "environment": "production", "status": "success", "started_at": "2026-12-01T12:00:00Z",
            "ended_at": "2026-12-01T12:00:05Z", "steps": steps}


def with_items(body):
    """benches/load/items.rs `add_behaviour`, the same items."""
    body["decisions"] = [
        {"decision_type": "tool_selection", "selected": "search_orders", "reason_code": "fresh_data_required",
         "candidates": ["search_orders", "order_cache"], "confidence": 0.82, "metadata": {"budget_ms": 800}},
        {"decision_type": "retrieval_strategy", "selected": "hybrid", "reason_code": "hybrid_approach_needed",
         "confidence": 0.7},
        {"decision_type": "response_mode", "selected": "streaming", "reason_code": "streaming_requested"}]
    body["quality_signals"] = [
        {"signal_type": "schema_valid", "signal_code": "full_match", "value": True, "weight": 0.9},
        {"signal_type": "tool_success", "signal_code": "first_attempt", "value": True},
        {"signal_type": "token_usage", "signal_code": "moderate_usage", "value": True, "metadata": {"tokens": 1840}}]
    return body


def cpu(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pg_cpu():
    total = 0.0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline") as f:
                if "postgres" in f.read():
                    total += cpu(int(pid))
        except OSError:
            pass
    return total


def post(port, body):
    req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/runs/batch", data=body,
                                 headers={"content-type": "application/json"})
    with urllib.request.urlopen(req) as res:
        res.read()


def main():
    procs = {}
    for name, binary in BINS.items():
        port = PORTS[name]
        env = {"PATH": os.environ["PATH"], "DATABASE_URL": DB, "INGEST_API_HOST": "127.0.0.1",
               "INGEST_API_PORT": str(port), "QUERY_API_HOST": "127.0.0.1", "QUERY_API_PORT": str(port + 1),
               "AGENTTRACER_SERVER__OTLP_GRPC_ADDR": f"127.0.0.1:{port + 2}", "LOG_LEVEL": "warn"}
        procs[name] = subprocess.Popen([binary, "serve", "--role", "all"], env=env,
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(4)
        for name, p in procs.items():
            if p.poll() is not None:
                sys.exit(f"{name} server exited (ports {PORTS[name]}+ in use?)")
        order = ["base", "new", "new", "base"] * ROUNDS
        def body(name):
            runs = [run() for _ in range(100)]
            if BOTH or (ITEMS and name == "new"):
                runs = [with_items(r) for r in runs]
            return json.dumps({"runs": runs}).encode()

        bodies = [body(name) for name in order for _ in range(PER_PHASE)]
        phases = {"base": [], "new": []}
        for k, name in enumerate(order):
            queue = bodies[k * PER_PHASE:(k + 1) * PER_PHASE]
            lock = threading.Lock()

            def worker():
                while True:
                    with lock:
                        if not queue:
                            return
                        body = queue.pop()
                    post(PORTS[name], body)

            pid = procs[name].pid
            c0, p0, t0 = cpu(pid), pg_cpu(), time.time()
            threads = [threading.Thread(target=worker) for _ in range(4)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            phases[name].append((cpu(pid) - c0, pg_cpu() - p0, time.time() - t0, PER_PHASE * 100))
        for name, ph in phases.items():
            n = sum(p[3] for p in ph)
            server, pg, secs = (sum(p[i] for p in ph) for i in range(3))
            med = [statistics.median(p[i] / p[3] * (1e6 if i < 2 else 1) for p in ph) for i in range(2)]
            print(f"{LABELS[name]}: {n} runs, server {server / n * 1e6:.1f} µs/run, postgres {pg / n * 1e6:.1f} µs/run, "
                  f"{n / secs:.0f} runs/s (phase medians: server {med[0]:.0f}, postgres {med[1]:.0f} µs/run)")
    finally:
        for p in procs.values():
            p.terminate()
            p.wait()


if __name__ == "__main__":
    main()
