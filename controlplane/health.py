"""The health view for the URL map; ProbeMiddleware answers these paths first (see controlplane.observability)."""

from controlplane.observability import readiness


def health(request):
    """Readiness: PostgreSQL and Redis answer."""
    return readiness()
