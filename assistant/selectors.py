"""Reads: hybrid passage search over one organisation's documents.

Two retrievers, each restricted to the organisation in SQL, then fused by reciprocal rank fusion:
- semantic: cosine distance between the question's MiniLM embedding and the passages'. With pgvector 0.8 or
  newer the HNSW index serves it with an iterative scan, so the organisation filter still yields k rows; older
  pgvector (the embedded PostgreSQL's) would filter after the index's ef_search candidates and could return too
  few for a small tenant, so there the query runs exactly over the organisation's rows (index scans off for it).
- lexical: PostgreSQL full-text search with the 'simple' configuration, terms OR-ed (a question's extra words
  must not hide a passage that holds its part number), ranked by ts_rank_cd.
"""

from dataclasses import dataclass
from functools import lru_cache

from django.db import connection, transaction
from pgvector.django import CosineDistance

from tenants.models import Organization

from . import engine
from .models import Passage

CANDIDATES_PER_RETRIEVER = 4  # each retriever proposes k * this many (at least 20) before fusion
RRF_K = 60

_LEXICAL_SQL = """
WITH q AS (SELECT replace(plainto_tsquery('simple', %s)::text, '&', '|')::tsquery AS query)
SELECT p.id, ts_rank_cd(p.search_vector, q.query) AS rank
FROM assistant_passage p, q
WHERE p.organization_id = %s AND p.search_vector @@ q.query
ORDER BY rank DESC, p.id
LIMIT %s
"""


@dataclass(frozen=True)
class SearchHit:
    passage: Passage
    score: float
    vector_rank: int | None
    text_rank: int | None
    similarity: float | None


def _lexical(*, organization: Organization, query: str, limit: int) -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute(_LEXICAL_SQL, [query, organization.pk, limit])
        return [str(row[0]) for row in cursor.fetchall()]


@lru_cache(maxsize=1)
def _has_iterative_scan() -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
        row = cursor.fetchone()
    if row is None:
        return False
    major, minor = (int(part) for part in str(row[0]).split(".")[:2])
    return (major, minor) >= (0, 8)


def _semantic(*, organization: Organization, query: str, limit: int) -> dict[str, float]:
    vector = engine.embed_texts([query])[0].tolist()
    with transaction.atomic(), connection.cursor() as cursor:
        if _has_iterative_scan():
            cursor.execute("SET LOCAL hnsw.iterative_scan = 'relaxed_order'")
            cursor.execute("SELECT set_config('hnsw.ef_search', %s, true)", [str(max(40, limit))])
        else:
            cursor.execute("SET LOCAL enable_indexscan = off")
        rows = list(
            Passage.objects.filter(organization=organization, embedding__isnull=False)
            .annotate(distance=CosineDistance("embedding", vector))
            .order_by("distance")
            .values_list("id", "distance")[:limit]
        )
    rows.sort(key=lambda row: row[1])  # relaxed order: re-sort the few candidates exactly
    return {str(pk): 1.0 - float(distance) for pk, distance in rows}


def passage_search(*, organization: Organization, query: str, k: int = 5) -> list[SearchHit]:
    limit = max(20, k * CANDIDATES_PER_RETRIEVER)
    similarities = _semantic(organization=organization, query=query, limit=limit)
    lexical = _lexical(organization=organization, query=query, limit=limit)
    fused = engine.reciprocal_rank_fusion({"vector": list(similarities), "text": lexical}, k=RRF_K)[:k]
    passages = Passage.objects.filter(organization=organization, id__in=[hit.key for hit in fused]).select_related(
        "document"
    )
    by_id = {str(p.id): p for p in passages}
    return [
        SearchHit(
            passage=by_id[hit.key],
            score=hit.score,
            vector_rank=hit.ranks.get("vector"),
            text_rank=hit.ranks.get("text"),
            similarity=similarities.get(hit.key),
        )
        for hit in fused
        if hit.key in by_id
    ]
