from django.urls import path
from rest_framework.routers import SimpleRouter

from . import api

account_urlpatterns = [
    path("auth/signup", api.SignUpView.as_view(), name="auth-signup"),
    path("auth/login", api.SignInView.as_view(), name="auth-login"),
    path("auth/logout", api.SignOutView.as_view(), name="auth-logout"),
    path("auth/tokens", api.TokenView.as_view(), name="auth-tokens"),
    path("auth/password-reset", api.PasswordResetRequestView.as_view(), name="auth-password-reset"),
    path("auth/password-reset/confirm", api.PasswordResetConfirmView.as_view(), name="auth-password-reset-confirm"),
    path("me", api.MeView.as_view(), name="me"),
    path("me/two-factor", api.TwoFactorView.as_view(), name="two-factor"),
    path("me/two-factor/confirm", api.TwoFactorConfirmView.as_view(), name="two-factor-confirm"),
    path("me/two-factor/recovery-codes", api.RecoveryCodesView.as_view(), name="two-factor-recovery-codes"),
    path("invitations/accept", api.InvitationAcceptView.as_view(), name="invitation-accept"),
    path("orgs", api.OrganizationListView.as_view(), name="organization-list"),
]

router = SimpleRouter(trailing_slash=False)
router.register("members", api.MembershipViewSet, basename="membership")
router.register("invitations", api.InvitationViewSet, basename="invitation")
router.register("api-keys", api.ApiKeyViewSet, basename="api-key")
router.register("audit-events", api.AuditEventViewSet, basename="audit-event")

# Mounted at /api/v1/orgs/<org_slug> by controlplane.urls.
organization_detail = api.OrganizationDetailView.as_view()

# Mounted under /api/v1/orgs/<org_slug>/ by controlplane.urls.
org_urlpatterns = router.urls

# Data protection (tenants/data_protection_api.py); mounted under /api/v1/orgs/<org_slug>/ with the rest.
from . import data_protection_api  # noqa: E402

org_urlpatterns = [
    *org_urlpatterns,
    path("deletion", data_protection_api.OrganizationDeletionView.as_view(), name="organization-deletion"),
    path("retention", data_protection_api.RetentionView.as_view(), name="retention"),
]
