"""Dead code: functions, methods, classes, properties and imports that nothing uses, and unreachable code.

vulture reads the product and its tests and benchmarks (a helper used only by a test still counts as used) and
reports what no code names. Variables and attributes are left out: model fields, admin options and serializer
`Meta` are read by the frameworks by name, so at that level vulture would mostly report Django itself. What the
frameworks and protocols call by name is listed in pyproject.toml's [tool.vulture] `ignore_names`.
"""

import sys
import tomllib
from pathlib import Path

from vulture import Vulture

ROOT = Path(__file__).resolve().parent.parent
REPORTED = {"function", "method", "class", "property", "import", "unreachable_code"}
# Dead in a test module is a test helper nobody uses; in the product it is dead product code. Both count.


def main() -> int:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["vulture"]
    vulture = Vulture(ignore_names=config["ignore_names"], ignore_decorators=config["ignore_decorators"])
    vulture.scavenge([str(ROOT / path) for path in config["paths"]], exclude=config["exclude"])
    dead = [item for item in vulture.get_unused_code(min_confidence=config["min_confidence"]) if item.typ in REPORTED]
    for item in sorted(dead, key=lambda item: (str(item.filename), item.first_lineno)):
        print(item.get_report(add_size=False))
    return 1 if dead else 0


if __name__ == "__main__":
    sys.exit(main())
