"""The scale example's suite for the original Python DoJobber.

Builds the same graph as dojobber's `examples/movie/examples/scale.rs` (chain, or
a random DAG from the same xorshift64* stream) as Job classes with DEPS,
roots it in a DummyJob of the jobs nothing needs, and runs checknrun. In
"fix" mode each Check fails until the job's Run stored a mark in its
local storage, so every job goes check -> run -> recheck.

    python suite.py --shape random --jobs 10000 --mode fix
"""

import argparse
import sys
import threading

import dojobber

MASK = (1 << 64) - 1


def shape_deps(shape, jobs):
    """Every job's deps, by id; the same lists as scale.rs draws."""
    if shape == "chain":
        return [[] if i == 0 else [i - 1] for i in range(jobs)]
    state = 0x9E3779B97F4A7C15

    def below(bound):
        nonlocal state
        state ^= state >> 12
        state ^= (state << 25) & MASK
        state ^= state >> 27
        return (((state * 0x2545F4914F6CDD1D) & MASK) >> 33) % bound

    deps = []
    for i in range(jobs):
        if i == 0:
            deps.append([])
            continue
        count = below(4)
        deps.append(sorted({below(i) for _ in range(count)}))
    return deps


def check(self, *_args, **_kwargs):
    if MODE == "fix" and not self.storage.get("fixed"):
        raise RuntimeError(f"{type(self).__name__} is not there yet")


def run(self, *_args, **_kwargs):
    self.storage["fixed"] = True


def build(deps):
    classes = []
    for i, mine in enumerate(deps):
        classes.append(
            type(f"j{i}", (dojobber.Job,), {
                "DEPS": tuple(classes[d] for d in mine),
                "Check": check,
                "Run": run,
            })
        )
    needed = {d for mine in deps for d in mine}
    sinks = tuple(c for i, c in enumerate(classes) if i not in needed)
    return type("Root", (dojobber.DummyJob,), {"DEPS": sinks})


def main():
    global MODE
    parser = argparse.ArgumentParser()
    parser.add_argument("--shape", choices=["chain", "random"], default="random")
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--mode", choices=["pass", "fix"], default="fix")
    args = parser.parse_args()
    MODE = args.mode
    root = build(shape_deps(args.shape, args.jobs))
    dojob = dojobber.DoJobber()
    dojob.configure(root, default_retry_delay=0)
    dojob.checknrun()
    statuses = dojob.nodestatus.values()
    print(f"{len(dojob.nodestatus)} jobs, success={dojob.success()}, "
          f"passed={sum(1 for s in statuses if s)}")
    return 0 if dojob.success() else 1


# DoJobber walks its graph recursively (discovery, depth-first searches,
# checknrun): a chain of 1,000 overflows Python's default recursion limit of
# 1,000. Raise the limit and give the thread a stack that can hold it.
RECURSION_LIMIT = 1_000_000
MODE = "fix"

if __name__ == "__main__":
    sys.setrecursionlimit(RECURSION_LIMIT)
    threading.stack_size(1 << 29)
    exit_code = []
    worker = threading.Thread(target=lambda: exit_code.append(main()))
    worker.start()
    worker.join()
    sys.exit(exit_code[0] if exit_code else 1)
