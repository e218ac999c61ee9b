"""What `vae-benchmark` (launch/benchmark.py) measures and how it reports it.

The presets and their window lengths, one measurement in a worker process
(launch/benchmark_worker.py), the summary of a preset's repeats, the
machine's peak FLOP/s, and the two tables. No flags are defined here, so
tests and other programs can import it.
"""

from __future__ import annotations

from collections.abc import Sequence
import dataclasses
import json
import os
import statistics
import subprocess
import sys

from launch import benchmark_worker


@dataclasses.dataclass(frozen=True)
class Preset:
    """A benchmarked preset: the program, its flagfile, and the window."""

    program: str
    flagfile: str
    window_steps: int
    extra_flags: tuple[str, ...] = ()


PRESETS = {
    "mlp_vae": Preset("vae-train", "keras_blog_mlp.flags", 1000),
    "conv_vae": Preset("vae-train", "tf_tutorial_conv.flags", 200),
    "mlp_cvae": Preset("vae-train", "keras_cvae_mlp.flags", 100),
    "conv_cvae": Preset("vae-train", "conv_cvae.flags", 60),
    "cvae_gan": Preset(
        "vae-train-vaegan",
        "cvae_gan_cpu.flags",
        20,
        ("--d_steps=1", "--g_steps=1", "--d_threshold=0", "--g_threshold=1e9"),
    ),
}
IMPLEMENTATIONS = ("framework", "keras")
# Single-precision FLOPs per cycle and core with AVX2 and two FMA units:
# 2 units x 8 lanes x 2 (multiply and add).
FLOPS_PER_CYCLE_AVX2_FMA = 32


def machine_peak_flops() -> float | None:
    """Cores x clock x 32 single-precision FLOPs per cycle (AVX2 FMA), or
    None when /proc/cpuinfo gives no clock or the CPU lacks AVX2 or FMA."""
    try:
        with open("/proc/cpuinfo") as stream:
            info = stream.read()
    except OSError:
        return None
    megahertz = [
        float(line.split(":")[1])
        for line in info.splitlines()
        if line.startswith("cpu MHz")
    ]
    cpu_flags = next(
        (
            line.split(":")[1].split()
            for line in info.splitlines()
            if line.startswith("flags")
        ),
        [],
    )
    if not megahertz or not {"avx2", "fma"} <= set(cpu_flags):
        return None
    cores = len(os.sched_getaffinity(0))
    return cores * max(megahertz) * 1e6 * FLOPS_PER_CYCLE_AVX2_FMA


def measure(
    preset_name: str,
    implementation: str,
    *,
    windows: int,
    warmup_windows: int,
    window_scale: float,
    data_dir: str | None,
    framework_flags: Sequence[str],
    profile: bool = False,
) -> dict:
    """Runs one measurement in its own process; returns what it printed."""
    preset = PRESETS[preset_name]
    preset_flags = [f"--flagfile=launch/configs/{preset.flagfile}", *preset.extra_flags]
    if implementation == "framework":
        preset_flags += list(framework_flags)
    spec = {
        "implementation": implementation,
        "program": preset.program,
        "flags": preset_flags,
        "data_dir": data_dir,
        "windows": windows,
        "warmup_windows": warmup_windows,
        "profile": profile,
        "window_steps": max(2, round(preset.window_steps * window_scale)),
    }
    completed = subprocess.run(
        [sys.executable, "-m", "launch.benchmark_worker", json.dumps(spec)],
        capture_output=True,
        text=True,
        check=False,
        cwd=benchmark_worker.REPOSITORY_ROOT,
    )
    for line in completed.stdout.splitlines():
        if line.startswith(benchmark_worker.RESULT_PREFIX):
            return json.loads(line[len(benchmark_worker.RESULT_PREFIX) :])
    raise RuntimeError(
        f"The {implementation} measurement of preset {preset_name} failed "
        f"(exit status {completed.returncode}); the end of its output:\n"
        + "\n".join(completed.stderr.splitlines()[-15:])
    )


def summarize(preset_name: str, runs: dict, peak_flops: float | None) -> dict:
    """One table row from the repeats of both implementations."""
    row = {"preset": preset_name}
    for implementation, results in runs.items():
        row[implementation] = {
            "images_per_second": statistics.median(
                result["images_per_second"] for result in results
            ),
            "first_step_seconds": statistics.median(
                result["first_step_seconds"] for result in results
            ),
            "peak_rss_mib": max(result["peak_rss_mib"] for result in results),
            "parameters": results[0]["parameters"],
            "batch_size": results[0]["batch_size"],
            "runs": results,
        }
    framework, keras = row["framework"], row["keras"]
    row["ratio"] = framework["images_per_second"] / keras["images_per_second"]
    row["same_parameters"] = framework["parameters"] == keras["parameters"]
    flops_per_step = statistics.median(
        result["flops_per_step"] for result in framework["runs"]
    )
    row["flops_per_step"] = flops_per_step
    row["framework_flops_per_second"] = (
        flops_per_step * framework["images_per_second"] / framework["batch_size"]
    )
    row["fraction_of_peak"] = (
        row["framework_flops_per_second"] / peak_flops if peak_flops else None
    )
    return row


def format_table(rows: Sequence[dict]) -> str:
    """The throughput table, one row per preset, in Markdown."""
    header = (
        "| preset | batch | parameters | framework img/s | Keras img/s "
        "| ratio | first step s (fw / Keras) | peak RSS MiB (fw / Keras) "
        "| GFLOP/s | of peak |"
    )
    lines = [header, "|---" * (header.count("|") - 1) + "|"]
    for row in rows:
        framework, keras = row["framework"], row["keras"]
        peak = (
            f"{100 * row['fraction_of_peak']:.1f}%"
            if row["fraction_of_peak"] is not None
            else "n/a"
        )
        parameters = f"{framework['parameters']:,}"
        if not row["same_parameters"]:
            parameters += f" (Keras {keras['parameters']:,})"
        lines.append(
            f"| {row['preset']} | {framework['batch_size']} | {parameters} "
            f"| {framework['images_per_second']:,.0f} "
            f"| {keras['images_per_second']:,.0f} | {row['ratio']:.2f} "
            f"| {framework['first_step_seconds']:.1f} / "
            f"{keras['first_step_seconds']:.1f} "
            f"| {framework['peak_rss_mib']:,.0f} / {keras['peak_rss_mib']:,.0f} "
            f"| {row['framework_flops_per_second'] / 1e9:.1f} | {peak} |"
        )
    return "\n".join(lines)


PROFILE_CATEGORIES = ("convolution", "matmul", "other ops")


def format_profile(rows: Sequence[dict]) -> str:
    """Milliseconds per step by kind of op, from the profiled windows."""
    header = (
        "| preset | implementation | ms/step (timed) | "
        + " | ".join(PROFILE_CATEGORIES)
        + " | top ops |"
    )
    lines = [header, "|---" * (header.count("|") - 1) + "|"]
    for row in rows:
        for side in IMPLEMENTATIONS:
            profile = row[side]["runs"][0].get("profile")
            if profile is None:
                continue
            categories = profile["category_ms_per_step"]
            top = ", ".join(
                f"{name} {milliseconds:.1f}"
                for name, milliseconds in list(profile["top_op_ms_per_step"].items())[:4]
                if name != "IDLE"
            )
            step_ms = 1000 * row[side]["batch_size"] / row[side]["images_per_second"]
            lines.append(
                f"| {row['preset']} | {side} | {step_ms:.1f} | "
                + " | ".join(
                    f"{categories.get(name, 0.0):.1f}" for name in PROFILE_CATEGORIES
                )
                + f" | {top} |"
            )
    return "\n".join(lines) if len(lines) > 2 else ""
