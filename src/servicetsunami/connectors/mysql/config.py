"""MySQL / MariaDB connection settings: typed, with the password kept secret and a redacted form for
logs and answers."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, SecretStr, field_validator

SslMode = Literal["disabled", "preferred", "required", "verify_ca", "verify_identity"]


class MySQLConfig(BaseModel):
    host: str = Field(min_length=1, max_length=253, description="Host name or address of the MySQL or MariaDB server")
    port: int = Field(3306, ge=1, le=65535, description="TCP port")
    database: str = Field(min_length=1, max_length=64, description="Database (schema) whose tables are offered")
    user: str = Field(min_length=1, max_length=80, description="User name")
    password: SecretStr | None = Field(None, description="Stored encrypted; never returned")
    ssl_mode: SslMode = Field(
        "preferred",
        description="disabled, preferred (TLS when the server offers it), required, verify_ca, verify_identity",
    )
    databases: list[str] | None = Field(
        None, max_length=100, description="More databases to offer besides `database`; streams are named database.table"
    )
    connect_timeout: int = Field(10, ge=1, le=120, description="Seconds to wait for the server to answer")

    @field_validator("host")
    @classmethod
    def _plain_host(cls, value: str) -> str:
        if any(c in value for c in " /\\?#@'\"=;"):
            raise ValueError("host must be a plain host name or address")
        return value

    @field_validator("database", "user")
    @classmethod
    def _no_quotes(cls, value: str) -> str:
        if any(c in value for c in "'\"\\\x00`"):
            raise ValueError("must not contain quotes, backslashes or NUL")
        return value

    @field_validator("databases")
    @classmethod
    def _plain_names(cls, value: list[str] | None) -> list[str] | None:
        for name in value or []:
            if not name or len(name) > 64 or any(c in name for c in "'\"\\\x00`."):
                raise ValueError(f"{name!r} is not a plain database name")
        return value

    def offered(self) -> list[str]:
        """The databases whose tables are streams, the configured one first."""
        return list(dict.fromkeys([self.database, *(self.databases or [])]))

    def redacted(self) -> str:
        return f"mysql://{self.user}:***@{self.host}:{self.port}/{self.database}"
