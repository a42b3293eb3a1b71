"""Settings, read from the environment (prefix ``PREPMEET_``) and a ``.env`` file."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="PREPMEET_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    data_dir: Path = Field(default=Path("./var"), description="SQLite files and the signing key")
    database_url: str | None = Field(
        default=None, description="postgresql://… to keep the store in PostgreSQL"
    )
    embedded_projector: bool = Field(
        default=True, description="run the projector inside the server process"
    )
    create_tables: bool = Field(default=True, description="create the store's tables at start")
    signing_key_file: Path | None = Field(
        default=None, description="PEM file of the Ed25519 signing key (default: in data_dir)"
    )
    read_wait_timeout: float = Field(default=5.0, ge=0, le=30)
    request_timeout: float = Field(
        default=30.0, ge=0, description="seconds until an HTTP request answers 503; 0 is off"
    )
    render_timeout: float = Field(
        default=20.0, ge=0, description="seconds a document render may take before 503; 0 is off"
    )
    max_body_bytes: int = Field(default=256 * 1024, ge=1024)
    cors_origins: list[str] = Field(default_factory=list)
    rate_limit_per_token: int = Field(default=50, ge=0, description="requests/s; 0 is off")
    rate_limit_burst: int = Field(default=200, ge=1)
    rate_limit_per_address: int = Field(default=100, ge=0, description="requests/s; 0 is off")
    sse_connections_per_user: int = Field(default=4, ge=1)
    log_level: str = Field(default="info")
    switch_interval_ms: float = Field(
        default=1.0,
        gt=0,
        le=100,
        description="how long a thread may keep Python's interpreter lock while another waits",
    )
