"""The copilot's document engine: parsing, splitting, embedding and rank fusion. Pure Python, no Django."""

from .embedding import EMBEDDING_DIMENSIONS, EMBEDDING_MODEL_NAME, embed_texts
from .fusion import FusedHit, reciprocal_rank_fusion
from .parsing import SUPPORTED_SUFFIXES, Block, DocumentUnreadable, ParsedDocument, parse_document
from .splitting import PassageSpan, SplitSettings, split_passages

__all__ = [
    "EMBEDDING_DIMENSIONS",
    "EMBEDDING_MODEL_NAME",
    "SUPPORTED_SUFFIXES",
    "Block",
    "DocumentUnreadable",
    "FusedHit",
    "ParsedDocument",
    "PassageSpan",
    "SplitSettings",
    "embed_texts",
    "parse_document",
    "reciprocal_rank_fusion",
    "split_passages",
]
