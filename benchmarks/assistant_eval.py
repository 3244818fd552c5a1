"""The copilot's evaluation set (`assistant/eval/questions.jsonl`: 80 questions over the demo factory, 20 each for
maintenance, scheduling, quality and traceability, documents; English with some Korean and German) run through the
conversations API over HTTP.

Protocol: a freshly migrated database (test settings, embedded PostgreSQL and Redis); one organisation seeded with
the demo factory (`assistant.demo`, the same as `manage.py seed_demo_factory`) and an API key with every scope; the
real ASGI application under uvicorn (one worker). Each question gets a new conversation and is posted to
`.../assistant/conversations/{id}/messages` with `Accept: text/event-stream`; the client reads the events as they
arrive. Reported, overall and per domain:

- tool choice: the chosen tool is the one the question needs (or none, for a question no tool covers);
- outcome: answered, proposed (write tools) or refused, as expected; a question the data cannot answer must be
  refused (a missed refusal is a failure) and an answerable one must not be;
- fact accuracy: every expected fact (a figure or identifier, `{run}` standing for the seeded plan) appears in the
  answer's structured facts or prose, and no figure in the prose is missing from the facts and the question
  (`assistant.prose.prose_check`: "no invented figure");
- citation validity: every citation's URL answers 200 to the same key;
- the peer, side by side: dense retrieval alone over the same tool descriptions and examples (the usual tool
  retriever), scored on the same questions;
- time to first token: from sending the question to the first prose event (`token` from the model, or
  `prose_replaced` when the template answers), and to the `facts` event; median and p95 over one-tool questions.

The prose is the bundled model's when a gateway with it is given (`--gateway URL`, e.g. a `make run`, whose vLLM
serves smollm2-135m-instruct); without one the gateway of this run has no model registered, so every answer's prose
is the template sentence and the time to first token is the tool loop's alone. Say which when quoting the figures.

    .venv/bin/python -m benchmarks assistant_eval -- --out benchmarks/results/assistant_eval.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
QUESTIONS = REPO_ROOT / "assistant" / "eval" / "questions.jsonl"
EMBEDDED_DIR = ".cache/embedded-bench-assistant"
FLOORS = {"tool_choice": 0.95, "fact_accuracy": 0.95, "first_token_p50_s": 1.5}


def _events(response) -> list[tuple[str, dict, float]]:
    """(event, data, seconds since the request) for each server-sent event, as they arrive."""
    out, started, buffer = [], time.monotonic(), ""
    for chunk in response.iter_text():
        buffer += chunk
        while "\n\n" in buffer:
            block, buffer = buffer.split("\n\n", 1)
            event, data = "message", ""
            for line in block.split("\n"):
                if line.startswith("event:"):
                    event = line[6:].strip()
                elif line.startswith("data:"):
                    data += line[5:].strip()
            out.append((event, json.loads(data) if data else {}, time.monotonic() - started))
    return out


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def evaluate(base: str, key: str, org_slug: str, seeded: dict, questions: list[dict]) -> dict:
    import httpx

    from assistant.prose import prose_check

    headers = {"Authorization": f"Bearer {key}"}
    api = f"{base}/api/v1/orgs/{org_slug}/assistant"
    rows = []
    with httpx.Client(timeout=120, headers=headers) as client:
        for item in questions:
            conversation = client.post(f"{api}/conversations", json={}).json()["id"]
            sent = time.monotonic()
            with client.stream(
                "POST",
                f"{api}/conversations/{conversation}/messages",
                json={"content": item["question"]},
                headers={"Accept": "text/event-stream"},
            ) as response:
                events = _events(response)
            total = time.monotonic() - sent
            times: dict[str, float] = {}
            for event, _, at in events:
                times.setdefault(event, at)
            done = next((data["message"] for event, data, _ in events if event == "done"), None)
            if done is None:
                rows.append({**item, "error": "no done event", "events": [e for e, _, _ in events]})
                continue
            expected_tool = item["tool"]
            tool_ok = (done["tool"] or None) == expected_tool or (
                expected_tool is None and done["outcome"] == "refused"
            )
            outcome_ok = done["outcome"] == item["outcome"]
            haystack = json.dumps(done["facts"], ensure_ascii=False) + "\n" + done["content"]
            for proposal in done.get("proposals", []):
                haystack += "\n" + json.dumps(proposal["arguments"], ensure_ascii=False) + proposal["summary"]
            wanted = [f.replace("{run}", seeded["scheduling"]["run"]) for f in item["facts"]]
            missing = [f for f in wanted if f not in haystack]
            invented = prose_check(done["content"], facts=done["facts"], question=item["question"])
            citations_ok = all(
                client.get(c["url"] if c["url"].startswith("http") else base + c["url"]).status_code == 200
                for c in done["citations"]
            )
            first_prose = min((times[e] for e in ("token", "prose_replaced") if e in times), default=None)
            rows.append(
                {
                    **item,
                    "chosen": done["tool"] or None,
                    "got_outcome": done["outcome"],
                    "tool_ok": tool_ok,
                    "outcome_ok": outcome_ok,
                    "missing": missing,
                    "invented": invented,
                    "citations": len(done["citations"]),
                    "citations_ok": citations_ok,
                    "prose_source": done["prose_source"],
                    "first_prose_s": first_prose,
                    "facts_s": times.get("facts"),
                    "total_s": total,
                    "content": done["content"][:300],
                }
            )
    return summarise(rows)


def summarise(rows: list[dict]) -> dict:
    def rate(items: list[dict], key: str) -> float:
        return sum(1 for r in items if r.get(key)) / max(1, len(items))

    by_domain: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        by_domain[row["domain"]].append(row)
    answered = [r for r in rows if r["outcome"] == "answered" and "error" not in r]
    for row in rows:
        row["facts_ok"] = "error" not in row and not row.get("missing") and not row.get("invented")
    refusals = [r for r in rows if r["outcome"] == "refused"]
    prose_times = [r["first_prose_s"] for r in answered if r.get("first_prose_s") is not None]
    facts_times = [r["facts_s"] for r in answered if r.get("facts_s") is not None]
    summary = {
        "questions": len(rows),
        "tool_choice": rate(rows, "tool_ok"),
        "outcome": rate(rows, "outcome_ok"),
        "fact_accuracy": rate([r for r in rows if r["outcome"] != "refused"], "facts_ok"),
        "invented_figures": sum(len(r.get("invented", [])) for r in rows),
        "citation_validity": rate([r for r in rows if r.get("citations")], "citations_ok"),
        "refusals_expected": len(refusals),
        "refusals_missed": sum(1 for r in refusals if r.get("got_outcome") != "refused"),
        "wrong_refusals": sum(1 for r in rows if r["outcome"] != "refused" and r.get("got_outcome") == "refused"),
        "first_token_p50_s": _percentile(prose_times, 0.5),
        "first_token_p95_s": _percentile(prose_times, 0.95),
        "facts_p50_s": _percentile(facts_times, 0.5),
        "prose_sources": dict(
            sorted({s: sum(1 for r in rows if r.get("prose_source") == s) for s in ("model", "template")}.items())
        ),
        "by_domain": {
            domain: {
                "tool_choice": rate(items, "tool_ok"),
                "outcome": rate(items, "outcome_ok"),
                "fact_accuracy": rate([r for r in items if r["outcome"] != "refused"], "facts_ok"),
            }
            for domain, items in sorted(by_domain.items())
        },
        "failures": [
            {
                k: r.get(k)
                for k in (
                    "id",
                    "question",
                    "tool",
                    "chosen",
                    "outcome",
                    "got_outcome",
                    "missing",
                    "invented",
                    "content",
                    "error",
                )
            }
            for r in rows
            if not (r.get("tool_ok") and r.get("outcome_ok") and r.get("facts_ok") and r.get("citations_ok", True))
        ],
    }
    return summary


def dense_only_tool_choice(questions: list[dict]) -> float:
    """The peer, in the same run: dense retrieval alone (the tool whose description or example question is
    nearest to the question in MiniLM space), without lexical match, keywords, the tenant's codes or imperatives."""
    import numpy as np

    from assistant import engine
    from assistant.choosing import tool_profiles

    profiles = tool_profiles()
    vectors = engine.embed_texts([q["question"] for q in questions])
    right = 0
    for item, vector in zip(questions, vectors, strict=True):
        best = max(profiles, key=lambda p: float(np.max(p.vectors @ vector)))
        right += best.name == item["tool"]
    return right / max(1, len(questions))


def _start_vllm(model: str, region: str):
    """The bundled SmolLM2-135M on a vLLM CPU server, registered as base model and server of the org's region."""
    from inference.engine.base_model import convert_smollm2
    from inference.engine.vllm_server import VllmServer
    from inference.services import base_model_register, server_register

    model_dir = convert_smollm2(target_dir=REPO_ROOT / ".cache" / "models" / "smollm2-135m-instruct")
    vllm = VllmServer(
        model_dir=model_dir,
        served_name=model,
        max_loras=2,
        max_cpu_loras=4,
        kv_cache_gib=1,
        max_model_len=2048,
        log_path=REPO_ROOT / ".cache" / "bench-assistant-vllm.log",
    )
    vllm.start()
    vllm.wait_ready(timeout_s=900)
    base_model = base_model_register(name=model, weights_path=model_dir, license="apache-2.0")
    server_register(url=vllm.base_url, base_model=base_model, cluster_name="bench-assistant", region=region)
    return vllm


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="assistant_eval")
    parser.add_argument("--gateway", default="", help="another gateway serving the model (default: this run's)")
    parser.add_argument(
        "--with-vllm",
        action="store_true",
        help="start a vLLM CPU server with the bundled SmolLM2-135M and register it, so this run's gateway serves it",
    )
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--limit", type=int, default=0, help="only the first N questions")
    parser.add_argument(
        "--every", type=int, default=1, help="every Nth question only (each domain alike): a shorter run with a model"
    )
    parser.add_argument("--out", default="", help="write the JSON summary here too")
    args = parser.parse_args(argv if argv is not None else sys.argv[1:])
    if not (os.environ.get("DATABASE_URL") and os.environ.get("REDIS_URL")):
        command = [sys.executable, "-m", "controlplane.embedded", "--dir", EMBEDDED_DIR, sys.executable, __file__]
        return subprocess.call([*command, *(argv if argv is not None else sys.argv[1:])], cwd=REPO_ROOT)
    sys.path.insert(0, str(REPO_ROOT))
    os.environ["DJANGO_SETTINGS_MODULE"] = "controlplane.settings.test"
    import django

    django.setup()
    from django.core.management import call_command

    from assistant.demo import demo_factory_seed
    from controlplane.embedded import free_port
    from tests import builders
    from tests.workers import start_web_server, stop_worker, wait_for_http

    call_command("migrate", verbosity=0)
    run_tag = uuid.uuid4().hex[:8]  # the embedded database persists between runs
    org = builders.make_org(owner=builders.make_user(f"eval-{run_tag}@example.com"), slug=f"eval-{run_tag}")
    seeded = demo_factory_seed(organization=org, actor=builders.owner_actor(org))
    _, key = builders.make_key(org)
    questions = [json.loads(line) for line in QUESTIONS.read_text().splitlines() if line.strip()]
    questions = questions[:: max(1, args.every)]
    if args.limit:
        questions = questions[: args.limit]
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {"ASSISTANT_MODEL": args.model, "PUBLIC_BASE_URL": base}
    if args.gateway:
        env["ASSISTANT_GATEWAY_BASE_URL"] = args.gateway
    vllm = _start_vllm(args.model, org.region) if args.with_vllm else None
    server = None
    try:
        server = start_web_server(port=port, env=env, log_path=REPO_ROOT / ".cache" / "bench-assistant-web.log")
        wait_for_http(f"{base}/healthz", timeout=180)
        # One warm-up question (loads the embedding model in the server process), not counted.
        evaluate(base, key, org.slug, seeded, [questions[0]])
        summary = evaluate(base, key, org.slug, seeded, questions)
    finally:
        if server is not None:
            stop_worker(server)
        if vllm is not None:
            vllm.stop()
    summary["peer_dense_only_tool_choice"] = dense_only_tool_choice(questions)
    summary["gateway"] = args.gateway or ("this run's, vLLM CPU " + args.model if vllm else "none (template prose)")
    summary["cores"] = os.cpu_count()
    text = json.dumps(summary, indent=2, ensure_ascii=False)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    floors_met = (
        summary["tool_choice"] >= FLOORS["tool_choice"]
        and summary["fact_accuracy"] >= FLOORS["fact_accuracy"]
        and summary["invented_figures"] == 0
        and summary["refusals_missed"] == 0
    )
    print("floors met" if floors_met else "FLOORS MISSED", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
