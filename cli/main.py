"""The ``skeleton`` command line. Each command reads its options, builds its stage's config, calls
one library function and prints a summary; the method itself lives in the library. What a command
decides from its options alone (``--margin`` beside ``--target-speedup``, ``predict``'s text file)
is decided here. Bad input ends with one line on stderr and exit code 2.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from cli.options import (
    CONDENSE_PANEL,
    DATA_PANEL,
    EXPORT_PANEL,
    MODEL_PANEL,
    OUTPUT_PANEL,
    SCORING_PANEL,
    SEARCH_PANEL,
    TEACHER_PANEL,
    Option,
    flag_names,
    in_panel,
    options,
    with_options,
)

# the library's defaults are the command line's: one source, read here (skeleton.core.config is light)
from skeleton.core.config import (
    QUICK_BATCH_SIZES,
    QUICK_LENGTHS,
    RUNTIME_NAMES,
    SCORERS,
    AnalyzeConfig,
    BenchConfig,
    CompareConfig,
    CompressConfig,
    DataConfig,
    EvaluateConfig,
    ExportConfig,
    ModelConfig,
    PredictConfig,
    SearchConfig,
    ServeConfig,
    TrainConfig,
    TritonConfig,
    TuneConfig,
    runtime_named,
    task_train_config,
    tuned_teacher,
)
from skeleton.core.errors import SkeletonError
from skeleton.core.file_names import CONFIG_FILE, MANIFEST_FILE, ONNX_DIR, PROMPT_TUNED_DIR, VARIANT_FILES
from skeleton.core.progress import Reporter
from skeleton.core.reports import BenchReport, CompressReport, ExportSummary, speed_text, trial_judgement
from skeleton.core.tasks import TASKS, TaskSpec, read_description

app = typer.Typer(
    name="skeleton",
    help="Find the neurons, heads and layers a task needs, cut the rest out, ship a slim ONNX and OpenVINO model.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
out = Console()
PER_CLASS = "f1["  # each class's F1 in a metrics dict: f1[<label name>]
err = Console(stderr=True)


def friendly_errors(command: Callable) -> Callable:
    """Turn user errors into one line and exit code 2; Ctrl-C into exit 130 with nothing lost."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except (SkeletonError, ValueError) as error:
            message = escape(flag_names(str(error), command))
            err.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
            raise typer.Exit(code=2) from None
        except KeyboardInterrupt:
            err.print("interrupted: no output was written (finished stages are kept for --resume)")
            raise typer.Exit(code=130) from None

    return wrapper


# tune's and compress's options come from the config dataclasses (type, default, and help from
# their docstrings): cli/options.py. Only options with no config field of their own are written here.
DATA_OPTIONS = options(
    DataConfig,
    (
        "task",
        "data_file",
        "data_format",
        "text_columns",
        "pair_column",
        "label_column",
        "task_file",
        "data_dir",
        "train_samples",
        "validation_samples",
        "test_samples",
        "validation_fraction",
        "validation_rows",
        "validation_min_words",
        "validation_data",
        "test_data",
        "test_fraction",
        "max_rows",
        "seed",
    ),
    panel=DATA_PANEL,
    data_file="data",
    text_columns="text_column",
)
MODEL_OPTIONS = options(
    ModelConfig,
    ("model", "head", "num_virtual_tokens", "prompt_init", "max_length", "use_template"),
    panel=MODEL_PANEL,
    num_virtual_tokens="prompt_tokens",
    use_template="template",
)
# training settings default to the task's recipe (skeleton.core.tasks): None here means "not given"
TRAIN_OPTIONS = in_panel(
    TEACHER_PANEL,
    [
        Option(TrainConfig, "trains", "tune", recipe=True, help_prefix="Prior knowledge injection (step 1): "),
        Option(TrainConfig, "backbone_lr", "tune_lr", recipe=True, help_prefix="Prior knowledge injection: "),
        *(
            Option(TrainConfig, name, recipe=True)
            for name in ("epochs", "steps", "head_init", "batch_size", "lr", "head_lr", "patience")
        ),
    ],
)
CONDENSE_OPTIONS = [
    Option(TrainConfig, "epochs", "condense_epochs", recipe=True, help_prefix="Knowledge condensation: "),
    Option(TrainConfig, "steps", "condense_steps", recipe=True, help_prefix="Knowledge condensation: "),
    Option(TrainConfig, "min_steps", "condense_min_steps", recipe=True, help_prefix="Knowledge condensation: "),
    Option(TrainConfig, "max_samples", "condense_samples", help_prefix="Knowledge condensation: "),
]
# what condensation trains and distils from
CONDENSE_KIND_OPTIONS = [
    Option(TrainConfig, "trains", "condense", recipe=True, help_prefix="Knowledge condensation: "),
    Option(TrainConfig, "backbone_lr", "condense_lr", recipe=True, help_prefix="Knowledge condensation: "),
    Option(TrainConfig, "lora_rank", recipe=True, help_prefix="Knowledge condensation: "),
    Option(TrainConfig, "distill", recipe=True, help_prefix="Knowledge condensation: "),
    Option(TrainConfig, "temperature", recipe=True, help_prefix="Knowledge condensation: "),
]
CONDENSE_OPTIONS = in_panel(CONDENSE_PANEL, CONDENSE_OPTIONS)
CONDENSE_KIND_OPTIONS = in_panel(CONDENSE_PANEL, CONDENSE_KIND_OPTIONS)
OUTPUT_OPTIONS = ("device", "precision", "output", "overwrite")
COMPRESS_OPTIONS = [
    *options(CompressConfig, ("prompt", "teacher", "min_gain", "allow_weak_prior"), panel=TEACHER_PANEL),
    *options(CompressConfig, ("scorer", "attribution_samples", "scorer_samples", "skill_prompts"), panel=SCORING_PANEL),
    *options(
        CompressConfig,
        ("condensed_prompt_tokens", "fast_search", "trial_steps", "bias_compensation", "round_to"),
        panel=SEARCH_PANEL,
    ),
    *options(CompressConfig, ("export",), panel=EXPORT_PANEL),
    *options(CompressConfig, ("resume", *OUTPUT_OPTIONS), panel=OUTPUT_PANEL),
]
SEARCH_OPTIONS = options(SearchConfig, ("max_trials", "confidence", "target_speedup"), panel=SEARCH_PANEL)
Quiet = Annotated[bool, typer.Option(help="No progress bars.")]
Device = Annotated[str, typer.Option(help="auto (CUDA when present, else CPU), cpu, cuda or cuda:N.")]


def _build(cls, group: list[Option], given: dict):
    return cls(**{option.field: given[option.parameter_name] for option in group})


def _stage_configs(given: dict):
    """DataConfig, ModelConfig and the prompt-tuning TrainConfig from the options tune and compress share."""
    chosen = {option.field: given[option.parameter_name] for option in TRAIN_OPTIONS}
    data = _build(DataConfig, DATA_OPTIONS, given)
    train = train_config(data.task_spec(), "tune", {**chosen, "seed": given["seed"]})
    return data, _build(ModelConfig, MODEL_OPTIONS, given), train


def train_config(task: TaskSpec, stage: str, given: dict, tuned_teacher: bool = False) -> TrainConfig:
    """The task's recipe for ``stage`` (for condensation, the recipe of the kind asked for) with the
    options given (``None`` = not given) on top."""
    given = {name: value for name, value in given.items() if value is not None}
    if "epochs" in given:  # epochs asked for replace the recipe's step budget and its floor (two passes are two)
        given.setdefault("steps", None)
        given.setdefault("min_steps", None)
    return replace(task_train_config(task, stage, given.pop("trains", None), tuned_teacher), **given)


def _metrics_text(metrics: dict) -> str:
    """Accuracy and the task's main F1; each class's F1 goes to :func:`_per_class_table`."""
    return "  ".join(
        f"{k} {v:.2f}" for k, v in metrics.items() if k != "majority_label" and not k.startswith(PER_CLASS)
    )


def _per_class_table(title: str, models: dict[str, dict]) -> Table | None:
    """Each class's F1 on validation and test for each model (tasks of more than two classes)."""
    names = [k for k in next(iter(models.values()))["validation"] if k.startswith(PER_CLASS)]
    if not names:
        return None
    table = Table(title=title)
    table.add_column("class")
    for model in models:
        for split in ("validation", "test"):
            table.add_column(f"{model}, {split}", justify="right")
    for key in names:
        cells = [f"{metrics[split][key]:.2f}" for metrics in models.values() for split in ("validation", "test")]
        table.add_row(escape(key[len(PER_CLASS) : -1]), *cells)
    return table


@app.command()
@friendly_errors
@with_options(DATA_OPTIONS, MODEL_OPTIONS, TRAIN_OPTIONS, options(TuneConfig, OUTPUT_OPTIONS))
def tune(given: dict, quiet: Quiet = False) -> None:
    """Tune a model on a task (prior knowledge injection: --tune prompt, lora or full) and save it."""

    data, model_config, train = _stage_configs(given)
    config = TuneConfig(data, model_config, train, **{name: given[name] for name in OUTPUT_OPTIONS})
    from skeleton.method.tuning import tune as run_tune

    result = run_tune(config, Reporter(enabled=not quiet, console=err))
    table = Table(title=f"skeleton tune: {data.task_spec().name}")
    table.add_column("split")
    table.add_column(f"tuned ({config.resolved().train.trains})")
    table.add_column("majority class")
    for split, metrics in (("validation", result.validation), ("test", result.test)):
        table.add_row(split, _metrics_text(metrics), _metrics_text(result.majority_class[split]))
    out.print(table)
    per_class = _per_class_table("F1 per class", {"tuned": {"validation": result.validation, "test": result.test}})
    if per_class is not None:
        out.print(per_class)
    if result.weak_prior:
        err.print(f"[yellow]warning:[/yellow] {result.weak_prior}; compress would stop here", soft_wrap=True)
    minutes = result.train.seconds / 60
    out.print(f"tuned model saved to {result.output} ({result.train.steps} steps, {minutes:.1f} min)")


@app.command()
@friendly_errors
@with_options(
    DATA_OPTIONS,
    MODEL_OPTIONS,
    TRAIN_OPTIONS,
    CONDENSE_OPTIONS,
    CONDENSE_KIND_OPTIONS,
    SEARCH_OPTIONS,
    COMPRESS_OPTIONS,
)
def compress(
    given: dict,
    targets: Annotated[
        str,
        typer.Option(
            help="'ffn'; 'ffn,heads' (and ',layers') to prune attention heads (and whole layers) too, ranked "
            "with the neurons by score per measured latency; 'ffn,ffn-out' to prune the second FFN's output dims.",
            rich_help_panel=SEARCH_PANEL,
        ),
    ] = ",".join(CompressConfig.targets),
    margin: Annotated[
        float | None,
        typer.Option(
            help=f"Accepted validation accuracy drop, in points [default: {SearchConfig.margin}]; given beside "
            "--target-speedup, the fastest model at least that fast within it.",
            rich_help_panel=SEARCH_PANEL,
        ),
    ] = None,
    shapes: Annotated[
        str,
        typer.Option(
            help="Batch x input tokens the search's speed-up must hold at, comma-separated (the objective is the "
            "slowest of them): a server that only sees batch 32 can say '32x64,32x128'.",
            rich_help_panel=SEARCH_PANEL,
        ),
    ] = ",".join(f"{b}x{t}" for b, t in CompressConfig.cost_shapes),
    quiet: Quiet = False,
) -> None:
    """Run Skeleton end to end: tune, score, prune to the fastest plan within the margin, condense, save (and
    export)."""

    search = _build(SearchConfig, SEARCH_OPTIONS, given)
    # a margin given beside a target speed-up asks for the fastest model within it
    search = replace(
        search,
        margin=SearchConfig.margin if margin is None else margin,
        within_margin=search.target_speedup is not None and margin is not None,
    )
    targets_ = tuple(t.strip() for t in targets.split(",") if t.strip())
    config = _compress_config(
        given, COMPRESS_OPTIONS, CONDENSE_KIND_OPTIONS, search=search, targets=targets_, cost_shapes=_shapes(shapes)
    )
    from skeleton.compression import compress as run_compress

    result = run_compress(config, Reporter(enabled=not quiet, console=err))
    print_compress_summary(result.report, result.output)


def _compress_config(given: dict, group: list[Option], kinds: tuple | list = (), **settings) -> CompressConfig:
    """A CompressConfig from the shared data, model and training options, ``group``'s and ``settings``;
    ``kinds``: compress's condensation-kind options."""
    data, model_config, train = _stage_configs(given)
    condense = {option.field: given[option.parameter_name] for option in CONDENSE_OPTIONS + list(kinds)}
    shared = {name: given[name] for name in ("batch_size", "lr", "head_lr", "seed")}
    return CompressConfig(
        data=data,
        model=model_config,
        tune=train,
        condense=train_config(
            data.task_spec(), "condense", {**condense, **shared}, tuned_teacher(train.trains, given.get("teacher"))
        ),
        **{option.field: given[option.parameter_name] for option in group},
        **settings,
    )


COMPARE_OPTIONS = options(
    CompressConfig,
    ("prompt", "attribution_samples", "scorer_samples", "skill_prompts", "bias_compensation", "round_to", "device"),
)


def _names(text: str) -> tuple[str, ...]:
    return tuple(name.strip() for name in text.split(",") if name.strip())


@app.command()
@friendly_errors
@with_options(
    DATA_OPTIONS,
    MODEL_OPTIONS,
    TRAIN_OPTIONS,
    CONDENSE_OPTIONS,
    COMPARE_OPTIONS,
    options(CompareConfig, ("after_condensation", "skill_cache", "output", "overwrite")),
)
def compare(
    given: dict,
    scorers: Annotated[str, typer.Option(help="Comma-separated scorers to compare.")] = ",".join(SCORERS),
    ratio: Annotated[float, typer.Option(help="Kept ratio of FFN neurons, the same for every scorer.")] = (
        CompareConfig.kept_ratio
    ),
    quiet: Quiet = False,
) -> None:
    """Compare scorers on one prompt-tuned model at one kept ratio, before and after condensation."""

    extra = {name: given[name] for name in ("after_condensation", "skill_cache", "output", "overwrite")}
    config = CompareConfig(
        compress=_compress_config(given, COMPARE_OPTIONS), scorers=_names(scorers), kept_ratio=ratio, **extra
    )
    from skeleton.measure.comparison import COMPARE_MD
    from skeleton.measure.comparison import compare as run_compare

    result = run_compare(config, Reporter(enabled=not quiet, console=err))
    out.print((Path(result.output) / COMPARE_MD).read_text(), highlight=False, markup=False)
    out.print(f"report saved to {result.output}")


ANALYZE_OPTIONS = options(
    AnalyzeConfig, ("top_percent", "samples", "skill_prompts", "skill_cache", "scores_from", "seed", "device")
)


@app.command()
@friendly_errors
@with_options(ANALYZE_OPTIONS)
def analyze(
    given: dict,
    directory: Annotated[Path, typer.Argument(help="A directory written by 'skeleton compress'.")],
    scorers: Annotated[str, typer.Option(help="Comma-separated scorers to analyse.")] = ",".join(SCORERS),
    percents: Annotated[str, typer.Option(help="Comma-separated shares of top neurons to zero, in percent.")] = (
        ",".join(f"{p:g}" for p in AnalyzeConfig.suppression_percents)
    ),
    data: Annotated[
        list[Path] | None,
        typer.Option(help="An extra labelled TSV (the task's columns) to evaluate both models on; repeatable."),
    ] = None,
    quiet: Quiet = False,
) -> None:
    """Suppression curves, per-layer distributions and rank correlations of the scorers (DIR/analysis)."""
    from skeleton.core.file_names import ANALYSIS_DIR, ANALYSIS_MD

    try:
        shares = tuple(float(p) for p in percents.split(",") if p.strip())
    except ValueError:
        raise ValueError(f"--percents takes comma-separated numbers, got {percents!r}") from None
    config = AnalyzeConfig(scorers=_names(scorers), suppression_percents=shares, data=tuple(data or ()), **given)
    from skeleton.measure.analysis import analyze as run_analyze

    run_analyze(directory, config, Reporter(enabled=not quiet, console=err))
    out.print((directory / ANALYSIS_DIR / ANALYSIS_MD).read_text(), highlight=False, markup=False)
    out.print(f"analysis saved to {directory / ANALYSIS_DIR} (JSON, Markdown, suppression.png, layers.png)")


def _results_table(report: CompressReport) -> Table:
    """Majority class, prompt-tuned and Skeleton model: accuracy per split, FFN neurons and parameters kept."""
    table = Table(title=f"skeleton compress: {report.task}")
    for column in ("model", "validation", "test", "FFN neurons kept", "backbone params"):
        table.add_column(column, justify="right")
    params = report.parameters
    majority = report.majority_class
    table.add_row("majority class", _metrics_text(majority["validation"]), _metrics_text(majority["test"]), "", "")
    for name, metrics, kept, count in (
        (report.teacher_name, report.prompt_tuned, 1.0, params["backbone_before"]),
        ("Skeleton", report.skeleton, report.kept_fraction, params["backbone_after"]),
    ):
        table.add_row(
            name,
            _metrics_text(metrics["validation"]),
            _metrics_text(metrics["test"]),
            f"{100 * kept:.1f}%",
            f"{count / 1e6:.2f}M",
        )
    return table


def _trial_accuracy(trial: dict) -> str:
    """A trial's validation accuracy, and how it was had when a short condensation predicted it."""
    judged = trial_judgement(trial["details"])
    text = f"{trial['validation_accuracy']:.2f}"
    if judged.how == "predicted":
        source = "" if judged.pairs == 1 else f" by {judged.pairs} plans condensed both ways"
        left = f"{100 * judged.left:.0f}% of its gap to the teacher left"
        return f"{text} (predicted from short {judged.short:.2f}{source}, {left})"
    if judged.how == "gain":
        return f"{text} (predicted: {judged.short:.2f} + {judged.gain:.2f})"
    if judged.how == "full":
        return f"{text} (full; short {judged.short:.2f})"
    return text + {"majority": " (short, majority class)", "short": " (short)"}.get(judged.how, "")


def _trials_table(report: CompressReport) -> Table:
    """One row per search trial: the search value, its validation accuracy and drop interval."""
    kind = report.search.get("kind", "kept ratio")
    costs = report.cost_model
    trials = Table(title=f"search over the {kind}")
    columns = [kind, "validation acc", "drop (interval)", "accepted", "seconds"]
    for column in columns + (["speed-up at the slowest shape", "layers, heads kept"] if costs else []):
        trials.add_column(column, justify="right")
    for trial in report.search["trials"]:
        interval = trial["details"].get("drop_interval")
        extra = []
        if costs:
            details = trial["details"]
            heads = details.get("kept_heads")
            layers = details.get("kept_layers") or range(len(heads or []))
            extra = [_slowest_text(details), "-" if heads is None else f"{len(layers)}, {sum(heads)}"]
        trials.add_row(
            f"{trial['value']:.2f}",
            _trial_accuracy(trial),
            "-"
            if interval is None
            else ("short: " if trial_judgement(trial["details"]).judged_short else "")
            + f"{interval['drop']:.2f} ({interval['low']:.2f} to {interval['high']:.2f}, "
            f"{100 * interval['level']:.0f}%)",
            "yes" if trial["accepted"] else "no",
            f"{trial['seconds']:.0f}",
            *extra,
        )
    return trials


def _slowest_text(details: dict) -> str:
    """A trial's speed-up at its slowest shape: measured (predicted), or predicted alone when untimed."""
    if "measured_speedup" in details:
        shape = details["slowest_shape"]
        measured = details["measured_speedup"][shape]
        return f"{measured:.2f}x ({details['predicted_speedup'][shape]:.2f}x) @{shape}"
    predicted = details.get("predicted_speedup") or {}
    if not predicted:
        return "-"
    shape = min(predicted, key=predicted.get)
    return f"predicted {predicted[shape]:.2f}x @{shape}"


def _speed_table(report: CompressReport) -> Table:
    """The shipped plan's speed-up per shape: measured beside predicted, and the prediction's error."""
    costs = report.cost_model
    table = Table(title="Skeleton model's speed-up per batch x input tokens (table runtime)")
    for column in ("shape", "predicted", "measured", "error"):
        table.add_column(column, justify="right")
    measured, errors = costs.get("measured_speedup") or {}, costs.get("prediction_error") or {}
    for shape, predicted in costs["predicted_speedup"].items():
        timed = measured.get(shape)
        error = "-" if timed is None else f"{100 * errors[shape]:+.0f}%"
        table.add_row(shape, f"{predicted:.2f}x", "-" if timed is None else f"{timed:.2f}x", error)
    return table


def print_compress_summary(report: CompressReport, output: str) -> None:
    out.print(_results_table(report))
    per_class = _per_class_table(
        "F1 per class", {report.teacher_name: report.prompt_tuned, "Skeleton": report.skeleton}
    )
    if per_class is not None:
        out.print(per_class)
    out.print(_trials_table(report))
    costs = report.cost_model
    if costs:
        out.print(_speed_table(report))
        runtime = costs["table"]["key"].get("runtime", "onnx-int8")
        measured = speed_text(costs)
        out.print(
            f"speed-up against the {report.teacher_name} model, both on {runtime}: "
            f"{measured or 'not measured (predicted only)'}; heads kept per layer {report.kept_heads or 'all'}; "
            f"prompt tokens {report.prompt_tokens['skeleton']} (every runtime: 'skeleton bench')"
        )
    differences = [("accuracy", report.accuracy_difference), *report.metric_difference.items()]
    for metric, by_split in differences:
        for split, ci in by_split.items():
            out.print(
                f"Skeleton minus {report.teacher_name}, {split} {metric}: {ci['difference']:+.2f} points "
                f"(95% paired bootstrap interval {ci['low']:+.2f} to {ci['high']:+.2f})"
            )
    if report.weak_prior:
        err.print(f"[yellow]warning:[/yellow] {report.weak_prior} (--allow-weak-prior)", soft_wrap=True)
    if report.search.get("verified_from") is not None:
        out.print(
            f"the chosen {report.search['kind']} {report.search['verified_from']:.2f}'s faster neighbour "
            f"{report.search_value:.2f}, rejected by a prediction, stayed within the margin condensed in full: shipped"
        )
    if report.search.get("fallback_from") is not None:
        shipped = (
            "kept the model whole: no accepted trial stayed within it condensed in full"
            if report.search_value >= 1.0
            else f"the search went on from what full condensations measured and shipped {report.search_value:.2f}"
            if report.search.get("searched_again")
            else f"shipped {report.search_value:.2f}, the fastest accepted trial within it condensed in full"
        )
        out.print(
            f"the chosen {report.search['kind']} {report.search['fallback_from']:.2f} missed the margin once "
            f"condensed in full: {shipped}"
        )
    stages = ", ".join(
        f"{name} {seconds / 60:.1f}" for name, seconds in report.timings_seconds.items() if name != "total"
    )
    removed = f"{100 * report.removed_fraction:.1f}% of FFN neurons"
    if report.kept_layers is not None and report.kept_sizes is not None:
        removed += f" and {len(report.kept_sizes) - len(report.kept_layers)} of {len(report.kept_sizes)} layers"
    condense = report.config.get("condense") or {}
    precision = (report.training_precision or {}).get("used")
    trained = f", trained in {precision}" if precision else ""
    out.print(
        f"removed {removed} (condensation: {condense.get('trains', 'prompt')}{trained}) in "
        f"{report.timings_seconds['total'] / 60:.1f} min ({stages} min); saved to {output}"
    )


TRITON_OPTIONS = [
    Option(TritonConfig, field, f"triton_{field}", help_prefix="With --triton: ")
    for field in ("name", "variant", "max_batch_size", "max_queue_delay_us", "instances", "kind")
]


@app.command("save-transformers")
@friendly_errors
def save_transformers(
    directory: Annotated[
        Path,
        typer.Argument(
            help="A 'skeleton tune' output, or a compress run (its tuned model, DIR/prompt_tuned, is saved)."
        ),
    ],
    output: Annotated[Path, typer.Option(help="Where to write the transformers checkpoint.")],
    overwrite: Annotated[bool, typer.Option(help="Replace an existing output directory.")] = False,
) -> None:
    """Save a fine-tuned model (--tune full or lora) as a plain transformers checkpoint (loads in a pipeline)."""
    from skeleton.deploy.transformers_checkpoint import save_transformers as run_save

    source = directory / PROMPT_TUNED_DIR if (directory / PROMPT_TUNED_DIR / CONFIG_FILE).is_file() else directory
    saved = run_save(source, output, overwrite)
    out.print(f"transformers checkpoint of {source} saved to {saved}")


@app.command()
@friendly_errors
@with_options(TRITON_OPTIONS)
def export(
    given: dict,
    directory: Annotated[Path, typer.Argument(help="A directory written by 'skeleton compress' (or 'skeleton tune').")],
    variants: Annotated[
        str,
        typer.Option(
            help=f"Comma-separated graphs to write, among {', '.join(VARIANT_FILES)}. The default is every one, as "
            "compress writes: those this machine cannot build (OpenVINO not installed, bf16 on a CPU without native "
            "bf16) are left out, and the manifest says why."
        ),
    ] = ",".join(ExportConfig().variants),
    opset: Annotated[int, typer.Option(help="ONNX opset.")] = 17,
    triton: Annotated[
        Path | None,
        typer.Option(
            help="Also write a Triton Inference Server model repository here (ONNX model, tokenizer, ensemble); "
            "when DIR is already exported, only the repository is written."
        ),
    ] = None,
    quiet: Quiet = False,
) -> None:
    """Export a compressed model and its prompt to one standalone ONNX graph per variant (DIR/onnx)."""
    triton_config = TritonConfig(**{name.removeprefix("triton_"): value for name, value in given.items()})
    config = ExportConfig(variants=tuple(v.strip() for v in variants.split(",") if v.strip()), opset=opset)
    if triton is None or not (directory / ONNX_DIR / MANIFEST_FILE).is_file():
        from skeleton.deploy.export import export_directory

        result = export_directory(directory, config, reporter=Reporter(enabled=not quiet, console=err))
        print_export_summary(result, directory)
    if triton is not None:
        from skeleton.deploy.triton import export_triton

        export_triton(directory, triton, triton_config)
        out.print(f"Triton model repository: {triton} (start it with: tritonserver --model-repository {triton})")


def _accuracy_text(value) -> str:
    return "-" if value is None else f"{value:.2f}"


def _latency_text(latency: dict | None) -> str:
    return ", ".join(f"{shape} {ms:.1f}" for shape, ms in (latency or {}).items()) or "-"


def print_export_summary(result: ExportSummary, directory: Path) -> None:
    table = Table(title=f"ONNX export: {directory / result.directory} (choices made on the {result.judged_on})")
    columns = (
        "variant",
        "MB",
        "max |diff| vs torch",
        "agrees with fp32",
        "val acc",
        "test acc",
        "ms (BxT)",
        "texts/s (batch)",
        "ops",
    )
    for column in columns:
        table.add_column(column, justify="right")
    for name, info in result.variants.items():
        diff = info.get("max_abs_diff")
        table.add_row(
            name + ("" if info.get("passes_bar", True) else " (fails the bar)"),
            f"{info['bytes'] / 1e6:.1f}",
            "-" if diff is None else f"{diff:.1e}",
            f"{100 * info['argmax_agreement_fp32']:.1f}%",
            _accuracy_text(info.get("validation_accuracy")),
            _accuracy_text(info.get("test_accuracy")),
            _latency_text(info.get("latency_ms")),
            ", ".join(f"{speed:,.0f} ({batch})" for batch, speed in (info.get("serving") or {}).items()) or "-",
            ", ".join(f"{k} {v}" for k, v in info["fused_ops"].items()) or "-",
        )
    out.print(table)
    if result.reduced_candidates:
        candidates = Table(title="int8 and bf16 candidates (judged fastest first; the first to pass ships)")
        for column in ("variant", "method", "val acc", "test acc", "agrees with fp32", "ms (BxT)", "verdict"):
            candidates.add_column(column, justify="right")
        for info in result.reduced_candidates:
            agreement = info.get("argmax_agreement_fp32")
            candidates.add_row(
                info.get("variant", "-"),
                info["method"]["name"],
                _accuracy_text(info.get("validation_accuracy")),
                _accuracy_text(info.get("test_accuracy")),
                "-" if agreement is None else f"{100 * agreement:.1f}%",
                _latency_text(info.get("latency_ms")),
                info.get("problem") or info.get("error") or _not_judged(info) or "passes",
            )
        out.print(candidates)
    for name, info in result.rejected_variants.items():
        out.print(f"{name} not shipped: {info['reason']}", highlight=False, soft_wrap=True)
    out.print(
        f"default variant: {result.default_variant} (the fastest shipped by latency); "
        f"inputs longer than {result.max_input_tokens} tokens are truncated"
    )
    if result.runtime_choice:
        choice = result.runtime_choice
        out.print(f"predict runs {choice['predict']}, serve runs {choice['serve']}: {choice['why']}", soft_wrap=True)


def _not_judged(candidate: dict) -> str | None:
    return f"not judged: {candidate['not_judged']}" if candidate.get("not_judged") else None


PREDICT_OPTIONS = options(PredictConfig, ("runtime", "batch_size", "device", "threads"))
# a table's columns, for predict's --file and evaluate's --data (help from EvaluateConfig)
COLUMN_OPTIONS = options(
    EvaluateConfig, ("data_format", "text_columns", "pair_column", "label_column"), text_columns="text_column"
)
JsonOutput = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


def _predict_config(given: dict, variant: str | None) -> PredictConfig:
    """PredictConfig from the options; ``--variant`` (the old name) is an alias of ``--runtime``."""
    if variant is not None:
        runtime = runtime_named(variant, "variant")
        if given["runtime"] is not None and runtime_named(given["runtime"]) != runtime:
            raise SkeletonError(f"--variant {variant} and --runtime {given['runtime']} disagree: give --runtime alone")
        err.print(f"note: --variant is an alias of --runtime: --runtime {runtime}", highlight=False)
        given = {**given, "runtime": runtime}
    return _build(PredictConfig, PREDICT_OPTIONS, given)


def _json_line(record: dict) -> None:
    import json

    out.print(json.dumps(record, ensure_ascii=False), highlight=False, soft_wrap=True, markup=False)


@app.command()
@friendly_errors
@with_options(PREDICT_OPTIONS, COLUMN_OPTIONS)
def predict(
    given: dict,
    directory: Annotated[Path, typer.Argument(help="A compressed model directory with onnx/, or the onnx/ directory.")],
    texts: Annotated[
        list[str] | None, typer.Argument(help="Texts to classify; for pair tasks 'text1<TAB>text2'.")
    ] = None,
    file: Annotated[
        str | None,
        typer.Option(
            help="Read inputs from a file, '-' for standard input: one per line (pairs tab-separated; a blank "
            "line is an empty text, answered, never dropped), or with --text-column a table's column(s)."
        ),
    ] = None,
    variant: Annotated[
        str | None, typer.Option(help="Alias of --runtime, kept for old scripts ('int8' = 'onnx-int8').")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object per input: text, label, score and every label's score.")
    ] = False,
) -> None:
    """Classify texts with an exported model: one answer per input (label, score, text), in order."""
    from skeleton.deploy.inputs import line_inputs, read_lines, table_inputs, with_columns
    from skeleton.deploy.predictor import Predictor

    config = _predict_config(given, variant)
    if given["label_column"] is not None:
        raise SkeletonError("--label-column: predict reads no labels; 'skeleton evaluate' scores a labelled file")
    table = bool(given["text_column"])
    if table and file is None:
        raise SkeletonError("--text-column names a table's column: give the table with --file")
    lines = list(texts or []) if table else [*(texts or []), *(read_lines(file) if file is not None else [])]
    if not lines and not table:
        raise SkeletonError("no texts: pass them as arguments, or with --file (- for standard input)")
    predictor = Predictor(directory, device=config.device, runtime=config.runtime, threads=config.threads)
    if table:
        spec = with_columns(predictor.task, tuple(given["text_column"]), given["pair_column"])
        inputs = [*line_inputs(lines, predictor.is_pair, "arguments"), *table_inputs(file, spec, given["data_format"])]
    else:
        inputs = line_inputs(lines, predictor.is_pair, "stdin" if file == "-" else str(file or "arguments"))
    if not inputs:
        return
    probabilities = predictor.probabilities(inputs, batch_size=config.batch_size)  # (inputs, labels)
    for text, row in zip(inputs, probabilities, strict=True):
        best = int(row.argmax())
        label, score = predictor.label_names[best], float(row[best])
        if as_json:
            scores = {name: round(float(p), 6) for name, p in zip(predictor.label_names, row, strict=True)}
            _json_line(
                {
                    "text": text if isinstance(text, str) else list(text),
                    "label": label,
                    "score": round(score, 6),
                    "scores": scores,
                }
            )
        else:
            shown = text if isinstance(text, str) else "\t".join(text)
            out.print(f"{label}\t{score:.4f}\t{shown}", highlight=False, soft_wrap=True, markup=False)


@app.command()
@friendly_errors
@with_options(PREDICT_OPTIONS, COLUMN_OPTIONS)
def evaluate(
    given: dict,
    directory: Annotated[Path, typer.Argument(help="A compressed model directory with onnx/, or the onnx/ directory.")],
    data: Annotated[
        str,
        typer.Option(
            help="A labelled file ('-' for standard input): a built-in task's GLUE-style TSV, or CSV, TSV, "
            "JSON Lines or Parquet with --text-column and --label-column."
        ),
    ],
    as_json: JsonOutput = False,
) -> None:
    """Score an exported model on a labelled file: accuracy and macro-F1 with 95% intervals, each class's
    precision, recall and F1, the confusion matrix."""
    config = EvaluateConfig(
        data_file=data,
        data_format=given["data_format"],
        text_columns=tuple(given["text_column"] or ()),
        pair_column=given["pair_column"],
        label_column=given["label_column"],
        run=_predict_config(given, None),
    )
    from skeleton.measure.accuracy import evaluate_file

    result = evaluate_file(directory, config)
    if as_json:
        _json_line(result.to_dict())
        return
    print_evaluation(result)


def print_evaluation(result) -> None:
    out.print(f"{result.model} ({result.runtime}) on {result.data}: {result.rows} rows", highlight=False)
    table = Table()
    for column in ("metric", "value", f"{100 * next(iter(result.metrics.values()))['level']:.0f}% interval"):
        table.add_column(column, justify="right")
    for name, figure in result.metrics.items():
        table.add_row(name, f"{figure['value']:.2f}", f"{figure['low']:.2f} to {figure['high']:.2f}")
    out.print(table)
    classes = Table(title="per class (confusion: rows true, columns predicted)")
    for column in ("class", "precision", "recall", "F1", "support", *result.label_names):
        classes.add_column(escape(column), justify="right")
    for name, counts in zip(result.label_names, result.confusion, strict=True):
        figures = result.per_class[name]
        cells = [f"{figures[k]:.2f}" for k in ("precision", "recall", "f1")]
        classes.add_row(escape(name), *cells, str(figures["support"]), *map(str, counts))
    out.print(classes)
    out.print(f"{result.rows / result.seconds:.0f} rows/s, tokenizer included ({result.seconds:.1f} s)")


SERVE_OPTIONS = options(
    ServeConfig,
    [
        "host",
        "port",
        "runtime",
        "max_batch_tokens",
        "max_batch_size",
        "max_wait_ms",
        "max_queue",
        "max_client_batch",
        "max_input_chars",
        "threads",
        "streams",
        "static_batch_one",
        "spinning",
        "api_key",
        "no_auth",
        "drain_seconds",
    ],
)


@app.command()
@friendly_errors
@with_options(SERVE_OPTIONS)
def serve(
    given: dict,
    models: Annotated[
        list[str], typer.Argument(help="Exported model directories, each DIR or NAME=DIR (name: the directory's).")
    ],
    device: Device = "auto",
) -> None:
    """Serve exported models over HTTP with dynamic batching (docs at /docs, metrics at /metrics)."""
    import os

    given["api_key"] = given.get("api_key") or os.environ.get("SKELETON_API_KEY") or None
    config = ServeConfig(device=device, **given)
    from skeleton.deploy.model_queues import parse_model_arguments
    from skeleton.deploy.server import serve as run_server

    named = parse_model_arguments(models)
    runtime = config.runtime or "each model's graph for serving"
    key = "API key required" if config.api_key else "no API key"

    announced = []

    def announce(line: str) -> None:  # once the models are loaded and the port is bound: the address, then notes
        if not announced:
            line = f"serving {', '.join(named)} on {line} ({runtime}; {key}); Ctrl-C stops"
        announced.append(line)
        err.print(line, highlight=False, soft_wrap=True)

    run_server(named, config, announce)


def _shapes(text: str) -> tuple[tuple[int, int], ...]:
    """``"1x16,32x128"`` -> ((1, 16), (32, 128))."""
    try:
        shapes = tuple(
            tuple(int(v) for v in part.strip().lower().split("x")) for part in text.split(",") if part.strip()
        )
    except ValueError:
        shapes = ()
    if not shapes or any(len(s) != 2 or min(s) < 1 for s in shapes):
        raise SkeletonError(f"--shapes takes positive batch x tokens pairs such as 1x16,32x128, got {text!r}")
    return shapes


def _numbers(text: str, option: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise SkeletonError(f"{option} takes comma-separated whole numbers, got {text!r}") from None


HeadToHead = Annotated[
    bool,
    typer.Option(
        help="Time each runtime's two models alternating on their own, one runtime after the other, not every "
        "pair in one rotation, where other runtimes' calls slow a batch-1 call."
    ),
]
StaticBatchOne = Annotated[
    bool,
    typer.Option(
        help="OpenVINO runs batches of one on graphs compiled for each length up to 128 tokens, on both "
        "sides, as 'serve --static-batch-one' does (off: as serve and predict by default)."
    ),
]


@app.command()
@friendly_errors
def bench(
    directory: Annotated[Path, typer.Argument(help="A directory written by 'skeleton compress' (with onnx/).")],
    batch_sizes: Annotated[str, typer.Option(help="Comma-separated batch sizes.")] = "1,8,32,64",
    lengths: Annotated[str, typer.Option(help="Comma-separated input lengths in tokens (the prompt comes on top).")] = (
        "16,32,64,128,256"
    ),
    quick: Annotated[bool, typer.Option(help="A small grid: batch 1, 32 x 16, 128 tokens.")] = False,
    runtimes: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated runtimes (default: every one this machine offers): " + ", ".join(RUNTIME_NAMES)
        ),
    ] = None,
    threads: Annotated[int | None, typer.Option(help="Intra-op threads (default: one per core).")] = None,
    repeats: Annotated[int, typer.Option(help="Alternated rounds per grid point (at most).")] = 10,
    calls_per_turn: Annotated[
        int,
        typer.Option(
            help="Calls of each runtime in a row per round, the last timed: 1 times each call just after the "
            "others ran (caches cold); 3 times it with its own model in the caches, as when it serves alone."
        ),
    ] = BenchConfig.calls_per_turn,
    head_to_head: HeadToHead = BenchConfig.head_to_head,
    static_batch_one: StaticBatchOne = BenchConfig.static_batch_one,
    data: Annotated[
        Path | None, typer.Option(help="A task TSV whose real sentences are also timed end to end.")
    ] = None,
    device: Device = "auto",
    output: Annotated[Path | None, typer.Option(help="Report folder (default: DIR/bench).")] = None,
    quiet: Quiet = False,
) -> None:
    """Time the Skeleton model against its teacher under every runtime; report in DIR/bench/."""

    config = BenchConfig(
        batch_sizes=QUICK_BATCH_SIZES if quick else _numbers(batch_sizes, "--batch-sizes"),
        lengths=QUICK_LENGTHS if quick else _numbers(lengths, "--lengths"),
        runtimes=None if runtimes is None else tuple(r.strip() for r in runtimes.split(",") if r.strip()),
        threads=threads,
        repeats=repeats,
        min_repeats=min(5, repeats),
        calls_per_turn=calls_per_turn,
        head_to_head=head_to_head,
        static_batch_one=static_batch_one,
        data=None if data is None else str(data),
        device=device,
        output=None if output is None else str(output),
    )
    from skeleton.measure.bench import run_bench

    report = run_bench(directory, config, Reporter(enabled=not quiet, console=err))
    print_bench_summary(report, output or directory / "bench")


def print_bench_summary(report: BenchReport, folder: Path) -> None:
    teacher = report.teacher or "unpruned"
    table = Table(title=f"Skeleton (fastest shippable runtime) vs {teacher} (fastest runtime): speed-up")
    lengths = sorted({p["length"] for p in report.points})
    table.add_column("batch \\ tokens", justify="right")
    for length in lengths:
        table.add_column(str(length), justify="right")
    for batch in sorted({p["batch"] for p in report.points}):
        cells = []
        for length in lengths:
            point = next(p for p in report.points if p["batch"] == batch and p["length"] == length)
            head = point["headline"]
            cells.append(
                "-"
                if head is None
                else f"{head['speedup']:.2f}x {head['skeleton_runtime']}/{head['prompt_tuned_runtime']}"
            )
        table.add_row(str(batch), *cells)
    out.print(table)
    span = report.headline_range()
    if span:
        out.print(f"headline speed-up {span[0]:.2f}x to {span[1]:.2f}x over the grid")
    out.print(f"report: {folder}/bench.md, bench.json and plots ({report.seconds / 60:.1f} min)")


@app.command()
@friendly_errors
def tasks(
    task_file: Annotated[
        list[Path] | None, typer.Option(help="Also show the task a description file describes (repeatable).")
    ] = None,
) -> None:
    """List the built-in tasks (each a description in skeleton/core/task_descriptions/) and any --task-file."""
    table = Table(title="tasks")
    for column in ("task", "source", "texts", "labels", "template", "recipe"):
        table.add_column(column, overflow="fold")
    described = [(spec, "built-in") for spec in TASKS.values()]
    described += [(read_description(path), str(path)) for path in task_file or []]
    for spec, source in described:
        recipe = [f"{k}={v}" for k, v in spec.tune.items()]
        recipe += [f"condense {k}={v}" for k, v in spec.condense.items()]
        for stage, kinds in (("tune", spec.tune_backbone), ("condense", spec.condense_backbone)):
            recipe += [f"{stage} {kind} {k}={v}" for kind, fields in kinds.items() for k, v in fields.items()]
        recipe += ["fast-search"] * spec.fast_search + [f"validation-rows={spec.validation_rows}"] * (
            spec.validation_rows != "all"
        )
        texts = ", ".join(spec.text_columns) + (" (pair)" if spec.is_pair else " (joined)" * spec.joined)
        labels = ", ".join(spec.label_names) or "from the data (sorted)"
        row = (texts or ", ".join(spec.text_fields), labels, spec.template, ", ".join(recipe) or "-")
        table.add_row(spec.name, source, *row)
    out.print(table)


def main() -> None:
    app(prog_name="skeleton")


if __name__ == "__main__":
    sys.exit(main())
