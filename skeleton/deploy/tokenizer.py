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

    def __call__(
        self,
        first: list[str],
        second: list[str] | None = None,
        padding: bool = False,
        truncation: bool = False,
        max_length: int | None = None,
        return_tensors: str | None = None,
    ) -> dict:
        """Ids, attention mask and token types per text (or pair), as a Hugging Face tokenizer gives them."""
        inputs = list(first) if second is None else list(zip(first, second, strict=True))
        if truncation:
            self.backend.enable_truncation(max_length or self.model_max_length, strategy="longest_first")
        try:
            encodings = self.backend.encode_batch(inputs)
        finally:
            self.backend.no_truncation()
        columns = {
            "input_ids": [e.ids for e in encodings],
            "token_type_ids": [e.type_ids for e in encodings],
            "attention_mask": [e.attention_mask for e in encodings],
        }
        columns = {k: v for k, v in columns.items() if k in self.model_input_names}
        if padding:
            columns = self._pad(columns)
        if return_tensors == "np":
            return {k: np.asarray(v, dtype=np.int64) for k, v in columns.items()}
        return columns

    def _pad(self, columns: dict[str, list[list[int]]]) -> dict[str, list[list[int]]]:
        longest = max((len(row) for row in columns["input_ids"]), default=0)
        fill = {"input_ids": self.pad_token_id, "token_type_ids": 0, "attention_mask": 0}
        padded = {}
        for key, rows in columns.items():
            if self.padding_side == "left":
                padded[key] = [[fill[key]] * (longest - len(row)) + row for row in rows]
            else:
                padded[key] = [row + [fill[key]] * (longest - len(row)) for row in rows]
        return padded
