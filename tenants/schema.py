"""OpenAPI descriptions of the bearer credentials (loaded by TenantsConfig.ready)."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "tenants.authentication.ApiKeyAuthentication"
    name = "apiKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "lo_live_…",
            "description": "An organisation API key, bound to one organisation and carrying scopes.",
        }


class UserTokenScheme(OpenApiAuthenticationExtension):
    target_class = "tenants.authentication.UserTokenAuthentication"
    name = "userToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "lo_user_…",
            "description": "A user's own token from POST /api/v1/auth/tokens.",
        }
