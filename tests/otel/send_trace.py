"""Sends one agent trace to AgentTracer with a real OpenTelemetry SDK exporter.

Usage: send_trace.py http-proto|grpc|http-json
The endpoint and headers come from the standard OTEL_EXPORTER_OTLP_TRACES_* variables. Prints the
trace id (32 hex digits). Spans are exported one by one as they end (children before the root),
so the trace reaches the server in several requests.
"""

import sys

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

kind = sys.argv[1]
if kind == "http-proto":
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
elif kind == "grpc":
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
elif kind == "http-json":
    from opentelemetry.exporter.otlp.json.http import OTLPSpanExporter
else:
    sys.exit(f"unknown exporter {kind}")

provider = TracerProvider(
    resource=Resource.create(
        {"service.name": "py-agent", "service.version": "0.9.1", "deployment.environment.name": "ci"}
    )
)
provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter()))
tracer = provider.get_tracer("agenttracer-exporter-test")

with tracer.start_as_current_span(
    "invoke_agent travel", attributes={"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": f"py-{kind}"}
) as root:
    # OpenTelemetry GenAI conventions.
    with tracer.start_as_current_span(
        "chat gpt-4o",
        attributes={
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": "gpt-4o",
            "gen_ai.usage.input_tokens": 120,
            "gen_ai.usage.output_tokens": 30,
            "gen_ai.input.messages": '[{"role": "user", "parts": [{"type": "text", "content": "secret question"}]}]',
        },
    ):
        pass
    try:
        with tracer.start_as_current_span(
            "execute_tool search",
            attributes={"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "search"},
        ):
            raise TimeoutError("search timed out")
    except TimeoutError:
        pass
    # OpenInference conventions.
    with tracer.start_as_current_span(
        "retrieve docs", attributes={"openinference.span.kind": "RETRIEVER", "input.value": "secret query"}
    ):
        pass
    with tracer.start_as_current_span(
        "llm call",
        attributes={
            "openinference.span.kind": "LLM",
            "llm.model_name": "claude-x",
            "llm.token_count.prompt": 50,
            "llm.token_count.completion": 7,
            "llm.input_messages.0.message.content": "secret prompt",
        },
    ):
        pass
    trace_id = root.get_span_context().trace_id

provider.shutdown()
print(f"{trace_id:032x}")
