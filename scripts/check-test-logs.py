#!/usr/bin/env python3
"""Checks a test session's logs for secrets: scripts/check-test-logs.py DIR [--full].

DIR is the session's TEST_LOG_DIR: the harness lists there (file `secrets`) every API
key and database password the tests used, and writes there the logs of every service the tests
ran (in-process at debug level, and spawned binaries); scripts/test.sh adds cargo test's own
output. Fails when any secret appears in any log, and when there is too little to check (so that
it cannot pass by looking at nothing): with --full (the whole suite ran), at least 100 kB of logs.
"""

import pathlib
import sys


def main() -> int:
    root = pathlib.Path(sys.argv[1])
    least = 100_000 if "--full" in sys.argv[2:] else 1
    secrets = {
        line.strip()
        for line in (root / "secrets").read_text().splitlines()
        if line.strip()
    }
    logs = [p for p in sorted(root.iterdir()) if p.is_file() and p.name != "secrets"]
    total = sum(p.stat().st_size for p in logs)
    if len(secrets) < 3 or not logs or total < least:
        print(
            f"check-test-logs: too little to check ({len(secrets)} secrets, "
            f"{len(logs)} files, {total} bytes)",
            file=sys.stderr,
        )
        return 1
    found = []
    for path in logs:
        data = path.read_bytes()
        for secret in secrets:
            # As written, as a URL might carry it, and as Rust's Debug prints bytes (how
            # tokio-postgres logs bound values at debug level).
            as_bytes = ", ".join(str(b) for b in secret.encode())
            for form in {secret, secret.replace("-", "%2D"), as_bytes}:
                if form.encode() in data:
                    found.append((path.name, secret))
    for name, secret in found:
        print(f"check-test-logs: {name} contains the secret {secret[:3]}…", file=sys.stderr)
    print(
        f"check-test-logs: {len(secrets)} secrets, {len(logs)} log files, "
        f"{total / 1e6:.1f} MB: {'FOUND' if found else 'none found'}"
    )
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
