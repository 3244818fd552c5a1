"""The one way a person signs in with a password, for the portal and the API (session and token) alike.

Failed attempts are counted in Redis per account and per client address (the address every throttle uses,
`foundation.client_address`). The attempt that reaches `SIGN_IN_MAX_FAILURES_PER_ACCOUNT` (or `..._PER_ADDRESS`)
failures locks the account (or the address) for `SIGN_IN_LOCKOUT_SECONDS`: while locked, every attempt is refused,
the right password included, so guessing gains nothing; the lock is audited once (`auth.sign_in_locked`). A
successful sign-in clears the account's count. Where the person has two-factor sign-in on, the password alone is not
enough: the attempt names a code (`two_factor_required` otherwise), and a wrong code counts as a failure.
"""

import hashlib

from django.conf import settings
from django.contrib.auth import authenticate
from rest_framework import exceptions, status

from foundation.client_address import client_address
from foundation.redis import get_redis

from .audit import audit_record
from .models import AuditEvent, User
from .two_factor import two_factor_verify

# Count one failure and, at the limit, set the lock (once). KEYS: count, lock. ARGV: window s, limit, lock s.
# Returns 1 when this failure set the lock, else 0.
_FAIL = """
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
if count >= tonumber(ARGV[2]) then
  if redis.call('SET', KEYS[2], '1', 'EX', ARGV[3], 'NX') then
    redis.call('DEL', KEYS[1])
    return 1
  end
end
return 0
"""


class InvalidCredentials(exceptions.APIException):
    status_code = status.HTTP_400_BAD_REQUEST
    default_detail = "Wrong e-mail address or password."
    default_code = "invalid_credentials"


class InvalidTwoFactorCode(InvalidCredentials):
    default_detail = "The two-factor code is not valid."
    default_code = "invalid_two_factor_code"


class TwoFactorRequired(exceptions.APIException):
    status_code = status.HTTP_401_UNAUTHORIZED
    default_detail = "This account signs in with a second factor: send `otp`, a code from the authenticator app."
    default_code = "two_factor_required"


class SignInLocked(exceptions.Throttled):
    default_detail = "Too many failed sign-in attempts; sign-in is locked for a while."
    default_code = "sign_in_locked"


def _account_key(email: str) -> str:
    return hashlib.sha256(email.encode()).hexdigest()[:32]


def _keys(kind: str, subject: str) -> tuple[str, str]:
    return f"signin:fail:{kind}:{subject}", f"signin:lock:{kind}:{subject}"


def _subjects(email: str, address: str | None) -> list[tuple[str, str, int]]:
    subjects = [("account", _account_key(email), settings.SIGN_IN_MAX_FAILURES_PER_ACCOUNT)]
    if address:
        subjects.append(("address", address, settings.SIGN_IN_MAX_FAILURES_PER_ADDRESS))
    return subjects


def sign_in_lock_remaining(*, email: str, address: str | None) -> int:
    """Seconds until the account and the address may try again (0: not locked)."""
    redis = get_redis()
    pipe = redis.pipeline(transaction=False)
    for kind, subject, _ in _subjects(email, address):
        pipe.ttl(_keys(kind, subject)[1])
    return max([0, *[ttl for ttl in pipe.execute() if ttl and ttl > 0]])


def _record_failure(*, email: str, address: str | None, user: User | None, reason: str) -> None:
    script = get_redis().register_script(_FAIL)
    for kind, subject, limit in _subjects(email, address):
        count_key, lock_key = _keys(kind, subject)
        window, lockout = settings.SIGN_IN_FAILURE_WINDOW_SECONDS, settings.SIGN_IN_LOCKOUT_SECONDS
        if script(keys=[count_key, lock_key], args=[window, limit, lockout]) == 1:
            audit_record(
                action=AuditEvent.Action.SIGN_IN_LOCKED,
                actor=user,
                actor_label=email,
                target=user,
                ip_address=address,
                metadata={"email": email, "locked": kind, "seconds": lockout, "after": limit, "reason": reason},
            )


def sign_in_authenticate(*, request, email: str, password: str, otp: str = "") -> User:
    """The person behind the credentials, or an exception saying why not (each maps to the API's error shape, and
    the portal shows its message). Does not start a session: the caller logs in or issues a token."""
    email = email.strip().lower()
    address = client_address(request)
    wait = sign_in_lock_remaining(email=email, address=address)
    if wait:
        raise SignInLocked(wait=wait)
    user = authenticate(request, email=email, password=password)
    if not isinstance(user, User):
        _record_failure(email=email, address=address, user=User.objects.filter(email=email).first(), reason="password")
        raise InvalidCredentials()
    if user.two_factor_enabled:
        if not otp:
            raise TwoFactorRequired()
        if not two_factor_verify(user=user, code=otp, ip_address=address):
            audit_record(
                action=AuditEvent.Action.SIGN_IN_FAILED,
                actor_label=email,
                ip_address=address,
                metadata={"email": email, "reason": "two_factor"},
            )
            _record_failure(email=email, address=address, user=user, reason="two_factor")
            raise InvalidTwoFactorCode()
    get_redis().delete(_keys("account", _account_key(email))[0])
    return user
