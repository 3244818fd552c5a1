"""Machine credentials for the control-plane API: organisation API keys and users' own tokens.

Both arrive as `Authorization: Bearer <secret>` and are told apart by their prefix. An API key is not a person:
it authenticates as a `KeyPrincipal`, never as the member who created it, so a key can reach its own
organisation and nothing else.
"""

from django.utils import timezone
from rest_framework import authentication, exceptions

from foundation.api.throttling import failed_credentials_record, failed_credentials_wait
from foundation.client_address import client_address

from .models import ApiKey, UserToken
from .secrets import API_KEY_PREFIX, USER_TOKEN_PREFIX, secret_hash
from .services import api_key_touch


class KeyPrincipal:
    """`request.user` for a request made with an API key."""

    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_staff = False
    is_superuser = False
    pk = None

    def __init__(self, api_key: ApiKey):
        self.api_key = api_key

    def __str__(self) -> str:
        return f"API key {self.api_key.name}"


def bearer_secret(request) -> str | None:
    header = authentication.get_authorization_header(request).decode(errors="replace")
    scheme, _, secret = header.partition(" ")
    if scheme.lower() != "bearer" or not secret:
        return None
    return secret.strip()


def _check_failed_lookups(request) -> None:
    """Unknown keys and tokens each cost a database lookup: past the limit an address waits (429)."""
    wait = failed_credentials_wait(client_address(request))
    if wait is not None:
        raise exceptions.Throttled(wait=wait, detail="Too many unknown credentials from this address.")


class ApiKeyAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request):
        secret = bearer_secret(request)
        if not secret or not secret.startswith(API_KEY_PREFIX):
            return None
        _check_failed_lookups(request)
        key = ApiKey.objects.select_related("organization").filter(key_hash=secret_hash(secret)).first()
        if key is None:
            failed_credentials_record(client_address(request))
            raise exceptions.AuthenticationFailed("Invalid API key.")
        if key.revoked_at is not None:
            raise exceptions.AuthenticationFailed("This API key has been revoked.")
        if not key.is_usable():
            raise exceptions.AuthenticationFailed("This API key has expired.")
        api_key_touch(api_key=key)
        return KeyPrincipal(key), key

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="api"'


class UserTokenAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request):
        secret = bearer_secret(request)
        if not secret or not secret.startswith(USER_TOKEN_PREFIX):
            return None
        _check_failed_lookups(request)
        token = UserToken.objects.select_related("user").filter(key_hash=secret_hash(secret)).first()
        if token is None:
            failed_credentials_record(client_address(request))
        if token is None or token.revoked_at is not None or token.expires_at <= timezone.now():
            raise exceptions.AuthenticationFailed("Invalid or expired token.")
        if not token.user.is_active:
            raise exceptions.AuthenticationFailed("This account is disabled.")
        return token.user, token

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="api"'
