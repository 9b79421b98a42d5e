"""PostgreSQL connection settings: typed, with the password kept secret and a redacted form for
logs and answers."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, SecretStr, field_validator

SslMode = Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"]


class PostgresConfig(BaseModel):
    host: str = Field(min_length=1, max_length=253, description="Host name or address")
    port: int = Field(5432, ge=1, le=65535)
    database: str = Field(min_length=1, max_length=63)
    user: str = Field(min_length=1, max_length=63)
    password: SecretStr | None = Field(None, description="Stored encrypted; never returned")
    sslmode: SslMode = "prefer"
    schemas: list[str] | None = Field(None, description="Schemas to offer; None = every readable schema")
    connect_timeout: int = Field(10, ge=1, le=120)

    @field_validator("host")
    @classmethod
    def _plain_host(cls, value: str) -> str:
        if any(c in value for c in " /\\?#@'\"="):
            raise ValueError("host must be a plain host name or address")
        return value

    def conninfo(self, *, hostaddr: str | None = None) -> str:
        """libpq connection string. ``hostaddr`` pins the address that passed the host safety check
        (the name is still used for TLS verification)."""
        from psycopg.conninfo import make_conninfo  # the driver loads when a connection is opened

        params: dict[str, str | int] = {
            "host": self.host,
            "port": self.port,
            "dbname": self.database,
            "user": self.user,
            "sslmode": self.sslmode,
            "connect_timeout": self.connect_timeout,
            "application_name": "servicetsunami",
        }
        if hostaddr:
            params["hostaddr"] = hostaddr
        if self.password is not None:
            params["password"] = self.password.get_secret_value()
        return make_conninfo("", **params)

    def public(self) -> dict[str, object]:
        """Everything but the password, for storage in clear and for answers."""
        return self.model_dump(exclude={"password"})

    def redacted(self) -> str:
        return f"postgresql://{self.user}:***@{self.host}:{self.port}/{self.database}?sslmode={self.sslmode}"
