"""The one model-agnostic trainer."""

from __future__ import annotations

import contextlib
import errno
import math
import re
import signal
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from vocoder.checkpoints import (
    CheckpointError,
    describe_mismatch,
    link_atomic,
    load_checkpoint,
    load_weights,
    save_atomic,
    semantic_mismatch,
)
from vocoder.errors import ConfigError
from vocoder.training._distributed import DistributedContext, any_rank, init_distributed, shutdown_distributed
from vocoder.training._ema import EMA
from vocoder.training._frozen import frozen_parameters_in
from vocoder.training._memory import retain_freed_memory
from vocoder.training._module import ParameterGroup, TrainingModule
from vocoder.training._run_dir import find_resumable, prune_step_checkpoints, rng_state, set_rng_state
from vocoder.training._run_lock import RunDirectoryBusy, RunLock
from vocoder.training._sampler import ResumableSampler

#: ``trainer.precision`` and ``trainer.progress`` choices (see :class:`TrainerSettings`).
TRAINER_PRECISIONS = ("auto", "fp32", "bf16")
TRAINER_PROGRESS = ("auto", "bar", "log")


class TrainingError(RuntimeError):
    """Training cannot go on; the message is one line saying why and what was saved."""


def _os_reason(exc: OSError) -> str:
    """A short reason for a failed write (``no space left on device`` for ENOSPC)."""
    if exc.errno == errno.ENOSPC:
        return "no space left on device"
    if exc.errno == errno.EDQUOT:
        return "disk quota exceeded"
    return (exc.strerror or str(exc) or type(exc).__name__).strip().splitlines()[0]


def _failed_write(exc: BaseException) -> OSError | None:
    """The ``OSError`` behind a failed write, also when torch's zip writer raised its own error on top.

    ``torch.save`` into a file whose disk fills up raises the ``OSError`` of the write, and then, while
    closing its archive, a ``RuntimeError`` ("enforce fail at inline_container.cc") with the
    ``OSError`` as its context. Returns ``None`` for an exception that is not a failed write.
    """
    seen = exc
    while seen is not None:
        if isinstance(seen, OSError):
            return seen
        seen = seen.__cause__ or seen.__context__
    text = str(exc)
    if isinstance(exc, RuntimeError) and ("PytorchStreamWriter" in text or "inline_container" in text):
        return OSError(errno.EIO, f"the file could not be written ({text.strip().splitlines()[0][:120]})")
    return None


def _is_tensorboard_writer_thread(thread: threading.Thread | None) -> bool:
    return thread is not None and type(thread).__name__ == "_AsyncWriterThread" and \
        type(thread).__module__.startswith("tensorboard.")


@contextlib.contextmanager
def _quiet_tensorboard_thread_errors():
    """Keep a failed write in TensorBoard's writer thread (e.g. a full disk) from printing a traceback.

    The thread keeps the exception and the writer raises it again in this thread at its next call,
    where the trainer reports it in one line; only that thread's ``OSError`` is silenced.
    """
    previous = threading.excepthook

    def hook(args) -> None:
        if issubclass(args.exc_type, OSError) and _is_tensorboard_writer_thread(args.thread):
            return
        previous(args)

    threading.excepthook = hook
    try:
        yield
    finally:
        if threading.excepthook is hook:
            threading.excepthook = previous


@dataclass
class TrainerSettings:
    """Everything the trainer needs besides the model's training module (the ``trainer`` config).

    Attributes:
        out_dir: run folder (``checkpoints/``, ``tb/``, ``config.yaml``).
        max_steps: training iterations (batches) in total, counted across resumes.
        batch_size: items per batch per process.
        num_workers: DataLoader worker processes (0 keeps CPU runs bit-reproducible and light).
        seed: seeds python/numpy/torch and the data order.
        log_every: scalar logging interval (steps).
        valid_every: validation interval (steps; 0 = never).
        valid_batches: dev batches per validation.
        checkpoint_every: checkpoint interval (steps).
        keep_last: step checkpoints kept (plus last.pt and best.pt).
        audio_every: TensorBoard audio/image interval (steps; 0 = never).
        audio_examples: dev utterances synthesized each time.
        grad_clip: max global gradient norm (0 = no clipping; the norm is logged either way); with
            parameter groups, of each group that sets no ``grad_clip`` of its own
            (:class:`GroupOptimizer`).
        ema_decay: EMA decay (0 disables averaging: the EMA copy tracks the weights).
        ema_warmup: EMA warm-up constant (steps).
        max_bad_steps: consecutive non-finite steps tolerated before stopping (per parameter group).
        precision: ``auto`` (bf16 autocast on CUDA, fp32 on CPU), ``fp32`` or ``bf16``.
        device: ``auto`` (CUDA when present), ``cpu``, ``cuda``, ``cuda:N``.
        resume: ``auto`` (newest intact checkpoint in out_dir), ``never`` or a checkpoint path.
        progress: ``auto`` (bar when stderr is a terminal), ``bar`` or ``log``.
        find_unused_parameters: passed to DistributedDataParallel.
        init_from: start a *new* run from the weights of another run or a packaged model
            (``PATH.pt`` or ``pretrained:NAME``): its weights and EMA copy are loaded, and the weights
            of every other parameter group it holds (a discriminator), not its optimizers, step or
            data position; normalization statistics come from this run's data. Ignored when the run
            resumes from its own checkpoint.
        retain_memory: on a CPU run, keep freed memory in the process for the next step instead of
            returning it to the kernel (:func:`vocoder.training.retain_freed_memory`; glibc only): the
            big per-step buffers are no longer faulted in and zeroed again every step, at the cost of a
            higher resident size; it stays in effect for the rest of the process.
    """

    out_dir: str = "exp/default"
    max_steps: int = 1000
    batch_size: int = 32
    num_workers: int = 0
    seed: int = 1234
    log_every: int = 50
    valid_every: int = 500
    valid_batches: int = 4
    checkpoint_every: int = 500
    keep_last: int = 3
    audio_every: int = 2000
    audio_examples: int = 1
    grad_clip: float = 1.0
    ema_decay: float = 0.999
    ema_warmup: int = 10
    max_bad_steps: int = 20
    precision: str = "auto"
    device: str = "auto"
    resume: str = "auto"
    progress: str = "auto"
    find_unused_parameters: bool = False
    init_from: str | None = None
    retain_memory: bool = True

    def __post_init__(self) -> None:
        """Reject impossible values and unknown choices: one :class:`ConfigError` line naming the key."""
        at_least = {"max_steps": 0, "batch_size": 1, "num_workers": 0, "log_every": 1, "valid_every": 0,
                    "valid_batches": 1, "checkpoint_every": 1, "keep_last": 1, "audio_every": 0,
                    "audio_examples": 0, "ema_warmup": 0, "max_bad_steps": 1, "grad_clip": 0.0}
        for key, low in at_least.items():
            if getattr(self, key) < low:
                raise ConfigError(f"trainer.{key}: must be >= {low}, got {getattr(self, key)!r}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ConfigError(f"trainer.ema_decay: must be in [0, 1) (0: no averaging), got {self.ema_decay}")
        choices = {"precision": TRAINER_PRECISIONS, "progress": TRAINER_PROGRESS}
        for key, allowed in choices.items():
            if getattr(self, key) not in allowed:
                shown = ", ".join(allowed)
                raise ConfigError(f"trainer.{key}: expected one of {shown}, got {getattr(self, key)!r}")
        if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", self.device):
            raise ConfigError(f"trainer.device: expected auto, cpu, cuda or cuda:N, got {self.device!r}")
        if self.resume not in ("auto", "never") and not self.resume.endswith(".pt"):
            raise ConfigError(f"trainer.resume: expected auto, never or a .pt path, got {self.resume!r}")
        if not self.out_dir.strip():
            raise ConfigError("trainer.out_dir: must not be empty")
        if self.init_from is not None and not (self.init_from.startswith("pretrained:")
                                               or self.init_from.endswith(".pt")):
            raise ConfigError(f"trainer.init_from: expected a .pt path or pretrained:NAME, got {self.init_from!r}")


def _resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise TrainingError(f"trainer.device={name}: CUDA is not available here; use trainer.device=cpu")
    return device


def _to_device(batch: Any, device: torch.device) -> Any:
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {k: _to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, list | tuple):
        return type(batch)(_to_device(v, device) for v in batch)
    return batch


@dataclass
class GroupOptimizer:
    """How one parameter group is optimized (``optim.groups.<name>``).

    Attributes:
        optimizer_factory: the group's parameters → its optimizer.
        scheduler_factory: optimizer → LR scheduler stepped once per update of the group, or ``None``.
        grad_clip: max global gradient norm of the group's parameters (0: no clipping); ``None``
            takes ``trainer.grad_clip``.
    """

    optimizer_factory: Callable[[list[nn.Parameter]], torch.optim.Optimizer]
    scheduler_factory: Callable[[torch.optim.Optimizer], Any] | None = None
    grad_clip: float | None = None


@dataclass
class _Group:
    """A parameter group at run time: its optimizer, schedule, clipping, loss weights and NaN counters."""

    spec: ParameterGroup | None  # None: the module trains one optimizer (no parameter groups)
    params: list[nn.Parameter]
    optimizer: torch.optim.Optimizer
    scheduler: Any
    grad_clip: float
    weights: dict[str, float]
    weights_key: str  # where the weights come from, for messages (loss.weights / loss.weights.<name>)
    consecutive_bad: int = 0
    skipped: int = 0
    last_losses: dict[str, float] = field(default_factory=dict)

    @property
    def name(self) -> str | None:
        return None if self.spec is None else self.spec.name

    def due(self, step: int) -> bool:
        return self.spec is None or self.spec.due(step)

    def tag(self, kind: str, term: str | None = None) -> str:
        """TensorBoard tag: ``loss/<term>``, ``grad_norm`` alone; ``loss/<group>/<term>`` in a group."""
        parts = [kind] + ([] if self.spec is None else [self.spec.name]) + ([] if term is None else [term])
        return "/".join(parts)


class Trainer:
    """Trains any :class:`TrainingModule`: optimizers, schedules, EMA, checkpoints, logs, DDP.

    A module without parameter groups is trained by one optimizer over its trainable parameters. A
    module that declares :class:`~vocoder.training.ParameterGroup` s (a generator and a
    discriminator) is trained group by group every step in the declared order, each due group by its
    own optimizer, LR schedule (stepped per update of the group), gradient clipping and NaN guard; the
    EMA follows ``module.model`` (the first group's network) only. Checkpoints hold every group's
    state: the first group's optimizer and schedule under ``optimizer`` / ``scheduler`` as for a
    one-optimizer run, and ``groups`` (name → skipped updates; for the other groups also their
    ``optimizer`` and ``scheduler`` states, in update order) and ``networks`` (name → weights of
    every group but the first).

    Args:
        module: the model family's training module (holds ``module.model``).
        optimizer_factory: parameters → optimizer (e.g. a Hydra partial of ``torch.optim.Adam``); with
            parameter groups, of every group that ``group_optimizers`` does not name.
        scheduler_factory: optimizer → LR scheduler stepped once per update, or ``None``.
        settings: :class:`TrainerSettings`.
        loss_weights: weight of every named loss term the module returns; the total is their
            weighted sum. A term missing here is an error (weight 0 logs a term without training on it).
            With parameter groups, the numbers weight the first group's terms and
            ``loss_weights[<group>]`` (a dict) the terms of every other group.
        config: the resolved run configuration (plain types), saved in checkpoints and ``config.yaml``.
        log: where one-line messages go.
        group_optimizers: group name → :class:`GroupOptimizer` (``optim.groups``).
    """

    def __init__(
        self,
        module: TrainingModule,
        optimizer_factory: Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer],
        scheduler_factory: Callable[[torch.optim.Optimizer], Any] | None,
        settings: TrainerSettings,
        loss_weights: dict[str, float],
        config: dict[str, Any] | None = None,
        log: Callable[[str], None] = print,
        group_optimizers: Mapping[str, GroupOptimizer] | None = None,
    ) -> None:
        self.module = module
        self.group_optimizers = dict(group_optimizers or {})
        self.optimizer_factory = optimizer_factory
        self.scheduler_factory = scheduler_factory
        self.settings = settings
        self.loss_weights = dict(loss_weights)
        self.config = config or {}
        self.log = log
        self.out_dir = Path(settings.out_dir)
        self.checkpoint_dir = self.out_dir / "checkpoints"
        self.step = 0
        self.best_valid = math.inf
        self.skipped_total = 0
        self._stop_requested = False
        self.dist = DistributedContext()
        self.device = torch.device("cpu")
        self.optimizer: torch.optim.Optimizer | None = None  # the first (or only) group's
        self.scheduler = None
        self.groups: list[_Group] = []
        self.ema: EMA | None = None
        self.writer = None
        self._run_lock: RunLock | None = None
        # the checkpoint a rerun of the same command resumes from: (path, step), None before the first
        self._last_good: tuple[Path, int] | None = None

    # ----------------------------------------------------------------------------- set-up
    def _setup(self) -> None:
        settings = self.settings
        self.device = _resolve_device(settings.device)
        if settings.retain_memory and self.device.type == "cpu":
            retain_freed_memory()
        self.dist = init_distributed(self.device.type)
        if self.dist.enabled and self.device.type == "cuda":
            self.device = torch.device("cuda", self.dist.local_rank)
        self._lock_out_dir()
        torch.manual_seed(settings.seed + self.dist.rank)
        np.random.seed((settings.seed + self.dist.rank) % 2**32)
        import random

        random.seed(settings.seed + self.dist.rank)
        self.module.to(self.device)
        self._build_groups()
        self.optimizer, self.scheduler = self.groups[0].optimizer, self.groups[0].scheduler
        self.ema = EMA(self.module.model, decay=settings.ema_decay, warmup=settings.ema_warmup)
        if not self._maybe_resume() and settings.init_from:
            self._init_from(settings.init_from)
        if self.dist.enabled:
            self.train_forward = nn.parallel.DistributedDataParallel(
                self.module,
                device_ids=[self.device.index] if self.device.type == "cuda" else None,
                # each group's step leaves the other groups' parameters out of its graph
                find_unused_parameters=settings.find_unused_parameters or len(self.groups) > 1,
            )
        else:
            self.train_forward = self.module
        if self.dist.is_main:
            self._write_config()
            from torch.utils.tensorboard import SummaryWriter

            tb_dir = self.out_dir / "tb"
            try:
                self.writer = SummaryWriter(log_dir=str(tb_dir), purge_step=self.step + 1)
            except OSError as exc:
                raise TrainingError(f"cannot write TensorBoard events to {tb_dir}: {_os_reason(exc)}; "
                                    f"{self._rerun_hint()}") from None
            if self.step == 0:
                import yaml

                text = yaml.safe_dump(self.config, sort_keys=False)
                self._tensorboard("add_text", "config", "```\n" + text + "\n```", 0)

    def _new_optimizer(self, params: list[nn.Parameter], label: str,
                       options: GroupOptimizer | None) -> tuple[torch.optim.Optimizer, Any]:
        factory = options.optimizer_factory if options is not None else self.optimizer_factory
        optimizer = factory(params)
        frozen = frozen_parameters_in(optimizer)
        if frozen:
            raise TrainingError(
                f"the optimizer{label} holds {frozen} parameter(s) of a network marked frozen; hold "
                "pretrained networks in vocoder.training.FrozenModule, not as plain submodules or trainable "
                "parameters"
            )
        scheduler_factory = options.scheduler_factory if options is not None else self.scheduler_factory
        return optimizer, scheduler_factory(optimizer) if scheduler_factory else None

    def _build_groups(self) -> None:
        """One optimizer for a module without parameter groups, else one per declared group."""
        specs = list(self.module.parameter_groups())
        numbers = {k: float(v) for k, v in self.loss_weights.items() if not isinstance(v, Mapping)}
        nested = {k: v for k, v in self.loss_weights.items() if isinstance(v, Mapping)}
        module_name = type(self.module).__name__
        if specs and type(self.module).group_step is TrainingModule.group_step:
            names = ", ".join(g.name for g in specs)
            raise TypeError(f"{module_name} declares parameter groups ({names}) but does not define "
                            "group_step, the losses each group is updated on")
        if not specs:
            if nested:
                name = sorted(nested)[0]
                raise ConfigError(f"loss.weights.{name}: weights of a parameter group, but {module_name} "
                                  "trains one optimizer (no parameter groups); give its terms plain weights")
            if self.group_optimizers:
                name = sorted(self.group_optimizers)[0]
                raise ConfigError(f"optim.groups.{name}: {module_name} has no parameter groups; remove "
                                  "optim.groups")
            optimizer, scheduler = self._new_optimizer(list(self.module.trainable_parameters()), "", None)
            params = [p for group in optimizer.param_groups for p in group["params"]]
            self.groups = [_Group(None, params, optimizer, scheduler, self.settings.grad_clip, numbers,
                                  "loss.weights")]
            return
        names = [spec.name for spec in specs]
        shown = ", ".join(names)
        if len(set(names)) != len(names):
            raise TrainingError(f"{module_name}: parameter group names repeat ({shown})")
        if specs[0].network is not self.module.model:
            raise TrainingError(f"{module_name}: the first parameter group ({names[0]}) must train the "
                                "module's model (the network the EMA averages and synthesis uses)")
        for name in sorted(set(self.group_optimizers) - set(names)):
            raise ConfigError(f"optim.groups.{name}: {module_name} has no parameter group {name} "
                              f"(groups: {shown})")
        for name in sorted(set(nested) - set(names[1:])):
            raise ConfigError(f"loss.weights.{name}: not a parameter group whose terms need weights of their "
                              f"own (groups: {', '.join(names[1:])}; {names[0]}'s terms take the top-level "
                              "loss.weights)")
        seen: dict[int, str] = {}
        self.groups = []
        for index, spec in enumerate(specs):
            params = [p for p in spec.network.parameters() if p.requires_grad]
            if not params:
                raise TrainingError(f"{module_name}: parameter group {spec.name} has no trainable parameters")
            for param in params:
                if id(param) in seen:
                    raise TrainingError(f"{module_name}: parameter groups {seen[id(param)]} and {spec.name} "
                                        "share parameters; each parameter belongs to one group")
                seen[id(param)] = spec.name
            options = self.group_optimizers.get(spec.name)
            grad_clip = self.settings.grad_clip if options is None or options.grad_clip is None \
                else float(options.grad_clip)
            if not grad_clip >= 0:
                raise ConfigError(f"optim.groups.{spec.name}.grad_clip: must be >= 0, got {grad_clip}")
            optimizer, scheduler = self._new_optimizer(params, f" of parameter group {spec.name}", options)
            if index == 0:
                weights, key = numbers, "loss.weights"
            else:
                weights = {k: float(v) for k, v in nested.get(spec.name, {}).items()}
                key = f"loss.weights.{spec.name}"
            self.groups.append(_Group(spec, params, optimizer, scheduler, grad_clip, weights, key))

    @contextlib.contextmanager
    def _updating(self, group: _Group):
        """While ``group`` is updated, the other groups' parameters require no gradients."""
        others = [p for other in self.groups if other is not group for p in other.params]
        for param in others:
            param.requires_grad_(False)
        try:
            yield
        finally:
            for param in others:
                param.requires_grad_(True)

    def _lock_out_dir(self) -> None:
        """Rank 0 locks ``out_dir`` (:class:`RunLock`); every rank stops when it could not.

        Only rank 0 writes into the run folder, so its lock stands for the whole job; the other ranks
        learn the outcome through one all-reduce and stop with it (rank 0's line names the holder).
        """
        refused = None
        if self.dist.is_main:
            lock = RunLock(self.out_dir)
            try:
                lock.acquire()
            except RunDirectoryBusy as exc:
                refused = str(exc)
            except OSError as exc:
                refused = f"trainer.out_dir={self.out_dir}: cannot create the run folder ({_os_reason(exc)})"
            else:
                self._run_lock = lock
                self._remove_stale_temporaries()
        if any_rank(refused is not None, self.dist, self.device):
            raise TrainingError(refused or f"trainer.out_dir={self.out_dir}: rank 0 could not take the run "
                                           "folder (its message says why)")

    def _remove_stale_temporaries(self) -> None:
        """Temporary files a killed run left in the run folder (safe: this process holds its lock)."""
        for folder, pattern in ((self.checkpoint_dir, ".*.tmp"), (self.out_dir, "config.yaml.tmp")):
            if folder.is_dir():
                for leftover in folder.glob(pattern):
                    with contextlib.suppress(OSError):
                        leftover.unlink()

    def _release_out_dir(self) -> None:
        if self._run_lock is not None:
            self._run_lock.release()
            self._run_lock = None

    def _rerun_hint(self) -> str:
        """What a rerun of the same command does: resume from the last good checkpoint, or start again."""
        if self._last_good is None:
            return "no checkpoint of this run was saved yet; free some space and rerun the same command"
        path, step = self._last_good
        rerun = ("rerun the same command" if self.settings.resume == "auto"
                 else f"rerun with trainer.resume={path}")  # never / another file would not pick it up
        return (f"the last good checkpoint is {path} (step {step}); free some space and {rerun} to resume "
                "from it")

    @contextlib.contextmanager
    def _writing(self, path: Path):
        """A failed write of ``path`` (full disk, quota, I/O error) → one :class:`TrainingError` line."""
        try:
            yield
        except (OSError, RuntimeError) as exc:
            failure = _failed_write(exc)
            if failure is None:
                raise
            raise TrainingError(f"cannot write {path}: {_os_reason(failure)}; {self._rerun_hint()}") from None

    def _tensorboard(self, method: str, *args, **kwargs) -> None:
        """``self.writer.<method>(...)``; a failed write warns once, and training goes on without it."""
        if self.writer is None:
            return
        try:
            getattr(self.writer, method)(*args, **kwargs)
        except OSError as exc:
            writer, self.writer = self.writer, None
            with contextlib.suppress(Exception):
                writer.close()
            self.log(f"warning: cannot write TensorBoard events to {self.out_dir / 'tb'} "
                     f"({_os_reason(exc)}); training goes on without them and still saves checkpoints")

    def _close_tensorboard(self) -> None:
        writer, self.writer = self.writer, None
        if writer is None:
            return
        try:
            writer.close()
        except OSError as exc:
            self.log(f"warning: the last TensorBoard events could not be written to {self.out_dir / 'tb'} "
                     f"({_os_reason(exc)})")

    def _write_config(self) -> None:
        import yaml

        path = self.out_dir / "config.yaml"
        tmp = path.with_suffix(".yaml.tmp")
        with self._writing(path):
            try:
                tmp.write_text(yaml.safe_dump(self.config, sort_keys=False))
                tmp.replace(path)
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise

    def _maybe_resume(self) -> bool:
        resume = self.settings.resume
        if resume == "never":
            return False
        if resume == "auto":
            found = find_resumable(self.checkpoint_dir, warn=self.log if self.dist.is_main else lambda _: None)
            if found is None:
                return False
            path, state = found
        else:
            path, state = Path(resume), load_checkpoint(resume)
        self.load_state(state, path)
        self._last_good = (Path(path), self.step)
        if self.dist.is_main:
            self.log(f"resumed from {path} at step {self.step}")
        return True

    def _init_from(self, spec: str) -> None:
        """Warm start (``trainer.init_from``): weights and EMA copy of ``spec``, nothing else."""
        state = load_weights(spec)
        model = self.module.model
        own = model.state_dict()
        raw = state.get("model", state["ema"])
        for label, weights in (("weights", raw), ("EMA weights", state["ema"])):
            mismatch = describe_mismatch(own, weights)
            if mismatch:
                raise CheckpointError(f"trainer.init_from={spec}: its {label} do not fit this model ({mismatch})")
        # normalization statistics (buffers) are this run's data's, not the pretrained run's
        buffers = {name: buf.detach().clone() for name, buf in model.named_buffers()}

        def converted(weights: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
            out = {k: v.to(own[k].dtype) for k, v in weights.items()}
            out.update({k: v for k, v in buffers.items() if k in out})
            return out

        networks = state.get("networks") or {}
        restored, fresh = [], []
        for group in self.groups[1:]:
            weights = networks.get(group.name)
            if weights is None:
                fresh.append(group.name)
                continue
            network = group.spec.network
            own_network = network.state_dict()
            mismatch = describe_mismatch(own_network, weights)
            if mismatch:
                raise CheckpointError(f"trainer.init_from={spec}: its {group.name} weights do not fit this "
                                      f"run's ({mismatch})")
            network.load_state_dict({k: v.to(own_network[k].dtype) for k, v in weights.items()})
            restored.append(group.name)
        model.load_state_dict(converted(raw))
        self.ema.load_state_dict(converted(state["ema"]))
        if self.dist.is_main:
            optimizers = "optimizers" if len(self.groups) > 1 else "optimizer"
            self.log(f"initialized from {spec} (step {int(state.get('step', 0))} there; {optimizers}, step "
                     "and data position start fresh)")
            if restored:
                self.log(f"parameter group(s) {', '.join(restored)} initialized from {spec} as well")
            if fresh:
                self.log(f"parameter group(s) {', '.join(fresh)} start from scratch: {spec} holds no weights "
                         "for them")
            semantic = semantic_mismatch(state.get("config") or {}, self.config)
            if semantic:  # e.g. mid-rise μ-law weights fine-tuned with mid-tread codes: it adapts, say so
                self.log(f"note: {spec} was trained with another setting ({semantic}); fine-tuning adapts to this run's")

    # ----------------------------------------------------------------------------- state
    def state_dict(self) -> dict[str, Any]:
        """The one checkpoint dict (tensors and plain types only; parameter groups: see the class)."""
        state = {
            "format": "vocoder-checkpoint-1",
            "model": self.module.model.state_dict(),
            "ema": self.ema.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else {},
            "step": self.step,
            "items_consumed": self.step * self.settings.batch_size,
            "best_valid": self.best_valid,
            "skipped_total": self.skipped_total,
            "rng": rng_state(),
            "module": self.module.extra_state(),
            "settings": asdict(self.settings),
            "config": self.config,
        }
        if self.groups and self.groups[0].spec is not None:
            state["networks"] = {group.name: group.spec.network.state_dict() for group in self.groups[1:]}
            state["groups"] = {self.groups[0].name: {"skipped": self.groups[0].skipped}}
            for group in self.groups[1:]:
                state["groups"][group.name] = {
                    "optimizer": group.optimizer.state_dict(),
                    "scheduler": group.scheduler.state_dict() if group.scheduler is not None else {},
                    "skipped": group.skipped,
                }
        return state

    def _check_groups_fit(self, state: dict[str, Any], path: Path | str) -> None:
        """The checkpoint's parameter groups are this run's, with weights that fit (one-line errors)."""
        saved = state.get("groups") or {}
        names = [group.name for group in self.groups if group.name is not None]
        if list(saved) == names:
            for group in self.groups[1:]:
                weights = (state.get("networks") or {}).get(group.name)
                if weights is None or "optimizer" not in saved[group.name]:
                    raise CheckpointError(f"{path}: incomplete state of parameter group {group.name}; "
                                          "resume from another checkpoint or use trainer.resume=never")
                mismatch = describe_mismatch(group.spec.network.state_dict(), weights)
                if mismatch:
                    raise CheckpointError(
                        f"{path}: its {group.name} was trained with another network or config ({mismatch}); "
                        "use trainer.resume=never or another trainer.out_dir"
                    )
            return
        held = f"parameter groups {', '.join(saved)}" if saved else "one optimizer"
        wanted = f"parameter groups {', '.join(names)}" if names else "one optimizer"
        raise CheckpointError(f"{path}: was trained with {held}, this run trains {wanted}; use "
                              f"trainer.resume=never (and trainer.init_from={path} for its weights) or "
                              "another trainer.out_dir")

    def load_state(self, state: dict[str, Any], path: Path | str = "checkpoint") -> None:
        """Restore everything :meth:`state_dict` saved; mismatching weights → one-line error."""
        self._check_groups_fit(state, path)
        own = self.module.model.state_dict()
        mismatch = describe_mismatch(own, state["model"])
        if mismatch:
            raise CheckpointError(
                f"{path}: was trained with another model or config ({mismatch}); "
                "use trainer.resume=never or another trainer.out_dir"
            )
        semantic = semantic_mismatch(state.get("config") or {}, self.config)
        if semantic:
            key = semantic.split("=", 1)[0]
            raise CheckpointError(f"{path}: was trained with another {key} ({semantic}); "
                                  f"resume with that setting, or use trainer.resume=never")
        self.module.model.load_state_dict(state["model"])
        self.ema.load_state_dict(state["ema"])
        try:
            self.optimizer.load_state_dict(state["optimizer"])
        except (ValueError, KeyError) as exc:
            raise CheckpointError(f"{path}: optimizer state does not fit this optimizer ({exc})") from None
        if self.scheduler is not None and state.get("scheduler"):
            self.scheduler.load_state_dict(state["scheduler"])
        for group in self.groups[1:]:
            saved = state["groups"][group.name]
            group.spec.network.load_state_dict(state["networks"][group.name])
            try:
                group.optimizer.load_state_dict(saved["optimizer"])
            except (ValueError, KeyError) as exc:
                raise CheckpointError(f"{path}: optimizer state of parameter group {group.name} does not fit "
                                      f"its optimizer ({exc})") from None
            if group.scheduler is not None and saved.get("scheduler"):
                group.scheduler.load_state_dict(saved["scheduler"])
        for group in self.groups:
            if group.name is not None:
                group.skipped = int(state["groups"][group.name].get("skipped", 0))
        self.step = int(state["step"])
        self.best_valid = float(state.get("best_valid", math.inf))
        self.skipped_total = int(state.get("skipped_total", 0))
        if "rng" in state:
            set_rng_state(state["rng"])
            if self.dist.rank > 0:  # other ranks draw their own noise
                torch.manual_seed(self.settings.seed * 1_000_003 + self.step * 31 + self.dist.rank)
        self.module.load_extra_state(state.get("module", {}))

    def save_checkpoint(self) -> Path | None:
        """Write ``step_<8-digit step>.pt`` atomically, point ``last.pt`` at it, prune old ones (rank 0).

        Raises:
            TrainingError: a file could not be written (e.g. a full disk): one line naming it and the
                last good checkpoint, which stays intact (the new file is written beside it and renamed).
        """
        if not self.dist.is_main:
            return None
        path = self.checkpoint_dir / f"step_{self.step:08d}.pt"
        with self._writing(path):
            save_atomic(self.state_dict(), path)
        last = self.checkpoint_dir / "last.pt"
        with self._writing(last):
            link_atomic(path, last)
        self._last_good = (path, self.step)
        with self._writing(self.checkpoint_dir):
            prune_step_checkpoints(self.checkpoint_dir, self.settings.keep_last)
        return path

    # ----------------------------------------------------------------------------- signals
    @contextlib.contextmanager
    def _stop_on_signals(self):
        def request_stop(signum, _frame):
            if self._stop_requested:  # a second Ctrl-C aborts at once
                raise KeyboardInterrupt
            self._stop_requested = True
            self.log(f"received {signal.Signals(signum).name}: saving a checkpoint at the current step")

        previous = {}
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                previous[sig] = signal.signal(sig, request_stop)
            except ValueError:  # not in the main thread
                pass
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    # ----------------------------------------------------------------------------- loop
    def _autocast(self):
        precision = self.settings.precision
        use_bf16 = precision == "bf16" or (precision == "auto" and self.device.type == "cuda")
        if not use_bf16:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16)

    def _total_loss(self, losses: dict[str, torch.Tensor], group: _Group | None = None) -> torch.Tensor:
        """Weighted sum of ``group``'s terms (default: the first group's, as validation reports them)."""
        group = group or self.groups[0]
        unknown = sorted(set(losses) - set(group.weights))
        if unknown:
            raise TrainingError(
                f"{group.weights_key} has no weight for the loss term(s) {', '.join(unknown)}; "
                f"add e.g. {group.weights_key}.{unknown[0]}=1.0"
            )
        return sum(group.weights[name] * value.float() for name, value in losses.items())

    def _make_loader(self) -> torch.utils.data.DataLoader:
        dataset = self.module.train_dataset("train")
        sampler = ResumableSampler(
            len(dataset), seed=self.settings.seed, rank=self.dist.rank, world_size=self.dist.world_size
        )
        sampler.set_position(self.step * self.settings.batch_size)
        return torch.utils.data.DataLoader(
            dataset,
            batch_size=self.settings.batch_size,
            sampler=sampler,
            collate_fn=self.module.collate,
            num_workers=self.settings.num_workers,
            persistent_workers=self.settings.num_workers > 0,
            pin_memory=self.device.type == "cuda",
            # its own generator: creating the iterator must not draw from the global RNG, or a resumed
            # run (iterator created after the RNG restore) would diverge from an uninterrupted one
            generator=torch.Generator().manual_seed(self.settings.seed + self.step),
        )

    def fit(self) -> dict[str, float]:
        """Train until ``max_steps`` (or a stop signal); returns the last logged scalars."""
        clean = False
        try:
            with _quiet_tensorboard_thread_errors():
                try:
                    self._setup()
                    with self._stop_on_signals():
                        result = self._loop()
                    clean = True
                    return result
                finally:
                    self._close_tensorboard()
        finally:
            self._release_out_dir()
            shutdown_distributed(clean=clean)

    def _loop(self) -> dict[str, float]:
        settings = self.settings
        if self.step >= settings.max_steps:
            self.log(f"nothing to do: already at step {self.step} >= trainer.max_steps={settings.max_steps}")
            return {}
        loader = iter(self._make_loader())
        show_bar = self.dist.is_main and (
            settings.progress == "bar" or (settings.progress == "auto" and sys.stderr.isatty())
        )
        from tqdm.auto import tqdm

        bar = tqdm(total=settings.max_steps, initial=self.step, disable=not show_bar, dynamic_ncols=True)
        sums: dict[str, float] = defaultdict(float)
        counts: dict[str, int] = defaultdict(int)
        interval_start = time.perf_counter()
        interval_samples = 0
        last_scalars: dict[str, float] = {}
        module_scalars: dict[str, float] = {}
        self.module.train()
        while self.step < settings.max_steps:
            batch = _to_device(next(loader), self.device)
            self.step += 1
            model_updated = False
            for group in self.groups:
                if not group.due(self.step):
                    continue
                updated = self._update_group(group, batch)
                if updated:
                    for tag, value in group.last_losses.items():
                        sums[tag] += value
                        counts[tag] += 1
                model_updated |= updated and group is self.groups[0]
            if model_updated:
                extra = self.module.after_optimizer_step(self.step)
                self.ema.update(self.module.model, self.step)
                self.module.after_ema_update(self.ema.model)
                for name, value in extra.items():
                    module_scalars[name] = float(value)
            interval_samples += self.module.batch_num_samples(batch) * self.dist.world_size
            bar.update(1)

            if self.step % settings.log_every == 0 or self.step == settings.max_steps:
                elapsed = max(time.perf_counter() - interval_start, 1e-9)
                scalars = {k: v / counts[k] for k, v in sums.items()}
                for group in self.groups:
                    scalars[group.tag("lr")] = group.optimizer.param_groups[0]["lr"]
                    if group.name is not None:
                        scalars[group.tag("skipped_steps")] = float(group.skipped)
                scalars["samples_per_s"] = interval_samples / elapsed
                scalars["skipped_steps"] = float(self.skipped_total)
                scalars.update(module_scalars)
                self._log_scalars(scalars, bar, show_bar)
                last_scalars = dict(scalars)
                sums.clear()
                counts.clear()
                interval_samples = 0
                interval_start = time.perf_counter()
            if settings.valid_every and self.step % settings.valid_every == 0:
                self.validate()
            if settings.audio_every and self.step % settings.audio_every == 0:
                self.log_examples()
            stop = any_rank(self._stop_requested, self.dist, self.device)
            if stop or self.step % settings.checkpoint_every == 0 or self.step == settings.max_steps:
                path = self.save_checkpoint()
                if stop:
                    if path is not None:
                        self.log(f"stopped at step {self.step}; checkpoint {path}")
                    break
        bar.close()
        return last_scalars

    def _update_group(self, group: _Group, batch: Any) -> bool:
        """One update of ``group`` on ``batch``: its terms, backward, clipping, NaN guard, optimizer step.

        Returns whether the group's weights were updated; the logged values are left in
        ``group.last_losses`` (tag → value).

        Raises:
            TrainingError: ``trainer.max_bad_steps`` non-finite updates of the group in a row (the last
                good state is saved first).
        """
        settings = self.settings
        group.last_losses = {}
        with self._updating(group), self._autocast():
            if group.name is None:
                losses = self.train_forward(batch, self.step)
            else:
                losses = self.train_forward(batch, self.step, group.name)
                if not losses:  # the module skips this group's update at this step
                    return False
        total = self._total_loss(losses, group)
        group.optimizer.zero_grad(set_to_none=True)
        finite = bool(torch.isfinite(total))
        grad_norm = math.nan
        if finite:
            total.backward()
            max_norm = group.grad_clip if group.grad_clip > 0 else math.inf
            grad_norm = float(torch.nn.utils.clip_grad_norm_(group.params, max_norm))
            finite = math.isfinite(grad_norm)
        finite = not any_rank(not finite, self.dist, self.device)
        if finite:
            group.consecutive_bad = 0
            group.optimizer.step()
            if group.scheduler is not None:
                group.scheduler.step()
            group.last_losses = {group.tag("loss", name): float(value.detach())
                                 for name, value in losses.items()}
            group.last_losses[group.tag("loss", "total")] = float(total.detach())
            group.last_losses[group.tag("grad_norm")] = grad_norm
            return True
        group.optimizer.zero_grad(set_to_none=True)
        group.consecutive_bad += 1
        group.skipped += 1
        self.skipped_total += 1
        if group.consecutive_bad >= settings.max_bad_steps:
            path = self.save_checkpoint()  # skipped steps left the weights at the last good state
            where = "" if group.name is None else f" of parameter group {group.name}"
            raise TrainingError(
                f"{group.consecutive_bad} consecutive non-finite losses/gradients{where} at step "
                f"{self.step}; last good state saved to {path}; lower optim.lr or raise trainer.grad_clip"
            )
        return False

    def _log_scalars(self, scalars: dict[str, float], bar, show_bar: bool) -> None:
        if not self.dist.is_main:
            return
        for name, value in scalars.items():
            self._tensorboard("add_scalar", name, value, self.step)
        first = self.groups[0]
        if first.name is None:
            summary = f"loss {scalars.get('loss/total', math.nan):.4f} lr {scalars['lr']:.2e}"
        else:
            totals = " ".join(f"{group.name} {scalars.get(group.tag('loss', 'total'), math.nan):.4f}"
                              for group in self.groups)
            summary = f"loss {totals} lr {scalars[first.tag('lr')]:.2e}"
        if show_bar:
            bar.set_postfix_str(summary)
        else:
            self.log(f"step {self.step}/{self.settings.max_steps} {summary} "
                     f"{scalars['samples_per_s']:.0f} samples/s")

    def _fixed_rng(self):
        """Validation and examples draw from a fixed generator and leave the training RNG untouched."""
        devices = [self.device] if self.device.type == "cuda" else []
        forked = torch.random.fork_rng(devices=devices)
        forked.__enter__()
        torch.manual_seed(self.settings.seed + 17)
        return forked

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        """Mean named losses of ``valid_batches`` dev batches with the EMA weights (rank 0 logs)."""
        if not self.dist.is_main:
            return {}
        dataset = self.module.train_dataset("dev")
        count = min(self.settings.valid_batches * self.settings.batch_size, len(dataset))
        items = [dataset[(i % len(dataset), 1_000 + i)] for i in range(count)]
        sums: dict[str, float] = defaultdict(float)
        batches = 0
        forked = self._fixed_rng()
        try:
            for start in range(0, count, self.settings.batch_size):
                batch = _to_device(self.module.collate(items[start : start + self.settings.batch_size]), self.device)
                with self._autocast():
                    losses = self.module.validation_step(self.ema.model, batch)
                for name, value in losses.items():
                    sums[name] += float(value)
                sums["total"] += float(self._total_loss(losses))
                batches += 1
        finally:
            forked.__exit__(None, None, None)
        means = {name: value / max(batches, 1) for name, value in sums.items()}
        for name, value in means.items():
            self._tensorboard("add_scalar", f"valid/{name}", value, self.step)
        if means.get("total", math.inf) < self.best_valid:
            self.best_valid = means["total"]
            best = self.checkpoint_dir / "best.pt"
            with self._writing(best):
                save_atomic(self.state_dict(), best)
        self.log(f"step {self.step} validation: " + " ".join(f"{k} {v:.4f}" for k, v in means.items()))
        return means

    @torch.no_grad()
    def log_examples(self) -> None:
        """Synthesize dev utterances with the EMA weights → TensorBoard audio and mel images."""
        if not self.dist.is_main or self.settings.audio_examples <= 0:
            return
        forked = self._fixed_rng()
        try:
            examples = self.module.synthesize_examples(self.ema.model, self.settings.audio_examples)
        finally:
            forked.__exit__(None, None, None)
        from vocoder.training._tb_images import mel_comparison_image

        for example in examples:
            audio = np.clip(example.audio, -1, 1).astype(np.float32)
            self._tensorboard("add_audio", f"audio/{example.name}", audio[None], self.step,
                              example.sample_rate)
            if self.step == self.settings.audio_every:
                reference = np.clip(example.reference, -1, 1).astype(np.float32)
                self._tensorboard("add_audio", f"audio/{example.name}_natural", reference[None], self.step,
                                  example.sample_rate)
            image = mel_comparison_image(example.reference, example.audio, example.sample_rate)
            self._tensorboard("add_image", f"mel/{example.name}", image, self.step, dataformats="HWC")
            for name, value in example.scalars.items():
                self._tensorboard("add_scalar", f"examples/{name}", value, self.step)
