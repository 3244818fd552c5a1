"""Tool choice's pure parts: code resolution (exact, fuzzy within the same digits, names, Korean particles),
imperatives, and the check that prose invents no figure."""

from assistant.engine.choosing import has_imperative, resolve_codes
from assistant.prose import prose_check, template_sentence

RECORDS = {
    "asset": [("PRESS-4", "PRESS-4"), ("Press 4", "PRESS-4"), ("PRESS-7", "PRESS-7")],
    "machine": [("CNC-2", "CNC-2")],
    "order": [("ORD-1001", "ORD-1001")],
}
IMPERATIVES = ("open", "start", "re-plan", "best plan", "열어", "starte")


def test_codes_resolve_exactly_by_code_or_name_and_through_particles():
    for question in ("health of PRESS-4?", "health of press 4?", "health of Press-4", "PRESS-4의 잔여 수명"):
        assert resolve_codes(question, RECORDS).codes("asset") == ["PRESS-4"], question
    both = resolve_codes("Re-plan ORD-1001 with CNC-2 down", RECORDS)
    assert both.codes("order") == ["ORD-1001"] and both.codes("machine") == ["CNC-2"] and both.unresolved == []


def test_fuzzy_tolerates_letters_never_digits():
    typo = resolve_codes("health of PRES-4", RECORDS, fuzzy_kinds=["asset"])
    assert typo.codes("asset") == ["PRESS-4"] and not typo.matches["asset"][0].exact
    other = resolve_codes("health of PRESS-5", RECORDS, fuzzy_kinds=["asset"])
    assert other.codes("asset") == [] and other.unresolved == ["PRESS-5"]
    assert resolve_codes("health of PRESS-4", RECORDS).codes("asset") == ["PRESS-4"]


def test_imperatives():
    assert has_imperative("Open a work order for PRESS-4", IMPERATIVES)
    assert has_imperative("Please start a run", IMPERATIVES)
    assert has_imperative("Given the breakdown, what is the best plan?", IMPERATIVES)
    assert has_imperative("PRESS-4 작업 지시를 열어 주세요", IMPERATIVES)
    assert not has_imperative("Which work orders are open?", IMPERATIVES)
    assert not has_imperative("When does order ORD-1001 start?", IMPERATIVES)


def test_prose_check_finds_invented_figures():
    facts = [{"name": "PRESS-4 health score", "value": 38.5, "unit": "of 100"}, {"name": "rul", "value": 120.0}]
    assert prose_check("PRESS-4 scores 38.5 of 100 and has 120 cycles left.", facts=facts, question="") == []
    assert prose_check("PRESS-4 has 90 cycles left.", facts=facts, question="") == ["90"]
    assert prose_check("Within 2 days.", facts=facts, question="in 2 days?") == []
    sentence = template_sentence("Health score of an asset: details.", facts)
    assert sentence.startswith("Health score of an asset.") and "38.5" in sentence and "120.0" in sentence
