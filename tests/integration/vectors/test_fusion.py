"""Hybrid search fuses the vector and BM25 rankings by weighted reciprocal rank."""

from __future__ import annotations

from servicetsunami.services.vectors.search import fuse

VECTORS = [(10, 0.9), (11, 0.8), (12, 0.7), (13, 0.6)]
TEXT = [(99, 7.0), (12, 5.0), (11, 4.0), (10, 3.0)]


def test_a_row_both_sides_rank_well_comes_first() -> None:
    assert fuse(VECTORS, TEXT, k=10)[0][0] in (10, 11, 12)


def test_with_a_small_constant_each_side_s_first_row_beats_a_row_fourth_on_both() -> None:
    vectors = [(1, 0.9), (2, 0.8), (6, 0.7), (3, 0.6)]
    text = [(99, 7.0), (4, 5.0), (7, 4.0), (3, 3.0)]
    assert [p for p, _ in fuse(vectors, text, k=1)][:3] == [1, 99, 3]
    assert fuse(vectors, text, k=60)[0][0] == 3


def test_the_text_weight_moves_bm25_s_rows_up_and_ties_go_to_the_lower_position() -> None:
    even = fuse([(1, 0.9)], [(2, 5.0)], k=10)
    assert [p for p, _ in even] == [1, 2] and even[0][1] == even[1][1]
    assert [p for p, _ in fuse([(1, 0.9)], [(2, 5.0)], k=10, text_weight=2.0)] == [2, 1]
