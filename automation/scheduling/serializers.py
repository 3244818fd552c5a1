"""Translation between the scheduling API's JSON and the services; no logic beyond the shape of the input.

References between objects are by `code` and resolve only within the caller's organisation: the context
carries the organisation, and `CodeRelatedField` filters by it, so another tenant's machine "does not exist".
"""

import re
from decimal import Decimal

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from tenants.scoping import CodeRelatedField

from .conf import DEFAULT_HORIZON_DAYS, DEFAULT_TIME_LIMIT_S, MAX_HORIZON_DAYS, MAX_JOBSHOP_OPERATIONS, MAX_TIME_LIMIT_S
from .models import (
    BomLine,
    Downtime,
    Machine,
    Material,
    Order,
    Product,
    Run,
    SetupTime,
    Shift,
    Supplier,
    SupplierPrice,
    TariffRate,
)
from .outputs import forecast_rows, kpis_json, moment
from .timegrid import WEEKDAYS


@extend_schema_field({"type": "string", "pattern": r"^\d{2}:\d{2}(:\d{2})?$", "example": "06:00"})
class HourMinuteField(serializers.TimeField):
    """A wall-clock time answered as HH:MM. Documented as such: OpenAPI's `format: time` means RFC 3339's
    HH:MM:SS with an offset, which this never was (the fuzzing found the answers violating the schema)."""

    def __init__(self, **kwargs):
        super().__init__(format="%H:%M", **kwargs)


@extend_schema_field(
    {
        "type": "array",
        "items": {"type": "string", "enum": list(WEEKDAYS)},
        "description": "Weekdays; a string such as 'mon-fri' or 'mon,wed' is accepted too.",
    }
)
class DaysField(serializers.Field):
    """Weekdays as a list (["mon", "tue"]) or a string ("mon-fri", "mon,wed,fri", "sat;sun")."""

    default_error_messages = {"invalid": "Use weekdays mon..sun, as a list or like 'mon-fri' or 'mon,wed'."}

    def to_internal_value(self, data):
        parts = data if isinstance(data, list) else re.split(r"[,;\s]+", str(data).strip().lower())
        days: set[str] = set()
        for part in parts:
            if not isinstance(part, str) or not part:
                self.fail("invalid")
            first, _, last = part.strip().lower().partition("-")
            if first not in WEEKDAYS or (last and last not in WEEKDAYS):
                self.fail("invalid")
            i, j = WEEKDAYS.index(first), WEEKDAYS.index(last or first)
            days.update(WEEKDAYS[k % 7] for k in range(i, j + 1 if j >= i else j + 8))
        if not days:
            self.fail("invalid")
        return sorted(days, key=WEEKDAYS.index)

    def to_representation(self, value):
        return list(value)


class _OrganizationOwned(serializers.ModelSerializer):
    id = serializers.UUIDField(read_only=True)
    created_at = serializers.DateTimeField(read_only=True)


# --- master data ----------------------------------------------------------------------------------------------------


class ShiftSerializer(serializers.ModelSerializer):
    days = DaysField()
    start = HourMinuteField()
    end = HourMinuteField(help_text="At or before the start: the shift ends the next day.")

    class Meta:
        model = Shift
        fields = ["days", "start", "end", "overtime_cost_per_hour"]

    def to_representation(self, instance):
        data = super().to_representation(instance)
        if data.get("overtime_cost_per_hour") is None:
            data.pop("overtime_cost_per_hour", None)  # a regular shift: shown as before overtime existed
        return data

    def validate(self, attrs):
        if attrs["start"] == attrs["end"]:
            raise serializers.ValidationError({"end": "A shift must not start and end at the same time."})
        return attrs


class MachineSerializer(_OrganizationOwned):
    shifts = ShiftSerializer(
        many=True,
        required=False,
        help_text="Weekly working windows in the machine's time zone; none: around the clock. "
        "On update, a list replaces every shift.",
    )

    class Meta:
        model = Machine
        fields = ["id", "code", "name", "timezone", "running_kw", "idle_kw", "shifts", "created_at"]

    def validate(self, attrs):
        running = attrs.get("running_kw", getattr(self.instance, "running_kw", 0))
        idle = attrs.get("idle_kw", getattr(self.instance, "idle_kw", 0))
        if idle > running:
            raise serializers.ValidationError({"idle_kw": "A machine cannot draw more idle than running."})
        return attrs


class DowntimeSerializer(_OrganizationOwned):
    machine = CodeRelatedField(Machine)

    class Meta:
        model = Downtime
        fields = ["id", "machine", "starts_at", "ends_at", "kind", "reason", "created_at"]

    def validate(self, attrs):
        starts_at = attrs.get("starts_at", getattr(self.instance, "starts_at", None))
        ends_at = attrs.get("ends_at", getattr(self.instance, "ends_at", None))
        if starts_at and ends_at and ends_at <= starts_at:
            raise serializers.ValidationError({"ends_at": "A downtime must end after it starts."})
        return attrs


class MaterialSerializer(_OrganizationOwned):
    class Meta:
        model = Material
        fields = [
            "id",
            "code",
            "name",
            "arrives_at",
            "stock",
            "holding_cost_per_day",
            "storage_limit",
            "created_at",
        ]


class OptionSerializer(serializers.Serializer):
    machine = CodeRelatedField(Machine)
    minutes_per_unit = serializers.DecimalField(
        max_digits=12,
        decimal_places=4,
        min_value=Decimal("0.0001"),
        coerce_to_string=False,
        help_text="Processing minutes per unit of an order's quantity on this machine.",
    )


class OperationSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100, allow_blank=True, required=False, default="")
    machines = OptionSerializer(
        many=True,
        source="options",
        allow_empty=False,
        help_text="The machines able to do this step, with the time it takes on each.",
    )
    materials = CodeRelatedField(
        Material, many=True, required=False, help_text="Materials this step waits for (by code)."
    )


class ProductSerializer(_OrganizationOwned):
    operations = OperationSerializer(
        many=True, required=False, help_text="The routing, in order. On update, a list replaces the routing."
    )

    class Meta:
        model = Product
        fields = ["id", "code", "name", "family", "operations", "created_at"]


class SetupTimeSerializer(_OrganizationOwned):
    machine = CodeRelatedField(Machine)

    class Meta:
        model = SetupTime
        fields = ["id", "machine", "from_family", "to_family", "minutes", "created_at"]


class OrderSerializer(_OrganizationOwned):
    product = CodeRelatedField(Product)
    quantity = serializers.DecimalField(
        max_digits=14, decimal_places=4, min_value=Decimal("0.0001"), coerce_to_string=False
    )

    class Meta:
        model = Order
        fields = [
            "id",
            "code",
            "product",
            "quantity",
            "release_at",
            "due_at",
            "weight",
            "late_penalty_per_day",
            "optional",
            "margin",
            "created_at",
        ]

    def validate(self, attrs):
        release_at = attrs.get("release_at", getattr(self.instance, "release_at", None))
        due_at = attrs.get("due_at", getattr(self.instance, "due_at", None))
        if release_at and due_at and due_at < release_at:
            raise serializers.ValidationError({"due_at": "An order cannot be due before it is released."})
        return attrs


# --- import rows that CSV files spread over several lines -----------------------------------------------------------


class ShiftRowSerializer(ShiftSerializer):
    """One line of a shifts file: the machine's shifts are all its lines together."""

    machine = CodeRelatedField(Machine)

    class Meta(ShiftSerializer.Meta):
        fields = ["machine", "days", "start", "end", "overtime_cost_per_hour"]


class OperationRowSerializer(serializers.Serializer):
    """One line of an operations file: one machine able to do one step of a product's routing."""

    product = CodeRelatedField(Product)
    step = serializers.IntegerField(min_value=1, max_value=1000, help_text="The step's place in the routing.")
    name = serializers.CharField(max_length=100, allow_blank=True, required=False, default="")
    machine = CodeRelatedField(Machine)
    minutes_per_unit = serializers.DecimalField(max_digits=12, decimal_places=4, min_value=Decimal("0.0001"))
    materials = CodeRelatedField(
        Material, many=True, required=False, help_text="Material codes; in a CSV file separated by ';'."
    )


# --- purchasing and energy, for the cost objective -----------------------------------------------------------------


@extend_schema_field(
    {
        "type": "array",
        "items": {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2},
        "description": "[[min_quantity, factor], ...]; a string such as '100:0.95;500:0.9' is accepted too.",
    }
)
class PriceBreaksField(serializers.Field):
    """All-units discounts as [[min_quantity, factor], ...], or in a CSV cell as "100:0.95;500:0.9"."""

    default_error_messages = {"invalid": "Use min_quantity:factor pairs such as '100:0.95;500:0.9'."}

    def to_internal_value(self, data):
        if isinstance(data, str):
            pairs = [part.split(":") for part in re.split(r"[;\s]+", data.strip()) if part]
        else:
            pairs = data
        try:
            breaks = sorted([int(q), float(f)] for q, f in pairs)
        except (TypeError, ValueError):
            self.fail("invalid")
        if any(q < 1 or not 0 < f <= 10 for q, f in breaks):
            self.fail("invalid")
        return breaks

    def to_representation(self, value):
        return value


class SupplierSerializer(_OrganizationOwned):
    material = CodeRelatedField(Material)
    price_breaks = PriceBreaksField(required=False, default=list)

    class Meta:
        model = Supplier
        fields = ["id", "code", "material", "name", "lead_days", "moq", "price_breaks", "created_at"]


class SupplierPriceSerializer(serializers.ModelSerializer):
    """The supplier's price from `day` on (until its next price); creating one for a day that has a price
    replaces it."""

    id = serializers.UUIDField(read_only=True)
    supplier = CodeRelatedField(Supplier)
    price = serializers.DecimalField(max_digits=14, decimal_places=4, min_value=Decimal("0"), coerce_to_string=False)

    class Meta:
        model = SupplierPrice
        fields = ["id", "supplier", "day", "price"]
        validators: list = []  # one price per day: the service replaces the day's price (API and import alike)


class BomLineSerializer(serializers.ModelSerializer):
    """One line of a bill of materials: a product's step (from 1) consumes material per unit of the order."""

    id = serializers.UUIDField(read_only=True)
    product = CodeRelatedField(Product)
    step = serializers.IntegerField(min_value=1, max_value=1000, source="position")
    material = CodeRelatedField(Material)
    quantity_per_unit = serializers.DecimalField(
        max_digits=14, decimal_places=4, min_value=Decimal("0.0001"), coerce_to_string=False
    )

    class Meta:
        model = BomLine
        fields = ["id", "product", "step", "material", "quantity_per_unit"]
        validators: list = []  # one line per step and material: the service replaces its quantity

    def to_representation(self, instance):
        data = super().to_representation(instance)
        data["step"] = instance.position + 1  # stored from 0, like the routing's positions
        return data


class TariffRateSerializer(serializers.ModelSerializer):
    """The electricity price in one hour of the week (UTC); creating one for an hour that has a price replaces it."""

    id = serializers.UUIDField(read_only=True)
    weekday = serializers.IntegerField(min_value=0, max_value=6, help_text="0 = Monday ... 6 = Sunday.")
    hour = serializers.IntegerField(min_value=0, max_value=23, help_text="UTC.")
    price_per_kwh = serializers.DecimalField(
        max_digits=10, decimal_places=5, min_value=Decimal("0"), coerce_to_string=False
    )

    class Meta:
        model = TariffRate
        fields = ["id", "weekday", "hour", "price_per_kwh"]
        validators: list = []  # one price per hour: the service replaces it


# --- runs -----------------------------------------------------------------------------------------------------------


class WeightsSerializer(serializers.Serializer):
    makespan = serializers.IntegerField(min_value=0, max_value=10_000, default=1)
    tardiness = serializers.IntegerField(min_value=0, max_value=10_000, default=1)


class JobShopSerializer(serializers.Serializer):
    jobs = serializers.JSONField(
        help_text="Jobs, each a list of operations [machine, duration] in order; an "
        "operation with alternatives is [[m1, d1], [m2, d2], ...]."
    )
    release_dates = serializers.ListField(child=serializers.IntegerField(min_value=0), required=False)
    due_dates = serializers.ListField(child=serializers.IntegerField(allow_null=True), required=False)
    weights = serializers.ListField(child=serializers.IntegerField(min_value=0), required=False)

    def validate_jobs(self, jobs):
        if not isinstance(jobs, list) or not jobs:
            raise serializers.ValidationError("A non-empty list of jobs is required.")
        total = 0
        for j, job in enumerate(jobs):
            if not isinstance(job, list) or not job:
                raise serializers.ValidationError(f"jobs[{j}]: a job is a non-empty list of operations.")
            for k, operation in enumerate(job):
                total += 1
                if not _jobshop_operation_ok(operation):
                    raise serializers.ValidationError(
                        f"jobs[{j}][{k}]: an operation is [machine, duration] or a list of such pairs, with a machine "
                        f"number >= 0 and a duration >= 1."
                    )
        if total > MAX_JOBSHOP_OPERATIONS:
            raise serializers.ValidationError(f"At most {MAX_JOBSHOP_OPERATIONS} operations in all.")
        return jobs

    def validate(self, attrs):
        for name in ("release_dates", "due_dates", "weights"):
            if name in attrs and len(attrs[name]) != len(attrs["jobs"]):
                raise serializers.ValidationError({name: f"Give one value per job ({len(attrs['jobs'])})."})
        return attrs


def _jobshop_operation_ok(operation) -> bool:
    def pair(value) -> bool:
        return (
            isinstance(value, list)
            and len(value) == 2
            and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
            and value[0] >= 0
            and value[1] >= 1
        )

    if not isinstance(operation, list) or not operation:
        return False
    return pair(operation) or all(pair(alternative) for alternative in operation)


SCENARIO_KINDS = ["material_price", "tariff", "lead_time", "machine_down", "rush_order"]
_NEEDS = {
    "material_price": ("material", "percent"),
    "tariff": ("factor",),
    "lead_time": ("supplier", "days"),
    "machine_down": ("machine", "from", "duration_minutes"),
    "rush_order": ("order",),
}


class ScenarioChangeSerializer(serializers.Serializer):
    """One change of a what-if scenario; which fields it needs depends on its kind."""

    kind = serializers.ChoiceField(
        choices=SCENARIO_KINDS,
        help_text="material_price (material, percent, from), tariff (factor, hours, from), lead_time (supplier, "
        "days), machine_down (machine, from, duration_minutes), rush_order (order).",
    )
    material = serializers.CharField(max_length=64, required=False, help_text="The material's code.")
    percent = serializers.FloatField(
        min_value=-99.9, max_value=1000, required=False, help_text="Price change; 8 is +8 %."
    )
    factor = serializers.FloatField(min_value=0, max_value=100, required=False, help_text="Tariff multiplier.")
    hours = serializers.ListField(
        child=serializers.IntegerField(min_value=0, max_value=23),
        required=False,
        max_length=24,
        help_text="Hours of the day (UTC) the tariff change applies to; absent: all.",
    )
    supplier = serializers.CharField(max_length=64, required=False, help_text="The supplier's code.")
    days = serializers.IntegerField(min_value=-365, max_value=365, required=False, help_text="Added to the lead time.")
    machine = serializers.CharField(max_length=64, required=False, help_text="The machine's code.")
    duration_minutes = serializers.IntegerField(min_value=1, max_value=MAX_HORIZON_DAYS * 24 * 60, required=False)
    order = serializers.CharField(max_length=64, required=False, help_text="A rush order's code.")

    def get_fields(self):
        fields = super().get_fields()
        fields["from"] = serializers.DateTimeField(  # a keyword in Python
            required=False,
            help_text="Price and tariff changes: from this moment on (absent: the whole plan); machine_down: when "
            "it stops.",
        )
        return fields

    def validate(self, attrs):
        missing = [name for name in _NEEDS[attrs["kind"]] if attrs.get(name) is None]
        if missing:
            raise serializers.ValidationError({name: f"Needed for a {attrs['kind']} change." for name in missing})
        return attrs


class WhatIfSerializer(serializers.Serializer):
    changes = ScenarioChangeSerializer(many=True, allow_empty=False, help_text="At most 50 changes.")
    time_limit_s = serializers.IntegerField(
        min_value=1, max_value=MAX_TIME_LIMIT_S, required=False, help_text="Absent: the base run's."
    )

    def validate_changes(self, changes):
        if len(changes) > 50:
            raise serializers.ValidationError("At most 50 changes.")
        return changes


class RobustSerializer(serializers.Serializer):
    scenarios = serializers.ListField(
        child=ScenarioChangeSerializer(many=True, allow_empty=False),
        required=False,
        min_length=2,
        max_length=20,
        help_text="Price scenarios, each a list of material_price and tariff changes, equally likely.",
    )
    samples = serializers.IntegerField(
        min_value=2,
        max_value=50,
        required=False,
        help_text="Or: this many price paths drawn from the forecasts' prediction intervals.",
    )

    def validate(self, attrs):
        if ("scenarios" in attrs) == ("samples" in attrs):
            raise serializers.ValidationError("Give either scenarios or samples.")
        for i, changes in enumerate(attrs.get("scenarios", [])):
            if any(c["kind"] not in ("material_price", "tariff") for c in changes):
                raise serializers.ValidationError(
                    {"scenarios": f"Scenario {i}: only material_price and tariff changes make a price scenario."}
                )
        return attrs


class RunCreateSerializer(serializers.Serializer):
    objective = serializers.ChoiceField(choices=Run.Objective.choices, default=Run.Objective.MAKESPAN)
    weights = WeightsSerializer(required=False, help_text="For weighted_mix: makespan * w1 + weighted tardiness * w2.")
    time_limit_s = serializers.IntegerField(min_value=1, max_value=MAX_TIME_LIMIT_S, default=DEFAULT_TIME_LIMIT_S)
    orders = serializers.ListField(
        child=serializers.CharField(max_length=64),
        required=False,
        allow_empty=False,
        help_text="Codes of the orders to plan; all orders when absent.",
    )
    horizon_start = serializers.DateTimeField(required=False, help_text="Minute 0 of the plan; now when absent.")
    horizon_days = serializers.IntegerField(
        min_value=1,
        max_value=MAX_HORIZON_DAYS,
        default=DEFAULT_HORIZON_DAYS,
        help_text="Every operation must end within this many days.",
    )
    jobshop = JobShopSerializer(
        required=False, help_text="A plain job-shop problem instead of the factory data; durations are minutes."
    )
    robust = RobustSerializer(
        required=False,
        help_text="Objective cost: make the plan with the lowest expected cost over several price scenarios.",
    )

    def validate(self, attrs):
        if "jobshop" in attrs and ("orders" in attrs or "horizon_days" in self.initial_data):
            raise serializers.ValidationError({"jobshop": "A job-shop problem comes without orders or horizon_days."})
        return attrs


class BreakdownSerializer(serializers.Serializer):
    machine = serializers.CharField(max_length=64, help_text="The machine's code.")
    duration_minutes = serializers.IntegerField(min_value=1, max_value=MAX_HORIZON_DAYS * 24 * 60)

    def get_fields(self):
        fields = super().get_fields()
        fields["from"] = serializers.DateTimeField(help_text="When the machine stopped.")  # a keyword in Python
        return fields


class RescheduleSerializer(serializers.Serializer):
    now = serializers.DateTimeField(
        required=False, help_text="Operations started before this stay as planned; now when absent."
    )
    breakdown = BreakdownSerializer(required=False)
    rush_orders = serializers.ListField(
        child=serializers.CharField(max_length=64),
        required=False,
        default=list,
        help_text="Codes of orders to add to the plan.",
    )
    objective = serializers.ChoiceField(choices=Run.Objective.choices, required=False)
    weights = WeightsSerializer(required=False)
    time_limit_s = serializers.IntegerField(min_value=1, max_value=MAX_TIME_LIMIT_S, required=False)


class ForecastDaySerializer(serializers.Serializer):
    day = serializers.IntegerField(help_text="Days from the horizon start.")
    date = serializers.CharField()
    price = serializers.FloatField(help_text="The expected price, which the plan uses.")
    lower = serializers.FloatField()
    upper = serializers.FloatField()


class PriceForecastSerializer(serializers.Serializer):
    supplier = serializers.CharField()
    material = serializers.CharField()
    method = serializers.CharField()
    level = serializers.FloatField(help_text="Coverage of the prediction interval (0.9: 90 %).")
    history_days = serializers.IntegerField(help_text="Days of price history the model was fitted on.")
    days = ForecastDaySerializer(many=True)


class RunSerializer(serializers.ModelSerializer):
    job = serializers.UUIDField(source="job_id", read_only=True, help_text="Cancel with POST /jobs/{job}/cancel.")
    status = serializers.CharField(source="job.status", read_only=True)
    progress = serializers.IntegerField(source="job.progress", read_only=True)
    error = serializers.SerializerMethodField()
    # DRF's metaclass takes declared fields off the class, so this does not shadow Field.parent at run time
    parent = serializers.UUIDField(source="parent_id", read_only=True, allow_null=True)  # type: ignore[assignment]
    now = serializers.SerializerMethodField(help_text="Nothing new starts before this.")
    kpis = serializers.SerializerMethodField()
    forecasts = serializers.SerializerMethodField(
        help_text="Cost runs: the price forecast for each supplier with only price history (expected price and "
        "prediction interval per day); the plan uses the expected price."
    )
    robust = serializers.SerializerMethodField(
        help_text="Robust cost runs: what was asked, and the outcome (chosen plan, expected and worst cost, cost per "
        "scenario, and the same for each candidate plan)."
    )
    finished_at = serializers.DateTimeField(source="job.finished_at", read_only=True)

    class Meta:
        model = Run
        fields = [
            "id",
            "job",
            "status",
            "progress",
            "error",
            "kind",
            "objective",
            "weights",
            "time_limit_s",
            "horizon_start",
            "now",
            "parent",
            "changes",
            "solver_status",
            "objective_value",
            "best_bound",
            "gap",
            "solver_seconds",
            "kpis",
            "costs",
            "forecasts",
            "robust",
            "findings",
            "requested_by_label",
            "created_at",
            "finished_at",
        ]
        read_only_fields = fields

    def get_error(self, run: Run) -> dict | None:
        return {"code": run.job.error_code, "message": run.job.error_message} if run.job.error_code else None

    def get_now(self, run: Run) -> str:
        return moment(run, run.now_minute)

    def get_kpis(self, run: Run) -> dict | None:
        return kpis_json(run)

    @extend_schema_field({"type": "object", "nullable": True})
    def get_robust(self, run: Run) -> dict | None:
        if not run.robust:
            return None
        return {"asked": run.robust.get("asked"), "outcome": run.robust.get("outcome")}  # not the sampled paths

    @extend_schema_field(PriceForecastSerializer(many=True))
    def get_forecasts(self, run: Run) -> list[dict]:
        return forecast_rows(run)


class ScheduledOperationSerializer(serializers.Serializer):
    order = serializers.CharField()
    operation = serializers.IntegerField(help_text="Index of the step in the product's routing.")
    operation_name = serializers.CharField()
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()
    setup_minutes = serializers.IntegerField(help_text="Changeover right before the start.")
    start_minute = serializers.IntegerField()
    end_minute = serializers.IntegerField()


class MachineScheduleSerializer(serializers.Serializer):
    machine = serializers.CharField()
    operations = ScheduledOperationSerializer(many=True)


class PurchaseOrderSerializer(serializers.Serializer):
    supplier = serializers.CharField()
    material = serializers.CharField()
    quantity = serializers.IntegerField()
    order_on = serializers.CharField(help_text="When to place it: the start of that day, UTC.")
    arrives_on = serializers.CharField(help_text="When it arrives and can be used: the start of that day, UTC.")
    order_day = serializers.IntegerField(help_text="Days from the horizon start.")
    arrival_day = serializers.IntegerField()
    unit_price = serializers.FloatField()
    cost = serializers.FloatField()


class ComparisonSerializer(serializers.Serializer):
    base_run = serializers.UUIDField()
    changes = serializers.JSONField(help_text="What the scenario changed.")
    cost = serializers.DictField(
        child=serializers.DictField(child=serializers.FloatField()),
        help_text="Per kind (material, holding, energy, overtime, late, declined, total): base, scenario, delta.",
    )
    base_plan_kept = serializers.JSONField(
        help_text="The base plan kept unchanged under the scenario: feasible, its total, or the rules it breaks."
    )
    orders = serializers.ListField(
        child=serializers.DictField(),
        help_text="Orders whose start or end changed: change (moved, newly_late, now_on_time, declined, accepted, "
        "added), base and new start and end.",
    )
    purchases = serializers.ListField(
        child=serializers.DictField(),
        help_text="Per supplier whose purchases changed: quantity, cost and [order day, quantity] in each plan.",
    )


class ImportResultSerializer(serializers.Serializer):
    created = serializers.DictField(child=serializers.IntegerField())
    updated = serializers.DictField(child=serializers.IntegerField())
