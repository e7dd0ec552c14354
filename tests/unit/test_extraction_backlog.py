"""What a session's backlog becomes in long-term memory: runs by scope, the roles and texts
sent, the scope and metadata of the memories; and the session config fields behind it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from services.ltm_model import Scope
from services.session_extraction import ExtractionTiming
from services.session_extraction_worker import (
    ExtractionWorker,
    WorkerOptions,
    _runs_by_scope,
)
from services.stm_config import effective_config, meta_fields
from services.stm_model import ConfigChange, ConfigField, Message, Role, SessionConfig, Strategy
from stores.extraction_jobs import BacklogEntry

DEFAULTS = SessionConfig(Strategy.SLIDING_WINDOW, 50, 8000, 86400)


def entry(seq: int, role: Role, content: str, user: str = "", agent: str = "") -> BacklogEntry:
    record = Message(
        id=f"m{seq}",
        seq=seq,
        role=role,
        content=content,
        tokens=1,
        created_at=datetime.now(UTC),
    ).to_record()
    return BacklogEntry.parse(f"{user}\n{agent}\n{record}")


def worker(*, llm: bool, max_chars: int = 100) -> ExtractionWorker:
    options = WorkerOptions(
        timing=ExtractionTiming(delay_ms=1000, batch=20, backlog_ttl=60),
        lease_ms=10_000,
        retry_max_ms=1000,
        llm_configured=llm,
        max_text_chars=max_chars,
    )
    return ExtractionWorker(jobs=Any, ltm=Any, options=options)  # type: ignore[arg-type]


def test_a_backlog_entry_keeps_its_scope_and_record() -> None:
    parsed = entry(3, Role.USER, "line one\nline two", user="alice")
    assert (parsed.user_id, parsed.agent_id) == ("alice", None)
    assert Message.from_record(parsed.record).content == "line one\nline two"


def test_runs_split_where_the_scope_changed() -> None:
    entries = [
        entry(1, Role.USER, "a", user="alice"),
        entry(2, Role.USER, "b", user="alice"),
        entry(3, Role.USER, "c", user="bob"),
        entry(4, Role.USER, "d", user="alice"),
    ]
    runs = [[e.record for e in run] for run in _runs_by_scope(entries)]
    assert runs == [
        [entries[0].record, entries[1].record],
        [entries[2].record],
        [entries[3].record],
    ]


def test_with_an_llm_both_sides_of_the_conversation_go_to_extraction() -> None:
    run = [
        entry(1, Role.SYSTEM, "be nice", user="alice"),
        entry(2, Role.USER, "I live in Lisbon", user="alice"),
        entry(3, Role.ASSISTANT, "Noted", user="alice"),
        entry(4, Role.USER, "   ", user="alice"),
    ]
    new = worker(llm=True)._new_memory("chat", run)
    assert new is not None
    assert new.messages == [("user", "I live in Lisbon", None), ("assistant", "Noted", None)]
    assert new.scope == Scope(user_id="alice")
    assert new.metadata == {"source": "session", "sessionId": "chat"}
    assert new.infer is None  # the service's default: extraction when an LLM is configured


def test_without_an_llm_only_the_users_messages_are_kept_cut_to_the_longest_text() -> None:
    run = [entry(1, Role.USER, "x" * 150), entry(2, Role.ASSISTANT, "Noted")]
    new = worker(llm=False, max_chars=100)._new_memory("chat", run)
    assert new is not None
    assert new.messages == [("user", "x" * 100, None)]
    assert new.scope == Scope(session_id="chat")  # neither userId nor agentId: the session's


def test_a_run_with_nothing_to_learn_from_is_no_memory() -> None:
    assert worker(llm=True)._new_memory("chat", [entry(1, Role.TOOL, "{}")]) is None


def test_the_new_config_fields_are_kept_in_meta_and_reset_to_their_defaults() -> None:
    change = ConfigChange(user_id="alice", agent_id="bot", long_term_extraction=True)
    meta = meta_fields(change)
    assert meta == {"user_id": "alice", "agent_id": "bot", "long_term_extraction": "1"}
    config = effective_config(DEFAULTS, meta)
    assert (config.user_id, config.agent_id, config.long_term_extraction) == ("alice", "bot", True)
    reset = meta_fields(ConfigChange(reset=frozenset({ConfigField.LONG_TERM_EXTRACTION})))
    assert reset == {"long_term_extraction": ""}
    on_by_default = SessionConfig(
        Strategy.SLIDING_WINDOW, 50, 8000, 86400, long_term_extraction=True
    )
    assert (
        effective_config(on_by_default, {"long_term_extraction": "0"}).long_term_extraction is False
    )
    assert effective_config(on_by_default, {}).long_term_extraction is True
