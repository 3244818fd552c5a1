"""The managed vLLM CPU server and its admin client, against a real server."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from inference.engine.vllm_server import (
    VllmAdminClient,
    VllmApiError,
    VllmServer,
    VllmServerError,
    VllmUnavailableError,
    free_local_port,
    parse_lora_metrics,
)


def test_server_lists_the_base_model_and_answers_chat(vllm_server: VllmServer, vllm_admin: VllmAdminClient) -> None:
    """Catches: wrong served name or flags (max_model_len), and a server reported ready before it can answer."""
    assert vllm_admin.health()
    [base] = [model for model in vllm_admin.models() if model["id"] == vllm_server.served_name]
    assert base["max_model_len"] == 2048
    reply = vllm_admin.chat(
        model=vllm_server.served_name, messages=[{"role": "user", "content": "Say hello."}], max_tokens=8
    )
    assert reply["choices"][0]["message"]["content"].strip()
    assert 0 < reply["usage"]["completion_tokens"] <= 8


def test_loading_a_missing_adapter_raises_a_typed_error_with_upstream_status(
    vllm_admin: VllmAdminClient, tmp_path: Path
) -> None:
    """Catches: vLLM errors surfacing as generic exceptions (or being swallowed) so placement cannot tell a bad
    adapter (4xx: do not retry) from a sick server."""
    with pytest.raises(VllmApiError) as caught:
        vllm_admin.load_lora("ghost", tmp_path / "does-not-exist")
    assert caught.value.status_code == 404
    assert caught.value.path == "/v1/load_lora_adapter"
    assert caught.value.message and "ghost" not in vllm_admin.model_ids()


def test_lora_metrics_are_read_from_the_metrics_endpoint(vllm_server: VllmServer, vllm_admin: VllmAdminClient) -> None:
    """Catches: the lora_requests_info gauge no longer being found or parsed (capacity dashboards go blank)."""
    metrics = vllm_admin.lora_metrics()
    assert metrics is not None
    assert metrics.max_lora == vllm_server.max_loras


def test_lora_metrics_parser_takes_the_newest_label_set() -> None:
    """Catches: reporting a stale adapter set: vLLM keeps every label set it ever used, the newest value wins."""
    text = "\n".join(
        [
            "# HELP vllm:lora_requests_info Running stats on lora requests.",
            "# TYPE vllm:lora_requests_info gauge",
            'vllm:lora_requests_info{max_lora="4",running_lora_adapters="",waiting_lora_adapters=""} 1.7e9',
            'vllm:lora_requests_info{max_lora="4",running_lora_adapters="t1,t2",waiting_lora_adapters="t3"} 1.9e9',
            'vllm:lora_requests_info{max_lora="4",running_lora_adapters="t1",waiting_lora_adapters=""} 1.8e9',
            'vllm:num_requests_running{model_name="m"} 3.0',
        ]
    )
    metrics = parse_lora_metrics(text)
    assert metrics is not None
    assert (metrics.max_lora, metrics.running_adapters, metrics.waiting_adapters) == (4, ["t1", "t2"], ["t3"])
    assert parse_lora_metrics("vllm:num_requests_running 1.0") is None


def test_unreachable_server_is_a_distinct_error() -> None:
    """Catches: a dead server being reported as an API error (or healthy), which would stop failover."""
    with VllmAdminClient(f"http://127.0.0.1:{free_local_port()}", timeout_s=2) as client:
        assert client.health() is False
        with pytest.raises(VllmUnavailableError):
            client.models()


def test_a_server_that_dies_during_startup_fails_fast_and_leaves_no_process(tmp_path: Path) -> None:
    """Catches: wait_ready waiting out its whole timeout for a process that already exited, and stop() leaving
    orphans of the process group behind."""
    (tmp_path / "not-a-model").mkdir()
    server = VllmServer(model_dir=tmp_path / "not-a-model", served_name="broken", log_path=tmp_path / "vllm.log")
    server.start()
    pid = server.pid
    assert pid is not None
    try:
        with pytest.raises(VllmServerError, match="exited with code"):
            server.wait_ready(timeout_s=240)
    finally:
        server.stop()
    with pytest.raises(ProcessLookupError):
        os.killpg(pid, 0)
