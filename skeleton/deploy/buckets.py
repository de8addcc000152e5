"""Bounded input shapes: every batch a graph runs is padded up to one of a few (batch, tokens) buckets.

OpenVINO compiles kernels for each new input shape, and a server meets a new (batch size, padded
length) pair nearly every call (up to 32 x 512 of them): measured on the default SST-2 model, a first
pass ran at a third of the warmed speed. Padded to buckets, a model sees a few dozen shapes, which the
server runs once each before it says it is ready, and ``Predictor`` pads the same way, so the server and
``skeleton predict`` run the same shapes and give the same logits.

Extra tokens are padding under a zero attention mask, so a row's logits do not change beyond float
rounding. Extra rows repeat the batch's first row (a real input: no fully masked row, whose attention
could be NaN, reaches a dynamically quantised graph's ranges) and are dropped after the run.

A server's batcher chooses which waiting inputs run together by what the call costs for the work it does
(:func:`cheapest_batch`): a call costs a fixed part plus its padded rows x tokens, so a batch of inputs far
apart in length can cost more per token of text than two batches of inputs close in length.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# token lengths: every 16 up to 128 (short texts, where padding costs most), then every 32 to 256, then 64
LENGTH_STEPS = ((128, 16), (256, 32), (None, 64))
# what a call costs beyond its tokens, counted in tokens, when the export did not time the graph at two sizes
CALL_TOKENS = 64
# the longest input a batch of one runs on a graph compiled for its shape (``--static-batch-one``): a fixed-shape
# OpenVINO graph saves its per-call shape work, which weighs at short lengths (a 3-layer MiniLM at 1x16: 21% of
# its latency; 1x64 14%) and fades as compute grows, while each such graph holds its own copy of the weights
STATIC_UP_TO = 128


def static_lengths(lengths, up_to: int = STATIC_UP_TO) -> tuple[int, ...]:
    """The lengths of ``lengths`` that get a static batch-of-one graph."""
    return tuple(length for length in lengths if length <= up_to)


def _length_buckets(limit: int) -> tuple[int, ...]:
    lengths, size = [], 0
    for end, step in LENGTH_STEPS:
        while size + step <= (limit if end is None else min(end, limit)):
            size += step
            lengths.append(size)
    if not lengths or lengths[-1] < limit:
        lengths.append(limit)
    return tuple(lengths)


def _batch_buckets(limit: int) -> tuple[int, ...]:
    sizes = [1]
    while sizes[-1] * 2 < limit:
        sizes.append(sizes[-1] * 2)
    return tuple(sizes + [limit] if limit > 1 else sizes)


@dataclass(frozen=True)
class Buckets:
    """The (batch, tokens) shapes a model runs.

    Attributes:
        lengths: token lengths, ascending; the last is the model's input limit.
        batches: batch sizes, ascending; the last is the largest batch a caller makes.
    """

    lengths: tuple[int, ...]
    batches: tuple[int, ...]

    @classmethod
    def for_model(cls, max_tokens: int, max_batch: int) -> Buckets:
        """Lengths every 16 tokens to 128, every 32 to 256, every 64 beyond, up to ``max_tokens``; batch
        sizes the powers of two below ``max_batch``, and ``max_batch``."""
        if max_tokens < 1 or max_batch < 1:
            raise ValueError(f"buckets need a positive token limit and batch size, got {max_tokens}, {max_batch}")
        return cls(_length_buckets(max_tokens), _batch_buckets(max_batch))

    def length(self, tokens: int) -> int:
        """The bucket a batch of ``tokens`` tokens pads to (itself beyond the last)."""
        return next((size for size in self.lengths if size >= tokens), tokens)

    def batch(self, rows: int) -> int:
        """The bucket a batch of ``rows`` rows pads to (itself beyond the last)."""
        return next((size for size in self.batches if size >= rows), rows)

    def shape(self, rows: int, tokens: int) -> tuple[int, int]:
        """The (batch, tokens) bucket a batch of ``rows`` rows of ``tokens`` tokens pads to."""
        return self.batch(rows), self.length(tokens)

    def shapes(self) -> list[tuple[int, int]]:
        """Every (batch, tokens) bucket, smallest first."""
        return [(batch, length) for length in self.lengths for batch in self.batches]


def call_tokens(latency_ms: dict[str, float] | None) -> float:
    """What one call of a graph costs beyond its padded tokens, in tokens: the fixed part of a straight line
    through the export's timings of the graph (``{"BxT": ms}``, e.g. 1x64 and 32x128) over the line's cost per
    token. :data:`CALL_TOKENS` when the timings cannot tell (fewer than two sizes, or a line without a positive
    fixed part and slope)."""
    points = [(_tokens(shape), ms) for shape, ms in (latency_ms or {}).items()]
    if len({tokens for tokens, _ in points}) < 2:
        return CALL_TOKENS
    slope, fixed = np.polyfit(*zip(*points, strict=True), 1)
    return float(fixed / slope) if slope > 0 and fixed > 0 else CALL_TOKENS


def _tokens(shape: str) -> int:
    rows, _, tokens = shape.partition("x")
    return int(rows) * int(tokens)


def cheapest_batch(
    lengths: list[int], head: int, buckets: Buckets, call_cost: float, max_inputs: int, max_tokens: int
) -> tuple[int, int]:
    """Of waiting inputs sorted by length (``lengths``), the run of them that holds input ``head`` and does the
    most work for its cost: ``(start, count)``.

    A call costs ``call_cost`` (:func:`call_tokens`) plus the rows x tokens of its padded bucket, and does its
    inputs' own tokens of work. Per input (rather than per own token) a long input's batch would fill up with short
    ones at no extra cost, which then run padded to its length instead of in a bucket of their own. Of equal runs,
    the larger, then the one of shorter inputs. At most ``max_inputs`` inputs and ``max_tokens`` padded tokens
    (the head runs alone whatever it costs).
    """
    own = np.asarray(lengths)  # ascending
    total = np.concatenate([[0], np.cumsum(own)])
    counts = np.arange(min(max_inputs, len(own)), 0, -1)[:, None]  # largest first: argmax keeps the first best
    starts = np.arange(len(own))[None, :]
    ends = np.minimum(starts + counts, len(own))  # (counts, starts), exclusive
    distinct, which = np.unique(own, return_inverse=True)  # the bucket of each length once: this runs per batch
    tokens = np.asarray([buckets.length(int(length)) for length in distinct])[which][ends - 1]  # longest, bucketed
    padded = np.asarray([buckets.batch(int(c)) for c in counts[:, 0]])[:, None] * tokens
    fits = (starts <= head) & (starts + counts > head) & (starts + counts <= len(own))
    fits &= (padded <= max_tokens) | (counts == 1)
    work = np.where(fits, (total[ends] - total[starts]) / (call_cost + padded), -np.inf)
    row, start = np.unravel_index(int(np.argmax(work)), work.shape)
    return int(start), int(counts[row, 0])


def pad_to(
    arrays: dict[str, np.ndarray], rows: int, tokens: int, pad_id: int, pad_left: bool = False
) -> dict[str, np.ndarray]:
    """``arrays`` (each (batch, length)) padded to (``rows``, ``tokens``): padding tokens (``pad_id`` in
    ``*input_ids``, 0 elsewhere, so the attention mask hides them) on the tokenizer's padding side, then
    copies of the first row."""
    padded = {}
    for key, array in arrays.items():
        batch, length = array.shape  # (batch, tokens)
        if tokens > length:
            fill = pad_id if key.endswith("input_ids") else 0
            extra = np.full((batch, tokens - length), fill, dtype=array.dtype)
            array = np.concatenate([extra, array] if pad_left else [array, extra], axis=1)
        if rows > batch:
            array = np.concatenate([array, np.repeat(array[:1], rows - batch, axis=0)], axis=0)
        padded[key] = array
    return padded


class BucketedRuntime:
    """A runtime whose every batch runs padded up to its bucket: ``run(encoded)`` -> (batch, labels) logits
    of the batch's own rows. What ``Predictor``, the server and the export's serving figures run."""

    def __init__(self, runtime, buckets: Buckets, pad_id: int, pad_left: bool = False):
        self.runtime, self.buckets, self.pad_id, self.pad_left = runtime, buckets, pad_id, pad_left

    def run(self, encoded: dict[str, np.ndarray]) -> np.ndarray:
        rows, tokens = encoded["input_ids"].shape  # (batch, tokens)
        return self.runtime.run(pad_to(encoded, *self.buckets.shape(rows, tokens), self.pad_id, self.pad_left))[:rows]
