"""An OpenFeature provider for the ``openfeature-sdk`` package.

>>> from openfeature import api
>>> from optifork import Client
>>> from optifork.openfeature import OptiForkProvider
>>> api.set_provider(OptiForkProvider(Client(url, sdk_key)))  # doctest: +SKIP
>>> flags = api.get_client()                                    # doctest: +SKIP
>>> flags.get_boolean_value("new_checkout", False, EvaluationContext("user-1", {"country": "US"}))

Mapping:

* The evaluation context's targeting key becomes ``targetingKey``; its attributes become
  attributes (``datetime``/``date`` values as ISO 8601 strings).
* Reasons are OpenFeature's (``STATIC``, ``DEFAULT``, ``TARGETING_MATCH``, ``SPLIT``,
  ``DISABLED``, ``ERROR``), plus OptiFork's ``PREREQUISITE_FAILED``. A flag that serves no
  value (an off flag without an off variant) gives the caller's default with its reason.
* Errors: ``FLAG_NOT_FOUND``, ``TYPE_MISMATCH`` (an integer asked of a non-integral number
  too), ``TARGETING_KEY_MISSING``, and ``PROVIDER_NOT_READY`` while a client has no ruleset.
* Flag metadata: ``ruleset_version``, and ``rule_index`` when a rule matched.
* ``initialize`` waits for the client to be ready (``init_timeout`` seconds); each new ruleset
  emits ``PROVIDER_CONFIGURATION_CHANGED`` with the flags that changed. ``shutdown`` closes
  the client. ``track`` records a metric event through the client.
"""

from __future__ import annotations

import datetime
import typing
from collections.abc import Mapping, Sequence

from openfeature.evaluation_context import EvaluationContext
from openfeature.event import ProviderEventDetails
from openfeature.exception import (
    ErrorCode,
    ProviderFatalError,
    ProviderNotReadyError,
)
from openfeature.flag_evaluation import FlagResolutionDetails
from openfeature.provider import AbstractProvider, Metadata

from ._errors import NotReadyError, UnauthorizedError
from ._native import Change, Client, Engine

__all__ = ["OptiForkProvider"]

_ERRORS = {
    "FLAG_NOT_FOUND": ErrorCode.FLAG_NOT_FOUND,
    "TYPE_MISMATCH": ErrorCode.TYPE_MISMATCH,
    "TARGETING_KEY_MISSING": ErrorCode.TARGETING_KEY_MISSING,
}


def _attribute(value: typing.Any) -> typing.Any:
    if isinstance(value, (datetime.datetime, datetime.date)):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): _attribute(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_attribute(v) for v in value]
    return value


def _context(ctx: typing.Optional[EvaluationContext]) -> typing.Dict[str, typing.Any]:
    if ctx is None:
        return {}
    out = {k: _attribute(v) for k, v in (ctx.attributes or {}).items()}
    if ctx.targeting_key is not None:
        out["targetingKey"] = ctx.targeting_key
    return out


class OptiForkProvider(AbstractProvider):
    """Resolves OpenFeature flags with an OptiFork :class:`~optifork.Client` (exposures of
    tracked flags are recorded as usual) or an offline :class:`~optifork.Engine`."""

    def __init__(self, source: typing.Union[Client, Engine], *, init_timeout: float = 5.0):
        super().__init__()
        if not isinstance(source, (Client, Engine)):
            raise TypeError(
                f"OptiForkProvider needs an optifork.Client or Engine, not {type(source).__name__}"
            )
        self._source = source
        self._init_timeout = init_timeout
        self._listener: typing.Optional[typing.Callable[[Change], None]] = None

    @property
    def client(self) -> typing.Union[Client, Engine]:
        """The client (or engine) evaluating for this provider."""
        return self._source

    def get_metadata(self) -> Metadata:
        return Metadata(name="OptiFork")

    def initialize(self, evaluation_context: EvaluationContext) -> None:
        source = self._source
        if not isinstance(source, Client):
            return
        try:
            source.wait_until_ready(self._init_timeout)
        except UnauthorizedError as e:
            raise ProviderFatalError(str(e)) from e
        except NotReadyError as e:
            raise ProviderNotReadyError(str(e)) from e

        def changed(change: Change) -> None:
            self.emit_provider_configuration_changed(
                ProviderEventDetails(
                    flags_changed=list(change.flags),
                    message=f"ruleset version {change.version}",
                )
            )

        self._listener = source.on_change(changed)

    def shutdown(self) -> None:
        source = self._source
        if isinstance(source, Client):
            if self._listener is not None:
                source.remove_listener(self._listener)
                self._listener = None
            source.close()

    def track(
        self,
        tracking_event_name: str,
        evaluation_context: typing.Optional[EvaluationContext] = None,
        tracking_event_details: typing.Any = None,
    ) -> None:
        source = self._source
        if not isinstance(source, Client):
            return
        value = getattr(tracking_event_details, "value", None)
        attributes = getattr(tracking_event_details, "attributes", None)
        source.track(
            tracking_event_name,
            _context(evaluation_context),
            value,
            _attribute(dict(attributes)) if attributes else None,
        )

    def _resolve(
        self,
        flag_key: str,
        default_value: typing.Any,
        evaluation_context: typing.Optional[EvaluationContext],
        accept: typing.Callable[[typing.Any], bool],
        convert: typing.Callable[[typing.Any], typing.Any] = lambda v: v,
    ) -> FlagResolutionDetails[typing.Any]:
        source = self._source
        d = source.evaluate_details(flag_key, _context(evaluation_context))
        metadata: typing.Dict[str, typing.Union[bool, int, float, str]] = {}
        version = source.version
        if version is not None:
            metadata["ruleset_version"] = version
        if d.rule_index is not None:
            metadata["rule_index"] = d.rule_index
        if d.error_code is not None:
            if (
                d.error_code == "FLAG_NOT_FOUND"
                and isinstance(source, Client)
                and source.status().source is None
            ):
                return FlagResolutionDetails(
                    value=default_value,
                    reason="ERROR",
                    error_code=ErrorCode.PROVIDER_NOT_READY,
                    error_message="no ruleset yet",
                    flag_metadata=metadata,
                )
            return FlagResolutionDetails(
                value=default_value,
                reason="ERROR",
                error_code=_ERRORS.get(d.error_code, ErrorCode.GENERAL),
                error_message=f"{d.error_code} ({flag_key})",
                flag_metadata=metadata,
            )
        if d.variant is None:
            # The flag serves no value (an off flag without an off variant): the default.
            return FlagResolutionDetails(
                value=default_value, reason=d.reason, flag_metadata=metadata
            )
        if not accept(d.value):
            return FlagResolutionDetails(
                value=default_value,
                reason="ERROR",
                error_code=ErrorCode.TYPE_MISMATCH,
                error_message=f"flag {flag_key!r} is a {type(d.value).__name__}",
                flag_metadata=metadata,
            )
        return FlagResolutionDetails(
            value=convert(d.value),
            reason=d.reason,
            variant=d.variant,
            flag_metadata=metadata,
        )

    def resolve_boolean_details(
        self,
        flag_key: str,
        default_value: bool,
        evaluation_context: typing.Optional[EvaluationContext] = None,
    ) -> FlagResolutionDetails[bool]:
        return self._resolve(
            flag_key, default_value, evaluation_context, lambda v: isinstance(v, bool)
        )

    def resolve_string_details(
        self,
        flag_key: str,
        default_value: str,
        evaluation_context: typing.Optional[EvaluationContext] = None,
    ) -> FlagResolutionDetails[str]:
        return self._resolve(
            flag_key, default_value, evaluation_context, lambda v: isinstance(v, str)
        )

    def resolve_integer_details(
        self,
        flag_key: str,
        default_value: int,
        evaluation_context: typing.Optional[EvaluationContext] = None,
    ) -> FlagResolutionDetails[int]:
        return self._resolve(
            flag_key,
            default_value,
            evaluation_context,
            lambda v: isinstance(v, int) and not isinstance(v, bool),
        )

    def resolve_float_details(
        self,
        flag_key: str,
        default_value: float,
        evaluation_context: typing.Optional[EvaluationContext] = None,
    ) -> FlagResolutionDetails[float]:
        return self._resolve(
            flag_key,
            default_value,
            evaluation_context,
            lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
            float,
        )

    def resolve_object_details(
        self,
        flag_key: str,
        default_value: typing.Union[Sequence[typing.Any], Mapping[str, typing.Any]],
        evaluation_context: typing.Optional[EvaluationContext] = None,
    ) -> FlagResolutionDetails[typing.Union[Sequence[typing.Any], Mapping[str, typing.Any]]]:
        return self._resolve(
            flag_key,
            default_value,
            evaluation_context,
            lambda v: isinstance(v, (dict, list)),
        )
