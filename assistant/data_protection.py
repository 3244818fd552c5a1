"""The copilot's data for export and erasure (see `tenants.data_protection`): documents with their passages, and
the original files in Django's storage. Passages' embeddings are derived data; they are exported like any column."""

from django.db import transaction

from tenants.data_protection import register_section

from .models import Document, Passage


def _originals(organization):
    for document in Document.objects.filter(organization=organization).only("id", "filename", "file"):
        if document.file:
            yield f"documents/{document.pk}-{document.filename}", document.file


def _remove_originals(organization) -> None:
    """Once the erasure has committed: a rolled-back erasure keeps its files with its rows."""
    files = [d.file for d in Document.objects.filter(organization=organization).only("id", "file") if d.file]
    transaction.on_commit(lambda: [file.storage.delete(file.name) for file in files])


def register() -> None:
    register_section(
        "documents",
        app_label="assistant",
        models=[Passage, Document],
        files=_originals,
        before_erase=_remove_originals,
    )
