"""The Lua scripts of the message store and event streams, registered once per client."""

from __future__ import annotations

from importlib.resources import files
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from redis.commands.core import AsyncScript

    from stores.redis_client import RedisClient

_LUA = files("stores") / "lua"
_PRELUDE = (_LUA / "prelude.lua").read_text()


class Scripts:
    """Registered scripts; redis-py sends EVALSHA and reloads a script Redis forgot (on a
    cluster, on every master)."""

    def __init__(self, redis: RedisClient) -> None:
        def load(name: str) -> AsyncScript:
            return redis.register_script(_PRELUDE + (_LUA / f"{name}.lua").read_text())

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
