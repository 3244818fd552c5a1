"""The supervised ranking on cases whose confirmed causes the test writes: it learns which evidence marks a real
cause where the unsupervised score misleads, never learns from a case's own label, and declines without enough
labelled history."""

import numpy as np

from automation.quality.engine import LabelledCase, causal_prior, rank_supervised, unit_case

PARENTS = {"pressure": ["pump"], "flow": ["pressure"], "temperature": [], "alarm": ["flow", "temperature"]}
PRIOR = causal_prior(names=["pump", "pressure", "flow", "temperature"], parents=PARENTS, defect_causes=["alarm"])


def _case(rng, truth: str) -> tuple:
    """Unsupervised scores where a downstream variable (`flow`) often outscores the real cause, but the real cause's
    state began long before the failure (held_share), which the labelled history can teach."""
    causes = []
    for name in ("pump", "pressure", "flow", "temperature"):
        score = rng.uniform(0.5, 2.0)
        before = rng.uniform(0.0, 5.0)
        if name == truth:
            before = rng.uniform(20.0, 30.0)
        if name == "flow":
            score += 2.0  # the downstream symptom shouts loudest
        causes.append({"name": name, "score": score, "mean_surprise": score, "before_failure_s": before, "parents": []})
    causes.sort(key=lambda c: -c["score"])
    return unit_case(causes, prior=PRIOR, window_s=30.0), causes


def test_it_learns_what_marks_a_cause_and_beats_the_unsupervised_order_on_held_out_cases():
    rng = np.random.default_rng(3)
    truths = ["pump", "pressure", "temperature"]
    history = []
    for i in range(30):
        case, _ = _case(rng, truths[i % 3])
        history.append(LabelledCase(case, frozenset({truths[i % 3]})))
    hits_supervised = hits_unsupervised = 0
    for i in range(30):
        truth = truths[i % 3]
        case, causes = _case(rng, truth)
        ranking = rank_supervised(history=history, case=case)
        assert ranking is not None and ranking.trained_on == 30
        assert sorted(ranking.names) == sorted(c["name"] for c in causes)
        assert list(ranking.probabilities) == sorted(ranking.probabilities, reverse=True)
        hits_supervised += ranking.names[0] == truth
        hits_unsupervised += causes[0]["name"] == truth
    assert hits_unsupervised == 0  # flow always outscores: the unsupervised order is wrong every time
    assert hits_supervised >= 27


def test_too_little_labelled_history_gives_no_model():
    rng = np.random.default_rng(1)
    history = [LabelledCase(_case(rng, "pump")[0], frozenset({"pump"})) for _ in range(4)]
    assert rank_supervised(history=history, case=_case(rng, "pump")[0]) is None
    # Labels that name no candidate of their case are not history.
    history += [LabelledCase(_case(rng, "pump")[0], frozenset({"elsewhere"})) for _ in range(3)]
    assert rank_supervised(history=history, case=_case(rng, "pump")[0]) is None


def test_a_training_case_does_not_see_its_own_label_in_the_history_rate():
    """Catches leakage: a cause confirmed only once must not look like a frequent cause to the case that holds it,
    or the model learns to copy labels (perfect on training, useless on new cases)."""
    rng = np.random.default_rng(5)
    history = []
    for i in range(12):
        case, _ = _case(rng, "pump")
        # Each case confirms a candidate nobody else ever confirmed, chosen without regard to the evidence.
        name = case[i % 4].name
        history.append(LabelledCase(case, frozenset({name})))
    case, _ = _case(rng, "pump")
    ranking = rank_supervised(history=history, case=case)
    assert ranking is not None
    # With no signal that generalises, the model stays unsure: no candidate is near certain.
    assert max(ranking.probabilities) < 0.9


def test_the_causal_prior_counts_hops_upstream_of_the_defect():
    assert (
        PRIOR["flow"]["prior_hops"] == 1 and PRIOR["pressure"]["prior_hops"] == 2 and PRIOR["pump"]["prior_hops"] == 3
    )
    assert PRIOR["pump"]["prior_root"] == 1 and PRIOR["pressure"]["prior_children"] == 1
