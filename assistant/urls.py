from django.urls import path
from rest_framework.routers import SimpleRouter

from . import api

router = SimpleRouter(trailing_slash=False)
router.register("assistant/documents", api.DocumentViewSet, basename="assistant-document")
router.register("assistant/datasets", api.QaDatasetViewSet, basename="assistant-dataset")
router.register("assistant/pairs", api.QaPairViewSet, basename="assistant-pair")
router.register("assistant/conversations", api.ConversationViewSet, basename="assistant-conversation")
router.register("assistant/proposals", api.ProposalViewSet, basename="assistant-proposal")

# Mounted under /api/v1/orgs/<org_slug>/ by controlplane.urls.
org_urlpatterns = [
    path("assistant/search", api.SearchView.as_view(), name="assistant-search"),
    *router.urls,
]
