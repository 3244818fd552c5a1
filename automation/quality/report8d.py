"""The 8D report of an investigation, drafted by the tenant's own model through the gateway, editable, exported as
Markdown or PDF.

Drafting is a Celery task (`quality.draft_report`, queue `quality`): it gives the model the facts (the defect,
the investigation, the analysis's ranked causes, the suspects, containment and corrective actions with their
effectiveness checks) and asks for the eight disciplines D1..D8 as `D1: ...` blocks, through
`tenants.model_client` with the organisation's system key for purpose `quality.report` (model
QUALITY_REPORT_MODEL, default the maintenance explainer's default, the base model). When no model answers, the
report stays `pending` with the reason in `error` and `quality.draft_pending_reports` tries again later (backoff
up to an hour, at most MAX_ATTEMPTS, then `failed`); the exports say so instead of showing made-up text. A report
edited by a person (`edited`) is never overwritten by a draft; asking for a new draft is explicit.

The PDF uses the first font of QUALITY_REPORT_FONTS that exists (Noto Sans CJK by default, so Korean prints; the
Debian package fonts-noto-cjk), then DejaVu Sans (Latin, Greek, Cyrillic), and as the last resort the PDF core
font Helvetica, in which any character outside Latin-1 prints as "?" and the PDF says so on its first line.
"""

import logging
import re
from datetime import timedelta
from pathlib import Path

from celery import current_app
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy

from tenants.model_client import ModelUnavailable, model_ask
from tenants.models import Organization

from .models import Investigation, Report8D
from .selectors import investigation_suspects

logger = logging.getLogger(__name__)

SECTIONS = {
    "D1": gettext_lazy("Team"),
    "D2": gettext_lazy("Problem description"),
    "D3": gettext_lazy("Containment actions"),
    "D4": gettext_lazy("Root cause"),
    "D5": gettext_lazy("Chosen corrective actions"),
    "D6": gettext_lazy("Implementation and validation"),
    "D7": gettext_lazy("Preventing recurrence"),
    "D8": gettext_lazy("Closure and recognition"),
}
KEY_PURPOSE = "quality.report"
KEY_NAME = "quality 8D report (system)"
DEFAULT_MODEL = "smollm2-135m-instruct"
MAX_ATTEMPTS = 12
MAX_TOKENS = 900
DRAFT_TASK = "quality.draft_report"
FONTS = (
    ("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc", 1),  # index 1: the Korean face of the collection
    ("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", 0),
)
SYSTEM_PROMPT = (
    "You are a quality engineer's assistant in a factory. Draft an 8D report from the facts below. Answer with "
    "exactly eight blocks, each starting on its own line with its label: D1: (team), D2: (problem description), "
    "D3: (containment actions), D4: (root cause), D5: (chosen corrective actions), D6: (implementation and "
    "validation), D7: (preventing recurrence), D8: (closure). Use only the facts given; where a fact is missing, "
    "write 'to be completed'. Do not invent numbers."
)


def _model() -> str:
    return getattr(settings, "QUALITY_REPORT_MODEL", "") or DEFAULT_MODEL


def _base_url() -> str:
    return (
        getattr(settings, "QUALITY_REPORT_BASE_URL", "")
        or getattr(settings, "MAINTENANCE_EXPLAINER_BASE_URL", "")
        or getattr(settings, "PUBLIC_BASE_URL", "")
    ).rstrip("/")


def report_request(*, investigation: Investigation) -> Report8D:
    """Ask for a (new) draft: the report becomes pending and the draft task is queued after commit."""
    with transaction.atomic():
        report, _ = Report8D.objects.select_for_update().get_or_create(
            investigation=investigation, defaults={"organization_id": investigation.organization_id}
        )
        report.status, report.attempts, report.error, report.retry_at = Report8D.Status.PENDING, 0, "", None
        report.updated_at = timezone.now()
        report.save(update_fields=["status", "attempts", "error", "retry_at", "updated_at"])
        ids = {"report_id": str(report.pk), "organization_id": str(report.organization_id)}
        transaction.on_commit(lambda: current_app.send_task(DRAFT_TASK, kwargs=ids, queue="quality"))
    return report


def report_edit(*, report: Report8D, sections: dict[str, str]) -> Report8D:
    """A person's text for some or all of D1..D8; the report is `edited` from then on."""
    from django.core.exceptions import ValidationError

    unknown = sorted(set(sections) - set(SECTIONS))
    if unknown:
        raise ValidationError({"sections": [f"Unknown section(s) {', '.join(unknown)}; use D1..D8."]})
    report.sections = {**{k: report.sections.get(k, "") for k in SECTIONS}, **sections}
    report.status = Report8D.Status.EDITED
    report.error, report.retry_at, report.updated_at = "", None, timezone.now()
    report.save(update_fields=["sections", "status", "error", "retry_at", "updated_at"])
    return report


def facts(investigation: Investigation) -> str:
    defect = investigation.defect_code
    lines = [
        f"Defect: {defect.code}"
        + (f" ({defect.description})" if defect.description else "")
        + f", characteristic {defect.characteristic.code}.",
        f"Investigation: {investigation.title}. Status {investigation.status}."
        + (f" {investigation.description}" if investigation.description else ""),
    ]
    if investigation.cause_level:
        lines.append(f"Suspected cause: {investigation.cause_level} {investigation.cause_name}.")
    if investigation.window_start or investigation.window_end:
        lines.append(f"Window: {investigation.window_start or 'the beginning'} to {investigation.window_end or 'now'}.")
    analysis = investigation.analysis
    if analysis is not None:
        lines.append(f"Root-cause analysis verdict: {analysis.verdict}. {analysis.message}")
        for cause in analysis.result.get("causes", [])[:5]:
            rate = ""
            if cause.get("rate_with") is not None and cause.get("rate_without") is not None:
                rate = f", defect rate {cause['rate_with']:.1%} with it against {cause['rate_without']:.1%} without"
            lines.append(
                f"  Cause {cause.get('rank')}: {cause.get('level')} {cause.get('name')}{rate}, "
                f"adjusted p {cause.get('p_adjusted')}."
            )
    suspects = investigation_suspects(investigation=investigation)
    lines.append(
        f"Suspect units: {suspects['counts']['in_plant']} still in the plant, {suspects['counts']['shipped']} "
        f"shipped, {suspects['counts']['failed']} already failed inspection; lots {', '.join(suspects['lots'][:10])}."
    )
    for containment in investigation.containment_actions.all():
        lines.append(f"Containment ({containment.status}): {containment.description}")
    for action in investigation.corrective_actions.select_related("assignee"):
        who = action.assignee.email if action.assignee else "unassigned"
        check = action.effectiveness.get("reason", "not checked yet")
        lines.append(
            f"Corrective action ({action.status}, {who}, due {action.due_date or 'not set'}): {action.description}. "
            f"Effectiveness: {check}."
        )
    return "\n".join(lines)


def parse_sections(text: str) -> dict[str, str]:
    """`D1: ...` blocks of the model's answer (labels may be bold or headed); missing ones are empty."""
    found: dict[str, str] = {}
    pattern = re.compile(r"^[\W_]*(D[1-8])\b[\s*#_]*[:.)\u2013-]?[\s*_]*", re.MULTILINE)
    matches = list(pattern.finditer(text))
    for i, match in enumerate(matches):
        end = matches[i + 1].start() if i + 1 < len(matches) else len(text)
        body = text[match.end() : end].strip().strip("*").strip()
        found.setdefault(match.group(1), body)
    return {k: found.get(k, "") for k in SECTIONS}


def report_draft(*, report_id: str, organization_id: str) -> Report8D:
    """One attempt at drafting; records the text, or why not and when to try again."""
    report = Report8D.objects.select_related(
        "investigation__defect_code__characteristic", "investigation__analysis"
    ).get(pk=report_id, organization_id=organization_id)
    if report.status != Report8D.Status.PENDING:
        return report
    model, attempts = _model(), report.attempts + 1
    try:
        text = model_ask(
            organization=Organization.objects.get(pk=organization_id),
            base_url=_base_url(),
            purpose=KEY_PURPOSE,
            key_name=KEY_NAME,
            model=model,
            messages=[
                {"role": "system", "content": SYSTEM_PROMPT},
                {"role": "user", "content": facts(report.investigation)},
            ],
            max_tokens=MAX_TOKENS,
            timeout=getattr(settings, "QUALITY_REPORT_TIMEOUT_S", 120),
        )
    except Exception as exc:
        if not isinstance(exc, ModelUnavailable):
            logger.exception("Drafting 8D report %s failed", report.pk)
            exc = ModelUnavailable(f"Internal error while asking the model: {type(exc).__name__}: {exc}")
        gave_up = attempts >= MAX_ATTEMPTS
        retry = getattr(settings, "QUALITY_REPORT_RETRY_SECONDS", 300) * min(2 ** (attempts - 1), 12)
        Report8D.objects.filter(pk=report.pk, status=Report8D.Status.PENDING).update(
            attempts=attempts,
            error=str(exc)[:2000],
            status=Report8D.Status.FAILED if gave_up else Report8D.Status.PENDING,
            retry_at=None if gave_up else timezone.now() + timedelta(seconds=retry),
            updated_at=timezone.now(),
        )
    else:
        sections = parse_sections(text)
        if not any(sections.values()):
            sections = {**sections, "D2": text}  # no labels: keep the text where a person can move it
        Report8D.objects.filter(pk=report.pk, status=Report8D.Status.PENDING).update(
            sections=sections,
            status=Report8D.Status.READY,
            error="",
            attempts=attempts,
            retry_at=None,
            model=model,
            updated_at=timezone.now(),
        )
    report.refresh_from_db()
    return report


def pending_reports(limit: int = 100) -> list[tuple[str, str]]:
    """(report id, organisation id) of drafts due for another try."""
    rows = (
        Report8D.objects.filter(status=Report8D.Status.PENDING, retry_at__lte=timezone.now())
        .order_by("retry_at")
        .values_list("pk", "organization_id")[:limit]
    )
    return [(str(pk), str(org)) for pk, org in rows]


def _notice(report: Report8D) -> str:
    if report.status == Report8D.Status.PENDING:
        when = f" It is retried at {report.retry_at:%Y-%m-%d %H:%M} UTC." if report.retry_at else ""
        why = f" No model answered: {report.error}" if report.error else " The draft is being written."
        return f"This report has no draft yet.{why}{when}"
    if report.status == Report8D.Status.FAILED:
        return f"No model answered after {report.attempts} attempts ({report.error}); write the report by hand."
    return ""


def report_markdown(report: Report8D) -> str:
    investigation = report.investigation
    out = [f"# 8D report: {investigation.title}", ""]
    out.append(
        f"Defect code {investigation.defect_code.code}; investigation opened {investigation.created_at:%Y-%m-%d}."
    )
    notice = _notice(report)
    if notice:
        out += ["", f"> {notice}"]
    elif report.model:
        out += [
            "",
            f"Drafted by the organisation's model {report.model}" + (", edited." if report.status == "edited" else "."),
        ]
    for key, title in SECTIONS.items():
        out += ["", f"## {key} {title}", "", report.sections.get(key, "") or "_(empty)_"]
    return "\n".join(out) + "\n"


def _font(pdf) -> tuple[str, bool]:
    """Add the first available Unicode font; (family, unicode?)."""
    for path, index in getattr(settings, "QUALITY_REPORT_FONTS", FONTS):
        if Path(path).exists():
            try:
                pdf.add_font("report", fname=path, collection_font_number=index)
            except Exception:
                logger.warning("The font %s could not be loaded for 8D PDFs", path, exc_info=True)
                continue
            return "report", True
    logger.warning("No Unicode font for 8D PDFs (install fonts-noto-cjk); non-Latin-1 text prints as '?'.")
    return "helvetica", False


def report_pdf(report: Report8D) -> bytes:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.add_page()
    family, unicode_ok = _font(pdf)

    def text(value: str) -> str:
        return value if unicode_ok else value.encode("latin-1", "replace").decode("latin-1")

    if not unicode_ok:
        pdf.set_font(family, size=8)
        pdf.multi_cell(0, 4, "No Unicode font was found on the server: characters outside Latin-1 print as '?'.")
    lines = report_markdown(report).splitlines()
    for line in lines:
        if line.startswith("# "):
            pdf.set_font(family, size=16)
            pdf.multi_cell(0, 9, text(line[2:]), new_x="LMARGIN", new_y="NEXT")
        elif line.startswith("## "):
            pdf.ln(2)
            pdf.set_font(family, size=13)
            pdf.multi_cell(0, 7, text(line[3:]), new_x="LMARGIN", new_y="NEXT")
        else:
            pdf.set_font(family, size=10)
            pdf.multi_cell(0, 5, text(line.lstrip("> ")) or " ", new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())
