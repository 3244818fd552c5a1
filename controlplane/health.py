from django.db import connection
from django.http import JsonResponse

from foundation.redis import get_redis


def health(request):
    """Liveness and readiness for the load balancer: the database and Redis answer."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    get_redis().ping()
    return JsonResponse({"status": "ok"})
