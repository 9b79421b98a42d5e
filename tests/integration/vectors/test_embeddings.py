"""Embeddings: the offline default with the network cut, the cache by content hash, batching, and
an OpenAI-compatible provider over real HTTP on loopback."""

from __future__ import annotations

import socket
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydantic import SecretStr

from servicetsunami.errors import EmbeddingUnavailable, InvalidInput
from servicetsunami.services.vectors.embeddings import (
    Embedder,
    EmbeddingCache,
    Vectors,
    WordLlamaEmbedder,
    embed_texts,
    load_embedder,
    model_name,
    normalise,
)
from servicetsunami.settings import DatabricksSettings, Settings, VectorSettings
from tests.fakes.embeddings import running_fake_embeddings


class NetworkUsed(AssertionError):
    pass


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every connection refused (a model hub, a proxy), and proxies pointed at a closed port."""

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise NetworkUsed(f"a connection was attempted: {args[1:] if len(args) > 1 else args}")

    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def test_the_offline_model_loads_and_embeds_with_the_network_cut(no_network: None) -> None:
    embedder = WordLlamaEmbedder()
    vectors = embedder.embed(["revenue grew 12% this quarter", "sales increased", "the cat sat on the mat"])
    assert vectors.shape == (3, embedder.dim) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    related, unrelated = float(vectors[0] @ vectors[1]), float(vectors[0] @ vectors[2])
    assert related > unrelated


class Counting(Embedder):
    name = "counting"

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    @property
    def dim(self) -> int:
        return 4

    def embed(self, texts: Sequence[str], /) -> Vectors:
        self.calls.append(list(texts))
        return normalise([[len(t), 1.0, t.count("a"), 0.5] for t in texts])


def test_a_text_seen_before_is_not_embedded_again_and_batches_keep_their_size() -> None:
    embedder, cache = Counting(), EmbeddingCache(100)
    first = embed_texts(embedder, ["a", "bb", "a", "ccc", "dddd"], batch_size=2, cache=cache)
    assert embedder.calls == [["a", "bb"], ["ccc", "dddd"]]  # the repeated "a" is sent once
    again = embed_texts(embedder, ["ccc", "a", "new"], batch_size=2, cache=cache)
    assert embedder.calls[2:] == [["new"]]
    assert np.array_equal(first[3], again[0]) and np.array_equal(first[0], first[2])
    assert (cache.hits, cache.misses) == (3, 5)


def test_the_cache_keys_by_model_and_forgets_the_least_recently_used() -> None:
    cache = EmbeddingCache(2)
    d = EmbeddingCache.digest
    cache.put("m1", d("x"), np.ones(2, dtype=np.float32))
    assert cache.get("m2", d("x")) is None
    cache.put("m1", d("y"), np.ones(2, dtype=np.float32))
    cache.get("m1", d("x"))
    cache.put("m1", d("z"), np.ones(2, dtype=np.float32))
    assert cache.get("m1", d("y")) is None and cache.get("m1", d("x")) is not None and len(cache) == 2


def test_without_a_cache_every_text_is_embedded_in_batches() -> None:
    embedder = Counting()
    out = embed_texts(embedder, ["a", "a", "b"], batch_size=2, cache=None)
    assert out.shape == (3, 4) and embedder.calls == [["a", "a"], ["b"]]
    assert embed_texts(embedder, [], batch_size=2, cache=None).shape == (0, 4)


def test_an_openai_compatible_endpoint_embeds_over_http_in_order(tmp_path: Path) -> None:
    with running_fake_embeddings() as fake:
        settings = Settings(
            home=tmp_path,
            vectors=VectorSettings(
                embedding_model="openai",
                openai_base_url=fake.url,
                openai_model="text-embedding-fake",
                openai_api_key=SecretStr(fake.key),
            ),
            _env_file=None,  # type: ignore[call-arg]
        )
        embedder = load_embedder(settings)
        assert embedder.name == "openai:text-embedding-fake" and model_name(settings, None) == embedder.name
        vectors = embedder.embed(["invoice overdue", "late invoice", "weather today"])
        assert vectors.shape == (3, fake.dim) and embedder.dim == fake.dim
        assert float(vectors[0] @ vectors[1]) > float(vectors[0] @ vectors[2])
        assert fake.inputs == [["invoice overdue", "late invoice", "weather today"]]
        fake.status = 503
        with pytest.raises(EmbeddingUnavailable) as failed:
            embedder.embed(["x"])
        assert failed.value.code == "embedding_unavailable"


def test_a_wrong_key_or_no_server_is_embedding_unavailable(tmp_path: Path) -> None:
    with running_fake_embeddings() as fake:
        settings = Settings(
            home=tmp_path,
            vectors=VectorSettings(openai_base_url=fake.url, openai_api_key=SecretStr("wrong"), openai_model="m1"),
            _env_file=None,  # type: ignore[call-arg]
        )
        with pytest.raises(EmbeddingUnavailable):
            load_embedder(settings, "openai").embed(["x"])
    gone = Settings(
        home=tmp_path,
        vectors=VectorSettings(openai_base_url=fake.url, openai_model="m2", timeout_seconds=2),
        _env_file=None,  # type: ignore[call-arg]
    )
    with pytest.raises(EmbeddingUnavailable):
        load_embedder(gone, "openai").embed(["x"])


def test_an_unknown_model_name_is_refused(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, _env_file=None)  # type: ignore[call-arg]
    with pytest.raises(InvalidInput):
        model_name(settings, "gpt-embeddings-from-the-moon")
    assert model_name(settings, None) == "wordllama"
    assert model_name(settings, "databricks:databricks-gte-large-en") == "databricks:databricks-gte-large-en"


def test_a_databricks_serving_endpoint_embeds_through_the_sdk(tmp_path: Path) -> None:
    with running_fake_embeddings() as fake:
        settings = Settings(
            home=tmp_path,
            databricks=DatabricksSettings(host=fake.host, token=SecretStr(fake.key), retry_timeout_seconds=5),
            _env_file=None,  # type: ignore[call-arg]
        )
        embedder = load_embedder(settings, "databricks:databricks-gte-large-en")
        assert embedder.name == "databricks:databricks-gte-large-en"
        vectors = embedder.embed(["late invoice", "invoice overdue", "sunny weather"])
        assert vectors.shape == (3, fake.dim) and embedder.dim == fake.dim
        assert float(vectors[0] @ vectors[1]) > float(vectors[0] @ vectors[2])
        fake.status = 400
        with pytest.raises(EmbeddingUnavailable):
            embedder.embed(["x"])
    with pytest.raises(InvalidInput):
        load_embedder(settings, "databricks:")


class LocalCounting(Counting):
    local = True


def test_a_local_model_gets_every_new_text_in_one_call_and_the_result_cannot_corrupt_the_cache() -> None:
    embedder, cache = LocalCounting(), EmbeddingCache(100)
    embed_texts(embedder, ["a"], batch_size=2, cache=cache)
    out = embed_texts(embedder, ["a", "bb", "ccc", "bb", "dddd"], batch_size=2, cache=cache)
    assert embedder.calls == [["a"], ["bb", "ccc", "dddd"]]
    assert out.shape == (5, 4) and np.array_equal(out[1], out[3])
    with pytest.raises(ValueError):
        out[0] = 0.0
