"""Session configuration: defaults from settings, per-session overrides kept in the meta hash."""

from __future__ import annotations

from services.stm_model import (
    ConfigChange,
    ConfigField,
    SessionConfig,
    SessionInfo,
    Strategy,
    ms_to_datetime,
)


def effective_config(defaults: SessionConfig, meta: dict[str, str]) -> SessionConfig:
    """The session's config: its overrides where set, the defaults elsewhere."""
    return SessionConfig(
        strategy=Strategy(meta.get("strategy", defaults.strategy)),
        max_messages=int(meta.get("max_messages", defaults.max_messages)),
        max_tokens=int(meta.get("max_tokens", defaults.max_tokens)),
        ttl_seconds=int(meta.get("ttl_seconds", defaults.ttl_seconds)),
        user_id=meta.get("user_id", defaults.user_id),
        agent_id=meta.get("agent_id", defaults.agent_id),
        long_term_extraction=_flag(meta.get("long_term_extraction"), defaults.long_term_extraction),
    )


def _flag(stored: str | None, default: bool) -> bool:
    """A yes/no override as the meta hash keeps it ("1"/"0"), or the default."""
    return default if stored is None else stored == "1"


def _stored(value: object) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


def meta_fields(change: ConfigChange) -> dict[str, str]:
    """The meta hash writes of a change ('' removes an override)."""
    # The meta hash field of a setting is named like the setting.
    fields = {name.value: "" for name in change.reset}
    for name in ConfigField:
        value = getattr(change, name.value)
        if value is not None:
            fields[name.value] = _stored(value)
    return fields


def session_info(session_id: str, meta: dict[str, str], defaults: SessionConfig) -> SessionInfo:
    return SessionInfo(
        id=session_id,
        message_count=int(meta.get("count", 0)),
        token_count=int(meta.get("tokens", 0)),
        summary_count=int(meta.get("summaries", 0)),
        created_at=ms_to_datetime(meta["created_at"]),
        last_activity_at=ms_to_datetime(meta["last_at"]),
        config=effective_config(defaults, meta),
        last_event_id=meta.get("last_event"),
    )
