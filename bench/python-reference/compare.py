"""Time the original Python DoJobber and dojobber on the same suites.

Each workload is run as a whole process, the way a user waits for it:
`suite.py` under the virtualenv's Python with DoJobber from PyPI, and
dojobber's `scale` example built in release. Prints a table of the median
wall time per job and the ratio, and beside them the bounds on that ratio:
the same suite run with no engine (`scale --engine none`, the user's code
alone) and a process that does nothing (`true`), timed the same way. Use `./run` beside this file, which makes
the virtualenv and builds the example first.

With `--python-rs`, the same `suite.py` also runs under the Python package
`dojobber-rs` (DoJobber's API on the Rust engine), beside `floor.py`: the
same job classes called by a bare Python loop, the floor for that package.
"""

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

WORKLOADS = [
    ("chain", 1_000, "fix"),
    ("chain", 3_000, "fix"),
    ("random", 10_000, "fix"),
]


def wall_time(command):
    """Seconds the command took from start to exit; fails loudly if it failed."""
    start = time.perf_counter()
    done = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"{' '.join(map(str, command))} exited {done.returncode}:\n{done.stdout}{done.stderr}")
    return elapsed


def median_time(command, repeats):
    return statistics.median(wall_time(command) for _ in range(repeats))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", required=True, help="the virtualenv's python, with dojobber installed")
    parser.add_argument("--scale", required=True, help="the release build of the scale example")
    parser.add_argument("--python-repeats", type=int, default=3)
    parser.add_argument("--rust-repeats", type=int, default=11)
    parser.add_argument("--python-rs", help="a python with dojobber-rs installed: time it too")
    args = parser.parse_args()
    if args.python_rs:
        return compare_package(args)

    empty = median_time(["true"], args.rust_repeats)
    print(f"a process that does nothing: {empty * 1e3:.2f} ms")
    print(
        f"{'workload':<22} {'Python µs/job':>14} {'dojobber µs/job':>16} {'ratio':>9}"
        f" {'floor µs/job':>13} {'Python/floor':>13} {'Python/empty':>13}"
    )
    ratios = []
    for shape, jobs, mode in WORKLOADS:
        flags = ["--shape", shape, "--jobs", str(jobs), "--mode", mode]
        python = median_time([args.python, HERE / "suite.py", *flags], args.python_repeats)
        rust = median_time([args.scale, *flags], args.rust_repeats)
        floor = median_time([args.scale, *flags, "--engine", "none"], args.rust_repeats)
        per_job = lambda seconds: seconds / (jobs + 1) * 1e6  # the root group is a job too
        ratio = python / rust
        ratios.append(ratio)
        print(
            f"{f'{shape} {jobs:,} {mode}':<22} {per_job(python):>14.1f} {per_job(rust):>16.2f}"
            f" {ratio:>8.0f}× {per_job(floor):>13.2f} {python / floor:>12.0f}× {python / empty:>12.0f}×"
        )
    print(f"smallest ratio: {min(ratios):.0f}×")


PACKAGE_WORKLOADS = WORKLOADS + [("chain", 100_000, "fix")]


def compare_package(args):
    """The original, dojobber-rs and the bare-loop floor, on the same suite.py."""
    print(
        f"{'workload':<22} {'original µs/job':>16} {'dojobber-rs µs/job':>19} {'ratio':>8}"
        f" {'floor µs/job':>13} {'rs/floor':>9}"
    )
    for shape, jobs, mode in PACKAGE_WORKLOADS:
        flags = ["--shape", shape, "--jobs", str(jobs), "--mode", mode]
        per_job = lambda seconds: seconds / (jobs + 1) * 1e6
        if jobs <= 10_000:
            original = median_time([args.python, HERE / "suite.py", *flags], args.python_repeats)
            shown = f"{per_job(original):>16.1f}"
        else:
            original = None
            shown = f"{'(not run)':>16}"
        package = median_time([args.python_rs, HERE / "suite.py", *flags], args.python_repeats)
        floor = median_time([args.python_rs, HERE / "floor.py", *flags], args.python_repeats)
        ratio = f"{original / package:>7.0f}×" if original else f"{'':>8}"
        print(
            f"{f'{shape} {jobs:,} {mode}':<22} {shown} {per_job(package):>19.2f} {ratio}"
            f" {per_job(floor):>13.2f} {package / floor:>8.2f}×"
        )


if __name__ == "__main__":
    main()
