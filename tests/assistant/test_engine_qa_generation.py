"""The pure question-answer generator: extractive answers (verbatim spans of the passage), questions from the
sentence's subject or its section, record answers that state only the record's own values."""

from assistant.engine.qa_generation import PassageSource, RecordSource, chat_example, passage_pairs, record_pairs

MANUAL = (
    "The ram guide bushing is HX-4471-B. It must be greased every 200 hours. Check the oil level daily.\n"
    "The spindle torque must be 47 Nm at assembly. Hydraulic pressure should be 180 bar in normal operation."
)


def test_every_passage_answer_is_a_verbatim_span_with_a_question():
    pairs = passage_pairs(
        PassageSource(text=MANUAL, document_title="Press 4 manual", section="Lubrication"), max_pairs=9
    )
    assert [p.question for p in pairs] == [
        "What is the ram guide bushing?",
        "What does Press 4 manual say about Lubrication?",  # "It must ...": a pronoun, so the section asks
        "What must the spindle torque be?",
        "What should hydraulic pressure be?",
    ]
    for pair in pairs:
        assert MANUAL[pair.answer_start : pair.answer_end] == pair.answer
    # A sentence without a fact ("Check the oil level daily.") is not an answer.
    assert all("oil level" not in p.answer for p in pairs)


def test_max_pairs_and_no_fact_no_pair():
    assert len(passage_pairs(PassageSource(text=MANUAL, document_title="M"), max_pairs=2)) == 2
    assert passage_pairs(PassageSource(text="Keep the area clean. Wear gloves.", document_title="M")) == []


def test_record_answers_state_the_records_own_values_only():
    pairs = record_pairs(
        RecordSource(kind="asset", code="P-4", fields={"name": "Press 4", "type": "PRESS-200", "site": ""})
    )
    assert [(p.question, p.answer, p.fields) for p in pairs] == [
        ("What is asset P-4?", "Asset P-4 is Press 4.", ("name",)),
        ("Which asset type is P-4?", "Asset P-4 is of type PRESS-200.", ("type",)),
    ]  # no site: no pair about it
    assert record_pairs(RecordSource(kind="unknown", code="X", fields={"name": "y"})) == []


def test_chat_example_is_openais_format():
    example = chat_example(system_prompt="S", question="Q", answer="A")
    assert [m["role"] for m in example["messages"]] == ["system", "user", "assistant"]
