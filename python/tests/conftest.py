"""Shared fixtures: the original DoJobber 0.6.3 from PyPI, in a virtualenv
of its own (its import name is also `dojobber`), serving suite_runner.py."""

import json
import os
import pathlib
import subprocess
import sys
import venv

import pytest
from hypothesis import settings

HERE = pathlib.Path(__file__).resolve().parent
# Hypothesis keeps no example database in the source tree.
settings.register_profile('dojobber', database=None, deadline=None)
settings.load_profile('dojobber')


def _original_python():
    """The original's interpreter: $DOJOBBER_ORIGINAL_PYTHON (set by `cargo
    xtask test`), else a virtualenv made here under the workspace's target/.
    Any failure to make it fails the tests: they never skip."""
    given = os.environ.get('DOJOBBER_ORIGINAL_PYTHON')
    if given:
        return given
    target = HERE.parents[1] / 'target' / 'dojobber-original-venv'
    python = target / 'bin' / 'python'
    if not python.exists():
        venv.create(target, with_pip=True)
        # Its graph library imports pkg_resources (setuptools < 70), and
        # Python >= 3.12 takes distutils from setuptools.
        subprocess.run(
            [str(python), '-m', 'pip', 'install', '--quiet',
             'dojobber==0.6.3', 'setuptools<70'],
            check=True,
        )
    return str(python)


class Original:
    """The original DoJobber in a subprocess: one case in, one result out."""

    def __init__(self, python):
        self.proc = subprocess.Popen(
            [python, str(HERE / 'suite_runner.py'), '--serve'],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
            cwd=str(HERE),
        )

    def run(self, case):
        self.proc.stdin.write(json.dumps(case) + '\n')
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f'the original DoJobber died on {case!r}')
        return json.loads(line)

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


@pytest.fixture(scope='session')
def original():
    server = Original(_original_python())
    yield server
    server.close()


@pytest.fixture(scope='session', autouse=True)
def _not_the_original():
    """The package under test is this one, not the original."""
    import dojobber
    assert hasattr(dojobber, 'Report'), dojobber.__file__
    assert sys.modules['dojobber'].__file__ is not None
