"""Writes for organisations, people and credentials. Every security-relevant change is audited here."""

from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import password_validation
from django.contrib.auth.tokens import default_token_generator
from django.core import signing
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.encoding import force_bytes, force_str
from django.utils.http import urlsafe_base64_decode, urlsafe_base64_encode
from rest_framework.exceptions import PermissionDenied

from foundation.invalidation import publish_invalidation

from .actor import Actor
from .audit import audit_record
from .models import ApiKey, AuditEvent, Invitation, Membership, Organization, User, UserToken
from .roles import ROLE_RANK, Role
from .secrets import API_KEY_PREFIX, INVITATION_PREFIX, USER_TOKEN_PREFIX, new_secret, secret_hash

Action = AuditEvent.Action


# --- accounts -------------------------------------------------------------------------------------------------


def user_sign_up(*, email: str, password: str, name: str = "", ip_address: str | None = None) -> User:
    email = email.strip().lower()
    if User.objects.filter(email=email).exists():
        raise ValidationError({"email": ["An account with this e-mail address already exists."]})
    candidate = User(email=email, name=name)
    try:
        password_validation.validate_password(password, user=candidate)
    except ValidationError as exc:
        raise ValidationError({"password": exc.messages}) from exc
    with transaction.atomic():
        user = User.objects.create_user(email=email, password=password, name=name)
        audit_record(action=Action.SIGN_UP, actor=user, target=user, ip_address=ip_address)
    return user


# A signed, expiring token of the user and the address it was sent to: nothing stored, and a changed address
# invalidates links sent to the old one.
EMAIL_VERIFICATION_SALT = "tenants.email-verification"
EMAIL_VERIFICATION_MAX_AGE = 60 * 60 * 48


def email_verification_send(*, user: User) -> str:
    token = signing.dumps({"user": str(user.pk), "email": user.email}, salt=EMAIL_VERIFICATION_SALT)
    send_mail(
        subject="Confirm your e-mail address for Lightsout",
        message=(
            "Welcome to Lightsout. Confirm that this address is yours by opening the link (valid for 48 hours):\n\n"
            f"{settings.PUBLIC_BASE_URL}/verify/{token}\n"
        ),
        from_email=None,
        recipient_list=[user.email],
    )
    return token


def email_verify(*, token: str, ip_address: str | None = None) -> User:
    try:
        claim = signing.loads(token, salt=EMAIL_VERIFICATION_SALT, max_age=EMAIL_VERIFICATION_MAX_AGE)
        user = User.objects.get(pk=claim["user"], email=claim["email"], is_active=True)
    except (signing.BadSignature, User.DoesNotExist, KeyError, ValueError, ValidationError) as exc:
        raise ValidationError({"token": ["This confirmation link is invalid or has expired."]}) from exc
    if user.email_verified_at is None:
        with transaction.atomic():
            user.email_verified_at = timezone.now()
            user.save(update_fields=["email_verified_at"])
            audit_record(action=Action.EMAIL_VERIFIED, actor=user, target=user, ip_address=ip_address)
    return user


def user_language_set(*, user: User, language: str, ip_address: str | None = None) -> User:
    if language not in dict(settings.LANGUAGES):
        raise ValidationError({"language": [f"Unknown language {language!r}."]})
    if language != user.language:
        with transaction.atomic():
            previous, user.language = user.language, language
            user.save(update_fields=["language"])
            audit_record(
                action=Action.LANGUAGE_CHANGED,
                actor=user,
                target=user,
                ip_address=ip_address,
                metadata={"from": previous, "to": language},
            )
    return user


def password_reset_request(*, email: str, ip_address: str | None = None) -> None:
    """Mail a reset link if the account exists. Says nothing either way, so addresses cannot be probed."""
    user = User.objects.filter(email=email.strip().lower(), is_active=True).first()
    if user is None:
        return
    uid = urlsafe_base64_encode(force_bytes(user.pk))
    token = default_token_generator.make_token(user)
    send_mail(
        subject="Reset your Lightsout password",
        message=(
            "Someone asked to reset the password of this Lightsout account. If it was you, use these values "
            f"with POST /api/v1/auth/password-reset/confirm or open the link:\n\n"
            f"{settings.PUBLIC_BASE_URL}/reset/{uid}/{token}/\n\nuid: {uid}\ntoken: {token}\n"
        ),
        from_email=None,
        recipient_list=[user.email],
    )
    audit_record(action=Action.PASSWORD_RESET_REQUESTED, actor=user, target=user, ip_address=ip_address)


def password_reset_confirm(*, uid: str, token: str, new_password: str, ip_address: str | None = None) -> User:
    try:
        user = User.objects.get(pk=force_str(urlsafe_base64_decode(uid)), is_active=True)
    except (User.DoesNotExist, ValueError, TypeError, OverflowError, ValidationError):
        user = None
    if user is None or not default_token_generator.check_token(user, token):
        raise ValidationError({"token": ["This reset link is invalid or has expired."]})
    try:
        password_validation.validate_password(new_password, user=user)
    except ValidationError as exc:
        raise ValidationError({"new_password": exc.messages}) from exc
    with transaction.atomic():
        user.set_password(new_password)
        user.save(update_fields=["password"])
        # A password reset ends every machine token too.
        UserToken.objects.filter(user=user, revoked_at__isnull=True).update(revoked_at=timezone.now())
        audit_record(action=Action.PASSWORD_RESET, actor=user, target=user, ip_address=ip_address)
    return user


def user_token_create(*, user: User, ttl_days: int = 30) -> tuple[UserToken, str]:
    plaintext = new_secret(USER_TOKEN_PREFIX)
    token = UserToken.objects.create(
        user=user,
        key_hash=secret_hash(plaintext),
        last_four=plaintext[-4:],
        expires_at=timezone.now() + timedelta(days=ttl_days),
    )
    return token, plaintext


def user_token_revoke(*, token: UserToken) -> None:
    UserToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())


# --- organisations ------------------------------------------------------------------------------------------


def organization_create(
    *, name: str, slug: str, country: str, region: str, created_by: User, ip_address: str | None = None
) -> Organization:
    """The organisation and its owner membership appear together or not at all."""
    organization = Organization(name=name, slug=slug, country=country.upper(), region=region, created_by=created_by)
    organization.full_clean()
    try:
        with transaction.atomic():
            organization.save()
            Membership.objects.create(organization=organization, user=created_by, role=Role.OWNER)
            actor = Actor.for_member(organization=organization, user=created_by, role=Role.OWNER, ip_address=ip_address)
            audit_record(action=Action.ORG_CREATED, target=organization, **actor.audit_kwargs())
    except IntegrityError as exc:
        raise ValidationError({"slug": ["This slug is taken."]}) from exc
    return organization


class EmailNotVerified(PermissionDenied):
    default_detail = "Confirm your e-mail address before creating an organisation: open the link we sent you."
    default_code = "email_not_verified"


def organization_create_allowed(*, user: User) -> bool:
    """The one rule for people creating organisations (and so trials and keys), through the API or the portal."""
    return user.email_verified_at is not None


def organization_create_by_person(
    *, name: str, slug: str, country: str, region: str, user: User, ip_address: str | None = None
) -> Organization:
    """What the API and the portal call: a person with a confirmed e-mail address creates an organisation.
    Operators' tools (seed data, benchmarks) call `organization_create` directly."""
    if not organization_create_allowed(user=user):
        raise EmailNotVerified()
    return organization_create(
        name=name, slug=slug, country=country, region=region, created_by=user, ip_address=ip_address
    )


def organization_update(
    *,
    organization: Organization,
    actor: Actor,
    name: str | None = None,
    country: str | None = None,
    require_two_factor: bool | None = None,
) -> Organization:
    changed = {}
    if name is not None and name != organization.name:
        changed["name"] = [organization.name, name]
        organization.name = name
    if country is not None and country.upper() != organization.country:
        changed["country"] = [organization.country, country.upper()]
        organization.country = country.upper()
    two_factor_changed = require_two_factor is not None and require_two_factor != organization.require_two_factor
    if two_factor_changed:
        if actor.role != Role.OWNER:
            raise ValidationError({"require_two_factor": ["Only an owner may change the two-factor requirement."]})
        if require_two_factor and actor.user is not None and not actor.user.two_factor_enabled:
            raise ValidationError(
                {
                    "require_two_factor": [
                        "Turn on two-factor sign-in for yourself first, or you would lock yourself out."
                    ]
                }
            )
        organization.require_two_factor = bool(require_two_factor)
    if not changed and not two_factor_changed:
        return organization
    organization.full_clean()
    with transaction.atomic():
        organization.save(update_fields=["name", "country", "require_two_factor"])
        if changed:
            audit_record(action=Action.ORG_UPDATED, target=organization, metadata=changed, **actor.audit_kwargs())
        if two_factor_changed:
            action = Action.ORG_TWO_FACTOR_REQUIRED if require_two_factor else Action.ORG_TWO_FACTOR_OPTIONAL
            audit_record(action=action, target=organization, **actor.audit_kwargs())
    return organization


def organization_suspend(*, organization: Organization, actor: Actor, reason: str) -> Organization:
    """Every key and session of the organisation stops working at once: both check the status per request."""
    with transaction.atomic():
        updated = Organization.objects.filter(pk=organization.pk, status=Organization.Status.ACTIVE).update(
            status=Organization.Status.SUSPENDED, suspended_reason=reason[:200]
        )
        if updated:
            audit_record(
                action=Action.ORG_SUSPENDED, target=organization, metadata={"reason": reason}, **actor.audit_kwargs()
            )
            publish_invalidation(kind="organization", organization_id=organization.pk)
    organization.refresh_from_db()
    return organization


def organization_reactivate(*, organization: Organization, actor: Actor) -> Organization:
    with transaction.atomic():
        updated = Organization.objects.filter(pk=organization.pk, status=Organization.Status.SUSPENDED).update(
            status=Organization.Status.ACTIVE, suspended_reason=""
        )
        if updated:
            audit_record(action=Action.ORG_REACTIVATED, target=organization, **actor.audit_kwargs())
            publish_invalidation(kind="organization", organization_id=organization.pk)
    organization.refresh_from_db()
    return organization


# --- memberships --------------------------------------------------------------------------------------------


def _check_may_manage(*, actor: Actor, current_role: str | None, new_role: str | None) -> None:
    """Admins manage members and viewers; only owners make, change or remove owners."""
    for role in filter(None, (current_role, new_role)):
        if ROLE_RANK[role] > actor.rank or (role == Role.OWNER and actor.rank < ROLE_RANK[Role.OWNER]):
            raise ValidationError({"role": [f"Your role may not manage the {role} role."]})


def _check_keeps_an_owner(membership: Membership) -> None:
    others = Membership.objects.filter(organization_id=membership.organization_id, role=Role.OWNER).exclude(
        pk=membership.pk
    )
    if membership.role == Role.OWNER and not others.exists():
        raise ValidationError({"role": ["An organisation must keep at least one owner."]})


def membership_change_role(*, membership: Membership, role: str, actor: Actor) -> Membership:
    if role not in Role.values:
        raise ValidationError({"role": [f"Unknown role {role!r}."]})
    if role == membership.role:
        return membership
    _check_may_manage(actor=actor, current_role=membership.role, new_role=role)
    with transaction.atomic():
        # Lock the organisation's owners so two demotions cannot both see "another owner remains".
        list(Membership.objects.select_for_update().filter(organization_id=membership.organization_id, role=Role.OWNER))
        _check_keeps_an_owner(membership)
        previous = membership.role
        membership.role = role
        membership.save(update_fields=["role"])
        audit_record(
            action=Action.MEMBER_ROLE_CHANGED,
            target=membership,
            metadata={"from": previous, "to": role, "user": membership.user.email},
            **actor.audit_kwargs(),
        )
    return membership


def membership_remove(*, membership: Membership, actor: Actor) -> None:
    _check_may_manage(actor=actor, current_role=membership.role, new_role=None)
    with transaction.atomic():
        list(Membership.objects.select_for_update().filter(organization_id=membership.organization_id, role=Role.OWNER))
        _check_keeps_an_owner(membership)
        audit_record(
            action=Action.MEMBER_REMOVED,
            target=membership,
            metadata={"user": membership.user.email, "role": membership.role},
            **actor.audit_kwargs(),
        )
        membership.delete()


# --- invitations --------------------------------------------------------------------------------------------


def invitation_create(*, organization: Organization, email: str, role: str, actor: Actor) -> tuple[Invitation, str]:
    email = email.strip().lower()
    _check_may_manage(actor=actor, current_role=None, new_role=role)
    if Membership.objects.filter(organization=organization, user__email=email).exists():
        raise ValidationError({"email": ["This person is already a member."]})
    plaintext = new_secret(INVITATION_PREFIX)
    invitation = Invitation(
        organization=organization,
        email=email,
        role=role,
        token_hash=secret_hash(plaintext),
        invited_by=actor.user or organization.created_by,
        expires_at=timezone.now() + timedelta(hours=settings.INVITATION_TTL_HOURS),
    )
    invitation.full_clean(exclude=["token_hash"])
    try:
        with transaction.atomic():
            invitation.save()
            audit_record(
                action=Action.INVITATION_CREATED,
                target=invitation,
                metadata={"email": email, "role": role},
                **actor.audit_kwargs(),
            )
    except IntegrityError as exc:
        raise ValidationError({"email": ["An open invitation for this address exists; revoke it first."]}) from exc

    def send() -> None:
        send_mail(
            subject=f"You are invited to {organization.name} on Lightsout",
            message=(
                f"{actor.label} invited you to join {organization.name} as {role}.\n\n"
                f"Accept: {settings.PUBLIC_BASE_URL}/invitations/{plaintext}\n"
                f"or POST /api/v1/invitations/accept with the token {plaintext}\n\n"
                f"The invitation expires at {invitation.expires_at:%Y-%m-%d %H:%M} UTC."
            ),
            from_email=None,
            recipient_list=[email],
        )

    transaction.on_commit(send)
    return invitation, plaintext


def invitation_revoke(*, invitation: Invitation, actor: Actor) -> Invitation:
    if invitation.state != "pending":
        raise ValidationError({"non_field_errors": [f"The invitation is {invitation.state}."]})
    with transaction.atomic():
        invitation.revoked_at = timezone.now()
        invitation.save(update_fields=["revoked_at"])
        audit_record(
            action=Action.INVITATION_REVOKED,
            target=invitation,
            metadata={"email": invitation.email},
            **actor.audit_kwargs(),
        )
    return invitation


def invitation_accept(*, token: str, user: User, ip_address: str | None = None) -> Membership:
    with transaction.atomic():
        invitation = (
            Invitation.objects.select_for_update()
            .select_related("organization")
            .filter(token_hash=secret_hash(token))
            .first()
        )
        if invitation is None:
            raise ValidationError({"token": ["Unknown invitation."]})
        if invitation.state != "pending":
            raise ValidationError({"token": [f"This invitation is {invitation.state}."]})
        if invitation.email != user.email.lower():
            raise ValidationError({"token": ["This invitation was sent to another e-mail address."]})
        membership, created = Membership.objects.get_or_create(
            organization=invitation.organization, user=user, defaults={"role": invitation.role}
        )
        invitation.accepted_at = timezone.now()
        invitation.accepted_by = user
        invitation.save(update_fields=["accepted_at", "accepted_by"])
        actor = Actor.for_member(
            organization=invitation.organization, user=user, role=membership.role, ip_address=ip_address
        )
        audit_record(action=Action.INVITATION_ACCEPTED, target=invitation, **actor.audit_kwargs())
        if created:
            audit_record(
                action=Action.MEMBER_ADDED,
                target=membership,
                metadata={"user": user.email, "role": membership.role},
                **actor.audit_kwargs(),
            )
    return membership


# --- API keys -----------------------------------------------------------------------------------------------


def api_key_create(
    *, organization: Organization, name: str, scopes: list[str], actor: Actor, expires_at: datetime | None = None
) -> tuple[ApiKey, str]:
    """Returns the key and its plaintext, which is never stored and cannot be shown again."""
    scopes = sorted(set(scopes))
    if not scopes:
        raise ValidationError({"scopes": ["Give the key at least one scope."]})
    beyond = set(scopes) - actor.scopes
    if beyond:
        raise ValidationError({"scopes": [f"You cannot grant scopes you do not hold: {', '.join(sorted(beyond))}."]})
    if expires_at is not None and expires_at <= timezone.now():
        raise ValidationError({"expires_at": ["The expiry must be in the future."]})
    plaintext = new_secret(API_KEY_PREFIX)
    key = ApiKey(
        organization=organization,
        name=name,
        key_hash=secret_hash(plaintext),
        last_four=plaintext[-4:],
        scopes=scopes,
        expires_at=expires_at,
        created_by=actor.user,
    )
    key.full_clean()
    with transaction.atomic():
        key.save()
        audit_record(action=Action.API_KEY_CREATED, target=key, metadata={"scopes": scopes}, **actor.audit_kwargs())
    return key, plaintext


def api_key_revoke(*, api_key: ApiKey, actor: Actor) -> ApiKey:
    with transaction.atomic():
        updated = ApiKey.objects.filter(pk=api_key.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
        if updated:
            audit_record(action=Action.API_KEY_REVOKED, target=api_key, **actor.audit_kwargs())
            publish_invalidation(kind="api_key", organization_id=api_key.organization_id)
    api_key.refresh_from_db()
    return api_key


def api_key_touch(*, api_key: ApiKey, now: datetime | None = None) -> None:
    """Record use at most once a minute per key, so a busy key does not write on every request."""
    now = now or timezone.now()
    if api_key.last_used_at is None or now - api_key.last_used_at > timedelta(minutes=1):
        ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
        api_key.last_used_at = now
