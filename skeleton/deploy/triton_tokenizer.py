"""Triton Python-backend model: texts in, the exported model's token ids out.

``skeleton export DIR --triton OUT`` copies this file as ``OUT/<name>_tokenizer/1/model.py`` beside
the exported ``tokenizer.json`` (task template included). It needs only the ``tokenizers`` package in
Triton's Python environment. Inputs: ``TEXT`` (and ``TEXT_PAIR`` for pair tasks), UTF-8 strings of
shape (batch,); a bi-encoder (``pair_encoding`` separate) encodes the two apart, into ``input_ids`` and
``pair_input_ids``. Outputs: the ONNX model's integer inputs, (batch, tokens), right-padded to a
multiple of ``pad_to_multiple_of`` so that Triton's dynamic batcher can merge requests of similar
length (it merges only equal shapes).
"""

import json
from pathlib import Path

import numpy as np
import triton_python_backend_utils as pb_utils  # provided by Triton's Python backend


class TritonPythonModel:
    def initialize(self, args):
        from tokenizers import Tokenizer

        config = json.loads(args["model_config"])
        parameters = {k: v["string_value"] for k, v in config.get("parameters", {}).items()}
        here = Path(args["model_repository"]) / str(args["model_version"])
        self.tokenizer = Tokenizer.from_file(str(here / "tokenizer.json"))
        self.tokenizer.no_padding()
        self.max_tokens = int(parameters["max_input_tokens"])
        self.tokenizer.enable_truncation(self.max_tokens)
        self.multiple = int(parameters.get("pad_to_multiple_of", "16"))
        self.pad_id = int(parameters.get("pad_token_id", "0"))
        self.pair = parameters.get("pair_inputs", "false") == "true"
        self.separate = parameters.get("pair_encoding", "joint") == "separate"  # a bi-encoder's pairs
        self.outputs = [output["name"] for output in config["output"]]

    def _texts(self, request, name):
        tensor = pb_utils.get_input_tensor_by_name(request, name)
        if tensor is None:
            raise ValueError(f"input {name} is missing")
        values = tensor.as_numpy().reshape(-1)
        return [v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in values]

    def _encode(self, request):
        texts = self._texts(request, "TEXT")
        seconds = None
        if self.pair:
            seconds = self._texts(request, "TEXT_PAIR")
            if len(seconds) != len(texts):
                raise ValueError(f"TEXT has {len(texts)} texts and TEXT_PAIR {len(seconds)}")
        if self.separate:  # a bi-encoder: each text on its own, both padded to one width
            encodings = self.tokenizer.encode_batch(texts + seconds)
            groups = {"": encodings[: len(texts)], "pair_": encodings[len(texts) :]}
        elif self.pair:
            groups = {"": self.tokenizer.encode_batch(list(zip(texts, seconds, strict=True)))}
        else:
            groups = {"": self.tokenizer.encode_batch(texts)}
        longest = max(len(e.ids) for group in groups.values() for e in group)
        # round up to the bucket, never past the positions the model has
        width = min(-(-longest // self.multiple) * self.multiple, self.max_tokens)
        arrays = {}
        for prefix, group in groups.items():
            ids = np.full((len(group), width), self.pad_id, dtype=np.int64)  # (batch, tokens)
            mask = np.zeros((len(group), width), dtype=np.int64)
            types = np.zeros((len(group), width), dtype=np.int64)
            for row, encoding in enumerate(group):
                size = len(encoding.ids)
                ids[row, :size] = encoding.ids
                mask[row, :size] = 1
                types[row, :size] = encoding.type_ids
            arrays.update(
                {f"{prefix}input_ids": ids, f"{prefix}attention_mask": mask, f"{prefix}token_type_ids": types}
            )
        return [pb_utils.Tensor(name, arrays[name]) for name in self.outputs]

    def execute(self, requests):
        responses = []
        for request in requests:
            try:
                responses.append(pb_utils.InferenceResponse(output_tensors=self._encode(request)))
            except Exception as error:  # one bad request gets its error; the others still run
                responses.append(pb_utils.InferenceResponse(output_tensors=[], error=pb_utils.TritonError(str(error))))
        return responses
