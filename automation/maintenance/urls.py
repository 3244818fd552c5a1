# Mounted under /api/v1/orgs/<org_slug>/ by controlplane.urls.
org_urlpatterns: list = []
