"""Fine-tuning, the organisation's models and the playground.

Fine-tuning: training files (validated with line numbers by `inference.fine_tuning.training_file_upload`), jobs
started with `fine_tuning_job_create` (the same services as OpenAI's /v1/files and /v1/fine_tuning/jobs), a job page
with live progress (a `data-poll` fragment), its events and a loss chart, and cancellation through
`jobs.services.job_cancel`. Models: tenant models with their versions and placements; create, upload an adapter
version, deploy, switch the current version, export a version as the take-home bundle (`adapter_export`, as
/v1/fine_tuning/jobs/{id}/export). Playground: a chat with one of the organisation's models, sent to the real gateway
(`/v1/chat/completions`) with the organisation's playground system key, so it is routed, rate-limited, quota-checked
and metered like API traffic, and streamed back to the page as the gateway's server-sent events.
"""

import asyncio
import json
import shutil
import tempfile
from pathlib import Path

import httpx
from asgiref.sync import sync_to_async
from django import forms
from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.handlers.asgi import ASGIRequest
from django.core.paginator import Paginator
from django.db.models import Prefetch
from django.http import FileResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import redirect
from django.urls import path
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.generic import TemplateView, View

from billing.errors import BillingRefusal
from inference.fine_tuning import adapter_export, fine_tuning_job_create, training_file_delete, training_file_upload
from inference.models import AdapterVersion, BaseModel, FineTuningJob, Placement, TenantModel, TrainingFile
from inference.placement import NoCapacity, placement_ensure
from inference.selectors import gateway_model_list
from inference.services import (
    ALIAS_PATTERN,
    adapter_version_upload,
    tenant_model_create,
    tenant_model_set_current,
)
from jobs.models import Job, JobEvent
from jobs.services import job_cancel
from tenants.roles import Scope
from tenants.system_keys import SystemKeyUnavailable, system_key_forget, system_key_get

from ..access import OrgPage, errors_into
from ..charts import line_chart

PLAYGROUND_KEY_PURPOSE = "portal.playground"
PLAYGROUND_KEY_NAME = "portal playground (system)"
MAX_HISTORY_MESSAGES = 20
MAX_HISTORY_CHARS = 32_000
CHART_MAX_POINTS = 200

STATUS_LABELS = {
    "queued": gettext_lazy("Queued"),
    "validating_files": gettext_lazy("Validating files"),
    "running": gettext_lazy("Running"),
    "succeeded": gettext_lazy("Succeeded"),
    "failed": gettext_lazy("Failed"),
    "cancelled": gettext_lazy("Cancelled"),
}
HYPERPARAMETER_LABELS = {"n_epochs": gettext_lazy("Epochs"), "batch_size": gettext_lazy("Batch size"),
                         "learning_rate_multiplier": gettext_lazy("Learning-rate multiplier")}
SOURCE_LABELS = {AdapterVersion.Source.UPLOAD: gettext_lazy("Uploaded"),
                 AdapterVersion.Source.FINE_TUNE: gettext_lazy("Fine-tuned")}


# --- forms (shape only: the services validate meaning) ------------------------------------------------------------


class TrainingFileForm(forms.Form):
    file = forms.FileField(
        label=gettext_lazy("Training file"),
        help_text=gettext_lazy('JSONL: one chat example per line, {"messages": [{"role": "user", "content": …}, '
                               '{"role": "assistant", "content": …}]}. Every problem is listed with its line.'),
        widget=forms.ClearableFileInput(attrs={"accept": ".jsonl,application/jsonl,application/json,text/plain"}))


class FineTuningJobForm(forms.Form):
    model = forms.ModelChoiceField(label=gettext_lazy("Base model"), queryset=BaseModel.objects.none(),
                                   to_field_name="name", empty_label=None)
    training_file = forms.ModelChoiceField(label=gettext_lazy("Training data"), queryset=TrainingFile.objects.none(),
                                           empty_label=None)
    validation_file = forms.ModelChoiceField(
        label=gettext_lazy("Validation data (optional)"), queryset=TrainingFile.objects.none(), required=False,
        empty_label=gettext_lazy("None"),
        help_text=gettext_lazy("Held-out examples: the job reports validation loss before, during and after."))
    suffix = forms.RegexField(
        label=gettext_lazy("Name suffix"), regex=r"^[a-z0-9][a-z0-9-]*$", max_length=40, required=False,
        help_text=gettext_lazy("Lower-case letters, digits and hyphens; part of the model's name, "
                               "ft:<base>:<organisation>:<suffix>:<id>."))
    n_epochs = forms.IntegerField(label=gettext_lazy("Epochs"), min_value=1, max_value=100, required=False,
                                  help_text=gettext_lazy("Empty: automatic (3)."))
    batch_size = forms.IntegerField(label=gettext_lazy("Batch size"), min_value=1, max_value=256, required=False,
                                    help_text=gettext_lazy("Empty: automatic (8)."))
    learning_rate_multiplier = forms.FloatField(
        label=gettext_lazy("Learning-rate multiplier"), min_value=0.001, max_value=100, required=False,
        widget=forms.NumberInput(attrs={"step": "any"}), help_text=gettext_lazy("Empty: automatic (1.0)."))

    def __init__(self, *args, organization, **kwargs):
        super().__init__(*args, **kwargs)
        files = TrainingFile.objects.filter(organization=organization).order_by("-created_at")
        self.fields["model"].queryset = BaseModel.objects.order_by("name")
        self.fields["training_file"].queryset = files
        self.fields["validation_file"].queryset = files
        for name in ("training_file", "validation_file"):
            self.fields[name].label_from_instance = lambda f: _("%(name)s (%(examples)s examples, %(id)s)") % {
                "name": f.filename, "examples": f.examples, "id": f.id}

    def hyperparameters(self) -> dict | None:
        chosen = {name: self.cleaned_data[name] for name in ("n_epochs", "batch_size", "learning_rate_multiplier")
                  if self.cleaned_data.get(name) is not None}
        return chosen or None


class TenantModelForm(forms.Form):
    alias = forms.RegexField(
        label=gettext_lazy("Alias"), regex=ALIAS_PATTERN, max_length=128,
        help_text=gettext_lazy("The stable name your systems call, for example acme/maintenance-assistant."),
        error_messages={"invalid": gettext_lazy("Use lower-case letters, digits, '.', '_' and '-', optionally "
                                                "with one '/'.")})
    base_model = forms.ModelChoiceField(label=gettext_lazy("Base model"), queryset=BaseModel.objects.none(),
                                        to_field_name="name", empty_label=None)
    description = forms.CharField(label=gettext_lazy("Description"), max_length=500, required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["base_model"].queryset = BaseModel.objects.order_by("name")


class AdapterUploadForm(forms.Form):
    archive = forms.FileField(
        label=gettext_lazy("Adapter archive"),
        help_text=gettext_lazy("A PEFT LoRA adapter directory (adapter_config.json and adapter_model.safetensors) "
                               "as .tar.gz or .zip."),
        widget=forms.ClearableFileInput(attrs={"accept": ".tar.gz,.tgz,.zip"}))
    deploy = forms.BooleanField(label=gettext_lazy("Make it the current version and deploy it"), required=False,
                                initial=True)


class DeployForm(forms.Form):
    replicas = forms.IntegerField(label=gettext_lazy("Servers"), min_value=1, max_value=16, initial=1)


class PlaygroundForm(forms.Form):
    model = forms.ChoiceField(label=gettext_lazy("Model"))
    system = forms.CharField(label=gettext_lazy("System prompt (optional)"), required=False, max_length=4000,
                             widget=forms.Textarea(attrs={"rows": 2}),
                             help_text=gettext_lazy("Instructions followed in every answer, e.g. “Be brief.”"))
    message = forms.CharField(label=gettext_lazy("Message"), max_length=8000, widget=forms.Textarea(attrs={"rows": 4}))
    max_tokens = forms.IntegerField(label=gettext_lazy("Maximum length (tokens)"), min_value=1, max_value=1024,
                                    initial=256)
    temperature = forms.FloatField(label=gettext_lazy("Temperature"), min_value=0, max_value=2, initial=0.2,
                                   widget=forms.NumberInput(attrs={"step": "0.1"}))
    history = forms.CharField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args, model_choices, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["model"].choices = model_choices

    def clean_history(self) -> list[dict]:
        raw = self.cleaned_data.get("history") or "[]"
        try:
            turns = json.loads(raw)
        except ValueError:
            raise ValidationError(_("The conversation so far could not be read; start a new one.")) from None
        if (not isinstance(turns, list) or len(raw) > MAX_HISTORY_CHARS
                or not all(isinstance(t, dict) and t.get("role") in ("user", "assistant")
                           and isinstance(t.get("content"), str) for t in turns)):
            raise ValidationError(_("The conversation so far is too long or malformed; start a new one."))
        return [{"role": t["role"], "content": t["content"]} for t in turns[-MAX_HISTORY_MESSAGES:]]

    def chat_request(self, *, stream: bool) -> dict:
        data = self.cleaned_data
        chat = ([{"role": "system", "content": data["system"]}] if data["system"].strip() else [])
        chat += [*data["history"], {"role": "user", "content": data["message"]}]
        return {"model": data["model"], "messages": chat, "max_tokens": data["max_tokens"],
                "temperature": data["temperature"], "stream": stream}


# --- fine-tuning ----------------------------------------------------------------------------------------------------


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
    events = JobEvent.objects.filter(job_id=ft.job_id, organization_id=ft.organization_id,
                                     level=JobEvent.Level.METRICS).order_by("created_at", "id")
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
    return line_chart(title=_("Loss per training step"), x_label=_("Step"), series=series,
                      x_format=lambda x: f"{x:.0f}")


class FineTuningPage(OrgPage, TemplateView):
    template_name = "portal/models/finetuning.html"
    section = "finetuning"

    def get_context_data(self, **kwargs):
        org = self.organization
        kwargs.setdefault("upload_form", TrainingFileForm())
        kwargs.setdefault("job_form", FineTuningJobForm(organization=org))
        jobs = (FineTuningJob.objects.filter(organization=org)
                .select_related("job", "base_model", "fine_tuned_model", "training_file").order_by("-created_at"))
        page = Paginator(jobs, 25).get_page(self.request.GET.get("page"))
        for ft in page:
            ft.status = _job_status(ft)
            ft.status_label = _status_label(ft.status)
        return super().get_context_data(
            files=TrainingFile.objects.filter(organization=org).order_by("-created_at"), jobs=page,
            base_models=BaseModel.objects.exists(), **kwargs)


class TrainingFileUpload(FineTuningPage):
    scopes = {**OrgPage.scopes, "POST": Scope.ORG_WRITE}

    def get(self, request, *args, **kwargs):
        return redirect("portal:finetuning", org_slug=self.organization.slug)

    def post(self, request, *args, **kwargs):
        form = TrainingFileForm(request.POST, request.FILES)
        if form.is_valid():
            try:
                record = training_file_upload(organization=self.organization, upload=form.cleaned_data["file"],
                                              purpose="fine-tune")
            except ValidationError as exc:
                errors_into(form, exc)
            else:
                messages.success(request, _("%(name)s uploaded: %(examples)s examples, %(tokens)s tokens.") % {
                    "name": record.filename, "examples": record.examples, "tokens": record.total_tokens})
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
                    organization=self.organization, actor=self.actor, model=data["model"].name,
                    training_file=data["training_file"], validation_file=data["validation_file"],
                    suffix=data["suffix"], hyperparameters=form.hyperparameters())
            except ValidationError as exc:
                errors_into(form, exc)
            except BillingRefusal as exc:
                form.add_error(None, str(exc.detail))
            else:
                messages.success(request, _("Fine-tuning job %(id)s queued.") % {"id": ft.id})
                return redirect("portal:finetuning-job", org_slug=self.organization.slug, pk=ft.pk)
        return self.render_to_response(self.get_context_data(job_form=form), status=400)


class FineTuningJobDetail(OrgPage, TemplateView):
    """The job page; with `X-Fragment: 1` only its live part, which portal.js polls until the job finishes."""

    template_name = "portal/models/job.html"
    fragment_template = "portal/models/job_live.html"
    section = "finetuning"
    queryset = FineTuningJob.objects.all()

    def get_template_names(self):
        return [self.fragment_template if self.request.headers.get("X-Fragment") else self.template_name]

    def get_context_data(self, **kwargs):
        ft = self.owned(FineTuningJob.objects.select_related(
            "job", "base_model", "training_file", "validation_file", "fine_tuned_model__tenant_model"),
            pk=self.kwargs["pk"])
        status = _job_status(ft)
        events = (JobEvent.objects.filter(job_id=ft.job_id, organization=self.organization)
                  .exclude(level=JobEvent.Level.METRICS).order_by("-created_at", "-id")[:100])
        result = ft.job.result or {}
        samples = [{"question": next((m.get("content", "") for m in reversed(s.get("prompt") or [])
                                      if m.get("role") == "user"), ""),
                    "expected": s.get("expected", ""), "base": s.get("base", ""),
                    "fine_tuned": s.get("fine_tuned", "")} for s in result.get("samples") or []]
        return super().get_context_data(
            ft=ft, job=ft.job, status=status, status_label=_status_label(status), events=events,
            chart=loss_chart(ft), metrics=result.get("metrics") or {}, samples=samples,
            hyperparameters=[(label, ft.hyperparameters.get(name), name in ft.hyperparameters.get("explicit", []))
                             for name, label in HYPERPARAMETER_LABELS.items()],
            **kwargs)


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
            messages.success(request, _("Cancelled.") if job.status == Job.Status.CANCELLED
                             else _("Cancellation requested: training stops within a step."))
        return redirect("portal:finetuning-job", org_slug=self.organization.slug, pk=ft.pk)


# --- models ---------------------------------------------------------------------------------------------------------


def _download(request, handle, *, filename: str, content_type: str):
    """A file streamed to the browser in chunks. Under ASGI (uvicorn) an async iterator, because Django reads a
    synchronous one whole into memory before sending it there."""
    if not isinstance(request, ASGIRequest):
        return FileResponse(handle, as_attachment=True, filename=filename, content_type=content_type)
    size = handle.seek(0, 2)
    handle.seek(0)

    async def chunks():
        try:
            while data := await asyncio.to_thread(handle.read, 1 << 20):
                yield data
        finally:
            handle.close()

    response = StreamingHttpResponse(chunks(), content_type=content_type)
    response["Content-Length"] = str(size)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


class ModelsPage(OrgPage, TemplateView):
    template_name = "portal/models/models.html"
    section = "models"

    def get_context_data(self, **kwargs):
        org = self.organization
        versions = (AdapterVersion.objects.order_by("-version")
                    .prefetch_related(Prefetch("placements", queryset=Placement.objects.select_related(
                        "server__cluster").order_by("created_at"))))
        tenant_models = list(TenantModel.objects.filter(organization=org)
                             .select_related("base_model", "current_version")
                             .prefetch_related(Prefetch("versions", queryset=versions)).order_by("alias"))
        for tm in tenant_models:
            for version in tm.versions.all():
                version.source_label = SOURCE_LABELS.get(version.source, version.source)
                version.loaded = [p for p in version.placements.all() if p.state == Placement.State.LOADED]
                version.loading = [p for p in version.placements.all() if p.state == Placement.State.LOADING]
                version.regions = sorted({p.server.cluster.region for p in version.placements.all()})
                if version.pk == tm.current_version_id:
                    tm.current = version
        kwargs.setdefault("create_form", TenantModelForm())
        kwargs.setdefault("upload_forms", {})
        for tm in tenant_models:
            tm.upload_form = kwargs["upload_forms"].get(tm.pk) or AdapterUploadForm(prefix=f"m{tm.pk.hex[:8]}")
            tm.deploy_form = DeployForm(prefix=f"d{tm.pk.hex[:8]}")
        return super().get_context_data(tenant_models=tenant_models, **kwargs)


class ModelAction(ModelsPage):
    """POST-only actions on one of the organisation's models; a refused form comes back on the models page."""

    scopes = {**OrgPage.scopes, "POST": Scope.ORG_WRITE}
    http_method_names = ["post"]
    queryset = TenantModel.objects.all()

    def tenant_model(self) -> TenantModel:
        return self.owned(TenantModel.objects.select_related("base_model", "current_version"), pk=self.kwargs["pk"])

    def done(self):
        return redirect("portal:models", org_slug=self.organization.slug)


class ModelCreate(ModelAction):
    http_method_names = ["get", "post"]
    queryset = None

    def get(self, request, *args, **kwargs):
        return self.done()

    def post(self, request, *args, **kwargs):
        form = TenantModelForm(request.POST)
        if form.is_valid():
            try:
                tm = tenant_model_create(organization=self.organization, **form.cleaned_data)
            except ValidationError as exc:
                errors_into(form, exc)
            else:
                messages.success(request, _("Model %(alias)s created. Upload an adapter or fine-tune a version "
                                            "for it.") % {"alias": tm.alias})
                return self.done()
        return self.render_to_response(self.get_context_data(create_form=form), status=400)


class ModelUploadVersion(ModelAction):
    def post(self, request, *args, **kwargs):
        tm = self.tenant_model()
        form = AdapterUploadForm(request.POST, request.FILES, prefix=f"m{tm.pk.hex[:8]}")
        if form.is_valid():
            deploy = form.cleaned_data["deploy"]
            try:
                version = adapter_version_upload(tenant_model=tm, archive=form.cleaned_data["archive"],
                                                 make_current=deploy)
            except ValidationError as exc:
                errors_into(form, exc)
            else:
                messages.success(request, _("Version %(version)s of %(alias)s stored as %(name)s.") % {
                    "version": version.version, "alias": tm.alias, "name": version.name})
                if deploy:
                    _deploy(request, version, replicas=1)
                return self.done()
        return self.render_to_response(self.get_context_data(upload_forms={tm.pk: form}), status=400)


def _deploy(request, version: AdapterVersion, *, replicas: int) -> None:
    try:
        placements = placement_ensure(adapter=version, replicas=replicas)
    except NoCapacity as exc:
        messages.warning(request, _("%(name)s is not deployed yet: %(reason)s It is loaded on the first request "
                                    "once a server is available.") % {"name": version.name, "reason": exc})
    else:
        messages.success(request, _("%(name)s is loaded on %(count)s server(s).") % {
            "name": version.name, "count": len(placements)})


class ModelDeploy(ModelAction):
    def post(self, request, *args, **kwargs):
        tm = self.tenant_model()
        form = DeployForm(request.POST, prefix=f"d{tm.pk.hex[:8]}")
        if tm.current_version is None:
            messages.error(request, _("This model has no version to deploy yet."))
        elif not form.is_valid():
            messages.error(request, _("Choose between 1 and 16 servers."))
        else:
            _deploy(request, tm.current_version, replicas=form.cleaned_data["replicas"])
        return self.done()


class ModelSetCurrent(ModelAction):
    def post(self, request, *args, **kwargs):
        tm = self.tenant_model()
        version = AdapterVersion.objects.filter(organization=self.organization, tenant_model=tm,
                                                pk=request.POST.get("version") or None).first()
        if version is None:
            messages.error(request, _("Choose one of this model's versions."))
            return self.done()
        try:
            tenant_model_set_current(tenant_model=tm, version=version)
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        else:
            messages.success(request, _("Requests to %(alias)s now go to version %(version)s (%(name)s).") % {
                "alias": tm.alias, "version": version.version, "name": version.name})
        return self.done()


class VersionExport(OrgPage, View):
    """The version as a bundle to serve on the organisation's own vLLM (what /v1/fine_tuning/jobs/{id}/export
    answers), streamed as a .tar.gz."""

    scopes = {"GET": Scope.INFERENCE, "HEAD": Scope.INFERENCE}
    queryset = AdapterVersion.objects.all()

    def get(self, request, *args, **kwargs):
        version = self.owned(AdapterVersion.objects.select_related("tenant_model__base_model"), pk=kwargs["pk"])
        out = Path(tempfile.mkdtemp(prefix="export-"))
        try:
            bundle = adapter_export(version=version, out_dir=out)
            handle = bundle.open("rb")  # still readable once the directory is gone
        finally:
            shutil.rmtree(out, ignore_errors=True)
        return _download(request, handle, filename=bundle.name, content_type="application/gzip")


# --- playground -----------------------------------------------------------------------------------------------------


def _model_choices(organization) -> list:
    rows = gateway_model_list(organization_id=str(organization.pk), region=organization.region)
    own = [(r["id"], r["id"]) for r in rows if r["owned_by"] == "organization"]
    base = [(r["id"], r["id"]) for r in rows if r["owned_by"] != "organization"]
    groups = []
    if own:
        groups.append((_("Your models"), own))
    if base:
        groups.append((_("Base models"), base))
    return groups


def _gateway_url(request) -> str:
    base = (settings.PUBLIC_BASE_URL or request.build_absolute_uri("/")).rstrip("/")
    return f"{base}/v1/chat/completions"


def _error_leads() -> dict:
    """Our sentence for each refusal of the gateway, in the request's language (made while it is active: a streamed
    answer is read after the view returned)."""
    return {
        None: _("The gateway did not answer. Try again in a moment."),
        429: _("Your organisation has reached a limit (rate or monthly quota)."),
        503: _("No server can run this model right now. Try again in a minute, or deploy it on the Models page."),
        402: _("Payment is overdue: settle the open invoice on the Plan and invoices page."),
        403: _("This request is not allowed for your organisation."),
        404: _("This model does not exist (any more)."),
        "other": _("The model could not answer (HTTP %(status)s)."),
    }


def _gateway_error_text(status: int | None, body: bytes, leads: dict) -> str:
    """A refusal of the gateway as a sentence for the page: ours, then the gateway's own words."""
    try:
        detail = json.loads(body)["error"]["message"]
    except (ValueError, KeyError, TypeError):
        detail = body.decode("utf-8", "replace")[:300]
    lead = leads[status] if status in leads else leads["other"] % {"status": status}
    return f"{lead} {detail}".strip()


class PlaygroundPage(OrgPage, TemplateView):
    """The chat page. Its form streams through `PlaygroundStream` with JavaScript; without, it posts here and the
    answer comes back whole."""

    template_name = "portal/models/playground.html"
    section = "playground"
    scopes = {**OrgPage.scopes, "POST": Scope.INFERENCE}

    def model_choices(self):
        return _model_choices(self.organization)

    def get_context_data(self, **kwargs):
        choices = self.model_choices()
        if "form" not in kwargs:
            wanted = self.request.GET.get("model", "")
            names = [name for _group, options in choices for name, _label in options]
            kwargs["form"] = PlaygroundForm(model_choices=choices,
                                            initial={"model": wanted if wanted in names else None})
        return super().get_context_data(has_models=bool(choices), **kwargs)

    def post(self, request, *args, **kwargs):
        form = PlaygroundForm(request.POST, model_choices=self.model_choices())
        if not form.is_valid():
            return self.render_to_response(self.get_context_data(form=form), status=400)
        answer, error = "", ""
        payload = form.chat_request(stream=False)
        try:
            for attempt in range(2):
                key = system_key_get(organization=self.organization, purpose=PLAYGROUND_KEY_PURPOSE,
                                     name=PLAYGROUND_KEY_NAME)
                response = httpx.post(_gateway_url(request), json=payload, headers={"Authorization": f"Bearer {key}"},
                                      timeout=_timeout())
                if response.status_code == 401 and attempt == 0:
                    system_key_forget(organization=self.organization, purpose=PLAYGROUND_KEY_PURPOSE)
                    continue
                break
            if response.status_code == 200:
                answer = response.json()["choices"][0]["message"]["content"]
            else:
                error = _gateway_error_text(response.status_code, response.content, _error_leads())
        except httpx.HTTPError:
            error = _gateway_error_text(None, b"", _error_leads())
        except SystemKeyUnavailable as exc:
            error = str(exc)
        except (ValueError, KeyError, IndexError, TypeError):
            error = _("The gateway's answer had no message.")
        return self.render_to_response(
            self.get_context_data(form=form, question=form.cleaned_data["message"], answer=answer, error=error))


def _timeout() -> httpx.Timeout:
    return httpx.Timeout(getattr(settings, "PORTAL_PLAYGROUND_TIMEOUT_S", 120.0), connect=10.0)


def _sse(event: str, data: dict) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()


class _GatewayStream:
    """The gateway's server-sent events, relayed as they come; a refusal becomes one `event: error` whose message is
    for people. The same relay synchronously (WSGI, the test client) and asynchronously (ASGI, uvicorn: Django would
    otherwise read a synchronous iterator whole before sending anything)."""

    def __init__(self, *, organization, url: str, payload: dict, key: str, leads: dict):
        self.organization, self.url, self.payload, self.key, self.leads = organization, url, payload, key, leads

    def _headers(self) -> dict:
        return {"Authorization": f"Bearer {self.key}", "Accept": "text/event-stream"}

    def _new_key(self) -> str:
        system_key_forget(organization=self.organization, purpose=PLAYGROUND_KEY_PURPOSE)
        return system_key_get(organization=self.organization, purpose=PLAYGROUND_KEY_PURPOSE,
                              name=PLAYGROUND_KEY_NAME)

    def __iter__(self):
        try:
            with httpx.Client(timeout=_timeout()) as client:
                for attempt in range(2):
                    with client.stream("POST", self.url, json=self.payload, headers=self._headers()) as response:
                        if response.status_code == 401 and attempt == 0:
                            self.key = self._new_key()  # the gateway refused the stored key: replace it once
                            continue
                        if response.status_code != 200:
                            yield _sse("error", {"status": response.status_code,
                                                 "message": _gateway_error_text(response.status_code,
                                                                                response.read(), self.leads)})
                            return
                        yield from response.iter_raw()
                        return
        except httpx.HTTPError:
            yield _sse("error", {"status": None, "message": self.leads[None]})
        except SystemKeyUnavailable as exc:
            yield _sse("error", {"status": None, "message": str(exc)})

    async def __aiter__(self):
        try:
            async with httpx.AsyncClient(timeout=_timeout()) as client:
                for attempt in range(2):
                    async with client.stream("POST", self.url, json=self.payload,
                                             headers=self._headers()) as response:
                        if response.status_code == 401 and attempt == 0:
                            self.key = await sync_to_async(self._new_key)()
                            continue
                        if response.status_code != 200:
                            body = await response.aread()
                            yield _sse("error", {"status": response.status_code,
                                                 "message": _gateway_error_text(response.status_code, body,
                                                                                self.leads)})
                            return
                        async for chunk in response.aiter_raw():
                            yield chunk
                        return
        except httpx.HTTPError:
            yield _sse("error", {"status": None, "message": self.leads[None]})
        except SystemKeyUnavailable as exc:
            yield _sse("error", {"status": None, "message": str(exc)})


class PlaygroundStream(PlaygroundPage):
    """POST: the answer as the gateway's server-sent events (`data: {chat.completion.chunk}` … `data: [DONE]`), or
    `event: error` with a readable message; an invalid form is a 400 with `{"error": {"message": ...}}`."""

    http_method_names = ["post"]

    def post(self, request, *args, **kwargs):
        form = PlaygroundForm(request.POST, model_choices=self.model_choices())
        if not form.is_valid():
            problems = [(f"{form.fields[name].label}: " if name in form.fields else "") + " ".join(errors)
                        for name, errors in form.errors.items()]
            return JsonResponse({"error": {"message": " ".join(problems), "fields": form.errors}}, status=400)
        try:
            key = system_key_get(organization=self.organization, purpose=PLAYGROUND_KEY_PURPOSE,
                                 name=PLAYGROUND_KEY_NAME)
        except SystemKeyUnavailable as exc:
            return JsonResponse({"error": {"message": str(exc)}}, status=503)
        relay = _GatewayStream(organization=self.organization, url=_gateway_url(request),
                               payload=form.chat_request(stream=True), key=key, leads=_error_leads())
        stream = relay.__aiter__() if isinstance(request, ASGIRequest) else iter(relay)
        response = StreamingHttpResponse(stream, content_type="text/event-stream")
        response["Cache-Control"] = "no-cache"
        response["X-Accel-Buffering"] = "no"  # proxies (nginx) must pass each event on at once
        return response


urlpatterns = [
    path("fine-tuning", FineTuningPage.as_view(), name="finetuning"),
    path("fine-tuning/files", TrainingFileUpload.as_view(), name="finetuning-upload"),
    path("fine-tuning/files/<str:pk>/delete", TrainingFileDelete.as_view(), name="finetuning-file-delete"),
    path("fine-tuning/jobs", FineTuningJobStart.as_view(), name="finetuning-start"),
    path("fine-tuning/jobs/<str:pk>", FineTuningJobDetail.as_view(), name="finetuning-job"),
    path("fine-tuning/jobs/<str:pk>/cancel", FineTuningJobCancel.as_view(), name="finetuning-cancel"),
    path("models", ModelsPage.as_view(), name="models"),
    path("models/new", ModelCreate.as_view(), name="model-create"),
    path("models/<uuid:pk>/versions", ModelUploadVersion.as_view(), name="model-upload"),
    path("models/<uuid:pk>/deploy", ModelDeploy.as_view(), name="model-deploy"),
    path("models/<uuid:pk>/current", ModelSetCurrent.as_view(), name="model-current"),
    path("models/versions/<uuid:pk>/export", VersionExport.as_view(), name="model-export"),
    path("playground", PlaygroundPage.as_view(), name="playground"),
    path("playground/stream", PlaygroundStream.as_view(), name="playground-stream"),
]
