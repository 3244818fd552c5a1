"""The API of device keys and webhook endpoints, the same in every app that has them (maintenance, quality).

Serializers: `ingestion_key_serializers` and `webhook_serializers` build an app's serializer classes for its concrete
models (foundation.webhook_models); the app names them (the names are the OpenAPI component names) and passes what
differs: the foreign key a key may be limited to, the events an endpoint may subscribe to.

Views: `IngestionKeyViewMixin` and `WebhookEndpointViewMixin` hold create (the secret is shown once), revoke,
update and delete; the app's viewset adds its organisation scoping, scopes, queryset and serializers, and names the
services module that does the writes (`ingestion_key_create`/`ingestion_key_revoke`,
`webhook_endpoint_create`/`webhook_endpoint_update`/`webhook_endpoint_delete`).
"""

from collections.abc import Sequence
from types import ModuleType
from typing import Any

from django.db import models
from rest_framework import mixins, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response


def _serializer(name: str, module: str, base: type, attrs: dict[str, Any]) -> Any:
    return type(f"{name}Serializer", (base,), {"__module__": module, **attrs})


def ingestion_key_serializers(
    *,
    model: type[models.Model],
    name: str,
    module: str,
    target: str,
    target_field: serializers.Field,  # type: ignore[type-arg]
) -> tuple[Any, Any]:
    """`<name>Serializer` (list, retrieve, the create form) and `<name>CreatedSerializer` (the create answer, with
    the secret). `target` is the optional foreign key that limits what the key may publish for."""
    fields = ["id", "name", target, "key_id", "last_four", "revoked_at", "created_at"]
    meta = type(
        "Meta",
        (),
        {"model": model, "fields": fields, "read_only_fields": [f for f in fields if f not in {"name", target}]},
    )
    key = _serializer(name, module, serializers.ModelSerializer, {target: target_field, "Meta": meta})
    created_meta = type("Meta", (meta,), {"fields": [*fields, "secret"]})
    secret = serializers.CharField(read_only=True, help_text="Shown once; sign MQTT messages with it.")
    created = _serializer(f"{name}Created", module, key, {"secret": secret, "Meta": created_meta})
    return key, created


def webhook_serializers(
    *,
    endpoint_model: type[models.Model],
    delivery_model: type[models.Model],
    prefix: str,
    module: str,
    events: Sequence[str],
) -> tuple[Any, Any, Any]:
    """`<prefix>WebhookEndpointSerializer`, `<prefix>WebhookEndpointCreatedSerializer` (with the secret) and
    `<prefix>WebhookDeliverySerializer` (read only)."""
    fields = ["id", "url", "description", "events", "is_active", "secret_last_four", "created_at"]
    meta = type(
        "Meta",
        (),
        {"model": endpoint_model, "fields": fields, "read_only_fields": ["id", "secret_last_four", "created_at"]},
    )
    event_list = serializers.ListField(
        child=serializers.ChoiceField(choices=list(events)), required=False, default=list(events)
    )
    name = f"{prefix}WebhookEndpoint"
    endpoint = _serializer(name, module, serializers.ModelSerializer, {"events": event_list, "Meta": meta})
    created_meta = type("Meta", (meta,), {"fields": [*fields, "secret"]})
    secret = serializers.CharField(
        read_only=True, help_text="Shown once; verify the Lightsout-Signature header with it."
    )
    created = _serializer(f"{name}Created", module, endpoint, {"secret": secret, "Meta": created_meta})
    delivery_fields = [
        "id",
        "endpoint",
        "event",
        "payload",
        "status",
        "attempts",
        "response_status",
        "last_error",
        "delivered_at",
        "created_at",
    ]
    delivery_meta = type(
        "Meta", (), {"model": delivery_model, "fields": delivery_fields, "read_only_fields": delivery_fields}
    )
    delivery = _serializer(f"{prefix}WebhookDelivery", module, serializers.ModelSerializer, {"Meta": delivery_meta})
    return endpoint, created, delivery


class IngestionKeyViewMixin(
    mixins.CreateModelMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin
):
    """list, retrieve, create (the answer carries the secret, shown once) and destroy (revokes: the key stays,
    listed as revoked). The viewset sets `services` (the app's services module) and `created_serializer_class`."""

    services: ModuleType
    created_serializer_class: Any

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        view: Any = self
        form = view.get_serializer(data=request.data)
        form.is_valid(raise_exception=True)
        key, secret = self.services.ingestion_key_create(organization=view.organization, **form.validated_data)
        data = self.created_serializer_class(key, context=view.get_serializer_context()).data
        return Response({**data, "secret": secret}, status=status.HTTP_201_CREATED)

    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        view: Any = self
        key = self.services.ingestion_key_revoke(key=view.get_object())
        return Response(view.get_serializer(key).data)


class WebhookEndpointViewMixin:
    """create (the answer carries the signing secret, shown once; a new endpoint is active), update and delete
    through the app's services. The viewset sets `services` and `created_serializer_class`."""

    services: ModuleType
    created_serializer_class: Any

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        view: Any = self
        form = view.get_serializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = dict(form.validated_data)
        data.pop("is_active", None)
        endpoint, secret = self.services.webhook_endpoint_create(organization=view.organization, **data)
        body = self.created_serializer_class(endpoint).data
        return Response({**body, "secret": secret}, status=status.HTTP_201_CREATED)

    def perform_update(self, serializer: Any) -> None:
        serializer.instance = self.services.webhook_endpoint_update(
            endpoint=serializer.instance, data=serializer.validated_data
        )

    def perform_destroy(self, instance: Any) -> None:
        self.services.webhook_endpoint_delete(endpoint=instance)
