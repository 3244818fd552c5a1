"""Optional two-factor sign-in: TOTP (RFC 6238, any authenticator app) with one-time recovery codes.

Enrolment is two steps, so a typo in the app never locks anyone out: `two_factor_begin` makes a secret (kept
encrypted, Fernet with a key derived from SECRET_KEY) and hands back its otpauth:// URI for a QR code;
`two_factor_confirm` takes the first code the app shows, switches the second factor on and returns ten recovery
codes, shown once (only their SHA-256 is stored). A code is accepted once (its time step is remembered), a recovery
code once. Every change is audited; an organisation's owner may require the second factor of every member
(`tenants.scoping` refuses members without it).
"""

import base64
import hashlib
import secrets

import pyotp
from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from .audit import audit_record
from .models import AuditEvent, RecoveryCode, User

Action = AuditEvent.Action
ISSUER = "Lightsout"
RECOVERY_CODES = 10
# Codes from the step before and after are accepted too: phones' clocks drift.
VALID_WINDOW = 1


def _fernet() -> Fernet:
    key = hashlib.sha256(f"lightsout.totp:{settings.SECRET_KEY}".encode()).digest()
    return Fernet(base64.urlsafe_b64encode(key))


def _secret(user: User) -> str | None:
    if not user.totp_secret_encrypted:
        return None
    try:
        return _fernet().decrypt(bytes(user.totp_secret_encrypted)).decode()
    except InvalidToken:
        return None


def _code_hash(code: str) -> str:
    return hashlib.sha256(code.replace("-", "").replace(" ", "").lower().encode()).hexdigest()


def _new_recovery_codes(user: User) -> list[str]:
    codes = [f"{secrets.token_hex(4)}-{secrets.token_hex(4)}" for _ in range(RECOVERY_CODES)]
    RecoveryCode.objects.filter(user=user).delete()
    RecoveryCode.objects.bulk_create([RecoveryCode(user=user, code_hash=_code_hash(code)) for code in codes])
    return codes


def two_factor_begin(*, user: User) -> tuple[str, str]:
    """A new secret, not yet in force. Returns (secret, otpauth URI)."""
    if user.two_factor_enabled:
        raise ValidationError({"non_field_errors": ["Two-factor sign-in is already on; turn it off first."]})
    secret = pyotp.random_base32()
    user.totp_secret_encrypted = _fernet().encrypt(secret.encode())
    user.save(update_fields=["totp_secret_encrypted"])
    return secret, pyotp.TOTP(secret).provisioning_uri(name=user.email, issuer_name=ISSUER)


def _totp_step_accepted(user: User, code: str, *, at: float | None = None) -> int | None:
    """The time step `code` belongs to, if it is valid and newer than the last one used."""
    secret = _secret(user)
    code = code.strip().replace(" ", "")
    if secret is None or not code.isdigit() or len(code) != 6:
        return None
    totp = pyotp.TOTP(secret)
    now = at if at is not None else timezone.now().timestamp()
    step = int(now // totp.interval)
    for candidate in range(step - VALID_WINDOW, step + VALID_WINDOW + 1):
        if candidate > user.totp_last_step and secrets.compare_digest(totp.at(candidate * totp.interval), code):
            return candidate
    return None


def two_factor_confirm(*, user: User, code: str, ip_address: str | None = None) -> list[str]:
    """Switch the second factor on with the first code from the app. Returns the recovery codes (shown once)."""
    if user.two_factor_enabled:
        raise ValidationError({"code": ["Two-factor sign-in is already on."]})
    step = _totp_step_accepted(user, code)
    if step is None:
        raise ValidationError({"code": ["This code is not valid. Check the time on your phone and try again."]})
    with transaction.atomic():
        user.totp_confirmed_at, user.totp_last_step = timezone.now(), step
        user.save(update_fields=["totp_confirmed_at", "totp_last_step"])
        codes = _new_recovery_codes(user)
        audit_record(action=Action.TWO_FACTOR_ENABLED, actor=user, target=user, ip_address=ip_address)
    return codes


def two_factor_verify(*, user: User, code: str, ip_address: str | None = None) -> bool:
    """A sign-in's second factor: a current TOTP code or an unused recovery code. Each works once."""
    if not user.two_factor_enabled or not code:
        return False
    with transaction.atomic():
        locked = User.objects.select_for_update().get(pk=user.pk)  # two sign-ins with one code: one wins
        step = _totp_step_accepted(locked, code)
        if step is not None:
            User.objects.filter(pk=user.pk).update(totp_last_step=step)
            return True
        used = RecoveryCode.objects.filter(user=user, code_hash=_code_hash(code), used_at__isnull=True).update(
            used_at=timezone.now()
        )
        if used:
            left = RecoveryCode.objects.filter(user=user, used_at__isnull=True).count()
            audit_record(
                action=Action.RECOVERY_CODE_USED,
                actor=user,
                target=user,
                ip_address=ip_address,
                metadata={"codes_left": left},
            )
            return True
    return False


def two_factor_disable(*, user: User, code: str, ip_address: str | None = None) -> User:
    """Off again, with a current code or a recovery code as proof that the person holds the factor."""
    if not user.two_factor_enabled:
        raise ValidationError({"non_field_errors": ["Two-factor sign-in is not on."]})
    if not two_factor_verify(user=user, code=code, ip_address=ip_address):
        raise ValidationError({"code": ["This code is not valid."]})
    with transaction.atomic():
        User.objects.filter(pk=user.pk).update(totp_secret_encrypted=None, totp_confirmed_at=None, totp_last_step=0)
        RecoveryCode.objects.filter(user=user).delete()
        audit_record(action=Action.TWO_FACTOR_DISABLED, actor=user, target=user, ip_address=ip_address)
    user.refresh_from_db()
    return user


def recovery_codes_regenerate(*, user: User, code: str, ip_address: str | None = None) -> list[str]:
    if not two_factor_verify(user=user, code=code, ip_address=ip_address):
        raise ValidationError({"code": ["This code is not valid."]})
    with transaction.atomic():
        codes = _new_recovery_codes(user)
        audit_record(action=Action.RECOVERY_CODES_REGENERATED, actor=user, target=user, ip_address=ip_address)
    return codes
