"""What do vector indexes cost over the libraries they are built on, and how good is their search?

Documents are generated text with known topics: each of ``--docs`` documents has a topic (one of
40, each with its own 25 words), 7 words of its topic, 5 common words, and a rare name of its own
(one of many made-up words), so that a question can name one document.

1. Embedding throughput: the service's path (``embed_texts``: batches, the content-hash cache,
   empty at the start) against calling the offline model directly on the same texts
   (target <= 1.1x).
2. Index build: ``create_vector_index`` over a table that already holds the vectors
   (``embedding_column``), run to the end (read the source, write the index table, build the HNSW
   graph), against raw usearch adding the same vectors with the same parameters (target <= 1.3x).
3. Search latency at k=10 through ``search_vectors`` (masking and all): p50 and p99 for exact
   (DuckDB ``array_cosine_distance``), HNSW (usearch) and hybrid (HNSW + DuckDB fts BM25, fused).
4. recall@10 of HNSW against exact, on the same queries (target >= 0.95).
5. A labelled query set (each query: 3 words of one document's topic plus its rare name; the answer
   is that document): recall@10 of pure vector search and of hybrid search.

Usage: ``python benchmarks/vectors.py [--docs 100000] [--queries 200]``
"""

from __future__ import annotations

import argparse
import os
import pathlib
import random
import statistics
import tempfile
import time
from typing import Any

import numpy as np
import pyarrow as pa

from servicetsunami.services.container import Services
from servicetsunami.services.identity import tenants
from servicetsunami.services.runs import service as runs
from servicetsunami.services.vectors import indexes
from servicetsunami.services.vectors.build import new_hnsw
from servicetsunami.services.vectors.embeddings import EmbeddingCache, WordLlamaEmbedder, embed_texts
from servicetsunami.services.vectors.search import search_vectors
from servicetsunami.settings import Settings
from servicetsunami.tenancy import Principal, TableRef

SYLLABLES = ["ka", "lo", "mi", "ne", "ru", "ta", "vo", "zi", "pe", "shu", "dra", "qui", "bel", "tor", "fen"]
TOPICS = [
    "invoice payment billing refund charge card receipt tax amount due overdue credit balance fee account "
    "statement bank transfer currency price discount subscription renewal plan cost",
    "server database disk memory crash outage latency deploy release cluster node backup restore network "
    "firewall certificate kernel container pod restart log alert monitor cpu",
    "cat dog puppy kitten pet leash vet food bowl walk park fur tail bark purr toy cage bird fish hamster "
    "rabbit collar groom adopt",
    "flight hotel trip luggage passport airport beach booking travel itinerary visa train ticket cruise "
    "resort tour guide map hostel rental journey suitcase customs departure arrival",
    "soccer goal match team league coach referee stadium player score tournament season fans penalty "
    "striker keeper transfer trophy final kick pitch injury training captain derby",
    "bread flour yeast oven bake dough butter sugar cake recipe cookie knead crust pastry chocolate cream "
    "egg milk vanilla whisk icing muffin pie tart loaf",
    "election vote senate law policy minister parliament campaign ballot party debate reform budget "
    "governor mayor council bill court justice rights tax treaty diplomat summit",
    "guitar piano drum song melody concert band album lyrics chord rhythm singer stage tour vinyl studio "
    "record bass violin orchestra jazz rock tempo harmony",
]
COMMON = [
    "the",
    "a",
    "of",
    "and",
    "to",
    "in",
    "is",
    "for",
    "on",
    "with",
    "that",
    "this",
    "it",
    "from",
    "by",
    "at",
    "as",
    "be",
    "are",
    "was",
    "we",
    "you",
]


def _topics(rng: random.Random, n: int = 40) -> list[list[str]]:
    out = [t.split() for t in TOPICS]
    while len(out) < n:  # more topics of made-up words
        out.append(["".join(rng.choice(SYLLABLES) for _ in range(3)) for _ in range(25)])
    return out


def generate(n: int, seed: int = 7) -> tuple[list[str], list[int], list[str]]:
    rng = random.Random(seed)
    topics = _topics(rng)
    texts, labels, names = [], [], []
    for i in range(n):
        t = rng.randrange(len(topics))
        name = "".join(rng.choice(SYLLABLES) for _ in range(4)) + str(i)
        words = rng.sample(topics[t], 7) + rng.sample(COMMON, 5) + [name]
        rng.shuffle(words)
        texts.append(" ".join(words))
        labels.append(t)
        names.append(name)
    return texts, labels, names


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args()
    print(f"load before: {os.getloadavg()}")
    texts, labels, names = generate(args.docs)

    # 1. embedding throughput
    model = WordLlamaEmbedder()
    model.embed(texts[:100])  # warm
    t_direct = t_ours = float("inf")
    for _ in range(2):  # alternated, best of two: the machine is shared
        started = time.perf_counter()
        direct = model.embed(texts)
        t_direct = min(t_direct, time.perf_counter() - started)
        started = time.perf_counter()
        ours = embed_texts(model, texts, batch_size=256, cache=EmbeddingCache(args.docs * 2))
        t_ours = min(t_ours, time.perf_counter() - started)
    assert np.allclose(direct, ours, atol=1e-5)
    print(
        f"1. embedding {args.docs} texts: direct {t_direct:.2f} s ({args.docs / t_direct:,.0f}/s), "
        f"service path {t_ours:.2f} s: ratio {t_ours / t_direct:.2f} (target <= 1.1)"
    )

    with tempfile.TemporaryDirectory() as home:
        settings = Settings(home=pathlib.Path(home), _env_file=None)  # type: ignore[call-arg]
        settings.vectors.max_results = 1000
        svc = Services.open(settings)
        try:
            tenants.create_tenant(svc.store, "bench")
            key = tenants.create_api_key(svc.store, tenant_slug="bench", name="bench", role="admin")
            svc.engine.ensure_catalog(settings.catalog_prefix + "bench")
            principal = svc.authenticate(key.plaintext)
            runs.ensure_worker(svc)  # a serving process has its worker (and every run kind) loaded already
            _indexes(svc, principal, args, texts, labels, names, direct)
        finally:
            svc.close()
    print(f"load after: {os.getloadavg()}")


def _build(svc: Services, principal: Principal, name: str) -> float:
    started = time.perf_counter()
    made = indexes.create_vector_index(
        svc,
        principal,
        name,
        source_table="docs",
        primary_key="id",
        text_column="body",
        embedding_column="vec",
        columns_to_sync=["topic"],
    )
    status = runs.wait_for_run(svc, principal, made.run_id, timeout=3600)
    assert status.state == "succeeded", status.error
    return time.perf_counter() - started


def _indexes(
    svc: Services,
    principal: Principal,
    args: argparse.Namespace,
    texts: list[str],
    labels: list[int],
    names: list[str],
    vectors: np.ndarray,
) -> None:
    n, dim = vectors.shape
    offsets = pa.array(np.arange(0, (n + 1) * dim, dim, dtype=np.int32))
    table = pa.table(
        {
            "id": pa.array(range(n), type=pa.int64()),
            "body": texts,
            "topic": labels,
            "vec": pa.ListArray.from_arrays(offsets, pa.array(vectors.reshape(-1), type=pa.float32())),
        }
    )
    svc.engine.write_table(TableRef(principal.catalog, "gold", "docs"), table.to_reader(), mode="create")

    # 2. index build against raw usearch
    started = time.perf_counter()
    new_hnsw(dim).add(np.arange(n, dtype=np.uint64), vectors)
    t_raw = time.perf_counter() - started
    svc.settings.vectors.hnsw_threshold = 1
    t_build = _build(svc, principal, "docs_hnsw")
    print(
        f"2. index build of {n} vectors (dim {dim}): raw usearch {t_raw:.2f} s, create_vector_index run "
        f"{t_build:.2f} s: ratio {t_build / t_raw:.2f} (target <= 1.3)"
    )
    svc.settings.vectors.hnsw_threshold = n + 1
    t_exact_build = _build(svc, principal, "docs_exact")
    print(f"   (the same index without a graph, searched exactly: {t_exact_build:.2f} s)")

    # 3-4. latency and recall of HNSW against exact, on queries that are the texts of random documents
    rng = random.Random(11)
    queries = [rng.randrange(n) for _ in range(args.queries)]
    for index in ("docs_exact", "docs_hnsw"):  # the first search of an index loads it; not timed
        search_vectors(
            svc, principal, index, k=10, query_vector=vectors[0].tolist(), query_text=texts[0], query_type="hybrid"
        )
    timings: dict[str, list[float]] = {"exact": [], "hnsw": [], "hybrid": []}
    overlap = []
    for q in queries:
        vector = vectors[q].tolist()
        results: dict[str, Any] = {}
        for label, index, options in (
            ("exact", "docs_exact", {"query_vector": vector}),
            ("hnsw", "docs_hnsw", {"query_vector": vector}),
            ("hybrid", "docs_hnsw", {"query_vector": vector, "query_text": texts[q], "query_type": "hybrid"}),
        ):
            started = time.perf_counter()
            results[label] = search_vectors(svc, principal, index, k=10, columns=["id"], **options)
            timings[label].append((time.perf_counter() - started) * 1000)
        exact_ids = {row[0] for row in results["exact"]["rows"]}
        overlap.append(len(exact_ids & {row[0] for row in results["hnsw"]["rows"]}) / 10)
    for label, values in timings.items():
        print(f"3. search k=10 {label}: p50 {pct(values, 0.5):.1f} ms, p99 {pct(values, 0.99):.1f} ms")
    print(f"4. recall@10 of HNSW against exact: {statistics.mean(overlap):.3f} (target >= 0.95)")

    # 5. labelled queries: topic words and the document's rare name; the answer is that document
    topics = _topics(random.Random(7))
    found = {"ann": 0, "hybrid": 0}
    for q in queries:
        words = [*rng.sample(topics[labels[q]], 3), names[q]]
        question = " ".join(words)
        for query_type in found:
            result = search_vectors(
                svc,
                principal,
                "docs_hnsw",
                query_text=None if query_type == "ann" else question,
                query_vector=_embed_query(question),
                k=10,
                columns=["id"],
                query_type=query_type,
            )
            found[query_type] += q in [row[0] for row in result["rows"]]
    print(
        f"5. labelled queries ({len(queries)}): recall@10 vectors only {found['ann'] / len(queries):.3f}, "
        f"hybrid {found['hybrid'] / len(queries):.3f}"
    )


_MODEL: WordLlamaEmbedder | None = None


def _embed_query(text: str) -> list[float]:
    global _MODEL
    if _MODEL is None:
        _MODEL = WordLlamaEmbedder()
    return [float(x) for x in _MODEL.embed([text])[0]]


if __name__ == "__main__":
    main()
