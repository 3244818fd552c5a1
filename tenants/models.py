import uuid
from typing import ClassVar

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.contrib.auth.models import PermissionsMixin
from django.contrib.postgres.fields import ArrayField
from django.core.validators import RegexValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .roles import Role, Scope


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def _create(self, email: str, password: str | None, **extra):
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email: str, password: str | None = None, **extra):
        return self._create(email, password, **extra)

    def create_superuser(self, email: str, password: str | None = None, **extra):
        return self._create(email, password, is_staff=True, is_superuser=True, **extra)


class User(AbstractBaseUser, PermissionsMixin):
    """A person. Signs in with an e-mail address; belongs to organisations through memberships."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    email = models.EmailField(unique=True)
    name = models.CharField(max_length=150, blank=True)
    language = models.CharField(max_length=8, choices=settings.LANGUAGES, default="en")
    is_active = models.BooleanField(default=True)
    is_staff = models.BooleanField(default=False, help_text="May sign in to the operators' admin.")
    email_verified_at = models.DateTimeField(null=True, blank=True)
    # Two-factor sign-in (tenants.two_factor): the TOTP secret, encrypted; in force once confirmed with a code.
    totp_secret_encrypted = models.BinaryField(null=True, blank=True, editable=False)
    totp_confirmed_at = models.DateTimeField(null=True, blank=True)
    totp_last_step = models.BigIntegerField(default=0, help_text="The last time step accepted: a code works once.")
    created_at = models.DateTimeField(default=timezone.now)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: ClassVar[list[str]] = []

    def __str__(self) -> str:
        return self.email

    @property
    def two_factor_enabled(self) -> bool:
        return self.totp_confirmed_at is not None


class RecoveryCode(models.Model):
    """A one-time code that stands in for the authenticator app. Only a SHA-256 is stored."""

    id = models.BigAutoField(primary_key=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="recovery_codes")
    code_hash = models.CharField(max_length=64)
    used_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "code_hash"], name="one_recovery_code_hash_per_user")]

    def __str__(self) -> str:
        return f"recovery code of {self.user_id}"


class Region(models.TextChoices):
    """GPU regions: an organisation's data and models stay in its region."""

    EU_CENTRAL = "eu-central", _("EU (Frankfurt)")
    US_EAST = "us-east", _("US East (Virginia)")
    AP_NORTHEAST = "ap-northeast", _("Asia Pacific (Seoul)")
    SA_EAST = "sa-east", _("South America (São Paulo)")
    LOCAL = "local", _("Local (embedded)")


class Organization(models.Model):
    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        SUSPENDED = "suspended", "Suspended"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=200)
    slug = models.SlugField(
        max_length=50,
        unique=True,
        validators=[RegexValidator(r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$", "Lowercase letters, digits and hyphens.")],
    )
    country = models.CharField(
        max_length=2,
        validators=[RegexValidator(r"^[A-Z]{2}$", "An ISO 3166-1 alpha-2 code such as DE, KR or MX.")],
    )
    region = models.CharField(max_length=32, choices=Region.choices)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE, db_index=True)
    suspended_reason = models.CharField(max_length=200, blank=True)
    require_two_factor = models.BooleanField(
        default=False, help_text="Members must sign in with a second factor to reach the organisation."
    )
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ("name",)

    def __str__(self) -> str:
        return self.slug

    @property
    def is_active(self) -> bool:
        return self.status == self.Status.ACTIVE


class Membership(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["organization", "user"], name="one_membership_per_user")]

    def __str__(self) -> str:
        return f"{self.user} in {self.organization} ({self.role})"


class Invitation(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField()
    role = models.CharField(max_length=16, choices=Role.choices)
    token_hash = models.CharField(max_length=64, unique=True)
    invited_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    revoked_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "email"],
                condition=models.Q(accepted_at__isnull=True, revoked_at__isnull=True),
                name="one_open_invitation_per_email",
            )
        ]

    def __str__(self) -> str:
        return f"{self.email} to {self.organization_id} ({self.role})"

    @property
    def state(self) -> str:
        if self.accepted_at:
            return "accepted"
        if self.revoked_at:
            return "revoked"
        if self.expires_at <= timezone.now():
            return "expired"
        return "pending"


class ApiKey(models.Model):
    """A machine credential bound to one organisation. Only a SHA-256 of the key is stored."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100)
    key_hash = models.CharField(max_length=64, unique=True)
    last_four = models.CharField(max_length=4)
    scopes = ArrayField(models.CharField(max_length=16, choices=Scope.choices))
    expires_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.name} (…{self.last_four})"

    @property
    def masked(self) -> str:
        return f"lo_live_…{self.last_four}"

    def is_usable(self, now=None) -> bool:
        now = now or timezone.now()
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)

    @property
    def rate_limit_identity(self) -> str:
        return f"key:{self.pk}"


class UserToken(models.Model):
    """A user's own machine credential for the account endpoints (sign-in without a browser)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="tokens")
    key_hash = models.CharField(max_length=64, unique=True)
    last_four = models.CharField(max_length=4)
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"token …{self.last_four} of {self.user_id}"

    @property
    def rate_limit_identity(self) -> str:
        return f"user:{self.user_id}"


class AuditEvent(models.Model):
    """Who did what to which object, when, from where. Append-only: nothing updates or deletes these rows."""

    class Action(models.TextChoices):
        SIGN_IN = "auth.sign_in", "Signed in"
        SIGN_IN_FAILED = "auth.sign_in_failed", "Failed sign-in"
        SIGN_IN_LOCKED = "auth.sign_in_locked", "Sign-in locked after failed attempts"
        TWO_FACTOR_ENABLED = "auth.two_factor_enabled", "Two-factor sign-in enabled"
        TWO_FACTOR_DISABLED = "auth.two_factor_disabled", "Two-factor sign-in disabled"
        RECOVERY_CODE_USED = "auth.recovery_code_used", "Recovery code used"
        RECOVERY_CODES_REGENERATED = "auth.recovery_codes_regenerated", "Recovery codes regenerated"
        SIGN_OUT = "auth.sign_out", "Signed out"
        SIGN_UP = "auth.sign_up", "Signed up"
        PASSWORD_RESET_REQUESTED = "auth.password_reset_requested", "Password reset requested"
        PASSWORD_RESET = "auth.password_reset", "Password reset"
        EMAIL_VERIFIED = "auth.email_verified", "E-mail address verified"
        LANGUAGE_CHANGED = "auth.language_changed", "Language changed"
        ORG_CREATED = "org.created", "Organisation created"
        ORG_UPDATED = "org.updated", "Organisation updated"
        ORG_SUSPENDED = "org.suspended", "Organisation suspended"
        ORG_REACTIVATED = "org.reactivated", "Organisation reactivated"
        ORG_TWO_FACTOR_REQUIRED = "org.two_factor_required", "Two-factor sign-in required of members"
        ORG_TWO_FACTOR_OPTIONAL = "org.two_factor_optional", "Two-factor sign-in made optional"
        MEMBER_ADDED = "member.added", "Member added"
        MEMBER_ROLE_CHANGED = "member.role_changed", "Member role changed"
        MEMBER_REMOVED = "member.removed", "Member removed"
        INVITATION_CREATED = "invitation.created", "Invitation sent"
        INVITATION_REVOKED = "invitation.revoked", "Invitation revoked"
        INVITATION_ACCEPTED = "invitation.accepted", "Invitation accepted"
        API_KEY_CREATED = "api_key.created", "API key created"
        API_KEY_REVOKED = "api_key.revoked", "API key revoked"
        JOB_CANCELLED = "job.cancelled", "Job cancelled"
        JOB_RETRIED = "job.retried", "Job retried"
        PLAN_CHANGED = "billing.plan_changed", "Plan changed"
        PAYMENT_METHOD_SET = "billing.payment_method_set", "Payment method set"
        GRACE_EXTENDED = "billing.grace_extended", "Grace period extended"
        QUOTA_OVERRIDE_SET = "billing.quota_override_set", "Quota raised or lowered"
        QUOTA_OVERRIDE_REMOVED = "billing.quota_override_removed", "Quota override removed"
        CREDIT_ISSUED = "billing.credit_issued", "Credit issued"
        # Data protection (tenants/erasure.py, tenants/retention.py, jobs/data_export.py).
        DATA_EXPORT_REQUESTED = "org.data_export_requested", "Data export requested"
        DATA_EXPORT_DOWNLOADED = "org.data_export_downloaded", "Data export downloaded"
        ORG_DELETION_REQUESTED = "org.deletion_requested", "Organisation deletion requested"
        ORG_DELETION_CANCELLED = "org.deletion_cancelled", "Organisation deletion undone"
        ORG_ERASED = "org.erased", "Organisation erased"
        RETENTION_CHANGED = "org.retention_changed", "Retention period changed"
        # The copilot (assistant/) and quality's labels: every action an app records must be listed here, so the
        # API's schema (an enum) describes what /audit-events answers.
        DOCUMENT_UPLOADED = "assistant.document.upload", "Copilot document uploaded"
        DOCUMENT_DELETED = "assistant.document.delete", "Copilot document deleted"
        DATASET_BUILT = "assistant.dataset.build", "Training data set built"
        DATASET_DELETED = "assistant.dataset.delete", "Training data set deleted"
        DATASET_FINE_TUNED = "assistant.dataset.fine_tune", "Fine-tuning started from a training data set"
        PROPOSAL_CONFIRMED = "assistant.proposal.confirmed", "Copilot proposal confirmed and run"
        PROPOSAL_FAILED = "assistant.proposal.failed", "Copilot proposal confirmed, change refused"
        ANALYSIS_LABELLED = "quality.analysis.label", "Root-cause analysis labelled"

    id = models.BigAutoField(primary_key=True)
    # Null only for events that belong to no organisation (a sign-in, a failed sign-in).
    organization = models.ForeignKey(
        Organization, null=True, blank=True, on_delete=models.CASCADE, related_name="audit_events"
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_api_key = models.ForeignKey(ApiKey, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    actor_label = models.CharField(max_length=254, help_text="E-mail or key name at the time of the event.")
    action = models.CharField(max_length=40, choices=Action.choices, db_index=True)
    target_type = models.CharField(max_length=40, blank=True)
    target_id = models.CharField(max_length=64, blank=True)
    target_label = models.CharField(max_length=254, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        indexes = [models.Index(fields=["organization", "-created_at"])]
        ordering = ("-created_at",)

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.actor_label} {self.action} {self.target_label}"


class SystemKey(models.Model):
    """An organisation API key the platform itself holds, one per purpose (the maintenance explainer, the portal's
    playground), to call the organisation's models through the gateway like any client of the organisation: routed,
    rate-limited, quota-checked and metered as the tenant's own traffic. The gateway authenticates by bearer key,
    so the plaintext is kept, encrypted (see `tenants.system_keys`)."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    purpose = models.CharField(max_length=64, help_text="What the platform uses the key for, e.g. portal.playground.")
    api_key = models.ForeignKey(ApiKey, on_delete=models.CASCADE, related_name="+")
    secret_encrypted = models.BinaryField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["organization", "purpose"], name="one_system_key_per_purpose")]

    def __str__(self) -> str:
        return f"{self.purpose} key of {self.organization_id}"


# The data-protection rows (deletion requests, retention settings) live in their own module.
from .data_protection_models import OrganizationDeletion, RetentionSetting  # noqa: E402, F401
