"""A deterministic, meaning-free embedder behind each framework's own interface.

Bag of hashed words in 16 dimensions (or ``dim``): a document's own text is nearest to itself,
which is all these tests ask of similarity (they retrieve with k large enough to
return every document, and check which documents come back).
"""

from __future__ import annotations

import hashlib
import math
import re
from typing import Any, List

from langchain_core.embeddings import Embeddings
from llama_index.core.embeddings import BaseEmbedding

DIM = 16


def embed(text: str, dim: int = DIM) -> list[float]:
    v = [0.0] * dim
    for word in re.findall(r"\w+", text.lower()):
        h = hashlib.sha256(word.encode()).digest()
        v[h[0] % dim] += 1.0 if h[1] & 1 else -1.0
        v[h[2] % dim] += 0.5
    v[0] += 0.01  # never the zero vector (cosine distance is undefined there)
    n = math.sqrt(sum(x * x for x in v))
    return [x / n for x in v]


class HashEmbeddings(Embeddings):
    """LangChain's Embeddings interface."""

    def __init__(self, dim: int = DIM) -> None:
        self.dim = dim

    def embed_documents(self, texts: List[str]) -> List[List[float]]:
        return [embed(t, self.dim) for t in texts]

    def embed_query(self, text: str) -> List[float]:
        return embed(text, self.dim)


class HashEmbedding(BaseEmbedding):
    """LlamaIndex's BaseEmbedding interface."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(model_name="hash-16", embed_batch_size=64, **kwargs)

    def _get_query_embedding(self, query: str) -> List[float]:
        return embed(query)

    def _get_text_embedding(self, text: str) -> List[float]:
        return embed(text)

    async def _aget_query_embedding(self, query: str) -> List[float]:
        return embed(query)
