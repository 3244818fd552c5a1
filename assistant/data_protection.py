"""The copilot's data for export and erasure (see `tenants.data_protection`): documents with their passages, and
the original files in Django's storage. Passages' embeddings are derived data; they are exported like any column."""

from tenants.data_protection import register_section, stored_files_remove_on_commit

from .models import Document, Passage, QaDataset, QaPair


def _originals(organization):
    for document in Document.objects.filter(organization=organization).only("id", "filename", "file"):
        if document.file:
            yield f"documents/{document.pk}-{document.filename}", document.file


def _remove_originals(organization) -> None:
    stored_files_remove_on_commit(d.file for d in Document.objects.filter(organization=organization).only("id", "file"))


def register() -> None:
    register_section(
        "documents",
        app_label="assistant",
        models=[Passage, Document],
        files=_originals,
        before_erase=_remove_originals,
    )
    # The fine-tuning data set's pairs (their source text is a copy of passages and records, so it goes with them).
    register_section("training_pairs", app_label="assistant", models=[QaPair, QaDataset])
