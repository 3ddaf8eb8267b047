"""Bearer tokens: JWTs verified with an explicit algorithm list and required claims.

PyJWT is imported where it is used, not with this module: it loads the ``cryptography`` package
(~30 ms of a cold start), and the event functions import this module (through the runtime) but
never see a token.
"""

from __future__ import annotations

import time
from typing import Any

from .. import limits
from ..domain.principal import Principal
from ..settings import Settings

__all__ = ["Principal", "TokenVerifier", "Unauthorized", "mint"]

ROLES = frozenset({"user", "admin", "auditor"})
HMAC_ALGORITHMS = ["HS256"]
JWKS_ALGORITHMS = ["RS256", "ES256"]
REQUIRED_CLAIMS = ["sub", "exp", "iat", "iss", "aud"]
NUMERIC_CLAIMS = ("exp", "iat", "nbf")
# Verified tokens kept so that a client's next request with the same token skips the signature check
# and the claims' parsing (7 % of create-task's CPU under bench P2): each is kept until it expires, or for
# CACHE_SECONDS at most, so that a key the identity provider withdraws from its JWKS stops being
# honoured as soon as it would have without the cache (the JWKS client refreshes every 300 s).
CACHE_SECONDS = 60
CACHE_ENTRIES = 4096


class Unauthorized(Exception):
    """No usable credentials: the answer is 401 with a ``WWW-Authenticate`` challenge."""

    def __init__(self, detail: str, *, error: str | None = "invalid_token") -> None:
        super().__init__(detail)
        self.detail = detail
        self.error = error


class TokenVerifier:
    def __init__(self, settings: Settings) -> None:
        import jwt  # here, not at the top: see the module docstring

        self.settings = settings
        self._secret = settings.hs256_secret()
        self._jwks: jwt.PyJWKClient | None = None
        self._verified: dict[str, tuple[Principal, float]] = {}  # token: (its principal, kept until)
        if settings.jwt_jwks_url:
            self._jwks = jwt.PyJWKClient(settings.jwt_jwks_url, cache_keys=True, lifespan=300)

    def verify_header(self, header: str | None) -> Principal:
        if not header:
            raise Unauthorized("this endpoint needs 'Authorization: Bearer <token>'", error=None)
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("the Authorization header must use the Bearer scheme", error="invalid_request")
        return self.verify(token.strip())

    def verify(self, token: str) -> Principal:
        """The token's principal, when its signature, algorithm, issuer, audience and times hold."""
        now = time.time()
        found = self._verified.get(token)
        if found is not None:
            principal, until = found
            if now < until:
                return principal
            self._verified.pop(token, None)  # expired, or kept long enough: verified again (and refused there)
        principal = self._decode(token)  # only a token valid now is kept: not before its nbf and iat
        if len(self._verified) >= CACHE_ENTRIES:
            self._verified.clear()  # a cheap bound: the tokens in use come back on their next request
        until = min(principal.expires_at + self.settings.jwt_leeway_seconds, now + CACHE_SECONDS)
        self._verified[token] = (principal, until)
        return principal

    def _decode(self, token: str) -> Principal:
        import jwt  # here, not at the top: see the module docstring

        try:
            if self._jwks is not None:
                key: Any = self._jwks.get_signing_key_from_jwt(token).key
                algorithms = JWKS_ALGORITHMS
            else:
                key, algorithms = self._secret, HMAC_ALGORITHMS
            claims = jwt.decode(
                token,
                key,
                algorithms=algorithms,
                audience=self.settings.jwt_audience,
                issuer=self.settings.jwt_issuer,
                leeway=self.settings.jwt_leeway_seconds,
                options={"require": REQUIRED_CLAIMS},
            )
        except jwt.ExpiredSignatureError as exc:
            raise Unauthorized("the token has expired") from exc
        except (jwt.PyJWTError, ValueError, OverflowError) as exc:  # OverflowError: int(1e400)
            raise Unauthorized(f"the token is not valid: {exc}") from exc
        for name in NUMERIC_CLAIMS:
            if name in claims and limits.int64_problem(claims[name], 0, limits.MAX_EPOCH) is not None:
                raise Unauthorized(f"the token's {name!r} must be whole epoch seconds up to {limits.MAX_EPOCH}")
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject or len(subject) > 255:
            raise Unauthorized("the token's 'sub' must be a non-empty string")
        return Principal(subject, _roles(claims.get("roles")), int(claims["exp"]))


def _roles(value: Any) -> frozenset[str]:
    if value is None:
        return frozenset({"user"})
    # A string is refused, not split: "admin" and ["admin"] must not both grant admin (found 7).
    if not isinstance(value, list) or not all(isinstance(r, str) for r in value):
        raise Unauthorized("the token's 'roles' must be a list of strings")
    return frozenset(r for r in value if r in ROLES) | {"user"}


def mint(settings: Settings, subject: str, roles: list[str] | None = None, ttl_seconds: int = 3600) -> str:
    """A locally signed HS256 token, for development and tests."""
    import jwt  # here, not at the top: see the module docstring

    secret = settings.hs256_secret()
    if secret is None:
        raise RuntimeError("tokens are verified against a JWKS here; get one from the identity provider")
    unknown = set(roles or []) - ROLES
    if unknown:
        raise ValueError(f"unknown roles: {', '.join(sorted(unknown))}")
    now = int(time.time())
    claims = {
        "sub": subject,
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "iat": now,
        "nbf": now,
        "exp": now + ttl_seconds,
        "roles": roles or ["user"],
    }
    return jwt.encode(claims, secret, algorithm="HS256")
