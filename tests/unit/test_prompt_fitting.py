"""How a memory prompt fits its budget (services/prompt_fitting.py), at its edges."""

from datetime import UTC, datetime

import pytest

from services.ltm_model import Category, MemoryHit, MemoryRecord, Scope
from services.memory_prompt import DEFAULT_QUERY_CHARS, default_query
from services.prompt_fitting import MEMORY_HEADER, fit_prompt, memory_text
from services.stm_model import ContextWindow, Message, Role, Strategy
from services.tokens import token_counter_for

TOKENS = token_counter_for("gpt-4.1-mini")
AT = datetime(2026, 1, 1, tzinfo=UTC)


def message(seq: int, content: str, role: Role = Role.USER, *, summary: bool = False) -> Message:
    return Message(
        id=f"m{seq}",
        seq=seq,
        role=role,
        content=content,
        tokens=TOKENS.count_message(role.value, content),
        created_at=AT,
        is_summary=summary,
    )


def hit(text: str, score: float) -> MemoryHit:
    record = MemoryRecord(
        id=f"mem-{text[:8]}", text=text, category=Category.FACT, scope=Scope("alice"),
        metadata={}, created_at=AT, updated_at=AT, expires_at=None,
    )  # fmt: skip
    return MemoryHit(record, score)


def system_tokens(hits: list[MemoryHit]) -> int:
    return TOKENS.count_message("system", memory_text(hits))


CONTEXT = [
    message(1, "Hello, I am planning a trip to Lisbon next month."),
    message(2, "Lovely! What would you like to know?", Role.ASSISTANT),
    message(3, "Which neighbourhood should I stay in?"),
]
HITS = [
    hit("Alice prefers quiet places.", 0.9),
    hit("Alice travels with a small dog.", 0.7),
    hit("Alice is vegetarian.", 0.4),
]
EVERYTHING = sum(m.tokens for m in CONTEXT) + system_tokens(HITS)


def test_a_budget_exactly_met_keeps_everything_memories_first_then_the_context():
    fitted = fit_prompt(CONTEXT, HITS, EVERYTHING, TOKENS)

    assert fitted.token_count == EVERYTHING
    assert [m.role for m in fitted.messages] == [Role.SYSTEM, Role.USER, Role.ASSISTANT, Role.USER]
    assert fitted.messages[0].content == memory_text(HITS)
    assert fitted.messages[0].content.splitlines()[0] == MEMORY_HEADER
    assert fitted.messages[0].message is None
    assert [m.message for m in fitted.messages[1:]] == CONTEXT
    assert fitted.memories == HITS
    assert (fitted.omitted_memories, fitted.omitted_message_count) == ([], 0)
    assert not fitted.over_budget
    assert fitted.token_count == sum(m.tokens for m in fitted.messages)


def test_one_token_less_and_the_oldest_message_yields_before_any_memory():
    fitted = fit_prompt(CONTEXT, HITS, EVERYTHING - 1, TOKENS)

    assert fitted.memories == HITS
    assert [m.message for m in fitted.messages[1:]] == CONTEXT[1:]
    assert fitted.omitted_message_count == 1
    assert fitted.token_count == EVERYTHING - CONTEXT[0].tokens


def test_older_messages_yield_newest_last_and_never_leave_a_gap():
    # Room for the newest and the memories, and the oldest message (smaller than the middle
    # one) but not the middle one: the oldest is left out too, as the window would.
    small_old = [message(1, "Hi"), CONTEXT[1], CONTEXT[2]]
    budget = CONTEXT[2].tokens + system_tokens(HITS) + small_old[0].tokens
    fitted = fit_prompt(small_old, HITS, budget, TOKENS)

    assert [m.message for m in fitted.messages[1:]] == [CONTEXT[2]]
    assert fitted.omitted_message_count == 2


def test_memories_yield_lowest_score_first_once_the_older_messages_are_gone():
    budget = CONTEXT[2].tokens + system_tokens(HITS[:2])
    fitted = fit_prompt(CONTEXT, HITS, budget, TOKENS)

    assert fitted.memories == HITS[:2]
    assert fitted.omitted_memories == HITS[2:]
    assert [m.message for m in fitted.messages[1:]] == [CONTEXT[2]]
    assert fitted.omitted_message_count == 2
    assert fitted.token_count == budget


def test_a_memory_that_does_not_fit_ends_the_memories_even_if_a_worse_one_would():
    long_best = hit("Alice " + "really " * 40 + "likes tiled facades.", 0.95)
    short_worse = hit("Alice is tall.", 0.3)
    budget = CONTEXT[2].tokens + system_tokens([short_worse]) + 5
    fitted = fit_prompt(CONTEXT[2:], [long_best, short_worse], budget, TOKENS)

    assert fitted.memories == []
    assert fitted.omitted_memories == [long_best, short_worse]
    assert [m.role for m in fitted.messages] == [Role.USER]


def test_the_newest_message_alone_over_the_budget_is_the_whole_prompt_and_flagged():
    fitted = fit_prompt(CONTEXT, HITS, CONTEXT[2].tokens - 1, TOKENS)

    assert [m.message for m in fitted.messages] == [CONTEXT[2]]
    assert fitted.over_budget
    assert fitted.token_count == CONTEXT[2].tokens
    assert fitted.omitted_memories == HITS
    assert fitted.omitted_message_count == 2


def test_the_newest_message_exactly_the_budget_is_not_over_it():
    fitted = fit_prompt(CONTEXT, HITS, CONTEXT[2].tokens, TOKENS)

    assert [m.message for m in fitted.messages] == [CONTEXT[2]]
    assert not fitted.over_budget


def test_without_memories_there_is_no_system_message():
    fitted = fit_prompt(CONTEXT, [], 10_000, TOKENS)

    assert [m.message for m in fitted.messages] == CONTEXT
    assert fitted.memories == fitted.omitted_memories == []


def test_without_messages_the_memories_fill_the_budget():
    fitted = fit_prompt([], HITS, system_tokens(HITS[:1]), TOKENS)

    assert [m.role for m in fitted.messages] == [Role.SYSTEM]
    assert fitted.memories == HITS[:1]
    assert fitted.omitted_message_count == 0
    assert not fitted.over_budget


def test_nothing_at_all_is_an_empty_prompt():
    fitted = fit_prompt([], [], 100, TOKENS)

    assert (fitted.messages, fitted.token_count, fitted.over_budget) == ([], 0, False)


def test_the_summary_comes_before_older_messages_and_after_the_memories():
    summary = message(
        0, "Earlier: Alice asked about flights to Lisbon and hotels.", Role.SYSTEM, summary=True
    )
    assert summary.tokens > CONTEXT[1].tokens
    window = [summary, *CONTEXT]
    # Room for all but one message besides the newest and the memories: the summary stays.
    budget = CONTEXT[2].tokens + system_tokens(HITS) + summary.tokens + CONTEXT[1].tokens
    fitted = fit_prompt(window, HITS, budget, TOKENS)

    assert [m.message for m in fitted.messages[1:]] == [summary, CONTEXT[1], CONTEXT[2]]
    assert fitted.omitted_message_count == 1

    # No room for the summary: older messages that fit still come.
    budget = CONTEXT[2].tokens + system_tokens(HITS) + CONTEXT[1].tokens
    fitted = fit_prompt(window, HITS, budget, TOKENS)
    assert [m.message for m in fitted.messages[1:]] == [CONTEXT[1], CONTEXT[2]]
    assert fitted.omitted_message_count == 2


def test_a_window_of_only_its_summary_keeps_it_as_the_newest_entry():
    summary = message(0, "Earlier: Alice asked about flights.", Role.SYSTEM, summary=True)
    fitted = fit_prompt([summary], HITS, 1, TOKENS)

    assert [m.message for m in fitted.messages] == [summary]
    assert fitted.over_budget


def window(*messages: Message) -> ContextWindow:
    return ContextWindow(list(messages), 0, Strategy.TOKEN_THRESHOLD, False, None, False)


@pytest.mark.parametrize(
    ("messages", "expected"),
    [
        ((), None),
        ((message(1, "Where to?"), message(2, "Lisbon.", Role.ASSISTANT)), "Where to?"),
        ((message(1, "First"), message(2, "   \n"), message(3, "ok", Role.TOOL)), "First"),
        ((message(1, "x", Role.ASSISTANT),), None),
    ],
)
def test_the_default_query_is_the_newest_user_message_with_text(
    messages: tuple[Message, ...], expected: str | None
):
    assert default_query(window(*messages)) == expected


def test_a_long_default_query_is_the_end_of_the_message():
    text = "a" * DEFAULT_QUERY_CHARS + "the question?"
    assert default_query(window(message(1, text))) == text[-DEFAULT_QUERY_CHARS:]


def test_the_memories_kept_are_exactly_those_that_fit_one_by_one_at_every_budget():
    """Whatever shortcut counts them, the outcome is the rule's: the best memories, each while
    the whole system message (counted exactly) still fits."""
    hits = [
        hit(f"Alice said fact number {i}: {'very ' * (i % 4)}important.", 1 - i / 50)
        for i in range(12)
    ]
    newest = CONTEXT[2]
    full = system_tokens(hits)
    for room in range(full + 3):
        expected = 0
        for count in range(1, len(hits) + 1):
            if system_tokens(hits[:count]) > room:
                break
            expected = count
        fitted = fit_prompt([newest], hits, newest.tokens + room, TOKENS)
        assert fitted.memories == hits[:expected], room
        assert fitted.token_count == newest.tokens + (
            system_tokens(hits[:expected]) if expected else 0
        )
