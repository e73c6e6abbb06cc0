#!/usr/bin/env python3
"""Process-level smoke test of compose.yaml (there is no Docker engine on these machines).

It reads the resolved compose configuration (the real Compose v2 binary, `config --format json`,
with compose.nginx.yaml and the nginx profile) and runs what compose would run, as processes:
PostgreSQL with the init scripts of the postgres service, the migrate service's command, two
ingest replicas and one query replica with their commands and environment, and real nginx with
the project's config in front. In a private mount namespace, /etc/hosts maps each service name to
its replicas' loopback addresses, as compose's network DNS would. Then it sends runs through nginx,
reads them back through nginx, and checks: the query role is connected as the read-only login
(pg_stat_activity), both ingest replicas served traffic, every replica serves /metrics in the
Prometheus format (promtool check metrics), /metrics is not public, and every replica exits 0 on
SIGTERM. Usage: scripts/compose_smoke.py [BINARY]  (default target/debug/agenttracer)
"""

import concurrent.futures
import glob
import json
import os
import pwd
import re
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ADDRESSES = {"postgres": ["127.0.0.5"], "ingest_api": ["127.0.0.2", "127.0.0.3"], "query_api": ["127.0.0.4"]}
NGINX = "127.0.0.10"


def say(msg):
    print(f"compose-smoke: {msg}", flush=True)


def fail(msg):
    say(f"FAIL: {msg}")
    sys.exit(1)


def pg_bin():
    bins = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]))
    if not bins:
        fail("no PostgreSQL server binaries (scripts/local-pg.sh install)")
    return bins[-1]


def as_postgres():
    user = pwd.getpwnam("postgres")

    def demote():
        os.setgid(user.pw_gid)
        os.setuid(user.pw_uid)

    return demote


def answers_200(url):
    """Whether GET `url` answers 200; a refused connection (not listening yet) is a no."""
    try:
        return http("GET", url)[0] == 200
    except (urllib.error.URLError, ConnectionError):
        return False


def http(method, url, body=None, headers=None):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=10) as res:
            return res.status, res.read().decode(), res.headers
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode(), err.headers


def compose_config():
    found = glob.glob(os.path.join(ROOT, ".venv-deploy/lib/python*/site-packages/compose/docker-compose"))
    if not found:
        fail("Compose binary missing: run scripts/check-deploy.sh first")
    out = subprocess.run(
        [found[0], "-f", "compose.yaml", "-f", "compose.nginx.yaml", "--profile", "nginx", "config", "--format", "json"],
        cwd=ROOT, check=True, capture_output=True, text=True,
    ).stdout
    return json.loads(out)["services"]


def main():
    binary = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "target/debug/agenttracer"))
    if not os.access(binary, os.X_OK):
        fail(f"{binary} is not built")
    services = compose_config()
    work = tempfile.mkdtemp(prefix="agenttracer-smoke-")
    os.chmod(work, 0o755)
    procs = []
    try:
        run(services, binary, work, procs)
    finally:
        # Gracefully first: a SIGKILLed nginx master leaves its workers (and ports) behind.
        for name, proc in reversed(procs):
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
        shutil.rmtree(work, ignore_errors=True)


def run(services, binary, work, procs):
    # Service names resolve to the replicas' addresses; `multi on` returns all of them.
    with open("/etc/hosts") as f:
        hosts = f.read()
    for name, addrs in ADDRESSES.items():
        hosts += "".join(f"{a} {name}\n" for a in addrs)
    for path, text in [(f"{work}/hosts", hosts), (f"{work}/host.conf", "multi on\n")]:
        with open(path, "w") as f:
            f.write(text)
    subprocess.run(["mount", "--bind", f"{work}/hosts", "/etc/hosts"], check=True)
    subprocess.run(["mount", "--bind", f"{work}/host.conf", "/etc/host.conf"], check=True)

    # postgres: initdb with the service's user, password and database, then its init scripts.
    pg_env = services["postgres"]["environment"]
    pgdata, sock = f"{work}/pgdata", f"{work}/socket"
    os.makedirs(sock)
    pg_uid = pwd.getpwnam("postgres")
    os.chown(sock, pg_uid.pw_uid, pg_uid.pw_gid)
    os.chown(work, pg_uid.pw_uid, pg_uid.pw_gid)
    with open(f"{work}/pwfile", "w") as f:
        f.write(pg_env["POSTGRES_PASSWORD"])
    subprocess.run(
        [f"{pg_bin()}/initdb", "-D", pgdata, "-U", pg_env["POSTGRES_USER"], f"--pwfile={work}/pwfile",
         "--auth-local=trust", "--auth-host=scram-sha-256", "--no-sync"],
        check=True, capture_output=True, preexec_fn=as_postgres(),
    )
    pg = subprocess.Popen(
        [f"{pg_bin()}/postgres", "-D", pgdata, "-p", "5432", "-k", sock, "-c", f"listen_addresses={ADDRESSES['postgres'][0]}"],
        stdout=open(f"{work}/postgres.log", "w"), stderr=subprocess.STDOUT, preexec_fn=as_postgres(),
    )
    procs.append(("postgres", pg))
    psql = ["psql", "-X", "-q", "-h", sock, "-p", "5432", "-U", pg_env["POSTGRES_USER"]]
    for _ in range(100):
        if subprocess.run(psql + ["-d", "postgres", "-c", "SELECT 1"], capture_output=True).returncode == 0:
            break
        time.sleep(0.1)
    subprocess.run(psql + ["-d", "postgres", "-c", f"CREATE DATABASE {pg_env['POSTGRES_DB']}"], check=True)
    init_dir = next(
        os.path.join(ROOT, v["source"]) for v in services["postgres"]["volumes"]
        if v["target"] == "/docker-entrypoint-initdb.d"
    )
    for script in sorted(glob.glob(f"{init_dir}/*.sh")):
        env = dict(os.environ, **pg_env, PGHOST=sock, PGPORT="5432")
        subprocess.run(["sh", script], env=env, check=True)
        say(f"ran postgres init script {os.path.relpath(script, ROOT)}")

    def service_env(name, address=None):
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AGENTTRACER_", "DATABASE_", "API_KEY", "LOG_"))}
        env.update({k: v for k, v in (services[name].get("environment") or {}).items() if v is not None})
        if address:  # each replica on its own address, as on its own container
            env.update(INGEST_API_HOST=address, QUERY_API_HOST=address, AGENTTRACER_SERVER__OTLP_GRPC_ADDR=f"{address}:4317")
        return env

    # migrate: the one-shot service's command.
    migrate = subprocess.run([binary] + services["migrate"]["command"], env=service_env("migrate"), capture_output=True, text=True)
    if migrate.returncode != 0:
        fail(f"migrate exited {migrate.returncode}: {migrate.stderr[-2000:]}")
    say(f"migrate: {' '.join(services['migrate']['command'])} exited 0")

    replicas = []
    for name, port in [("ingest_api", 8000), ("query_api", 8001)]:
        for i, address in enumerate(ADDRESSES[name]):
            log = open(f"{work}/{name}-{i}.log", "w")
            proc = subprocess.Popen([binary] + services[name]["command"], env=service_env(name, address), stdout=log, stderr=subprocess.STDOUT)
            procs.append((f"{name}#{i}", proc))
            replicas.append((f"{name}#{i}", address, port, proc))
    for label, address, port, proc in replicas:
        for _ in range(200):
            if proc.poll() is not None:
                fail(f"{label} exited {proc.returncode}: {open(work + '/' + label.replace('#', '-') + '.log').read()[-2000:]}")
            if answers_200(f"http://{address}:{port}/readyz"):
                break
            time.sleep(0.1)
        else:
            fail(f"{label} not ready")
        say(f"{label} ready at {address}:{port} ({' '.join(services[label.split('#')[0]]['command'])})")

    # nginx with the project's configuration: only its listen address and certificate paths change.
    os.makedirs(f"{work}/certs")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
         "-keyout", f"{work}/certs/tls.key", "-out", f"{work}/certs/tls.crt"], check=True, capture_output=True,
    )
    with open(os.path.join(ROOT, "deploy/nginx/nginx.conf")) as f:
        conf = f.read()
    conf = conf.replace("/etc/nginx/certs/", f"{work}/certs/")
    conf = re.sub(r"listen (\d+)", rf"listen {NGINX}:\1", conf)
    with open(f"{work}/nginx.conf", "w") as f:
        f.write(conf)
    nginx = subprocess.Popen(["nginx", "-c", f"{work}/nginx.conf", "-p", work, "-g", "daemon off;"],
                             stdout=open(f"{work}/nginx.log", "w"), stderr=subprocess.STDOUT)
    procs.append(("nginx", nginx))
    for _ in range(100):
        if answers_200(f"https://{NGINX}/healthz"):
            break
        time.sleep(0.1)
    else:
        fail("nginx did not start: " + open(f"{work}/nginx.log").read())
    say("nginx up with deploy/nginx/nginx.conf")

    # Traffic through nginx.
    api_key = services["ingest_api"]["environment"].get("API_KEY") or ""
    headers = {"Content-Type": "application/json"} | ({"X-API-Key": api_key} if api_key else {})
    run_ids = []
    for i in range(20):
        run_id = str(uuid.uuid4())
        run_ids.append(run_id)
        body = json.dumps({
            "run_id": run_id, "agent_id": "smoke", "agent_version": "1", "status": "success",
            "started_at": "2024-06-01T12:00:00Z", "ended_at": "2024-06-01T12:00:01Z",
            "steps": [{"seq": 0, "step_type": "llm", "name": "call", "latency_ms": 5,
                       "started_at": "2024-06-01T12:00:00Z", "ended_at": "2024-06-01T12:00:01Z",
                       "metadata": {"model": "m", "input_tokens": i}}],
        }).encode()
        status, text, _ = http("POST", f"https://{NGINX}/v1/runs", body, headers)
        if status != 201:
            fail(f"POST /v1/runs through nginx: {status} {text}")
    for run_id in run_ids:
        status, text, _ = http("GET", f"https://{NGINX}/v1/runs/{run_id}", headers=headers)
        if status != 200 or json.loads(text)["run_id"] != run_id:
            fail(f"GET /v1/runs/{run_id} through nginx: {status} {text}")
    status, text, _ = http("GET", f"https://{NGINX}/v1/runs?agent_id=smoke&page_size=100", headers=headers)
    if status != 200 or len(json.loads(text)) != 20:
        fail(f"GET /v1/runs through nginx: {status}")
    say("20 runs posted and read back through nginx (201, 200)")
    status, text, _ = http("GET", f"https://{NGINX}/metrics")
    if status != 404:
        fail("/metrics is public through nginx")
    if json.loads(text) != {"detail": "Not Found", "error": "Not Found", "status_code": 404, "path": "/metrics"}:
        fail(f"nginx's 404 body: {text}")
    say("/metrics is not public through nginx (404, with both error shapes)")
    # The web UI is the query role's, at /: the overview, or its login form when keys are set.
    status, text, answer_headers = http("GET", f"https://{NGINX}/")
    if status == 303 and answer_headers.get("Location", "").startswith("/login"):
        status, text, answer_headers = http("GET", f"https://{NGINX}/login")
    if status != 200 or not answer_headers.get("Content-Type", "").startswith("text/html") \
            or "script-src 'self'" not in answer_headers.get("Content-Security-Policy", "") \
            or "AgentTracer" not in text:
        fail(f"the web UI through nginx: {status} {dict(answer_headers)} {text[:300]}")
    say("the web UI answers at / through nginx (HTML, with its CSP)")
    # A browser posting runs sends a preflight first: it reaches the ingest role and is answered.
    origin = "http://localhost:5173"
    status, text, answer_headers = http("OPTIONS", f"https://{NGINX}/v1/runs", headers={
        "Origin": origin, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type,x-api-key"})
    if status != 200 or answer_headers.get("Access-Control-Allow-Origin") != origin \
            or "POST" not in answer_headers.get("Access-Control-Allow-Methods", ""):
        fail(f"CORS preflight of POST /v1/runs through nginx: {status} {text} {dict(answer_headers)}")
    say("a CORS preflight of POST /v1/runs through nginx is answered by the ingest role")

    # The query limit (50 r/s, burst 10): a concurrent burst meets 429 with Retry-After and JSON.
    with concurrent.futures.ThreadPoolExecutor(max_workers=30) as pool:
        answers = list(pool.map(lambda _: http("GET", f"https://{NGINX}/v1/agents", headers=headers), range(120)))
    limited = [r for r in answers if r[0] == 429]
    if not limited or any(r[0] not in (200, 429) for r in answers):
        odd = {r[1] for r in answers if r[0] not in (200, 429)}
        warnings = [line for line in open(f"{work}/query_api-0.log") if '"WARN"' in line or '"ERROR"' in line]
        fail(f"a burst of 120 query requests: {sorted({r[0] for r in answers})}: {odd}\n{''.join(warnings[-5:])}")
    status, text, answer_headers = limited[0]
    if answer_headers.get("Retry-After") != "1" or "detail" not in json.loads(text):
        fail(f"429 without Retry-After or JSON detail: {text} {dict(answer_headers)}")
    say(f"rate limit: {len(limited)} of a burst of 120 query requests answered 429 with Retry-After and JSON")

    # The query role reads as the read-only login.
    for app, login in [("agenttracer-read", "agenttracer_reader"), ("agenttracer-write", "agenttracer_writer")]:
        users = subprocess.run(
            psql + ["-d", pg_env["POSTGRES_DB"], "-At", "-c",
                    f"SELECT DISTINCT usename FROM pg_stat_activity WHERE application_name = '{app}'"],
            check=True, capture_output=True, text=True,
        ).stdout.split()
        if users != [login]:
            fail(f"{app} connected as {users}, not {login}")
    owner = subprocess.run(
        psql + ["-d", pg_env["POSTGRES_DB"], "-At", "-c", "SELECT DISTINCT tableowner FROM pg_tables WHERE tablename LIKE 'agent_%'"],
        check=True, capture_output=True, text=True,
    ).stdout.split()
    if owner != ["agenttracer_writer"]:
        fail(f"tables owned by {owner}")
    say("pg_stat_activity: the query role reads as agenttracer_reader, ingest writes as agenttracer_writer (owner of the tables)")

    # Every replica: Prometheus-format metrics; both ingest replicas served runs.
    promtool = shutil.which("promtool")
    for label, address, port, _ in replicas:
        status, text, _ = http("GET", f"http://{address}:{port}/metrics")
        if status != 200:
            fail(f"{label} /metrics: {status}")
        if promtool:
            lint = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True)
            if lint.returncode != 0:
                fail(f"{label} /metrics is not valid Prometheus text: {lint.stdout}{lint.stderr}")
        if label.startswith("ingest_api"):
            served = sum(
                float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                if line.startswith("http_requests_total{") and 'route="/v1/runs"' in line and 'method="POST"' in line
            )
            if served < 1:
                fail(f"{label} served no POST /v1/runs")
            say(f"{label} served {int(served)} of the 20 runs; /metrics valid")
        else:
            say(f"{label} /metrics valid")

    # SIGTERM: every replica exits 0.
    for label, _, _, proc in replicas:
        proc.send_signal(signal.SIGTERM)
    for label, _, _, proc in replicas:
        code = proc.wait(timeout=40)
        if code != 0:
            fail(f"{label} exited {code} on SIGTERM")
    say("every replica exited 0 on SIGTERM")
    nginx.terminate()
    pg.send_signal(signal.SIGINT)
    pg.wait(timeout=20)
    say("PASS")


if __name__ == "__main__":
    if os.environ.get("AGENTTRACER_SMOKE_NS") != "1":
        # A private mount namespace: /etc/hosts is replaced for this test only.
        os.execvpe("unshare", ["unshare", "--mount", "--", sys.executable, os.path.abspath(__file__)] + sys.argv[1:],
                   dict(os.environ, AGENTTRACER_SMOKE_NS="1"))
    main()
