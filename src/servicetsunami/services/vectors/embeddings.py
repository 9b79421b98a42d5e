"""Embeddings: the :class:`Embedder` port, its providers, batching and a cache by content hash.

Providers, by the name an index records (``embedding_model``):

- ``wordllama``: the offline default. Its 16 MB of weights ship inside the ``wordllama`` wheel;
  it is loaded from its own package folder with downloads disabled (left to itself it looks for a
  tokenizer under a folder the wheel does not have and reaches for a model hub).
- ``openai``: any OpenAI-compatible ``POST <base_url>/embeddings`` (settings ``vectors.openai_*``;
  the key is a secret setting, never an argument).
- ``databricks:<endpoint>``: a Databricks Foundation Model (or any embedding) serving endpoint,
  queried through ``databricks-sdk`` with ``{"input": [...]}``.

Every vector comes back L2-normalised as float32, so cosine similarity is a dot product. Nothing
downloads at run time.
"""

from __future__ import annotations

import abc
import hashlib
import logging
import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from servicetsunami.errors import EmbeddingUnavailable, InvalidInput, TsunamiError
from servicetsunami.settings import Settings

logger = logging.getLogger(__name__)

Vectors = npt.NDArray[np.float32]
DEFAULT_MODEL = "wordllama"


def normalise(vectors: npt.ArrayLike, /, *, in_place: bool = False) -> Vectors:
    """Rows scaled to unit length (zero rows stay zero), as a C-contiguous float32 matrix. With
    ``in_place``, a float32 matrix the caller owns is scaled where it is (no copy)."""
    out = np.ascontiguousarray(vectors, dtype=np.float32)
    if out.ndim != 2:
        raise EmbeddingUnavailable("the embedding model answered with something other than one vector per text")
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    if in_place and out is vectors and out.flags.writeable:
        out /= norms
        return out
    return np.ascontiguousarray(out / norms, dtype=np.float32)


class Embedder(abc.ABC):
    """Turns texts into vectors: ``embed(texts)`` returns an ``(len(texts), dim)`` float32 matrix of
    unit-length rows, in the order of ``texts``. ``name`` identifies the model (it keys the cache and
    is recorded with each index, so an index is always queried with the model that built it)."""

    name: str
    #: True for a model that runs in this process and batches its input itself: it is given all the
    #: texts of a call at once (``vectors.batch_size`` sizes requests to remote providers).
    local: bool = False

    @property
    @abc.abstractmethod
    def dim(self) -> int: ...

    @abc.abstractmethod
    def embed(self, texts: Sequence[str], /) -> Vectors: ...


class WordLlamaEmbedder(Embedder):
    """The offline default: a static token-embedding model (256 dimensions) shipped in its wheel."""

    name = "wordllama"
    local = True

    def __init__(self) -> None:
        import wordllama
        from wordllama import WordLlama

        folder = Path(next(iter(wordllama.__path__)))
        self._model = WordLlama.load(cache_dir=folder, disable_download=True)
        self._lock = threading.Lock()  # the tokenizer is not documented as thread-safe

    @property
    def dim(self) -> int:
        return 256

    def embed(self, texts: Sequence[str], /) -> Vectors:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._lock:
            out = self._model.embed(texts if isinstance(texts, list) else list(texts), norm=False, batch_size=256)
        return normalise(out, in_place=True)


class OpenAIEmbedder(Embedder):
    """Any OpenAI-compatible ``/embeddings`` endpoint."""

    def __init__(
        self, *, base_url: str, model: str, api_key: str | None, timeout: float, transport: Any = None
    ) -> None:
        if not base_url:
            raise EmbeddingUnavailable("set TSUNAMI_VECTORS__OPENAI_BASE_URL to use the 'openai' embedding model")
        self.name = f"openai:{model}"
        self._url = base_url.rstrip("/") + "/embeddings"
        self._model = model
        self._key = api_key
        self._timeout = timeout
        self._transport = transport
        self._dim: int | None = None

    @property
    def dim(self) -> int:
        if self._dim is None:
            self._dim = int(self.embed(["dimension probe"]).shape[1])
        return self._dim

    def embed(self, texts: Sequence[str], /) -> Vectors:
        import httpx

        if not texts:
            return np.zeros((0, self._dim or 0), dtype=np.float32)
        headers = {"Authorization": f"Bearer {self._key}"} if self._key else {}
        try:
            with httpx.Client(timeout=self._timeout, transport=self._transport) as client:
                response = client.post(self._url, json={"model": self._model, "input": list(texts)}, headers=headers)
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            logger.warning("embedding provider unreachable: %s", type(exc).__name__)
            raise EmbeddingUnavailable("the OpenAI-compatible embedding endpoint could not be reached") from exc
        if response.status_code != 200:
            logger.warning("embedding provider answered HTTP %s", response.status_code)
            raise EmbeddingUnavailable(f"the OpenAI-compatible embedding endpoint answered HTTP {response.status_code}")
        try:
            data = response.json()["data"]
            ordered = sorted(data, key=lambda item: int(item.get("index", 0)))
            out = normalise([item["embedding"] for item in ordered])
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise EmbeddingUnavailable(
                "the OpenAI-compatible embedding endpoint answered in an unexpected shape"
            ) from exc
        return self._checked(out, len(texts))

    def _checked(self, out: Vectors, n: int) -> Vectors:
        if out.shape[0] != n:
            raise EmbeddingUnavailable(f"the embedding model answered {out.shape[0]} vectors for {n} texts")
        if self._dim is not None and out.shape[1] != self._dim:
            raise EmbeddingUnavailable("the embedding model changed its number of dimensions")
        self._dim = int(out.shape[1])
        return out


class DatabricksEmbedder(OpenAIEmbedder):
    """A Databricks serving endpoint that embeds (Foundation Model APIs such as ``databricks-gte-large-en``)."""

    def __init__(self, settings: Settings, endpoint: str) -> None:
        from servicetsunami.engines.databricks.workspace import Workspace

        if not endpoint:
            raise InvalidInput(
                "name the serving endpoint: databricks:<endpoint>, e.g. databricks:databricks-gte-large-en"
            )
        self.name = f"databricks:{endpoint}"
        self._endpoint = endpoint
        self._workspace = Workspace(settings.databricks)
        self._dim = None

    def embed(self, texts: Sequence[str], /) -> Vectors:
        if not texts:
            return np.zeros((0, self._dim or 0), dtype=np.float32)
        try:
            response = self._workspace.call(
                lambda: self._workspace.client.serving_endpoints.query(name=self._endpoint, input=list(texts)),
                action=f"embedding with the serving endpoint {self._endpoint}",
            )
        except TsunamiError as exc:
            raise EmbeddingUnavailable(exc.message) from exc
        items = sorted(response.data or [], key=lambda item: item.index or 0)
        if not items or any(item.embedding is None for item in items):
            raise EmbeddingUnavailable(f"the serving endpoint {self._endpoint} answered without embeddings")
        return self._checked(normalise([list(item.embedding or ()) for item in items]), len(texts))


class EmbeddingCache:
    """Vectors by (model, SHA-256 of the text), least recently used dropped past ``max_entries``."""

    def __init__(self, max_entries: int) -> None:
        self._max = max_entries
        self._items: OrderedDict[tuple[str, bytes], Vectors] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    @staticmethod
    def digest(text: str, /) -> bytes:
        return hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()

    def get(self, model: str, digest: bytes, /) -> Vectors | None:
        with self._lock:
            found = self._items.get((model, digest))
            if found is not None:
                self._items.move_to_end((model, digest))
            return found

    def put(self, model: str, digest: bytes, vector: Vectors, /) -> None:
        if self._max <= 0:
            return
        with self._lock:
            self._items[(model, digest)] = vector
            self._items.move_to_end((model, digest))
            while len(self._items) > self._max:
                self._items.popitem(last=False)

    def get_many(self, model: str, digests: Sequence[bytes], /) -> list[Vectors | None]:
        """:meth:`get` of each digest, under one acquisition of the lock."""
        with self._lock:
            out: list[Vectors | None] = []
            for digest in digests:
                found = self._items.get((model, digest))
                if found is not None:
                    self._items.move_to_end((model, digest))
                out.append(found)
            return out

    def put_many(self, model: str, digests: Sequence[bytes], vectors: Vectors, /) -> None:
        """:meth:`put` of each digest with the row of ``vectors`` at the same position."""
        if self._max <= 0:
            return
        with self._lock:
            items = self._items
            for digest, vector in zip(digests[-self._max :], vectors[-self._max :], strict=True):
                items[(model, digest)] = vector
                items.move_to_end((model, digest))
            while len(items) > self._max:
                items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)


def embed_texts(
    embedder: Embedder, texts: Sequence[str], /, *, batch_size: int, cache: EmbeddingCache | None
) -> Vectors:
    """``texts`` embedded in batches of ``batch_size`` (a local model gets them all in one call and
    batches them itself); a text seen before (same model, same content) comes from ``cache`` and is
    not sent to the model again, nor is a text repeated within ``texts``. The matrix returned may
    share its rows with the cache: it is read-only."""
    n = len(texts)
    if n == 0:
        return np.zeros((0, embedder.dim), dtype=np.float32)
    step = n if embedder.local else batch_size
    if cache is None:
        return _embed_in_steps(embedder, texts if isinstance(texts, list) else list(texts), step)
    slot_of: dict[str, int] = {}  # each distinct text's position among the distinct texts, first seen first
    inverse = np.fromiter((slot_of.setdefault(t, len(slot_of)) for t in texts), dtype=np.int64, count=n)
    unique = list(slot_of)
    digest = EmbeddingCache.digest
    digests = [digest(t) for t in unique]
    found = cache.get_many(embedder.name, digests)
    missing = [i for i, hit in enumerate(found) if hit is None]
    cache.hits += n - len(missing)
    cache.misses += len(missing)
    if not missing:
        table: Vectors = np.stack(found)  # type: ignore[arg-type]
    else:
        fresh = _embed_in_steps(embedder, [unique[i] for i in missing], step)
        fresh.flags.writeable = False
        cache.put_many(embedder.name, [digests[i] for i in missing], fresh)
        if len(missing) == len(unique):
            table = fresh
        else:
            table = np.empty((len(unique), fresh.shape[1]), dtype=np.float32)
            table[missing] = fresh
            for i, hit in enumerate(found):
                if hit is not None:
                    table[i] = hit
    out = table if len(unique) == n else table[inverse]
    out.flags.writeable = False
    return out


def _embed_in_steps(embedder: Embedder, texts: list[str], step: int, /) -> Vectors:
    if len(texts) <= step:
        return embedder.embed(texts)
    return np.ascontiguousarray(np.vstack([embedder.embed(texts[i : i + step]) for i in range(0, len(texts), step)]))


_EMBEDDERS: dict[tuple[str, ...], Embedder] = {}
_EMBEDDERS_LOCK = threading.Lock()
_CACHES: dict[int, EmbeddingCache] = {}


def embedding_cache(settings: Settings, /) -> EmbeddingCache | None:
    """The process's cache of embeddings (one per size setting); None when turned off."""
    size = settings.vectors.cache_entries
    if size <= 0:
        return None
    with _EMBEDDERS_LOCK:
        return _CACHES.setdefault(size, EmbeddingCache(size))


def model_name(settings: Settings, model: str | None, /) -> str:
    """The name an index records for ``model`` (None: the configured default)."""
    chosen = (model or settings.vectors.embedding_model or DEFAULT_MODEL).strip()
    if chosen == "openai":
        return f"openai:{settings.vectors.openai_model}"
    if chosen == DEFAULT_MODEL or chosen.startswith(("openai:", "databricks:")):
        return chosen
    raise InvalidInput(
        f"unknown embedding model {chosen!r}: use 'wordllama', 'openai' or 'databricks:<serving endpoint>'"
    )


def load_embedder(settings: Settings, model: str | None = None, /) -> Embedder:
    """The embedder of ``model`` (a name from :func:`model_name`), loaded once per process."""
    name = model_name(settings, model)
    v = settings.vectors
    key: tuple[str, ...]
    if name.startswith("openai:"):
        secret = v.openai_api_key.get_secret_value() if v.openai_api_key is not None else ""
        key = (name, v.openai_base_url, hashlib.sha256(secret.encode()).hexdigest(), str(v.timeout_seconds))
    elif name.startswith("databricks:"):
        key = (name, settings.databricks.host)
    else:
        key = (name,)
    with _EMBEDDERS_LOCK:
        found = _EMBEDDERS.get(key)
        if found is not None:
            return found
        embedder: Embedder
        if name.startswith("openai:"):
            embedder = OpenAIEmbedder(
                base_url=v.openai_base_url,
                model=name.removeprefix("openai:"),
                api_key=v.openai_api_key.get_secret_value() if v.openai_api_key is not None else None,
                timeout=v.timeout_seconds,
            )
        elif name.startswith("databricks:"):
            embedder = DatabricksEmbedder(settings, name.removeprefix("databricks:"))
        else:
            embedder = WordLlamaEmbedder()
        _EMBEDDERS[key] = embedder
        return embedder
