"""Quality analytics core of Lightsout: pure Python, numpy and scipy, no Django.

* `spc`: control charts (I-MR, X-bar/R), the Western Electric / Nelson rules, capability (Cp, Cpk).
* `rca`: which station, machine, process variable or material lot is tied to a defect across many units, with
  evidence and multiple-testing-corrected significance, the routing order as causal prior.
* `supervised`: the same candidates re-ranked by a logistic regression trained on the tenant's labelled
  analyses (their confirmed causes), with the unsupervised evidence and the causal prior as features.
* `traces`: for one failed unit with recorded time series, which variable's state its causes do not explain.

Frozen dataclasses in and out; the Django layer maps rows to these and results back to rows.
"""

from automation.quality.engine.rca import Candidate, LineModel, RcaConfig, RcaResult, UnitRecord, holm, rank_line_causes
from automation.quality.engine.spc import (
    Capability,
    ControlChart,
    RuleViolation,
    capability,
    imr_chart,
    run_rules,
    xbar_r_chart,
)
from automation.quality.engine.supervised import (
    CandidateEvidence,
    LabelledCase,
    SupervisedRanking,
    causal_prior,
    line_case,
    rank_supervised,
    unit_case,
)
from automation.quality.engine.traces import TraceCause, TraceRanking, UnitTrace, rank_trace_causes

__all__ = [
    "Candidate",
    "CandidateEvidence",
    "Capability",
    "ControlChart",
    "LabelledCase",
    "LineModel",
    "RcaConfig",
    "RcaResult",
    "RuleViolation",
    "SupervisedRanking",
    "TraceCause",
    "TraceRanking",
    "UnitRecord",
    "UnitTrace",
    "capability",
    "causal_prior",
    "holm",
    "imr_chart",
    "line_case",
    "rank_line_causes",
    "rank_supervised",
    "rank_trace_causes",
    "run_rules",
    "unit_case",
    "xbar_r_chart",
]
