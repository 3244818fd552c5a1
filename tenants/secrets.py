"""Credentials: a recognisable prefix, at least 32 random bytes, only a SHA-256 at rest, last four for display."""

import hashlib
import secrets

API_KEY_PREFIX = "lo_live_"
USER_TOKEN_PREFIX = "lo_user_"  # noqa: S105  (a prefix, not a secret)
INVITATION_PREFIX = "lo_inv_"


def new_secret(prefix: str) -> str:
    return prefix + secrets.token_urlsafe(32)


def secret_hash(plaintext: str) -> str:
    # A plain SHA-256 is right here: the secret has 256 bits of entropy, so no salt or slow hash is needed,
    # and the gateway must look a key up by its hash on every request.
    return hashlib.sha256(plaintext.encode()).hexdigest()
