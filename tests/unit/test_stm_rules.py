"""Pure rules of short-term memory: input limits, config merging, event wire format."""

from datetime import UTC, datetime

import pytest

from services.errors import InvalidInput, LimitExceeded
from services.session_events import (
    SessionEventType,
    config_changed_prefix,
    decode_event,
    encode_event,
    messages_added_prefix,
)
from services.stm_config import effective_config, meta_fields
from services.stm_limits import StmLimits, check_config, check_messages, check_session_id
from services.stm_model import (
    ConfigChange,
    ConfigField,
    Message,
    NewMessage,
    Role,
    SessionConfig,
    Strategy,
)

DEFAULTS = SessionConfig(Strategy.SLIDING_WINDOW, 50, 8000, 86400)
LIMITS = StmLimits(max_messages_per_call=3, max_content_chars=10, max_metadata_bytes=20)


@pytest.mark.parametrize("good", ["a", "chat-42", "user:42:chat", "x.y_z@host", "A" * 128])
def test_session_ids_that_are_accepted(good: str):
    check_session_id(good)


@pytest.mark.parametrize("bad", ["", "-a", "a b", "a{b}", "A" * 129, "ä", "a/b"])
def test_session_ids_that_are_refused(bad: str):
    with pytest.raises(InvalidInput):
        check_session_id(bad)


def test_message_limits_each_have_their_error():
    ok = NewMessage(Role.USER, "hi")
    check_messages([ok], LIMITS)
    with pytest.raises(InvalidInput):
        check_messages([], LIMITS)
    with pytest.raises(LimitExceeded):
        check_messages([ok] * 4, LIMITS)
    with pytest.raises(LimitExceeded):
        check_messages([NewMessage(Role.USER, "x" * 11)], LIMITS)
    with pytest.raises(LimitExceeded):
        check_messages([NewMessage(Role.USER, "x", metadata={"k": "v" * 20})], LIMITS)
    with pytest.raises(InvalidInput):
        check_messages([NewMessage(Role.USER, "x", id="bad id")], LIMITS)
    with pytest.raises(InvalidInput):
        check_messages([NewMessage(Role.USER, "x", name="")], LIMITS)


def test_config_ranges_are_checked():
    check_config(ConfigChange(max_messages=1, max_tokens=100, ttl_seconds=0), LIMITS)
    for change in (
        ConfigChange(max_messages=0),
        ConfigChange(max_tokens=99),
        ConfigChange(ttl_seconds=-1),
    ):
        with pytest.raises(InvalidInput):
            check_config(change, LIMITS)


def test_session_overrides_win_and_resets_return_to_defaults():
    change = ConfigChange(
        strategy=Strategy.TOKEN_THRESHOLD,
        max_tokens=500,
        reset=frozenset({ConfigField.MAX_MESSAGES}),
    )
    fields = meta_fields(change)
    assert fields == {"strategy": "token_threshold", "max_tokens": "500", "max_messages": ""}
    merged = effective_config(DEFAULTS, {"strategy": "token_threshold", "max_tokens": "500"})
    assert merged == SessionConfig(Strategy.TOKEN_THRESHOLD, 50, 500, 86400)


def test_events_survive_the_wire():
    at = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
    message = Message("m1", 7, Role.USER, 'say "hi" ü', 9, at, metadata={"a": []})
    added = messages_added_prefix("s1", 1) + message.to_record() + "]}"
    event = decode_event("1-0", added, DEFAULTS)
    assert event.event_id == "1-0"
    assert event.type is SessionEventType.MESSAGES_ADDED
    assert event.messages == [message]
    summary = Message("sum", 7, Role.SYSTEM, "short", 4, at, is_summary=True)
    record = summary.to_record()
    encoded = encode_event(SessionEventType.SESSION_SUMMARIZED, "s1", 1, summary_record=record)
    assert decode_event("1-1", encoded, DEFAULTS).summary == summary
    # The store closes a config event with the session's meta hash as it is after the change;
    # the config is read from it as from a session read (its overrides, else the defaults).
    changed = config_changed_prefix("s1", 1) + '{"seq":"3","max_tokens":"500"}}'
    event = decode_event("1-2", changed, DEFAULTS)
    assert event.type is SessionEventType.CONFIG_CHANGED
    assert event.config == SessionConfig(DEFAULTS.strategy, DEFAULTS.max_messages, 500, 86400)


def test_records_start_with_seq_and_tokens_for_the_scripts():
    at = datetime(2026, 1, 1, tzinfo=UTC)
    assert Message("m", 0, Role.USER, "x", 5, at).to_record().startswith('{"seq":0,"tokens":5,')
