"""What the portal's pages share: the live fragments portal.js polls, job status labels, the date-time widget."""

from django import forms
from django.utils.cache import patch_vary_headers
from django.utils.translation import gettext_lazy

JOB_STATUS = {
    "queued": gettext_lazy("Queued"),
    "running": gettext_lazy("Running"),
    "succeeded": gettext_lazy("Finished"),
    "failed": gettext_lazy("Failed"),
    "cancelled": gettext_lazy("Cancelled"),
}

DATETIME_WIDGET = forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M")


class LiveFragment:
    """A page whose live part portal.js re-fetches with `X-Fragment: 1` (and swaps in) until it stops polling."""

    fragment_template = ""

    def get_template_names(self):
        return [self.fragment_template if self.request.headers.get("X-Fragment") else self.template_name]

    def render_to_response(self, context, **kwargs):
        response = super().render_to_response(context, **kwargs)
        patch_vary_headers(response, ["X-Fragment"])
        return response
