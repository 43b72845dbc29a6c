"""OptiFork: feature flags, remote configs, segments and A/B experiments evaluated in your
own process, by OptiFork's Rust core.

>>> import optifork
>>> engine = optifork.Engine.from_ruleset({"flags": [{"name": "beta", "is_enabled": True}]})
>>> engine.is_enabled("beta", {"targetingKey": "user-1"})
True

``Client(url, sdk_key, **options)`` keeps a ruleset fresh from an OptiFork server and sends
exposures and events back; ``Engine.from_ruleset(...)`` evaluates a fixed ruleset offline.
Contexts are plain dicts: the targeting key is ``targetingKey`` (or ``user_id``), every entry
is an attribute. ``optifork.openfeature.OptiForkProvider`` is an OpenFeature provider.
"""

from ._errors import (
    FlushTimeoutError,
    InternalError,
    InvalidContextError,
    InvalidOptionError,
    InvalidRulesetError,
    NotReadyError,
    OptiForkError,
    UnauthorizedError,
)
from ._native import (
    Assignment,
    Change,
    Client,
    Engine,
    EvaluationDetails,
    Status,
    __version__,
    bucket,
)

__all__ = [
    "Assignment",
    "Change",
    "Client",
    "Engine",
    "EvaluationDetails",
    "FlushTimeoutError",
    "InternalError",
    "InvalidContextError",
    "InvalidOptionError",
    "InvalidRulesetError",
    "NotReadyError",
    "OptiForkError",
    "Status",
    "UnauthorizedError",
    "__version__",
    "bucket",
]
