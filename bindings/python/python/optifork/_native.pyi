"""Type stubs for OptiFork's native module (re-exported by ``optifork``)."""

from __future__ import annotations

import datetime
import os
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, TypeVar, Union

__version__: str

JSONValue = Union[None, bool, int, float, str, Sequence["JSONValue"], Mapping[str, "JSONValue"]]
"""A JSON-like value."""

AttributeValue = Union[None, bool, int, float, str, Sequence["AttributeValue"], Mapping[str, "AttributeValue"]]
"""What a context attribute may hold."""

ContextLike = Optional[Mapping[str, AttributeValue]]
"""A context: attributes by name. ``targetingKey`` (or ``user_id``) is the targeting key."""

Ruleset = Union[Mapping[str, Any], str, bytes]
"""A ruleset: a dict, or its JSON text."""

_D = TypeVar("_D")
_C = TypeVar("_C", bound=Callable[["Change"], Any])

def bucket(salt: str, unit: str) -> int:
    """The bucket (0-9999) of ``unit`` under ``salt``: the hash behind every percentage."""

class EvaluationDetails:
    """A flag's full result."""

    @property
    def flag_key(self) -> str: ...
    @property
    def value(self) -> Any:
        """The flag's value, or the default given when none is served."""
    @property
    def variant(self) -> Optional[str]: ...
    @property
    def reason(self) -> str:
        """``STATIC``, ``DEFAULT``, ``TARGETING_MATCH``, ``SPLIT``, ``DISABLED``,
        ``PREREQUISITE_FAILED`` or ``ERROR``."""
    @property
    def error_code(self) -> Optional[str]:
        """``FLAG_NOT_FOUND``, ``TYPE_MISMATCH`` or ``TARGETING_KEY_MISSING`` with ``ERROR``."""
    @property
    def rule_index(self) -> Optional[int]: ...

class Assignment:
    """An experiment assignment."""

    @property
    def experiment(self) -> str: ...
    @property
    def variant(self) -> str: ...
    @property
    def in_experiment(self) -> bool: ...
    @property
    def reason(self) -> str:
        """``ASSIGNED``, ``EXPERIMENT_NOT_FOUND``, ``INACTIVE``, ``TARGETING_MISMATCH``,
        ``OUTSIDE_LAYER``, ``NOT_ALLOCATED`` or ``TARGETING_KEY_MISSING``."""

class Status:
    """How fresh a client's ruleset is."""

    @property
    def state(self) -> str:
        """``NOT_READY``, ``READY``, ``STALE`` or ``ERROR``."""
    @property
    def source(self) -> Optional[str]:
        """``server``, ``bootstrap``, ``snapshot`` or ``manual``."""
    @property
    def version(self) -> Optional[int]: ...
    @property
    def environment(self) -> Optional[str]: ...
    @property
    def updated_at(self) -> Optional[datetime.datetime]: ...
    @property
    def confirmed_at(self) -> Optional[datetime.datetime]: ...
    @property
    def last_error(self) -> Optional[str]: ...
    @property
    def streaming(self) -> bool: ...
    @property
    def is_ready(self) -> bool: ...

class Change:
    """What changed when a new ruleset was installed."""

    @property
    def previous_version(self) -> Optional[int]: ...
    @property
    def version(self) -> int: ...
    @property
    def source(self) -> Optional[str]: ...
    @property
    def flags(self) -> List[str]: ...
    @property
    def configs(self) -> List[str]: ...
    @property
    def segments(self) -> List[str]: ...
    @property
    def experiments(self) -> List[str]: ...
    def flag_changed(self, name: str) -> bool: ...
    def config_changed(self, name: str) -> bool: ...

class _Evaluates:
    def is_enabled(self, flag: str, context: ContextLike = None) -> bool:
        """Whether a boolean flag is on; ``False`` for anything else."""
    def get_value(self, flag: str, context: ContextLike = None, default: Any = None) -> Any:
        """The flag's value whatever its type, or ``default`` when none is served."""
    def get_bool(self, flag: str, context: ContextLike = None, default: bool = False) -> bool: ...
    def get_string(self, flag: str, context: ContextLike = None, default: str = "") -> str: ...
    def get_float(self, flag: str, context: ContextLike = None, default: float = 0.0) -> float: ...
    def get_int(self, flag: str, context: ContextLike = None, default: int = 0) -> int: ...
    def get_json(self, flag: str, context: ContextLike = None, default: Any = None) -> Any: ...
    def evaluate_details(
        self, flag: str, context: ContextLike = None, default: Any = None
    ) -> EvaluationDetails: ...
    def config(self, name: str, context: ContextLike = None) -> Any:
        """The config resolved for the context (usually a dict); ``None`` if unknown."""
    def segments(self, context: ContextLike = None) -> List[str]: ...
    def in_segment(self, name: str, context: ContextLike = None) -> Optional[bool]: ...
    def assign(self, experiment: str, context: ContextLike = None) -> Assignment: ...
    def flag_names(self) -> List[str]: ...

class Engine(_Evaluates):
    """A compiled ruleset, evaluated offline (no exposures)."""

    @staticmethod
    def from_ruleset(ruleset: Ruleset) -> Engine:
        """Compiles a ruleset; raises ``InvalidRulesetError`` with the culprit's JSON path."""
    @property
    def version(self) -> int: ...
    @property
    def environment(self) -> str: ...

class Client(_Evaluates):
    """A client of an OptiFork server; usable as a context manager (closes on exit)."""

    def __init__(
        self,
        url: str,
        sdk_key: str,
        *,
        poll_interval: float = ...,
        streaming: bool = ...,
        request_timeout: float = ...,
        stream_idle_timeout: float = ...,
        bootstrap: Ruleset = ...,
        bootstrap_file: Union[str, os.PathLike[str]] = ...,
        snapshot_path: Union[str, os.PathLike[str]] = ...,
        exposure_batch_size: int = ...,
        flush_interval: float = ...,
        exposure_buffer_capacity: int = ...,
        exposure_dedup_capacity: int = ...,
        send_context_with_exposures: bool = ...,
        headers: Mapping[str, str] = ...,
        backoff_initial: float = ...,
        backoff_max: float = ...,
        close_timeout: float = ...,
        offline: bool = ...,
    ) -> None: ...
    def wait_until_ready(self, timeout: float = 5.0) -> Status:
        """Waits for the server's ruleset; raises ``NotReadyError`` or ``UnauthorizedError``."""
    def status(self) -> Status: ...
    @property
    def version(self) -> Optional[int]: ...
    def track(
        self,
        event: str,
        context: ContextLike = None,
        value: Optional[float] = None,
        properties: Optional[Mapping[str, JSONValue]] = None,
    ) -> None: ...
    def flush(self, timeout: float = 5.0) -> None:
        """Sends everything recorded; raises ``FlushTimeoutError`` if not acknowledged."""
    def close(self) -> None: ...
    def __enter__(self) -> Client: ...
    def __exit__(self, exc_type: Any = None, exc_value: Any = None, traceback: Any = None) -> bool: ...
    def on_change(self, callback: _C) -> _C:
        """Calls ``callback(change)`` after each new ruleset; returns ``callback``."""
    def remove_listener(self, callback: Callable[[Change], Any]) -> bool:
        """Removes a callback (compared with ==); returns whether it was registered."""
    def update_ruleset(self, ruleset: Ruleset) -> Change: ...
    def stats(self) -> Dict[str, int]: ...
