"""The floor for the Python package: suite.py's jobs run by a bare Python
loop, no engine. Each job, in an order where its deps come first (ids
ascending), is made, given its storages, checked, and when the check
fails run and rechecked: the same calls, with nothing deciding anything.

    python floor.py --shape random --jobs 10000 --mode fix
"""

import argparse
import sys

import suite


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--shape", choices=["chain", "random"], default="random")
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--mode", choices=["pass", "fix"], default="fix")
    args = parser.parse_args()
    suite.MODE = args.mode
    deps = suite.shape_deps(args.shape, args.jobs)
    root = suite.build(deps)
    classes = [*(cls for cls in _jobs(root)), root]
    shared = {}
    passed = 0
    for cls in classes:
        job = cls()
        job._set_storage({}, shared)
        try:
            job.Check()
        except Exception:
            try:
                job.Run()
            except Exception:
                pass
            try:
                job.Check()
            except Exception:
                continue
        passed += 1
    print(f"{len(classes)} jobs, passed={passed}")
    return 0 if passed == len(classes) else 1


def _jobs(root):
    """Every job class under the root, deps before dependents (ids ascending)."""
    seen = {}
    stack = list(root.DEPS)
    while stack:
        cls = stack.pop()
        if cls.__name__ not in seen:
            seen[cls.__name__] = cls
            stack.extend(cls.DEPS)
    return sorted(seen.values(), key=lambda cls: int(cls.__name__[1:]))


if __name__ == "__main__":
    sys.exit(main())
