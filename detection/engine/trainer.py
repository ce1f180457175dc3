"""The training loop of a detector (``detection.run`` assembles a run around it).

Iteration-based, as Detectron: each iteration draws a batch, sums the
detector's losses, steps the optimizer and the LR schedule. One process or
many (``torchrun``: DistributedDataParallel, each rank a slice of the global
batch, rank 0 logs and saves). A run folder gets ``metrics.jsonl``,
TensorBoard events, checkpoints (periodic, final, best) and at the end
``training_curves.png``. A run continues exactly where a checkpoint left it:
weights, optimizer, LR position, grad scaler, RNG states and data order.
"""
import hashlib
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import torch
from tqdm import tqdm

from backbones.errors import UserError

from ..config import RuntimeConfig
from ..data.dataset import collate
from ..data.sampler import TrainingBatches
from ..detector import DetectorTransform
from . import distributed
from .checkpoint import read_checkpoint, save_checkpoint
from .checkpointer import Checkpointer, periodic_name
from .curves import plot_training_curves
from .loop_times import LoopTimes
from .metrics_log import MetricsLog
from .periodic_eval import evaluate, primary_metric
from .precision import Precision
from .rng import get_rng_state, set_rng_state
from .solver import build_optimizer, load_optimizer_state, restore_scheduler
from .stop_signals import StopRequest, ignore_in_loader_worker

CURVES_FILE = "training_curves.png"
SHORT_NAMES = {"loss_classifier": "cls", "loss_box_reg": "box", "loss_objectness": "obj",
               "loss_rpn_box_reg": "rpn_box", "loss_mask": "mask"}


class NonFiniteLossError(UserError):
    pass


@dataclass
class TrainResult:
    checkpoint: Path             # model_final.pth, or the checkpoint written when stopped by a signal
    iteration: int
    stopped_by: Optional[str] = None  # "SIGINT" / "SIGTERM" when interrupted
    best: Optional[dict] = None       # {"metric", "value", "iteration"} when evaluated
    times: Optional[dict] = None      # where the loop's time went: LoopTimes.summary()


def _loader(dataset, solver, num_workers, start, repeat_factors=None):
    try:
        batches = TrainingBatches([r.width for r in dataset.records], [r.height for r in dataset.records],
                                  solver.ims_per_batch, solver.seed, start=start,
                                  rank=distributed.rank(), world_size=distributed.world_size(),
                                  repeat_factors=repeat_factors)
    except ValueError as err:
        raise UserError(f"solver.ims_per_batch={solver.ims_per_batch}: {err}") from None
    # its own generator: creating the loader must not draw from the global RNG (exact resume)
    return torch.utils.data.DataLoader(dataset, batch_sampler=batches, num_workers=num_workers, collate_fn=collate,
                                       worker_init_fn=ignore_in_loader_worker, generator=torch.Generator(),
                                       pin_memory=torch.cuda.is_available())


def _to_device(images, targets, device):
    images = [im.to(device, non_blocking=True) for im in images]
    targets = [{k: (v.to(device, non_blocking=True) if torch.is_tensor(v) else v) for k, v in t.items()}
               for t in targets]
    return images, targets


def _out_of_memory(iteration, model, solver):
    cfg = getattr(model, "config", None)
    sizes = f"model.min_size={cfg.min_size}, model.max_size={cfg.max_size}, " if cfg else ""
    return UserError(f"CUDA ran out of memory at iteration {iteration}; lower solver.ims_per_batch "
                     f"(now {solver.ims_per_batch} over {distributed.world_size()} processes; with "
                     f"solver.reference_batch_size set the LR and schedule follow), {sizes}or use runtime.amp=fp16|bf16")


def _weights_fingerprint(model) -> str:
    digest = hashlib.sha1()
    for tensor in model.state_dict().values():
        digest.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


class _Run:
    """The state of one training run, so the loop below reads as the algorithm."""

    def __init__(self, model, dataset, solver, output_dir, runtime, train_config, eval_dataset, resume_command):
        self.model, self.dataset, self.solver, self.runtime = model, dataset, solver, runtime
        self.output_dir, self.eval_dataset, self.resume_command = Path(output_dir), eval_dataset, resume_command
        self.device = next(model.parameters()).device
        self.optimizer = build_optimizer(model, solver)
        self.params = [p for g in self.optimizer.param_groups for p in g["params"]]
        self.precision = Precision(runtime.amp, self.device)
        self.meta = dict(class_names=dataset.class_names, category_ids=dataset.category_ids,
                         train_config=train_config)
        self.checkpointer = Checkpointer(self.output_dir, solver.keep_last)
        self.best = None
        self.mask = bool(getattr(getattr(model, "config", None), "mask", False))
        self.times = LoopTimes(self.device)

    def restore(self, path) -> int:
        """Continue from checkpoint ``path``; returns its iteration."""
        payload = read_checkpoint(path)
        state = payload.get("training_state")
        if state is None:
            raise UserError(f"{path} holds weights only (no optimizer or RNG state); it cannot be resumed")
        try:
            self.model.load_state_dict(payload["model"])
            load_optimizer_state(self.optimizer, state["optimizer"])
        except (RuntimeError, ValueError) as err:
            raise UserError(f"{path} was written for another model or optimizer ({str(err).splitlines()[0]}); "
                            f"resume with the config saved in {self.output_dir}/config.yaml") from None
        self.precision.load_state_dict(state["scaler"])
        self.best = state["best"]
        if state["world_size"] == distributed.world_size():
            set_rng_state(state["rng"][distributed.rank()])
        else:
            print(f"warning: {path} was written by {state['world_size']} processes, this run has "
                  f"{distributed.world_size()}: random sampling will differ from an uninterrupted run",
                  file=sys.stderr)
            torch.manual_seed(self.solver.seed + distributed.rank() + payload["iteration"])
        return payload["iteration"]

    def save(self, name, iteration, with_state=True):
        """Collective when ``with_state`` (every rank's RNG state is stored); rank 0 writes."""
        state = None
        if with_state:
            rng = distributed.gather_objects(get_rng_state())
            state = {"optimizer": self.optimizer.state_dict(), "scaler": self.precision.state_dict(),
                     "rng": rng, "world_size": distributed.world_size(), "best": self.best}
        if not distributed.is_main():
            return None
        return self.checkpointer.save(name, lambda path: save_checkpoint(
            path, self.model, iteration=iteration, training_state=state, **self.meta))

    def evaluate(self, iteration, log):
        if self.eval_dataset is None:
            return
        metrics = evaluate(self.model, self.eval_dataset, self.mask)
        if metrics is None:  # not rank 0
            return
        log.write(iteration, metrics)
        name = primary_metric(self.eval_dataset, self.mask)
        tqdm.write(f"iteration {iteration}: " + ", ".join(f"{k[5:]} {v:.1f}" for k, v in metrics.items()))
        if self.best is None or metrics[name] > self.best["value"]:
            self.best = {"metric": name, "value": metrics[name], "iteration": iteration}
            self.save("model_best.pth", iteration, with_state=False)


def train(model, dataset, solver, output_dir, runtime=None, num_workers=0, train_config=None, eval_dataset=None,
          resume=False, progress=True, resume_command=None, on_start=None, repeat_factors=None) -> TrainResult:
    """Train ``model`` (already on its device) on ``dataset``.

    ``resume``: continue from the run folder's last checkpoint (from the start
    when it has none yet). ``eval_dataset`` is evaluated every
    ``solver.eval_period`` iterations and at the end. ``resume_command`` is
    printed when a signal stops the run. ``on_start()`` is called once
    everything is checked (a resumed checkpoint restored), before this
    function writes anything: the caller's own writes go there, so a refused
    run leaves the folder as it was. ``repeat_factors``: per image of
    ``dataset``, how often an epoch shows it (``data.sampler: repeat_factor``);
    None: once.
    """
    runtime = runtime or RuntimeConfig()
    if len(dataset) < solver.ims_per_batch:
        raise UserError(f"the training set has {len(dataset)} images, fewer than one batch "
                        f"(solver.ims_per_batch={solver.ims_per_batch})")
    torch.backends.cudnn.benchmark = runtime.cudnn_benchmark
    if runtime.channels_last:
        model.to(memory_format=torch.channels_last)
    # samples the data pipeline resized say so, and the detector's transform leaves them be; a model
    # with another transform would resize them again
    if getattr(dataset, "resizes_images", False) and not isinstance(getattr(model, "transform", None),
                                                                     DetectorTransform):
        raise UserError("the training data pipeline resizes images, and this model's transform would resize them "
                        "again; build the model with detection.build_detector (its transform knows) or give "
                        "the dataset an augmentation without resizing")
    model.train()
    run = _Run(model, dataset, solver, output_dir, runtime, train_config,
               eval_dataset if solver.eval_period else None, resume_command)
    run.repeat_factors = repeat_factors
    last = run.checkpointer.last() if resume else None
    start = run.restore(last) if last else 0
    if not last:
        torch.manual_seed(solver.seed + distributed.rank())  # the RPN/RoI samplers' stream
    if start >= solver.max_iter:
        raise UserError(f"{last} is at iteration {start}, the run ends at solver.max_iter={solver.max_iter}; "
                        f"raise it to train further (e.g. solver.max_iter={2 * solver.max_iter})")
    if on_start is not None:
        on_start()
    Path(output_dir).mkdir(parents=True, exist_ok=True)
    if last and distributed.is_main():
        print(f"resuming from {last} at iteration {start}")
    log = MetricsLog(output_dir, start, enabled=distributed.is_main())
    try:
        done, stopped_by = _loop(run, start, log, num_workers, progress)
        if stopped_by:
            path = run.save(periodic_name(done), done)
            if distributed.is_main():
                print(f"stopped by {stopped_by} after iteration {done}; saved {path}")
                if resume_command:
                    print(f"resume with: {resume_command}")
            return TrainResult(path, done, stopped_by, run.best, run.times.summary())
        run.evaluate(done, log)
        path = run.save("model_final.pth", done)
        _check_ranks_agree(model)
        return TrainResult(path, done, None, run.best, run.times.summary())
    finally:  # also after a failure: the log so far and its curves are kept
        log.close()
        if log.enabled:
            _plot_curves(log.path, Path(output_dir) / CURVES_FILE)


def _plot_curves(metrics, png):
    """The curves are a view of metrics.jsonl: failing to draw them (a full disk) must not hide what
    stopped the run, nor fail a run whose checkpoints are written."""
    try:
        plot_training_curves(metrics, png)
    except (UserError, OSError, ValueError) as err:
        print(f"warning: training curves not drawn: {err}", file=sys.stderr)


def _loop(run, start, log, num_workers, progress):
    """Iterations ``start..max_iter``; returns (iterations done, name of the signal that stopped it or None)."""
    solver, model, times = run.solver, run.model, run.times
    forward = model
    if distributed.world_size() > 1:
        device_ids = [run.device.index] if run.device.type == "cuda" else None
        forward = torch.nn.parallel.DistributedDataParallel(model, device_ids=device_ids)
    scheduler = restore_scheduler(run.optimizer, solver, start)
    batches = iter(_loader(run.dataset, solver, num_workers, start, run.repeat_factors))
    bar = tqdm(total=solver.max_iter, initial=start, desc="train", dynamic_ncols=True,
               disable=not (progress and distributed.is_main()))
    check = _LossCheck()
    started, done = time.perf_counter(), start
    times.start()
    try:
        with StopRequest() as stop:
            for iteration in range(start, solver.max_iter):
                tick = time.perf_counter()
                images, targets = _to_device(*next(batches), run.device)
                data_time = time.perf_counter() - tick
                times.add("data", data_time)
                logging = (iteration + 1) % solver.log_period == 0 or iteration + 1 == solver.max_iter
                saving = (iteration + 1) % solver.checkpoint_period == 0 and iteration + 1 < solver.max_iter
                try:
                    with times.measure("step"):
                        check.poll()  # the earlier iterations' losses, as far as the device has got
                        try:
                            with run.precision.autocast():
                                losses = {k: v.float() for k, v in forward(images, targets).items()}
                        except Exception:
                            check.raise_if_bad()  # a non-finite step before can be why the forward pass failed
                            raise
                        total = sum(losses.values())
                        if distributed.world_size() > 1:  # the ranks agree on stopping every iteration: one sync
                            bad_loss, stop_now = distributed.any_rank(
                                [not math.isfinite(total.item()), stop.requested], run.device)
                            if bad_loss:
                                raise _non_finite(iteration + 1, total, losses)
                        else:
                            check.hold(iteration + 1, total, losses)
                            stop_now = stop.requested
                        run.optimizer.zero_grad(set_to_none=True)
                        run.precision.step(total, run.optimizer, run.params, solver.clip_grad_norm)
                        if logging or saving:  # values are read back below: the device's work counts here
                            times.synchronize()
                except torch.OutOfMemoryError:
                    raise _out_of_memory(iteration + 1, model, solver) from None
                scheduler.step()
                done = iteration + 1
                times.iterations += 1
                evaluating = solver.eval_period and done % solver.eval_period == 0 and done < solver.max_iter
                if logging or saving or evaluating or stop_now:
                    check.raise_if_bad()  # nothing is logged, saved or evaluated after a non-finite loss
                if logging:
                    _log(log, bar, done, losses, total, run, data_time, time.perf_counter() - tick, started, start)
                bar.update(1)
                if stop_now:
                    return done, stop.signal_name or "a signal to another process"
                if saving:
                    run.save(periodic_name(done), done)
                if evaluating:
                    with times.measure("eval"):
                        run.evaluate(done, log)
    finally:
        times.stop()
        bar.close()
        del batches  # stops the loader workers
    return done, None


class _LossCheck:
    """Whether each iteration's loss is finite, read back without making the host wait (one process).

    Reading it at once (``total.item()``) would make the host wait for the
    device's forward pass every iteration before it can queue the backward
    pass. Instead the flag is copied to host memory asynchronously and read
    once the device has got there: polled before each forward pass, and read
    (waiting if need be) before anything is logged, saved or evaluated, and
    when a forward pass fails (weights a non-finite step made can break it).
    So a non-finite loss is still reported with its own iteration and terms,
    and nothing is written after it; its optimizer step has been taken, in
    memory only (fp16's gradient scaler skips that step anyway).
    """

    def __init__(self):
        self.held = []  # (iteration, finite flag on the host, copy-done event or None, total, losses), oldest first

    def hold(self, iteration, total, losses):
        total = total.detach()
        finite, event = torch.isfinite(total), None
        if finite.is_cuda:
            host = torch.empty((), dtype=torch.bool, pin_memory=True)
            host.copy_(finite, non_blocking=True)
            event = torch.cuda.Event()
            event.record()
            finite = host
        self.held.append((iteration, finite, event, total, {k: v.detach() for k, v in losses.items()}))

    @staticmethod
    def _ready(event) -> bool:
        return event is None or event.query()

    def poll(self):
        """Check the flags the device has already delivered; never waits."""
        while self.held and self._ready(self.held[0][2]):
            self._check(self.held.pop(0))

    def raise_if_bad(self):
        """Check every held flag, waiting for the device if need be."""
        while self.held:
            held = self.held.pop(0)
            if held[2] is not None:
                held[2].synchronize()
            self._check(held)

    @staticmethod
    def _check(held):
        iteration, finite, _, total, losses = held
        if not finite.item():
            raise _non_finite(iteration, total, losses)


def _non_finite(iteration, total, losses):
    bad = [k for k, v in losses.items() if not math.isfinite(v.item())]
    where = f"{total.item()} ({', '.join(bad)})" if bad else "not finite on another process"
    return NonFiniteLossError(f"loss became {where} at iteration {iteration}; the last checkpoint is intact; "
                              f"lower solver.base_lr, raise solver.warmup_iters or set solver.clip_grad_norm")


def _log(log, bar, done, losses, total, run, data_time, iter_time, started, start):
    # one read-back for all the losses (each .item() would wait for the device again)
    values = torch.stack([total.detach()] + [v.detach() for v in losses.values()]).tolist()
    scalars = distributed.mean_over_ranks({"total_loss": values[0], **dict(zip(losses, values[1:])),
                                           "data_time": data_time, "time": iter_time}, run.device)
    if not log.enabled:
        return
    scalars["lr"] = run.optimizer.param_groups[0]["lr"]
    log.write(done, scalars)
    average = (time.perf_counter() - started) / (done - start)
    bar.set_postfix_str(f"loss {scalars['total_loss']:.3f} (" + " ".join(
        f"{SHORT_NAMES.get(k, k)} {v:.3f}" for k, v in scalars.items() if k.startswith("loss")) +
        f") lr {scalars['lr']:.4g} {average:.2f}s/it data {scalars['data_time']:.3f}s")


def _check_ranks_agree(model):
    """DDP keeps replicas identical; a mismatch means a bug, and must not pass silently."""
    if distributed.world_size() == 1:
        return
    prints = distributed.gather_objects(_weights_fingerprint(model))
    if len(set(prints)) != 1:
        raise RuntimeError(f"model weights differ between processes after training: {prints}")
    if distributed.is_main():
        print(f"weights identical on all {len(prints)} processes ({prints[0][:12]})")
