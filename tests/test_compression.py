import json

import pytest
import torch

import skeleton
from skeleton.compression import CompressConfig, compress
from skeleton.core.architectures import ffn_layers
from skeleton.core.config import ExportConfig
from skeleton.core.data import DataConfig
from skeleton.core.errors import SkeletonError
from skeleton.core.outputs import partial_path
from skeleton.core.workspace import ModelConfig
from skeleton.method.search import SearchConfig
from skeleton.method.tuning import TrainConfig, TuneConfig, tune
from tests.helpers import tiny_compress_config


def _config(tmp_path, tiny_bert_dir, sst2_dir, **overrides):
    return tiny_compress_config(tmp_path / "out", tiny_bert_dir, sst2_dir, **overrides)


def test_compress_end_to_end_and_reload(tmp_path, tiny_bert_dir, sst2_dir):
    # margin 100 accepts every trial, so three trials walk the grid down to 0.15 (0.50, 0.25, 0.15)
    result = compress(_config(tmp_path, tiny_bert_dir, sst2_dir, search=SearchConfig(margin=100.0, max_trials=3)))
    out = tmp_path / "out"
    report = json.loads((out / "report.json").read_text())
    assert report == json.loads(json.dumps(result.report.to_dict(), default=str))
    assert 1 <= len(report["search"]["trials"]) <= 5
    # the machine it ran on (the plan depends on it), and the whole command's wall time beside its stages'
    from skeleton.core.machine import describe_cpu

    assert report["machine"] == describe_cpu() and "total" in report["timings_seconds"]
    # the suite's simulated CPU (AVX2) has no native bf16: both trainings ran in fp32, nothing timed
    assert report["training_precision"] == {
        "asked": "auto",
        "used": "fp32",
        "why": "this CPU has no native bf16 arithmetic",
        "step_ms": None,
    }
    assert report["config"]["tune"]["precision"] == report["config"]["condense"]["precision"] == "fp32"
    plan = json.loads((out / "pruning_plan.json").read_text())
    assert report["kept_fraction"] == pytest.approx(plan["kept_fraction"])
    assert report["search_value"] == pytest.approx(0.15)
    # each layer's FFN: first linear (32 -> k, with bias) and second (k -> 32, with bias)
    assert report["parameters"]["ffn_after"] == sum(32 * k + k + k * 32 + 32 for k in plan["kept_sizes"])
    assert report["parameters"]["ffn_before"] == 2 * (32 * 64 + 64 + 64 * 32 + 32)
    for name in (
        "model.safetensors",
        "config.json",
        "prompt/adapter_config.json",
        "neuron_scores.safetensors",
        "tokenizer.json",
        "skeleton.json",
    ):
        assert (out / name).is_file(), name
    assert not partial_path(out).exists()
    assert json.loads((out / "config.json").read_text())["skeleton_ffn_sizes"] == plan["kept_sizes"]
    assert set(report["ablations"]) >= {"plain_removal", "bias_compensation"}

    loaded = skeleton.load(out, device="cpu")
    texts = ["the movie was great", "a very dull plot", "awful acting"]
    predictions = loaded.predict(texts)
    # label and score are the argmax and softmax of the slim classifier's own logits
    batch = loaded.encode(texts)
    with torch.no_grad():
        probabilities = torch.softmax(loaded.classifier(**batch.inputs()), -1)
    assert [label for label, _ in predictions] == [loaded.spec.label_names[i] for i in probabilities.argmax(-1)]
    assert [p for _, p in predictions] == pytest.approx(probabilities.max(-1).values.tolist(), abs=1e-6)
    # the reloaded slim model scores the test split exactly as the report says
    from skeleton.core.workspace import Workspace
    from skeleton.method.tuning import evaluate

    workspace = Workspace(
        DataConfig("sst2", str(sst2_dir)), ModelConfig(model=str(tiny_bert_dir), num_virtual_tokens=4)
    )
    accuracy = evaluate(loaded.classifier, workspace.test, torch.device("cpu"))["accuracy"]
    assert accuracy == pytest.approx(report["skeleton"]["test"]["accuracy"])


def test_same_seed_gives_same_plan(tmp_path, tiny_bert_dir, sst2_dir):
    first = compress(_config(tmp_path / "a", tiny_bert_dir, sst2_dir, fast_search=True))
    second = compress(_config(tmp_path / "b", tiny_bert_dir, sst2_dir, fast_search=True))
    plan_a = json.loads((tmp_path / "a" / "out" / "pruning_plan.json").read_text())
    plan_b = json.loads((tmp_path / "b" / "out" / "pruning_plan.json").read_text())
    assert plan_a["keep_indices"] == plan_b["keep_indices"]
    assert first.report.search_value == second.report.search_value


def test_reuses_a_tuned_prompt_and_prunes_outputs(tmp_path, tiny_bert_dir, sst2_dir):
    tuned = tune(
        TuneConfig(
            data=DataConfig("sst2", str(sst2_dir)),
            model=ModelConfig(model=str(tiny_bert_dir), num_virtual_tokens=4),
            train=TrainConfig(epochs=2, batch_size=16, lr=5e-2, head_lr=5e-2),
            output=str(tmp_path / "prompt"),
            device="cpu",
        )
    )
    result = compress(
        _config(
            tmp_path,
            tiny_bert_dir,
            sst2_dir,
            prompt=tuned.output,
            targets=("ffn", "ffn-out"),
            search=SearchConfig(margin=100.0, max_trials=2),
        )
    )
    assert result.report.prompt_tuning is None
    assert result.report.prompt_tuned["test"] == tuned.test
    # margin 100 accepts everything: two trials walk down the grid
    assert [t["value"] for t in result.report.search["trials"]] == [0.5, 0.25]
    loaded = skeleton.load(tmp_path / "out", device="cpu")
    assert loaded.plan.out_keep_indices is not None
    assert len(loaded.predict(["nice film"])) == 1


def test_failure_leaves_no_output_and_resume_continues(tmp_path, tiny_bert_dir, sst2_dir, monkeypatch):
    import skeleton.compression as module

    config = _config(tmp_path, tiny_bert_dir, sst2_dir)
    original = module.binary_search

    def failing(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(module, "binary_search", failing)
    with pytest.raises(KeyboardInterrupt):
        compress(config)
    assert not (tmp_path / "out").exists()
    state = json.loads((partial_path(tmp_path / "out") / "state.json").read_text())
    assert set(state["done"]) == {"precision", "prompt_tuned", "scores"}

    monkeypatch.setattr(module, "binary_search", original)
    monkeypatch.setattr(module, "train_on", _forbid_prior_training(module.train_on))
    config.resume = True
    result = compress(config)
    assert (tmp_path / "out" / "report.json").is_file()
    assert result.report.prompt_tuned["validation"] == state["done"]["prompt_tuned"]["validation"]


def test_a_failed_export_says_where_the_model_is_and_resume_finishes(tmp_path, tiny_bert_dir, sst2_dir, monkeypatch):
    import skeleton.compression as module

    config = _config(tmp_path, tiny_bert_dir, sst2_dir)
    config.export = True
    original = module.export_directory

    def failing(*args, **kwargs):
        raise SkeletonError("fp32 graph differs from PyTorch by 3.80e-01 (tolerance 1e-04)")

    monkeypatch.setattr(module, "export_directory", failing)
    with pytest.raises(SkeletonError) as raised:
        compress(config)
    work = partial_path(tmp_path / "out")
    assert f"the trained Skeleton model is kept in {work}" in str(raised.value) and "--resume" in str(raised.value)
    assert not (tmp_path / "out").exists() and (work / "model.safetensors").is_file()
    quick = ExportConfig(variants=("fp32",), latency_shapes=((1, 8),), latency_repeats=2)
    monkeypatch.setattr(module, "export_directory", lambda directory, _config, **k: original(directory, quick, **k))
    monkeypatch.setattr(module, "train_on", _forbid_prior_training(module.train_on))
    config.resume = True
    assert compress(config).report.export is not None and (tmp_path / "out" / "onnx" / "manifest.json").is_file()


def _forbid_prior_training(train_on):
    def guarded(workspace, classifier, config, device, reporter, description):
        assert description != "prompt tuning", "resume must not tune the prompt again"
        return train_on(workspace, classifier, config, device, reporter, description)

    return guarded


def test_resume_with_other_settings_is_refused(tmp_path, tiny_bert_dir, sst2_dir, monkeypatch):
    import skeleton.compression as module

    monkeypatch.setattr(module, "binary_search", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        compress(_config(tmp_path, tiny_bert_dir, sst2_dir))
    with pytest.raises(SkeletonError, match="different settings"):
        compress(_config(tmp_path, tiny_bert_dir, sst2_dir, scorer="random", resume=True))


def test_config_checks():
    with pytest.raises(ValueError, match="targets"):
        CompressConfig(targets=("attention",))
    with pytest.raises(ValueError, match="round_to"):
        CompressConfig(round_to=0)


def test_load_refuses_other_directories(tmp_path):
    with pytest.raises(SkeletonError, match="not a Skeleton model directory"):
        skeleton.load(tmp_path)


@pytest.mark.slow
def test_default_model_compresses_and_exports_a_real_slice(tmp_path):
    """The whole job on the packaged model and 300 real SST-2 sentences: shapes, files, parity."""
    from skeleton.deploy.predictor import Predictor
    from tests.conftest import SHARED_DATA

    if not (SHARED_DATA / "sst2").is_dir():
        pytest.skip("../shared/data is not beside this checkout")
    config = CompressConfig(
        data=DataConfig("sst2", str(SHARED_DATA / "sst2"), train_samples=300, validation_samples=200, test_samples=100),
        tune=TrainConfig(epochs=1),
        condense=TrainConfig(epochs=0.5),
        search=SearchConfig(max_trials=2),
        targets=("ffn",),  # files, shapes and parity of all six layers; the latency table is tested apart
        fast_search=True,
        # ten steps on 300 sentences do not learn SST-2: this test checks files, shapes and parity,
        # so it goes past the majority-class guard, and the report must say so
        allow_weak_prior=True,
        output=str(tmp_path / "out"),
        device="cpu",
    )
    result = compress(config)
    report = result.report
    validation_gain = report.prompt_tuned["validation"]["accuracy"] - report.majority_class["validation"]["accuracy"]
    assert (report.weak_prior is not None) == (validation_gain < 2.0)
    assert report.kept_sizes is None or all(size % 8 == 0 for size in report.kept_sizes)
    assert report.export.variants["fp32"]["max_abs_diff"] <= 1e-4
    fused = report.export.variants["optimized"]["fused_ops"]
    assert fused.get("Attention") == 6 and fused.get("SkipLayerNormalization") == 12
    predictor = Predictor(tmp_path / "out")
    predictions = predictor.predict(["a masterpiece", "a dreadful mess"])
    assert len(predictions) == 2 and {label for label, _ in predictions} <= {"negative", "positive"}


def write_unlearnable_mrpc(directory):
    """Every pair is the same text, 70% labelled equivalent: no model can beat the majority class."""
    directory.mkdir(parents=True, exist_ok=True)
    header = "Quality\t#1 ID\t#2 ID\t#1 String\t#2 String"
    for name, count in (("train.tsv", 200), ("test.tsv", 50)):
        rows = [f"{1 if i % 10 < 7 else 0}\t{i}\t{i + 1}\tthe movie\tthe film" for i in range(count)]
        (directory / name).write_text("\n".join([header, *rows]) + "\n")
    return directory


def test_majority_class_figures_worked_by_hand(tmp_path, tiny_bert_dir):
    from skeleton.core.workspace import Workspace

    data = write_unlearnable_mrpc(tmp_path / "mrpc")
    workspace = Workspace(DataConfig("mrpc", str(data)), ModelConfig(model=str(tiny_bert_dir), num_virtual_tokens=4))
    test = workspace.majority_metrics()["test"]
    # always "equivalent" on 35 equivalent pairs of 50: accuracy 70; precision 0.7, recall 1, F1 2*0.7/1.7
    assert test == pytest.approx({"accuracy": 70.0, "f1": 100 * 1.4 / 1.7, "majority_label": 1})
    floor = workspace.majority_metrics()["validation"]["accuracy"]
    assert workspace.prior_problem(floor + 2.0, min_gain=2.0) is None
    assert "has not learned the task" in workspace.prior_problem(floor + 1.0, min_gain=2.0)


def test_an_unlearnable_task_stops_after_step_one_and_loses_nothing(tmp_path, tiny_bert_dir):
    from typer.testing import CliRunner

    from cli.main import app

    data = write_unlearnable_mrpc(tmp_path / "mrpc")
    out = tmp_path / "out"
    args = [
        "compress", "--task", "mrpc", "--data-dir", str(data), "--model", str(tiny_bert_dir),
        "--prompt-tokens", "4", "--round-to", "4", "--max-trials", "1", "--condense-epochs", "0.5", "--targets", "ffn",
        "--no-export", "--device", "cpu", "--quiet", "--output", str(out),
    ]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    assert "has not learned the task" in result.output and "--allow-weak-prior" in result.output
    assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output
    assert not out.exists()
    assert (partial_path(out) / "stages" / "prompt_tuned" / "prompt" / "adapter_config.json").is_file()

    resumed = CliRunner().invoke(app, [*args, "--resume", "--allow-weak-prior"])
    assert resumed.exit_code == 0, resumed.output
    report = json.loads((out / "report.json").read_text())
    assert "has not learned the task" in report["weak_prior"]
    assert report["prompt_tuning"] is not None  # the prompt tuned in the first run, reused
    assert report["majority_class"]["test"]["accuracy"] == pytest.approx(70.0)
    assert "majority" in resumed.output  # the summary table's first row (rich may wrap the name)


def test_compress_with_heads_and_a_target_speedup(tmp_path, tiny_bert_dir, sst2_dir, monkeypatch):
    import skeleton.measure.latency as latency

    monkeypatch.setenv("SKELETON_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(latency, "default_grid", lambda full, points: sorted({1, full // 2, full}))
    config = _config(
        tmp_path,
        tiny_bert_dir,
        sst2_dir,
        targets=("ffn", "heads", "layers"),
        search=SearchConfig(margin=100.0, target_speedup=1.2),
        condensed_prompt_tokens=2,
        cost_shapes=((1, 8), (4, 16)),
    )
    report = compress(config).report
    out = tmp_path / "out"
    # one trial, at the target's latency fraction
    assert [t["value"] for t in report.search["trials"]] == [pytest.approx(1 / 1.2)]
    costs = report.cost_model
    assert set(costs["predicted_speedup"]) == {"1x8", "4x16"}
    # the trial's pruned model was timed on the table's runtime: measured beside predicted at every shape,
    # and the shipped plan (the trial's) reports that timing and its slowest shape
    trial = report.search["trials"][0]["details"]
    assert set(trial["measured_speedup"]) == set(trial["predicted_speedup"]) == {"1x8", "4x16"}
    assert costs["measured_speedup"] == trial["measured_speedup"]
    assert costs["slowest_shape"] == min(trial["measured_speedup"], key=trial["measured_speedup"].get)
    # before the search, pruned plans were timed beside the unpruned model at both prompt lengths (4 tokens for
    # the prompt-tuned model, 2 for the Skeleton model) and the cost model refitted to them
    refit = costs["refit"]
    assert refit["runtime"] == costs["table"]["key"]["runtime"] and refit["plans"]
    assert len(refit["points"]) == len(refit["plans"]) + 1
    assert set(refit["points"][0][2]) == {"1x10", "1x12", "4x18", "4x20"}
    assert set(refit["points"][1][2]) == {"1x10", "4x18"}
    assert set(refit["refit"]) == {"1x10", "1x12", "4x18", "4x20"}
    # the target is reached, or the measured table (tiny layers beside fixed costs, timed on a machine
    # that may be busy) put it out of reach and the plan went as far as it can: one head left in every
    # layer it kept (which layers go is the calibration's choice, by condensed accuracy on a tiny model)
    went_as_far = {h for h in report.kept_heads if h} == {1}
    assert costs["predicted_latency_fraction"] <= 1 / 1.2 + 1e-6 or went_as_far
    assert report.prompt_tokens == {"prompt_tuned": 4, "skeleton": 2}
    rows = report.head_weight_calibration["weights"]
    assert [(r["head_weight"], r["prune_layers"]) for r in rows] == [
        (w, layers) for w in (1.0, 4.0, 16.0, 64.0, None) for layers in (False, True)
    ]
    plan = json.loads((out / "pruning_plan.json").read_text())
    kept_layers = plan["kept_layers"] or [0, 1]
    assert plan["kept_heads"] == report.kept_heads
    assert all(1 <= plan["kept_heads"][i] <= 4 for i in kept_layers)
    loaded = skeleton.load(out, device="cpu")
    assert loaded.classifier.num_virtual_tokens == 2
    # skeleton.json, which bench's multiply-accumulate count (the "ideal" speed-up) reads, says so too
    from skeleton.measure.bench import ModelShape

    assert ModelShape.of(out).num_virtual_tokens == 2
    assert [layer.num_heads for layer in ffn_layers(loaded.classifier.backbone)] == [
        plan["kept_heads"][i] for i in kept_layers
    ]
    from skeleton.core.workspace import Workspace
    from skeleton.method.tuning import evaluate

    workspace = Workspace(
        DataConfig("sst2", str(sst2_dir)), ModelConfig(model=str(tiny_bert_dir), num_virtual_tokens=4)
    )
    accuracy = evaluate(loaded.classifier, workspace.test, torch.device("cpu"))["accuracy"]
    assert accuracy == pytest.approx(report.skeleton["test"]["accuracy"])


@pytest.mark.parametrize("scorer", ["skill", "lca"])
def test_compress_with_the_companion_papers_scorers(tmp_path, tiny_bert_dir, sst2_dir, scorer):
    from skeleton.core.scores_and_plans import NeuronScores

    config = _config(
        tmp_path,
        tiny_bert_dir,
        sst2_dir,
        scorer=scorer,
        skill_prompts=2,
        scorer_samples=64,
        tune=TrainConfig(steps=6, batch_size=16, lr=5e-2, head_lr=5e-2, evals_per_epoch=1),
        search=SearchConfig(margin=100.0, max_trials=1),
        allow_weak_prior=True,
    )
    result = compress(config)
    assert result.report.config["scorer"] == scorer and result.report.search_value == pytest.approx(0.5)
    scores = NeuronScores.load(tmp_path / "out" / "neuron_scores.safetensors")
    assert scores.scorer == scorer and [len(s) for s in scores.ffn] == [64, 64]
    if scorer == "lca":  # weight-mass ranks: every neuron once, 128 first
        assert sorted(torch.cat(scores.ffn).tolist()) == list(range(1, 129))
    assert not any((tmp_path / "out").glob("**/skill-prompt-*"))  # the extra prompts stay in the working dir


def test_a_bi_encoder_compresses_exports_and_predicts_pairs(tmp_path, tiny_bert_dir, mrpc_dir, monkeypatch):
    """The whole job for a pair task with the bi-encoder head: heads, layers and FFN neurons removed for
    both sentences at once, distilled condensation unchanged, one ONNX graph taking the pair, and
    ``skeleton predict`` sending tab-separated pairs to it."""
    from typer.testing import CliRunner

    import skeleton.measure.latency as latency
    from cli.main import app
    from skeleton.core.config import ExportConfig
    from skeleton.core.modeling import BI_ENCODER
    from skeleton.core.workspace import Workspace
    from skeleton.deploy.export import export_directory
    from skeleton.deploy.predictor import Predictor
    from skeleton.method.tuning import evaluate

    monkeypatch.setenv("SKELETON_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(latency, "default_grid", lambda full, points: sorted({1, full // 2, full}))
    data = DataConfig("mrpc", str(mrpc_dir))
    model = ModelConfig(model=str(tiny_bert_dir), head=BI_ENCODER, num_virtual_tokens=4)
    config = _config(
        tmp_path,
        tiny_bert_dir,
        mrpc_dir,
        data=data,
        model=model,
        targets=("ffn", "heads", "layers"),
        search=SearchConfig(margin=100.0, target_speedup=1.2),
        cost_shapes=((1, 8), (4, 16)),
    )
    report = compress(config).report
    out = tmp_path / "out"
    assert report.config["model"]["head"] == BI_ENCODER
    assert report.prompt_tuned["validation"]["accuracy"] > report.majority_class["validation"]["accuracy"]
    loaded = skeleton.load(out, device="cpu")
    assert loaded.classifier.head_config.kind == BI_ENCODER
    workspace = Workspace(data, model)
    accuracy = evaluate(loaded.classifier, workspace.test, torch.device("cpu"))["accuracy"]
    assert accuracy == pytest.approx(report.skeleton["test"]["accuracy"])
    export_directory(out, ExportConfig(variants=("fp32",), latency_shapes=((1, 8),), latency_repeats=2))
    pairs = [("good film", "a superb plot"), ("the awful movie", "nice")]
    expected = Predictor(out).predict(pairs)
    result = CliRunner().invoke(app, ["predict", str(out), *(f"{a}\t{b}" for a, b in pairs), "--json"])
    assert result.exit_code == 0, result.output
    printed = [json.loads(line) for line in result.output.strip().splitlines()]
    assert [row["label"] for row in printed] == [label for label, _ in expected]


def test_step_4s_search_again_checkpoints_the_corrected_trials_and_a_resume_predicts_from_their_pairs(tmp_path):
    """What `compress` hands step 4: a search that goes on from corrected trials, running only the values new
    to it, after writing the trials as corrected to the checkpoint; a resumed run takes them, and the plans
    they hold condensed both ways, from there."""
    from types import SimpleNamespace

    import numpy as np

    from skeleton.compression import PromptTuned, _Checkpoint, _run_search
    from skeleton.core.progress import SILENT

    config = CompressConfig(search=SearchConfig(margin=1.0))  # threshold 80 below the teacher's 81
    runs = []

    def trial(value, reporter):  # 0.50 and above hold short; below, 79 short predicted at 80.5
        runs.append(value)
        details = {"short_condensation_accuracy": 85.0 if value >= 0.5 else 79.0, "correct": [True, True]}
        return (85.0 if value >= 0.5 else 80.5), 1.0, details

    def condensation():
        workspace = SimpleNamespace(correct=lambda split, predictions: np.asarray(predictions) == 1)
        return SimpleNamespace(
            config=config, workspace=workspace, planner=SimpleNamespace(kind="kept ratio"), full_pairs=[], trial=trial
        )

    tuned = PromptTuned({"accuracy": 81.0}, {}, {"validation": [1, 1]}, None, 0.0)
    checkpoint = _Checkpoint(tmp_path, config, resume=False)
    search, search_again = _run_search(condensation(), tuned, checkpoint, SILENT)
    assert search.value == 0.05 and runs == [0.5, 0.25, 0.15, 0.1, 0.05]
    # step 4 measured 0.05 in full at 70 and corrected its trial
    chosen = search.trials[-1]
    chosen.validation_accuracy, chosen.accepted = 70.0, False
    chosen.details["full_condensation_accuracy"] = 70.0
    again = search_again(search.trials)
    assert runs[5:] == [] and again.value == 0.1  # no new value on its path: the next accepted one
    saved = checkpoint.done("trials")["trials"]
    assert [t["value"] for t in saved] == [0.5, 0.25, 0.15, 0.1, 0.05] and not saved[-1]["accepted"]
    resumed = condensation()
    search, _ = _run_search(resumed, tuned, _Checkpoint(tmp_path, config, resume=True), SILENT)
    assert runs[5:] == [] and search.value == 0.1 and resumed.full_pairs == [(79.0, 70.0)]


def test_a_chosen_value_that_misses_in_full_sends_a_real_search_on_until_one_holds(
    tmp_path, tiny_bert_dir, sst2_dir, monkeypatch
):
    """End to end on the tiny model, with short trials (every one accepted: margin 100) and full condensations
    below 0.25 made to miss the margin: step 4 condenses 0.05, 0.10 and 0.15 in full, each time searching on
    from the corrected trials; the search then runs a value it had not tried (0.20), which misses in full too,
    and 0.25 holds and ships. The report keeps every trial as corrected, and every full condensation."""
    from skeleton.method.condensation import Condensation

    condensed_in_full = Condensation._condensed_in_full

    def missing_below_a_quarter(self, value, reporter):
        model, plan, accuracy = condensed_in_full(self, value, reporter)
        return model, plan, (-1000.0 if value < 0.249 else accuracy)

    monkeypatch.setattr(Condensation, "_condensed_in_full", missing_below_a_quarter)
    config = _config(tmp_path, tiny_bert_dir, sst2_dir, search=SearchConfig(margin=100.0), trial_steps=2)
    report = compress(config).report
    search = report.search
    values = [round(t["value"], 2) for t in search["trials"]]
    assert values == [0.5, 0.25, 0.15, 0.1, 0.05, 0.2]  # 0.20 tried only when step 4 searched on
    assert report.search_value == pytest.approx(0.25)
    assert search["fallback_from"] == pytest.approx(0.05) and search["searched_again"] == 4
    assert set(search["condensed_in_full"]) == {"0.05", "0.10", "0.15", "0.20", "0.25"}
    for trial in search["trials"]:
        missed = trial["value"] < 0.249
        assert trial["accepted"] is not missed
        if missed:  # judged by the full condensation, no longer by the short one
            assert trial["validation_accuracy"] == trial["details"]["full_condensation_accuracy"] == -1000.0
            assert "drop_interval" not in trial["details"]
    assert report.kept_fraction == pytest.approx(0.25, abs=0.05)
