"""The training loop behind ``tools/train_det.py``.

One process, iteration-based (as Detectron): each iteration draws a batch,
sums the detector's losses, steps the optimizer and the LR schedule. Metrics go to
``metrics.jsonl`` and checkpoints to the output folder.
"""
import itertools
from functools import partial
import json
import math
import time
from pathlib import Path

import torch
from tqdm import tqdm

from backbones.errors import UserError

from ..data.dataset import collate
from ..data.sampler import AspectRatioGroupedBatches
from .checkpoint import save_checkpoint
from .solver import build_optimizer, build_scheduler


class NonFiniteLossError(UserError):
    pass


def _seed_worker(worker_id, base):
    """Each loader worker (and each epoch) gets its own augmentation stream."""
    dataset = torch.utils.data.get_worker_info().dataset
    if getattr(dataset, "augment", None) is not None:
        dataset.augment.set_random_seed(base + worker_id)


def _batches(dataset, solver, num_workers):
    """Endless shuffled batches, reproducible from ``solver.seed``."""
    generator = torch.Generator().manual_seed(solver.seed)
    for epoch in itertools.count():
        batches = AspectRatioGroupedBatches([r.width for r in dataset.records], [r.height for r in dataset.records],
                                            solver.ims_per_batch, generator)
        loader = torch.utils.data.DataLoader(
            dataset, batch_sampler=batches, num_workers=num_workers, collate_fn=collate,
            worker_init_fn=partial(_seed_worker, base=solver.seed + 1000 * (epoch + 1)))
        yield from loader


def train(model, dataset, solver, output_dir, num_workers=0, train_config=None, progress=True, device="cpu"):
    """Train ``model`` on ``dataset``; returns the path of the final checkpoint."""
    if len(dataset) < solver.ims_per_batch:
        raise UserError(f"the training set has {len(dataset)} images, fewer than one batch "
                        f"(solver.ims_per_batch={solver.ims_per_batch})")
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(solver.seed)
    model.to(device).train()
    optimizer = build_optimizer(model, solver)
    scheduler = build_scheduler(optimizer, solver)
    params = [p for g in optimizer.param_groups for p in g["params"]]
    meta = dict(class_names=dataset.class_names, category_ids=dataset.category_ids, train_config=train_config)

    bar = tqdm(total=solver.max_iter, desc="train", disable=not progress, dynamic_ncols=True)
    with open(output_dir / "metrics.jsonl", "w") as log:
        start, data_start = time.perf_counter(), time.perf_counter()
        for iteration, (images, targets) in zip(range(solver.max_iter), _batches(dataset, solver, num_workers)):
            data_time = time.perf_counter() - data_start
            images = [im.to(device, non_blocking=True) for im in images]
            targets = [{k: (v.to(device) if torch.is_tensor(v) else v) for k, v in t.items()} for t in targets]
            losses = model(images, targets)
            total = sum(losses.values())
            if not math.isfinite(total.item()):
                bad = [k for k, v in losses.items() if not math.isfinite(v.item())]
                raise NonFiniteLossError(
                    f"loss became {total.item()} at iteration {iteration} ({', '.join(bad)}); "
                    f"lower solver.base_lr or raise solver.warmup_iters")
            optimizer.zero_grad(set_to_none=True)
            total.backward()
            if solver.clip_grad_norm:
                torch.nn.utils.clip_grad_norm_(params, solver.clip_grad_norm)
            optimizer.step()
            scheduler.step()
            done = iteration + 1
            if done % solver.log_period == 0 or done == solver.max_iter:
                record = {"iteration": done, "total_loss": total.item(),
                          **{k: v.item() for k, v in losses.items()},
                          "lr": optimizer.param_groups[0]["lr"], "data_time": data_time,
                          "time": (time.perf_counter() - start) / done}
                log.write(json.dumps(record) + "\n")
                log.flush()
                bar.set_postfix(loss=f"{record['total_loss']:.3f}", lr=f"{record['lr']:.4g}")
            if done % solver.checkpoint_period == 0 and done < solver.max_iter:
                save_checkpoint(output_dir / f"model_{done:07d}.pth", model, iteration=done, **meta)
            bar.update(1)
            data_start = time.perf_counter()
    bar.close()
    return save_checkpoint(output_dir / "model_final.pth", model, iteration=solver.max_iter, **meta)
