"""The portal's forms. They validate shape only; the services validate meaning (and raise ValidationError,
which `access.errors_into` puts back on the form)."""

from django import forms
from django.conf import settings
from django.utils.translation import gettext_lazy as _

from tenants.models import Region
from tenants.roles import Role, Scope


class SignUpForm(forms.Form):
    name = forms.CharField(label=_("Your name"), max_length=150)
    email = forms.EmailField(label=_("Work e-mail"))
    password = forms.CharField(
        label=_("Password"), widget=forms.PasswordInput, min_length=10, help_text=_("At least 10 characters.")
    )


class SignInForm(forms.Form):
    email = forms.EmailField(label=_("E-mail"))
    password = forms.CharField(label=_("Password"), widget=forms.PasswordInput)
    otp = forms.CharField(
        label=_("Two-factor code"),
        required=False,
        max_length=32,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}),
        help_text=_("Only if you turned on two-factor sign-in: the code from your app, or a recovery code."),
    )


class TwoFactorCodeForm(forms.Form):
    code = forms.CharField(
        label=_("Code"), max_length=32, widget=forms.TextInput(attrs={"autocomplete": "one-time-code"})
    )


class OrganizationForm(forms.Form):
    name = forms.CharField(label=_("Organisation name"), max_length=200)
    slug = forms.SlugField(
        label=_("Short name"),
        max_length=50,
        help_text=_("Lower-case letters, digits and hyphens; used in URLs and model names."),
    )
    country = forms.CharField(
        label=_("Country"), max_length=2, min_length=2, help_text=_("ISO code, for example DE, KR or MX.")
    )
    region = forms.ChoiceField(
        label=_("Data residency region"),
        choices=Region.choices,
        help_text=_("Your data and models stay in this region."),
    )

    def clean_country(self):
        return self.cleaned_data["country"].upper()


class InvitationForm(forms.Form):
    email = forms.EmailField(label=_("E-mail"))
    role = forms.ChoiceField(label=_("Role"), choices=Role.choices, initial=Role.MEMBER)


class RoleForm(forms.Form):
    role = forms.ChoiceField(label=_("Role"), choices=Role.choices)


class ApiKeyForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=100, help_text=_("Where the key will be used."))
    scopes = forms.MultipleChoiceField(
        label=_("Permissions"), choices=Scope.choices, widget=forms.CheckboxSelectMultiple, initial=[Scope.INFERENCE]
    )
    expires_at = forms.DateTimeField(
        label=_("Expires"),
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
        help_text=_("Leave empty for a key that does not expire."),
    )


class LanguageForm(forms.Form):
    language = forms.ChoiceField(choices=settings.LANGUAGES)
