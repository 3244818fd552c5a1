from django.contrib import admin

from .models import Document, Passage

_PASSAGE_FIELDS = ("ordinal", "page", "section", "char_start", "char_end", "word_count")


class PassageInline(admin.TabularInline):
    model = Passage
    fields = _PASSAGE_FIELDS
    readonly_fields = _PASSAGE_FIELDS
    extra = 0
    can_delete = False
    show_change_link = True


@admin.register(Document)
class DocumentAdmin(admin.ModelAdmin):
    list_display = ["title", "organization", "format", "status", "passage_count", "embedded_count", "created_at"]
    list_filter = ["status", "format"]
    search_fields = ["title", "filename", "organization__slug", "sha256"]
    readonly_fields = [f.name for f in Document._meta.fields if f.name not in ("title", "text")]
    exclude = ["text"]
    inlines = [PassageInline]


@admin.register(Passage)
class PassageAdmin(admin.ModelAdmin):
    list_display = ["document", "ordinal", "page", "section", "word_count"]
    search_fields = ["document__title", "text"]
    readonly_fields = [
        "organization",
        "document",
        "ordinal",
        "text",
        "page",
        "section",
        "char_start",
        "char_end",
        "word_count",
    ]
    exclude = ["embedding", "search_vector"]
