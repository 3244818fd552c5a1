"""Validation of chat fine-tuning files: every error with its line, limits, and exact token statistics."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from inference.engine.chat_tokens import tokenize_chat
from inference.engine.training_data import (
    TrainingDataError,
    TrainingDataLimits,
    read_chat_examples,
    validate_training_file,
)


def example(question: str, answer: str, *, system: str | None = None) -> dict[str, Any]:
    messages = [{"role": "system", "content": system}] if system else []
    return {"messages": [*messages, {"role": "user", "content": question}, {"role": "assistant", "content": answer}]}


GOOD = example("What is the spindle torque?", "47 Nm.")
LOOSE_LIMITS = TrainingDataLimits(max_bytes=1_000_000, max_tokens_per_example=200, max_total_tokens=100_000,
                                  min_examples=1)  # fmt: skip


def test_each_kind_of_error_is_reported_with_its_line_number(tmp_path: Path, base_tokenizer: Any) -> None:
    """Catches: validation stopping at the first error, wrong line numbers (0-based, or off after a blank line),
    and any rule of the format silently not enforced."""
    lines = [
        json.dumps(GOOD),  # 1
        '{"messages": [',  # 2 invalid JSON
        "[1, 2]",  # 3 not an object
        json.dumps({"prompt": "x", "completion": "y"}),  # 4 no messages
        json.dumps({"messages": [{"role": "robot", "content": "x"}, {"role": "assistant", "content": "y"}]}),  # 5
        json.dumps({"messages": [{"role": "user", "content": "  "}, {"role": "assistant", "content": "y"}]}),  # 6
        json.dumps({"messages": [{"role": "user", "content": "only a question"}]}),  # 7
        json.dumps({"messages": [*GOOD["messages"], {"role": "user", "content": "and?"}]}),  # 8
        json.dumps(example("Tell me everything. " * 100, "ok")),  # 9 over 200 tokens
        json.dumps(
            {
                "messages": [
                    {"role": "user", "content": "q", "weight": 1},
                    {"role": "assistant", "content": "a", "weight": 2},
                ]
            }
        ),  # 10 fmt: skip
        "",  # 11 blank: skipped, not an error
        json.dumps({"messages": "hello"}),  # 12
        json.dumps({"messages": [{"role": "user", "contnet": "typo"}, {"role": "assistant", "content": "a"}]}),  # 13
        json.dumps(
            {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a", "weight": 0}]}
        ),  # 14 fmt: skip
        json.dumps(GOOD),  # 15
    ]
    path = tmp_path / "train.jsonl"
    path.write_text("\n".join(lines) + "\n")

    report = validate_training_file(
        path=path, tokenizer=base_tokenizer, limits=TrainingDataLimits(max_tokens_per_example=200, min_examples=5)
    )

    found = {(issue.line, issue.code) for issue in report.errors}
    assert found == {
        (2, "invalid_json"),
        (3, "not_an_object"),
        (4, "missing_messages"),
        (5, "bad_role"),
        (6, "empty_content"),
        (7, "no_assistant"),
        (8, "last_not_assistant"),
        (9, "too_many_tokens"),
        (10, "bad_weight"),  # weight on a user message
        (12, "messages_not_list"),
        (13, "missing_content"),
        (13, "unknown_key"),
        (14, "no_trainable_assistant"),
        (None, "too_few_examples"),  # only lines 1 and 15 are valid
    }
    assert sum(1 for issue in report.errors if issue.line == 10) == 2  # both weight problems on line 10
    assert not report.ok
    assert report.examples == 2
    too_long = next(issue for issue in report.errors if issue.code == "too_many_tokens")
    assert "limit per example is 200" in too_long.message and str(too_long).startswith("line 9: ")


def test_a_good_file_gives_exact_statistics(tmp_path: Path, base_tokenizer: Any, write_jsonl: Any) -> None:
    """Catches: token counts that differ from what the chat template really produces (the number shown to the tenant
    and billed), and trainable-token counts that include prompt tokens."""
    records = [example(f"Question number {i}?", f"Answer {i}.", system="Be brief." if i % 2 else None)
               for i in range(12)]  # fmt: skip
    path = write_jsonl(tmp_path / "good.jsonl", records)

    report = validate_training_file(path=path, tokenizer=base_tokenizer, limits=LOOSE_LIMITS)

    assert report.ok, report.errors
    expected_tokens = [
        len(base_tokenizer.apply_chat_template(record["messages"], tokenize=True)["input_ids"]) for record in records
    ]
    assert report.examples == 12
    assert report.total_tokens == sum(expected_tokens)
    assert report.max_example_tokens == max(expected_tokens)
    # Trainable tokens are exactly each answer plus its end-of-turn marker and newline.
    expected_trainable = sum(
        len(base_tokenizer(f"Answer {i}.<|im_end|>\n", add_special_tokens=False)["input_ids"]) for i in range(12)
    )
    assert report.trainable_tokens == expected_trainable
    assert len(report.sha256) == 64 and report.bytes == path.stat().st_size


def test_file_over_the_byte_limit_is_rejected_without_reading_it(
    tmp_path: Path, base_tokenizer: Any, write_jsonl: Any
) -> None:
    """Catches: an oversized upload being parsed line by line (slow) or reported as many line errors."""
    path = write_jsonl(tmp_path / "big.jsonl", [GOOD] * 50)
    report = validate_training_file(
        path=path, tokenizer=base_tokenizer, limits=TrainingDataLimits(max_bytes=100, min_examples=1)
    )
    assert [(issue.line, issue.code) for issue in report.errors] == [(None, "file_too_large")]
    assert report.examples == 0


def test_total_token_limit_applies_to_the_whole_file(tmp_path: Path, base_tokenizer: Any, write_jsonl: Any) -> None:
    """Catches: the per-file token budget (what bounds a training's cost) not being enforced."""
    path = write_jsonl(tmp_path / "many.jsonl", [GOOD] * 10)
    report = validate_training_file(
        path=path,
        tokenizer=base_tokenizer,
        limits=TrainingDataLimits(max_total_tokens=100, min_examples=1, max_tokens_per_example=200),
    )
    assert [issue.code for issue in report.errors] == ["too_many_total_tokens"]
    assert report.total_tokens > 100


def test_error_list_is_capped_but_flags_that_more_exist(tmp_path: Path, base_tokenizer: Any) -> None:
    """Catches: a huge broken file producing an unbounded error list (memory, response size)."""
    path = tmp_path / "broken.jsonl"
    path.write_text("not json\n" * 200)
    report = validate_training_file(
        path=path, tokenizer=base_tokenizer, limits=TrainingDataLimits(max_errors=5, min_examples=1)
    )
    assert len(report.errors) == 5 and report.errors_truncated
    assert [issue.line for issue in report.errors] == [1, 2, 3, 4, 5]


def test_weight_zero_turns_are_context_not_targets(base_tokenizer: Any) -> None:
    """Catches: the loss mask training on assistant turns that the file marked weight 0."""
    messages: list[dict[str, Any]] = [
        {"role": "user", "content": "First?"},
        {"role": "assistant", "content": "Wrong answer.", "weight": 0},
        {"role": "user", "content": "Try again?"},
        {"role": "assistant", "content": "Right answer."},
    ]
    chat = tokenize_chat(tokenizer=base_tokenizer, messages=messages)
    trained_text = base_tokenizer.decode([t for t, keep in zip(chat.input_ids, chat.trainable, strict=True) if keep])
    assert trained_text == "Right answer.<|im_end|>\n"


def test_reading_for_training_refuses_a_file_that_does_not_validate(tmp_path: Path) -> None:
    """Catches: training starting on an unvalidated or since-modified file and failing midway, or training on a
    silently skipped subset."""
    path = tmp_path / "mixed.jsonl"
    path.write_text(json.dumps(GOOD) + "\n" + '{"messages": [}\n')
    with pytest.raises(TrainingDataError) as caught:
        read_chat_examples(path)
    assert [(issue.line, issue.code) for issue in caught.value.issues] == [(2, "invalid_json")]
