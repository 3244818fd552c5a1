"""Tell every gateway process that cached credentials or routes changed, once the change is committed.

The gateway caches API keys and model routes in memory so its hot path touches no database; a revoked key, a
suspended organisation or a moved adapter must still take effect at once, so writers publish here.
"""

import json

from django.db import transaction

from controlplane.redis import get_redis

CHANNEL = "lo:invalidate"


def publish_invalidation(*, kind: str, organization_id: str) -> None:
    message = json.dumps({"kind": kind, "organization_id": str(organization_id)})
    transaction.on_commit(lambda: get_redis().publish(CHANNEL, message))
