"""Tiny random-init models (hidden 32, 2 layers) of every supported architecture, a word-level
tokenizer and a small synthetic sentiment task in GLUE TSV form. Nothing is downloaded.

The CPU is simulated: every choice that depends on it reads ``skeleton.core.machine.cpu_flags``, which
``SKELETON_CPU_FLAGS`` overrides, so the suite takes the same branches on any machine. ``pytest --cpu
KIND`` runs the whole suite as one of ``CPU_KINDS`` (``host`` reads the real flags); the tests of
CPU-dependent branches take every kind in turn through the ``cpu_kind`` fixture.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from transformers import (
    AutoModel,
    AutoModelForMaskedLM,
    AutoTokenizer,
    BertConfig,
    BertTokenizerFast,
    DistilBertConfig,
    ElectraConfig,
    RobertaConfig,
    XLMRobertaConfig,
)

from skeleton.core.architectures import ARCHITECTURES
from skeleton.core.machine import FLAGS_ENV

# the kinds of CPU the toolkit meets, by the flags its choices read: AVX2 only (no VNNI: 7-bit int8
# weights; no bf16), AVX-512 with VNNI but no bf16, AVX-512 with VNNI and bf16, and AMX
CPU_KINDS = {
    "avx2": "fma avx avx2",
    "vnni": "fma avx avx2 avx512f avx512bw avx512_vnni",
    "avx512-bf16": "fma avx avx2 avx512f avx512bw avx512_vnni avx512_bf16",
    "amx": "fma avx avx2 avx512f avx512bw avx512_vnni avx512_bf16 amx_tile amx_bf16 amx_int8",
}
DEFAULT_CPU_KIND = "avx2"


def pytest_addoption(parser):
    parser.addoption(
        "--cpu",
        choices=[*CPU_KINDS, "host"],
        default=DEFAULT_CPU_KIND,
        help=f"the CPU kind the suite simulates (default {DEFAULT_CPU_KIND}); host reads this machine's flags",
    )


def pytest_configure(config):
    """Set the simulated flags before any fixture runs (session fixtures export models too)."""
    kind = config.getoption("--cpu")
    if kind != "host":
        os.environ[FLAGS_ENV] = CPU_KINDS[kind]


@pytest.fixture(params=list(CPU_KINDS))
def cpu_kind(request, monkeypatch) -> str:
    """Each simulated CPU kind in turn (parametrize indirectly to take fewer)."""
    monkeypatch.setenv(FLAGS_ENV, CPU_KINDS[request.param])
    return request.param


REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"

POSITIVE = ["good", "great", "fine", "lovely", "superb", "nice"]
NEGATIVE = ["bad", "awful", "poor", "dull", "boring", "ugly"]
FILLER = [
    "the",
    "movie",
    "film",
    "plot",
    "was",
    "is",
    "a",
    "very",
    "story",
    "acting",
    "text",
    "sentiment",
    "of",
]
SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
VOCAB = (
    SPECIAL
    + POSITIVE
    + NEGATIVE
    + FILLER
    + [
        ".",
        ":",
        "different",
        "equivalent",
        "yes",
        "no",
        "maybe",
        "topic",
        "world",
        "sports",
        "business",
        "science",
        "two",
        "texts",
        "are",
        "text1",
        "text2",
        "premise",
        "hypothesis",
        "relation",
        "1",
        "2",
    ]
)

_COMMON = dict(vocab_size=len(VOCAB), pad_token_id=0, max_position_embeddings=160)
_BERT_SIZES = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64)

TINY_CONFIGS = {
    "bert": lambda: BertConfig(**_COMMON, **_BERT_SIZES),
    "roberta": lambda: RobertaConfig(**_COMMON, **_BERT_SIZES, bos_token_id=2, eos_token_id=3),
    "xlm-roberta": lambda: XLMRobertaConfig(**_COMMON, **_BERT_SIZES, bos_token_id=2, eos_token_id=3),
    "electra": lambda: ElectraConfig(**_COMMON, **_BERT_SIZES, embedding_size=32),
    "distilbert": lambda: DistilBertConfig(**_COMMON, dim=32, n_layers=2, n_heads=4, hidden_dim=64),
}

ARCHITECTURE_NAMES = sorted(ARCHITECTURES)


def tiny_config(model_type: str, vocab_size: int | None = None):
    config = TINY_CONFIGS[model_type]()
    config.vocab_size = vocab_size or config.vocab_size
    return config


def tiny_model(model_type: str, mlm: bool = False, seed: int = 0, vocab_size: int | None = None):
    torch.manual_seed(seed)
    auto = AutoModelForMaskedLM if mlm else AutoModel
    model = auto.from_config(tiny_config(model_type, vocab_size))
    return model.eval()


@pytest.fixture(scope="session")
def tokenizer_dir(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("tokenizer")
    (directory / "vocab.txt").write_text("\n".join(VOCAB) + "\n")
    tokenizer = BertTokenizerFast(str(directory / "vocab.txt"), do_lower_case=True)
    tokenizer.save_pretrained(str(directory))
    return directory


@pytest.fixture(scope="session")
def tokenizer(tokenizer_dir):
    return BertTokenizerFast.from_pretrained(str(tokenizer_dir))


@pytest.fixture(scope="session")
def bpe_tokenizer_dir(tmp_path_factory) -> Path:
    """A byte-level BPE tokenizer (RoBERTa's kind: a word's leading space is part of its token) over
    the synthetic vocabulary; special tokens at the ids the tiny configs expect (pad 0, bos 2, eos 3)."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import RobertaTokenizerFast

    directory = tmp_path_factory.mktemp("bpe-tokenizer")
    bpe = ByteLevelBPETokenizer()
    words = [w for w in VOCAB if w not in SPECIAL]
    corpus = [" ".join(words), " ".join(reversed(words)), "Text: a. Text1: b. Text2: c. The two texts are"]
    bpe.train_from_iterator(
        corpus * 4, vocab_size=400, min_frequency=1, special_tokens=["<pad>", "<unk>", "<s>", "</s>", "<mask>"]
    )
    bpe.save_model(str(directory))
    tokenizer = RobertaTokenizerFast(str(directory / "vocab.json"), str(directory / "merges.txt"))
    tokenizer.save_pretrained(str(directory))
    return directory


def save_tiny_model(directory: Path, model_type: str, tokenizer_dir: Path, mlm: bool = False, seed: int = 0) -> Path:
    """A tiny model of ``model_type`` saved with the tokenizer of ``tokenizer_dir`` (its vocabulary size)."""
    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    model = tiny_model(model_type, mlm=mlm, seed=seed, vocab_size=len(tokenizer))
    model.save_pretrained(str(directory))
    tokenizer.save_pretrained(str(directory))
    return directory


@pytest.fixture(scope="session")
def tiny_bert_dir(tmp_path_factory, tokenizer_dir) -> Path:
    return save_tiny_model(tmp_path_factory.mktemp("tiny-bert"), "bert", tokenizer_dir)


def synthetic_rows(count: int, seed: int) -> list[tuple[str, int]]:
    """Sentences whose label is the polarity of their one sentiment word."""
    generator = torch.Generator().manual_seed(seed)
    rows = []
    for _ in range(count):
        label = int(torch.randint(0, 2, (1,), generator=generator))
        words = POSITIVE if label else NEGATIVE
        # few filler words, so that a bag of words stays linearly separable in a 32-dim random model
        count = int(torch.randint(1, 4, (1,), generator=generator))
        fill = [FILLER[int(i)] for i in torch.randint(0, 5, (count,), generator=generator)]
        position = int(torch.randint(0, len(fill) + 1, (1,), generator=generator))
        fill.insert(position, words[int(torch.randint(0, len(words), (1,), generator=generator))])
        rows.append((" ".join(fill), label))
    return rows


def write_sst2_dir(directory: Path, train: int = 300, test: int = 60) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, count, seed in (("train.tsv", train, 1), ("dev.tsv", test, 2)):
        lines = ["sentence\tlabel"] + [f"{text}\t{label}" for text, label in synthetic_rows(count, seed)]
        (directory / name).write_text("\n".join(lines) + "\n")
    return directory


@pytest.fixture(scope="session")
def sst2_dir(tmp_path_factory) -> Path:
    return write_sst2_dir(tmp_path_factory.mktemp("data") / "sst2")


def synthetic_pairs(count: int, seed: int) -> list[tuple[str, str, int]]:
    """Pairs of synthetic sentences, labelled 1 ("equivalent") when both carry the same polarity."""
    first, second = synthetic_rows(count, seed), synthetic_rows(count, seed + 100)
    return [(a, b, int(label_a == label_b)) for (a, label_a), (b, label_b) in zip(first, second, strict=True)]


def write_mrpc_dir(directory: Path, train: int = 300, test: int = 60) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, count, seed in (("train.tsv", train, 1), ("test.tsv", test, 2)):
        lines = ["sentence1\tsentence2\tlabel"] + [f"{a}\t{b}\t{label}" for a, b, label in synthetic_pairs(count, seed)]
        (directory / name).write_text("\n".join(lines) + "\n")
    return directory


@pytest.fixture(scope="session")
def mrpc_dir(tmp_path_factory) -> Path:
    return write_mrpc_dir(tmp_path_factory.mktemp("data") / "mrpc")
