"""Signing up, confirming the address, signing in and out, the account page and accepting an invitation."""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login, logout
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import translation
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from tenants.audit import client_ip
from tenants.services import email_verification_send, email_verify, invitation_accept, user_language_set, user_sign_up
from tenants.signin import (
    InvalidCredentials,
    InvalidTwoFactorCode,
    SignInLocked,
    TwoFactorRequired,
    sign_in_authenticate,
)
from tenants.two_factor import two_factor_begin, two_factor_confirm, two_factor_disable

from ..access import errors_into
from ..forms import LanguageForm, SignInForm, SignUpForm, TwoFactorCodeForm


def _safe_next(request, fallback: str) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return target
    return fallback


def signup(request):
    form = SignUpForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            user = user_sign_up(
                email=form.cleaned_data["email"],
                password=form.cleaned_data["password"],
                name=form.cleaned_data["name"],
                ip_address=client_ip(request),
            )
        except ValidationError as exc:
            errors_into(form, exc)
        else:
            # The language the visitor signed up in becomes the account's language.
            user_language_set(user=user, language=translation.get_language() or "en", ip_address=client_ip(request))
            email_verification_send(user=user)
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            return redirect("portal:verify-sent")
    return render(request, "portal/account/signup.html", {"form": form})


def verify_sent(request):
    if request.method == "POST" and request.user.is_authenticated and not request.user.email_verified_at:
        email_verification_send(user=request.user)
        messages.success(request, _("We sent the link again."))
    return render(request, "portal/account/verify_sent.html")


def verify(request, token: str):
    try:
        email_verify(token=token, ip_address=client_ip(request))
    except ValidationError as exc:
        return render(request, "portal/account/verify_failed.html", {"errors": exc.messages}, status=400)
    messages.success(request, _("Your e-mail address is confirmed."))
    return redirect("portal:home")


def _sign_in_refusal(exc: Exception) -> str:
    if isinstance(exc, SignInLocked):
        minutes = max(1, round((getattr(exc, "wait", None) or 60) / 60))
        return _("Too many failed attempts. Try again in %(minutes)s minutes.") % {"minutes": minutes}
    if isinstance(exc, TwoFactorRequired):
        return _("Enter the code from your authenticator app.")
    if isinstance(exc, InvalidTwoFactorCode):
        return _("The two-factor code is not valid.")
    return _("The e-mail address or password is wrong.")


def sign_in(request):
    form = SignInForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            user = sign_in_authenticate(request=request, **form.cleaned_data)
        except (InvalidCredentials, TwoFactorRequired, SignInLocked) as exc:
            form.add_error(None, _sign_in_refusal(exc))
        else:
            login(request, user)
            return redirect(_safe_next(request, reverse("portal:home")))
    return render(request, "portal/account/login.html", {"form": form, "next": request.GET.get("next", "")})


@require_POST
def sign_out(request):
    logout(request)
    return redirect("portal:login")


@require_POST
def language(request):
    """Signed in: the account's language. Signed out: a cookie, as Django's set_language does."""
    form = LanguageForm(request.POST)
    response = redirect(_safe_next(request, reverse("portal:home")))
    if form.is_valid():
        code = form.cleaned_data["language"]
        if request.user.is_authenticated:
            user_language_set(user=request.user, language=code, ip_address=client_ip(request))
        response.set_cookie(
            settings.LANGUAGE_COOKIE_NAME,
            code,
            max_age=settings.LANGUAGE_COOKIE_AGE,
            samesite=settings.LANGUAGE_COOKIE_SAMESITE,
            secure=settings.LANGUAGE_COOKIE_SECURE,
        )
    return response


def account(request):
    """The account page, and two-factor sign-in: begin (a secret for the app), confirm (recovery codes, shown
    once), turn off."""
    if not request.user.is_authenticated:
        return redirect(f"{reverse('portal:login')}?next={request.path}")
    context = {"code_form": TwoFactorCodeForm()}
    action = request.POST.get("two_factor") if request.method == "POST" else None
    ip = client_ip(request)
    if action == "begin":
        try:
            context["secret"], context["otpauth_uri"] = two_factor_begin(user=request.user)
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
    elif action in ("confirm", "disable"):
        form = TwoFactorCodeForm(request.POST)
        if form.is_valid():
            try:
                if action == "confirm":
                    context["recovery_codes"] = two_factor_confirm(
                        user=request.user, code=form.cleaned_data["code"], ip_address=ip
                    )
                    messages.success(request, _("Two-factor sign-in is on."))
                else:
                    two_factor_disable(user=request.user, code=form.cleaned_data["code"], ip_address=ip)
                    messages.success(request, _("Two-factor sign-in is off."))
            except ValidationError as exc:
                errors_into(form, exc)
                context["pending"] = action == "confirm"
        context["code_form"] = form
        request.user.refresh_from_db()
    return render(request, "portal/account/account.html", context)


def invitation(request, token: str):
    if not request.user.is_authenticated:
        messages.info(request, _("Sign in or sign up with the invited address to accept the invitation."))
        return redirect(f"{reverse('portal:login')}?next={request.path}")
    if request.method == "POST":
        try:
            membership = invitation_accept(token=token, user=request.user, ip_address=client_ip(request))
        except ValidationError as exc:
            return render(request, "portal/account/invitation.html", {"errors": exc.messages}, status=400)
        messages.success(request, _("Welcome to %(org)s.") % {"org": membership.organization.name})
        return redirect("portal:dashboard", org_slug=membership.organization.slug)
    return render(request, "portal/account/invitation.html", {"token": token})
