"""The organisation's models: tenant models with their versions and placements; create, upload an adapter version,
deploy, switch the current version, export a version as the take-home bundle (`adapter_export`, as
/v1/fine_tuning/jobs/{id}/export)."""

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import Prefetch, QuerySet
from django.shortcuts import redirect
from django.urls import path
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.generic import TemplateView, View

from foundation.api.downloads import file_download
from inference.fine_tuning import adapter_export_open
from inference.models import AdapterVersion, BaseModel, Placement, TenantModel
from inference.placement import NoCapacity, placement_ensure
from inference.services import (
    ALIAS_PATTERN,
    adapter_version_upload,
    tenant_model_create,
    tenant_model_set_current,
)
from tenants.roles import Scope

from ..access import OrgPage, errors_into

SOURCE_LABELS = {
    AdapterVersion.Source.UPLOAD: gettext_lazy("Uploaded"),
    AdapterVersion.Source.FINE_TUNE: gettext_lazy("Fine-tuned"),
}


class TenantModelForm(forms.Form):
    alias = forms.RegexField(
        label=gettext_lazy("Alias"),
        regex=ALIAS_PATTERN,
        max_length=128,
        help_text=gettext_lazy("The stable name your systems call, for example acme/maintenance-assistant."),
        error_messages={
            "invalid": gettext_lazy("Use lower-case letters, digits, '.', '_' and '-', optionally with one '/'.")
        },
    )
    base_model = forms.ModelChoiceField(
        label=gettext_lazy("Base model"), queryset=BaseModel.objects.none(), to_field_name="name", empty_label=None
    )
    description = forms.CharField(label=gettext_lazy("Description"), max_length=500, required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["base_model"].queryset = BaseModel.objects.order_by("name")


class AdapterUploadForm(forms.Form):
    archive = forms.FileField(
        label=gettext_lazy("Adapter archive"),
        help_text=gettext_lazy(
            "A PEFT LoRA adapter directory (adapter_config.json and adapter_model.safetensors) as .tar.gz or .zip."
        ),
        widget=forms.ClearableFileInput(attrs={"accept": ".tar.gz,.tgz,.zip"}),
    )
    deploy = forms.BooleanField(
        label=gettext_lazy("Make it the current version and deploy it"), required=False, initial=True
    )


class DeployForm(forms.Form):
    replicas = forms.IntegerField(label=gettext_lazy("Servers"), min_value=1, max_value=16, initial=1)


class ModelsPage(OrgPage, TemplateView):
    template_name = "portal/models/models.html"
    section = "models"

    def get_context_data(self, **kwargs):
        org = self.organization
        versions = AdapterVersion.objects.order_by("-version").prefetch_related(
            Prefetch("placements", queryset=Placement.objects.select_related("server__cluster").order_by("created_at"))
        )
        tenant_models = list(
            TenantModel.objects.filter(organization=org)
            .select_related("base_model", "current_version")
            .prefetch_related(Prefetch("versions", queryset=versions))
            .order_by("alias")
        )
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
    queryset: QuerySet[TenantModel] | None = TenantModel.objects.all()

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
                messages.success(
                    request,
                    _("Model %(alias)s created. Upload an adapter or fine-tune a version for it.")
                    % {"alias": tm.alias},
                )
                return self.done()
        return self.render_to_response(self.get_context_data(create_form=form), status=400)


class ModelUploadVersion(ModelAction):
    def post(self, request, *args, **kwargs):
        tm = self.tenant_model()
        form = AdapterUploadForm(request.POST, request.FILES, prefix=f"m{tm.pk.hex[:8]}")
        if form.is_valid():
            deploy = form.cleaned_data["deploy"]
            try:
                version = adapter_version_upload(
                    tenant_model=tm, archive=form.cleaned_data["archive"], make_current=deploy
                )
            except ValidationError as exc:
                errors_into(form, exc)
            else:
                messages.success(
                    request,
                    _("Version %(version)s of %(alias)s stored as %(name)s.")
                    % {"version": version.version, "alias": tm.alias, "name": version.name},
                )
                if deploy:
                    _deploy(request, version, replicas=1)
                return self.done()
        return self.render_to_response(self.get_context_data(upload_forms={tm.pk: form}), status=400)


def _deploy(request, version: AdapterVersion, *, replicas: int) -> None:
    try:
        placements = placement_ensure(adapter=version, replicas=replicas)
    except NoCapacity as exc:
        messages.warning(
            request,
            _("%(name)s is not deployed yet: %(reason)s It is loaded on the first request once a server is available.")
            % {"name": version.name, "reason": exc},
        )
    else:
        messages.success(
            request, _("%(name)s is loaded on %(count)s server(s).") % {"name": version.name, "count": len(placements)}
        )


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
        version = AdapterVersion.objects.filter(
            organization=self.organization, tenant_model=tm, pk=request.POST.get("version") or None
        ).first()
        if version is None:
            messages.error(request, _("Choose one of this model's versions."))
            return self.done()
        try:
            tenant_model_set_current(tenant_model=tm, version=version)
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        else:
            messages.success(
                request,
                _("Requests to %(alias)s now go to version %(version)s (%(name)s).")
                % {"alias": tm.alias, "version": version.version, "name": version.name},
            )
        return self.done()


class VersionExport(OrgPage, View):
    """The version as a bundle to serve on the organisation's own vLLM (what /v1/fine_tuning/jobs/{id}/export
    answers), streamed as a .tar.gz."""

    scopes = {"GET": Scope.INFERENCE, "HEAD": Scope.INFERENCE}
    queryset = AdapterVersion.objects.all()

    def get(self, request, *args, **kwargs):
        version = self.owned(AdapterVersion.objects.select_related("tenant_model__base_model"), pk=kwargs["pk"])
        handle, name = adapter_export_open(version=version)
        return file_download(request, handle, filename=name, content_type="application/gzip")


urlpatterns = [
    path("models", ModelsPage.as_view(), name="models"),
    path("models/new", ModelCreate.as_view(), name="model-create"),
    path("models/<uuid:pk>/versions", ModelUploadVersion.as_view(), name="model-upload"),
    path("models/<uuid:pk>/deploy", ModelDeploy.as_view(), name="model-deploy"),
    path("models/<uuid:pk>/current", ModelSetCurrent.as_view(), name="model-current"),
    path("models/versions/<uuid:pk>/export", VersionExport.as_view(), name="model-export"),
]
