"""Run a suite of the paper's transfer experiments and write reproduction/<suite>/report.md with plots.

    python tools/reproduce.py --suite shapes                  # the CPU-scale study, one seed
    python tools/reproduce.py --suite shapes --seeds 3        # three seeds: mean ± std and error bars
    python tools/reproduce.py --suite paper --eval-only       # evaluate existing checkpoints, list what is missing
    python tools/reproduce.py --suite paper --only R101_C4_voc07 vgg16_C4_voc07
    python tools/reproduce.py --suite paper --list            # the experiments and what each needs
    python tools/reproduce.py --suite shapes --seeds 3 --report-only   # the report again from the runs' numbers

Each experiment trains with tools/train_det.py into RUNS/<name> (an existing
model_final.pth is reused unless --retrain), is evaluated there, and its
numbers go into the report beside the paper's. An experiment whose data,
weights, GPU or checkpoint is missing is reported with what it needs; the
others still run.
"""
import argparse
import shlex
import sys
import time
from pathlib import Path

from backbones.errors import UserError
from detection.cli import command
from detection.engine.run_folder import check_writable_folder
from detection.engine.run_lock import LOCK_FILE, RunLock
from detection.reproduction.claims import CLAIMS
from detection.reproduction.experiments import PREAMBLES, SUITES, select, suite
from detection.reproduction.report import write_report
from detection.reproduction.requirements import needs
from detection.reproduction.runner import recorded_outcomes, run_suite


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--suite", required=True, help=f"one of {', '.join(SUITES)}")
    p.add_argument("--only", nargs="+", metavar="NAME", help="run only these experiments")
    p.add_argument("--eval-only", action="store_true", help="evaluate existing checkpoints; train nothing")
    p.add_argument("--retrain", action="store_true", help="train again even where model_final.pth exists")
    p.add_argument("--list", action="store_true", help="list the experiments and their needs, run nothing")
    p.add_argument("--report-only", action="store_true",
                   help="rewrite the report from the result.json files of an earlier invocation; run nothing")
    p.add_argument("--runs", help="folder of the runs (default: output/reproduce/<suite>)")
    p.add_argument("--report", help="folder of the report (default: reproduction/<suite>)")
    p.add_argument("--device", help="cpu or cuda for evaluation (default: cuda when available)")
    p.add_argument("--seeds", type=int, default=1, metavar="N",
                   help="run every experiment with seeds 0..N-1 (seed k > 0 in RUNS/seed<k>, solver.seed=k) and "
                        "report mean ± std over them (default: 1)")
    return p.parse_args(argv)


@command
def main(argv=None):
    args = parse_args(argv)
    if args.seeds < 1:
        raise UserError(f"--seeds {args.seeds}: give 1 or more seeds (seeds 0..N-1 are run)")
    experiments = select(suite(args.suite), args.only)
    runs = Path(args.runs or f"output/reproduce/{args.suite}")
    if args.list:
        for e in experiments:
            print(f"{e.name}: {e.config}")
            for need in needs(e, runs / e.name, args.eval_only, args.suite):
                print(f"    {need.line()}")
        return
    started = time.perf_counter()
    check_writable_folder(runs, "--runs")
    with RunLock(runs / LOCK_FILE, f"the suite folder {runs}", "--runs"):  # one suite at a time in a folder
        if args.report_only:
            outcomes = recorded_outcomes(experiments, runs, args.seeds)
        else:
            outcomes = run_suite(experiments, runs, eval_only=args.eval_only, retrain=args.retrain,
                                 device=args.device, suite_name=args.suite, seeds=args.seeds)
        command = " ".join(shlex.quote(a) for a in ["python", "tools/reproduce.py"] + (argv or sys.argv[1:]))
        report = write_report(args.suite, experiments, outcomes, runs,
                              Path(args.report or f"reproduction/{args.suite}"), command,
                              PREAMBLES.get(args.suite, ""),
                              None if args.report_only else time.perf_counter() - started, seeds=args.seeds,
                              claims=CLAIMS.get(args.suite, ()))
    print(f"wrote {report}")


if __name__ == "__main__":
    main()
