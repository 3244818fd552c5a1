"""Writes of quality analytics: the process model (stations, machines, variables, characteristics, defect codes)
and starting analyses. Ingestion has its own module (`ingest.py`); analyses run in jobs (`analysis.py`)."""

from collections.abc import Sequence
from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from billing.quotas import quota_check
from jobs.services import job_create
from tenants.actor import Actor
from tenants.audit import audit_record
from tenants.models import Organization

from .conf import ANALYSE_JOB_KIND, METER
from .models import Analysis, Characteristic, DefectCode, Machine, ProcessVariable, Station, Unit


def _saved(instance, field: str):
    try:
        with transaction.atomic():
            instance.full_clean(validate_unique=False, validate_constraints=False)
            instance.save()
    except IntegrityError:
        raise ValidationError({field: ["This code is already in use."]}) from None
    return instance


def station_create(*, organization: Organization, code: str, position: int, name: str = "") -> Station:
    return _saved(Station(organization=organization, code=code, name=name, position=position), "code")


def machine_create(*, organization: Organization, station: Station, code: str, name: str = "") -> Machine:
    _same_org(organization, station)
    return _saved(Machine(organization=organization, station=station, code=code, name=name), "code")


def variable_create(
    *,
    organization: Organization,
    station: Station,
    name: str,
    unit: str = "",
    lsl: float | None = None,
    usl: float | None = None,
    target: float | None = None,
    causes: Sequence[ProcessVariable] = (),
) -> ProcessVariable:
    _same_org(organization, station, *causes)
    _limits(lsl, usl)
    with transaction.atomic():
        variable = _saved(
            ProcessVariable(
                organization=organization, station=station, name=name, unit=unit, lsl=lsl, usl=usl, target=target
            ),
            "name",
        )
        variable.causes.set(causes)
    return variable


def characteristic_create(
    *,
    organization: Organization,
    station: Station,
    code: str,
    name: str = "",
    unit: str = "",
    lsl: float | None = None,
    usl: float | None = None,
    target: float | None = None,
    affected_by: Sequence[ProcessVariable] = (),
    defect_codes: Sequence[dict] = (),
) -> Characteristic:
    _same_org(organization, station, *affected_by)
    _limits(lsl, usl)
    with transaction.atomic():
        characteristic = _saved(
            Characteristic(
                organization=organization,
                station=station,
                code=code,
                name=name,
                unit=unit,
                lsl=lsl,
                usl=usl,
                target=target,
            ),
            "code",
        )
        characteristic.affected_by.set(affected_by)
        for item in defect_codes:
            _saved(
                DefectCode(
                    organization=organization,
                    characteristic=characteristic,
                    code=item["code"],
                    description=item.get("description", ""),
                ),
                "defect_codes",
            )
    return characteristic


def _limits(lsl: float | None, usl: float | None) -> None:
    if lsl is not None and usl is not None and lsl >= usl:
        raise ValidationError({"usl": ["The upper spec limit must be above the lower one."]})


def _same_org(organization: Organization, *objects) -> None:
    for obj in objects:
        if obj.organization_id != organization.pk:
            raise ValidationError({"organization": ["Refers to another organisation's data."]})


def analysis_start(
    *,
    organization: Organization,
    defect_code: DefectCode,
    actor: Actor | None,
    method: str = Analysis.Method.AUTO,
    start: datetime | None = None,
    end: datetime | None = None,
    units: Sequence[str] = (),
    candidates: Sequence[str] = (),
    window_seconds: float = 30.0,
) -> Analysis:
    """Queue a root-cause analysis of the defect over [start, end) or for the named failed units."""
    _same_org(organization, defect_code)
    if start is not None and end is not None and start >= end:
        raise ValidationError({"end": ["The window must end after it starts."]})
    if units:
        known = set(Unit.objects.filter(organization=organization, serial__in=units).values_list("serial", flat=True))
        missing = sorted(set(units) - known)
        if missing:
            raise ValidationError({"units": [f"No unit with the serial {s!r}." for s in missing[:20]]})
    if candidates:
        known = set(
            ProcessVariable.objects.filter(organization=organization, name__in=candidates).values_list(
                "name", flat=True
            )
        )
        missing = sorted(set(candidates) - known)
        if missing:
            raise ValidationError({"candidates": [f"No process variable {n!r}." for n in missing[:20]]})
    if window_seconds <= 0:
        raise ValidationError({"window_seconds": ["Must be positive."]})
    quota_check(organization=organization, meter=METER, quantity=1)
    with transaction.atomic():
        analysis = Analysis.objects.create(
            organization=organization,
            defect_code=defect_code,
            method=method,
            start=start,
            end=end,
            units=sorted(set(units)),
            window_seconds=window_seconds,
            candidates=sorted(set(candidates)),
        )
        job = job_create(
            organization=organization,
            kind=ANALYSE_JOB_KIND,
            params={"analysis_id": str(analysis.pk), "defect_code": defect_code.code},
            actor=actor,
        )
        analysis.job = job
        analysis.save(update_fields=["job"])
    return analysis


def analysis_label(
    *, analysis: Analysis, causes: Sequence[str], actor: Actor | None, unit: str | None = None
) -> Analysis:
    """Store the cause(s) the investigation confirmed for a finished analysis (empty: remove the label), for the
    whole analysis or, for a `unit` analysis, for one of its failed units (`unit`: its serial). Each name must be
    one the analysis ranked (for that unit), so that the supervised ranking can learn from its evidence."""
    result = analysis.result or {}
    if analysis.status != "succeeded" or not result.get("causes"):
        raise ValidationError({"causes": ["Only a finished analysis with ranked causes can be labelled."]})
    ranked = {c["name"] for c in result["causes"]}
    if unit is not None:
        rankings = {u["unit"]: u for u in result["units"]} if result.get("method") == Analysis.Method.UNIT else {}
        if unit not in rankings:
            raise ValidationError({"unit": [f"{unit!r} is not a failed unit of this analysis."]})
        ranked = {c["name"] for c in rankings[unit].get("causes", [])}
    unknown = sorted(set(causes) - ranked)
    if unknown:
        raise ValidationError({"causes": [f"{name!r} is not among the ranked causes." for name in unknown[:20]]})
    with transaction.atomic():
        if unit is None:
            analysis.confirmed_causes = sorted(set(causes))
        elif causes:
            analysis.unit_causes = {**analysis.unit_causes, unit: sorted(set(causes))}
        else:
            analysis.unit_causes = {k: v for k, v in analysis.unit_causes.items() if k != unit}
        labelled = bool(analysis.confirmed_causes or analysis.unit_causes)
        analysis.labelled_at = (analysis.labelled_at or timezone.now()) if labelled else None
        analysis.save(update_fields=["confirmed_causes", "unit_causes", "labelled_at"])
        audit_record(
            action="quality.analysis.label",
            target=analysis,
            metadata={"causes": sorted(set(causes)), "unit": unit},
            **(actor.audit_kwargs() if actor else {"organization": analysis.organization}),
        )
    return analysis
