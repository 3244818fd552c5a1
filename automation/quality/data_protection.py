"""Quality's data for export and erasure (see `tenants.data_protection`): the process model, units and lots with
their genealogy, step records, inspections, analyses, alarms, investigations with their actions and 8D reports,
device keys and webhook endpoints with their deliveries."""

from tenants.data_protection import register_section

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
    Report8D,
    Station,
    StepRecord,
    Unit,
    WebhookDelivery,
    WebhookEndpoint,
)


def register() -> None:
    # In erasure order: what refers to others first, so each DELETE is one statement rather than a cascade.
    register_section(
        "quality",
        app_label="quality",
        models=[
            Report8D,
            ContainmentAction,
            CorrectiveAction,
            Investigation,
            Alarm,
            WebhookDelivery,
            WebhookEndpoint,
            IngestionKey,
            Analysis,
            InspectionResult,
            StepRecord,
            Unit,
            Lot,
            DefectCode,
            Characteristic,
            ProcessVariable,
            Machine,
            Station,
        ],
    )
