"""Settings from `TESSERA_*` environment variables (and an optional `.env` file).

Invalid settings raise `SettingsError` with one line per bad variable, so start-up fails with a
message a person can act on instead of a traceback.
"""

from __future__ import annotations

import ipaddress
import secrets
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Self

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite:///./tessera.db"
# Gzip shrinks CSV and JSON datasets 3-10x: a compressed upload may carry as much data as four
# plain uploads of the largest size, and a file that expands further is refused (413).
DECOMPRESSED_UPLOAD_FACTOR = 4


class SignupPolicy(StrEnum):
    open = "open"
    invite = "invite"
    closed = "closed"


class PayoutsProvider(StrEnum):
    manual = "manual"
    stripe = "stripe"


class LogLevel(StrEnum):
    DEBUG = "DEBUG"
    INFO = "INFO"
    WARNING = "WARNING"
    ERROR = "ERROR"


class SettingsError(Exception):
    """Raised when the environment holds settings Tessera cannot start with."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="TESSERA_", env_file=".env", extra="ignore", frozen=True
    )

    database_url: str = DEFAULT_DATABASE_URL
    db_pool_size: int = Field(default=10, ge=1, le=200)
    # Threads serving (sync) requests per API process. More threads than cores mostly adds GIL
    # contention; keep it at or below the pool size plus overflow so no thread waits for a
    # connection.
    request_threads: int = Field(default=20, ge=1, le=400)
    db_max_overflow: int = Field(default=10, ge=0, le=200)
    sqlite_busy_timeout_ms: int = Field(default=30_000, ge=0)

    broker_url: str | None = None
    broker_namespace: str = Field(default="tessera", pattern=r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")
    job_max_retries: int = Field(default=8, ge=0, le=100)
    job_min_backoff_ms: int = Field(default=15_000, ge=1)
    job_max_backoff_ms: int = Field(default=3_600_000, ge=1, le=7 * 86_400_000)
    outbox_retention_hours: int = Field(default=168, ge=1)
    secret_key: SecretStr | None = None
    metrics_token: SecretStr | None = None

    payouts_provider: PayoutsProvider = PayoutsProvider.manual
    stripe_api_key: SecretStr | None = None
    stripe_webhook_secret: SecretStr | None = None
    stripe_api_base: str | None = None
    platform_fee_bps: int = Field(default=2000, ge=0, le=10_000)
    currency: str = Field(default="usd", pattern=r"^[a-z]{3}$")
    # Money (payouts/): the fair-pay floor per hour of measured active time (0: off), the
    # smallest available balance a payout batch pays out, Stripe's request timeout and the
    # country of new Express accounts.
    fair_pay_floor_micros_per_hour: int = Field(default=0, ge=0, le=10**12)
    payout_minimum_micros: int = Field(default=100_000, ge=10_000, le=10**12)
    stripe_timeout_seconds: float = Field(default=30.0, gt=0, le=300)
    stripe_connect_country: str = Field(default="US", pattern=r"^[A-Z]{2}$")

    signup_policy: SignupPolicy = SignupPolicy.open
    # Abuse limits on login and signup, counted in the database (so every API process shares
    # them) per window of `auth_window_seconds`: password checks per account (an email, known
    # or not) from one client address until a successful login from there, logins and signups
    # per client address. An attempt past an address limit is refused (429, Retry-After) for
    # `auth_lockout_seconds`; past `auth_account_failures` checks of an account from one address,
    # each further check waits a growing delay (`auth_account_delay_seconds`, doubling, at most
    # `auth_lockout_seconds`), so no one elsewhere can lock the owner out.
    auth_window_seconds: int = Field(default=900, ge=1, le=86_400)
    auth_lockout_seconds: int = Field(default=900, ge=1, le=86_400)
    auth_account_failures: int = Field(default=10, ge=1, le=10_000)
    auth_account_delay_seconds: int = Field(default=1, ge=1, le=86_400)
    auth_address_logins: int = Field(default=50, ge=1, le=1_000_000)
    auth_address_signups: int = Field(default=10, ge=1, le=1_000_000)
    # Tokens minted by login and signup expire after this many days; a user keeps at most this
    # many live ones (the oldest are revoked). Tokens made at /v1/me/tokens are not counted.
    login_token_days: int = Field(default=30, ge=1, le=3650)
    login_tokens_per_user: int = Field(default=10, ge=1, le=1000)
    # Largest request body of every endpoint but dataset uploads (TESSERA_MAX_UPLOAD_BYTES).
    max_request_bytes: int = Field(default=4 * 1024**2, ge=1024)
    # `tessera serve` drops a connection whose request headers take longer than this (from the
    # connection or the next request's first byte), or whose body takes longer than this after
    # its headers (`app.core.slow_clients`).
    header_timeout_seconds: float = Field(default=10.0, gt=0, le=3600)
    body_timeout_seconds: float = Field(default=60.0, gt=0, le=86_400)
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    log_level: LogLevel = LogLevel.INFO
    log_json: bool = True

    max_upload_bytes: int = Field(default=2 * 1024**3, ge=1024)
    # Uploads larger than this are imported by a background job (progress on /v1/runs/{id});
    # they wait in upload_dir, which API and worker processes must share.
    import_inline_max_bytes: int = Field(default=8 * 1024**2, ge=0)
    upload_dir: Path = Path("./tessera-uploads")
    # Hostile uploads (see app/jobs/importing.py): a gzip upload may expand to this many bytes
    # (unset: DECOMPRESSED_UPLOAD_FACTOR x max_upload_bytes), and an import stops at this many
    # blank or unparseable lines.
    max_decompressed_bytes: int | None = Field(default=None, ge=1024)
    import_max_unusable_lines: int = Field(default=1000, ge=0)

    heartbeat_interval_seconds: int = Field(default=30, ge=5, le=3600)
    max_lease_factor: int = Field(default=4, ge=1, le=100)
    submit_grace_seconds: int = Field(default=120, ge=0, le=86_400)
    # How long the claim path reuses the list of active jobs (a paused job still hands out
    # nothing: the claim re-checks), and each annotator's eligibility verdicts (grants, bans
    # and profile changes made through this process forget them at once; other processes see
    # them within this time).
    routing_cache_seconds: float = Field(default=2.0, ge=0, le=60)
    eligibility_cache_seconds: float = Field(default=30.0, ge=0, le=600)
    # How long the hot path (next, heartbeat, release, submit) reuses what an API token
    # resolves to. Revoking or suspending through this process counts at once; through another
    # process within this time. 0 reads the token on every call.
    auth_cache_seconds: float = Field(default=5.0, ge=0, le=60)
    # How long the submit path reuses a job's fitted consensus model (a refit through this
    # process is seen at once, through another within this time).
    consensus_fit_cache_seconds: float = Field(default=30.0, ge=0, le=3600)
    # How long a job's median active seconds per task (shown with its pay in the job list and
    # in `next`) is reused before it is read again.
    pay_preview_cache_seconds: float = Field(default=60.0, ge=0, le=3600)

    # Client webhooks: each attempt's timeout, the retry schedule (exponential from the base,
    # capped, with jitter, for the window; then dead-lettered), when a failing endpoint is
    # switched off, how much of a response is read, and networks a URL may resolve into
    # although private (e.g. 127.0.0.1/32 for a receiver on the same machine).
    webhook_timeout_seconds: float = Field(default=10.0, gt=0, le=60)
    webhook_retry_base_seconds: float = Field(default=30.0, gt=0, le=3600)
    webhook_retry_max_delay_seconds: float = Field(default=4 * 3600.0, gt=0, le=86_400)
    webhook_retry_window_hours: float = Field(default=24.0, gt=0, le=7 * 24)
    webhook_disable_after_hours: float = Field(default=24.0, gt=0, le=30 * 24)
    webhook_max_response_bytes: int = Field(default=16 * 1024, ge=0, le=1024**2)
    webhook_retention_days: int = Field(default=30, ge=1, le=3650)
    webhook_allowed_networks: Annotated[list[str], NoDecode] = Field(default_factory=list)
    demo: bool | None = None

    # Quality (app.quality): review, reputation and the rules. Unreviewed work is approved after
    # this many days. Reputation is a Beta-smoothed score (prior: this many neutral
    # observations) in which each observation's weight halves every half-life; tiers need both a
    # reputation and a number of finished tasks. Rule defaults, overridable per job: removal from
    # a job below a gold accuracy after a number of gold answers; a flag for a run of identical
    # answers this long; a flag for a submit faster than the job's floor (when the client set
    # none: this share of the median seconds of the job's latest submits, once it has enough);
    # a suspension proposal after this many removals.
    quality_auto_approve_days: float = Field(default=3.0, gt=0, le=365)
    quality_reputation_prior_strength: float = Field(default=10.0, gt=0, le=10_000)
    quality_reputation_half_life_days: float = Field(default=30.0, gt=0, le=3650)
    quality_tier_mid_reputation: float = Field(default=0.7, ge=0, le=1)
    quality_tier_mid_tasks: int = Field(default=50, ge=0)
    quality_tier_expert_reputation: float = Field(default=0.85, ge=0, le=1)
    quality_tier_expert_tasks: int = Field(default=250, ge=0)
    quality_removal_gold_accuracy: float = Field(default=0.6, ge=0, le=1)
    quality_removal_min_gold_answers: int = Field(default=10, ge=1, le=100_000)
    quality_identical_run_length: int = Field(default=25, ge=2, le=100_000)
    quality_speed_floor_share: float = Field(default=0.25, ge=0, le=1)
    quality_speed_floor_min_submits: int = Field(default=20, ge=1, le=100_000)
    quality_suspension_after_removals: int = Field(default=3, ge=1, le=1000)

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return [origin.strip() for origin in value.split(",") if origin.strip()]
        return value

    @field_validator("webhook_allowed_networks", mode="before")
    @classmethod
    def _split_networks(cls, value: object) -> object:
        if isinstance(value, str):
            value = [network.strip() for network in value.split(",") if network.strip()]
        if isinstance(value, list):
            for network in value:
                try:
                    ipaddress.ip_network(str(network), strict=False)
                except ValueError:
                    raise ValueError(f"{network!r} is not an IP network like 10.0.0.0/8") from None
        return value

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str) -> str:
        if not value.startswith(("sqlite://", "postgresql://", "postgresql+psycopg://")):
            raise ValueError("must be a sqlite:/// or postgresql+psycopg:// URL")
        if value.startswith("postgresql://"):
            value = "postgresql+psycopg://" + value.removeprefix("postgresql://")
        return value

    @field_validator("broker_url")
    @classmethod
    def _known_broker(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        if not value.startswith(("redis://", "rediss://", "amqp://", "amqps://")):
            raise ValueError("must be a redis:// or amqp:// URL, or empty for in-process jobs")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if not self.is_sqlite and self.secret_key is None:
            raise ValueError("TESSERA_SECRET_KEY is required with PostgreSQL (32+ characters)")
        if self.secret_key is not None and len(self.secret_key.get_secret_value()) < 32:
            raise ValueError("TESSERA_SECRET_KEY must be at least 32 characters")
        if self.payouts_provider is PayoutsProvider.stripe and self.stripe_api_key is None:
            raise ValueError("TESSERA_PAYOUTS_PROVIDER=stripe needs TESSERA_STRIPE_API_KEY")
        if self.payouts_provider is PayoutsProvider.stripe and self.stripe_webhook_secret is None:
            raise ValueError("TESSERA_PAYOUTS_PROVIDER=stripe needs TESSERA_STRIPE_WEBHOOK_SECRET")
        if (
            self.quality_tier_expert_reputation < self.quality_tier_mid_reputation
            or self.quality_tier_expert_tasks < self.quality_tier_mid_tasks
        ):
            raise ValueError(
                "TESSERA_QUALITY_TIER_EXPERT_* thresholds must not be below "
                "TESSERA_QUALITY_TIER_MID_*"
            )
        if self.job_min_backoff_ms > self.job_max_backoff_ms:
            raise ValueError(
                "TESSERA_JOB_MIN_BACKOFF_MS must not exceed TESSERA_JOB_MAX_BACKOFF_MS"
            )
        return self

    @property
    def decompressed_bytes_limit(self) -> int:
        """How far a gzip upload may expand: TESSERA_MAX_DECOMPRESSED_BYTES, or by default
        DECOMPRESSED_UPLOAD_FACTOR times the upload limit."""
        if self.max_decompressed_bytes is not None:
            return self.max_decompressed_bytes
        return DECOMPRESSED_UPLOAD_FACTOR * self.max_upload_bytes

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def sqlite_path(self) -> Path | None:
        """The SQLite file, or None for PostgreSQL and in-memory databases."""
        if not self.is_sqlite:
            return None
        path = self.database_url.split(":///", 1)[1] if ":///" in self.database_url else ""
        return None if path in ("", ":memory:") else Path(path)

    @property
    def embedded(self) -> bool:
        """The embedded default: SQLite and no broker, everything in one process."""
        return self.is_sqlite and self.broker_url is None

    @property
    def in_process_jobs(self) -> bool:
        """No broker: background jobs run on threads inside `tessera serve`."""
        return self.broker_url is None

    @property
    def demo_enabled(self) -> bool:
        return self.embedded if self.demo is None else self.demo

    def resolved_secret_key(self) -> str:
        """The secret key; in the embedded default one is generated once beside the database."""
        if self.secret_key is not None:
            return self.secret_key.get_secret_value()
        path = self.sqlite_path
        if path is None:
            return _ephemeral_secret()
        key_file = path.with_name(path.name + ".secret")
        if not key_file.exists():
            key_file.parent.mkdir(parents=True, exist_ok=True)
            key_file.write_text(secrets.token_urlsafe(48))
            key_file.chmod(0o600)
        return key_file.read_text().strip()


@lru_cache(maxsize=1)
def _ephemeral_secret() -> str:
    return secrets.token_urlsafe(48)


def load_settings(**overrides: object) -> Settings:
    """Read settings from the environment; raise `SettingsError` naming every bad variable."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        lines = []
        for error in exc.errors():
            field = ".".join(str(part) for part in error["loc"])
            name = f"TESSERA_{field.upper()}" if field else "settings"
            message = str(error["msg"]).removeprefix("Value error, ")
            lines.append(f"  {name}: {message}")
        raise SettingsError("invalid settings:\n" + "\n".join(lines)) from None
