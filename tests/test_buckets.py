"""Bounded input shapes: the buckets cover every length, padding to them leaves the logits as they were."""

import numpy as np
import pytest

from skeleton.core.config import ExportConfig
from skeleton.deploy.buckets import Buckets, pad_to, static_lengths
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


@pytest.mark.parametrize(
    ("available", "taken"), [(1, 1), (3, 3), (5, 4), (6, 6), (7, 7), (9, 8), (13, 13), (20, 16), (25, 25), (40, 32)]
)
def test_a_batcher_takes_a_bucket_or_pads_up_at_most_a_quarter(available, taken):
    assert Buckets.for_model(128, 32).take(available) == taken


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
