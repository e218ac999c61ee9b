r"""Training throughput of each preset against a Keras `fit` reference.

    vae-benchmark --data_dir=../shared/data/mnist --output=benchmark.json

For each preset this measures, in the same run, the framework's trainer (as
vae-train or vae-train-vaegan builds it from the preset's flagfile) and the
same networks, loss, optimiser and batch size written as Keras users write
them (launch/keras_reference.py: a `keras.Model` with a custom `train_step`,
compiled with Keras' defaults, driven by `fit`). Each measurement runs in a
fresh process (launch/benchmark_worker.py) and trains for
`warmup_windows + windows` windows of the preset's window length; reported
are the median images per second over the steady windows, the time to the
first step (tracing and compilation: the first window less a steady
window's share), the process's peak resident memory, and for the framework
the FLOPs of one step (its matmuls and convolutions) and the FLOP/s reached
against the machine's peak. With `--repeats=2` the order alternates
(framework, Keras, Keras, framework) so that drift in the machine's speed
falls on both, and each side's median over repeats is reported.

The VAE-GAN's balancing makes the work per step depend on the losses, so
its benchmark pins it (`d_threshold=0`, `g_threshold=1e9`): one
discriminator and one encoder+decoder update per step, as the preset
(`d_steps=1`, `g_steps=1`) runs on MNIST, for both implementations.

Without --data_dir the images are random MNIST-shaped bytes: throughput
does not depend on what they show.
"""

from __future__ import annotations

from collections.abc import Sequence
import json
import os
import sys
import time

from absl import app
from absl import flags

from launch import benchmarking
from launch import errors

_PRESETS = flags.DEFINE_list(
    "presets",
    list(benchmarking.PRESETS),
    f"Presets to measure, from {sorted(benchmarking.PRESETS)}.",
)
_DATA_DIR = flags.DEFINE_string(
    "data_dir", None, "MNIST IDX directory; unset: random MNIST-shaped data."
)
_WINDOWS = flags.DEFINE_integer(
    "windows", 5, "Timed windows per measurement.", lower_bound=1
)
_WARMUP_WINDOWS = flags.DEFINE_integer(
    "warmup_windows",
    1,
    "Windows run before timing starts (the first holds tracing and compilation).",
    lower_bound=1,
)
_WINDOW_SCALE = flags.DEFINE_float(
    "window_scale",
    1.0,
    "Multiplies every preset's window length in steps.",
    lower_bound=0.0,
)
_REPEATS = flags.DEFINE_integer(
    "repeats",
    1,
    "Measurements per implementation and preset, in alternating order.",
    lower_bound=1,
)
_FRAMEWORK_FLAGS = flags.DEFINE_list(
    "framework_flags",
    [],
    "Extra training flags for the framework side "
    "only, e.g. --framework_flags=--jit_compile,--steps_per_loop=200.",
)
_PROFILE = flags.DEFINE_boolean(
    "profile",
    False,
    "Also run one window of each measurement under "
    "TensorFlow's profiler and report where a step's time goes.",
)
_OUTPUT = flags.DEFINE_string(
    "output", "benchmark.json", "Where the JSON results are written."
)


def main(argv: Sequence[str]) -> None:
    errors.reject_positional_arguments(argv)
    unknown = [name for name in _PRESETS.value if name not in benchmarking.PRESETS]
    if unknown or not _PRESETS.value:
        errors.report_user_error(
            errors.ConfigError(
                f"--presets={','.join(_PRESETS.value)} names "
                f"{', '.join(unknown) or 'no preset'}; expected a comma-separated "
                f"list from {', '.join(benchmarking.PRESETS)}."
            )
        )
        sys.exit(2)
    if _DATA_DIR.value is not None and not os.path.isdir(_DATA_DIR.value):
        errors.report_user_error(
            errors.ConfigError(
                f"--data_dir={_DATA_DIR.value} is not a directory; expected the "
                "directory of MNIST's four IDX files, or leave it unset for "
                "random data."
            )
        )
        sys.exit(2)
    data_dir = os.path.abspath(_DATA_DIR.value) if _DATA_DIR.value is not None else None
    peak_flops = benchmarking.machine_peak_flops()
    rows = []
    for preset_name in _PRESETS.value:
        runs = {implementation: [] for implementation in benchmarking.IMPLEMENTATIONS}
        for repeat in range(_REPEATS.value):
            # Alternate the order so that a drifting machine favours neither.
            order = (
                benchmarking.IMPLEMENTATIONS
                if repeat % 2 == 0
                else benchmarking.IMPLEMENTATIONS[::-1]
            )
            for implementation in order:
                print(
                    f"[{time.strftime('%H:%M:%S')}] {preset_name}: "
                    f"{implementation} (repeat {repeat + 1}/"
                    f"{_REPEATS.value})",
                    flush=True,
                )
                try:
                    result = benchmarking.measure(
                        preset_name,
                        implementation,
                        windows=_WINDOWS.value,
                        warmup_windows=_WARMUP_WINDOWS.value,
                        window_scale=_WINDOW_SCALE.value,
                        data_dir=data_dir,
                        framework_flags=_FRAMEWORK_FLAGS.value,
                        profile=_PROFILE.value,
                    )
                except RuntimeError as error:
                    print(error, file=sys.stderr)
                    sys.exit(1)
                print(f"    {result['images_per_second']:,.0f} images/s", flush=True)
                runs[implementation].append(result)
        rows.append(benchmarking.summarize(preset_name, runs, peak_flops))
    table = benchmarking.format_table(rows)
    print(table)
    profile_table = benchmarking.format_profile(rows)
    if profile_table:
        print(
            "\nWhere a step's time goes (ms per step, op self-time summed over threads):"
        )
        print(profile_table)
    report = {
        "rows": rows,
        "table": table,
        "profile_table": profile_table,
        "peak_flops": peak_flops,
        "settings": {
            "windows": _WINDOWS.value,
            "warmup_windows": _WARMUP_WINDOWS.value,
            "window_scale": _WINDOW_SCALE.value,
            "repeats": _REPEATS.value,
            "profile": _PROFILE.value,
            "data_dir": data_dir,
            "framework_flags": _FRAMEWORK_FLAGS.value,
        },
    }
    with open(_OUTPUT.value, "w") as stream:
        json.dump(report, stream, indent=2)
    print(f"Results written to {_OUTPUT.value}.")


def run_main():
    """Console-script entry point (`vae-benchmark`)."""
    app.run(main, flags_parser=errors.parse_flags_or_exit)


if __name__ == "__main__":
    run_main()
