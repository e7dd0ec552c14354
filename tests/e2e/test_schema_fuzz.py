"""Schema-driven fuzzing over real HTTP: hypothesis and hypothesis-graphql build queries and
mutations from schema.graphql, with plain values (to reach the resolvers and change state) or
hostile ones (lone surrogates, huge integers, NaN and Infinity, numbers no float holds written
as literals, deep and wide JSON, long strings, wrong types, another tenant's ids), as variables
and as literals, and send them as tenant A to a live server. For every request, the checks of
the bad-input corpus (test_bad_input_corpus.py): never a 5xx, strict RFC 8259 JSON, a code on
every error and never INTERNAL; then /health answers, tenant A's state still reads as strict
JSON (nothing stored reads back as NaN), and:

- tenant B, whom the fuzzer never authenticates as (though it names B's ids), is unchanged:
  its canary session, its canary memory, its lists;
- tenant A's canary session and memory, whose ids the fuzzer never names, are unchanged;
- all of tenant A's state is unchanged after a request that could not have written: a query;
  a request refused before execution (an HTTP error, or errors and no `data`); a mutation
  whose every root field was itself refused (an error at its root path). A mutation with
  several root fields may have run some before one failed (`data` is null then too), so
  nothing beyond the canaries is claimed for it. Left out of that comparison is what changes
  on its own: sessions and memories that may expire within the hour, sessions with the
  TOKEN_THRESHOLD strategy (summarized in the background after a write), and the tenant's
  newest event id (which such a summary moves).

Meanwhile tenant B reads in a loop on its own connection: none of its reads may fail, and
their p99 must stay within a loose bound of theirs before the fuzz. Subscriptions are generated
too, and must be refused over HTTP.

MAAS_FUZZ_EXAMPLES bounds the examples of each test. Without MAAS_FUZZ_SEED the run is
derandomized (the same examples every run); an integer seed gives another sequence.
"""

from __future__ import annotations

import contextlib
import json
import os
import statistics
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import hypothesis_graphql as hg
import pytest
from hypothesis import HealthCheck, event, given, note, seed, settings
from hypothesis import strategies as st

from tests.support.fuzz_requests import (
    FuzzRequest,
    VariableValues,
    literal_requests,
    subscription_requests,
    variable_requests,
)
from tests.support.fuzz_values import TRICKY_TEXT, Palette, hostile_json, hostile_text
from tests.support.graphql_client import ADD_MESSAGES, API_KEYS, KEY_A, KEY_B, bearer
from tests.support.memory_queries import ADD_MEMORY
from tests.support.patience import patience, short
from tests.support.reply_checks import assert_coded_json_reply, error_codes, strict_json

EXAMPLES = int(os.environ.get("MAAS_FUZZ_EXAMPLES", "60"))
SEED = os.environ.get("MAAS_FUZZ_SEED")
LOG = os.environ.get("MAAS_FUZZ_LOG")  # a file to append every request and reply to
MAX_BODY_BYTES = 3 * 1024 * 1024
# Tenant B's read p99 during the fuzz may be this many times its p99 before, or this many ms.
P99_FACTOR, P99_FLOOR_MS = 25, short(2000)
pytestmark = [
    # Generous: a failure is shrunk with real requests, many times the run itself.
    pytest.mark.timeout(300 + 10 * EXAMPLES),
    # The server runs on a thread of this process and libraries under it use the global
    # `random`; Hypothesis sees its state move while drawing and blames the strategies.
    pytest.mark.filterwarnings(
        "ignore:Do not use the `random` module inside strategies"
        ":hypothesis.errors.HypothesisDeprecationWarning"
    ),
]

# Sessions and memories of tenant A that the fuzzer may read, write and delete.
TARGET_SESSIONS = ("s1", "s2")
TARGET_USER = "u1"
# A's canary has an id the fuzzer never names; B's canary session has the id of one of A's
# targets, which the fuzzer names all the time.
CANARY_A = "canary-a"
CANARY_B = TARGET_SESSIONS[0]

DELETE_SESSION = "mutation($id: String!) { deleteSession(input: {sessionId: $id}) { sessionId } }"
EMPTY_METADATA = (
    "mutation($id: ID!) { updateMemory(input: {id: $id, metadata: {}}) { memory { id } } }"
)
STATE = """
query State($session: ID!, $memory: ID!) {
  canarySession: session(id: $session) {
    ...S
    messages(first: 500) {
      nodes { id seq role content name metadata tokenCount createdAt isSummary }
    }
  }
  canaryMemory: memory(id: $memory) { ...M history { event previousText newText at } }
  sessions(first: 500) { lastEventId nodes { ...S } }
  memories(first: 100) { nodes { ...M } }
}
fragment S on Session {
  id messageCount tokenCount summaryCount createdAt lastActivityAt lastEventId
  config { strategy maxMessages maxTokens ttlSeconds }
}
fragment M on Memory {
  id text category userId agentId sessionId metadata createdAt updatedAt expiresAt
}
"""


@dataclass
class Tenant:
    client: httpx.Client
    canary_session: str
    canary_memory: str = ""

    def post(self, query: str, **variables: Any) -> dict[str, Any]:
        reply = self.client.post("/graphql", json={"query": query, "variables": variables})
        try:
            body = strict_json(reply.text)
        except ValueError:
            raise Unreadable(json.loads(reply.text)) from None
        assert reply.status_code == 200, body
        assert not body.get("errors"), body
        return body["data"]

    def add_memory(self, text: str, user: str) -> str:
        memory = {"text": text, "userId": user, "infer": False}
        return self.post(ADD_MEMORY, input=memory)["addMemory"]["added"][0]["id"]

    def add_message(self, session_id: str, content: str) -> None:
        self.post(
            ADD_MESSAGES, sessionId=session_id, messages=[{"role": "USER", "content": content}]
        )

    def state(self) -> dict[str, Any]:
        return self.post(STATE, session=self.canary_session, memory=self.canary_memory)

    def repair(self) -> list[str]:
        """Makes the sessions and memories that do not read as JSON readable again (a
        memory's metadata emptied, a session deleted), so that the next example, or a replay
        of this one, starts as this one did; their ids."""
        try:
            self.state()
        except Unreadable as unreadable:
            state = unreadable.body["data"]
        else:
            return []
        repaired = []
        for node in state["sessions"]["nodes"]:
            if not is_json(node):
                self.post(DELETE_SESSION, id=node["id"])
                repaired.append(node["id"])
        for node in state["memories"]["nodes"]:
            if not is_json(node):
                self.post(EMPTY_METADATA, id=node["id"])
                repaired.append(node["id"])
        return repaired


class Unreadable(Exception):
    """A reply that is not strict JSON; `body` is what a lenient parser makes of it."""

    def __init__(self, body: Any) -> None:
        super().__init__("not strict JSON")
        self.body = body


def is_json(value: Any) -> bool:
    try:
        json.dumps(value, allow_nan=False)
    except ValueError:
        return False
    return True


@contextlib.contextmanager
def open_tenant(url: str, key: str, canary_session: str) -> Iterator[Tenant]:
    with httpx.Client(base_url=url, headers=bearer(key), timeout=patience(2)) as client:
        tenant = Tenant(client, canary_session)
        tenant.add_message(canary_session, "the canary's message")
        tenant.canary_memory = tenant.add_memory("the canary sings", "canary-user")
        yield tenant


def canaries(state: dict[str, Any]) -> tuple[Any, Any]:
    return state["canarySession"], state["canaryMemory"]


def settled(state: dict[str, Any]) -> dict[str, Any]:
    """The state without what may change on its own (see the module docstring)."""

    def stays(session: dict[str, Any]) -> bool:
        config = session["config"]
        return config["strategy"] != "TOKEN_THRESHOLD" and not 0 < config["ttlSeconds"] < 3600

    return {
        "canaries": canaries(state),
        "sessions": [s for s in state["sessions"]["nodes"] if stays(s)],
        "memories": [m for m in state["memories"]["nodes"] if m["expiresAt"] is None],
    }


@dataclass
class World:
    url: str
    fuzzed: Tenant  # tenant A: every fuzzed request is A's
    other: Tenant  # tenant B: never authenticated as by the fuzzer
    targets: tuple[str, ...]  # ids of A's the fuzzer names
    other_state: dict[str, Any] = field(default_factory=dict)
    fuzzed_canaries: tuple[Any, Any] = (None, None)
    outcomes: Counter[str] = field(default_factory=Counter)
    # What the fuzzer's thread did when: (start, end, a request or what else).
    spans: list[tuple[float, float, FuzzRequest | str]] = field(default_factory=list)

    @contextlib.contextmanager
    def span(self, what: FuzzRequest | str) -> Iterator[None]:
        start = time.monotonic()
        try:
            yield
        finally:
            self.spans.append((start, time.monotonic(), what))

    def requests(self) -> st.SearchStrategy[FuzzRequest]:
        # B's canary ids among the ids: A must not reach them by naming them.
        plain = Palette.plain((*self.targets, self.other.canary_memory))
        tricky = (*TRICKY_TEXT, CANARY_B, self.other.canary_memory)
        hostile = Palette.hostile(tricky)
        mixed = Palette.mixed((*self.targets, self.other.canary_memory), tricky)
        junk = st.none() | hostile_json(hostile_text(tricky, small=True), st.text(max_size=8))

        def with_variables(palette: Palette, origin: str, **kinds: bool) -> Any:
            return variable_requests(VariableValues(palette, junk, **kinds), palette, origin)

        return st.one_of(
            with_variables(plain, "vars plain", hostile=False, mistyped=False),
            with_variables(hostile, "vars hostile", hostile=True, mistyped=False),
            with_variables(hostile, "vars mistyped", hostile=True, mistyped=True),
            with_variables(mixed, "vars mixed", hostile=True, mistyped=False),
            literal_requests(plain, hg.Mode.POSITIVE, "literal plain"),
            literal_requests(mixed, hg.Mode.POSITIVE, "literal mixed"),
            literal_requests(hostile, hg.Mode.POSITIVE, "literal hostile"),
            literal_requests(plain, hg.Mode.NEGATIVE, "literal negative"),
        )

    def subscriptions(self) -> st.SearchStrategy[FuzzRequest]:
        return subscription_requests(Palette.hostile((*TRICKY_TEXT, CANARY_B)))


@pytest.fixture
def world(module_server: Callable[..., str], redis: Any) -> Iterator[World]:
    """Tenants A and B with their canaries, and A's targets, on an empty Redis. Memories
    live on in the module's server (its vector store is not Redis): tests leave them
    readable."""
    url = module_server(api_keys=API_KEYS)
    with open_tenant(url, KEY_A, CANARY_A) as fuzzed, open_tenant(url, KEY_B, CANARY_B) as other:
        for session_id in TARGET_SESSIONS:
            fuzzed.add_message(session_id, "hello")
        memories = tuple(fuzzed.add_memory(f"fact {i}", TARGET_USER) for i in range(2))
        world = World(url, fuzzed, other, (*TARGET_SESSIONS, TARGET_USER, *memories))
        world.other_state = other.state()
        world.fuzzed_canaries = canaries(fuzzed.state())
        yield world


class LatencyProbe:
    """Another client (tenant B) reading its canary session in a loop, on a connection of
    its own; its latencies and failures say whether the fuzzer's requests hurt others."""

    QUERY = "query($id: ID!) { session(id: $id) { messageCount } }"

    def __init__(self, url: str, tenant: Tenant) -> None:
        self._client = httpx.Client(
            base_url=url, headers=tenant.client.headers, timeout=patience(2)
        )
        self._session = tenant.canary_session
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="latency-probe", daemon=True)
        self.reads: list[tuple[float, float]] = []  # (start, seconds)
        self.failures: list[str] = []

    def _run(self) -> None:
        body = {"query": self.QUERY, "variables": {"id": self._session}}
        while not self._stop.is_set():
            start = time.monotonic()
            try:
                reply = self._client.post("/graphql", json=body)
                assert reply.status_code == 200, reply.text
                assert "errors" not in reply.json(), reply.text
            except (httpx.HTTPError, AssertionError) as error:
                self.failures.append(f"at {start:.3f}: {error!r}")
            self.reads.append((start, time.monotonic() - start))
            self._stop.wait(0.02)

    def __enter__(self) -> LatencyProbe:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        self._client.close()

    def p99_ms(self) -> float:
        if len(self.reads) < 2:
            return 0.0
        return statistics.quantiles([s for _, s in self.reads], n=100)[98] * 1000


def send(client: httpx.Client, request: FuzzRequest) -> httpx.Response:
    headers = {"accept": request.accept}
    if request.method == "GET":
        return client.get("/graphql", params=request.params(), headers=headers)
    headers["content-type"] = "application/json"
    return client.post("/graphql", content=request.body, headers=headers)


def could_not_write(request: FuzzRequest, status: int, body: dict[str, Any]) -> bool:
    """Whether the request cannot have changed anything (see the module docstring)."""
    if request.kind != "mutation" or status >= 400 or "data" not in body:
        return True
    if body["data"] is not None or not request.root_aliases:
        return False
    refused = {
        error["path"][0] for error in body.get("errors") or [] if len(error.get("path") or ()) == 1
    }
    return refused >= set(request.root_aliases)


def check(world: World, request: FuzzRequest) -> None:
    with world.span("tenant A's state, before"):
        before = settled(world.fuzzed.state())
    try:
        with world.span(request):
            reply = send(world.fuzzed.client, request)
    except httpx.TransportError as error:
        raise AssertionError(f"no reply: {error!r}") from error
    note(f"reply: {reply.status_code} {reply.text[:2000]}")
    body = assert_coded_json_reply(reply, request.origin)
    codes = sorted(set(error_codes(body)))
    outcome = (
        f"{request.origin}: {request.kind} {reply.status_code} "
        f"{'data' if body.get('data') else 'no data'} {codes}"
    )
    event(outcome)
    world.outcomes[outcome] += 1
    if LOG:
        with open(LOG, "a", encoding="utf-8", errors="backslashreplace") as log:
            log.write(f"{outcome}\n  {request.show(1000)}\n  => {reply.text[:1000]}\n")
    if request.kind == "subscription":
        # Refused: BAD_USER_INPUT, unless a size limit refused the body before it was read.
        assert body.get("data") is None, body
        assert codes, body
        assert set(codes) <= {"BAD_USER_INPUT", "LIMIT_EXCEEDED"}, body
    with world.span("health, states after"):
        health = world.fuzzed.client.get("/health")
        assert health.status_code == 200, health.text
        assert health.json() == {"status": "ok"}, health.text
        assert world.other.state() == world.other_state, "tenant B changed"
        try:
            after = world.fuzzed.state()
        except Unreadable:
            # Stored by this request: say so, and repair it, or every later example would fail.
            repaired = world.fuzzed.repair()
            raise AssertionError(
                f"after this request, tenant A's state no longer reads as JSON "
                f"({reply.status_code}: {reply.text[:1000]}); repaired {repaired}"
            ) from None
    assert canaries(after) == world.fuzzed_canaries, "tenant A's canary changed"
    if could_not_write(request, reply.status_code, body):
        assert settled(after) == before, "a request that could not write changed tenant A"


def fuzz(world: World, requests: st.SearchStrategy[FuzzRequest], examples: int) -> None:
    # Bodies far over the limit (2 MiB) are all refused alike, and building them would hold
    # this process (and so the server's thread) for seconds.
    @given(requests.filter(lambda request: len(request.body) <= MAX_BODY_BYTES))
    def run(request: FuzzRequest) -> None:
        check(world, request)

    run = settings(
        max_examples=examples,
        deadline=None,  # never depend on the machine's speed
        derandomize=SEED is None,
        database=None,
        print_blob=True,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.large_base_example,
            HealthCheck.filter_too_much,
        ],
    )(run)
    if SEED is not None:
        run = seed(int(SEED))(run)
    run()


def report(world: World, probe: LatencyProbe, baseline: LatencyProbe) -> None:
    """What the requests got, and how tenant B's reads fared: the slowest, with the fuzzed
    requests in flight meanwhile."""
    for outcome, count in world.outcomes.most_common():
        print(f"{count:5d}  {outcome}")
    print(
        f"tenant B's reads: p99 {probe.p99_ms():.0f} ms during the fuzz "
        f"({len(probe.reads)} reads), {baseline.p99_ms():.0f} ms before"
    )
    for start, seconds in sorted(probe.reads, key=lambda read: -read[1])[:3]:
        print(f"  a read of {seconds * 1000:.0f} ms, meanwhile the fuzzer's thread did:")
        for began, ended, what in world.spans:
            if began < start + seconds and ended > start:
                shown = what.show(300) if isinstance(what, FuzzRequest) else what
                print(f"    {(ended - began) * 1000:.0f} ms: {shown}")
    for failure in probe.failures:
        print(f"  a read failed {failure}")


def test_generated_operations_answer_coded_json_and_change_only_what_they_may(
    world: World,
) -> None:
    with LatencyProbe(world.url, world.other) as baseline:
        time.sleep(1)
    with LatencyProbe(world.url, world.other) as probe:
        fuzz(world, world.requests(), EXAMPLES)
    report(world, probe, baseline)
    assert not probe.failures, probe.failures
    # Loose: this process also builds the requests, so B's reads share its CPU; what this
    # catches is a request that stalls the server for seconds, again and again.
    assert probe.p99_ms() <= max(P99_FACTOR * baseline.p99_ms(), P99_FLOOR_MS)


def test_generated_subscriptions_are_refused_over_http(world: World) -> None:
    # Two fields only, each refused before it runs: a quarter of the examples is plenty.
    fuzz(world, world.subscriptions(), max(10, EXAMPLES // 4))


# Found by the fuzzer's hostile numbers written as GraphQL literals (which the strict JSON
# decoder of request bodies never sees): long-term memory keeps metadata of inf, -inf or NaN
# (1e400, -1e400, a 5000-digit integer) and answers with NaN/Infinity tokens, in this reply and
# in every later read of the memory. Short-term memory refuses the same metadata.
FOUND = [
    pytest.param(
        'mutation { addMemory(input: {text: "x", userId: "u1", infer: false, '
        "metadata: {a: 1e400}}) { added { metadata } } }",
        id="addMemory 1e400",
    ),
    pytest.param(
        'mutation { addMemory(input: {text: "x", userId: "u1", infer: false, '
        f"metadata: {{a: {'9' * 5000}}}}}) {{ added {{ metadata }} }} }}",
        id="addMemory 5000 digits",
    ),
    pytest.param(
        'mutation { addMemories(input: {items: [{text: "x", userId: "u1", infer: false, '
        "metadata: {a: 1e400}}]}) { results { ok result { added { metadata } } } } }",
        id="addMemories 1e400",
    ),
    pytest.param(
        'mutation { updateMemory(input: {id: "MEMORY", metadata: {a: -1e400}}) '
        "{ memory { metadata } } }",
        id="updateMemory -1e400",
    ),
]


@pytest.mark.parametrize("query", FOUND)
def test_found_requests_answer_coded_json_and_later_reads_stay_json(
    world: World, query: str
) -> None:
    memory_id = world.targets[-1]  # one of tenant A's memories, of user u1
    client = world.fuzzed.client
    try:
        reply = client.post("/graphql", json={"query": query.replace("MEMORY", memory_id)})
        assert_coded_json_reply(reply, query[:200])
        listing = 'query { memories(userId: "u1") { nodes { metadata } } }'
        assert_coded_json_reply(client.post("/graphql", json={"query": listing}), "a read")
    finally:
        world.fuzzed.repair()
