"""Train the bundled demo model family from scratch, export it into models/ and print its evaluation.

    python tools/train_demo_model.py                      # everything (~2 h on 2 CPU cores)
    python tools/train_demo_model.py --minutes 20         # at most 20 min per stage; run again to go on
    python tools/train_demo_model.py --eval-only          # score the files already in --out

Seeded and resumable: each stage keeps its checkpoints in --work-dir, and a finished stage is reused.
Exit status: 0 when every evaluation check passes, 1 when one fails, 3 when a time cap stopped training.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script from anywhere

STOPPED = 3


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    from tools.demo_model.config import STAGES

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=ROOT / "models", help="models folder to export into")
    parser.add_argument(
        "--work-dir",
        type=Path,
        default=Path.home() / ".cache" / "sd-webui-demo-model-v2",
        help="checkpoints and cached latents of every stage",
    )
    parser.add_argument(
        "--preset", choices=("full", "tiny"), default="full", help="model sizes (tiny: smoke tests)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto", help="auto (cuda when available), cpu, cuda, cuda:1, …")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--minutes", type=float, help="wall-time cap per stage; a later run resumes")
    parser.add_argument("--steps", type=int, help="steps of every stage (overrides the per-stage defaults)")
    for stage in STAGES:
        parser.add_argument(f"--{stage}-steps", type=int)
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--eval-only", action="store_true", help="only evaluate the files in --out")
    parser.add_argument("--eval-count", type=int, default=96, help="held-out txt2img images to score")
    return parser.parse_args(argv)


def make_config(args: argparse.Namespace):
    import torch

    from tools.demo_model.config import STAGES, TrainConfig
    from tools.demo_model.models import PRESETS

    device = args.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    config = TrainConfig(
        work_dir=args.work_dir,
        sizes=PRESETS[args.preset],
        seed=args.seed,
        device=device,
        minutes=args.minutes,
    )
    overrides = {}
    for stage in STAGES:
        steps = getattr(args, f"{stage}_steps") or args.steps
        if steps is not None:
            overrides[f"{stage}_steps"] = steps
    if args.batch_size:
        overrides["batch_size"] = args.batch_size
    return dataclasses.replace(config, **overrides)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import torch

    from tools.demo_model.build import build
    from tools.demo_model.evaluate import evaluate
    from tools.demo_model.export import ExportedFiles

    if args.threads:
        torch.set_num_threads(args.threads)
    config = make_config(args)
    if args.eval_only:
        files = ExportedFiles.under(args.out)
    else:
        files = build(config, args.out)
        if files is None:
            print("stopped by --minutes; run the same command again to continue")
            return STOPPED
        print(f"exported {files.checkpoint}, {files.controlnet}, {files.lora}")
    count = args.eval_count
    report = evaluate(files, config.seed, count, min(32, count), min(16, count), config.device)
    print("\n".join(report.lines()))
    return 0 if all(report.checks().values()) else 1


if __name__ == "__main__":
    sys.exit(main())
