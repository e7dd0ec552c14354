"""Sessions that teach long-term memory, across real `maas serve` processes: a server killed
mid-extraction has its job finished after a restart, once; two servers extract each message
once. Each `maas serve` runs extraction in its own low-priority child process (the default)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.extraction_queries import (
    QUICK_ENV,
    extraction_calls,
    teach,
    until_extracted,
)
from tests.support.fake_llm import FakeLLM
from tests.support.graphql_client import API_KEYS, KEY_A, add_messages
from tests.support.memory_queries import extraction, list_all
from tests.support.patience import patience, short

pytestmark = pytest.mark.single_and_cluster


def process_env(fake_llm: FakeLLM) -> dict[str, str]:
    """`maas serve` on the fake LLM with every session extracting, soon after each write."""
    return {
        "LLM_BASE_URL": fake_llm.base_url,
        "LLM_API_KEY": "test-key",
        "LLM_MAX_RETRIES": "0",
        # Short: a killed server's lease on its job lasts twice this (plus 10 s).
        "LLM_TIMEOUT_SECONDS": str(short(3)),
        "STM_LONG_TERM_EXTRACTION": "true",
        # What these tests check is the process's life (started, killed, restarted), not its
        # priority: at nice 19 a CPU hog beside the suite starves it (bench.extraction_bench
        # measures what the priority buys).
        "STM_EXTRACTION_NICENESS": "0",
        **QUICK_ENV,
    }


async def test_a_server_killed_mid_extraction_has_the_job_finished_after_a_restart(
    server_processes, redis, fake_llm: FakeLLM, connect
) -> None:
    (server,) = server_processes(1, API_KEYS, **process_env(fake_llm))
    api = await connect(server.url, KEY_A)
    await teach(api, "night", user_id="erin")
    # One reply for the killed server's call (answered to no one), one for the retry.
    fake_llm.script(extraction("Works nights"), extraction("Works nights"))
    fake_llm.hold()
    await add_messages(api, "night", "I work the night shift.")
    await fake_llm.until_in_flight(1)
    assert server.process is not None
    server.process.kill()
    server.process.wait()
    fake_llm.release()

    (restarted,) = server_processes(1, API_KEYS, **process_env(fake_llm))
    again = await connect(restarted.url, KEY_A)
    await until_extracted(again, "night", 1)
    assert extraction_calls(fake_llm, "night shift") == 2  # the one killed, the one after
    assert [m["text"] for m in await list_all(again, userId="erin")] == ["Works nights"]


async def test_two_servers_extract_each_message_once(
    server_processes, redis, fake_llm: FakeLLM, connect
) -> None:
    env = {
        **process_env(fake_llm),
        # Every LLM call is answered in time, however loaded the machine: a call that timed
        # out would be retried (rightly), and the count below is of calls, so only a message
        # extracted by both servers may make a second one.
        "LLM_TIMEOUT_SECONDS": str(patience(0.5)),
        # A queue of their own: the previous test's server, still up, must not take jobs.
        "REDIS_KEY_PREFIX": "maas-two-servers-test",
    }
    servers = server_processes(2, API_KEYS, **env)
    one, two = [await connect(server.url, KEY_A) for server in servers]
    fake_llm.set_delay(short(0.05))  # extractions overlap across the two
    sessions = [f"chat-{n}" for n in range(6)]
    for session_id in sessions:
        await teach(one, session_id, user_id="finn")
    for turn in range(3):
        for n, session_id in enumerate(sessions):
            writer = (one, two)[(n + turn) % 2]
            await add_messages(writer, session_id, f"Turn {turn} of session {n}.")
    for session_id in sessions:
        await until_extracted(one, session_id, 3)

    for turn in range(3):
        for n in range(len(sessions)):
            assert extraction_calls(fake_llm, f"Turn {turn} of session {n}.") == 1


def extraction_children(server_pid: int) -> list[int]:
    """The `maas extract` processes `maas serve` (server_pid) started."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
            command = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue  # gone meanwhile
        ppid = int(status.split("PPid:")[1].split()[0])
        if ppid == server_pid and command[-2:] == [b"extract", b""]:
            found.append(int(entry.name))
    return found


async def test_the_extraction_process_starts_once_jobs_wait(
    server_processes, redis, fake_llm: FakeLLM, connect
) -> None:
    # Extraction off by default: sessions opt in one by one.
    # A key prefix of its own: the module's other servers (and their extraction processes)
    # must not take this server's job.
    env = {
        **process_env(fake_llm),
        "STM_LONG_TERM_EXTRACTION": "false",
        "REDIS_KEY_PREFIX": "maas-launcher-test",
    }
    (server,) = server_processes(1, API_KEYS, **env)
    assert server.process is not None
    api = await connect(server.url, KEY_A)
    await add_messages(api, "plain", "Nothing to learn here.")
    # An idle extraction process costs ~100 MB: none runs while no job waits.
    assert extraction_children(server.process.pid) == []

    await teach(api, "taught", user_id="gus")
    fake_llm.script(extraction("Likes tea"))
    await add_messages(api, "taught", "I like tea.")
    await until_extracted(api, "taught", 1)
    assert len(extraction_children(server.process.pid)) == 1
    assert [m["text"] for m in await list_all(api, userId="gus")] == ["Likes tea"]
