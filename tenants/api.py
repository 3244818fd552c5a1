"""Control-plane API for accounts, organisations, members, invitations, API keys and the audit log."""

from django.contrib.auth import login, logout
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, permissions, status, viewsets
from rest_framework.generics import GenericAPIView
from rest_framework.response import Response
from rest_framework.views import APIView

from . import selectors, serializers, services, signin, two_factor
from .audit import client_ip
from .models import ApiKey, AuditEvent, Invitation, Membership, User, UserToken
from .roles import Scope
from .scoping import OrganizationScopedViewMixin


class IsPerson(permissions.BasePermission):
    """Account endpoints are for people (session or user token), not organisation API keys."""

    message = "This endpoint needs a signed-in user, not an API key."

    def has_permission(self, request, view) -> bool:
        return isinstance(request.user, User)


# --- accounts -------------------------------------------------------------------------------------------------


class SignUpView(APIView):
    permission_classes = [permissions.AllowAny]

    @extend_schema(request=serializers.SignUpSerializer, responses={201: serializers.UserSerializer})
    def post(self, request):
        data = serializers.SignUpSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = services.user_sign_up(**data.validated_data, ip_address=client_ip(request))
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        return Response(serializers.UserSerializer(user).data, status=status.HTTP_201_CREATED)


class SignInView(APIView):
    """Starts a browser session. Machines use `POST /api/v1/auth/tokens` instead. Failed attempts are limited per
    account and per address (tenants.signin); with two-factor sign-in on, send `otp` too."""

    permission_classes = [permissions.AllowAny]

    @extend_schema(request=serializers.SignInSerializer, responses={200: serializers.UserSerializer})
    def post(self, request):
        data = serializers.SignInSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = signin.sign_in_authenticate(request=request, **data.validated_data)
        login(request, user)
        return Response(serializers.UserSerializer(user).data)


class SignOutView(APIView):
    permission_classes = [IsPerson]

    @extend_schema(request=None, responses={204: None})
    def post(self, request):
        if isinstance(request.auth, UserToken):
            services.user_token_revoke(token=request.auth)
        logout(request)
        return Response(status=status.HTTP_204_NO_CONTENT)


class TokenView(APIView):
    """A user token for machines: `Authorization: Bearer lo_user_...`. Shown once."""

    permission_classes = [permissions.AllowAny]

    @extend_schema(request=serializers.SignInSerializer, responses={201: serializers.TokenSerializer})
    def post(self, request):
        data = serializers.SignInSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = signin.sign_in_authenticate(request=request, **data.validated_data)
        token, plaintext = services.user_token_create(user=user)
        return Response({"token": plaintext, "expires_at": token.expires_at}, status=status.HTTP_201_CREATED)


class PasswordResetRequestView(APIView):
    permission_classes = [permissions.AllowAny]

    @extend_schema(request=serializers.PasswordResetRequestSerializer, responses={202: None})
    def post(self, request):
        data = serializers.PasswordResetRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.password_reset_request(email=data.validated_data["email"], ip_address=client_ip(request))
        return Response(status=status.HTTP_202_ACCEPTED)


class PasswordResetConfirmView(APIView):
    permission_classes = [permissions.AllowAny]

    @extend_schema(request=serializers.PasswordResetConfirmSerializer, responses={204: None})
    def post(self, request):
        data = serializers.PasswordResetConfirmSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.password_reset_confirm(**data.validated_data, ip_address=client_ip(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


def _two_factor_code(request) -> str:
    data = serializers.TwoFactorCodeSerializer(data=request.data)
    data.is_valid(raise_exception=True)
    return data.validated_data["code"]


class TwoFactorView(APIView):
    """Two-factor sign-in for the caller: POST begins enrolment (a secret for the app), DELETE turns it off."""

    permission_classes = [IsPerson]

    @extend_schema(request=None, responses={201: serializers.TwoFactorBeginSerializer})
    def post(self, request):
        secret, uri = two_factor.two_factor_begin(user=request.user)
        return Response({"secret": secret, "otpauth_uri": uri}, status=status.HTTP_201_CREATED)

    @extend_schema(request=serializers.TwoFactorCodeSerializer, responses={204: None})
    def delete(self, request):
        two_factor.two_factor_disable(user=request.user, code=_two_factor_code(request), ip_address=client_ip(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


class TwoFactorConfirmView(APIView):
    """The first code from the app switches two-factor sign-in on; the answer holds the recovery codes, once."""

    permission_classes = [IsPerson]

    @extend_schema(request=serializers.TwoFactorCodeSerializer, responses={200: serializers.RecoveryCodesSerializer})
    def post(self, request):
        codes = two_factor.two_factor_confirm(
            user=request.user, code=_two_factor_code(request), ip_address=client_ip(request)
        )
        return Response({"recovery_codes": codes})


class RecoveryCodesView(APIView):
    """New recovery codes (the old ones stop working), against a current code."""

    permission_classes = [IsPerson]

    @extend_schema(request=serializers.TwoFactorCodeSerializer, responses={200: serializers.RecoveryCodesSerializer})
    def post(self, request):
        codes = two_factor.recovery_codes_regenerate(
            user=request.user, code=_two_factor_code(request), ip_address=client_ip(request)
        )
        return Response({"recovery_codes": codes})


class MeView(APIView):
    permission_classes = [IsPerson]

    @extend_schema(responses={200: serializers.UserSerializer})
    def get(self, request):
        return Response(serializers.UserSerializer(request.user).data)


class InvitationAcceptView(APIView):
    permission_classes = [IsPerson]

    @extend_schema(request=serializers.InvitationAcceptSerializer, responses={200: serializers.MembershipSerializer})
    def post(self, request):
        data = serializers.InvitationAcceptSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        membership = services.invitation_accept(
            token=data.validated_data["token"], user=request.user, ip_address=client_ip(request)
        )
        return Response(serializers.MembershipSerializer(membership).data)


# --- organisations ------------------------------------------------------------------------------------------


class OrganizationListView(GenericAPIView):
    """The caller's organisations, and creating a new one (the caller becomes its owner)."""

    permission_classes = [IsPerson]
    serializer_class = serializers.OrganizationSerializer

    @extend_schema(operation_id="orgs_list", responses={200: serializers.OrganizationSerializer(many=True)})
    def get(self, request):
        page = self.paginate_queryset(
            selectors.organization_list_for_user(user=request.user).order_by("-created_at", "-id")
        )
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    @extend_schema(operation_id="orgs_create")
    def post(self, request):
        data = serializers.OrganizationSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        fields = {k: data.validated_data[k] for k in ("name", "slug", "country", "region")}
        organization = services.organization_create_by_person(
            **fields, user=request.user, ip_address=client_ip(request)
        )
        return Response(self.get_serializer(organization).data, status=status.HTTP_201_CREATED)


class OrganizationDetailView(OrganizationScopedViewMixin, GenericAPIView):
    serializer_class = serializers.OrganizationSerializer
    method_scopes = {**OrganizationScopedViewMixin.method_scopes, "PATCH": Scope.ORG_ADMIN}

    def get(self, request, org_slug):
        return Response(self.get_serializer(self.organization).data)

    @extend_schema(request=serializers.OrganizationUpdateSerializer)
    def patch(self, request, org_slug):
        data = serializers.OrganizationUpdateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        organization = services.organization_update(
            organization=self.organization, actor=self.actor, **data.validated_data
        )
        return Response(self.get_serializer(organization).data)


class MembershipViewSet(
    OrganizationScopedViewMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    queryset = Membership.objects.select_related("user")
    serializer_class = serializers.MembershipSerializer
    method_scopes = {**OrganizationScopedViewMixin.method_scopes, "PATCH": Scope.ORG_ADMIN, "DELETE": Scope.ORG_ADMIN}

    @extend_schema(request=serializers.MembershipUpdateSerializer)
    def partial_update(self, request, *args, **kwargs):
        membership = self.get_object()  # 404 for another tenant's member comes before any 400
        data = serializers.MembershipUpdateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        membership = services.membership_change_role(
            membership=membership, role=data.validated_data["role"], actor=self.actor
        )
        return Response(self.get_serializer(membership).data)

    def destroy(self, request, *args, **kwargs):
        services.membership_remove(membership=self.get_object(), actor=self.actor)
        return Response(status=status.HTTP_204_NO_CONTENT)


class AdminScopedViewSet(OrganizationScopedViewMixin, viewsets.GenericViewSet):
    """Resources only administrators may see or touch: invitations, API keys, the audit log."""

    method_scopes = dict.fromkeys(OrganizationScopedViewMixin.method_scopes, Scope.ORG_ADMIN)


class InvitationViewSet(AdminScopedViewSet, mixins.ListModelMixin, mixins.RetrieveModelMixin):
    queryset = Invitation.objects.all()
    serializer_class = serializers.InvitationSerializer

    @extend_schema(request=serializers.InvitationCreateSerializer, responses={201: serializers.InvitationSerializer})
    def create(self, request, *args, **kwargs):
        data = serializers.InvitationCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        invitation, _ = services.invitation_create(
            organization=self.organization, actor=self.actor, **data.validated_data
        )
        return Response(self.get_serializer(invitation).data, status=status.HTTP_201_CREATED)

    def destroy(self, request, *args, **kwargs):
        services.invitation_revoke(invitation=self.get_object(), actor=self.actor)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ApiKeyViewSet(AdminScopedViewSet, mixins.ListModelMixin, mixins.RetrieveModelMixin):
    queryset = ApiKey.objects.all()
    serializer_class = serializers.ApiKeySerializer

    @extend_schema(request=serializers.ApiKeyCreateSerializer, responses={201: serializers.ApiKeyCreatedSerializer})
    def create(self, request, *args, **kwargs):
        data = serializers.ApiKeyCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        key, plaintext = services.api_key_create(
            organization=self.organization, actor=self.actor, **data.validated_data
        )
        key.key = plaintext
        return Response(serializers.ApiKeyCreatedSerializer(key).data, status=status.HTTP_201_CREATED)

    @extend_schema(summary="Revoke the key; it stops working at once.", responses={204: None})
    def destroy(self, request, *args, **kwargs):
        services.api_key_revoke(api_key=self.get_object(), actor=self.actor)
        return Response(status=status.HTTP_204_NO_CONTENT)


class AuditEventViewSet(AdminScopedViewSet, mixins.ListModelMixin, mixins.RetrieveModelMixin):
    queryset = AuditEvent.objects.all()
    serializer_class = serializers.AuditEventSerializer
