"""A factory as the scheduler sees it, and the optimisation runs over it.

Master data is stored as people think of it (real datetimes, shift times in the machine's own time zone,
minutes per unit); `problems.py` turns it into the engine's integer minutes when a run is created, and the
run keeps that snapshot, so its results still render after the master data has changed.

Objects refer to each other by `code`, unique within an organisation, which is also the key the CSV and JSON
imports use. Every row, child rows included, carries its organisation.
"""

import uuid

from django.contrib.postgres.fields import ArrayField
from django.core.validators import MinValueValidator, RegexValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .timegrid import WEEKDAYS, validate_timezone

code_validator = RegexValidator(
    r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$", "Use letters, digits, '.', '_' and '-' only, starting with a letter or digit."
)


def _code_field() -> models.CharField:
    return models.CharField(max_length=64, validators=[code_validator])


def _organization_field() -> models.ForeignKey:
    return models.ForeignKey("tenants.Organization", on_delete=models.CASCADE, related_name="+")


class _Coded(models.Model):
    """A master-data object with a code unique within its organisation."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = _organization_field()
    code = _code_field()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return self.code


def _coded_meta(model_name: str) -> tuple[list, list]:
    """Constraints and indexes of a coded model: one code per organisation, lists newest first."""
    return (
        [
            models.UniqueConstraint(
                fields=["organization", "code"],
                name=f"sched_{model_name}_code",
                violation_error_message=f"A {model_name} with this code already exists.",
            )
        ],
        [models.Index(fields=["organization", "-created_at"], name=f"sched_{model_name}_created")],
    )


class Machine(_Coded):
    name = models.CharField(max_length=200, blank=True)
    # Shift times are wall-clock times in this zone, so a 06:00 shift stays at 06:00 across DST changes.
    timezone = models.CharField(max_length=64, default="UTC", validators=[validate_timezone])
    # Power draw, for the cost objective's energy: running, and idle during its working time.
    running_kw = models.DecimalField(max_digits=10, decimal_places=3, default=0, validators=[MinValueValidator(0)])
    idle_kw = models.DecimalField(max_digits=10, decimal_places=3, default=0, validators=[MinValueValidator(0)])

    class Meta:
        ordering = ("code",)
        constraints, indexes = _coded_meta("machine")


class Shift(models.Model):
    """A weekly working window. A machine without shifts works around the clock."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = _organization_field()
    machine = models.ForeignKey(Machine, on_delete=models.CASCADE, related_name="shifts")
    days = ArrayField(models.CharField(max_length=3, choices=[(d, d) for d in WEEKDAYS]))
    start = models.TimeField()
    end = models.TimeField(help_text="At or before the start: the shift ends the next day.")
    overtime_cost_per_hour = models.DecimalField(
        max_digits=12,
        decimal_places=2,
        null=True,
        blank=True,
        validators=[MinValueValidator(0)],
        help_text="Set: an overtime shift, costing this much per hour the machine works in it.",
    )

    class Meta:
        ordering = ("start", "id")

    def __str__(self) -> str:
        return f"{','.join(self.days)} {self.start:%H:%M}-{self.end:%H:%M}"


class Downtime(models.Model):
    """Time a machine cannot work: planned maintenance, or a breakdown reported when re-planning."""

    class Kind(models.TextChoices):
        PLANNED = "planned", _("Planned")
        BREAKDOWN = "breakdown", _("Breakdown")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = _organization_field()
    machine = models.ForeignKey(Machine, on_delete=models.CASCADE, related_name="downtimes")
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.PLANNED)
    reason = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [
            models.Index(fields=["organization", "-created_at"], name="sched_downtime_created"),
            models.Index(fields=["machine", "starts_at"], name="sched_downtime_machine"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(ends_at__gt=models.F("starts_at")),
                name="sched_downtime_order",
                violation_error_message="A downtime must end after it starts.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.machine} {self.kind} {self.starts_at:%Y-%m-%d %H:%M}-{self.ends_at:%Y-%m-%d %H:%M}"


class Material(_Coded):
    """Something an operation needs; the operation cannot start before it arrives."""

    name = models.CharField(max_length=200, blank=True)
    arrives_at = models.DateTimeField(null=True, blank=True, help_text="Empty: no delivery is expected yet.")
    # Purchasing, for the cost objective: units on hand, what holding one costs per day, the most storable.
    stock = models.PositiveIntegerField(default=0)
    holding_cost_per_day = models.DecimalField(
        max_digits=12, decimal_places=4, default=0, validators=[MinValueValidator(0)]
    )
    storage_limit = models.PositiveIntegerField(null=True, blank=True, help_text="Empty: no limit.")

    class Meta:
        ordering = ("code",)
        constraints, indexes = _coded_meta("material")


class Supplier(_Coded):
    """Sells one material at a price over time, after a lead time, in orders of at least `moq` units."""

    material = models.ForeignKey(Material, on_delete=models.CASCADE, related_name="suppliers")
    name = models.CharField(max_length=200, blank=True)
    lead_days = models.PositiveIntegerField(default=0)
    moq = models.PositiveIntegerField(default=1, validators=[MinValueValidator(1)])
    # [[min_quantity, factor], ...]: an order of at least min_quantity pays factor times the dated price.
    price_breaks = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ("code",)
        constraints, indexes = _coded_meta("supplier")


class SupplierPrice(models.Model):
    """From `day` on (until the next one), a unit ordered from the supplier costs `price`."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = _organization_field()
    supplier = models.ForeignKey(Supplier, on_delete=models.CASCADE, related_name="prices")
    day = models.DateField()
    price = models.DecimalField(max_digits=14, decimal_places=4, validators=[MinValueValidator(0)])

    class Meta:
        ordering = ("supplier", "day")
        constraints = [models.UniqueConstraint(fields=["supplier", "day"], name="sched_supplier_price_day")]

    def __str__(self) -> str:
        return f"{self.supplier} {self.day}: {self.price}"


class TariffRate(models.Model):
    """The electricity price per kWh in one hour of the week (UTC); hours not listed cost nothing."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = _organization_field()
    weekday = models.PositiveSmallIntegerField(help_text="0 = Monday ... 6 = Sunday.")
    hour = models.PositiveSmallIntegerField(help_text="0-23, UTC.")
    price_per_kwh = models.DecimalField(max_digits=10, decimal_places=5, validators=[MinValueValidator(0)])

    class Meta:
        ordering = ("weekday", "hour")
        constraints = [
            models.UniqueConstraint(fields=["organization", "weekday", "hour"], name="sched_tariff_hour"),
            models.CheckConstraint(
                condition=models.Q(weekday__lte=6) & models.Q(hour__lte=23), name="sched_tariff_range"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.weekday} {self.hour:02d}h {self.price_per_kwh}"


class Product(_Coded):
    name = models.CharField(max_length=200, blank=True)
    family = models.CharField(max_length=64, blank=True, help_text="Changeovers are set up between families.")

    class Meta:
        ordering = ("code",)
        constraints, indexes = _coded_meta("product")


class Operation(models.Model):
    """One step of a product's routing; steps run in `position` order."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = _organization_field()
    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="operations")
    position = models.PositiveSmallIntegerField()
    name = models.CharField(max_length=100, blank=True)
    materials = models.ManyToManyField(Material, through="OperationMaterial", related_name="+")

    class Meta:
        ordering = ("product", "position")
        constraints = [models.UniqueConstraint(fields=["product", "position"], name="sched_operation_position")]

    def __str__(self) -> str:
        return f"{self.product} #{self.position} {self.name}".rstrip()


class OperationOption(models.Model):
    """A machine able to do an operation, and how long it takes there per unit of the order."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = _organization_field()
    operation = models.ForeignKey(Operation, on_delete=models.CASCADE, related_name="options")
    machine = models.ForeignKey(Machine, on_delete=models.PROTECT, related_name="+")
    minutes_per_unit = models.DecimalField(max_digits=12, decimal_places=4, validators=[MinValueValidator(0.0001)])

    class Meta:
        ordering = ("operation", "machine__code")
        constraints = [models.UniqueConstraint(fields=["operation", "machine"], name="sched_option_machine")]

    def __str__(self) -> str:
        return f"{self.operation.product} (step {self.operation.position + 1})"


class OperationMaterial(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = _organization_field()
    operation = models.ForeignKey(Operation, on_delete=models.CASCADE, related_name="+")
    material = models.ForeignKey(Material, on_delete=models.PROTECT, related_name="+")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["operation", "material"], name="sched_operation_material")]

    def __str__(self) -> str:
        return f"{self.operation.product} (step {self.operation.position + 1})"


class BomLine(models.Model):
    """Step `position` of a product consumes `quantity_per_unit` of a material per unit of the order."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = _organization_field()
    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="bom")
    position = models.PositiveSmallIntegerField()
    material = models.ForeignKey(Material, on_delete=models.PROTECT, related_name="+")
    quantity_per_unit = models.DecimalField(max_digits=14, decimal_places=4, validators=[MinValueValidator(0.0001)])

    class Meta:
        ordering = ("product", "position")
        constraints = [
            models.UniqueConstraint(fields=["product", "position", "material"], name="sched_bom_line_material")
        ]

    def __str__(self) -> str:
        return f"{self.product} (step {self.position + 1}): {self.quantity_per_unit} {self.material}"


class SetupTime(models.Model):
    """Changeover minutes on a machine from one product family to another (none when not listed)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = _organization_field()
    machine = models.ForeignKey(Machine, on_delete=models.CASCADE, related_name="setup_times")
    from_family = models.CharField(max_length=64, blank=True)
    to_family = models.CharField(max_length=64, blank=True)
    minutes = models.PositiveIntegerField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["organization", "-created_at"], name="sched_setup_created")]
        constraints = [
            models.UniqueConstraint(fields=["machine", "from_family", "to_family"], name="sched_setup_families")
        ]

    def __str__(self) -> str:
        return f"{self.machine}: {self.from_family or '-'} -> {self.to_family or '-'} {self.minutes} min"


class Order(_Coded):
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="orders")
    quantity = models.DecimalField(max_digits=14, decimal_places=4, validators=[MinValueValidator(0.0001)])
    release_at = models.DateTimeField(null=True, blank=True, help_text="Empty: may start at once.")
    due_at = models.DateTimeField(null=True, blank=True)
    weight = models.PositiveIntegerField(default=1, help_text="Priority: multiplies this order's lateness.")
    late_penalty_per_day = models.DecimalField(
        max_digits=14, decimal_places=2, default=0, validators=[MinValueValidator(0)]
    )
    optional = models.BooleanField(default=False, help_text="The cost objective may decline it, forgoing its margin.")
    margin = models.DecimalField(max_digits=14, decimal_places=2, default=0, validators=[MinValueValidator(0)])

    class Meta:
        ordering = ("code",)
        constraints, indexes = _coded_meta("order")


class Run(models.Model):
    """One optimisation: the problem as solved (engine minutes from `horizon_start`) and what came out.

    Its state (queued, running, ...) is its job's; the job's result summarises the outcome stored here.
    """

    class Kind(models.TextChoices):
        FACTORY = "factory", _("Factory data")
        JOBSHOP = "jobshop", _("Plain job shop")

    class Objective(models.TextChoices):
        MAKESPAN = "makespan", _("Makespan")
        WEIGHTED_TARDINESS = "weighted_tardiness", _("Weighted tardiness")
        WEIGHTED_MIX = "weighted_mix", _("Weighted mix")
        COST = "cost", _("Cost")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = _organization_field()
    job = models.OneToOneField("jobs.Job", on_delete=models.CASCADE, related_name="scheduling_run")
    parent = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="replans",
        help_text="The run this one re-plans.",
    )
    kind = models.CharField(max_length=16, choices=Kind.choices)
    objective = models.CharField(max_length=32, choices=Objective.choices)
    weights = models.JSONField(default=dict, blank=True)
    time_limit_s = models.PositiveIntegerField()
    horizon_start = models.DateTimeField()
    now_minute = models.PositiveIntegerField(default=0, help_text="Nothing new starts before this minute.")
    problem = models.JSONField()
    operation_names = models.JSONField(default=dict, blank=True)  # product -> names of its operations
    frozen = models.JSONField(default=list, blank=True)
    changes = models.JSONField(default=dict, blank=True)  # what a re-plan changed: breakdown, rush orders
    requested_by_label = models.CharField(max_length=254, blank=True)
    # The outcome, written by the worker.
    solver_status = models.CharField(max_length=32, blank=True)
    objective_value = models.BigIntegerField(null=True, blank=True)
    best_bound = models.BigIntegerField(null=True, blank=True)
    gap = models.FloatField(null=True, blank=True)
    solver_seconds = models.FloatField(null=True, blank=True)
    schedule = models.JSONField(null=True, blank=True)
    kpis = models.JSONField(null=True, blank=True)
    findings = models.JSONField(default=list, blank=True)
    costs = models.JSONField(null=True, blank=True)  # objective cost: by kind, per order, per material
    purchases = models.JSONField(default=list, blank=True)  # objective cost: the purchase orders
    # objective cost: price forecasts for suppliers with only history (per supplier: mean, lower, upper per day)
    forecasts = models.JSONField(default=list, blank=True)
    # objective cost: a robust plan's price scenarios (asked), and its expected and per-scenario costs (found)
    robust = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["organization", "-created_at"], name="sched_run_created")]

    def __str__(self) -> str:
        return f"{self.kind} run {self.id}"
