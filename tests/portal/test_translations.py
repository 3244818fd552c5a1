"""Korean and German cover every string of the portal, and the compiled catalogues match the sources."""

import ast
import gettext
import re
from pathlib import Path

import pytest

LOCALE = Path(__file__).resolve().parents[2] / "locale"
PLACEHOLDER = re.compile(r"%\([^)]+\)[sd]|%[sd]|<[^>]+>")


def po_entries(path: Path) -> dict[str, list[str]]:
    """msgid -> its msgstr (or msgstr[n] forms), from a .po file (enough of the format for makemessages' output)."""
    entries: dict[str, list[str]] = {}
    for block in path.read_text().split("\n\n"):
        fields: dict[str, str] = {}
        key = None
        for line in block.splitlines():
            if line.startswith("#"):
                continue
            match = re.match(r'^(msgctxt|msgid|msgid_plural|msgstr(?:\[\d\])?) (".*")$', line)
            if match:
                key = match.group(1)
                fields[key] = ast.literal_eval(match.group(2))
            elif line.startswith('"') and key:
                fields[key] += ast.literal_eval(line)
        if fields.get("msgid"):
            # gettext's own key for a string with a context: "context\x04msgid".
            key = f"{fields['msgctxt']}\x04{fields['msgid']}" if "msgctxt" in fields else fields["msgid"]
            entries[key] = [v for k, v in sorted(fields.items()) if k.startswith("msgstr")]
    return entries


@pytest.mark.parametrize("language", ["ko", "de"])
def test_every_string_is_translated_with_its_placeholders_and_compiled(language):
    po = LOCALE / language / "LC_MESSAGES" / "django.po"
    entries = po_entries(po)
    assert len(entries) > 500
    untranslated = [msgid for msgid, strings in entries.items() if not all(strings)]
    assert untranslated == []
    broken = [
        msgid
        for msgid, strings in entries.items()
        if any(sorted(PLACEHOLDER.findall(s)) != sorted(PLACEHOLDER.findall(msgid)) for s in strings[:1])
        and "%%" not in msgid
    ]
    assert broken == []
    assert "fuzzy" not in po.read_text().split("\n\n")[0]
    with (po.with_suffix(".mo")).open("rb") as handle:
        catalog = gettext.GNUTranslations(handle)
    # gettext() falls back to a plural entry's singular form, so plural entries are checked too.
    stale = [
        key
        for key, strings in entries.items()
        if (catalog.pgettext(*key.split("\x04")) if "\x04" in key else catalog.gettext(key)) != strings[0]
    ]
    assert stale == [], "run `manage.py compilemessages` after editing the .po"
