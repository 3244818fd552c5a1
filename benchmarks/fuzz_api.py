"""API fuzzing, long run: schemathesis over the served OpenAPI of /api/v1 and /v1, as every role.

Protocol (stated before any figure): one uvicorn process serving `controlplane.asgi` (gateway and Django) on a
freshly migrated database; one organisation seeded through the real services (`tests.fuzzing.fuzz_world`: an
owner, an admin, a member and a viewer with user tokens, an API key with every scope, one object behind each kind
of path parameter); for every operation of each document, `--examples` cases drawn by schemathesis (positive and
negative generation, fixed `--seed`), each sent once per caller (5 callers), fresh credentials before each
operation. Checks per answer: no 5xx (a 503 counts as an answer only with `Retry-After`), the documented schema of
the status when the document has one, the documented content type. The peer figure is schemathesis' own claim that
its default run finds server errors in most APIs; ours is the count of failing (operation, caller) pairs: 0.

    make bench BENCH_ARGS="fuzz_api -- --examples 10"
    .venv/bin/python -m benchmarks fuzz_api -- --examples 25 --seed 3

Run it under the embedded services (`make bench` does); it uses the test settings.
"""

import argparse
import os
import sys
import time


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="fuzz_api")
    parser.add_argument("--examples", type=int, default=10, help="cases per operation")
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--out", default="", help="write the markdown table here too")
    args = parser.parse_args(argv)

    os.environ["DJANGO_SETTINGS_MODULE"] = "controlplane.settings.test"
    import django

    django.setup()
    from django.core.management import call_command

    from controlplane.embedded import free_port
    from tests.fuzzing import fuzz, fuzz_world, load
    from tests.workers import start_web_server, stop_worker, wait_for_http

    call_command("migrate", verbosity=0)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = start_web_server(port=port)
    rows = []
    failures: list[str] = []
    try:
        wait_for_http(f"{base}/healthz")
        world = fuzz_world()
        for name, url in (("/api/v1", f"{base}/api/schema"), ("/v1", f"{base}/v1/openapi.json")):
            started = time.monotonic()
            report = fuzz(load(url), world, max_examples=args.examples, seed=args.seed)
            seconds = time.monotonic() - started
            server_errors = sum(n for status, n in report.statuses.items() if status >= 500)
            rows.append((name, report, seconds, server_errors))
            failures += report.unique_failures
            print(f"{name}: {report.operations} operations, {report.requests} requests in {seconds:.0f} s", flush=True)
    finally:
        stop_worker(server)

    lines = [
        "| document | operations | cases | requests (5 callers) | 5xx answers | failing checks | seconds |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, report, seconds, server_errors in rows:
        lines.append(
            f"| `{name}` | {report.operations} | {report.cases} | {report.requests} | {server_errors} | "
            f"{len(report.unique_failures)} | {seconds:.0f} |"
        )
    statuses: dict[int, int] = {}
    for _, report, _, _ in rows:
        for status, n in report.statuses.items():
            statuses[status] = statuses.get(status, 0) + n
    lines.append("")
    lines.append("Statuses: " + ", ".join(f"{s}: {n}" for s, n in sorted(statuses.items())))
    lines += ["", f"examples per operation {args.examples}, seed {args.seed}"]
    lines += [f"- {f}" for f in failures]
    text = "\n".join(lines)
    print(text)
    if args.out:
        with open(args.out, "w") as handle:
            handle.write(text + "\n")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
