"""The copilot's data for export and erasure (see `tenants.data_protection`): documents with their passages, and
the original files in Django's storage; the copilot's conversations (with their messages and proposals), kept for
the organisation's `conversation_history` retention period. Passages' embeddings are derived data; they are
exported like any column."""

from django.utils.translation import gettext_lazy as _

from tenants.data_protection import register_retention, register_section, stored_files_remove_on_commit

from .models import Conversation, Document, Message, Passage, Proposal, QaDataset, QaPair


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
    register_section("conversations", app_label="assistant", models=[Proposal, Message, Conversation])
    register_retention(
        "conversation_history",
        label=_("Copilot conversations"),
        default_days=90,
        purge=_purge_conversations,
        app_label="assistant",
    )


def _purge_conversations(organization, cutoff) -> int:
    from .services import conversations_purge

    return conversations_purge(organization, cutoff)
