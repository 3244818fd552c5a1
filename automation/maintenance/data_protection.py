"""Maintenance's data for export and erasure (see `tenants.data_protection`), and the `telemetry` retention kind.

Secrets are derived from a per-row salt and SECRET_KEY, so the salts are not exported (with SECRET_KEY they would
sign); trained models' pickled artefacts are binary columns and are left out too (they are rebuilt by training).
"""

from django.utils.translation import gettext_lazy as _

from tenants.data_protection import register_retention, register_section, stored_files_remove_on_commit

from .models import (
    Anomaly,
    Asset,
    AssetEvent,
    AssetHealth,
    AssetType,
    Channel,
    IngestionKey,
    MachineKinematics,
    Recommendation,
    Telemetry,
    TrainedModel,
    VibrationCapture,
    VibrationDiagnosis,
    VibrationModel,
    WebhookDelivery,
    WebhookEndpoint,
    WorkOrder,
)


def _purge_telemetry(organization, cutoff) -> int:
    deleted, _ = Telemetry.objects.filter(organization=organization, ts__lt=cutoff).delete()
    return deleted


def _waveforms(organization):
    for capture in VibrationCapture.objects.filter(organization=organization).only("id", "waveform"):
        yield f"captures/{capture.pk}.npz", capture.waveform


def _remove_waveforms(organization) -> None:
    captures = VibrationCapture.objects.filter(organization=organization).only("id", "waveform")
    stored_files_remove_on_commit(capture.waveform for capture in captures)


def _purge_captures(organization, cutoff) -> int:
    from .vibration import captures_expire

    return captures_expire(organization=organization, older_than=cutoff)


def register() -> None:
    register_section(
        "maintenance",
        app_label="maintenance",
        models=[
            WorkOrder,
            Recommendation,
            Anomaly,
            AssetHealth,
            AssetEvent,
            IngestionKey,
            WebhookDelivery,
            WebhookEndpoint,
            TrainedModel,
            Asset,
            Channel,
            AssetType,
        ],
        exclude_fields=["salt"],
    )
    # Registered after the assets, so erased before them: one DELETE rather than a cascade through every asset.
    register_section("telemetry", app_label="maintenance", models=[Telemetry])
    # Before the assets they belong to; the waveforms live in Django's storage and go with the rows.
    register_section(
        "vibration",
        app_label="maintenance",
        models=[VibrationDiagnosis, VibrationCapture, VibrationModel, MachineKinematics],
        files=_waveforms,
        before_erase=_remove_waveforms,
    )
    register_retention(
        "captures",
        label=_("Vibration captures"),
        default_days=365,
        purge=_purge_captures,
        app_label="maintenance",
    )
    register_retention(
        "telemetry",
        label=_("Telemetry readings"),
        default_days=365,
        purge=_purge_telemetry,
        app_label="maintenance",
    )
