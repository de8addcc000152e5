"""Bounded input shapes: the buckets cover every length, padding to them leaves the logits as they were."""

import numpy as np
import pytest

from skeleton.core.config import ExportConfig
from skeleton.deploy.buckets import CALL_TOKENS, Buckets, call_tokens, cheapest_batch, pad_to, static_lengths
from skeleton.deploy.export import export_directory
from skeleton.deploy.predictor import Predictor

TEXTS = ["a superb film", "the movie was great and the plot was fine", "awful plot", "dull", "great great great"]


@pytest.mark.parametrize(("limit", "batch"), [(128, 32), (508, 32), (40, 5), (16, 1), (7, 64)])
def test_the_buckets_cover_every_length_and_batch_up_to_the_limits(limit, batch):
    buckets = Buckets.for_model(limit, batch)
    assert buckets.lengths[-1] == limit and buckets.batches[-1] == batch
    for tokens in range(1, limit + 1):
        assert buckets.length(tokens) in buckets.lengths and buckets.length(tokens) >= tokens
    for rows in range(1, batch + 1):
        assert buckets.batch(rows) in buckets.batches and buckets.batch(rows) >= rows
    assert len(buckets.shapes()) == len(buckets.lengths) * len(buckets.batches) <= 6 * 16


def test_the_bucket_sizes_worked_out_by_hand():
    assert Buckets.for_model(128, 32) == Buckets((16, 32, 48, 64, 80, 96, 112, 128), (1, 2, 4, 8, 16, 32))
    # 16-token steps to 128, 32 to 256, 64 beyond; the limit itself closes the list
    assert Buckets.for_model(508, 24).lengths[7:] == (128, 160, 192, 224, 256, 320, 384, 448, 508)
    assert Buckets.for_model(508, 24).batches == (1, 2, 4, 8, 16, 24)
    # a batch's bucket: its rows and its longest row, each rounded up (itself beyond the last)
    assert Buckets.for_model(128, 32).shape(5, 17) == (8, 32) and Buckets.for_model(128, 32).shape(40, 130) == (40, 130)


def test_a_call_costs_the_fixed_part_of_the_exports_timings_in_tokens():
    # 1 ms fixed and 0.01 ms a token: 100 tokens; the openvino-int8 graph of the default AMX SST-2 model: about 76
    assert call_tokens({"1x64": 1.64, "32x128": 41.96}) == pytest.approx(100)
    assert call_tokens({"1x64": 3.266, "32x128": 97.59}) == pytest.approx(75.6, abs=0.1)
    # timings that cannot tell: none, one size, no fixed part
    assert call_tokens(None) == call_tokens({"1x64": 3.0}) == call_tokens({"1x64": 0.5, "32x128": 60.0}) == CALL_TOKENS


BY_HAND = Buckets.for_model(128, 32)  # lengths every 16 to 128, batches 1, 2, 4, ..., 32


@pytest.mark.parametrize(
    ("lengths", "head", "max_tokens", "chosen"),
    [
        # a long oldest input runs with the other long ones, not with the twenty short ones (which would pad to 48)
        ([5] * 20 + [40] * 4, 21, 8192, (20, 4)),
        # a short one with the short ones, not with the long ones: sixteen, not twelve copies padding a batch of 32
        ([5] * 20 + [40] * 4, 3, 8192, (0, 16)),
        # many of one length: as many as a call takes
        ([10] * 40, 0, 8192, (0, 32)),
        ([10] * 40, 39, 8192, (8, 32)),
        # twenty of one length: sixteen, rather than twelve copies padding a batch of 32
        ([20] * 20, 0, 8192, (0, 16)),
        # no more padded tokens than the limit (4 x 112 > 400), the head alone whatever it costs
        ([100] * 10, 0, 400, (0, 2)),
        ([120, 120], 1, 100, (1, 1)),
        ([7], 0, 8192, (0, 1)),
    ],
)
def test_a_batcher_runs_the_inputs_that_do_most_work_for_the_cost(lengths, head, max_tokens, chosen):
    assert cheapest_batch(lengths, head, BY_HAND, 64, 32, max_tokens) == chosen


def test_the_chosen_batch_holds_the_head_within_every_limit_and_beats_every_other_run():
    rng = np.random.default_rng(0)
    for _ in range(200):
        lengths = sorted(rng.integers(1, 129, size=int(rng.integers(1, 100))).tolist())
        head, limit = int(rng.integers(len(lengths))), int(rng.choice([256, 1024, 8192]))
        start, count = cheapest_batch(lengths, head, BY_HAND, 64, 32, limit)
        assert start <= head < start + count <= len(lengths) and count <= 32

        def work(s, c, lengths=lengths):
            rows, tokens = BY_HAND.shape(c, lengths[s + c - 1])
            return sum(lengths[s : s + c]) / (64 + rows * tokens), rows * tokens

        best, padded = work(start, count)
        assert count == 1 or padded <= limit
        for c in range(1, min(32, len(lengths)) + 1):
            for s in range(max(0, head - c + 1), min(head, len(lengths) - c) + 1):
                other, size = work(s, c)
                assert c > 1 and size > limit or other <= best + 1e-12


def test_padding_adds_masked_tokens_on_the_padding_side_then_copies_of_the_first_row():
    encoded = {"input_ids": np.array([[5, 6, 7], [8, 9, 0]]), "attention_mask": np.array([[1, 1, 1], [1, 1, 0]])}
    right = pad_to(encoded, 4, 5, pad_id=0)
    assert right["input_ids"].tolist() == [[5, 6, 7, 0, 0], [8, 9, 0, 0, 0], [5, 6, 7, 0, 0], [5, 6, 7, 0, 0]]
    assert right["attention_mask"].tolist() == [[1, 1, 1, 0, 0], [1, 1, 0, 0, 0], [1, 1, 1, 0, 0], [1, 1, 1, 0, 0]]
    left = pad_to(encoded, 2, 4, pad_id=1, pad_left=True)
    assert left["input_ids"].tolist() == [[1, 5, 6, 7], [1, 8, 9, 0]]
    assert left["attention_mask"].tolist() == [[0, 1, 1, 1], [0, 1, 1, 0]]
    assert pad_to(encoded, 2, 3, pad_id=0)["input_ids"] is encoded["input_ids"]  # already a bucket


@pytest.fixture(scope="module")
def graphs(tmp_path_factory, tokenizer_dir, sst2_dir):
    from tests.test_export import make_compressed_dir

    directory, _ = make_compressed_dir(tmp_path_factory.mktemp("buckets"), "bert", "cls", tokenizer_dir, sst2_dir)
    variants = ("fp32", "optimized", "int8", "openvino-fp32", "openvino-int8")
    export_directory(directory, ExportConfig(variants=variants, int8_bar=False, latency_shapes=((1, 8),)))
    return directory


@pytest.mark.parametrize(
    "runtime", ["onnx-fp32", "onnx-optimized", "openvino-fp32", "torch-fp32", "onnx-int8", "openvino-int8"]
)
def test_logits_with_bucket_padding_equal_logits_without(graphs, runtime):
    """Every runtime: the padded batch's logits are the unpadded batch's (float rounding apart; a
    dynamically quantised graph's per-batch activation ranges see the padding, so within its int8 error)."""
    predictor = Predictor(graphs, runtime=runtime)
    encoded = predictor.encode(TEXTS)  # (5, tokens): padded to the longest text only
    assert predictor.buckets.batch(5) == 8  # the bucketed call runs three more rows (and up to 15 more tokens)
    plain = predictor.runtime.run(encoded)
    bucketed = predictor.run(encoded)  # padded to (8, the next length bucket), the copies dropped
    assert bucketed.shape == plain.shape == (5, 2)
    tolerance = 0.05 if runtime.endswith("int8") else 1e-4
    assert np.abs(bucketed - plain).max() < tolerance, runtime
    assert (bucketed.argmax(-1) == plain.argmax(-1)).all()


def test_static_lengths_are_the_buckets_up_to_128_tokens():
    assert static_lengths(Buckets.for_model(508, 32).lengths) == (16, 32, 48, 64, 80, 96, 112, 128)
    assert static_lengths((16, 64, 128, 256)) == (16, 64, 128)


@pytest.mark.parametrize("runtime", ["openvino-fp32", "openvino-int8"])
def test_a_batch_of_one_runs_on_its_static_graph_with_the_dynamic_graphs_logits(graphs, runtime):
    """``static_batch_one``: a text alone runs on the graph compiled for its bucket's shape, every other batch on
    the dynamic graph, and the two give the same logits (one graph, two compilations: int8 kernels chosen for a
    fixed shape round differently, within the int8 error the bucket test allows)."""
    tolerance = 0.05 if runtime.endswith("int8") else 1e-4
    static = Predictor(graphs, runtime=runtime, static_batch_one=True)
    dynamic = Predictor(graphs, runtime=runtime)
    assert static.runtime.static_lengths == static_lengths(static.buckets.lengths) != ()
    assert dynamic.runtime.static_lengths == ()
    for text in TEXTS:
        alone = static.encode([text])
        encoded = pad_to(alone, 1, static.buckets.length(alone["input_ids"].shape[1]), 0)
        compiled, _ = static.runtime.graph_for(encoded)
        assert compiled is not static.runtime.compiled  # the static graph of this length
        fixed, moving = static.runtime.run(encoded), dynamic.runtime.run(encoded)
        assert np.abs(fixed - moving).max() < tolerance and fixed.argmax() == moving.argmax()
    # two texts, or one at a length that is no bucket, run on the dynamic graph
    pair = static.encode(TEXTS[:2])
    assert static.runtime.graph_for(pair)[0] is static.runtime.compiled
    odd = static.encode([TEXTS[0]])
    assert odd["input_ids"].shape[1] not in static.runtime.static_lengths
    assert static.runtime.graph_for(odd)[0] is static.runtime.compiled
    # end to end at batch 1, the predictions are the dynamic predictor's
    fixed, moving = static.logits(TEXTS, batch_size=1), dynamic.logits(TEXTS, batch_size=1)
    assert np.abs(fixed - moving).max() < tolerance and (fixed.argmax(-1) == moving.argmax(-1)).all()
