"""Quality workflow pages: SPC alarms (acknowledge, close), investigations (suspects in the plant and shipped,
containment and corrective actions, the effectiveness check) and the 8D report (draft, edit, Markdown and PDF).

Every action calls what the REST API calls (`automation.quality.services`, `.report8d`); the views only turn forms
into those calls and results into pages. The process, SPC charts, analyses and genealogy pages are
`portal/views/quality.py` (another branch).
"""

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import redirect
from django.urls import path
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.generic import TemplateView

from automation.quality import report8d, services
from automation.quality.models import Alarm, CorrectiveAction, DefectCode, Investigation, Report8D
from automation.quality.selectors import investigation_suspects
from foundation.api.downloads import attachment
from tenants.models import User
from tenants.roles import Scope

from ..access import OrgPage, errors_into
from .quality import analysis_evidence

ALARM_STATUS = {
    Alarm.Status.OPEN: gettext_lazy("Open"),
    Alarm.Status.ACKNOWLEDGED: gettext_lazy("Acknowledged"),
    Alarm.Status.CLOSED: gettext_lazy("Closed"),
}
REPORT_STATUS = {
    Report8D.Status.PENDING: gettext_lazy("Draft pending: no answer from your model yet; it is asked again later."),
    Report8D.Status.READY: gettext_lazy("Drafted by your model"),
    Report8D.Status.EDITED: gettext_lazy("Edited"),
    Report8D.Status.FAILED: gettext_lazy("No draft: your model did not answer after repeated attempts."),
}


class InvestigationForm(forms.Form):
    defect_code = forms.ChoiceField(label=gettext_lazy("Defect code"))
    title = forms.CharField(label=gettext_lazy("Title"), max_length=200, required=False)
    cause_level = forms.ChoiceField(
        label=gettext_lazy("Suspected cause"),
        required=False,
        choices=[
            ("", gettext_lazy("Not known yet")),
            ("machine", gettext_lazy("Machine")),
            ("lot", gettext_lazy("Material lot")),
            ("variable", gettext_lazy("Process variable")),
            ("station", gettext_lazy("Station")),
        ],
    )
    cause_name = forms.CharField(label=gettext_lazy("Code or name"), max_length=200, required=False)

    def __init__(self, *args, organization, **kwargs):
        super().__init__(*args, **kwargs)
        codes = DefectCode.objects.filter(organization=organization).order_by("code").values_list("code", flat=True)
        self.fields["defect_code"].choices = [(c, c) for c in codes]


class Alarms(OrgPage, TemplateView):
    template_name = "portal/quality/alarms.html"
    section = "quality"

    def get_context_data(self, **kwargs):
        alarms = list(
            Alarm.objects.filter(organization=self.organization)
            .exclude(status=Alarm.Status.CLOSED)
            .select_related("variable", "machine", "characteristic")
            .order_by("-created_at")[:200]
        )
        for alarm in alarms:
            alarm.status_text = ALARM_STATUS.get(alarm.status, alarm.status)
        return super().get_context_data(alarms=alarms, **kwargs)


class AlarmMove(OrgPage, TemplateView):
    http_method_names = ["post"]
    scopes = {**OrgPage.scopes, "POST": Scope.ORG_WRITE}
    queryset = Alarm.objects.all()

    def post(self, request, *args, **kwargs):
        alarm = self.owned(self.queryset, pk=self.kwargs["pk"])
        note = request.POST.get("note", "")[:2000]
        try:
            if request.POST.get("action") == "acknowledge":
                services.alarm_acknowledge(alarm=alarm, actor=self.actor, note=note)
                messages.success(request, _("Alarm acknowledged."))
            elif request.POST.get("action") == "close":
                services.alarm_close(alarm=alarm, note=note)
                messages.success(request, _("Alarm closed."))
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        return redirect("portal:quality-alarms", org_slug=self.organization.slug)


class Investigations(OrgPage, TemplateView):
    template_name = "portal/quality/investigations.html"
    section = "quality"

    def get_context_data(self, **kwargs):
        kwargs.setdefault("form", InvestigationForm(organization=self.organization))
        investigations = Investigation.objects.filter(organization=self.organization).select_related("defect_code")
        return super().get_context_data(investigations=investigations.order_by("-created_at")[:200], **kwargs)

    def post(self, request, *args, **kwargs):
        form = InvestigationForm(request.POST, organization=self.organization)
        if form.is_valid():
            data = form.cleaned_data
            try:
                investigation = services.investigation_open(
                    organization=self.organization,
                    actor=self.actor,
                    defect_code=self.owned(DefectCode, code=data["defect_code"]),
                    title=data["title"],
                    cause_level=data["cause_level"],
                    cause_name=data["cause_name"],
                )
            except ValidationError as exc:
                errors_into(form, exc)
            else:
                return redirect("portal:quality-investigation", org_slug=self.organization.slug, pk=investigation.pk)
        return self.render_to_response(self.get_context_data(form=form), status=400)


class InvestigationDetail(OrgPage, TemplateView):
    """One investigation; POST `action` = containment, containment-done, corrective, implemented, check, draft,
    report (the edited sections)."""

    template_name = "portal/quality/investigation.html"
    section = "quality"
    queryset = Investigation.objects.select_related("defect_code", "analysis")

    def get_context_data(self, **kwargs):
        investigation = self.owned(self.queryset, pk=self.kwargs["pk"])
        report = Report8D.objects.filter(investigation=investigation).first()
        sections = [
            (key, title, (report.sections.get(key, "") if report else "")) for key, title in report8d.SECTIONS.items()
        ]
        members = User.objects.filter(memberships__organization=self.organization).order_by("email")
        return super().get_context_data(
            investigation=investigation,
            suspects=investigation_suspects(investigation=investigation),
            containment=investigation.containment_actions.all(),
            corrective=investigation.corrective_actions.select_related("assignee"),
            report=report,
            report_status=REPORT_STATUS.get(report.status, "") if report else "",
            sections=sections,
            members=members,
            **(analysis_evidence(investigation.analysis) if investigation.analysis else {}),
            **kwargs,
        )

    def post(self, request, *args, **kwargs):
        investigation = self.owned(self.queryset, pk=self.kwargs["pk"])
        action, post = request.POST.get("action"), request.POST
        try:
            if action == "containment":
                services.containment_add(investigation=investigation, description=post.get("description", "")[:4000])
            elif action == "containment-done":
                item = investigation.containment_actions.get(pk=post.get("id"))
                services.containment_update(action=item, data={"status": "done"})
            elif action == "corrective":
                assignee = None
                if post.get("assignee"):
                    assignee = User.objects.filter(
                        pk=post["assignee"], memberships__organization=self.organization
                    ).first()
                services.corrective_add(
                    investigation=investigation,
                    description=post.get("description", "")[:4000],
                    assignee=assignee,
                    due_date=forms.DateField(required=False).clean(post.get("due_date") or None),
                )
            elif action in ("implemented", "check"):
                item = CorrectiveAction.objects.get(investigation=investigation, pk=post.get("id"))
                if action == "implemented":
                    services.corrective_update(action=item, data={"status": "implemented"})
                else:
                    checked = services.corrective_check(action=item)
                    messages.info(request, checked.effectiveness.get("reason", ""))
            elif action == "draft":
                report8d.report_request(investigation=investigation)
                messages.info(request, _("Your model is asked to draft the 8D report."))
            elif action == "report":
                report = Report8D.objects.filter(investigation=investigation).first() or report8d.report_request(
                    investigation=investigation
                )
                report8d.report_edit(report=report, sections={k: post.get(k, "")[:20000] for k in report8d.SECTIONS})
                messages.success(request, _("8D report saved."))
        except (
            ValidationError,
            CorrectiveAction.DoesNotExist,
            investigation.containment_actions.model.DoesNotExist,
        ) as exc:
            messages.error(request, " ".join(getattr(exc, "messages", [str(exc)])))
        return redirect("portal:quality-investigation", org_slug=self.organization.slug, pk=investigation.pk)


class ReportExport(OrgPage, TemplateView):
    queryset = Investigation.objects.all()

    def get(self, request, *args, **kwargs):
        investigation = self.owned(self.queryset, pk=self.kwargs["pk"])
        report = self.owned(Report8D, investigation=investigation)
        filename = f"8d-{investigation.pk}.{self.kwargs['fmt']}"
        if self.kwargs["fmt"] == "pdf":
            return attachment(report8d.report_pdf(report), filename=filename, content_type="application/pdf")
        return attachment(
            report8d.report_markdown(report), filename=filename, content_type="text/markdown; charset=utf-8"
        )


urlpatterns = [
    path("quality/alarms", Alarms.as_view(), name="quality-alarms"),
    path("quality/alarms/<uuid:pk>", AlarmMove.as_view(), name="quality-alarm"),
    path("quality/investigations", Investigations.as_view(), name="quality-investigations"),
    path("quality/investigations/<uuid:pk>", InvestigationDetail.as_view(), name="quality-investigation"),
    path("quality/investigations/<uuid:pk>/report.md", ReportExport.as_view(), {"fmt": "md"}, name="quality-report-md"),
    path(
        "quality/investigations/<uuid:pk>/report.pdf", ReportExport.as_view(), {"fmt": "pdf"}, name="quality-report-pdf"
    ),
]
