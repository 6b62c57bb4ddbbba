"""The same suites under the original DoJobber 0.6.3 (PyPI, own virtualenv)
and under this package: statuses, exceptions, results, success() and
partial_success(), the verbose and debug lines and the jobs' own logs
(cleanups among them) must be equal."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import suite_runner


def test_the_original_is_the_original(original):
    theirs = original.run({'suite': 'whoami'})
    ours = suite_runner.run_case({'suite': 'whoami'})
    assert not theirs['has_report'] and ours['has_report']
    assert theirs['file'] != ours['file']


def same(original, case):
    ours = suite_runner.run_case(case)
    theirs = original.run(case)
    assert ours == theirs
    return ours


QUICK = {'default_retry_delay': 0}
MOVIE_FLAGS = [
    {},
    {'movie': 'MST3K', 'battery_state': 'charged', 'couch_space': True},
    {'movie': 'Jaws'},
    {'pop_success_try': 7},
    {'bowl_success_try': 9, 'battery_state': 'charged'},
    {'pizza_success_try': 4},
    {'pizza_success_try': 1, 'pop_success_try': 0, 'bowl_success_try': 0},
]
MOVIE_CONFIGS = [
    {'verbose': True},
    {'debug': True},
    {'no_act': True, 'verbose': True},
    {'no_act': True, 'debug': True},
    {'cleanup': False, 'verbose': True},
    {},
    {'verbose': True, 'default_tries': 1},
]


@pytest.mark.parametrize('flags', MOVIE_FLAGS)
@pytest.mark.parametrize('configure', MOVIE_CONFIGS)
def test_movie_example_runs_as_under_the_original(original, flags, configure):
    case = {'suite': 'movie', 'configure': {**QUICK, **configure}, **flags}
    out = same(original, case)
    assert out['nodestatus'], 'the run reached no job'


def test_movie_default_outcome_is_the_documented_one(original):
    out = same(original, {'suite': 'movie', 'configure': {**QUICK, 'verbose': True}})
    failed = sorted(k for k, v in out['nodestatus'].items() if v is False)
    blocked = sorted(k for k, v in out['nodestatus'].items() if v is None)
    assert failed == ['SitOnCouch', 'TurnOnTV']
    assert blocked == ['StartMovie', 'WatchMovie']
    assert out['partial_success'] and not out['success']


@st.composite
def random_suites(draw):
    """A random DAG of jobs (deps point to earlier jobs; the last job, the
    root, needs every job nothing else needs) with failures, retries,
    run-only and dummy jobs, broken __init__, cleanups, and a random
    configure (no-act, cleanup on/off, debug, default tries)."""
    count = draw(st.integers(1, 9))
    jobs = []
    for i in range(count):
        deps = draw(st.lists(st.integers(0, i - 1), unique=True, max_size=3)) if i else []
        named = []
        if deps and draw(st.integers(0, 5)) == 0:
            named = [draw(st.sampled_from(deps))]
        jobs.append({
            'kind': draw(st.sampled_from(['job', 'job', 'job', 'runonly', 'dummy'])),
            'deps': deps,
            'dep_as_name': named,
            'tries': draw(st.sampled_from([None, None, 1, 2, 3])),
            'check_after': draw(st.sampled_from([0, 0, 1, 1, 2, 3])),
            'run_fails': draw(st.sampled_from([0, 0, 0, 1, 2, 4])),
            'init_fails': draw(st.sampled_from([0, 0, 0, 0, 1, 9])),
            'cleanup': draw(st.sampled_from(['none', 'none', 'log', 'log', 'raise'])),
            'result': draw(st.booleans()),
        })
    needed = {d for job in jobs for d in job['deps']}
    root = jobs[-1]
    root['deps'] += [i for i in range(count - 1) if i not in needed and i not in root['deps']]
    configure = {
        'default_retry_delay': 0,
        'verbose': draw(st.booleans()),
        'debug': draw(st.integers(0, 3)) == 0,
        'no_act': draw(st.integers(0, 3)) == 0,
        'cleanup': draw(st.integers(0, 3)) != 0,
        'default_tries': draw(st.integers(1, 3)),
    }
    case = {'suite': 'random', 'jobs': jobs, 'configure': configure}
    if draw(st.booleans()):
        case['args'] = [1, 'two']
        case['kwargs'] = {'three': 3}
    return case


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(case=random_suites())
def test_random_suites_run_as_under_the_original(original, case):
    same(original, case)


def _one_job(**spec):
    job = {'kind': 'job', 'deps': [], 'check_after': 1}
    job.update(spec)
    return job


@pytest.mark.parametrize('case', [
    # Refused at configure, with the original's error.
    {'suite': 'random', 'jobs': [_one_job(tries=0)], 'configure': QUICK},
    {'suite': 'random', 'jobs': [_one_job()], 'configure': {'default_tries': 0}},
    {'suite': 'random', 'jobs': [_one_job()], 'configure': {'default_retry_delay': -1}},
    # A dep named before its class is met: the original tries to call the string.
    {'suite': 'random',
     'jobs': [_one_job(), _one_job(deps=[0], dep_as_name=[0])],
     'configure': {**QUICK, 'verbose': True}},
    {'suite': 'random',
     'jobs': [_one_job(), _one_job(deps=[0]), _one_job(deps=[0, 1], dep_as_name=[0])],
     'configure': {**QUICK, 'verbose': True}},
    # Fractional tries count down as in the original.
    {'suite': 'random', 'jobs': [_one_job(tries=1.5, check_after=2)],
     'configure': {**QUICK, 'verbose': True}},
    # A cleanup that raises stops the others and leaves checknrun.
    {'suite': 'random',
     'jobs': [_one_job(cleanup='log'), _one_job(deps=[0], cleanup='raise'),
              _one_job(deps=[1], cleanup='log')],
     'configure': {**QUICK, 'debug': True}},
])
def test_edge_cases_as_under_the_original(original, case):
    same(original, case)
