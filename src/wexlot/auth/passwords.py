"""Password hashing (argon2id) and the password rules GoTrue applies.

Hashing costs ~0.1 s of CPU and 64 MiB by design, so the server calls these functions from a worker
thread, a few at a time (``wexlot.auth.policy.AuthState.hashing``), and never inside a SQLite write
transaction. Plain passwords exist only as function arguments here: nothing stores, logs or returns them.
"""

from __future__ import annotations

from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from wexlot.errors import AuthError

MIN_LENGTH = 6  # GoTrue's default password_min_length
MAX_LENGTH = 1024  # argon2 takes any length; this only bounds the work one request can ask for

_hasher = PasswordHasher()  # argon2id, RFC 9106 low-memory profile (t=3, m=64 MiB, p=4)


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """True when ``password`` matches; a missing or unreadable hash never matches.

    A missing hash still costs one verification against a dummy hash, so that "no such user" and
    "wrong password" take the same time and cannot be told apart by a stopwatch.
    """
    target = password_hash if password_hash and password_hash.startswith("$argon2") else _dummy_hash()
    try:
        ok = _hasher.verify(target, password)
    except (VerificationError, InvalidHashError):
        return False
    return ok and target is password_hash


def needs_rehash(password_hash: str) -> bool:
    """True when the hash was made with weaker parameters than today's (upgrade it on sign-in)."""
    try:
        return _hasher.check_needs_rehash(password_hash)
    except InvalidHashError:
        return True


def is_hash(value: str) -> bool:
    """Whether ``value`` looks like an argon2 hash we can verify (for imported ``password_hash``)."""
    try:
        _hasher.check_needs_rehash(value)
    except InvalidHashError:
        return False
    return value.startswith("$argon2")


def check_strength(password: str) -> None:
    """Raise 422 ``weak_password`` (GoTrue's shape, with ``reasons``) for a too-short password."""
    if len(password) < MIN_LENGTH:
        raise AuthError(
            422,
            "weak_password",
            f"Password should be at least {MIN_LENGTH} characters.",
            {"weak_password": {"reasons": ["length"]}},
        )
    if len(password) > MAX_LENGTH:
        raise AuthError(422, "validation_failed", f"Password cannot be longer than {MAX_LENGTH} characters.")


@cache
def _dummy_hash() -> str:
    return _hasher.hash("wexlot-timing-equaliser")
