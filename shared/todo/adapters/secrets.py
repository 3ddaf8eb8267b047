"""Secrets from a Dapr secret store, through the sidecar's HTTP API (stdlib only: cold start)."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request

from ..settings import ConfigError, Settings

# What the functions read from the store when TODO_SECRET_STORE is set, and where it goes.
SECRET_NAMES = {"database_url": "TODO_DATABASE_URL", "jwt_secret": "TODO_JWT_SECRET"}


def with_store_secrets(settings: Settings, wait_seconds: float = 30.0) -> Settings:
    """``settings`` completed with the secrets it lacks, read from ``settings.secret_store``.

    The sidecar may still be starting when the first request arrives: wait for it, within reason.
    """
    if settings.secret_store is None:
        return settings
    missing = {field: name for field, name in SECRET_NAMES.items() if getattr(settings, field) is None}
    if settings.jwt_jwks_url:
        missing.pop("jwt_secret", None)
    found = {field: _read(settings, name, wait_seconds) for field, name in missing.items()}
    return settings.with_(**found)


def _read(settings: Settings, name: str, wait_seconds: float) -> str:
    store = urllib.parse.quote(settings.secret_store or "", safe="")
    url = f"http://127.0.0.1:{settings.dapr_http_port}/v1.0/secrets/{store}/{urllib.parse.quote(name, safe='')}"
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                value = json.loads(response.read()).get(name)
            if not isinstance(value, str) or not value:
                raise ConfigError(f"secret {name} in store {settings.secret_store} is empty")
            return value
        except urllib.error.HTTPError as exc:  # the sidecar answered: the secret is not there
            raise ConfigError(f"secret {name} not found in Dapr secret store {settings.secret_store} "
                              f"(HTTP {exc.code})") from exc
        except OSError as exc:
            if time.monotonic() > deadline:
                raise ConfigError(f"no Dapr sidecar at {url}: {exc}") from exc
            time.sleep(0.2)
