"""Password hashing (argon2id) and the rules a new password must meet."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

_hasher = PasswordHasher()  # argon2id with the library's current recommended parameters
MIN_LENGTH = 10
MAX_LENGTH = 128


def password_problem(password: str, email: str = "") -> str | None:
    """Why this password is not acceptable, in words a person can act on; None if fine."""
    if len(password) < MIN_LENGTH:
        return f"Password must be at least {MIN_LENGTH} characters long."
    if len(password) > MAX_LENGTH:
        return f"Password must be at most {MAX_LENGTH} characters long."
    if password.strip() != password:
        return "Password must not start or end with spaces."
    if len(set(password)) < 4:
        return "Password must use at least 4 different characters."
    if not any(c.isalpha() for c in password) or not any(not c.isalpha() for c in password):
        return "Password must contain letters and at least one digit or symbol."
    local = email.split("@", 1)[0].lower()
    if len(local) >= 4 and local in password.lower():
        return "Password must not contain your email address."
    return None


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(stored_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(stored_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


# A real hash to verify against when the account does not exist, so timing does not tell.
DUMMY_HASH = _hasher.hash("perpetuo-no-such-user-password")
