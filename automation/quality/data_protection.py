"""Quality's data for export and erasure (see `tenants.data_protection`): the process model, units and lots with
their genealogy, step records, inspections and analyses."""

from tenants.data_protection import register_section

from .models import (
    Analysis,
    Characteristic,
    DefectCode,
    InspectionResult,
    Lot,
    Machine,
    ProcessVariable,
    Station,
    StepRecord,
    Unit,
)


def register() -> None:
    # In erasure order: what refers to others first, so each DELETE is one statement rather than a cascade.
    register_section(
        "quality",
        app_label="quality",
        models=[
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
