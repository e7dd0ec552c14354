import json
import logging
import logging.config
import sys
from datetime import UTC, datetime

from opentelemetry import trace

from maas.log_format import JsonFormatter, RequestContext, logging_config
from maas.log_redaction import RedactSecrets


def record(message: str, *args: object) -> logging.LogRecord:
    made = logging.LogRecord("maas.test", logging.WARNING, __file__, 1, message, args, None)
    RequestContext().filter(made)
    return made


def test_a_record_inside_a_span_carries_its_trace_and_span_ids():
    tracer = trace.get_tracer("test")
    with tracer.start_as_current_span("work") as span:
        line = JsonFormatter().format(record("stored %d messages", 3))
    entry = json.loads(line)
    assert entry["message"] == "stored 3 messages"
    assert entry["level"] == "WARNING"
    assert entry["logger"] == "maas.test"
    assert entry["trace_id"] == format(span.get_span_context().trace_id, "032x")
    assert entry["span_id"] == format(span.get_span_context().span_id, "016x")


def test_a_record_outside_any_request_has_no_ids():
    entry = json.loads(JsonFormatter().format(record("started")))
    assert not {"request_id", "trace_id", "span_id"} & entry.keys()


def test_exceptions_are_one_json_line():
    try:
        raise ValueError("boom")
    except ValueError:
        failed = record("failed")
        failed.exc_info = sys.exc_info()
    line = JsonFormatter().format(failed)
    assert "\n" not in line
    assert "ValueError: boom" in json.loads(line)["exception"]


def test_the_text_format_shows_the_ids_too():
    config = logging_config("info", "text")
    formatter = logging.Formatter(config["formatters"]["default"]["format"])
    with trace.get_tracer("test").start_as_current_span("work") as span:
        line = formatter.format(record("slow call"))
    assert f"trace={format(span.get_span_context().trace_id, '032x')}" in line
    assert line.endswith("slow call")


def test_the_config_quiets_chatty_libraries_at_every_level():
    loggers = logging_config("debug", "json")["loggers"]
    assert loggers["openlit"]["level"] == "WARNING"
    assert loggers["uvicorn.access"]["level"] == "DEBUG"


def test_mem0_which_logs_memory_texts_at_info_speaks_only_at_warning_or_debug():
    assert logging_config("info", "json")["loggers"]["mem0"]["level"] == "WARNING"
    assert logging_config("debug", "json")["loggers"]["mem0"]["level"] == "DEBUG"


def test_serving_processes_skip_record_details_no_format_shows(monkeypatch):
    for name in ("_srcfile", "logThreads", "logProcesses", "logMultiprocessing"):
        monkeypatch.setattr(logging, name, getattr(logging, name))  # restored after the test
    factory = logging_config("info", "json")["filters"]["ids"]["()"]
    assert isinstance(factory(), RequestContext)
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    logger = logging.getLogger("maas.test.lean")
    logger.addHandler(handler)
    try:
        logger.warning("served")
    finally:
        logger.removeHandler(handler)
    assert records[0].pathname == "(unknown file)"
    assert records[0].threadName is None
    assert records[0].processName is None


def test_the_time_is_what_isoformat_gives_to_the_millisecond():
    formatter = JsonFormatter()
    # Within one second (the second's text reused), across seconds, and a fraction that
    # rounds up into the next second.
    for created in (1764331234.0004, 1764331234.0005, 1764331234.999, 1764331235.5,
                    1764331235.9999996, 0.25, 1e9):  # fmt: skip
        made = record("tick")
        made.created = created
        expected = datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds")
        assert json.loads(formatter.format(made))["time"] == expected


def test_redaction_leaves_the_message_formatted_once():
    redactor = RedactSecrets(["sk-secret-123"])
    made = record("%s asked with %s", "client", "Bearer abc.def")
    assert redactor.filter(made)
    assert made.args == ()
    assert made.getMessage() == "client asked with Bearer [redacted]"
    plain = record("stored %d messages for %s", 3, "sk-secret-123")
    redactor.filter(plain)
    assert plain.getMessage() == "stored 3 messages for [redacted]"
    untouched = record("100%% of %d", 2)
    redactor.filter(untouched)
    assert untouched.getMessage() == "100% of 2"


def test_redaction_takes_a_message_that_is_not_a_string():
    # logging accepts any object as the message; a filter that raised would fail the caller.
    made = logging.LogRecord("maas.test", logging.INFO, __file__, 1, {"key": "sk-1"}, None, None)
    assert RedactSecrets(["sk-1"]).filter(made)
    assert made.getMessage() == "{'key': '[redacted]'}"


def test_the_configured_handler_writes_in_batches_at_the_given_interval():
    # What dictConfig builds from the config: LOG_FLUSH_SECONDS reaches the handler.
    from maas.log_stream import BatchedStreamHandler

    configurator = logging.config.DictConfigurator(
        logging_config("info", "json", flush_seconds=0.5)
    )
    spec = configurator.config["handlers"]["default"]  # converts ext://sys.stderr
    spec.pop("formatter")
    spec.pop("filters")
    handler = configurator.configure_handler(spec)
    try:
        assert isinstance(handler, BatchedStreamHandler)
        assert handler.flush_seconds == 0.5
        assert handler.stream is sys.stderr
    finally:
        handler.close()
