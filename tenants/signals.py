"""Sign-ins and failed sign-ins reach the audit log whichever door they came through (API, portal, admin)."""

from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import receiver

from .audit import audit_record, client_ip
from .models import AuditEvent


@receiver(user_logged_in)
def audit_sign_in(sender, request, user, **kwargs):
    audit_record(action=AuditEvent.Action.SIGN_IN, actor=user, target=user, ip_address=client_ip(request))


@receiver(user_logged_out)
def audit_sign_out(sender, request, user, **kwargs):
    if user is not None:
        audit_record(action=AuditEvent.Action.SIGN_OUT, actor=user, target=user, ip_address=client_ip(request))


@receiver(user_login_failed)
def audit_failed_sign_in(sender, credentials, request=None, **kwargs):
    # Django has already masked the password in `credentials`; keep only the identifier tried.
    tried = str(credentials.get("email") or credentials.get("username") or "")[:254]
    audit_record(
        action=AuditEvent.Action.SIGN_IN_FAILED,
        actor_label=tried or "unknown",
        ip_address=client_ip(request),
        metadata={"email": tried},
    )
