"""Writes of quality analytics: the process model (stations, machines, variables, characteristics, defect codes)
and starting analyses. Ingestion has its own module (`ingest.py`); analyses run in jobs (`analysis.py`)."""

from collections.abc import Sequence
from datetime import date, datetime, timedelta

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from billing.quotas import quota_check
from jobs.services import job_create
from tenants.actor import Actor
from tenants.audit import audit_record
from tenants.models import Membership, Organization, User

from .conf import ANALYSE_JOB_KIND, METER
from .engine.effectiveness import effectiveness
from .models import (
    Alarm,
    Analysis,
    Characteristic,
    ContainmentAction,
    CorrectiveAction,
    DefectCode,
    IngestionKey,
    InspectionResult,
    Investigation,
    Lot,
    Machine,
    ProcessVariable,
    Station,
    Unit,
    WebhookEndpoint,
)
from .webhooks import EVENTS, webhook_secret, webhook_url_problem

EFFECT_LOOKBACK = timedelta(days=30)


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


# --- device keys (MQTT step records) and webhook endpoints ---------------------------------------------------------


def ingestion_key_create(
    *, organization: Organization, name: str, machine: Machine | None = None
) -> tuple[IngestionKey, str]:
    """Returns the key and its secret, which is never stored (it is derived) and cannot be shown again."""
    from .mqtt import ingestion_secret, new_key_id

    if machine is not None:
        _same_org(organization, machine)
    return IngestionKey.issue(
        secret_for=ingestion_secret, organization=organization, machine=machine, name=name, key_id=new_key_id()
    )


def ingestion_key_revoke(*, key: IngestionKey) -> IngestionKey:
    key.revoke()
    return key


def webhook_endpoint_create(
    *, organization: Organization, url: str, description: str = "", events: Sequence[str] = EVENTS
) -> tuple[WebhookEndpoint, str]:
    """Returns the endpoint and its signing secret (shown once)."""
    problem = webhook_url_problem(url)
    if problem:
        raise ValidationError({"url": [problem]})
    if not events or set(events) - set(EVENTS):
        raise ValidationError({"events": [f"Choose from: {', '.join(EVENTS)}."]})
    return WebhookEndpoint.issue(
        secret_for=webhook_secret,
        organization=organization,
        url=url,
        description=description,
        events=sorted(set(events)),
    )


def webhook_endpoint_update(*, endpoint: WebhookEndpoint, data: dict) -> WebhookEndpoint:
    if "url" in data:
        problem = webhook_url_problem(data["url"])
        if problem:
            raise ValidationError({"url": [problem]})
    if "events" in data and (not data["events"] or set(data["events"]) - set(EVENTS)):
        raise ValidationError({"events": [f"Choose from: {', '.join(EVENTS)}."]})
    endpoint.change(data)
    return endpoint


def webhook_endpoint_delete(*, endpoint: WebhookEndpoint) -> None:
    endpoint.delete()


# --- alarms ---------------------------------------------------------------------------------------------------------


def alarm_acknowledge(*, alarm: Alarm, actor: Actor | None, note: str = "") -> Alarm:
    """open -> acknowledged (a later violation of the same rule on the same series raises a new alarm)."""
    if alarm.status == Alarm.Status.CLOSED:
        raise ValidationError({"status": ["The alarm is closed."]})
    Alarm.objects.filter(pk=alarm.pk, status=Alarm.Status.OPEN).update(
        status=Alarm.Status.ACKNOWLEDGED,
        acknowledged_at=timezone.now(),
        acknowledged_by=actor.user if actor else None,
        note=note or alarm.note,
    )
    alarm.refresh_from_db()
    return alarm


def alarm_close(*, alarm: Alarm, note: str = "") -> Alarm:
    Alarm.objects.filter(pk=alarm.pk).exclude(status=Alarm.Status.CLOSED).update(
        status=Alarm.Status.CLOSED, closed_at=timezone.now(), note=note or alarm.note
    )
    alarm.refresh_from_db()
    return alarm


# --- investigations: suspects, containment, corrective actions, effectiveness --------------------------------------


def investigation_open(
    *,
    organization: Organization,
    actor: Actor | None,
    defect_code: DefectCode | None = None,
    analysis: Analysis | None = None,
    title: str = "",
    description: str = "",
    cause_level: str = "",
    cause_name: str = "",
    window_start: datetime | None = None,
    window_end: datetime | None = None,
) -> Investigation:
    """Open an investigation of a defect code. From an analysis, the defect code, the window and (unless named) the
    cause come from it: its first significant cause, the window from that cause's change point (or the analysis's
    start) to the analysis's end."""
    if analysis is not None:
        _same_org(organization, analysis)
        if defect_code is not None and defect_code.pk != analysis.defect_code_id:
            raise ValidationError({"defect_code": ["The analysis is of another defect code."]})
        defect_code = analysis.defect_code
        if not cause_level:
            top = next((c for c in analysis.result.get("causes", []) if c.get("significant")), None)
            if top is not None:
                cause_level, cause_name = top["level"], top["name"]
                if window_start is None and top.get("change_point"):
                    window_start = datetime.fromisoformat(top["change_point"])
        window_start = window_start or analysis.start
        window_end = window_end or analysis.end
    if defect_code is None:
        raise ValidationError({"defect_code": ["Name the defect code or the analysis."]})
    _same_org(organization, defect_code)
    if cause_level not in Investigation.CauseLevel.values:
        raise ValidationError(
            {"cause_level": [f"Choose from: {', '.join(v for v in Investigation.CauseLevel.values if v)}."]}
        )
    if cause_level and not _cause_exists(organization, cause_level, cause_name):
        raise ValidationError({"cause_name": [f"No {cause_level} {cause_name!r}."]})
    if window_start is not None and window_end is not None and window_start >= window_end:
        raise ValidationError({"window_end": ["The window must end after it starts."]})
    investigation = Investigation(
        organization=organization,
        defect_code=defect_code,
        analysis=analysis,
        title=title or f"{defect_code.code}" + (f": {cause_level} {cause_name}" if cause_level else ""),
        description=description,
        cause_level=cause_level,
        cause_name=cause_name if cause_level else "",
        window_start=window_start,
        window_end=window_end,
        created_by=actor.user if actor else None,
    )
    investigation.full_clean()
    investigation.save()
    return investigation


def _cause_exists(organization: Organization, level: str, name: str) -> bool:
    if level == "machine":
        return Machine.objects.filter(organization=organization, code=name).exists()
    if level == "lot":
        return Lot.objects.filter(organization=organization, code=name).exists()
    if level == "variable":
        return ProcessVariable.objects.filter(organization=organization, name=name).exists()
    return Station.objects.filter(organization=organization, code=name).exists()


def investigation_update(*, investigation: Investigation, data: dict) -> Investigation:
    for field in ("title", "description"):
        if field in data:
            setattr(investigation, field, data[field])
    if "status" in data:
        if data["status"] not in Investigation.Status.values:
            raise ValidationError({"status": [f"Choose from: {', '.join(Investigation.Status.values)}."]})
        investigation.status = data["status"]
        investigation.closed_at = timezone.now() if data["status"] == Investigation.Status.CLOSED else None
    investigation.full_clean()
    investigation.save()
    return investigation


def containment_add(*, investigation: Investigation, description: str) -> ContainmentAction:
    if not description.strip():
        raise ValidationError({"description": ["Say what is contained and how."]})
    return ContainmentAction.objects.create(
        organization_id=investigation.organization_id, investigation=investigation, description=description
    )


def containment_update(*, action: ContainmentAction, data: dict) -> ContainmentAction:
    if "description" in data:
        action.description = data["description"]
    if "status" in data:
        if data["status"] not in ContainmentAction.Status.values:
            raise ValidationError({"status": [f"Choose from: {', '.join(ContainmentAction.Status.values)}."]})
        action.status = data["status"]
        action.done_at = timezone.now() if action.status == ContainmentAction.Status.DONE else None
    action.full_clean()
    action.save()
    return action


def _member(organization_id, user) -> None:
    if user is not None and not Membership.objects.filter(organization_id=organization_id, user=user).exists():
        raise ValidationError({"assignee": ["The assignee must be a member of the organisation."]})


def corrective_add(
    *,
    investigation: Investigation,
    description: str,
    assignee: User | None = None,
    due_date: date | None = None,
) -> CorrectiveAction:
    if not description.strip():
        raise ValidationError({"description": ["Say what will be changed."]})
    _member(investigation.organization_id, assignee)
    return CorrectiveAction.objects.create(
        organization_id=investigation.organization_id,
        investigation=investigation,
        description=description,
        assignee=assignee,
        due_date=due_date,
    )


def corrective_update(*, action: CorrectiveAction, data: dict) -> CorrectiveAction:
    """Edit, assign, or mark implemented (`implemented_at`, default now): the effectiveness check counts from it."""
    if "assignee" in data:
        _member(action.organization_id, data["assignee"])
        action.assignee = data["assignee"]
    for field in ("description", "due_date"):
        if field in data:
            setattr(action, field, data[field])
    if "implemented_at" in data or data.get("status") == CorrectiveAction.Status.IMPLEMENTED:
        moment = data.get("implemented_at") or timezone.now()
        if moment > timezone.now():
            raise ValidationError({"implemented_at": ["Not in the future."]})
        action.implemented_at = moment
        action.status = CorrectiveAction.Status.IMPLEMENTED
        action.effectiveness = {}
    elif "status" in data:
        if data["status"] != CorrectiveAction.Status.OPEN:
            raise ValidationError(
                {"status": ["Set `implemented` (or implemented_at); the effectiveness check sets the rest."]}
            )
        action.status, action.implemented_at, action.effectiveness = CorrectiveAction.Status.OPEN, None, {}
    action.full_clean()
    action.save()
    return action


def corrective_check(*, action: CorrectiveAction, now: datetime | None = None) -> CorrectiveAction:
    """The effectiveness check: inspections of the defect's characteristic after `implemented_at` against the same
    span before it (at least EFFECT_LOOKBACK before); `effective` closes the action, `not_effective` reopens it,
    `not_enough_data` leaves it implemented. The evidence is kept in `effectiveness`."""
    if action.implemented_at is None:
        raise ValidationError({"implemented_at": ["The action is not implemented yet: nothing to compare."]})
    now = now or timezone.now()
    defect_code = action.investigation.defect_code
    since = action.implemented_at
    span = max(now - since, EFFECT_LOOKBACK)
    inspections = InspectionResult.objects.filter(
        organization_id=action.organization_id, characteristic_id=defect_code.characteristic_id
    )
    before = inspections.filter(ts__gte=since - span, ts__lt=since)
    after = inspections.filter(ts__gte=since, ts__lte=now)
    check = effectiveness(
        units_before=before.values("unit_id").distinct().count(),
        defects_before=before.filter(defect_code=defect_code).values("unit_id").distinct().count(),
        units_after=after.values("unit_id").distinct().count(),
        defects_after=after.filter(defect_code=defect_code).values("unit_id").distinct().count(),
    )
    action.effectiveness = {
        "verdict": check.verdict,
        "reason": check.reason,
        "units_before": check.units_before,
        "defects_before": check.defects_before,
        "units_after": check.units_after,
        "defects_after": check.defects_after,
        "rate_before": check.rate_before,
        "rate_after": check.rate_after,
        "p_value": check.p_value,
        "before_from": (since - span).isoformat(),
        "after_to": now.isoformat(),
    }
    action.checked_at = timezone.now()
    if check.verdict == "effective":
        action.status = CorrectiveAction.Status.EFFECTIVE
    elif check.verdict == "not_effective":
        action.status = CorrectiveAction.Status.REOPENED
    action.save(update_fields=["effectiveness", "checked_at", "status"])
    return action
