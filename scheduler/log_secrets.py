"""Keeping credentials out of log records that libraries emit.

We never log a credential ourselves, but a library we hand one to may (kazoo logs every
request it sends at its BLATHER level, the digest ``Auth`` packet with "user:password"
included). A filter on each such library logger rewrites any record that holds a
registered secret, whatever its level, before a handler can see it.
"""

from __future__ import annotations

import logging
import threading

MASK = "***"


class SecretFilter(logging.Filter):
    """Replaces registered secrets in a record's message, traceback and stack."""

    def __init__(self) -> None:
        super().__init__()
        self._secrets: tuple[str, ...] = ()
        self._lock = threading.Lock()

    def add(self, secret: str) -> None:
        """Mask ``secret`` from now on, as it is and as repr() would show it."""
        forms = {secret, repr(secret)[1:-1], repr(secret.encode("utf-8", "replace"))[2:-1]}
        with self._lock:
            # longest first, so that a secret holding another is masked whole
            self._secrets = tuple(sorted(set(self._secrets) | {f for f in forms if f},
                                         key=len, reverse=True))

    def mask(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        if not self._secrets:
            return True
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: logging reports it itself
            return True
        masked = self.mask(message)
        if masked != message:
            record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.mask(record.exc_text)
        if record.stack_info:
            record.stack_info = self.mask(record.stack_info)
        return True


_filter = SecretFilter()
_installed: set[str] = set()
_install_lock = threading.Lock()


def hide_in_logs(logger_name: str, *secrets: str) -> logging.Logger:
    """The logger named ``logger_name``, filtered so that no record it emits shows any
    of ``secrets`` (or any secret registered before); give this logger to the library
    that receives the secrets. For a user:password pair, pass both the pair and the
    password."""
    for secret in secrets:
        if secret:
            _filter.add(secret)
    logger = logging.getLogger(logger_name)
    with _install_lock:
        if logger_name not in _installed:
            logger.addFilter(_filter)
            _installed.add(logger_name)
    return logger


def credential_parts(credentials: str) -> list[str]:
    """What to hide of "user:password": the pair, and the password when it is long
    enough that masking it cannot garble unrelated text."""
    _, _, password = credentials.partition(":")
    return [credentials] + ([password] if len(password) >= 4 else [])
