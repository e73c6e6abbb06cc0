"""Records the spans a real OpenAI instrumentation library makes, as OTLP/JSON, for test fixtures.

Usage: capture_instrumentation.py LIBRARY [--out FILE]

LIBRARY is one of:
  genai               OpenTelemetry's opentelemetry-instrumentation-openai-v2, as its docs say to turn
                      content capture on: OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true
  genai-experimental  the same with OTEL_SEMCONV_STABILITY_OPT_IN=gen_ai_latest_experimental and
                      OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=span_and_event
  openinference       Arize's openinference-instrumentation-openai
  openllmetry         Traceloop's opentelemetry-instrumentation-openai (current release)
  openllmetry-old     the same package, an early-2025 release (its own venv)

What gets recorded depends on the venv's package versions (scripts/capture-otlp-fixtures.sh names
each file after them). For genai, the log events the library emits (where its content goes on its
default path) are counted on stderr; the output holds spans only.

The script starts a fake OpenAI-compatible server in a thread on 127.0.0.1 (port 18931, or any free
port when that one is taken), points the real `openai` client at it, instruments the client with
the chosen library (message content capture on) and runs five scenarios, each under an app-made
parent span `invoke_agent weather-bot`:

  plain         a chat completion (asks for reasoning_effort and service_tier)
  tool          a chat completion with a get_weather tool whose answer is a tool call, the tool run
                (a tool span made the way the library's conventions describe), and the follow-up
                completion with the tool's result
  stream        a streamed chat completion with stream_options.include_usage
  embeddings    an embeddings call
  rate_limited  a chat completion answered with HTTP 429; the app catches openai.RateLimitError and
                records it on the parent span (record_exception + status ERROR)

The parent span carries `fixture.scenario` with the scenario's name. The spans are kept by an
InMemorySpanExporter and encoded with the SDK's own OTLP encoder into an ExportTraceServiceRequest,
written as OTLP/JSON (hex ids, int64 as strings, integer enums) to stdout or --out.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import struct
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LIBRARIES = ("genai", "genai-experimental", "openinference", "openllmetry", "openllmetry-old")

# Fixed values the fake server answers with, so fixtures differ only in ids and timestamps.
CREATED = 1767225600
SYSTEM_FINGERPRINT = "fp_fake_0001"
SERVICE_TIER = "default"
RESPONSE_MODEL_SUFFIX = "-2025-01-01"
PREFERRED_PORT = 18931

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}


# ---------------------------------------------------------------------------------------------
# The fake model server
# ---------------------------------------------------------------------------------------------


def _usage(prompt_tokens: int, completion_tokens: int) -> dict:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


class FakeOpenAI(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    counter = 0
    lock = threading.Lock()

    def log_message(self, format, *args):  # noqa: A002 - keep the server quiet
        pass

    def _next_id(self, prefix: str) -> str:
        with FakeOpenAI.lock:
            FakeOpenAI.counter += 1
            return f"{prefix}-fake{FakeOpenAI.counter:04d}"

    def _send_json(self, status: int, body: dict, headers: dict | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-request-id", self._next_id("req"))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):  # noqa: N802 - http.server's naming
        length = int(self.headers.get("Content-Length", "0"))
        request = json.loads(self.rfile.read(length) or b"{}")
        if self.path.endswith("/chat/completions"):
            self._chat(request)
        elif self.path.endswith("/embeddings"):
            self._embeddings(request)
        else:
            self._send_json(404, {"error": {"message": "not found", "type": "invalid_request_error"}})

    def _chat(self, request: dict) -> None:
        model = request.get("model", "gpt-4o-mini")
        if model == "rate-limited":
            self._send_json(
                429,
                {
                    "error": {
                        "message": "Rate limit reached for requests per min (RPM): Limit 3, Used 3.",
                        "type": "requests",
                        "param": None,
                        "code": "rate_limit_exceeded",
                    }
                },
                {"retry-after": "20"},
            )
            return
        messages = request.get("messages", [])
        has_tool_result = any(m.get("role") == "tool" for m in messages)
        if request.get("tools") and not has_tool_result:
            message = {
                "role": "assistant",
                "content": None,
                "refusal": None,
                "tool_calls": [
                    {
                        "id": "call_fake_weather_1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                    }
                ],
            }
            finish_reason = "tool_calls"
        elif has_tool_result:
            message = {"role": "assistant", "content": "It is 18 degrees and sunny in Paris.", "refusal": None}
            finish_reason = "stop"
        else:
            message = {"role": "assistant", "content": "Paris is sunny today (fake answer).", "refusal": None}
            finish_reason = "stop"
        response_model = model + RESPONSE_MODEL_SUFFIX
        usage = _usage(prompt_tokens=21, completion_tokens=9)
        if request.get("stream"):
            self._stream(request, response_model, message, finish_reason, usage)
            return
        self._send_json(
            200,
            {
                "id": self._next_id("chatcmpl"),
                "object": "chat.completion",
                "created": CREATED,
                "model": response_model,
                "system_fingerprint": SYSTEM_FINGERPRINT,
                "service_tier": SERVICE_TIER,
                "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish_reason}],
                "usage": usage,
            },
        )

    def _stream(self, request: dict, response_model: str, message: dict, finish_reason: str, usage: dict) -> None:
        completion_id = self._next_id("chatcmpl")

        def chunk(choices: list, chunk_usage: dict | None = None) -> dict:
            return {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": CREATED,
                "model": response_model,
                "system_fingerprint": SYSTEM_FINGERPRINT,
                "service_tier": SERVICE_TIER,
                "choices": choices,
                "usage": chunk_usage,
            }

        content = message.get("content") or ""
        words = content.split(" ")
        events = [chunk([{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}])]
        for i, word in enumerate(words):
            piece = word if i == 0 else " " + word
            events.append(chunk([{"index": 0, "delta": {"content": piece}, "finish_reason": None}]))
        events.append(chunk([{"index": 0, "delta": {}, "finish_reason": finish_reason}]))
        if (request.get("stream_options") or {}).get("include_usage"):
            events.append(chunk([], usage))
        body = b"".join(b"data: " + json.dumps(e).encode() + b"\n\n" for e in events) + b"data: [DONE]\n\n"
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("x-request-id", self._next_id("req"))
        self.end_headers()
        self.wfile.write(body)

    def _embeddings(self, request: dict) -> None:
        inputs = request.get("input")
        inputs = inputs if isinstance(inputs, list) else [inputs]
        data = []
        for index, _ in enumerate(inputs):
            vector = [0.125, -0.25, 0.5, 0.0625]
            if request.get("encoding_format") == "base64":
                embedding = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
            else:
                embedding = vector
            data.append({"object": "embedding", "index": index, "embedding": embedding})
        self._send_json(
            200,
            {
                "object": "list",
                "data": data,
                "model": request.get("model", "text-embedding-3-small"),
                "usage": {"prompt_tokens": 8, "total_tokens": 8},
            },
        )


def start_fake_server() -> ThreadingHTTPServer:
    # A fixed port when it is free, so the URL some libraries record (gen_ai.openai.api_base) is the
    # same from run to run; any free port otherwise.
    try:
        server = ThreadingHTTPServer(("127.0.0.1", PREFERRED_PORT), FakeOpenAI)
    except OSError:
        server = ThreadingHTTPServer(("127.0.0.1", 0), FakeOpenAI)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


# ---------------------------------------------------------------------------------------------
# Instrumentation, one library per run
# ---------------------------------------------------------------------------------------------


def configure_environment(library: str) -> None:
    """Content capture on, set before the library is imported (some read it at import)."""
    if library in ("genai", "genai-experimental"):
        if library == "genai-experimental":
            os.environ["OTEL_SEMCONV_STABILITY_OPT_IN"] = "gen_ai_latest_experimental"
            os.environ["OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"] = "span_and_event"
        else:
            os.environ["OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"] = "true"
    elif library in ("openllmetry", "openllmetry-old"):
        os.environ["TRACELOOP_TRACE_CONTENT"] = "true"
    # OpenInference captures content unless OPENINFERENCE_HIDE_* is set.


def instrument(library: str, tracer_provider, logger_provider) -> tuple[str, str]:
    """Instruments the openai package; returns (distribution name, version)."""
    from importlib.metadata import version

    if library.startswith("genai"):
        from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor

        OpenAIInstrumentor().instrument(tracer_provider=tracer_provider, logger_provider=logger_provider)
        dist = "opentelemetry-instrumentation-openai-v2"
    elif library == "openinference":
        from openinference.instrumentation.openai import OpenAIInstrumentor

        OpenAIInstrumentor().instrument(tracer_provider=tracer_provider)
        dist = "openinference-instrumentation-openai"
    else:
        from opentelemetry.instrumentation.openai import OpenAIInstrumentor

        OpenAIInstrumentor().instrument(tracer_provider=tracer_provider)
        dist = "opentelemetry-instrumentation-openai"
    return dist, version(dist)


def get_weather(city: str) -> str:
    """Current weather for a city."""
    return json.dumps({"city": city, "temperature_c": 18, "sky": "sunny"})


def run_tool(library: str, tracer_provider, tracer, call) -> str:
    """Runs the tool the model asked for, with a tool span the way the library's conventions say."""
    arguments = json.loads(call.function.arguments)
    if library.startswith("genai"):
        # OpenTelemetry's GenAI util (opentelemetry-util-genai) makes the execute_tool span.
        from opentelemetry.util.genai.handler import TelemetryHandler

        handler = TelemetryHandler(tracer_provider=tracer_provider)
        with handler.tool("get_weather", tool_type="function") as invocation:
            invocation.tool_call_id = call.id
            invocation.tool_description = WEATHER_TOOL["function"]["description"]
            if handler.should_capture_content():
                invocation.arguments = arguments
            result = get_weather(**arguments)
            if handler.should_capture_content():
                invocation.tool_result = result
        return result
    if library == "openinference":
        # OpenInference's own tool decorator (OITracer.tool): span kind TOOL, tool.name, input/output.
        from openinference.instrumentation import OITracer, TraceConfig

        oi_tracer = OITracer(tracer, config=TraceConfig())
        return oi_tracer.tool(get_weather)(**arguments)
    # OpenLLMetry: the traceloop-sdk @tool decorator's span, made by hand (the SDK is not installed):
    # name "<tool>.tool", traceloop.span.kind=tool, traceloop.entity.name/input/output.
    with tracer.start_as_current_span("get_weather.tool") as span:
        span.set_attribute("traceloop.span.kind", "tool")
        span.set_attribute("traceloop.entity.name", "get_weather")
        span.set_attribute("traceloop.entity.path", "weather-bot")
        span.set_attribute("traceloop.entity.input", json.dumps({"args": [], "kwargs": arguments}))
        result = get_weather(**arguments)
        span.set_attribute("traceloop.entity.output", json.dumps(result))
        return result


# ---------------------------------------------------------------------------------------------
# Scenarios
# ---------------------------------------------------------------------------------------------


def run_scenarios(library: str, tracer_provider, client) -> None:
    import openai
    from opentelemetry.trace import Status, StatusCode

    tracer = tracer_provider.get_tracer("weather-bot", "1.0.0")
    question = [{"role": "user", "content": "What's the weather in Paris?"}]

    def agent_span(scenario: str):
        return tracer.start_as_current_span(
            "invoke_agent weather-bot",
            attributes={
                "gen_ai.operation.name": "invoke_agent",
                "gen_ai.agent.name": "weather-bot",
                "fixture.scenario": scenario,
            },
        )

    with agent_span("plain"):
        client.chat.completions.create(
            model="o4-mini",
            messages=[{"role": "system", "content": "You are a fake weather bot."}] + question,
            reasoning_effort="low",
            service_tier="default",
            temperature=1,
            max_completion_tokens=64,
        )

    with agent_span("tool"):
        messages = list(question)
        first = client.chat.completions.create(model="gpt-4o-mini", messages=messages, tools=[WEATHER_TOOL])
        call = first.choices[0].message.tool_calls[0]
        result = run_tool(library, tracer_provider, tracer, call)
        messages.append(first.choices[0].message.model_dump(exclude_none=True))
        messages.append({"role": "tool", "tool_call_id": call.id, "content": result})
        client.chat.completions.create(model="gpt-4o-mini", messages=messages, tools=[WEATHER_TOOL])

    with agent_span("stream"):
        stream = client.chat.completions.create(
            model="gpt-4o-mini",
            messages=question,
            stream=True,
            stream_options={"include_usage": True},
        )
        for _ in stream:
            pass

    with agent_span("embeddings"):
        client.embeddings.create(model="text-embedding-3-small", input="What's the weather in Paris?")

    with agent_span("rate_limited") as span:
        try:
            client.chat.completions.create(model="rate-limited", messages=question)
        except openai.RateLimitError as e:
            span.record_exception(e)
            span.set_status(Status(StatusCode.ERROR, str(e)))


# ---------------------------------------------------------------------------------------------
# OTLP/JSON
# ---------------------------------------------------------------------------------------------

_ID_FIELDS = ("traceId", "spanId", "parentSpanId")


def _hex_ids(node):
    """protobuf's JSON mapping writes bytes as base64; OTLP/JSON writes trace and span ids as hex."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in _ID_FIELDS and isinstance(value, str):
                node[key] = base64.b64decode(value).hex()
            else:
                _hex_ids(value)
    elif isinstance(node, list):
        for item in node:
            _hex_ids(item)
    return node


def to_otlp_json(spans) -> dict:
    from google.protobuf.json_format import MessageToDict
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

    request = encode_spans(spans)
    return _hex_ids(MessageToDict(request, use_integers_for_enums=True))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("library", choices=LIBRARIES)
    parser.add_argument("--out", help="write here instead of stdout")
    args = parser.parse_args()

    configure_environment(args.library)

    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor

    resource = Resource.create({"service.name": "weather-bot", "fixture.library": args.library})
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    log_exporter = InMemoryLogRecordExporter()
    logger_provider = LoggerProvider(resource=resource)
    logger_provider.add_log_record_processor(SimpleLogRecordProcessor(log_exporter))
    dist, dist_version = instrument(args.library, provider, logger_provider)

    import openai

    server = start_fake_server()
    client = openai.OpenAI(
        api_key="sk-fake-not-a-secret",
        base_url=f"http://127.0.0.1:{server.server_address[1]}/v1",
        max_retries=0,  # one request for the 429, not the client's retries
    )
    try:
        run_scenarios(args.library, provider, client)
    finally:
        time.sleep(0.1)
        server.shutdown()
    provider.shutdown()
    logger_provider.shutdown()

    spans = exporter.get_finished_spans()
    document = to_otlp_json(spans)
    text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            f.write(text)
    else:
        sys.stdout.write(text)
    from importlib.metadata import PackageNotFoundError, version

    util = ""
    if args.library.startswith("genai"):
        try:
            util = f", opentelemetry-util-genai {version('opentelemetry-util-genai')}"
        except PackageNotFoundError:
            pass
    logs = log_exporter.get_finished_logs()
    names = sorted({str(getattr(log.log_record, "event_name", None)) for log in logs})
    print(
        f"{args.library}: {dist} {dist_version}{util}, openai {openai.__version__}, {len(spans)} spans, "
        f"{len(logs)} log records (not written){' ' + str(names) if logs else ''}",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
