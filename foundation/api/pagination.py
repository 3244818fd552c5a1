"""Cursor pagination: stable under concurrent inserts and cheap on large tables (no COUNT, no OFFSET)."""

from rest_framework.pagination import CursorPagination


class CreatedCursorPagination(CursorPagination):
    ordering = ("-created_at", "-id")
    page_size_query_param = "page_size"
    max_page_size = 500
