"""structlog set-up: JSON lines in production, a console renderer on a terminal, secrets never written.

Events are named `<area>.<what_happened>` (for example `sonarqube.user_created`) and carry ids, never
tokens or whole payloads. The redaction processor is a safety net for values that slip through anyway.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Mapping, MutableMapping
from typing import Any, Literal

import structlog

LogFormat = Literal["auto", "json", "console"]

REDACTED = "[redacted]"
_SECRET_KEYS = re.compile(
    r"(token|secret|password|authorization|credential|api[_-]?key|cookie)", re.IGNORECASE
)
_AUTH_VALUE = re.compile(r"\b(Basic|Bearer)\s+[A-Za-z0-9._~+/=-]+", re.IGNORECASE)


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        return _AUTH_VALUE.sub(lambda m: f"{m.group(1)} {REDACTED}", value)
    if isinstance(value, Mapping):
        return {k: REDACTED if _is_secret_key(k) else _scrub(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub(v) for v in value]
    return value


def _is_secret_key(key: object) -> bool:
    # Hashes of tokens are safe to log and useful for correlating cache entries.
    return isinstance(key, str) and bool(_SECRET_KEYS.search(key)) and not key.endswith("_hash")


def redact_secrets(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """Replace the values of secret-looking keys and `Basic`/`Bearer` credentials inside strings."""
    for key, value in list(event_dict.items()):
        event_dict[key] = REDACTED if _is_secret_key(key) else _scrub(value)
    return event_dict


def configure_logging(*, level: str = "info", fmt: LogFormat = "auto") -> None:
    """Configure structlog (and route the standard library's logging through the same output)."""
    numeric_level = logging.getLevelNamesMapping()[level.upper()]
    console = fmt == "console" or (fmt == "auto" and sys.stderr.isatty())
    renderer: structlog.typing.Processor = (
        structlog.dev.ConsoleRenderer() if console else structlog.processors.JSONRenderer()
    )
    shared: list[structlog.typing.Processor] = [
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        redact_secrets,
        structlog.processors.format_exc_info,
    ]
    structlog.configure(
        processors=[structlog.contextvars.merge_contextvars, *shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(numeric_level),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
    # Libraries' own log records (aiohttp, asyncio) come out in the same format, redacted the same way.
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(max(numeric_level, logging.WARNING))
