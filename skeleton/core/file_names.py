"""Every file name of a Skeleton model directory, in one place.

DIR/                      skeleton compress / skeleton tune
  config.json             the backbone's Hugging Face config (unpruned family config + per-layer sizes)
  model.safetensors       the slim backbone's weights
  pruning_plan.json       which neurons, heads and layers were kept (rebuilds the slim shapes)
  neuron_scores.safetensors
  skeleton.json           task, template and what the model was built from
  prompt/                 the soft prompt (peft adapter: adapter_config.json + weights)
  head.safetensors, head_config.json
  report.json             every figure of the run
  prompt_tuned/           the prompt-tuned model's prompt and head (compress)
  onnx/                   skeleton export: graphs (ONNX, OpenVINO IR), tokenizer, manifest.json
  bench/                  skeleton bench: report and plots (bench/prompt_tuned: the prompt-tuned model's graphs;
                          bench/slim-int8-unshipped: an int8 graph that failed the bar, timed for comparison)
  analysis/               skeleton analyze: analysis.json, analysis.md, suppression.png, layers.png
"""

CONFIG_FILE = "config.json"
MODEL_FILE = "model.safetensors"
PLAN_FILE = "pruning_plan.json"
SCORES_FILE = "neuron_scores.safetensors"
REPORT_FILE = "report.json"
META_FILE = "skeleton.json"
PROMPT_DIR = "prompt"
ADAPTER_CONFIG_FILE = "adapter_config.json"
HEAD_FILE = "head.safetensors"
HEAD_CONFIG_FILE = "head_config.json"
PROMPT_TUNED_DIR = "prompt_tuned"  # the prompt-tuned model's prompt and head, kept by compress
ONNX_DIR = "onnx"
MANIFEST_FILE = "manifest.json"
VARIANT_FILES = {
    "fp32": "model.onnx",
    "optimized": "model_optimized.onnx",
    "int8": "model_int8.onnx",
    # OpenVINO compiles the fp32 ONNX graph itself; its int8 graph is OpenVINO IR (.xml + .bin)
    "openvino-fp32": "model.onnx",
    "openvino-bf16": "model.onnx",
    "openvino-int8": "model_openvino_int8.xml",
}
REDUCED_VARIANTS = ("int8", "openvino-int8", "openvino-bf16")  # each the fastest candidate past the accuracy bar
BENCH_DIR = "bench"
REPORT_JSON = "bench.json"  # in BENCH_DIR, with the Markdown report and the plots
REPORT_MD = "bench.md"
PLOT_BY_BATCH = "speedup_vs_batch.png"
PLOT_BY_LENGTH = "speedup_vs_length.png"
PLOT_LATENCY = "latency.png"
UNSHIPPED_INT8_DIR = "slim-int8-unshipped"  # in BENCH_DIR: an int8 graph that failed the bar, timed for comparison
ANALYSIS_DIR = "analysis"
ANALYSIS_JSON = "analysis.json"
ANALYSIS_MD = "analysis.md"
SUPPRESSION_PNG = "suppression.png"
LAYERS_PNG = "layers.png"
# compress's working state, removed on success (kept in the hidden .partial directory for --resume)
STATE_FILE = "state.json"
STAGES_DIR = "stages"
TEACHER_FILE = "teacher_logits.safetensors"  # in STAGES_DIR: the prompt-tuned model's logits per training row
# in STAGES_DIR: its logits on the training rows train_samples left out that a full condensation also distils on
TEACHER_MORE_FILE = "teacher_logits_more.safetensors"

# a graph's integer inputs, by the names the classifier's forward takes; a bi-encoder takes each pair's
# second sentence in the pair_* inputs, padded to the first's length
PAIR_INPUTS = ("pair_input_ids", "pair_attention_mask")
MODEL_INPUTS = ("input_ids", "attention_mask", "token_type_ids", *PAIR_INPUTS)
