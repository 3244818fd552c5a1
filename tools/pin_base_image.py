"""Pin the images' base by digest: resolve `ARG PYTHON_IMAGE` in infra/Dockerfile and write `tag@sha256:...` back.

A tag such as python:3.11.14-slim-bookworm is re-pushed by its publisher (Debian security updates), so the same
Dockerfile can build different images; a digest cannot. The project machines reach no container registry, so the
Dockerfile ships pinned to the exact patch release only, and a release pins the digest where a registry is reachable:

    make pin-base-image                     resolve the tag with `docker buildx imagetools inspect`, write the digest
    make pin-base-image PIN_ARGS=--check    exit 1 unless the base is pinned by digest (a release gate for CI)
    python -m tools.pin_base_image --digest sha256:...   write a digest resolved elsewhere (your registry's mirror)

Re-running it after a tag bump replaces the old digest. Nothing is guessed: without a registry it fails and says so.
"""

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

DOCKERFILE = Path(__file__).resolve().parents[1] / "infra" / "Dockerfile"
_ARG = re.compile(r"^ARG PYTHON_IMAGE=(?P<tag>[^@\s]+)(?:@(?P<digest>\S+))?$", flags=re.M)
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


class PinError(Exception):
    pass


def base_image(text: str) -> tuple[str, str | None]:
    """The Dockerfile's base image tag and its digest (None when it is not pinned by digest)."""
    match = _ARG.search(text)
    if match is None:
        raise PinError("infra/Dockerfile has no `ARG PYTHON_IMAGE=...` line")
    return match["tag"], match["digest"]


def with_digest(text: str, digest: str) -> str:
    """The Dockerfile with its base pinned to `digest` (replacing a digest it had)."""
    if not _DIGEST.match(digest):
        raise PinError(f"not an image digest: {digest!r} (expected sha256: and 64 hex digits)")
    tag, _ = base_image(text)
    return _ARG.sub(f"ARG PYTHON_IMAGE={tag}@{digest}", text, count=1)


def resolve(tag: str) -> str:
    """The digest of `tag`'s manifest list in its registry, as `docker buildx imagetools inspect` reports it."""
    command = ["docker", "buildx", "imagetools", "inspect", tag, "--format", "{{json .Manifest}}"]
    try:
        buildx = subprocess.run(["docker", "buildx", "version"], capture_output=True, text=True, timeout=30)
        if buildx.returncode != 0:
            raise PinError("docker's buildx plugin is not installed here (`docker buildx version` failed)")
        done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise PinError(f"could not run {' '.join(command[:4])}: {exc}") from exc
    if done.returncode != 0:
        raise PinError(f"the registry did not answer for {tag}: {done.stderr.strip() or done.stdout.strip()}")
    try:
        digest = json.loads(done.stdout)["digest"]
    except (ValueError, KeyError, TypeError) as exc:
        raise PinError(f"unexpected answer from imagetools inspect: {done.stdout[:300]!r}") from exc
    return str(digest)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dockerfile", type=Path, default=DOCKERFILE)
    parser.add_argument("--digest", help="write this digest instead of resolving the tag")
    parser.add_argument("--check", action="store_true", help="exit 1 unless the base is pinned by digest")
    args = parser.parse_args(argv)
    text = args.dockerfile.read_text()
    try:
        tag, current = base_image(text)
        if args.check:
            if current is None:
                print(f"{args.dockerfile}: base {tag} is not pinned by digest; run `make pin-base-image`")
                return 1
            print(f"{args.dockerfile}: base {tag}@{current}")
            return 0
        digest = args.digest or resolve(tag)
        args.dockerfile.write_text(with_digest(text, digest))
    except PinError as exc:
        print(f"pin-base-image: {exc}", file=sys.stderr)
        return 2
    print(f"{args.dockerfile}: base pinned to {tag}@{digest}" + (" (was " + current + ")" if current else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
