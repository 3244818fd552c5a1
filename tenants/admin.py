"""Operators' console for organisations, people, keys and the audit log. Actions call the services."""

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.core.exceptions import ValidationError

from .actor import Actor
from .audit import client_ip
from .models import ApiKey, AuditEvent, Invitation, Membership, Organization, User
from .services import api_key_revoke, organization_reactivate, organization_suspend
from .signin import InvalidCredentials, SignInLocked, TwoFactorRequired, sign_in_authenticate


class AdminSignInForm(AdminAuthenticationForm):
    """The admin's sign-in through the one door (`tenants.signin`): the same per-account and per-address attempt
    limits, lock-out and audit events as the portal and the API. A person with two-factor sign-in on signs in at the
    portal (which asks for the code) and then opens the admin with that session."""

    otp = forms.CharField(required=False, max_length=32, widget=forms.HiddenInput)

    def clean(self):
        email = self.cleaned_data.get("username")
        password = self.cleaned_data.get("password")
        if email is not None and password:
            try:
                self.user_cache = sign_in_authenticate(
                    request=self.request, email=email, password=password, otp=self.cleaned_data.get("otp") or ""
                )
            except SignInLocked as exc:
                minutes = max(1, round((exc.wait or 60) / 60))
                raise ValidationError(
                    "Too many failed sign-in attempts; try again in %(minutes)s minutes.",
                    code="sign_in_locked",
                    params={"minutes": minutes},
                ) from None
            except TwoFactorRequired:
                raise ValidationError(
                    "This account signs in with a second factor: sign in at the portal, then open the admin.",
                    code="two_factor_required",
                ) from None
            except InvalidCredentials:
                raise self.get_invalid_login_error() from None
            self.confirm_login_allowed(self.user_cache)
        return self.cleaned_data


admin.site.login_form = AdminSignInForm


def operator(request, organization=None) -> Actor:
    return Actor.system(organization=organization, user=request.user, ip_address=client_ip(request))


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    ordering = ("email",)
    list_display = ("email", "name", "is_active", "is_staff", "created_at")
    list_filter = ("is_active", "is_staff")
    search_fields = ("email", "name")
    fieldsets = (
        (None, {"fields": ("email", "password", "name", "language")}),
        ("Status", {"fields": ("is_active", "is_staff", "is_superuser", "email_verified_at")}),
        ("Permissions", {"fields": ("groups", "user_permissions")}),
    )
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("email", "password1", "password2")}),)
    readonly_fields = ("created_at",)


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ("user",)
    # Role changes from the admin bypass the audit log; operators change roles through the members API.
    readonly_fields = ("user", "role", "created_at")
    can_delete = False


class ApiKeyInline(admin.TabularInline):
    model = ApiKey
    extra = 0
    fields = ("name", "last_four", "scopes", "expires_at", "last_used_at", "revoked_at")
    readonly_fields = fields
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None) -> bool:
        return False


class InvitationInline(admin.TabularInline):
    model = Invitation
    extra = 0
    fields = ("email", "role", "expires_at", "accepted_at", "revoked_at")
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Organization)
class OrganizationAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "country", "region", "status", "created_at")
    list_filter = ("status", "region", "country")
    search_fields = ("name", "slug", "memberships__user__email")
    readonly_fields = ("id", "status", "suspended_reason", "created_by", "created_at")
    inlines = (MembershipInline, ApiKeyInline, InvitationInline)
    actions = ("suspend", "reactivate")

    @admin.action(description="Suspend: every key and session stops working at once")
    def suspend(self, request, queryset):
        for organization in queryset:
            organization_suspend(
                organization=organization, actor=operator(request, organization), reason="Suspended by an operator"
            )
        messages.success(request, f"Suspended {queryset.count()} organisation(s).")

    @admin.action(description="Reactivate")
    def reactivate(self, request, queryset):
        for organization in queryset:
            organization_reactivate(organization=organization, actor=operator(request, organization))
        messages.success(request, f"Reactivated {queryset.count()} organisation(s).")


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ("name", "organization", "last_four", "expires_at", "last_used_at", "revoked_at")
    list_filter = ("revoked_at",)
    search_fields = ("name", "organization__slug", "last_four")
    readonly_fields = (
        "organization",
        "key_hash",
        "last_four",
        "scopes",
        "created_by",
        "created_at",
        "last_used_at",
        "revoked_at",
    )
    actions = ("revoke",)

    def has_add_permission(self, request) -> bool:
        return False  # plaintext keys are shown once, to their owner, through the API or portal

    @admin.action(description="Revoke: the key stops working at once")
    def revoke(self, request, queryset):
        for key in queryset.select_related("organization"):
            api_key_revoke(api_key=key, actor=operator(request, key.organization))
        messages.success(request, f"Revoked {queryset.count()} key(s).")


@admin.register(Invitation)
class InvitationAdmin(admin.ModelAdmin):
    list_display = ("email", "organization", "role", "expires_at", "accepted_at", "revoked_at")
    search_fields = ("email", "organization__slug")
    readonly_fields = (
        "organization",
        "email",
        "role",
        "token_hash",
        "invited_by",
        "expires_at",
        "accepted_at",
        "accepted_by",
        "revoked_at",
        "created_at",
    )

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = ("created_at", "organization", "actor_label", "action", "target_label", "ip_address")
    list_filter = ("action",)
    search_fields = ("actor_label", "target_label", "organization__slug", "ip_address")
    date_hierarchy = "created_at"

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


from . import data_protection_admin  # noqa: E402, F401  (deletion requests and their undo, retention settings)
