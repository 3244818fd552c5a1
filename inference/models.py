import uuid

from django.contrib.postgres.fields import ArrayField
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from billing.meters import SizeClass
from inference.engine.vllm_server import TOOL_CALL_PARSERS
from tenants.models import Region


def validate_tool_call_parser(value: str) -> None:
    if value and value not in TOOL_CALL_PARSERS:
        raise ValidationError(f"Unknown tool-call parser {value!r}; vLLM knows: {', '.join(TOOL_CALL_PARSERS)}.")


class BaseModel(models.Model):
    """A shared base model (platform-wide, not tenant-owned) that tenants' adapters sit on."""

    name = models.SlugField(max_length=100, unique=True, help_text="Public name, e.g. smollm2-135m-instruct.")
    weights_path = models.CharField(max_length=500, help_text="Directory of the weights on the serving nodes.")
    architecture = models.CharField(max_length=100)
    context_length = models.PositiveIntegerField()
    parameter_count = models.PositiveBigIntegerField(default=0)
    size_class = models.CharField(max_length=16, choices=SizeClass.choices, default=SizeClass.SMALL)
    max_lora_rank = models.PositiveSmallIntegerField(default=8)
    lora_target_modules = ArrayField(
        models.CharField(max_length=64), default=list, help_text="Modules an adapter may target."
    )
    license = models.CharField(max_length=100)
    tool_call_parser = models.CharField(
        max_length=32,
        blank=True,
        validators=[validate_tool_call_parser],
        help_text="vLLM's tool-call parser for this model's output (e.g. hermes for Qwen2.5, llama3_json for "
        'Llama 3.1). Blank: the model cannot choose tools itself; `tool_choice` "required" or a named function '
        'still works (structured outputs), "auto" is refused.',
    )
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return self.name

    @property
    def can_choose_tools(self) -> bool:
        """Whether `tool_choice: "auto"` works: vLLM runs with --enable-auto-tool-choice and this parser."""
        return bool(self.tool_call_parser)


class InferenceCluster(models.Model):
    """GPU capacity in one region; an organisation's models run only in its data-residency region."""

    name = models.SlugField(max_length=100, unique=True)
    region = models.CharField(max_length=32, choices=Region.choices)

    def __str__(self) -> str:
        return f"{self.name} ({self.region})"


class VllmServer(models.Model):
    class State(models.TextChoices):
        HEALTHY = "healthy", _("Healthy")
        DOWN = "down", _("Down")
        DRAINING = "draining", _("Draining")

    cluster = models.ForeignKey(InferenceCluster, on_delete=models.PROTECT, related_name="servers")
    base_model = models.ForeignKey(BaseModel, on_delete=models.PROTECT, related_name="servers")
    url = models.URLField(unique=True, help_text="Reachable only from the control plane and gateway.")
    max_loras = models.PositiveSmallIntegerField(default=4, help_text="Adapters vLLM batches at once (GPU).")
    max_cpu_loras = models.PositiveSmallIntegerField(
        default=8, help_text="Adapters we register on this server before evicting the least recently used."
    )
    state = models.CharField(max_length=16, choices=State.choices, default=State.HEALTHY)
    last_health_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.url} [{self.base_model}] {self.state}"


class TenantModel(models.Model):
    """A tenant's model: a stable alias (e.g. acme/maintenance-assistant) pointing at its current adapter."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey("tenants.Organization", on_delete=models.CASCADE, related_name="models")
    alias = models.CharField(max_length=128)
    base_model = models.ForeignKey(BaseModel, on_delete=models.PROTECT, related_name="+")
    current_version = models.ForeignKey(
        "AdapterVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    description = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["organization", "alias"], name="one_alias_per_org")]

    def __str__(self) -> str:
        return self.alias


class AdapterVersion(models.Model):
    """One trained or uploaded LoRA adapter: an immutable version of a tenant model."""

    class Source(models.TextChoices):
        UPLOAD = "upload", _("Uploaded")
        FINE_TUNE = "fine_tune", _("Fine-tuned")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey("tenants.Organization", on_delete=models.CASCADE, related_name="+")
    tenant_model = models.ForeignKey(TenantModel, on_delete=models.CASCADE, related_name="versions")
    version = models.PositiveIntegerField()
    name = models.CharField(max_length=200, help_text="Versioned public name, e.g. ft:<base>:<org>:<suffix>:<id>.")
    lora_name = models.CharField(max_length=64, unique=True, help_text="The name vLLM knows it by (internal).")
    path = models.CharField(max_length=500, help_text="Adapter directory (PEFT format).")
    rank = models.PositiveSmallIntegerField()
    target_modules = ArrayField(models.CharField(max_length=64))
    source = models.CharField(max_length=16, choices=Source.choices)
    sha256 = models.CharField(max_length=64)
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant_model", "version"], name="one_number_per_version"),
            models.UniqueConstraint(fields=["organization", "name"], name="one_versioned_name_per_org"),
        ]

    def __str__(self) -> str:
        return self.name


class Placement(models.Model):
    """An adapter registered on a vLLM server. Rows exist only while the adapter is (being) loaded there."""

    class State(models.TextChoices):
        LOADING = "loading", _("Loading")
        LOADED = "loaded", _("Loaded")

    organization = models.ForeignKey("tenants.Organization", on_delete=models.CASCADE, related_name="+")
    adapter = models.ForeignKey(AdapterVersion, on_delete=models.CASCADE, related_name="placements")
    server = models.ForeignKey(VllmServer, on_delete=models.CASCADE, related_name="placements")
    state = models.CharField(max_length=16, choices=State.choices, default=State.LOADING)
    loaded_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["adapter", "server"], name="one_placement_per_server")]

    def __str__(self) -> str:
        return f"{self.adapter} on {self.server.url} ({self.state})"


def _public_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:24]}"


def new_file_id() -> str:
    return _public_id("file")


def new_fine_tuning_job_id() -> str:
    return _public_id("ftjob")


def new_checkpoint_id() -> str:
    return _public_id("ftckpt")


class TrainingFile(models.Model):
    """A tenant's fine-tuning data (OpenAI's file object, purpose `fine-tune`). Validated before it is stored."""

    id = models.CharField(primary_key=True, max_length=40, default=new_file_id, editable=False)
    organization = models.ForeignKey("tenants.Organization", on_delete=models.CASCADE, related_name="+")
    filename = models.CharField(max_length=255)
    purpose = models.CharField(max_length=32, default="fine-tune")
    bytes = models.PositiveBigIntegerField()
    sha256 = models.CharField(max_length=64)
    path = models.CharField(max_length=500)
    examples = models.PositiveIntegerField(default=0)
    total_tokens = models.PositiveBigIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.id} {self.filename}"


class FineTuningJob(models.Model):
    """OpenAI's fine-tuning job, executed as a jobs.Job of kind `fine_tune` on the training queue."""

    id = models.CharField(primary_key=True, max_length=40, default=new_fine_tuning_job_id, editable=False)
    organization = models.ForeignKey("tenants.Organization", on_delete=models.CASCADE, related_name="+")
    job = models.OneToOneField("jobs.Job", on_delete=models.CASCADE, related_name="fine_tuning")
    base_model = models.ForeignKey(BaseModel, on_delete=models.PROTECT, related_name="+")
    training_file = models.ForeignKey(TrainingFile, on_delete=models.PROTECT, related_name="+")
    validation_file = models.ForeignKey(TrainingFile, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    suffix = models.CharField(max_length=64, blank=True)
    seed = models.IntegerField(default=0)
    hyperparameters = models.JSONField(default=dict)
    validating = models.BooleanField(default=True, help_text="Still checking the files inside the job.")
    fine_tuned_model = models.ForeignKey(
        AdapterVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    trained_tokens = models.PositiveBigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return self.id


class FineTuningCheckpoint(models.Model):
    id = models.CharField(primary_key=True, max_length=40, default=new_checkpoint_id, editable=False)
    organization = models.ForeignKey("tenants.Organization", on_delete=models.CASCADE, related_name="+")
    fine_tuning_job = models.ForeignKey(FineTuningJob, on_delete=models.CASCADE, related_name="checkpoints")
    step_number = models.PositiveIntegerField()
    path = models.CharField(max_length=500)
    metrics = models.JSONField(default=dict)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["fine_tuning_job", "step_number"], name="one_checkpoint_per_step"),
        ]

    def __str__(self) -> str:
        return f"{self.fine_tuning_job_id} step {self.step_number}"
