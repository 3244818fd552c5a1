"""The portal's middleware: the signed-in user's language, and a Content-Security-Policy on its pages."""

from urllib.parse import urlsplit

from django.conf import settings
from django.utils import translation


class UserLanguageMiddleware:
    """The language chosen on the account page wins over the browser's Accept-Language."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated and user.language:
            translation.activate(user.language)
            request.LANGUAGE_CODE = user.language
        response = self.get_response(request)
        response.headers.setdefault("Content-Language", translation.get_language())
        return response


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


class ContentSecurityPolicyMiddleware:
    """Portal pages may run only our own scripts and Stripe.js (the card form), and talk only to us and Stripe.
    No inline script or style, no framing. The admin and the API docs are left to Django's defaults."""

    def __init__(self, get_response):
        self.get_response = get_response
        stripe_js, stripe_api = _origin(settings.STRIPE_JS_URL), _origin(settings.STRIPE_API_BASE)
        # Real Stripe.js talks to api.stripe.com and frames js/hooks.stripe.com; localstripe serves all from one.
        stripe_frames = " ".join(sorted({stripe_js, "https://hooks.stripe.com"}))
        self.policy = "; ".join(
            [
                "default-src 'self'",
                f"script-src 'self' {stripe_js}",
                f"connect-src 'self' {stripe_js} {stripe_api}",
                f"frame-src {stripe_frames}",
                "img-src 'self' data:",
                "style-src 'self'",
                "object-src 'none'",
                "base-uri 'self'",
                "form-action 'self'",
                "frame-ancestors 'none'",
            ]
        )

    def __call__(self, request):
        response = self.get_response(request)
        match = getattr(request, "resolver_match", None)
        if match is not None and match.namespace == "portal":
            response.headers.setdefault("Content-Security-Policy", self.policy)
        return response
