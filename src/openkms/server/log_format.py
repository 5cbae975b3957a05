"""One format for every line the server writes: openkms's own loggers, uvicorn's (which
propagate to the root logger: uvicorn is started without its own logging configuration) and
the request lines of ``openkms.audit.sink``. Plain text by default, JSON lines with
``--log-format json``."""

from __future__ import annotations

import datetime as dt
import json
import logging

LOG_FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s [%(process)d] %(name)s %(message)s"


class JsonLineFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "pid": record.process,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


def configure_logging(level: str, log_format: str = "text") -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(
        JsonLineFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)
    )
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    logging.getLogger("alembic").setLevel(logging.WARNING)
    for name in ("uvicorn", "uvicorn.error"):
        uvicorn_logger = logging.getLogger(name)
        uvicorn_logger.handlers.clear()
        uvicorn_logger.propagate = True
    # openkms writes its own request line (audit.sink.LogAuditSink). uvicorn decides whether
    # to write its access line by whether the logger has handlers, and a worker process
    # calls this after uvicorn's own set-up: without this every request was logged twice,
    # once through Python's logging, which costs a fifth of a warm Encrypt.
    access = logging.getLogger("uvicorn.access")
    access.handlers.clear()
    access.propagate = False
