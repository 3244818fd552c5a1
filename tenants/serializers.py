"""Translation between JSON and services. No business rules here: the services hold them."""

from rest_framework import serializers

from .models import ApiKey, AuditEvent, Invitation, Membership, Organization, Region, User
from .roles import Role, Scope


class UserSerializer(serializers.ModelSerializer):
    two_factor_enabled = serializers.BooleanField(read_only=True)

    class Meta:
        model = User
        fields = ["id", "email", "name", "language", "email_verified_at", "two_factor_enabled", "created_at"]
        read_only_fields = fields


class SignUpSerializer(serializers.Serializer):
    email = serializers.EmailField()
    password = serializers.CharField(write_only=True, style={"input_type": "password"})
    name = serializers.CharField(max_length=150, required=False, allow_blank=True, default="")


class SignInSerializer(serializers.Serializer):
    email = serializers.EmailField()
    password = serializers.CharField(write_only=True, style={"input_type": "password"})
    otp = serializers.CharField(
        write_only=True,
        required=False,
        allow_blank=True,
        default="",
        max_length=32,
        help_text="With two-factor sign-in on: a code from the authenticator app, or a recovery code.",
    )


class TwoFactorBeginSerializer(serializers.Serializer):
    secret = serializers.CharField(read_only=True, help_text="Type it into the authenticator app, or use the URI.")
    otpauth_uri = serializers.CharField(read_only=True, help_text="otpauth:// URI for a QR code.")


class TwoFactorCodeSerializer(serializers.Serializer):
    code = serializers.CharField(max_length=32, help_text="A code from the authenticator app (or a recovery code).")


class RecoveryCodesSerializer(serializers.Serializer):
    recovery_codes = serializers.ListField(child=serializers.CharField(), read_only=True, help_text="Shown once.")


class TokenSerializer(serializers.Serializer):
    token = serializers.CharField(read_only=True, help_text="Shown once. Send as `Authorization: Bearer <token>`.")
    expires_at = serializers.DateTimeField(read_only=True)


class PasswordResetRequestSerializer(serializers.Serializer):
    email = serializers.EmailField()


class PasswordResetConfirmSerializer(serializers.Serializer):
    uid = serializers.CharField()
    token = serializers.CharField()
    new_password = serializers.CharField(write_only=True)


class OrganizationSerializer(serializers.ModelSerializer):
    region = serializers.ChoiceField(choices=Region.choices)

    class Meta:
        model = Organization
        fields = [
            "id",
            "name",
            "slug",
            "country",
            "region",
            "status",
            "suspended_reason",
            "require_two_factor",
            "created_at",
        ]
        read_only_fields = ["id", "status", "suspended_reason", "require_two_factor", "created_at"]


class OrganizationUpdateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200, required=False)
    country = serializers.RegexField(r"^[A-Za-z]{2}$", required=False)
    require_two_factor = serializers.BooleanField(
        required=False, help_text="Owners only: members must sign in with a second factor."
    )


class MembershipSerializer(serializers.ModelSerializer):
    user = UserSerializer(read_only=True)

    class Meta:
        model = Membership
        fields = ["id", "user", "role", "created_at"]
        read_only_fields = ["id", "user", "created_at"]


class MembershipUpdateSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=Role.choices)


class InvitationSerializer(serializers.ModelSerializer):
    state = serializers.CharField(read_only=True)

    class Meta:
        model = Invitation
        fields = ["id", "email", "role", "state", "expires_at", "accepted_at", "revoked_at", "created_at"]
        read_only_fields = ["id", "state", "expires_at", "accepted_at", "revoked_at", "created_at"]


class InvitationCreateSerializer(serializers.Serializer):
    email = serializers.EmailField()
    role = serializers.ChoiceField(choices=Role.choices)


class InvitationAcceptSerializer(serializers.Serializer):
    token = serializers.CharField()


class ApiKeySerializer(serializers.ModelSerializer):
    masked = serializers.CharField(read_only=True)
    state = serializers.SerializerMethodField()

    class Meta:
        model = ApiKey
        fields = [
            "id",
            "name",
            "masked",
            "last_four",
            "scopes",
            "state",
            "expires_at",
            "last_used_at",
            "revoked_at",
            "created_at",
        ]
        read_only_fields = fields

    def get_state(self, key: ApiKey) -> str:
        if key.revoked_at:
            return "revoked"
        return "active" if key.is_usable() else "expired"


class ApiKeyCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    scopes = serializers.ListField(child=serializers.ChoiceField(choices=Scope.choices), allow_empty=False)
    expires_at = serializers.DateTimeField(required=False, allow_null=True, default=None)


class ApiKeyCreatedSerializer(ApiKeySerializer):
    key = serializers.CharField(read_only=True, help_text="The plaintext key. Shown once; store it now.")

    class Meta(ApiKeySerializer.Meta):
        fields = [*ApiKeySerializer.Meta.fields, "key"]
        read_only_fields = fields


class AuditEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = AuditEvent
        fields = [
            "id",
            "action",
            "actor_label",
            "target_type",
            "target_id",
            "target_label",
            "ip_address",
            "metadata",
            "created_at",
        ]
        read_only_fields = fields
