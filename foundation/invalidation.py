"""Tell every gateway process that cached credentials or routes changed, once the change is committed.

The gateway caches API keys, model routes and entitlements in memory so its hot path touches no database; a revoked
key, a suspended organisation, a changed plan or a moved adapter must still take effect at once, so writers publish
here. Delivery alone is not enough: a client that revokes a key and at once tries it could reach a gateway process
that has the message in its socket but has not read it yet. So each listener acknowledges a message once it has
dropped its entries, and the writer waits (up to ACK_WAIT_S) for as many acknowledgements as PUBLISH reported
listeners. A listener that does not answer in time (hung, or gone) still loses the entry at the cache's TTL.
"""

import json
import logging
import time
import uuid

from django.db import transaction

from foundation.redis import get_redis

CHANNEL = "lo:invalidate"
ACK_WAIT_S = 1.0
ACK_TTL_S = 60  # a late acknowledgement's list is not left behind

logger = logging.getLogger(__name__)


def ack_key(message_id: str) -> str:
    return f"{CHANNEL}:ack:{message_id}"


def publish_invalidation(*, kind: str, organization_id: str | uuid.UUID) -> None:
    message_id = uuid.uuid4().hex
    message = json.dumps({"id": message_id, "kind": kind, "organization_id": str(organization_id)})
    transaction.on_commit(lambda: _publish_and_wait(message_id, message))


def _publish_and_wait(message_id: str, message: str) -> None:
    redis = get_redis()
    listeners = redis.publish(CHANNEL, message)
    deadline = time.monotonic() + ACK_WAIT_S
    for acknowledged in range(listeners):
        left = deadline - time.monotonic()
        if left <= 0 or redis.blpop([ack_key(message_id)], timeout=left) is None:
            logger.warning(
                "%d of %d listeners acknowledged invalidation %s within %.1f s; the rest drop the entry "
                "at their cache's TTL",
                acknowledged,
                listeners,
                message,
                ACK_WAIT_S,
            )
            return
