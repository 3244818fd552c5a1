"""What follows a new recommendation, once its transaction commits: webhook deliveries and its explanation.

The tasks are sent by name: the tasks module runs the modelling that calls this one, so importing it here would
close an import loop.
"""

from celery import current_app
from django.db import transaction

from .models import Recommendation, WebhookDelivery, WebhookEndpoint

EVENT = "recommendation.created"


def recommendation_payload(recommendation: Recommendation) -> dict:
    asset = recommendation.asset
    work_order = getattr(recommendation, "work_order", None)
    health = recommendation.health
    return {
        "id": str(recommendation.pk),
        "asset": {
            "id": str(asset.pk),
            "code": asset.code,
            "name": asset.name,
            "site": asset.site,
            "asset_type": asset.asset_type.code,
        },
        "action": recommendation.action,
        "component": recommendation.component,
        "channel": recommendation.channel,
        "due_by": recommendation.due_by.isoformat(),
        "priority": recommendation.priority,
        "conservative_rul_cycles": recommendation.conservative_rul,
        "reason": recommendation.reason,
        "health_score": health.health_score if health else None,
        "rul_cycles": health.rul_cycles if health else None,
        "work_order": {"id": str(work_order.pk), "status": work_order.status} if work_order else None,
        "explanation_status": recommendation.explanation_status,
        "created_at": recommendation.created_at.isoformat(),
    }


def recommendation_created(*, recommendation: Recommendation) -> list[WebhookDelivery]:
    payload = recommendation_payload(recommendation)
    deliveries = [
        WebhookDelivery.objects.create(
            organization_id=recommendation.organization_id,
            endpoint=endpoint,
            event=EVENT,
            payload={"type": EVENT, "organization": endpoint.organization.slug, "data": payload},
        )
        for endpoint in WebhookEndpoint.objects.filter(
            organization_id=recommendation.organization_id, is_active=True
        ).select_related("organization")
        if EVENT in endpoint.events
    ]
    ids = {"recommendation_id": str(recommendation.pk), "organization_id": str(recommendation.organization_id)}

    def send() -> None:
        for delivery in deliveries:
            current_app.send_task(
                "maintenance.deliver_webhook", kwargs={"delivery_id": str(delivery.pk)}, queue="maintenance"
            )
        current_app.send_task("maintenance.explain_recommendation", kwargs=ids, queue="maintenance")

    transaction.on_commit(send)
    return deliveries
