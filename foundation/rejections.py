"""All-or-nothing input: every problem found, by place, and nothing stored when there is one.

An importer collects problems with `ProblemCollector` while it checks a whole batch ("line 4", "readings[3]"), then
`raise_if_any()` raises the app's `Rejected` subclass before anything is written. The API answers it with every
place's messages (`foundation.api.errors.rejected_response`).
"""


class Rejected(Exception):
    """Nothing was stored. `errors` maps each place to its messages; `count` is every problem found."""

    def __init__(self, errors: dict[str, list[str]], count: int | None = None):
        self.errors = errors
        self.count = count if count is not None else sum(len(m) for m in errors.values())
        where, messages = next(iter(errors.items()))
        more = f" ({self.count} problems in all)" if self.count > 1 else ""
        super().__init__(f"{where}: {messages[0]}{more}. Nothing was stored.")


class ProblemCollector:
    """Counts every problem; names the first `max_places` places (and every problem of a place already named)."""

    def __init__(self, rejected: type[Rejected], max_places: int):
        self.rejected = rejected
        self.max_places = max_places
        self.errors: dict[str, list[str]] = {}
        self.count = 0

    def add(self, where: str, message: str) -> None:
        self.count += 1
        if len(self.errors) < self.max_places or where in self.errors:
            self.errors.setdefault(where, []).append(message)

    def raise_if_any(self) -> None:
        if self.count:
            raise self.rejected(self.errors, self.count)
