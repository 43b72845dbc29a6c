"""The exceptions OptiFork raises. Every one is an :class:`OptiForkError`; most also derive
from the built-in exception that fits (``ValueError``, ``TypeError``, ``TimeoutError``,
``PermissionError``), so code that already catches those keeps working."""

from __future__ import annotations

from typing import Optional

__all__ = [
    "OptiForkError",
    "InvalidRulesetError",
    "InvalidOptionError",
    "InvalidContextError",
    "NotReadyError",
    "UnauthorizedError",
    "FlushTimeoutError",
    "InternalError",
]


class OptiForkError(Exception):
    """The base of every OptiFork error."""


class InvalidRulesetError(OptiForkError, ValueError):
    """A ruleset that does not parse or compile. ``path`` is the JSON path of the culprit
    (``$.flags[0].targeting_rules.age["$gtx"]``) and ``code`` a stable machine-readable code
    (``unknown_operator``, ``invalid``, ...)."""

    def __init__(self, message: str, path: Optional[str] = None, code: Optional[str] = None):
        super().__init__(message)
        self.path = path
        self.code = code


class InvalidOptionError(OptiForkError, ValueError):
    """A client option (or the URL) with a value out of range. ``option`` names it."""

    def __init__(self, message: str, option: Optional[str] = None):
        super().__init__(message)
        self.option = option


class InvalidContextError(OptiForkError, TypeError):
    """A context that is not a dict of attributes with str keys and JSON-like values."""


class NotReadyError(OptiForkError, TimeoutError):
    """``wait_until_ready`` gave up: no ruleset came from the server in time."""


class UnauthorizedError(OptiForkError, PermissionError):
    """The server refused the SDK key."""


class FlushTimeoutError(OptiForkError, TimeoutError):
    """``flush`` or ``close`` ran out of time with exposures or events still unacknowledged."""


class InternalError(OptiForkError):
    """A bug inside OptiFork (a Rust panic caught at the boundary). Please report it."""
