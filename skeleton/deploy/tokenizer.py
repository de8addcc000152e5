"""The exported tokenizer (``tokenizer.json``, task template inside) read with the ``tokenizers`` library
alone, so that a prediction with an ONNX or OpenVINO graph starts without importing transformers or torch.

``ExportedTokenizer`` answers the calls the predictor and the server make of a Hugging Face fast
tokenizer (the same ids, masks and token types: a test holds it against the Hugging Face tokenizer).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from skeleton.core.errors import SkeletonError

TOKENIZER_JSON = "tokenizer.json"
# tokenizer_config.json key the export writes for a bi-encoder: each text of a pair encoded on its own
PAIR_ENCODING_KEY = "skeleton_pair_encoding"
SEPARATE = "separate"


def _special_token(value) -> str | None:
    """A special token as saved in tokenizer_config.json: a string or an AddedToken dict."""
    if isinstance(value, dict):
        return value.get("content")
    return value


class ExportedTokenizer:
    """``tokenizer.json`` + ``tokenizer_config.json`` of an exported model directory.

    Attributes:
        pad_token_id: the id padding uses.
        padding_side: ``right`` or ``left``, as the model was trained.
        model_max_length: the longest input the graph takes (set by the export).
    """

    def __init__(self, directory: str | Path):
        from tokenizers import Tokenizer

        directory = Path(directory)
        path = directory / TOKENIZER_JSON
        if not path.is_file():
            raise SkeletonError(f"{path} is missing: the exported tokenizer is needed to encode texts")
        settings_path = directory / "tokenizer_config.json"
        settings = json.loads(settings_path.read_text()) if settings_path.is_file() else {}
        self.backend = Tokenizer.from_file(str(path))
        self.backend.no_padding()
        self.backend.no_truncation()
        pad = _special_token(settings.get("pad_token"))
        self.pad_token_id = (self.backend.token_to_id(pad) if pad else None) or 0
        self.padding_side = settings.get("padding_side", "right")
        self.model_max_length = int(settings.get("model_max_length", 512))
        self.model_input_names = settings.get("model_input_names") or ["input_ids", "token_type_ids", "attention_mask"]
        self.separate_pairs = settings.get(PAIR_ENCODING_KEY) == SEPARATE
        self._cutting: dict[int, object] = {}  # max length -> a copy of the backend that truncates at it

    def _backend(self, max_length: int | None):
        """The backend that cuts at ``max_length`` (``None``: that does not cut). Each setting has a copy of its
        own, set once, so that threads may encode at once: changing a shared backend's truncation while
        another thread encodes with it fails ("Already borrowed")."""
        if max_length is None:
            return self.backend
        backend = self._cutting.get(max_length)
        if backend is None:
            from tokenizers import Tokenizer

            backend = Tokenizer.from_str(self.backend.to_str())
            backend.enable_truncation(max_length, strategy="longest_first")
            self._cutting[max_length] = backend  # two threads may both build one: either copy is the same
        return backend

    def __call__(
        self,
        first: list[str],
        second: list[str] | None = None,
        padding: bool = False,
        truncation: bool = False,
        max_length: int | None = None,
        return_tensors: str | None = None,
    ) -> dict:
        """Ids, attention mask and token types per text (or pair), as a Hugging Face tokenizer gives them;
        for a bi-encoder, each text of a pair on its own (:func:`pair_columns`)."""
        if self.separate_pairs:
            if second is None:
                raise SkeletonError("this model classifies pairs of texts: give (text1, text2) pairs")
            inputs = list(first) + list(second)
        else:
            inputs = list(first) if second is None else list(zip(first, second, strict=True))
        encodings = self._backend(max_length or self.model_max_length if truncation else None).encode_batch(inputs)
        if self.separate_pairs:
            ids = [e.ids for e in encodings]
            columns = pair_columns(ids[: len(first)], ids[len(first) :])
        else:
            columns = {
                "input_ids": [e.ids for e in encodings],
                "token_type_ids": [e.type_ids for e in encodings],
                "attention_mask": [e.attention_mask for e in encodings],
            }
            columns = {k: v for k, v in columns.items() if k in self.model_input_names}
        return finish_columns(columns, padding, return_tensors, self.pad_token_id, self.padding_side)


def pair_columns(first: list[list[int]], second: list[list[int]]) -> dict[str, list[list[int]]]:
    """A bi-encoder's inputs: each pair's first sentence's ids and mask, and its second's as ``pair_*``."""
    return {
        "input_ids": first,
        "attention_mask": [[1] * len(row) for row in first],
        "pair_input_ids": second,
        "pair_attention_mask": [[1] * len(row) for row in second],
    }


def finish_columns(columns: dict, padding: bool, return_tensors: str | None, pad_token_id: int, side: str) -> dict:
    """Pad every column to the longest row of any of them (a bi-encoder's two sentences share the
    graph's token axis) when asked, and turn them into int64 arrays for ``return_tensors="np"``."""
    if padding:
        longest = max((len(row) for rows in columns.values() for row in rows), default=0)
        padded = {}
        for key, rows in columns.items():
            fill = pad_token_id if key.endswith("input_ids") else 0
            if side == "left":
                padded[key] = [[fill] * (longest - len(row)) + row for row in rows]
            else:
                padded[key] = [row + [fill] * (longest - len(row)) for row in rows]
        columns = padded
    if return_tensors == "np":
        return {k: np.asarray(v, dtype=np.int64) for k, v in columns.items()}
    return columns


class SeparatePairs:
    """A Hugging Face tokenizer that encodes each text of a pair on its own, as a bi-encoder was
    trained (``skeleton.core.batching.encode_split(..., separate_pairs=True)``), and gives the graph's
    inputs (:func:`pair_columns`). Saved, it marks ``tokenizer_config.json`` so that
    :class:`ExportedTokenizer` reads it back the same way; everything else is the wrapped tokenizer's."""

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer

    def __getattr__(self, name):
        return getattr(self.tokenizer, name)

    def __call__(self, first, second=None, padding=False, truncation=False, max_length=None, return_tensors=None):
        if second is None:
            raise SkeletonError("this model classifies pairs of texts: give (text1, text2) pairs")
        ids = self.tokenizer(list(first) + list(second), truncation=truncation, max_length=max_length)["input_ids"]
        columns = pair_columns(ids[: len(first)], ids[len(first) :])
        pad = self.tokenizer.pad_token_id or 0
        return finish_columns(columns, padding, return_tensors, pad, self.tokenizer.padding_side)

    def save_pretrained(self, directory: str) -> None:
        self.tokenizer.save_pretrained(directory)
        path = Path(directory) / "tokenizer_config.json"
        settings = json.loads(path.read_text())
        settings[PAIR_ENCODING_KEY] = SEPARATE
        path.write_text(json.dumps(settings, indent=2, ensure_ascii=False) + "\n")
