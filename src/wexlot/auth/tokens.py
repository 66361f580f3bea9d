"""JWTs: access tokens for signed-in users and the long-lived anon/service_role API keys.

HS256 with the server secret, claims as GoTrue issues them. Decoding pins the algorithm (no
``none``, no algorithm confusion) and allows PostgREST's 30 s clock skew.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import jwt

ALGORITHM = "HS256"
LEEWAY_SECONDS = 30
# API keys are deterministic for a given secret, so they survive restarts and every node agrees.
KEY_ISSUED_AT = 1_735_689_600  # 2025-01-01
KEY_LIFETIME = 10 * 365 * 24 * 3600


class TokenError(Exception):
    """A bearer token that cannot be used: ``expired`` or ``invalid`` (bad signature, malformed)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class Tokens:
    secret: str
    issuer: str
    expiry: int

    def api_key(self, role: str) -> str:
        claims = {"iss": "wexlot", "role": role, "iat": KEY_ISSUED_AT, "exp": KEY_ISSUED_AT + KEY_LIFETIME}
        return jwt.encode(claims, self.secret, algorithm=ALGORITHM)

    @cached_property
    def anon_key(self) -> str:
        return self.api_key("anon")

    @cached_property
    def service_key(self) -> str:
        return self.api_key("service_role")

    def access_token(self, user: dict[str, Any], session_id: str, now: int | None = None) -> tuple[str, int]:
        """Return ``(token, expires_at)`` for ``user`` (the GoTrue user JSON)."""
        issued = int(now if now is not None else time.time())
        expires_at = issued + self.expiry
        claims = {
            "iss": f"{self.issuer}/auth/v1",
            "sub": user["id"],
            "aud": "authenticated",
            "exp": expires_at,
            "iat": issued,
            "email": user.get("email") or "",
            "phone": "",
            "app_metadata": user.get("app_metadata") or {},
            "user_metadata": user.get("user_metadata") or {},
            "role": "authenticated",
            "aal": "aal1",
            "amr": [{"method": "password", "timestamp": issued}],
            "session_id": session_id,
            "is_anonymous": False,
        }
        return jwt.encode(claims, self.secret, algorithm=ALGORITHM), expires_at

    def decode(self, token: str) -> dict[str, Any]:
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self.secret,
                algorithms=[ALGORITHM],
                leeway=LEEWAY_SECONDS,
                options={"verify_aud": False, "require": ["exp", "role"]},
            )
        except jwt.ExpiredSignatureError:
            raise TokenError("expired", "JWT expired") from None
        except jwt.InvalidSignatureError:
            raise TokenError("invalid", "JWSInvalidSignature") from None
        except jwt.MissingRequiredClaimError as exc:
            raise TokenError("invalid", f"JWT is missing the '{exc.claim}' claim") from None
        except jwt.InvalidTokenError as exc:
            raise TokenError("invalid", f"JWT could not be decoded: {exc}") from None
        if claims.get("role") not in ("anon", "authenticated", "service_role"):
            raise TokenError("invalid", "JWT role claim is not one of anon, authenticated, service_role")
        return claims
