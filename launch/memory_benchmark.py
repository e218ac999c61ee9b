r"""Resident memory of a training run at every epoch end, and its slope.

    python -m launch.memory_benchmark --rss_log=rss.json \
        --flagfile=launch/configs/keras_blog_mlp.flags \
        --data_dir=../shared/data/mnist --epochs=30 --workdir=runs/rss_run

runs `vae-train` in this process with the given flags (put `train_vaegan`
first, before the flags, to run `vae-train-vaegan` instead) and reads the
process's resident set size (VmRSS of /proc/self/status) at the end of every
epoch, after evaluation, hooks, metrics.json and the checkpoint. The log
holds one record per epoch and the least-squares slope of RSS over the
epochs after the second (MiB per epoch): the first epochs hold one-off
growth (tracing, the allocator's pools, the first evaluation and pictures),
a leak shows as a slope that does not fall with more epochs. A run is
growing per step when the slope divided by the steps per epoch stays above
a few KiB. Linux only.
"""

from collections.abc import Sequence
import json
import sys

from absl import app
from absl import flags

# Program -> the trainer it runs by default.
_PROGRAMS = {"train": "elbo", "train_vaegan": "vaegan"}


def resident_mib() -> float:
    """This process's resident set size (VmRSS), in MiB."""
    with open("/proc/self/status") as stream:
        for line in stream:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    raise RuntimeError("/proc/self/status has no VmRSS line.")


def slope_per_epoch(records: Sequence[dict], skip_epochs: int = 2) -> float:
    """Least-squares slope (MiB per epoch) of `rss_mib` over the records of
    epochs after the first `skip_epochs`; NaN with fewer than two."""
    points = [
        (record["epoch"], record["rss_mib"])
        for record in records
        if record["epoch"] > skip_epochs
    ]
    if len(points) < 2:
        return float("nan")
    mean_x = sum(x for x, _ in points) / len(points)
    mean_y = sum(y for _, y in points) / len(points)
    covariance = sum((x - mean_x) * (y - mean_y) for x, y in points)
    variance = sum((x - mean_x) ** 2 for x, _ in points)
    return covariance / variance


def main_with_probe(program_module, rss_log: flags.FlagHolder):
    """`program_module.main` with an epoch-end RSS probe around it."""
    from trainers import base

    records: list[dict] = []
    finish_epoch = base.Trainer._finish_epoch

    def probed_finish_epoch(trainer, epoch):
        finish_epoch(trainer, epoch)
        records.append(
            {
                "epoch": epoch + 1,
                "global_step": int(trainer.global_step.numpy()),
                "rss_mib": round(resident_mib(), 1),
            }
        )
        print(
            f"memory_benchmark: epoch {epoch + 1} RSS {records[-1]['rss_mib']:.1f} MiB",
            file=sys.stderr,
            flush=True,
        )
        with open(rss_log.value, "w") as stream:
            json.dump(
                {
                    "epochs": records,
                    "mib_per_epoch_after_epoch_2": slope_per_epoch(records),
                },
                stream,
                indent=2,
            )
            stream.write("\n")

    def main(argv):
        # A measurement tool: it wraps the base loop's epoch end rather than
        # adding a probe option to every training program.
        base.Trainer._finish_epoch = probed_finish_epoch
        try:
            program_module.main(argv)
        finally:
            base.Trainer._finish_epoch = finish_epoch
            slope = slope_per_epoch(records)
            print(
                f"memory_benchmark: {len(records)} epochs, RSS "
                f"{slope:+.3f} MiB per epoch after epoch 2; log in "
                f"{rss_log.value}",
                file=sys.stderr,
                flush=True,
            )

    return main


def run_main():
    """Entry point: `python -m launch.memory_benchmark [train_vaegan]
    --rss_log=FILE <training flags>`."""
    from launch import train

    argv = list(sys.argv)
    program = "train"
    if len(argv) > 1 and argv[1] in _PROGRAMS:
        program = argv.pop(1)
    rss_log = flags.DEFINE_string(
        "rss_log", "rss.json", "Where the epoch-end RSS records go (JSON)."
    )
    app.run(
        main_with_probe(train, rss_log),
        argv=argv,
        flags_parser=train.flags_parser(_PROGRAMS[program]),
    )


if __name__ == "__main__":
    run_main()
