"""Predictive-maintenance core of Lightsout: pure Python, no Django.

The Django control plane stores telemetry and failures, then calls into this
package to train a remaining-useful-life (RUL) model per organisation and asset
type, to score assets, to detect anomalies and to turn all of that into a
health score and a maintenance recommendation. Everything here works on pandas
DataFrames (one per asset, indexed by cycle or time, one column per channel)
and returns plain frozen dataclasses, so the Django layer only has to map
rows to frames and results to models.

Trained artefacts (``RulModel``, ``HealthyBaseline``) serialise to ``bytes``
for storage in a database field. Unpickling runs code, so only load bytes this
package produced and the product stored itself; never bytes from a tenant.
"""

from automation.maintenance.engine.anomaly import (
    MULTIVARIATE,
    Anomaly,
    HealthyBaseline,
    detect_anomalies,
    fit_healthy_baseline,
)
from automation.maintenance.engine.cmapss import (
    CmapssFormatError,
    parse_cmapss,
    read_cmapss,
)
from automation.maintenance.engine.features import (
    FeatureBuilder,
    FeatureConfig,
    fit_feature_builder,
)
from automation.maintenance.engine.health import (
    DEFAULT_COMPONENT_KEYWORDS,
    Recommendation,
    health_score,
    recommend,
    resolve_component,
)
from automation.maintenance.engine.kinematics import (
    BEARING_CATALOGUE,
    ISO_ZONE_LIMITS,
    BearingGeometry,
    FaultFrequency,
    Kinematics,
    KinematicsError,
    bearing_geometry,
    characteristic_frequencies,
    kinematics_from_dict,
)
from automation.maintenance.engine.rul import (
    Driver,
    RulConfig,
    RulModel,
    RulPrediction,
    TrainingSummary,
    train_rul_model,
)
from automation.maintenance.engine.serialization import ModelFormatError
from automation.maintenance.engine.vibration import (
    Analysis,
    Diagnosis,
    Evidence,
    Indicators,
    Spectrum,
    analyse_capture,
    envelope_spectrum,
    iso_zone,
    kurtogram_band,
    order_spectrum,
    spectrum,
)

__all__ = [
    "BEARING_CATALOGUE",
    "DEFAULT_COMPONENT_KEYWORDS",
    "ISO_ZONE_LIMITS",
    "MULTIVARIATE",
    "Analysis",
    "Anomaly",
    "BearingGeometry",
    "CmapssFormatError",
    "Diagnosis",
    "Driver",
    "Evidence",
    "FaultFrequency",
    "FeatureBuilder",
    "FeatureConfig",
    "HealthyBaseline",
    "Indicators",
    "Kinematics",
    "KinematicsError",
    "ModelFormatError",
    "Recommendation",
    "RulConfig",
    "RulModel",
    "RulPrediction",
    "Spectrum",
    "TrainingSummary",
    "analyse_capture",
    "bearing_geometry",
    "characteristic_frequencies",
    "detect_anomalies",
    "envelope_spectrum",
    "fit_feature_builder",
    "fit_healthy_baseline",
    "health_score",
    "iso_zone",
    "kinematics_from_dict",
    "kurtogram_band",
    "order_spectrum",
    "parse_cmapss",
    "read_cmapss",
    "recommend",
    "resolve_component",
    "spectrum",
    "train_rul_model",
]
