"""`python -m benchmarks [name ...] [-- ARGS]`: run the named benchmark modules' `main()`, every one by default.

A name is a module of this package (`gateway_overhead` or `benchmarks/gateway_overhead.py` alike). ARGS after `--` go
to each named benchmark: as `main(ARGS)` when its `main` takes an argument, else through `sys.argv`. Each benchmark
runs even when an earlier one failed; the exit status is non-zero when any failed.
"""

import importlib
import inspect
import pkgutil
import sys
import time
import traceback
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent


def available() -> list[str]:
    return sorted(m.name for m in pkgutil.iter_modules([str(PACKAGE_DIR)]) if not m.name.startswith("_"))


def _module_name(name: str) -> str:
    return Path(name).name.removesuffix(".py")


def _run_one(name: str, args: list[str]) -> int:
    module = importlib.import_module(f"benchmarks.{name}")
    entry = getattr(module, "main", None)
    if entry is None:
        print(f"benchmarks.{name} has no main()", file=sys.stderr)
        return 2
    saved_argv = sys.argv
    sys.argv = [str(PACKAGE_DIR / f"{name}.py"), *args]
    try:
        code = entry(args) if inspect.signature(entry).parameters else entry()
    except SystemExit as exc:
        code = exc.code
    finally:
        sys.argv = saved_argv
    if code is None or code is True:
        return 0
    return code if isinstance(code, int) else 1


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args: list[str] = []
    if "--" in argv:
        split = argv.index("--")
        argv, args = argv[:split], argv[split + 1 :]
    if any(a in ("-h", "--help") for a in argv):
        print(__doc__.strip() + "\n\nbenchmarks: " + ", ".join(available()))
        return 0
    names = [_module_name(a) for a in argv] or available()
    unknown = [n for n in names if n not in available()]
    if unknown:
        print(f"unknown benchmark(s) {', '.join(unknown)}; there are: {', '.join(available())}", file=sys.stderr)
        return 2
    failed = []
    for name in names:
        print(f"\n=== benchmarks.{name} ===", flush=True)
        started = time.monotonic()
        try:
            code = _run_one(name, args)
        except Exception:
            traceback.print_exc()
            code = 1
        print(
            f"=== benchmarks.{name}: {'ok' if code == 0 else f'exit {code}'} ({time.monotonic() - started:.0f} s) ===",
            flush=True,
        )
        if code != 0:
            failed.append(name)
    if failed:
        print(f"\nfailed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
