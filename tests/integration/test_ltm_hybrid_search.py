"""Hybrid search through the LTM service and the real MiniLM embedder, on the embedded store and
on DocumentDB (the stand-in in tests/support/mongo_documents.py evaluates `$text` as the engine
does): HYBRID finds evidence that only its words give away and evidence that only its meaning
does; other users' and tenants' keyword matches never take this user's places; categories,
metadata and expiry hold for keyword hits; on the embedded store the keyword index (FTS5, kept
by triggers) follows every write — add, update, delete, the expiry sweep; and a store without
keyword search refuses KEYWORD and says once that HYBRID is semantic only."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import numpy as np
import pytest
from redis.asyncio import Redis

from maas.app import llm_config
from maas.ltm_wiring import build_ltm
from maas.settings import Settings
from services.errors import InvalidInput
from services.llm import LLMGateway
from services.ltm import LongTermMemory
from services.ltm_model import Category, MemoryHit, MemorySearch, NewMemory, Scope, SearchMode
from services.mem0_engine import EngineHandle
from stores.embedded_vectors import EmbeddedVectorStore
from stores.event_bus import RedisEventBus
from tests.support.mongo_documents import DocumentClient

TENANT = "t1"
ALICE = Scope(user_id="alice")

# Everyday recommendations: close in meaning to "what did X recommend", none naming Zbigniew.
RECOMMENDATIONS = [
    "My sister recommended a mystery novel for the flight.",
    "A colleague suggested trying the new ramen place downtown.",
    "The doctor advised me to walk thirty minutes every day.",
    "My neighbour recommended a plumber who fixed the sink quickly.",
    "A friend told me the museum's modern art wing is worth a visit.",
    "The barista suggested an oat milk flat white.",
    "My manager recommended a course on public speaking.",
    "The travel agent advised booking the ferry early.",
    "My cousin recommended a podcast about ancient history.",
    "The shop assistant suggested a lighter running shoe.",
    "A coworker recommended a budgeting app.",
    "My dentist suggested an electric toothbrush.",
]
KEYWORD_ONLY = "Zbigniew brought up the Caldera ridge path."  # no word of "recommend" in it
MEANING_ONLY = "Alice owns two cats and an old dog named Biscuit."  # no word of the query


@dataclass
class Clock:
    now: float = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Ltm:
    service: LongTermMemory
    engine: EngineHandle
    clock: Clock

    async def remember(self, text: str, scope: Scope = ALICE, tenant: str = TENANT, **kw) -> str:
        new = NewMemory(scope, text=text, infer=False, **kw)
        (memory,) = (await self.service.add(tenant, new)).added
        return memory.id

    async def found(self, query: str, mode: SearchMode, limit: int = 3, **kw) -> list[str]:
        search = MemorySearch(query, kw.pop("scope", ALICE), limit=limit, mode=mode, **kw)
        return [hit.memory.id for hit in await self.service.search(TENANT, search)]

    async def store(self) -> EmbeddedVectorStore:
        return (await self.engine.get()).vector_store


@contextlib.asynccontextmanager
async def _ltm(
    redis: Redis, settings: Settings, mongo: DocumentClient | None = None
) -> AsyncIterator[Ltm]:
    llm = LLMGateway(llm_config(settings))
    events = RedisEventBus(redis)
    clock = Clock()
    service, engine = build_ltm(
        settings, events, llm, asyncio.get_running_loop(), clock=clock, mongo_client=mongo
    )
    try:
        yield Ltm(service, engine, clock)
    finally:
        await asyncio.to_thread(engine.close)
        await events.close()
        await llm.close()


def _documentdb(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings(vector_store_provider="azure_documentdb")


@pytest.fixture(params=["embedded", "documentdb"])
async def ltm(
    request: pytest.FixtureRequest, redis: Redis, make_settings: Callable[..., Settings]
) -> AsyncIterator[Ltm]:
    if request.param == "embedded":
        context = _ltm(redis, make_settings())
    else:
        context = _ltm(redis, _documentdb(make_settings), DocumentClient())
    async with context as ltm:
        yield ltm


@pytest.fixture
async def embedded(redis: Redis, make_settings: Callable[..., Settings]) -> AsyncIterator[Ltm]:
    async with _ltm(redis, make_settings()) as ltm:
        yield ltm


async def test_hybrid_finds_what_only_the_words_give_away(ltm: Ltm) -> None:
    # 240 memories closer in meaning to the query (cosine 0.45) than the evidence (0.25), which
    # shares a rare word with it: the vectors are set so (the angle to the query decides).
    query = "What did Zbigniew recommend?"
    evidence = await ltm.remember(KEYWORD_ONLY)
    template_id = await ltm.remember(RECOMMENDATIONS[0])
    engine = await ltm.engine.get()
    store = engine.vector_store
    toward = np.asarray(await asyncio.to_thread(engine.embedding_model.embed, query, "search"))
    toward /= np.linalg.norm(toward)
    away = np.random.default_rng(7).normal(size=toward.shape)
    away -= (away @ toward) * toward
    away /= np.linalg.norm(away)
    template = (await asyncio.to_thread(store.get, template_id)).payload
    crowd = [f"crowd-{i:03d}" for i in range(240)]
    await asyncio.to_thread(
        store.insert,
        [list(toward + 1.985 * away) for _ in crowd],  # cosine 0.45 to the query
        [{**template, "data": RECOMMENDATIONS[i % len(RECOMMENDATIONS)]} for i in range(240)],
        crowd,
    )
    await asyncio.to_thread(store.update, evidence, list(toward + 3.873 * away))  # cosine 0.25

    assert evidence not in await ltm.found(query, SearchMode.SEMANTIC)
    assert evidence in await ltm.found(query, SearchMode.KEYWORD)
    assert evidence in await ltm.found(query, SearchMode.HYBRID)


async def test_hybrid_finds_what_only_the_meaning_gives_away(ltm: Ltm) -> None:
    for text in RECOMMENDATIONS:
        await ltm.remember(text)
    evidence = await ltm.remember(MEANING_ONLY)
    query = "Which pets does she have?"

    assert evidence not in await ltm.found(query, SearchMode.KEYWORD)
    assert evidence in await ltm.found(query, SearchMode.SEMANTIC)
    assert evidence in await ltm.found(query, SearchMode.HYBRID)


async def test_each_hit_carries_the_scores_its_mode_ranked_by(ltm: Ltm) -> None:
    await ltm.remember(KEYWORD_ONLY)
    query = "Zbigniew Caldera"
    for mode, present in [
        (SearchMode.SEMANTIC, ("semantic",)),
        (SearchMode.KEYWORD, ("keyword",)),
        (SearchMode.HYBRID, ("semantic", "keyword")),
    ]:
        (hit,) = await ltm.service.search(TENANT, MemorySearch(query, ALICE, mode=mode))
        assert hit.scores is not None
        parts = {k: getattr(hit.scores, k) for k in ("semantic", "keyword", "recency")}
        assert {k for k, v in parts.items() if v is not None} == set(present), mode
        assert all(0 < v <= 1 for v in parts.values() if v is not None)
        # SEMANTIC and KEYWORD: their one part; HYBRID: first in both lists.
        expected = 1.0 if mode is SearchMode.HYBRID else parts[present[0]]
        assert hit.score == pytest.approx(expected)


async def test_threshold_gates_closeness_by_meaning_or_words_in_hybrid(ltm: Ltm) -> None:
    await ltm.remember(KEYWORD_ONLY)
    await ltm.remember("Zbigniew likes tea")
    hits = await ltm.service.search(TENANT, MemorySearch("Zbigniew Caldera", ALICE))

    def closeness(hit: MemoryHit) -> float:
        return max(hit.scores.semantic or 0.0, hit.scores.keyword or 0.0)

    close, far = sorted(hits, key=closeness, reverse=True)
    assert closeness(close) > closeness(far)
    above = MemorySearch("Zbigniew Caldera", ALICE, threshold=closeness(far) + 0.01)
    at = MemorySearch("Zbigniew Caldera", ALICE, threshold=closeness(far) - 1e-9)
    assert [hit.memory.id for hit in await ltm.service.search(TENANT, above)] == [close.memory.id]
    assert len(await ltm.service.search(TENANT, at)) == 2


async def test_threshold_gates_the_modes_own_score(ltm: Ltm) -> None:
    await ltm.remember(KEYWORD_ONLY)
    await ltm.remember("Zbigniew likes tea")
    for mode in (SearchMode.SEMANTIC, SearchMode.KEYWORD):
        first, second = await ltm.service.search(
            TENANT, MemorySearch("Zbigniew Caldera", ALICE, mode=mode)
        )
        assert first.score > second.score, (mode, first.score, second.score)
        between = (first.score + second.score) / 2
        above = MemorySearch("Zbigniew Caldera", ALICE, mode=mode, threshold=between)
        found = await ltm.service.search(TENANT, above)
        assert [hit.memory.id for hit in found] == [first.memory.id]


async def test_many_keyword_matches_of_others_never_crowd_out_this_users(ltm: Ltm) -> None:
    # 150 closer keyword matches (the name twice, short texts) of another user and tenant.
    texts = [f"Zbigniew Zbigniew {i}" for i in range(150)]
    for scope, tenant in [(Scope(user_id="bob"), TENANT), (ALICE, "t2")]:
        for start in range(0, len(texts), 50):  # LTM_MAX_BATCH_SIZE
            new = [NewMemory(scope, text=t, infer=False) for t in texts[start : start + 50]]
            results = await ltm.service.add_many(tenant, new)
            assert all(r.error is None for r in results)
    mine = await ltm.remember(KEYWORD_ONLY)

    assert await ltm.found("Zbigniew", SearchMode.KEYWORD, limit=1) == [mine]
    assert await ltm.found("Zbigniew", SearchMode.HYBRID, limit=1) == [mine]


async def test_keyword_search_keeps_categories_metadata_and_expiry(ltm: Ltm) -> None:
    fact = await ltm.remember("Zbigniew likes tea", metadata={"topic": "drinks"})
    await ltm.remember("Zbigniew likes rain", metadata={"topic": "weather"}, ttl_seconds=60)
    event = await ltm.remember("Zbigniew Zbigniew met us", category=Category.EPISODIC)

    hits = await ltm.found("Zbigniew", SearchMode.KEYWORD, metadata={"topic": "drinks"})
    assert hits == [fact]
    episodic = [Category.EPISODIC]
    assert await ltm.found("Zbigniew", SearchMode.KEYWORD, categories=episodic) == [event]
    semantic = [Category.SEMANTIC]
    for mode in (SearchMode.KEYWORD, SearchMode.HYBRID):
        assert event not in await ltm.found("Zbigniew", mode, categories=semantic)
    ltm.clock.now += 61
    assert set(await ltm.found("Zbigniew", SearchMode.KEYWORD)) == {fact, event}
    assert set(await ltm.found("Zbigniew rain", SearchMode.HYBRID)) == {fact, event}


async def test_recency_half_life_prefers_the_newer_of_equal_matches(ltm: Ltm) -> None:
    old = await ltm.remember("Zbigniew moved to Gdansk")
    ltm.clock.now += 3600
    # The service stamps created_at from the wall clock; age both by the stored clock instead.
    new = await ltm.remember("Zbigniew moved to Krakow")
    store = await ltm.store()
    for memory_id, at in [(old, "2020-01-01T00:00:00+00:00"), (new, "2020-01-02T00:00:00+00:00")]:
        payload = (await asyncio.to_thread(store.get, memory_id)).payload
        await asyncio.to_thread(
            store.update, memory_id, None, {**payload, "created_at": at, "updated_at": at}
        )
    ltm.clock.now = 1577923200.0 + 86400  # 2020-01-03: one day after `new`, two after `old`

    search = MemorySearch("Zbigniew moved", ALICE, mode=SearchMode.KEYWORD)
    plain = await ltm.service.search(TENANT, search)
    assert all(hit.scores and hit.scores.recency is None for hit in plain)
    recent = MemorySearch(
        "Zbigniew moved", ALICE, mode=SearchMode.KEYWORD, recency_half_life_seconds=86400
    )
    hits = await ltm.service.search(TENANT, recent)
    assert hits[0].memory.id == new
    by_id = {hit.memory.id: hit for hit in hits}
    assert by_id[new].scores.recency == pytest.approx(0.5)
    assert by_id[old].scores.recency == pytest.approx(0.25)
    assert by_id[new].score == pytest.approx(by_id[new].scores.keyword * 0.5)


async def test_a_bad_half_life_is_refused(ltm: Ltm) -> None:
    for bad in (0.0, -1.0, float("inf"), float("nan")):
        with pytest.raises(InvalidInput):
            await ltm.service.search(
                TENANT, MemorySearch("x", ALICE, recency_half_life_seconds=bad)
            )


async def test_keyword_hits_follow_update_delete_and_the_expiry_sweep(ltm: Ltm) -> None:
    kept = await ltm.remember("Zbigniew plays chess")
    edited = await ltm.remember("Zbigniew plays tennis")
    deleted = await ltm.remember("Zbigniew plays golf")
    await ltm.remember("Zbigniew plays squash", ttl_seconds=60)

    await ltm.service.update(TENANT, edited, text="Zbigniew rows on the river")
    assert await ltm.found("tennis", SearchMode.KEYWORD) == []
    assert await ltm.found("rivers", SearchMode.KEYWORD) == [edited]  # stemmed on both sides
    await ltm.service.delete(TENANT, deleted)
    assert await ltm.found("golf", SearchMode.KEYWORD) == []
    ltm.clock.now += 61
    assert await ltm.service.delete_expired(TENANT) == 1
    assert set(await ltm.found("Zbigniew", SearchMode.KEYWORD, limit=10)) == {kept, edited}


async def test_without_keyword_search_keyword_is_refused_and_hybrid_said_semantic_once(
    redis: Redis, make_settings: Callable[..., Settings], caplog: pytest.LogCaptureFixture
) -> None:
    # A collection may hold one text index: someone else's leaves the store without ours.
    settings = _documentdb(make_settings)
    mongo = DocumentClient()
    memories = mongo[settings.mongodb_db_name][settings.mongodb_collection_name]
    memories.add_index({"name": "notes_text", "key": {"payload.notes": "text"}})
    async with _ltm(redis, settings, mongo) as ltm:
        kept = await ltm.remember(KEYWORD_ONLY)
        with pytest.raises(InvalidInput) as refused:
            await ltm.found("Zbigniew", SearchMode.KEYWORD)
        assert refused.value.code == "BAD_USER_INPUT"
        assert refused.value.details == {"field": "mode"}
        with caplog.at_level(logging.WARNING, logger="services.ltm"):
            hybrid = MemorySearch("Zbigniew Caldera", ALICE, mode=SearchMode.HYBRID)
            (hit,) = await ltm.service.search(TENANT, hybrid)
            assert await ltm.found("Zbigniew", SearchMode.HYBRID) == [kept]
        assert hit.memory.id == kept
        assert hit.scores is not None
        assert hit.scores.keyword is None
        assert hit.score == pytest.approx(hit.scores.semantic)  # ranked as SEMANTIC
        said = [r for r in caplog.records if "semantic only" in r.getMessage()]
        assert len(said) == 1


# ---- the keyword index follows every write ----------------------------------------------------


def _index(store: EmbeddedVectorStore) -> dict[str, str]:
    """id -> indexed text, read from the FTS5 table; and it indexes exactly the stored rows."""
    db = store.file.connection()
    rows = db.execute(
        "SELECT v.id, w.body, json_extract(v.payload, '$.data') FROM vector_words AS w "
        "JOIN vectors AS v ON v.rowid = w.rowid"
    ).fetchall()
    (words,) = db.execute("SELECT COUNT(*) FROM vector_words").fetchone()
    (vectors,) = db.execute("SELECT COUNT(*) FROM vectors").fetchone()
    assert words == vectors == len(rows)
    assert all(body == data for _, body, data in rows)
    return {id_: body for id_, body, _ in rows}


async def test_the_index_follows_add_update_delete_and_the_expiry_sweep(embedded: Ltm) -> None:
    store = await embedded.store()
    kept = await embedded.remember("Zbigniew plays chess")
    edited = await embedded.remember("Zbigniew plays tennis")
    deleted = await embedded.remember("Zbigniew plays golf")
    expiring = await embedded.remember("Zbigniew plays squash", ttl_seconds=60)
    assert set(_index(store)) == {kept, edited, deleted, expiring}

    await embedded.service.update(TENANT, edited, text="Zbigniew rows on the river")
    assert _index(store)[edited] == "Zbigniew rows on the river"
    assert await embedded.found("tennis", SearchMode.KEYWORD) == []
    assert await embedded.found("river", SearchMode.KEYWORD) == [edited]

    await embedded.service.update(TENANT, kept, metadata={"why": "metadata only"})
    assert _index(store)[kept] == "Zbigniew plays chess"

    await embedded.service.delete(TENANT, deleted)
    assert deleted not in _index(store)
    assert await embedded.found("golf", SearchMode.KEYWORD) == []

    embedded.clock.now += 61
    assert await embedded.service.delete_expired(TENANT) == 1
    assert set(_index(store)) == {kept, edited}


async def test_a_failed_write_leaves_the_index_as_it_was(embedded: Ltm) -> None:
    store = await embedded.store()
    kept = await embedded.remember("Zbigniew plays chess")
    with pytest.raises(sqlite3.IntegrityError):  # the id exists: the whole insert rolls back
        await asyncio.to_thread(
            store.insert,
            [[1.0] * store.dims] * 2,
            [{"data": "new one"}, {"data": "dup"}],
            ["fresh", kept],
        )
    assert _index(store) == {kept: "Zbigniew plays chess"}


async def test_a_file_from_before_the_index_is_indexed_when_opened(embedded: Ltm) -> None:
    store = await embedded.store()
    kept = await embedded.remember("Zbigniew plays chess")
    with store.file.write() as db:
        for name in ("vector_words_insert", "vector_words_delete", "vector_words_update"):
            db.execute(f"DROP TRIGGER {name}")
        db.execute("DROP TABLE vector_words")
    reopened = EmbeddedVectorStore(store.collection_name, store.dims, str(store.file.path))
    try:
        assert _index(reopened) == {kept: "Zbigniew plays chess"}
        hits = reopened.keyword_search("chess", 5, {"tenant": TENANT})
        assert [hit.id for hit in hits] == [kept]
    finally:
        reopened.close()
