"""The Lua scripts of the message store, loaded once per client."""

from __future__ import annotations

from importlib.resources import files

from redis.asyncio import Redis
from redis.commands.core import AsyncScript

_LUA = files("stores") / "lua"
_PRELUDE = (_LUA / "prelude.lua").read_text()


class Scripts:
    """Registered scripts; redis-py sends EVALSHA and reloads the script when Redis forgot it."""

    def __init__(self, redis: Redis) -> None:
        def load(name: str) -> AsyncScript:
            return redis.register_script(_PRELUDE + (_LUA / f"{name}.lua").read_text())

        self.append = load("append")
        self.read_window = load("read_window")
        self.read_page = load("read_page")
        self.replace_range = load("replace_range")
        self.set_config = load("set_config")
        self.release_lock = load("release_lock")
