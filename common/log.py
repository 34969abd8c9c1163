"""JSON log lines, one object per line, each carrying the actor's name.

Actors log to stdout; supervisord writes each actor's stdout to its own
rotated file, so one file per actor holds nothing but that actor's lines.
"""

from __future__ import annotations

import logging
import sys
import time
import warnings

import msgspec

_encoder = msgspec.json.Encoder(enc_hook=repr)
_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def __init__(self, actor: str):
        super().__init__()
        self.actor = actor

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "actor": self.actor,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        line.update({k: v for k, v in record.__dict__.items() if k not in _STANDARD})
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return _encoder.encode(line).decode()


def setup(actor: str, level: str = "INFO") -> logging.Logger:
    """Route every logger (ours and the libraries') through one JSON handler."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter(actor))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.captureWarnings(True)
    # authlib warns about its own httpx integration, which schwab-py uses: not ours to fix.
    warnings.filterwarnings("ignore", message="The httpx module is deprecated")
    logging.getLogger("websockets").setLevel(logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    return logging.getLogger(actor)
