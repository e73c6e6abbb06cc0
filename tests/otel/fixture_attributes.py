"""Prints, as Markdown, the attribute keys of every span in OTLP/JSON fixtures (tests/fixtures/otlp/).

Usage: fixture_attributes.py FIXTURE.json [...]

One table per file, one row per span in start order, grouped by the scenario named on the root span
(`fixture.scenario`). Keys are listed by name; the values of the keys that identify an error, a tool
or a span kind, and of the non-content OpenAI attributes, are shown too (`key=value`). Events are
listed with their attribute keys (and exception.type's value). Standard library only.
"""

from __future__ import annotations

import json
import sys

SHOW_VALUES = {
    "error.type",
    "exception.type",
    "gen_ai.operation.name",
    "gen_ai.tool.name",
    "gen_ai.tool.type",
    "tool.name",
    "traceloop.span.kind",
    "traceloop.entity.name",
    "openinference.span.kind",
    "llm.request.type",
    "openai.request.service_tier",
    "openai.response.service_tier",
    "openai.response.system_fingerprint",
    "gen_ai.openai.response.system_fingerprint",
    "gen_ai.openai.system_fingerprint",
    "gen_ai.request.reasoning_effort",
}
KINDS = {0: "UNSPECIFIED", 1: "INTERNAL", 2: "SERVER", 3: "CLIENT", 4: "PRODUCER", 5: "CONSUMER"}
STATUS = {0: "UNSET", 1: "OK", 2: "ERROR"}


def value(v: dict):
    kind, inner = next(iter(v.items()))
    if kind == "arrayValue":
        return [value(x) for x in inner.get("values", [])]
    return inner


def keys(attributes: list) -> str:
    out = []
    for a in attributes:
        key = a["key"]
        out.append(f"`{key}={value(a['value'])}`" if key in SHOW_VALUES else f"`{key}`")
    return ", ".join(out) or "–"


def table(path: str) -> str:
    with open(path, encoding="utf-8") as f:
        doc = json.load(f)
    spans = []
    for resource_spans in doc["resourceSpans"]:
        for scope_spans in resource_spans["scopeSpans"]:
            scope = scope_spans.get("scope", {})
            for span in scope_spans["spans"]:
                spans.append((scope.get("name", ""), scope.get("version", ""), span))
    by_id = {span["spanId"]: span for _, _, span in spans}

    def scenario(span: dict) -> str:
        while span.get("parentSpanId") in by_id:
            span = by_id[span["parentSpanId"]]
        for a in span.get("attributes", []):
            if a["key"] == "fixture.scenario":
                return str(value(a["value"]))
        return "?"

    lines = [
        f"#### `{path.rsplit('/', 1)[-1]}`",
        "",
        "| scenario | span (kind, status) | scope | attributes | events |",
        "| --- | --- | --- | --- | --- |",
    ]
    for scope, version, span in sorted(spans, key=lambda t: int(t[2]["startTimeUnixNano"])):
        status = STATUS.get(span.get("status", {}).get("code", 0), "?")
        events = []
        for event in span.get("events", []):
            attrs = [
                f"{a['key']}={value(a['value'])}" if a["key"] in SHOW_VALUES else a["key"]
                for a in event.get("attributes", [])
            ]
            events.append(f"`{event['name']}`" + (f" ({', '.join(attrs)})" if attrs else ""))
        # Repeated events (stream chunks) once, with a count.
        counted = []
        for e in events:
            if counted and counted[-1][0] == e:
                counted[-1][1] += 1
            else:
                counted.append([e, 1])
        event_text = "; ".join(e if n == 1 else f"{e} ×{n}" for e, n in counted) or "–"
        lines.append(
            f"| {scenario(span)} | `{span['name']}` ({KINDS.get(span.get('kind', 0))}, {status}) "
            f"| {scope} {version} | {keys(span.get('attributes', []))} | {event_text} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print("\n".join(table(p) for p in sys.argv[1:]), end="")
