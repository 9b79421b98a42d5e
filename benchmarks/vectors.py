"""What do vector indexes cost over the libraries they are built on, and how good is their search?

Documents are generated text with known topics: each of ``--docs`` documents has a topic (one of
40, each with its own 25 words), 7 words of its topic, 5 common words, and a rare name of its own
(one of many made-up words), so that a question can name one document.

1. Embedding throughput: the service's path (``embed_texts``: batches, the content-hash cache,
   empty at the start) against calling the ``wordllama`` library itself on the same texts
   (``embed(texts, norm=True)``; target <= 1.1x).
2. Index build: ``create_vector_index`` over a table that already holds the vectors
   (``embedding_column``), run to the end (read the source, write the index table, build the HNSW
   graph), against raw usearch adding the same vectors with the same parameters (``new_hnsw``:
   the same connectivity, expansions, metric and threads; target <= 1.3x).

   Both are timed alternately (baseline, ours, baseline, ...) ``--repeats`` times and compared by
   their medians, in wall-clock time and in CPU time of the process (all its threads): on a shared
   machine the wall clock mostly measures the neighbours, so the load average is printed with
   each round and the CPU ratio says what the service's own work costs.
3. Search latency at k=10 through ``search_vectors`` (masking and all): p50 and p99 for exact
   (DuckDB ``array_cosine_distance``), HNSW (usearch) and hybrid (HNSW + DuckDB fts BM25, fused).
4. recall@10 of HNSW against exact, on the same queries (target >= 0.95).
5. A labelled query set (each query: 3 words of one document's topic plus its rare name; the answer
   is that document): recall@10 of pure vector search and of hybrid search. The queries are split
   in two halves: the fusion parameters (RRF ``k``, BM25 weight, candidates a side) are searched on
   the first half only, and the second (held out) reports the defaults, the classic RRF (k = 60, 50
   candidates, equal weights) and the best of the search, so that a default is not chosen on the
   queries that judge it.

Usage: ``python benchmarks/vectors.py [--docs 100000] [--queries 200] [--repeats 3]``
"""

from __future__ import annotations

import argparse
import itertools
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
from servicetsunami.services.vectors import search as vector_search
from servicetsunami.services.vectors.build import new_hnsw
from servicetsunami.services.vectors.embeddings import EmbeddingCache, WordLlamaEmbedder, embed_texts
from servicetsunami.services.vectors.search import fuse, search_vectors
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


def timed(fn: Any, /) -> tuple[float, float, Any]:
    """Wall-clock and process CPU seconds of ``fn()``, and its result."""
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return time.perf_counter() - wall, time.process_time() - cpu, out


def ab(label: str, baseline: Any, ours: Any, repeats: int, /) -> tuple[list[float], list[float]]:
    """``baseline`` and ``ours`` run alternately ``repeats`` times; prints each round and the ratio of
    the medians (wall clock and CPU). Returns the two lists of wall-clock times."""
    walls: dict[str, list[float]] = {"base": [], "ours": []}
    cpus: dict[str, list[float]] = {"base": [], "ours": []}
    for i in range(repeats):
        for side, fn in (("base", baseline), ("ours", ours)):
            wall, cpu, _ = timed(fn)
            walls[side].append(wall)
            cpus[side].append(cpu)
        print(
            f"   {label} round {i + 1}: load {os.getloadavg()[0]:.1f}, baseline {walls['base'][-1]:.2f} s "
            f"(cpu {cpus['base'][-1]:.2f}), ours {walls['ours'][-1]:.2f} s (cpu {cpus['ours'][-1]:.2f})",
            flush=True,
        )
    med = {side: statistics.median(v) for side, v in walls.items()}
    cmed = {side: statistics.median(v) for side, v in cpus.items()}
    print(
        f"   {label} medians of {repeats}: baseline {med['base']:.2f} s, ours {med['ours']:.2f} s: "
        f"ratio {med['ours'] / med['base']:.2f} wall, {cmed['ours'] / cmed['base']:.2f} cpu"
    )
    return walls["base"], walls["ours"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3, help="alternated rounds of each A/B timing (>= 3)")
    args = parser.parse_args()
    print(f"load before: {os.getloadavg()}")
    texts, labels, names = generate(args.docs)

    # 1. embedding throughput: the library itself against the service's path (a fresh cache each time)
    import wordllama
    from wordllama import WordLlama

    library = WordLlama.load(cache_dir=pathlib.Path(next(iter(wordllama.__path__))), disable_download=True)
    model = WordLlamaEmbedder()
    model.embed(texts[:100])  # warm
    library.embed(texts[:100], norm=True)
    direct = library.embed(texts, norm=True, batch_size=256)
    ours = embed_texts(model, texts, batch_size=256, cache=EmbeddingCache(args.docs * 2))
    assert np.allclose(direct, ours, atol=1e-5)
    print(f"1. embedding {args.docs} texts (wordllama library vs embed_texts with an empty cache)")
    base, mine = ab(
        "embedding",
        lambda: library.embed(texts, norm=True, batch_size=256),
        lambda: embed_texts(model, texts, batch_size=256, cache=EmbeddingCache(args.docs * 2)),
        args.repeats,
    )
    rate = args.docs / statistics.median(base)
    print(f"   throughput: library {rate:,.0f}/s, ours {args.docs / statistics.median(mine):,.0f}/s (target <= 1.1)")

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
            _indexes(svc, principal, args, texts, labels, names, np.asarray(direct, dtype=np.float32))
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

    # 2. index build against raw usearch, alternated
    keys = np.arange(n, dtype=np.uint64)
    graph = new_hnsw(dim)
    print(
        f"2. index build of {n} vectors (dim {dim}); HNSW connectivity {graph.connectivity}, expansion_add "
        f"{graph.expansion_add}, expansion_search {graph.expansion_search}, metric cos, all cores, both sides"
    )
    svc.settings.vectors.hnsw_threshold = 1
    built = itertools.count()
    ab(
        "index build",
        lambda: new_hnsw(dim).add(keys, vectors),
        lambda: _build(svc, principal, f"docs_hnsw_{next(built)}"),
        args.repeats,
    )
    print("   (target <= 1.3)")
    for i in range(1, args.repeats):
        indexes.delete_vector_index(svc, principal, f"docs_hnsw_{i}")
    svc.settings.vectors.hnsw_threshold = n + 1
    t_exact_build = _build(svc, principal, "docs_exact")
    print(f"   (the same index without a graph, searched exactly: {t_exact_build:.2f} s)")

    # 3-4. latency and recall of HNSW against exact, on queries that are the texts of random documents
    rng = random.Random(11)
    queries = [rng.randrange(n) for _ in range(args.queries)]
    for index in ("docs_exact", "docs_hnsw_0"):  # the first search of an index loads it; not timed
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
            ("hnsw", "docs_hnsw_0", {"query_vector": vector}),
            ("hybrid", "docs_hnsw_0", {"query_vector": vector, "query_text": texts[q], "query_type": "hybrid"}),
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
    questions = [(q, " ".join([*rng.sample(topics[labels[q]], 3), names[q]])) for q in queries]
    half = len(questions) // 2
    tune, held = questions[:half], questions[half:]
    record = indexes.find(svc, principal, "docs_hnsw_0")
    loaded = vector_search._load(svc, indexes.spec_of(record, catalog=principal.catalog), record.table_version, True)
    depth = 200
    rankings = []  # (answer's position, vector ranking, BM25 ranking), each `depth` deep
    for q, question in questions:
        vector = np.asarray(_embed_query(question), dtype=np.float32)
        hits = vector_search._hnsw(loaded, vector, depth, "TRUE", [])
        rankings.append((loaded.positions_of[q], hits, vector_search._bm25(loaded, question, depth, "TRUE", [])))

    def recall(part: slice, k: int, weight: float, pool: int) -> float:
        chosen = rankings[part]
        return statistics.mean(
            a in [p for p, _ in fuse(v[:pool], t[:pool], k=k, text_weight=weight)[:10]] for a, v, t in chosen
        )

    grid = list(itertools.product((1, 5, 10, 20, 60), (0.5, 1.0, 2.0, 3.0), (10, 20, 50, 100, 200)))
    best = max(grid, key=lambda g: (recall(slice(0, half), *g), -g[1]))
    v = svc.settings.vectors
    default = (v.hybrid_rrf_k, v.hybrid_text_weight, v.hybrid_candidates)
    tail = slice(half, None)
    found = {"ann": 0, "hybrid": 0}
    for q, question in held:
        for query_type in found:
            result = search_vectors(
                svc,
                principal,
                "docs_hnsw_0",
                query_text=None if query_type == "ann" else question,
                query_vector=_embed_query(question),
                k=10,
                columns=["id"],
                query_type=query_type,
            )
            found[query_type] += q in [row[0] for row in result["rows"]]
    bm25_only = statistics.mean(a in [p for p, _ in t[:10]] for a, _, t in rankings[tail])
    print(
        f"5. labelled queries: {len(tune)} to choose fusion parameters, {len(held)} held out; recall@10 on the "
        f"held-out half: vectors only {found['ann'] / len(held):.3f}, BM25 only {bm25_only:.3f}, "
        f"hybrid (defaults k={default[0]}, text weight {default[1]}, {default[2]} a side) "
        f"{found['hybrid'] / len(held):.3f}"
    )
    print(
        f"   classic RRF (k=60, weight 1, 50 a side): held out {recall(tail, 60, 1.0, 50):.3f}; best on the "
        f"tuning half (k={best[0]}, weight {best[1]}, {best[2]} a side): tuning {recall(slice(0, half), *best):.3f}, "
        f"held out {recall(tail, *best):.3f}; defaults on the tuning half {recall(slice(0, half), *default):.3f}"
    )


_MODEL: WordLlamaEmbedder | None = None


def _embed_query(text: str) -> list[float]:
    global _MODEL
    if _MODEL is None:
        _MODEL = WordLlamaEmbedder()
    return [float(x) for x in _MODEL.embed([text])[0]]


if __name__ == "__main__":
    main()
