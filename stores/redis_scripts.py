"""The Lua scripts of the message store, event streams, limits and quotas, and how they are run."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from importlib.resources import files
from typing import TYPE_CHECKING, Any

from redis.exceptions import NoScriptError

if TYPE_CHECKING:
    from stores.redis_client import RedisClient

_LUA = files("stores") / "lua"
_PRELUDE = (_LUA / "prelude.lua").read_text()


class LuaScript:
    """A script sent as EVALSHA, and as EVAL when the server does not know it (a restarted
    node), which also teaches it that node. redis-py's own reload would SCRIPT LOAD on every
    master of a cluster, and so fail while any other master is down."""

    def __init__(self, redis: RedisClient, source: str) -> None:
        self._redis = redis
        self._source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()  # noqa: S324 - Redis's script id

    async def __call__(self, keys: Sequence[str], args: Sequence[Any] = ()) -> Any:
        try:
            return await self._redis.evalsha(self.sha, len(keys), *keys, *args)
        except NoScriptError:
            return await self._redis.eval(self._source, len(keys), *keys, *args)


class Scripts:
    """The scripts, each with the shared prelude."""

    def __init__(self, redis: RedisClient) -> None:
        def load(name: str) -> LuaScript:
            return LuaScript(redis, _PRELUDE + (_LUA / f"{name}.lua").read_text())

        self.append = load("append")
        self.read_window = load("read_window")
        self.read_page = load("read_page")
        self.replace_range = load("replace_range")
        self.set_config = load("set_config")
        self.delete_session = load("delete_session")
        self.release_lock = load("release_lock")
        self.fan_in = load("fan_in")
        self.page_sessions = load("page_sessions")
        self.forget_sessions = load("forget_sessions")
        self.append_event = load("append_event")
        self.count_new = load("count_new")
        # Long-term extraction: the queue's, and the session's.
        self.schedule_extraction = load("schedule_extraction")
        self.claim_extractions = load("claim_extractions")
        self.commit_extraction = load("commit_extraction")
        # Limits and quotas, each in the tenant's slot.
        self.rate_limit = load("rate_limit")
        self.reserve_messages = load("reserve_messages")
        self.release_lease = load("release_lease")
        self.reserve_memories = load("reserve_memories")
        self.release_memories = load("release_memories")
