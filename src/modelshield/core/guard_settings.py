"""The ``[guard]`` table of the policy: what the runtime guard screens, logs and watches.

Each screening check has its own sub-table with three common keys: ``enabled``, ``action``
(``allow``: record only; ``flag``: serve, mark the decision flagged; ``block``: refuse) and
``on_error`` (``open``: a check that fails to run lets the request through, recorded;
``closed``: it blocks). Example::

    [guard]
    max_body_bytes = 1048576      # 413 above this, enforced while the body streams in
    durability = "commit"         # answer only once the decision is in the log

    [guard.schema]
    action = "block"
    features = {age = {kind = "integer", min = 0, max = 120}}

    [guard.extraction]
    action = "block"

Unknown keys are errors, as everywhere in the policy.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from msgspec import Struct, field

from modelshield.core.errors import ConfigError

ACTIONS: tuple[str, ...] = ("allow", "flag", "block")
"""What a check that fires does to the request."""

ON_ERROR: tuple[str, ...] = ("open", "closed")
"""What a check that fails to run does: let the request through, or block it."""

KINDS: tuple[str, ...] = ("numeric", "integer", "categorical", "boolean")
"""Feature kinds of a declared schema (the assessment's column kinds)."""

DURABILITY: tuple[str, ...] = ("batched", "commit")
LOG_WRITERS: tuple[str, ...] = ("process", "thread")
"""Where the decision log's writer runs: ``process``, a child process fed encoded records
through a pipe (its encoding, hashing and inserts never take the service's interpreter lock);
``thread``, a thread of the service (no extra process: the middleware inside a small app)."""
"""``batched``: answer at once, write in the background (a crash loses at most the records of
the last ``flush_interval_ms``); ``commit``: answer once the record is committed (or spooled)."""


class DeclaredFeature(Struct, frozen=True):
    """A feature of a declared input schema: overrides what the reference data shows."""

    kind: str | None = None
    """``numeric``, ``integer``, ``categorical`` or ``boolean`` (default: learned)."""
    required: bool | None = None
    """Whether every instance must give it (default: learned: present in every reference row)."""
    min: float | None = None
    """Smallest value allowed (default: learned: the reference minimum)."""
    max: float | None = None
    """Largest value allowed (default: learned: the reference maximum)."""
    categories: tuple[str, ...] | None = None
    """The values a categorical feature may take (default: learned: those seen)."""


class SchemaCheck(Struct, frozen=True):
    """``[guard.schema]``: types, required fields, ranges and categories of each instance."""

    enabled: bool = True
    """Run the check."""
    action: str = "block"
    """What a violation does: ``allow``, ``flag`` or ``block`` (block: 422)."""
    on_error: str = "closed"
    """What a failure of the check itself does: ``open`` or ``closed``."""
    range_tolerance: float = 0.25
    """Slack on learned ranges, as a share of the reference range on each side (the
    reference's extremes are a sample's; subtler departures are the ood check's)."""
    allow_unknown_fields: bool = False
    """Accept fields the reference data does not have (they never reach the model)."""
    features: Mapping[str, DeclaredFeature] = field(default_factory=dict)
    """Declared features: kind, required, min, max, categories."""


class OodCheck(Struct, frozen=True):
    """``[guard.ood]``: out-of-distribution score, per feature and multivariate."""

    enabled: bool = True
    """Run the check."""
    action: str = "flag"
    """What an out-of-distribution instance does."""
    on_error: str = "open"
    """What a failure of the check itself does."""
    alpha: float = 0.001
    """An instance fires when its calibrated p-value (the share of reference rows at least as
    unusual) is below this."""


class AdversarialCheck(Struct, frozen=True):
    """``[guard.adversarial]``: prediction instability under small random perturbations."""

    enabled: bool = True
    """Run the check (needs the model: the hosted model, the upstream or ``predict=``)."""
    action: str = "flag"
    """What an unstable instance does."""
    on_error: str = "open"
    """What a failure of the check itself does."""
    perturbations: int = 8
    """Perturbed copies of each instance predicted with it (in the same model call)."""
    noise: float = 0.05
    """Gaussian noise on numeric features, as a share of each feature's reference spread."""
    alpha: float = 0.01
    """An instance fires when the share of reference rows at least as unstable is below this."""
    seed: int | None = None
    """Seed of the perturbations (the noise pool and the draws from it). Unset: from the
    operating system at start-up, so that a caller cannot know which copies screen its
    request; set it to reproduce decisions (tests, benchmarks)."""


class RateCheck(Struct, frozen=True):
    """``[guard.rate]``: a token bucket per client."""

    enabled: bool = True
    """Run the check."""
    action: str = "block"
    """What a client over its rate does (block: 429 with Retry-After)."""
    on_error: str = "open"
    """What a failure of the check itself does."""
    per_second: float = 100.0
    """Requests per second a client may sustain."""
    burst: int = 200
    """Requests a client may send at once."""


class ExtractionCheck(Struct, frozen=True):
    """``[guard.extraction]``: a client sweeping the input space or walking the boundary."""

    enabled: bool = True
    """Run the check."""
    action: str = "flag"
    """What a client showing extraction signals does (block: 403 from then on)."""
    on_error: str = "open"
    """What a failure of the check itself does."""
    window: int = 200
    """The client's last queries (instances) the signals are measured over."""
    min_queries: int = 20
    """Queries a client sends before it can be judged."""
    alpha: float = 1e-6
    """A signal fires when its share in the window is this unlikely for reference traffic."""
    min_share: float = 0.4
    """...and at least this share of the window shows the signal."""


class GuardSettings(Struct, frozen=True):
    """The ``[guard]`` table."""

    auth: bool = True
    """Require a token on every endpoint but the health check, the OpenAPI spec and the
    dashboard page itself (its data needs the read token)."""
    client_header: str | None = None
    """Without ``auth``: the header naming the client (behind a trusted gateway); else the
    client is the peer address."""
    max_body_bytes: int = 1_048_576
    """Largest request body (413 above it, as soon as the stream passes it)."""
    max_instances: int = 1_000
    """Most instances in one request (422 above)."""
    max_fields: int = 512
    """Most fields in one instance (422 above)."""
    max_string_length: int = 1_024
    """Longest string value, in characters (422 above)."""
    log_features: bool = True
    """Store each instance's raw features in the decision log."""
    redact: tuple[str, ...] = ()
    """Features stored as ``"[redacted]"`` when ``log_features`` is on."""
    durability: str = "batched"
    """``batched`` or ``commit`` (see :data:`DURABILITY`)."""
    flush_interval_ms: int = 50
    """The log writer commits at least this often."""
    log_writer: str = "process"
    """``process`` or ``thread`` (see :data:`LOG_WRITERS`)."""
    phases: bool = True
    """Requests in flight together advance in phases (all screened and sent to the model,
    then all decided and answered): less CPU per request under load; false: each request
    start to finish."""
    batch_size: int = 2_000
    """Most records in one commit."""
    max_pending: int = 200_000
    """Records waiting for the writer above which requests get 503 (back-pressure)."""
    spool: str = "modelshield-guard.spool"
    """Append-only file that takes the records while the database is unavailable."""
    upstream_timeout_s: float = 10.0
    """Seconds to wait for the upstream model server (504 after)."""
    window_seconds: int = 60
    """Width of the histogram windows drift is counted in."""
    drift_window_seconds: int = 3_600
    """Sliding window drift is measured over (the last so many seconds of windows)."""
    drift_interval_seconds: float = 10.0
    """How often the service recomputes drift (gauges, alerts)."""
    drift_min_count: int = 100
    """Values a feature needs in the window before its drift is judged."""
    psi_threshold: float = 0.2
    """Population stability index above which a feature has drifted."""
    ks_threshold: float = 0.1
    """Kolmogorov-Smirnov statistic above which a numeric feature has drifted."""
    chi2_alpha: float = 0.001
    """Chi-squared p-value below which a categorical feature (or the predicted class) has
    drifted, with ``psi_threshold`` or a PSI above half of it."""
    min_accuracy: float | None = None
    """Alert when accuracy on labelled requests (``POST /feedback``) falls below this."""
    webhook: str | None = None
    """URL alerts are POSTed to (JSON); alerts always go to the log."""
    alert_cooldown_seconds: float = 300.0
    """An alert about the same subject is repeated at most this often."""
    cors_origins: tuple[str, ...] = ()
    """Origins allowed to call the API from a browser (never ``*``)."""
    schema: SchemaCheck = field(default_factory=SchemaCheck)
    """Input schema check."""
    ood: OodCheck = field(default_factory=OodCheck)
    """Out-of-distribution check."""
    adversarial: AdversarialCheck = field(default_factory=AdversarialCheck)
    """Adversarial-input (instability) check."""
    rate: RateCheck = field(default_factory=RateCheck)
    """Per-client rate limit."""
    extraction: ExtractionCheck = field(default_factory=ExtractionCheck)
    """Model-extraction signals."""

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], source: str) -> GuardSettings:
        """Validate a ``[guard]`` table; unknown keys and bad values raise ConfigError."""
        checks = {
            "schema": SchemaCheck,
            "ood": OodCheck,
            "adversarial": AdversarialCheck,
            "rate": RateCheck,
            "extraction": ExtractionCheck,
        }
        kwargs = _fields(cls, data, source, "guard", skip=set(checks))
        for name, kind in checks.items():
            if name in data:
                table = data[name]
                if not isinstance(table, dict):
                    raise ConfigError(f"{source}: guard.{name} must be a table")
                kwargs[name] = kind(**_fields(kind, table, source, f"guard.{name}"))
        if "*" in kwargs.get("cors_origins", ()):
            raise ConfigError(f"{source}: guard.cors_origins must name origins, never '*'")
        return cls(**kwargs)


_CHOICES: dict[str, tuple[str, ...]] = {
    "action": ACTIONS,
    "on_error": ON_ERROR,
    "durability": DURABILITY,
    "log_writer": LOG_WRITERS,
    "kind": KINDS,
}
_PROBABILITIES = frozenset({"alpha", "chi2_alpha", "min_share", "min_accuracy"})
_MAY_BE_ZERO = frozenset({"range_tolerance", "alert_cooldown_seconds", "psi_threshold"})


def _fields(
    kind: Any, data: Mapping[str, Any], source: str, where: str, skip: set[str] | None = None
) -> dict[str, Any]:
    """Check ``data`` against the fields of ``kind`` by their defaults' types."""
    names = set(kind.__struct_fields__)
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"{source}: unknown key(s) in [{where}]: {', '.join(unknown)}")
    defaults = kind()
    out: dict[str, Any] = {}
    for key, value in data.items():
        if skip and key in skip:
            continue
        out[key] = _value(key, value, getattr(defaults, key), source, f"{where}.{key}")
    return out


def _value(key: str, value: Any, default: Any, source: str, where: str) -> Any:
    bad = f"{source}: {where}"
    if key == "features":
        if not isinstance(value, dict):
            raise ConfigError(f"{bad} must be a table of feature = {{kind, min, max...}}")
        declared: dict[str, DeclaredFeature] = {}
        for name, table in value.items():
            if not isinstance(table, dict):
                raise ConfigError(f"{bad}.{name} must be a table")
            declared[str(name)] = DeclaredFeature(
                **_fields(DeclaredFeature, table, source, f"{where}.{name}")
            )
        return declared
    if key in ("min", "max"):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{bad} must be a number")
        return float(value)
    if key == "categories" or isinstance(default, tuple):
        if not isinstance(value, list) or not all(isinstance(v, str | int) for v in value):
            raise ConfigError(f"{bad} must be a list of strings")
        return tuple(str(v) for v in value)
    if isinstance(default, bool) or key == "required":
        if not isinstance(value, bool):
            raise ConfigError(f"{bad} must be true or false")
        return value
    if key in _CHOICES or key in ("client_header", "webhook", "spool"):
        if not isinstance(value, str) or not value:
            raise ConfigError(f"{bad} must be a non-empty string")
        choices = _CHOICES.get(key)
        if choices and value not in choices:
            raise ConfigError(f"{bad} must be one of {', '.join(choices)}")
        if key == "webhook" and not value.startswith(("http://", "https://")):
            raise ConfigError(f"{bad} must be an http(s):// URL")
        return value
    if key == "seed":
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ConfigError(f"{bad} must be a whole number >= 0, got {value!r}")
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{bad} must be a number, got {value!r}")
    if isinstance(default, int) and not isinstance(value, int):
        raise ConfigError(f"{bad} must be an integer")
    if key in _PROBABILITIES and not 0 < value < 1:
        raise ConfigError(f"{bad} must be between 0 and 1 (exclusive)")
    if value < 0 or (value == 0 and key not in _MAY_BE_ZERO):
        raise ConfigError(f"{bad} must be > 0")
    return value if isinstance(default, int) else float(value)
