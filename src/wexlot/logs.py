"""Server logging: one line per event, as text (default) or JSON lines (``WEXLOT_LOG_FORMAT=json``).

Log records never include tokens, passwords or the JWT secret: the code that logs passes only ids,
reasons and counts.
"""

from __future__ import annotations

import json
import logging
import re
import sys


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


_SECRET_PARAMS = re.compile(r"((?:apikey|access_token|token)=)[^&\s\"']+", re.IGNORECASE)


class RedactSecrets(logging.Filter):
    """Blank API keys and tokens in logged URLs (uvicorn logs WebSocket URLs with ``?apikey=``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                _SECRET_PARAMS.sub(r"\1[redacted]", a) if isinstance(a, str) else a for a in record.args
            )
        if isinstance(record.msg, str):
            record.msg = _SECRET_PARAMS.sub(r"\1[redacted]", record.msg)
        return True


def configure(fmt: str = "text", level: str = "INFO") -> None:
    for name in ("uvicorn.access", "uvicorn.error"):
        target = logging.getLogger(name)
        if not any(isinstance(f, RedactSecrets) for f in target.filters):
            target.addFilter(RedactSecrets())
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger = logging.getLogger("wexlot")
    logger.handlers[:] = [handler]
    logger.setLevel(level)
    logger.propagate = False
