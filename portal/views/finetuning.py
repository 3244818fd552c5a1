"""Fine-tuning: training files (validated with line numbers by `inference.fine_tuning.training_file_upload`), jobs
started with `fine_tuning_job_create` (the same services as OpenAI's /v1/files and /v1/fine_tuning/jobs), a job page
with live progress (a `data-poll` fragment), its events and a loss chart, and cancellation through
`jobs.services.job_cancel`."""

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.shortcuts import redirect
from django.urls import path
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.generic import TemplateView, View

from billing.errors import BillingRefusal
from inference.fine_tuning import fine_tuning_job_create, training_file_delete, training_file_upload
from inference.models import BaseModel, FineTuningJob, TrainingFile
from jobs.models import Job, JobEvent
from jobs.services import job_cancel
from tenants.roles import Scope

from ..access import OrgPage, errors_into
from ..charts import line_chart
from ..pages import LiveFragment

CHART_MAX_POINTS = 200

STATUS_LABELS = {
    "queued": gettext_lazy("Queued"),
    "validating_files": gettext_lazy("Validating files"),
    "running": gettext_lazy("Running"),
    "succeeded": gettext_lazy("Succeeded"),
    "failed": gettext_lazy("Failed"),
    "cancelled": gettext_lazy("Cancelled"),
}
HYPERPARAMETER_LABELS = {
    "n_epochs": gettext_lazy("Epochs"),
    "batch_size": gettext_lazy("Batch size"),
    "learning_rate_multiplier": gettext_lazy("Learning-rate multiplier"),
}


class TrainingFileForm(forms.Form):
    file = forms.FileField(
        label=gettext_lazy("Training file"),
        help_text=gettext_lazy(
            'JSONL: one chat example per line, {"messages": [{"role": "user", "content": …}, '
            '{"role": "assistant", "content": …}]}. Every problem is listed with its line.'
        ),
        widget=forms.ClearableFileInput(attrs={"accept": ".jsonl,application/jsonl,application/json,text/plain"}),
    )


class FineTuningJobForm(forms.Form):
    model = forms.ModelChoiceField(
        label=gettext_lazy("Base model"), queryset=BaseModel.objects.none(), to_field_name="name", empty_label=None
    )
    training_file = forms.ModelChoiceField(
        label=gettext_lazy("Training data"), queryset=TrainingFile.objects.none(), empty_label=None
    )
    validation_file = forms.ModelChoiceField(
        label=gettext_lazy("Validation data (optional)"),
        queryset=TrainingFile.objects.none(),
        required=False,
        empty_label=gettext_lazy("None"),
        help_text=gettext_lazy("Held-out examples: the job reports validation loss before, during and after."),
    )
    suffix = forms.RegexField(
        label=gettext_lazy("Name suffix"),
        regex=r"^[a-z0-9][a-z0-9-]*$",
        max_length=40,
        required=False,
        help_text=gettext_lazy(
            "Lower-case letters, digits and hyphens; part of the model's name, ft:<base>:<organisation>:<suffix>:<id>."
        ),
    )
    n_epochs = forms.IntegerField(
        label=gettext_lazy("Epochs"),
        min_value=1,
        max_value=100,
        required=False,
        help_text=gettext_lazy("Empty: chosen for the dataset's size and the base model."),
    )
    batch_size = forms.IntegerField(
        label=gettext_lazy("Batch size"),
        min_value=1,
        max_value=256,
        required=False,
        help_text=gettext_lazy("Empty: chosen for the dataset's size and the base model."),
    )
    learning_rate_multiplier = forms.FloatField(
        label=gettext_lazy("Learning-rate multiplier"),
        min_value=0.001,
        max_value=100,
        required=False,
        widget=forms.NumberInput(attrs={"step": "any"}),
        help_text=gettext_lazy("Empty: chosen for the dataset's size and the base model."),
    )

    def __init__(self, *args, organization, **kwargs):
        super().__init__(*args, **kwargs)
        files = TrainingFile.objects.filter(organization=organization).order_by("-created_at")
        self.fields["model"].queryset = BaseModel.objects.order_by("name")
        self.fields["training_file"].queryset = files
        self.fields["validation_file"].queryset = files
        for name in ("training_file", "validation_file"):
            self.fields[name].label_from_instance = lambda f: (
                _("%(name)s (%(examples)s examples, %(id)s)") % {"name": f.filename, "examples": f.examples, "id": f.id}
            )

    def hyperparameters(self) -> dict | None:
        chosen = {
            name: self.cleaned_data[name]
            for name in ("n_epochs", "batch_size", "learning_rate_multiplier")
            if self.cleaned_data.get(name) is not None
        }
        return chosen or None


def _job_status(ft: FineTuningJob) -> str:
    job = ft.job
    return "validating_files" if job.status == Job.Status.RUNNING and ft.validating else job.status


def _status_label(status: str) -> str:
    return str(STATUS_LABELS.get(status, status))


def _thinned(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """At most CHART_MAX_POINTS points, evenly spaced, the last one always kept."""
    if len(points) <= CHART_MAX_POINTS:
        return points
    stride = -(-len(points) // CHART_MAX_POINTS)
    return points[::stride] + ([points[-1]] if (len(points) - 1) % stride else [])


def loss_chart(ft: FineTuningJob):
    """Training and validation loss per step, from the job's metric events (what /v1/.../events reports)."""
    train: dict[float, float] = {}
    valid: dict[float, float] = {}
    events = JobEvent.objects.filter(
        job_id=ft.job_id, organization_id=ft.organization_id, level=JobEvent.Level.METRICS
    ).order_by("created_at", "id")
    for data in events.values_list("data", flat=True):
        step = data.get("step")
        if not isinstance(step, int | float):
            continue
        # A re-run after a lost worker repeats steps: the later value wins.
        if isinstance(data.get("train_loss"), int | float):
            train[step] = data["train_loss"]
        if isinstance(data.get("valid_loss"), int | float):
            valid[step] = data["valid_loss"]
    series = {_("Training loss"): _thinned(sorted(train.items()))}
    if valid:
        series[_("Validation loss")] = _thinned(sorted(valid.items()))
    return line_chart(
        title=_("Loss per training step"), x_label=_("Step"), series=series, x_format=lambda x: f"{x:.0f}"
    )


class FineTuningPage(OrgPage, TemplateView):
    template_name = "portal/models/finetuning.html"
    section = "finetuning"

    def get_context_data(self, **kwargs):
        org = self.organization
        kwargs.setdefault("upload_form", TrainingFileForm())
        kwargs.setdefault("job_form", FineTuningJobForm(organization=org))
        jobs = (
            FineTuningJob.objects.filter(organization=org)
            .select_related("job", "base_model", "fine_tuned_model", "training_file")
            .order_by("-created_at")
        )
        page = Paginator(jobs, 25).get_page(self.request.GET.get("page"))
        for ft in page:
            ft.status = _job_status(ft)
            ft.status_label = _status_label(ft.status)
        return super().get_context_data(
            files=TrainingFile.objects.filter(organization=org).order_by("-created_at"),
            jobs=page,
            base_models=BaseModel.objects.exists(),
            **kwargs,
        )


class TrainingFileUpload(FineTuningPage):
    scopes = {**OrgPage.scopes, "POST": Scope.ORG_WRITE}

    def get(self, request, *args, **kwargs):
        return redirect("portal:finetuning", org_slug=self.organization.slug)

    def post(self, request, *args, **kwargs):
        form = TrainingFileForm(request.POST, request.FILES)
        if form.is_valid():
            try:
                record = training_file_upload(
                    organization=self.organization, upload=form.cleaned_data["file"], purpose="fine-tune"
                )
            except ValidationError as exc:
                errors_into(form, exc)
            else:
                messages.success(
                    request,
                    _("%(name)s uploaded: %(examples)s examples, %(tokens)s tokens.")
                    % {"name": record.filename, "examples": record.examples, "tokens": record.total_tokens},
                )
                return redirect("portal:finetuning", org_slug=self.organization.slug)
        return self.render_to_response(self.get_context_data(upload_form=form), status=400)


class TrainingFileDelete(OrgPage, View):
    scopes = {"POST": Scope.ORG_WRITE}
    queryset = TrainingFile.objects.all()

    def post(self, request, *args, **kwargs):
        record = self.owned(TrainingFile, pk=kwargs["pk"])
        try:
            training_file_delete(training_file=record)
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        else:
            messages.success(request, _("%(name)s deleted.") % {"name": record.filename})
        return redirect("portal:finetuning", org_slug=self.organization.slug)


class FineTuningJobStart(FineTuningPage):
    scopes = {**OrgPage.scopes, "POST": Scope.JOBS}

    def get(self, request, *args, **kwargs):
        return redirect("portal:finetuning", org_slug=self.organization.slug)

    def post(self, request, *args, **kwargs):
        form = FineTuningJobForm(request.POST, organization=self.organization)
        if form.is_valid():
            data = form.cleaned_data
            try:
                ft = fine_tuning_job_create(
                    organization=self.organization,
                    actor=self.actor,
                    model=data["model"].name,
                    training_file=data["training_file"],
                    validation_file=data["validation_file"],
                    suffix=data["suffix"],
                    hyperparameters=form.hyperparameters(),
                )
            except ValidationError as exc:
                errors_into(form, exc)
            except BillingRefusal as exc:
                form.add_error(None, str(exc.detail))
            else:
                messages.success(request, _("Fine-tuning job %(id)s queued.") % {"id": ft.id})
                return redirect("portal:finetuning-job", org_slug=self.organization.slug, pk=ft.pk)
        return self.render_to_response(self.get_context_data(job_form=form), status=400)


class FineTuningJobDetail(LiveFragment, OrgPage, TemplateView):
    """The job page; with `X-Fragment: 1` only its live part, which portal.js polls until the job finishes."""

    template_name = "portal/models/job.html"
    fragment_template = "portal/models/job_live.html"
    section = "finetuning"
    queryset = FineTuningJob.objects.all()

    def get_context_data(self, **kwargs):
        ft = self.owned(
            FineTuningJob.objects.select_related(
                "job", "base_model", "training_file", "validation_file", "fine_tuned_model__tenant_model"
            ),
            pk=self.kwargs["pk"],
        )
        status = _job_status(ft)
        events = (
            JobEvent.objects.filter(job_id=ft.job_id, organization=self.organization)
            .exclude(level=JobEvent.Level.METRICS)
            .order_by("-created_at", "-id")[:100]
        )
        result = ft.job.result or {}
        samples = [
            {
                "question": next(
                    (m.get("content", "") for m in reversed(s.get("prompt") or []) if m.get("role") == "user"), ""
                ),
                "expected": s.get("expected", ""),
                "base": s.get("base", ""),
                "fine_tuned": s.get("fine_tuned", ""),
            }
            for s in result.get("samples") or []
        ]
        return super().get_context_data(
            ft=ft,
            job=ft.job,
            status=status,
            status_label=_status_label(status),
            events=events,
            chart=loss_chart(ft),
            metrics=result.get("metrics") or {},
            samples=samples,
            hyperparameters=[
                (label, ft.hyperparameters.get(name), name in ft.hyperparameters.get("explicit", []))
                for name, label in HYPERPARAMETER_LABELS.items()
            ],
            **kwargs,
        )


class FineTuningJobCancel(OrgPage, View):
    scopes = {"POST": Scope.JOBS}
    queryset = FineTuningJob.objects.all()

    def post(self, request, *args, **kwargs):
        ft = self.owned(FineTuningJob.objects.select_related("job"), pk=kwargs["pk"])
        try:
            job = job_cancel(job=ft.job, actor=self.actor)  # the same call as POST /v1/fine_tuning/jobs/{id}/cancel
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        else:
            messages.success(
                request,
                _("Cancelled.")
                if job.status == Job.Status.CANCELLED
                else _("Cancellation requested: training stops within a step."),
            )
        return redirect("portal:finetuning-job", org_slug=self.organization.slug, pk=ft.pk)


urlpatterns = [
    path("fine-tuning", FineTuningPage.as_view(), name="finetuning"),
    path("fine-tuning/files", TrainingFileUpload.as_view(), name="finetuning-upload"),
    path("fine-tuning/files/<str:pk>/delete", TrainingFileDelete.as_view(), name="finetuning-file-delete"),
    path("fine-tuning/jobs", FineTuningJobStart.as_view(), name="finetuning-start"),
    path("fine-tuning/jobs/<str:pk>", FineTuningJobDetail.as_view(), name="finetuning-job"),
    path("fine-tuning/jobs/<str:pk>/cancel", FineTuningJobCancel.as_view(), name="finetuning-cancel"),
]
