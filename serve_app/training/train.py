"""Train the layout detector from scratch on synthetic pages, on CPU, within a wall-clock budget.

The run generates its training set (``serve_app.training.synth``) unless it already exists, trains a
detectron2 Faster R-CNN (``detector_config.build_cfg``) with a fixed seed and a warmup + cosine learning
rate, and exports half-precision weights plus ``config.yaml`` for ``LayoutPredictor``. Checkpoints and
metrics come from detectron2's stock hooks (``PeriodicCheckpointer``; ``PeriodicWriter`` with
``CommonMetricPrinter`` and ``JSONWriter``). ``--out/metrics.jsonl`` holds the metric lines and the run's
events (lines with an ``event`` key: data generation, schedule changes, start, end, export).

The schedule is planned in iterations (``--max-iter``). If the measured speed says the plan would overrun
``--max-minutes`` (data generation included), the schedule is shortened so the cosine still anneals (and may
grow back towards the plan early on, if the machine was only briefly busy), and a hard stop saves a
checkpoint and exports before the budget ends. ``--resume`` continues from the last
checkpoint in ``--out`` (schedule, optimizer state and used time included).

CLI::

    python -m serve_app.training.train --out build/train/r18 --max-iter 2500 --max-minutes 75 \\
        --export models/layout_detector
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import signal
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from serve_app.models.layout import import_detectron2
from serve_app.training import synth
from serve_app.training.detector_config import build_cfg
from serve_app.training.export import export_model

try:
    from detectron2.checkpoint import DetectionCheckpointer
    from detectron2.config import CfgNode
    from detectron2.data import (
        DatasetCatalog,
        MetadataCatalog,
        build_detection_train_loader,
        get_detection_dataset_dicts,
    )
    from detectron2.data.datasets import register_coco_instances
    from detectron2.data.samplers import RepeatFactorTrainingSampler, TrainingSampler
    from detectron2.engine import HookBase, SimpleTrainer, hooks
    from detectron2.modeling import build_model
    from detectron2.solver.build import get_default_optimizer_params, maybe_add_gradient_clipping
    from detectron2.utils.env import seed_all_rng
    from detectron2.utils.events import CommonMetricPrinter, EventStorage, JSONWriter
    from detectron2.utils.logger import setup_logger
except ImportError:
    import_detectron2()  # raises ModelUnavailable saying how to install detectron2 if that is the cause
    raise

REPO = Path(__file__).resolve().parents[2]
TRAIN_DATASET = "layout_synth_train"
REAL_DATASET = "layout_real_train"
EXPORT_MARGIN_S = 60.0  # kept free at the end of the budget for the final checkpoint and the export
DEFAULT_LR = {"adamw": 5e-4, "sgd": 0.02}
DEFAULT_WEIGHT_DECAY = {"adamw": 0.05, "sgd": 1e-4}
METRICS_FILE = "metrics.jsonl"  # JSONWriter's metric lines and the run's event lines, in --out
KEEP_CHECKPOINTS = 2  # periodic checkpoints kept besides model_final.pth


@dataclass(frozen=True)
class EventLog:
    """Run events as JSON lines with an ``event`` key: printed, and appended to ``path``."""

    path: Path

    def __call__(self, event: str, **fields: Any) -> None:
        line = json.dumps({"event": event, "time": round(time.time(), 1), **fields})
        print(line, flush=True)
        with self.path.open("a", encoding="utf-8") as f:
            f.write(line + "\n")


@dataclass(frozen=True)
class DataSpec:
    """Which synthetic training set to use (generated on first use)."""

    root: Path
    seed: int
    docs: int
    pages: int
    dpi: int


# ----------------------------------------------------------------------------------------------- data


def ensure_dataset(spec: DataSpec, log: EventLog) -> Path:
    """Return the COCO json of the training set, generating it unless a complete copy exists."""
    path = spec.root / "annotations.json"
    if path.is_file():
        info = json.loads(path.read_text(encoding="utf-8"))
        expected = (spec.seed, spec.dpi, spec.docs * spec.pages)
        found = (info["info"].get("seed"), info["info"].get("dpi"), len(info["images"]))
        if found == expected:
            return path
        raise SystemExit(f"{path} holds (seed, dpi, pages) {found}, not {expected}: use another --data dir")
    start = time.monotonic()
    log("generate_data", root=str(spec.root), pages=spec.docs * spec.pages, dpi=spec.dpi)
    path = synth.write_dataset(
        spec.root, seed=spec.seed, num_docs=spec.docs, pages_per_doc=spec.pages, dpi=spec.dpi
    )
    log("generated_data", seconds=round(time.monotonic() - start, 1))
    return path


def register_dataset(name: str, json_path: Path) -> None:
    """(Re-)register a COCO-format dataset under ``name``; image paths are relative to its directory."""
    if name in DatasetCatalog.list():
        DatasetCatalog.remove(name)
        MetadataCatalog.remove(name)
    register_coco_instances(name, {}, str(json_path), str(json_path.parent))


# ------------------------------------------------------------------------------------------ optimizer


def build_optimizer(cfg: CfgNode, model: torch.nn.Module, kind: str) -> torch.optim.Optimizer:
    """AdamW (default; converges fastest from scratch in short schedules) or SGD with momentum.

    Norm layers get ``SOLVER.WEIGHT_DECAY_NORM``; gradients are clipped as ``SOLVER.CLIP_GRADIENTS`` says,
    including ``CLIP_TYPE: full_model`` (one norm over all parameters), which core detectron2 lacks.
    """
    params = get_default_optimizer_params(
        model,
        base_lr=cfg.SOLVER.BASE_LR,
        weight_decay=cfg.SOLVER.WEIGHT_DECAY,
        weight_decay_norm=cfg.SOLVER.WEIGHT_DECAY_NORM,
    )
    extra: dict[str, Any] = {}
    optimizer_cls: type[torch.optim.Optimizer] = torch.optim.AdamW
    if kind == "sgd":
        optimizer_cls = torch.optim.SGD
        extra = {"momentum": cfg.SOLVER.MOMENTUM, "nesterov": cfg.SOLVER.NESTEROV}
    clipped: Any = _with_clipping(cfg, optimizer_cls)
    return clipped(params, lr=cfg.SOLVER.BASE_LR, weight_decay=cfg.SOLVER.WEIGHT_DECAY, **extra)


def _with_clipping(cfg: CfgNode, optimizer_cls: type[torch.optim.Optimizer]) -> type[torch.optim.Optimizer]:
    clip = cfg.SOLVER.CLIP_GRADIENTS
    if not clip.ENABLED or clip.CLIP_TYPE != "full_model":
        return maybe_add_gradient_clipping(cfg, optimizer_cls)
    max_norm, norm_type = float(clip.CLIP_VALUE), float(clip.NORM_TYPE)

    class FullModelClipped(optimizer_cls):  # type: ignore[valid-type,misc]
        def step(self, closure: Any = None) -> Any:
            params = [p for group in self.param_groups for p in group["params"]]
            torch.nn.utils.clip_grad_norm_(params, max_norm, norm_type)
            return super().step(closure)

    return FullModelClipped


def lr_factor(it: int, *, total: int, warmup: int, warmup_factor: float) -> float:
    """Linear warmup from ``warmup_factor`` to 1 over ``warmup`` iterations, then cosine to 0 at ``total``."""
    if it < warmup:
        alpha = it / max(warmup, 1)
        return warmup_factor * (1 - alpha) + alpha
    progress = (it - warmup) / max(total - warmup, 1)
    return 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))


# ------------------------------------------------------------------------------------------- trainer


class LayoutTrainer(SimpleTrainer):
    """SimpleTrainer whose end (``max_iter``) may move, that can stop early, and that counts used time."""

    def __init__(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer, *, max_iter: int) -> None:
        super().__init__(model, None, optimizer)
        self.max_iter = max_iter
        self.stop_reason: str | None = None
        self.seconds_before = 0.0  # training seconds used by earlier (resumed) runs
        self.process_start = time.monotonic()

    def used_seconds(self) -> float:
        return self.seconds_before + time.monotonic() - self.process_start

    def request_stop(self, reason: str) -> None:
        if self.stop_reason is None:
            self.stop_reason = reason

    def train(self, start_iter: int, max_iter: int) -> None:
        """Run iterations ``start_iter .. max_iter - 1`` unless stopped; ``self.max_iter`` may shrink."""
        self.iter = self.start_iter = start_iter
        self.max_iter = max_iter
        with EventStorage(start_iter) as self.storage:
            try:
                self.before_train()
                for self.iter in itertools.count(start_iter):
                    if self.iter >= self.max_iter or self.stop_reason is not None:
                        break
                    self.before_step()
                    self.run_step()
                    self.after_step()
            finally:
                self.after_train()

    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = super().state_dict()
        state["max_iter"] = self.max_iter
        state["used_seconds"] = self.used_seconds()
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict(state_dict)
        self.max_iter = int(state_dict.get("max_iter", self.max_iter))
        self.seconds_before = float(state_dict.get("used_seconds", 0.0))
        self.process_start = time.monotonic()


class CosineLR(HookBase):
    """Sets every parameter group's learning rate before each step from ``lr_factor``."""

    def __init__(self, *, warmup: int, warmup_factor: float) -> None:
        self.warmup = warmup
        self.warmup_factor = warmup_factor

    def before_step(self) -> None:
        trainer = self.trainer
        factor = lr_factor(
            trainer.iter, total=trainer.max_iter, warmup=self.warmup, warmup_factor=self.warmup_factor
        )
        for group in trainer.optimizer.param_groups:
            group["lr"] = group.setdefault("initial_lr", group["lr"]) * factor
        trainer.storage.put_scalar("lr", trainer.optimizer.param_groups[0]["lr"], smoothing_hint=False)


class TimeBudget(HookBase):
    """Fits the schedule to the budget from the measured speed, and stops before the budget ends.

    When the remaining planned iterations would overrun, ``max_iter`` is shortened (the cosine then anneals
    sooner). In the first half of the schedule it may grow back towards the plan, never beyond it, for
    example after a slow start caused by other load on the machine. Every step it records ``max_iter`` and
    ``used_seconds`` in the event storage, for the metric writers.
    """

    def __init__(
        self,
        *,
        budget_s: float,
        planned_iter: int,
        log: EventLog,
        margin_s: float = EXPORT_MARGIN_S,
        check_every: int = 20,
    ) -> None:
        self.budget_s = budget_s
        self.planned_iter = planned_iter
        self.log = log
        self.margin_s = margin_s
        self.check_every = check_every
        self.step_seconds: list[float] = []
        self._t = 0.0

    def before_step(self) -> None:
        self._t = time.perf_counter()

    def after_step(self) -> None:
        trainer = self.trainer
        self.step_seconds.append(time.perf_counter() - self._t)
        left = self.budget_s - self.margin_s - trainer.used_seconds()
        per_iter = seconds_per_iter(self.step_seconds)
        done = trainer.iter + 1
        if left < per_iter:
            trainer.request_stop("time budget")
        elif len(self.step_seconds) >= 2 * self.check_every and done % self.check_every == 0:
            self._fit_schedule(done, left, per_iter)
        trainer.storage.put_scalars(
            max_iter=trainer.max_iter, used_seconds=trainer.used_seconds(), smoothing_hint=False
        )

    def _fit_schedule(self, done: int, left: float, per_iter: float) -> None:
        trainer = self.trainer
        target = min(self.planned_iter, done + int(left / (per_iter * 1.03)))  # 3% safety on the speed
        current = trainer.max_iter
        grow = target > current * 1.02 and done < current // 2
        if target < current or grow:
            self.log(
                "schedule_changed",
                at_iter=done,
                old_max_iter=current,
                new_max_iter=target,
                s_per_iter=round(per_iter, 3),
            )
            trainer.max_iter = target


def seconds_per_iter(step_seconds: Sequence[float], window: int = 100) -> float:
    """Mean of the recent step times, ignoring the first (warm-up) step when there are others."""
    recent = list(step_seconds[1:] if len(step_seconds) > 1 else step_seconds)[-window:]
    return sum(recent) / len(recent)


class MovingEndCheckpointer(hooks.PeriodicCheckpointer):
    """detectron2's ``PeriodicCheckpointer`` whose final checkpoint follows the run's moving end.

    The stock hook reads ``max_iter`` once, before training; here the end moves (``TimeBudget``) and the run
    can stop early (time budget, SIGTERM), so ``model_final`` is written at whichever step ends the run.
    Register it after ``TimeBudget``, which may move the end in the same step.
    """

    def after_step(self) -> None:
        trainer = self.trainer
        self.max_iter = trainer.iter + 1 if trainer.stop_reason is not None else trainer.max_iter
        super().after_step()


class MetricPrinter(CommonMetricPrinter):
    """detectron2's console printer (losses, lr, speed, ETA), with the ETA following the moving end."""

    def __init__(self, trainer: LayoutTrainer) -> None:
        super().__init__(max_iter=trainer.max_iter)
        self.trainer = trainer

    def write(self) -> None:
        self._max_iter = self.trainer.max_iter  # the stock printer takes the end once, at construction
        super().write()


# ------------------------------------------------------------------------------------------------ run


def make_cfg(args: argparse.Namespace) -> CfgNode:
    """The training config: ``build_cfg`` plus the command line's schedule and output choices."""
    cfg = build_cfg(tiny=args.tiny)
    cfg.DATASETS.TRAIN = (TRAIN_DATASET, REAL_DATASET) if args.real_data else (TRAIN_DATASET,)
    cfg.DATASETS.TEST = ()
    cfg.OUTPUT_DIR = str(args.out)
    cfg.SEED = args.seed
    cfg.SOLVER.IMS_PER_BATCH = args.batch
    cfg.SOLVER.MAX_ITER = args.max_iter
    cfg.SOLVER.BASE_LR = args.lr if args.lr is not None else DEFAULT_LR[args.optimizer]
    wd = args.weight_decay if args.weight_decay is not None else DEFAULT_WEIGHT_DECAY[args.optimizer]
    cfg.SOLVER.WEIGHT_DECAY = wd
    cfg.SOLVER.WARMUP_ITERS = min(args.warmup, max(args.max_iter // 4, 1))
    cfg.SOLVER.CHECKPOINT_PERIOD = args.checkpoint_period
    if args.input_size:
        cfg.INPUT.MIN_SIZE_TRAIN = (args.input_size,)
        cfg.INPUT.MIN_SIZE_TEST = args.input_size
    cfg.freeze()
    return cfg


def real_repeat_factor(n_synthetic: int, n_real: int, real_share: float) -> float:
    """How often each real page is drawn per epoch, for real pages to be ``real_share`` of the samples.

    Synthetic pages are drawn once per epoch; the sampler rounds fractional factors stochastically.
    """
    if not 0.0 < real_share < 1.0:
        raise ValueError(f"real_share must be between 0 and 1, not {real_share}")
    if n_synthetic <= 0 or n_real <= 0:
        raise ValueError("both the synthetic and the real set need pages")
    return real_share / (1.0 - real_share) * n_synthetic / n_real


def balanced_factors(records: Sequence[dict[str, Any]], mean: float, threshold: float | None) -> torch.Tensor:
    """Per-page repeat factors averaging ``mean``; with ``threshold``, tilted towards rare classes.

    The tilt is LVIS's rule (detectron2's ``repeat_factors_from_category_frequency``, square root): a page
    is drawn in proportion to ``max(1, sqrt(threshold / f))`` for the rarest class on it, where ``f`` is
    the share of pages showing that class. Rescaled so the factors still average ``mean``: the set's
    share of the samples stays what ``real_repeat_factor`` made it.
    """
    if threshold is None:
        return torch.full((len(records),), float(mean))
    if threshold <= 0.0:
        raise ValueError(f"the class-balance threshold must be positive, not {threshold}")
    tilt = RepeatFactorTrainingSampler.repeat_factors_from_category_frequency(records, threshold)
    return tilt * (mean / float(tilt.mean()))


def build_loader(
    cfg: CfgNode, start_iter: int, real_share: float | None = None, class_balance: float | None = None
) -> Any:
    """Infinite shuffled loader; the order is seeded by ``cfg.SEED`` and the starting iteration.

    With two training sets (synthetic, then real) and ``real_share``, real pages make up that share
    of the samples whatever the sizes of the two sets; ``class_balance`` draws the real pages that
    show rare classes more often, within that share (``balanced_factors``).
    """
    sets = [
        get_detection_dataset_dicts([name], filter_empty=cfg.DATALOADER.FILTER_EMPTY_ANNOTATIONS)
        for name in cfg.DATASETS.TRAIN
    ]
    dicts = [record for records in sets for record in records]
    seed = cfg.SEED + start_iter
    if real_share is None or len(sets) < 2:
        sampler: TrainingSampler | RepeatFactorTrainingSampler = TrainingSampler(
            len(dicts), shuffle=True, seed=seed
        )
    else:
        synthetic, real = sets
        factor = real_repeat_factor(len(synthetic), len(real), real_share)
        factors = torch.cat([torch.ones(len(synthetic)), balanced_factors(real, factor, class_balance)])
        sampler = RepeatFactorTrainingSampler(factors, shuffle=True, seed=seed)
    return build_detection_train_loader(cfg, dataset=dicts, sampler=sampler)


def train(args: argparse.Namespace, *, process_start: float) -> LayoutTrainer:
    """Build everything, train (resuming if asked), and return the trainer."""
    args.out.mkdir(parents=True, exist_ok=True)
    metrics_path = args.out / METRICS_FILE
    log = EventLog(metrics_path)
    torch.set_num_threads(args.threads)
    json_path = ensure_dataset(DataSpec(args.data, args.data_seed, args.docs, args.pages, args.dpi), log)
    register_dataset(TRAIN_DATASET, json_path)
    if args.real_data:
        real_json = args.real_data / "annotations.json"
        if not real_json.is_file():
            raise SystemExit(f"no labelled real pages at {real_json}: run `make real-data` first")
        register_dataset(REAL_DATASET, real_json)
    cfg = make_cfg(args)
    (args.out / "config.yaml").write_text(cfg.dump(), encoding="utf-8")
    seed_all_rng(cfg.SEED)
    model = build_model(cfg)
    trainer = LayoutTrainer(model, build_optimizer(cfg, model, args.optimizer), max_iter=cfg.SOLVER.MAX_ITER)
    trainer.process_start = process_start
    checkpointer = DetectionCheckpointer(model, str(args.out), trainer=trainer)
    start_iter = 0
    if args.resume and checkpointer.has_checkpoint():
        checkpointer.resume_or_load("", resume=True)
        start_iter = trainer.iter + 1
        trainer.process_start = process_start  # count this process's data check too
    elif args.init is not None:
        DetectionCheckpointer(model).load(str(args.init))  # fine-tune: weights only, a fresh schedule
        log("init_weights", path=str(args.init))
    trainer.data_loader = build_loader(cfg, start_iter, args.real_share, args.class_balance)
    # Order matters: TimeBudget may move the end or stop the run, which the checkpointer and writer read.
    trainer.register_hooks(
        [
            hooks.IterationTimer(),
            CosineLR(warmup=cfg.SOLVER.WARMUP_ITERS, warmup_factor=cfg.SOLVER.WARMUP_FACTOR),
            TimeBudget(budget_s=args.max_minutes * 60.0, planned_iter=cfg.SOLVER.MAX_ITER, log=log),
            MovingEndCheckpointer(checkpointer, cfg.SOLVER.CHECKPOINT_PERIOD, max_to_keep=KEEP_CHECKPOINTS),
            hooks.PeriodicWriter(
                [MetricPrinter(trainer), JSONWriter(str(metrics_path))], period=args.log_period
            ),
        ]
    )
    log(
        "train_start",
        start_iter=start_iter,
        max_iter=trainer.max_iter,
        batch=cfg.SOLVER.IMS_PER_BATCH,
        real_share=args.real_share,
        class_balance=args.class_balance,
    )
    previous = signal.signal(signal.SIGTERM, lambda *_: trainer.request_stop("SIGTERM"))
    try:
        trainer.train(start_iter, trainer.max_iter)
    finally:
        signal.signal(signal.SIGTERM, previous)
    log(
        "train_end",
        iterations=trainer.iter,
        max_iter=trainer.max_iter,
        stop_reason=trainer.stop_reason,
        used_s=round(trainer.used_seconds(), 1),
    )
    if args.export is not None:
        export_model(trainer.model, cfg, args.export)
        log("exported", dir=str(args.export))
    return trainer


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--out", type=Path, default=REPO / "build" / "train" / "r18", help="checkpoints, logs"
    )
    parser.add_argument(
        "--data", type=Path, default=None, help="training set dir (default under build/synth)"
    )
    parser.add_argument(
        "--real-data",
        type=Path,
        default=None,
        help="also train on these labelled real pages (COCO dir from serve_app.training.real.dataset)",
    )
    parser.add_argument(
        "--real-share",
        type=float,
        default=None,
        help="with --real-data: the share of samples drawn from real pages (default: by set sizes)",
    )
    parser.add_argument(
        "--class-balance",
        type=float,
        default=None,
        help="with --real-share: draw real pages showing rare classes more often (LVIS threshold, e.g. 1.0)",
    )
    parser.add_argument(
        "--init", type=Path, default=None, help="start from these weights (fine-tune), e.g. the shipped model"
    )
    parser.add_argument("--data-seed", type=int, default=0)
    parser.add_argument("--docs", type=int, default=750, help="synthetic documents in the training set")
    parser.add_argument("--pages", type=int, default=4, help="pages per synthetic document")
    parser.add_argument("--dpi", type=int, default=72)
    parser.add_argument("--max-iter", type=int, default=2500, help="planned iterations (cosine schedule)")
    parser.add_argument("--max-minutes", type=float, default=80.0, help="wall-clock budget incl. data")
    parser.add_argument("--batch", type=int, default=2, help="images per iteration")
    parser.add_argument("--optimizer", choices=sorted(DEFAULT_LR), default="adamw")
    parser.add_argument("--lr", type=float, default=None)
    parser.add_argument("--weight-decay", type=float, default=None)
    parser.add_argument("--warmup", type=int, default=100, help="linear warmup iterations")
    parser.add_argument("--input-size", type=int, default=0, help="short side of the input (0: config)")
    parser.add_argument("--seed", type=int, default=20240101)
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--checkpoint-period", type=int, default=100)
    parser.add_argument("--log-period", type=int, default=20)
    parser.add_argument("--resume", action="store_true", help="continue from the last checkpoint in --out")
    parser.add_argument("--export", type=Path, default=None, help="write model_fp16.pth + config.yaml here")
    parser.add_argument("--tiny", action="store_true", help="tiny model and input (tests)")
    args = parser.parse_args(argv)
    if args.real_share is not None and args.real_data is None:
        parser.error("--real-share needs --real-data")
    if args.class_balance is not None and args.real_share is None:
        parser.error("--class-balance needs --real-share")
    if args.data is None:
        name = f"train_s{args.data_seed}_{args.docs}x{args.pages}_{args.dpi}dpi"
        args.data = REPO / "build" / "synth" / name
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point."""
    process_start = time.monotonic()
    args = parse_args(argv)
    setup_logger(str(args.out), name="detectron2")  # detectron2's log lines: stdout and <out>/log.txt
    train(args, process_start=process_start)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
