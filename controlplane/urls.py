"""Every route of the control plane. Only this wiring knows all the apps."""

from django.contrib import admin
from django.urls import URLPattern, URLResolver, include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

import assistant.urls
import automation.maintenance.urls
import automation.quality.urls
import automation.scheduling.urls
import billing.urls
import inference.urls
import jobs.urls
import tenants.urls
from controlplane.health import health
from foundation.api.errors import json_error_view

# Organisation resources: every view here inherits tenants.scoping.OrganizationScopedViewMixin.
org_urlpatterns = [
    *tenants.urls.org_urlpatterns,
    *jobs.urls.org_urlpatterns,
    *billing.urls.org_urlpatterns,
    *inference.urls.org_urlpatterns,
    *automation.scheduling.urls.org_urlpatterns,
    *automation.maintenance.urls.org_urlpatterns,
    *automation.quality.urls.org_urlpatterns,
    *assistant.urls.org_urlpatterns,
]

api_v1: list[URLPattern | URLResolver] = [
    *tenants.urls.account_urlpatterns,
    *billing.urls.public_urlpatterns,
    *inference.urls.public_urlpatterns,
    path("orgs/<slug:org_slug>", tenants.urls.organization_detail, name="organization-detail"),
    path("orgs/<slug:org_slug>/", include(org_urlpatterns)),
]

urlpatterns = [
    path("api/v1/", include(api_v1)),
    path("v1/", include("inference.openai_urls")),
    path("api/schema", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("api/redoc", SpectacularRedocView.as_view(url_name="schema"), name="api-redoc"),
    path("admin/", admin.site.urls),
    path("healthz", health, name="health"),
    path("", include("portal.urls")),
]

handler404 = json_error_view(404, "not_found", "Not found.", page_template="portal/error.html")
handler500 = json_error_view(500, "server_error", "Internal server error.", page_template="portal/error.html")
