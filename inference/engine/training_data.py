"""Validation of chat fine-tuning files in OpenAI's JSONL format, and reading them for training.

A tenant uploading a file wants every problem at once, with the line it is on, not one error per upload round
trip; so validation collects errors (up to a cap) instead of raising on the first.

Rules (a subset of OpenAI's, plus what our loss masking needs):
- one JSON object per line; blank lines are skipped (an editor's trailing newline is not an error);
- `messages`: a non-empty list of {"role": "system" | "user" | "assistant", "content": non-empty string};
  an optional `weight` (0 or 1) is allowed on assistant messages only; other keys are rejected so a typo such
  as "contnet" does not silently train on nothing;
- a user message comes before the first assistant message, and the last message is from the assistant (that is the
  reply being taught);
- at least one assistant message has weight 1 (otherwise the example teaches nothing);
- top-level keys other than `messages` are ignored (OpenAI files may carry e.g. `tools`, which we do not train on;
  they are reported as warnings, not errors).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, cast

from inference.engine.chat_tokens import ChatTemplateError, tokenize_chat

ALLOWED_ROLES = ("system", "user", "assistant")
ALLOWED_MESSAGE_KEYS = frozenset({"role", "content", "weight", "name"})


@dataclass(frozen=True)
class TrainingDataLimits:
    max_bytes: int = 512 * 1024 * 1024
    max_tokens_per_example: int = 2048
    max_total_tokens: int = 50_000_000
    min_examples: int = 10
    max_errors: int = 50  # stop listing after this many; the file is already rejected


@dataclass(frozen=True)
class DataIssue:
    code: str
    message: str
    line: int | None = None  # 1-based; None for problems with the file as a whole

    def __str__(self) -> str:
        where = f"line {self.line}: " if self.line is not None else ""
        return f"{where}{self.message}"


@dataclass
class TrainingFileReport:
    """The verdict on one file; `ok` only when there is no error at all."""

    examples: int = 0
    total_tokens: int = 0
    trainable_tokens: int = 0
    max_example_tokens: int = 0
    bytes: int = 0
    sha256: str = ""
    errors: list[DataIssue] = field(default_factory=list)
    warnings: list[DataIssue] = field(default_factory=list)
    errors_truncated: bool = False  # True when more errors existed than `max_errors`

    @property
    def ok(self) -> bool:
        return not self.errors

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["ok"] = self.ok
        return data


class TrainingDataError(ValueError):
    """A training file that fails validation, raised by `read_chat_examples` (used once the file was validated)."""

    def __init__(self, issues: list[DataIssue]) -> None:
        super().__init__("; ".join(str(issue) for issue in issues[:5]))
        self.issues = issues


def _message_issues(messages: Any) -> list[tuple[str, str]]:
    """Structural problems of one example's `messages`, as (code, message) pairs."""
    if not isinstance(messages, list):
        return [("messages_not_list", f"`messages` must be a list, got {type(messages).__name__}")]
    if not messages:
        return [("empty_messages", "`messages` is empty")]
    problems: list[tuple[str, str]] = []
    for index, message in enumerate(messages):
        where = f"messages[{index}]"
        if not isinstance(message, dict):
            problems.append(("bad_message", f"{where} must be an object, got {type(message).__name__}"))
            continue
        role = message.get("role")
        if role not in ALLOWED_ROLES:
            problems.append(("bad_role", f"{where}.role is {role!r}; expected one of {', '.join(ALLOWED_ROLES)}"))
        content = message.get("content")
        if "content" not in message:
            problems.append(("missing_content", f"{where} has no `content`"))
        elif not isinstance(content, str):
            problems.append(("bad_content", f"{where}.content must be a string, got {type(content).__name__}"))
        elif not content.strip():
            problems.append(("empty_content", f"{where}.content is empty"))
        unknown = sorted(set(message) - ALLOWED_MESSAGE_KEYS)
        if unknown:
            problems.append(("unknown_key", f"{where} has unknown key(s) {', '.join(unknown)}"))
        if "weight" in message:
            if role != "assistant":
                problems.append(("bad_weight", f"{where}.weight is only allowed on assistant messages"))
            elif message["weight"] not in (0, 1) or isinstance(message["weight"], bool):
                problems.append(("bad_weight", f"{where}.weight must be 0 or 1, got {message['weight']!r}"))
    if problems:
        return problems
    roles = [message["role"] for message in messages]
    if "assistant" not in roles:
        return [("no_assistant", "no assistant message: there is no reply to learn")]
    first_assistant = roles.index("assistant")
    if "user" not in roles[:first_assistant]:
        problems.append(("no_user_before_assistant", "the first assistant message must follow a user message"))
    if roles[-1] != "assistant":
        problems.append(("last_not_assistant", f"the last message must be from the assistant, not {roles[-1]!r}"))
    if all(m.get("weight", 1) == 0 for m in messages if m["role"] == "assistant"):
        problems.append(("no_trainable_assistant", "every assistant message has weight 0: nothing to learn"))
    return problems


def validate_training_file(*, path: Path, tokenizer: Any, limits: TrainingDataLimits) -> TrainingFileReport:
    """Check a chat JSONL file against the format rules and `limits`; never raises for bad content.

    Token counts use the base model's tokenizer and chat template, exactly as training will see the examples.
    """
    path = Path(path)
    report = TrainingFileReport()

    def error(code: str, message: str, line: int | None = None) -> None:
        if len(report.errors) >= limits.max_errors:
            report.errors_truncated = True
            return
        report.errors.append(DataIssue(code=code, message=message, line=line))

    try:
        report.bytes = path.stat().st_size
    except FileNotFoundError:
        error("file_missing", f"{path} does not exist")
        return report
    if report.bytes > limits.max_bytes:
        # Checked before reading anything: an oversized upload must not cost a full scan.
        error("file_too_large", f"file is {report.bytes} bytes; the limit is {limits.max_bytes}")
        return report

    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for line_number, raw in enumerate(handle, start=1):
            digest.update(raw)
            if report.errors_truncated:
                continue  # keep hashing, stop judging
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                error("bad_encoding", f"not valid UTF-8 ({exc.reason} at byte {exc.start})", line_number)
                continue
            if not text.strip():
                continue
            try:
                record = json.loads(text)
            except json.JSONDecodeError as exc:
                error("invalid_json", f"invalid JSON: {exc.msg} (column {exc.colno})", line_number)
                continue
            if not isinstance(record, dict):
                error("not_an_object", f"each line must be a JSON object, got {type(record).__name__}", line_number)
                continue
            if "messages" not in record:
                error("missing_messages", "no `messages` key", line_number)
                continue
            extra_keys = sorted(set(record) - {"messages"})
            if extra_keys and len(report.warnings) < limits.max_errors:
                report.warnings.append(
                    DataIssue("ignored_keys", f"key(s) {', '.join(extra_keys)} are ignored in training", line_number)
                )
            problems = _message_issues(record["messages"])
            for code, message in problems:
                error(code, message, line_number)
            if problems:
                continue
            try:
                tokens = tokenize_chat(tokenizer=tokenizer, messages=record["messages"])
            except ChatTemplateError as exc:
                error("template_error", str(exc), line_number)
                continue
            if tokens.n_tokens > limits.max_tokens_per_example:
                error(
                    "too_many_tokens",
                    f"example has {tokens.n_tokens} tokens; the limit per example is {limits.max_tokens_per_example}",
                    line_number,
                )
                continue
            report.examples += 1
            report.total_tokens += tokens.n_tokens
            report.trainable_tokens += tokens.n_trainable
            report.max_example_tokens = max(report.max_example_tokens, tokens.n_tokens)
    report.sha256 = digest.hexdigest()

    if report.total_tokens > limits.max_total_tokens:
        error("too_many_total_tokens", f"file has {report.total_tokens} tokens; the limit is {limits.max_total_tokens}")
    if report.examples < limits.min_examples:
        error("too_few_examples", f"{report.examples} valid example(s); at least {limits.min_examples} are needed")
    return report


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_chat_examples(path: Path) -> list[list[dict[str, Any]]]:
    """The `messages` of every example in a file; raises TrainingDataError listing the structural problems.

    Training calls this on files that already passed `validate_training_file`; the check here is a guard against a
    file changed or never validated, not a replacement for validation.
    """
    examples: list[list[dict[str, Any]]] = []
    issues: list[DataIssue] = []
    with open(path, encoding="utf-8") as handle:
        for line_number, text in enumerate(handle, start=1):
            if not text.strip():
                continue
            try:
                record = json.loads(text)
            except json.JSONDecodeError as exc:
                issues.append(DataIssue("invalid_json", f"invalid JSON: {exc.msg}", line_number))
                continue
            messages = record.get("messages") if isinstance(record, dict) else None
            problems = _message_issues(messages)
            issues += [DataIssue(code, message, line_number) for code, message in problems]
            if not problems:
                examples.append(cast(list[dict[str, Any]], messages))  # no problems: a list of message objects
    if issues:
        raise TrainingDataError(issues)
    return examples
