"""The portal's routes: accounts at the top, everything of an organisation under /app/<org_slug>/."""

from django.urls import include, path
from django.views.generic import RedirectView

from .views import (
    accounts,
    billing,
    copilot,
    data_protection,
    finetuning,
    maintenance,
    models,
    organization,
    playground,
    quality,
    quality_workflow,
    scheduling,
    training_data,
)

app_name = "portal"

org_urlpatterns = [
    path("", organization.Dashboard.as_view(), name="dashboard"),
    path("members", organization.Members.as_view(), name="members"),
    path("keys", organization.Keys.as_view(), name="keys"),
    path("audit", organization.Audit.as_view(), name="audit"),
    path("billing", billing.PlanAndInvoices.as_view(), name="billing"),
    path("usage", billing.Usage.as_view(), name="usage"),
    *finetuning.urlpatterns,
    *training_data.urlpatterns,
    *models.urlpatterns,
    *playground.urlpatterns,
    *copilot.urlpatterns,
    *scheduling.urlpatterns,
    *maintenance.urlpatterns,
    *quality.urlpatterns,
    *quality_workflow.urlpatterns,
    *data_protection.urlpatterns,
]

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="portal:home", permanent=False), name="root"),
    path("signup", accounts.signup, name="signup"),
    path("login", accounts.sign_in, name="login"),
    path("logout", accounts.sign_out, name="logout"),
    path("verify", accounts.verify_sent, name="verify-sent"),
    path("verify/<str:token>", accounts.verify, name="verify"),
    path("account", accounts.account, name="account"),
    path("language", accounts.language, name="language"),
    path("invitations/<str:token>", accounts.invitation, name="invitation"),
    path("app/", organization.home, name="home"),
    path("app/new", organization.org_create, name="org-create"),
    path("app/<slug:org_slug>/", include(org_urlpatterns)),
]
