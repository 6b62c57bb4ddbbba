"""What this package adds to DoJobber's API: workers, deadline, TIME_LIMIT,
report files, the Report view, main(), interrupts, and what the GIL allows."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest

import dojobber


def sleepers(count, seconds):
    """`count` jobs whose Check sleeps `seconds` (releasing the GIL), under
    a dummy root."""
    jobs = [
        type(f'Sleep{i}', (dojobber.Job,), {
            'Check': lambda self, *a, **k: time.sleep(seconds),
        })
        for i in range(count)
    ]
    return type('Sleepers', (dojobber.DummyJob,), {'DEPS': jobs})


def test_eight_sleeping_jobs_overlap_with_eight_workers():
    # Serially they take 800 ms; with 8 workers, the 100 ms sleeps overlap.
    # The limit leaves 150 ms for the engine, 9 GIL hand-overs and the
    # machine's load; the serial time is more than three times it.
    dojob = dojobber.DoJobber()
    dojob.configure(sleepers(8, 0.1), workers=8)
    start = time.perf_counter()
    dojob.checknrun()
    elapsed = time.perf_counter() - start
    assert dojob.success()
    assert elapsed < 0.25, f'8 x 100 ms with workers=8 took {elapsed:.3f} s'


def test_one_worker_keeps_the_original_order():
    order = []
    jobs = [
        type(f'J{i}', (dojobber.Job,), {
            'Check': lambda self, *a, i=i, **k: order.append(i),
        })
        for i in range(5)
    ]
    root = type('Root', (dojobber.DummyJob,), {'DEPS': jobs})
    dojob = dojobber.DoJobber()
    dojob.configure(root)
    dojob.checknrun()
    assert order == [0, 1, 2, 3, 4]


def chain(count, check=None):
    """A chain of `count` jobs, each needing the one before."""
    jobs = []
    for i in range(count):
        body = {'DEPS': jobs[-1:], 'Check': check or (lambda self, *a, **k: None)}
        jobs.append(type(f'Link{i}', (dojobber.Job,), body))
    return jobs


def test_a_chain_deeper_than_the_recursion_limit_runs():
    jobs = chain(3 * sys.getrecursionlimit())
    dojob = dojobber.DoJobber()
    dojob.configure(jobs[-1])
    dojob.checknrun()
    assert dojob.success() and len(dojob.nodestatus) == len(jobs)


def test_deadline_blocks_what_it_did_not_reach():
    jobs = chain(3, check=lambda self, *a, **k: time.sleep(0.05))
    dojob = dojobber.DoJobber()
    dojob.configure(jobs[-1], deadline=0.01)
    dojob.checknrun()
    assert dojob.nodestatus == {'Link0': True, 'Link1': None, 'Link2': None}
    assert dojob.report.stopped == 'run deadline passed'
    assert dojob.report.status('Link2') == 'blocked'
    assert dojob.partial_success() and not dojob.success()


def test_time_limit_fails_a_phase_that_takes_too_long():
    class Slow(dojobber.Job):
        TIME_LIMIT = 0.05
        TRIES = 1

        def Check(self, *args, **kwargs):
            time.sleep(0.3)

    class Top(dojobber.DummyJob):
        DEPS = [Slow]

    dojob = dojobber.DoJobber()
    dojob.configure(Top)
    dojob.checknrun()
    assert dojob.nodestatus == {'Slow': False, 'Top': None}
    assert isinstance(dojob.nodeexceptions['Slow'], TimeoutError)
    assert 'timed out after 50ms' in str(dojob.nodeexceptions['Slow'])
    assert dojob.report.status('Slow') == 'failed'


@pytest.mark.parametrize('value', [0, -1, 'soon'])
def test_a_bad_time_limit_is_refused(value):
    class Odd(dojobber.Job):
        TIME_LIMIT = value

    with pytest.raises(RuntimeError, match='TIME_LIMIT'):
        dojobber.DoJobber().configure(Odd)


@pytest.mark.parametrize('workers', [0, -2, 1.5, True, '4'])
def test_bad_workers_are_refused(workers):
    with pytest.raises(ValueError, match='workers'):
        dojobber.DoJobber().configure(sleepers(1, 0), workers=workers)


def movieish():
    class Ok(dojobber.Job):
        def Check(self, *args, **kwargs):
            return 'fine'

    class Broken(dojobber.Job):
        TRIES = 2

        def Check(self, *args, **kwargs):
            raise RuntimeError('no luck')

    class Top(dojobber.Job):
        DEPS = (Ok, Broken)

        def Check(self, *args, **kwargs):
            pass

    return Top


def test_report_files_and_the_report_view(tmp_path):
    paths = {name: tmp_path / name for name in ('run.json', 'run.html', 'run.png')}
    dojob = dojobber.DoJobber()
    dojob.configure(movieish(), default_retry_delay=0, report_json=paths['run.json'],
                    html=str(paths['run.html']), graph=paths['run.png'])
    dojob.checknrun()
    report = dojob.report
    assert isinstance(report, dojobber.Report)
    assert report.names() == ['Ok', 'Broken', 'Top']
    assert [report.status(n) for n in report.names()] == ['passed', 'failed', 'blocked']
    assert report.tries('Broken') == 2
    assert report.error('Broken') == 'RuntimeError: no luck'
    assert report.blocked_by('Top') == 'Broken'
    assert report.by_status()['failed'] == ['Broken']
    assert not report.success() and report.partial_success()
    assert report.rounds == 2 and report.elapsed >= 0 and report.stopped is None
    assert 'failed' in repr(report)
    with pytest.raises(KeyError):
        report.status('Nobody')
    written = json.loads(paths['run.json'].read_text())
    assert json.loads(report.to_json()) == written
    assert [job['name'] for job in written['jobs']] == ['Ok', 'Broken', 'Top']
    assert paths['run.html'].read_text().lstrip().lower().startswith('<!doctype html')
    assert paths['run.png'].read_bytes().startswith(b'\x89PNG')


def test_report_files_follow_no_link_a_neighbour_planted(tmp_path):
    # Each output is a hard link of the victim, and links to it wait at
    # the names a predictable temporary would have had: the outputs are
    # replaced whole through temporaries of their own, the victim is not
    # touched and the links stay as they were.
    victim = tmp_path / 'victim'
    victim.write_text('mine')
    names = ('run.json', 'run.html', 'run.dot')
    planted = []
    for name in names:
        os.link(victim, tmp_path / name)
        for pid in range(os.getpid(), os.getpid() + 16):
            for counter in range(4):
                link = tmp_path / f'.{name}.{pid}.{counter}.dojobber-tmp'
                link.symlink_to(victim)
                planted.append(link)
    dojob = dojobber.DoJobber()
    dojob.configure(movieish(), default_retry_delay=0, report_json=tmp_path / 'run.json',
                    html=tmp_path / 'run.html', graph=tmp_path / 'run.dot')
    dojob.checknrun()
    assert victim.read_text() == 'mine'
    assert os.stat(victim).st_nlink == 1
    assert json.loads((tmp_path / 'run.json').read_text())['jobs']
    assert (tmp_path / 'run.dot').read_text().startswith('digraph')
    assert all(link.is_symlink() for link in planted)
    left = sorted(p.name for p in tmp_path.iterdir() if not p.is_symlink())
    assert left == ['run.dot', 'run.html', 'run.json', 'victim']


def test_a_report_file_that_cannot_be_written_says_so(tmp_path):
    dojob = dojobber.DoJobber()
    dojob.configure(movieish(), default_retry_delay=0,
                    report_json=tmp_path / 'no' / 'such' / 'dir.json')
    with pytest.raises(RuntimeError, match='dir.json'):
        dojob.checknrun()
    assert dojob.nodestatus['Ok'] is True


@pytest.mark.parametrize('fmt,magic', [('png', b'\x89PNG'), ('svg', b'<svg'), ('dot', b'digraph')])
def test_write_graph_before_and_after_a_run(tmp_path, fmt, magic):
    dojob = dojobber.DoJobber()
    dojob.configure(movieish(), default_retry_delay=0)
    for when in ('before', 'after'):
        path = tmp_path / f'{when}.{fmt}'
        with open(path, 'wb') as filed:
            dojob.write_graph(filed, fmt=fmt)
        assert magic in path.read_bytes()[:400]
        dojob.checknrun()


def test_write_graph_refuses_an_unknown_format():
    dojob = dojobber.DoJobber()
    dojob.configure(movieish())
    with pytest.raises(ValueError, match='jpeg'):
        dojob.write_graph(open(os.devnull, 'wb'), fmt='jpeg')


def test_a_cycle_is_refused_naming_its_jobs():
    class A(dojobber.Job):
        DEPS = ['B']

    class B(dojobber.Job):
        DEPS = [A]

    with pytest.raises(RuntimeError, match='Programmer error: graph contains cycles.*A'):
        dojobber.DoJobber().configure(B)


def interrupted_suite(raiser):
    """First a job with a cleanup, then one that raises `raiser`, then one
    that must not run."""
    done = []

    class Tidy(dojobber.Job):
        def Check(self, *args, **kwargs):
            done.append('Tidy.Check')

        def Cleanup(self):
            done.append('Tidy.Cleanup')

    class Interrupt(dojobber.Job):
        DEPS = [Tidy]

        def Check(self, *args, **kwargs):
            raise raiser()

    class Never(dojobber.Job):
        DEPS = [Tidy]

        def Check(self, *args, **kwargs):
            done.append('Never.Check')

    class Top(dojobber.DummyJob):
        DEPS = [Interrupt, Never]

    return Top, done


@pytest.mark.parametrize('raiser', [KeyboardInterrupt, SystemExit])
def test_an_interrupt_in_a_job_cancels_the_run_cleans_up_and_keeps_the_report(raiser):
    root, done = interrupted_suite(raiser)
    dojob = dojobber.DoJobber()
    dojob.configure(root)
    with pytest.raises(raiser):
        dojob.checknrun()
    assert done == ['Tidy.Check', 'Tidy.Cleanup']
    assert dojob.nodestatus == {'Tidy': True, 'Interrupt': None, 'Never': None, 'Top': None}
    assert dojob.report.stopped == 'cancelled'


def test_ctrl_c_with_workers_cancels_the_run():
    started = threading.Event()
    done = []

    class Long(dojobber.Job):
        def Check(self, *args, **kwargs):
            started.set()
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.2)
            done.append('Long')

        def Cleanup(self):
            done.append('Long.Cleanup')

    class After(dojobber.Job):
        DEPS = [Long]

        def Check(self, *args, **kwargs):
            done.append('After')

    dojob = dojobber.DoJobber()
    dojob.configure(After, workers=4)
    with pytest.raises(KeyboardInterrupt):
        dojob.checknrun()
    assert started.is_set()
    # The phase under way finished; nothing new started; cleanups ran.
    assert done == ['Long', 'Long.Cleanup']
    assert dojob.nodestatus['After'] is None
    assert dojob.report.stopped == 'cancelled'


def test_exceptions_in_jobs_never_leave_checknrun():
    class Boom(dojobber.Job):
        TRIES = 1

        def __init__(self):
            super().__init__()
            raise MemoryError('pretend')

    class Top(dojobber.DummyJob):
        DEPS = [Boom]

    dojob = dojobber.DoJobber()
    dojob.configure(Top)
    dojob.checknrun()
    assert dojob.nodestatus == {'Boom': False, 'Top': None}
    assert isinstance(dojob.nodeexceptions['Boom'], MemoryError)


SCRIPT = textwrap.dedent('''
    import sys
    import dojobber

    class Kettle(dojobber.Job):
        def Check(self):
            if not self.global_storage.get('hot'):
                raise RuntimeError('the water is cold')
        def Run(self):
            self.global_storage['hot'] = True

    class Tea(dojobber.Job):
        DEPS = [Kettle]
        def Check(self):
            if 'fail' in sys.argv[0]:
                raise RuntimeError('no tea')

    dojobber.main(Tea)
''')


def run_main(tmp_path, *flags, name='tea.py'):
    script = tmp_path / name
    script.write_text(SCRIPT)
    return subprocess.run([sys.executable, str(script), *flags],
                          capture_output=True, text=True, timeout=60)


def test_main_runs_with_the_command_lines_flags(tmp_path):
    report = tmp_path / 'report.json'
    done = run_main(tmp_path, '-v', '-j', '2', '--report-json', str(report))
    assert done.returncode == 0, done.stderr
    assert 'Kettle' in done.stderr and 'Tea' in done.stderr
    statuses = {job['name']: job['status'] for job in json.loads(report.read_text())['jobs']}
    assert statuses == {'Kettle': 'fixed', 'Tea': 'passed'}


def test_main_exit_codes(tmp_path):
    assert run_main(tmp_path, '-q', name='fail.py').returncode == 1
    refused = run_main(tmp_path, '--no-such-flag')
    assert refused.returncode == 2 and '--no-such-flag' in refused.stderr
    assert run_main(tmp_path, '--only', 'Nobody').returncode == 2
    listed = run_main(tmp_path, '--help')
    assert listed.returncode == 0 and '--workers' in listed.stdout


SIGTERM_SCRIPT = textwrap.dedent('''
    import os
    import signal
    import time
    import dojobber

    class First(dojobber.Job):
        def Check(self):
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.2)

    class Second(dojobber.Job):
        DEPS = [First]
        def Check(self):
            print('Second ran')

    dojobber.main(Second)
''')


def test_main_keeps_the_report_on_sigterm(tmp_path):
    script = tmp_path / 'term.py'
    script.write_text(SIGTERM_SCRIPT)
    report = tmp_path / 'report.json'
    done = subprocess.run([sys.executable, str(script), '-q', '--report-json', str(report)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1, done.stderr
    assert 'Second ran' not in done.stdout
    written = json.loads(report.read_text())
    assert written['stopped'] == 'cancelled'
    assert {job['name']: job['status'] for job in written['jobs']} == {
        'First': 'passed', 'Second': 'blocked'}
