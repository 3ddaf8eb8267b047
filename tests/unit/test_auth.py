"""JWT verification: explicit algorithms, required claims, no key confusion."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from pytest_httpserver import HTTPServer

from todo.edge.auth import TokenVerifier, Unauthorized, mint
from todo.settings import Settings

SECRET = "unit-secret-" + "k" * 40


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path, jwt_secret=SECRET)


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {"sub": "alice", "iss": "todo-dev", "aud": "todo", "iat": now, "exp": now + 60}
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def test_minted_token_verifies_with_default_user_role(settings: Settings) -> None:
    principal = TokenVerifier(settings).verify(mint(settings, "alice"))
    assert principal.user_id == "alice" and principal.roles == {"user"}


def test_roles_claim_is_read_and_unknown_roles_ignored(settings: Settings) -> None:
    token = jwt.encode(claims(roles=["admin", "superuser"]), SECRET, algorithm="HS256")
    assert TokenVerifier(settings).verify(token).roles == {"admin", "user"}


@pytest.mark.parametrize("missing", ["sub", "exp", "iat", "iss", "aud"])
def test_each_required_claim_is_required(settings: Settings, missing: str) -> None:
    token = jwt.encode(claims(**{missing: None}), SECRET, algorithm="HS256")
    with pytest.raises(Unauthorized):
        TokenVerifier(settings).verify(token)


@pytest.mark.parametrize("roles", ["admin", "admin auditor"])
def test_roles_as_a_string_are_refused_rather_than_granting_what_it_names(settings: Settings, roles: str) -> None:
    token = jwt.encode(claims(roles=roles), SECRET, algorithm="HS256")
    with pytest.raises(Unauthorized, match="roles"):
        TokenVerifier(settings).verify(token)


@pytest.mark.parametrize("claim", ["exp", "iat", "nbf"])
@pytest.mark.parametrize("value", ["10" + "0" * 400, "1e400", "-1", "1.5e18"])
def test_a_numeric_claim_beyond_the_epoch_range_is_refused_not_raised(settings: Settings, claim: str,
                                                                       value: str) -> None:
    # Encoded by hand: JSON 10^400 is an integer no float holds, 1e400 is infinity once parsed.
    header = jwt.utils.base64url_encode(b'{"alg":"HS256","typ":"JWT"}')
    body = json.dumps(claims()).rstrip("}") + f', "{claim}": {value}' + "}"
    signing_input = header + b"." + jwt.utils.base64url_encode(body.encode())
    signature = jwt.utils.base64url_encode(hmac.new(SECRET.encode(), signing_input, hashlib.sha256).digest())
    with pytest.raises(Unauthorized):
        TokenVerifier(settings).verify((signing_input + b"." + signature).decode())


@pytest.mark.parametrize("bad", [{"iss": "evil"}, {"aud": "other-app"}, {"exp": int(time.time()) - 3600},
                                 {"sub": ""}, {"sub": 42}, {"roles": {"admin": True}}, {"roles": [1]}])
def test_wrong_issuer_audience_expiry_subject_or_roles_are_refused(settings: Settings, bad: dict[str, Any]) -> None:
    token = jwt.encode(claims(**bad), SECRET, algorithm="HS256")
    with pytest.raises(Unauthorized):
        TokenVerifier(settings).verify(token)


def test_forged_signature_and_none_algorithm_are_refused(settings: Settings) -> None:
    verifier = TokenVerifier(settings)
    with pytest.raises(Unauthorized):
        verifier.verify(jwt.encode(claims(), "another-secret-" + "z" * 40, algorithm="HS256"))
    header = jwt.utils.base64url_encode(json.dumps({"alg": "none", "typ": "JWT"}).encode()).decode()
    body = jwt.utils.base64url_encode(json.dumps(claims()).encode()).decode()
    with pytest.raises(Unauthorized):
        verifier.verify(f"{header}.{body}.")
    with pytest.raises(Unauthorized):
        verifier.verify(jwt.encode(claims(), SECRET, algorithm="HS512"))


@pytest.mark.parametrize("header", [None, "", "Basic YWxpY2U6cHc=", "Bearer", "Bearer   ", "Bearer not.a.jwt"])
def test_missing_or_malformed_authorization_header_is_refused(settings: Settings, header: str | None) -> None:
    with pytest.raises(Unauthorized):
        TokenVerifier(settings).verify_header(header)


# -- JWKS (RS256 / ES256), served for real on loopback ----------------------------------------------


@pytest.fixture
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture
def jwks_url(httpserver: HTTPServer, rsa_key: rsa.RSAPrivateKey, ec_key: ec.EllipticCurvePrivateKey) -> str:
    keys = []
    for kid, key, alg in (("rsa-1", rsa_key, jwt.algorithms.RSAAlgorithm),
                          ("ec-1", ec_key, jwt.algorithms.ECAlgorithm)):
        jwk = json.loads(alg.to_jwk(key.public_key()))  # type: ignore[attr-defined]
        jwk.update(kid=kid, use="sig")
        keys.append(jwk)
    body = json.dumps({"keys": keys}).encode()

    httpserver.expect_request("/jwks.json").respond_with_data(body, content_type="application/json")
    return str(httpserver.url_for("/jwks.json"))


def test_rs256_and_es256_tokens_verify_against_the_jwks(tmp_path: Path, jwks_url: str, rsa_key: Any,
                                                         ec_key: Any) -> None:
    verifier = TokenVerifier(Settings(data_dir=tmp_path, jwt_jwks_url=jwks_url))
    rs = jwt.encode(claims(), rsa_key, algorithm="RS256", headers={"kid": "rsa-1"})
    es = jwt.encode(claims(sub="bob"), ec_key, algorithm="ES256", headers={"kid": "ec-1"})
    assert verifier.verify(rs).user_id == "alice"
    assert verifier.verify(es).user_id == "bob"


def test_hs256_token_signed_with_the_public_key_is_refused_under_jwks(tmp_path: Path, jwks_url: str,
                                                                      rsa_key: Any) -> None:
    verifier = TokenVerifier(Settings(data_dir=tmp_path, jwt_jwks_url=jwks_url))
    public_pem = rsa_key.public_key().public_bytes(serialization.Encoding.PEM,
                                                   serialization.PublicFormat.SubjectPublicKeyInfo)
    # PyJWT itself refuses to HMAC-sign with a PEM key; build the token by hand as an attacker would.
    header = jwt.utils.base64url_encode(json.dumps({"alg": "HS256", "kid": "rsa-1"}).encode())
    body = jwt.utils.base64url_encode(json.dumps(claims()).encode())
    signature = jwt.utils.base64url_encode(hmac.new(public_pem, header + b"." + body, hashlib.sha256).digest())
    forged = (header + b"." + body + b"." + signature).decode()
    with pytest.raises(Unauthorized):
        verifier.verify(forged)


def test_unknown_key_id_is_refused(tmp_path: Path, jwks_url: str) -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    token = jwt.encode(claims(), other, algorithm="RS256", headers={"kid": "unknown"})
    with pytest.raises(Unauthorized):
        TokenVerifier(Settings(data_dir=tmp_path, jwt_jwks_url=jwks_url)).verify(token)


def test_minting_under_jwks_is_refused(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="JWKS"):
        mint(Settings(data_dir=tmp_path, jwt_jwks_url="http://127.0.0.1:1/jwks"), "alice")


def test_a_kept_token_goes_back_to_pyjwt_once_it_has_expired(settings: Settings, monkeypatch: Any) -> None:
    verifier = TokenVerifier(settings)
    now = time.time()
    token = jwt.encode(claims(exp=int(now) + 5), SECRET, algorithm="HS256")
    assert verifier.verify(token).user_id == "alice"  # verified, and kept

    def expired(t: str) -> Any:  # PyJWT reads its own clock: here it is told the time has come
        raise Unauthorized("the token has expired")

    monkeypatch.setattr(verifier, "_decode", expired)
    monkeypatch.setattr(time, "time", lambda: now + 5 + settings.jwt_leeway_seconds)
    with pytest.raises(Unauthorized, match="expired"):
        verifier.verify(token)


def test_a_kept_token_is_checked_again_after_the_cache_lifetime(settings: Settings, monkeypatch: Any) -> None:
    from todo.edge import auth

    verifier = TokenVerifier(settings)
    now = time.time()
    token = jwt.encode(claims(exp=int(now) + 3600), SECRET, algorithm="HS256")
    verifier.verify(token)
    decoded: list[str] = []
    real = verifier._decode
    monkeypatch.setattr(verifier, "_decode", lambda t: (decoded.append(t), real(t))[1])
    verifier.verify(token)
    assert decoded == []  # within the lifetime: no second signature check
    monkeypatch.setattr(time, "time", lambda: now + auth.CACHE_SECONDS + 1)
    verifier.verify(token)
    assert decoded == [token]


def test_a_token_not_yet_valid_is_refused_even_when_another_is_kept(settings: Settings) -> None:
    verifier = TokenVerifier(settings)
    verifier.verify(jwt.encode(claims(), SECRET, algorithm="HS256"))
    early = jwt.encode(claims(nbf=int(time.time()) + 3600), SECRET, algorithm="HS256")
    with pytest.raises(Unauthorized):
        verifier.verify(early)
