"""The owner's data-protection page: export all data, retention periods per data kind, delete the organisation."""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import path
from django.utils.translation import gettext as _
from django.views import View
from django.views.generic import TemplateView

from foundation.api.downloads import file_download
from foundation.api.errors import ApiError
from jobs.data_export import EXPORT_JOB_KIND, data_export_archive, data_export_start
from jobs.models import Job
from tenants.audit import audit_record
from tenants.erasure import organization_deletion_request
from tenants.models import AuditEvent
from tenants.retention import retention_for, retention_set
from tenants.roles import Role, Scope

from ..access import OrgPage


class OwnerOnly(OrgPage):
    scopes = {"GET": Scope.ORG_ADMIN, "HEAD": Scope.ORG_ADMIN, "POST": Scope.ORG_ADMIN}

    def is_owner(self) -> bool:
        return self.actor.role == Role.OWNER

    def refuse(self, request):
        return render(request, "portal/refused.html", {**self.base_context(), "needed": _("owner")}, status=403)


class DataProtection(OwnerOnly, TemplateView):
    template_name = "portal/org/data.html"
    section = "data"

    def get_context_data(self, **kwargs):
        exports = Job.objects.filter(organization=self.organization, kind=EXPORT_JOB_KIND).order_by("-created_at")
        return super().get_context_data(
            exports=exports[:10],
            retention=retention_for(organization=self.organization),
            is_owner=self.is_owner(),
            **kwargs,
        )

    def post(self, request, *args, **kwargs):
        if not self.is_owner():
            return self.refuse(request)
        action = request.POST.get("action")
        try:
            if action == "export":
                data_export_start(organization=self.organization, actor=self.actor)
                messages.success(request, _("Export started. The archive appears here when it is ready."))
            elif action == "retention":
                days = request.POST.get("days", "").strip()
                retention_set(
                    organization=self.organization,
                    actor=self.actor,
                    kind=request.POST.get("kind", ""),
                    days=int(days) if days.isdigit() else None,
                )
                messages.success(request, _("Retention period saved."))
            elif action == "delete":
                deletion = organization_deletion_request(
                    organization=self.organization, actor=self.actor, confirm=request.POST.get("confirm", "")
                )
                messages.success(
                    request,
                    _("The organisation is suspended and will be erased after %(date)s UTC.")
                    % {"date": deletion.erase_after.strftime("%Y-%m-%d %H:%M")},
                )
                return redirect("portal:home")
        except ValidationError as exc:
            for message in exc.messages:
                messages.error(request, message)
            return self.render_to_response(self.get_context_data(), status=400)
        return redirect("portal:data", org_slug=self.organization.slug)


class DataExportDownload(OwnerOnly, View):
    model = Job

    def get(self, request, *args, **kwargs):
        job = self.owned(Job, pk=kwargs["pk"], kind=EXPORT_JOB_KIND)
        if not self.is_owner():
            return self.refuse(request)
        try:
            archive = data_export_archive(job=job)
        except ApiError:  # not finished, or expired and removed
            raise Http404 from None
        audit_record(action=AuditEvent.Action.DATA_EXPORT_DOWNLOADED, target=job, **self.actor.audit_kwargs())
        name = f"lightsout-{self.organization.slug}-{job.created_at:%Y%m%d-%H%M%S}.zip"
        return file_download(request, archive.open("rb"), filename=name, content_type="application/zip")


urlpatterns = [
    path("data", DataProtection.as_view(), name="data"),
    path("data/exports/<uuid:pk>", DataExportDownload.as_view(), name="data-export-download"),
]
