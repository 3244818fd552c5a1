"""Request parsers the API's upload endpoints share."""

from typing import Any

from rest_framework.parsers import BaseParser


class CsvBodyParser(BaseParser):
    """A `text/csv` body, read whole up to `max_bytes` (+1, so the view can tell that it was cut off)."""

    media_type = "text/csv"
    max_bytes = 0

    # DRF's stubs say a parser returns a mapping; the views that accept CSV read the raw bytes it really returns.
    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        return stream.read(self.max_bytes + 1)
