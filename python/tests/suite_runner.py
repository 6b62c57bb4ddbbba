"""Suites run the same way under any `dojobber`: the original DoJobber 0.6.3
or this package. A case is plain JSON; its result is plain JSON (statuses,
exceptions as type and message, results, what success() and
partial_success() say, the stderr lines, the jobs' own log), so the two can
be compared.

    python suite_runner.py --serve    # one JSON case a line in, one result a line out

The differential tests run the original in its own virtualenv with
`--serve` and this package in-process, and compare the results.
"""

import contextlib
import io
import json
import logging
import sys

import dojobber


class _State:
    """What one case's jobs share: counters, and a log of what they did."""

    def __init__(self):
        self.counts = {}
        self.log = []

    def bump(self, key):
        self.counts[key] = self.counts.get(key, 0) + 1
        return self.counts[key]

    def count(self, key):
        return self.counts.get(key, 0)


# --- random suites -----------------------------------------------------------

def _random_classes(case, state):
    """Job classes from a case's job list. Each job is a dict:
    kind ('job', 'runonly', 'dummy'), deps (earlier indexes), dep_as_name
    (indexes named as strings), tries (None or int), check_after (Check
    passes once Run ran this many times), run_fails (the first this many
    Runs raise), init_fails (the first this many __init__ calls raise),
    cleanup ('none', 'log', 'raise'), result (Check returns a value)."""
    classes = []
    for i, spec in enumerate(case['jobs']):
        name = f'J{i}'
        base = {
            'job': dojobber.Job,
            'runonly': dojobber.RunonlyJob,
            'dummy': dojobber.DummyJob,
        }[spec['kind']]
        body = {}
        body['DEPS'] = [
            f'J{d}' if d in spec.get('dep_as_name', []) else classes[d]
            for d in spec['deps']
        ]
        if spec.get('tries') is not None:
            body['TRIES'] = spec['tries']
        body['RETRY_DELAY'] = 0

        def make(name=name, spec=spec):
            def __init__(self):
                base.__init__(self)
                if state.bump(f'{name}.init') <= spec.get('init_fails', 0):
                    raise ValueError(f'{name} cannot start')

            def check(self, *args, **kwargs):
                state.log.append(f'{name}.Check{args}{sorted(kwargs.items())}')
                if state.count(f'{name}.run') < spec.get('check_after', 0):
                    raise RuntimeError(f'{name} is not there yet')
                self.global_storage.setdefault('checked', []).append(name)
                if spec.get('result'):
                    return f'{name} ok after {state.count(name + ".run")}'
                return None

            def run(self, *args, **kwargs):
                n = state.bump(f'{name}.run')
                self.storage['ran'] = n
                if n <= spec.get('run_fails', 0):
                    raise KeyError(f'{name} run {n}')
                return f'{name} ran {n}'

            def cleanup(self):
                state.log.append(f'{name}.Cleanup')
                if spec.get('cleanup') == 'raise':
                    raise OSError(f'{name} cleanup broke')

            members = {'__init__': __init__}
            if spec['kind'] == 'job':
                members['Check'] = check
                members['Run'] = run
            elif spec['kind'] == 'runonly':
                members['Run'] = run
            if spec.get('cleanup', 'none') != 'none':
                members['Cleanup'] = cleanup
            return members

        body.update(make())
        classes.append(type(name, (base,), body))
    return classes


# --- the movie example -------------------------------------------------------

def _movie_classes(case, state):
    """The "watch a movie" example (shared/reference/watch_movie.md),
    written for these tests; `case` holds its flags."""
    movie = case.get('movie', 'Noises Off')
    battery = case.get('battery_state', 'dead')
    couch_space = case.get('couch_space', False)
    bowl_success = case.get('bowl_success_try', 8)
    pop_success = case.get('pop_success_try', 5)
    pizza_success = case.get('pizza_success_try', 3)

    class CleanCouch(dojobber.Job):
        def Check(self, *args, **kwargs):
            if not self.storage.get('runran'):
                raise RuntimeError('Couch is dirty.')

        def Run(self, *args, **kwargs):
            self.storage['runran'] = True

        def Cleanup(self):
            state.log.append('putting away the feather duster')

    class FindTVRemote(dojobber.Job):
        def Check(self, *args, **kwargs):
            pass

    class FluffPillows(dojobber.RunonlyJob):
        def Run(self, *args, **kwargs):
            state.log.append('fluffing the pillows')

    class PickTimeAndDate(dojobber.Job):
        def Check(self, *args, **kwargs):
            if 'Start-DateTime' not in self.global_storage:
                raise RuntimeError('No date picked.')
            return self.global_storage['Start-DateTime']

        def Run(self, *args, **kwargs):
            self.global_storage['Start-DateTime'] = 'Friday 20:00'

    class ValidateMovie(dojobber.Job):
        def Check(self, *args, **kwargs):
            if movie not in ('Noises Off', 'MST3K', 'Babylon 5'):
                raise ValueError(f'{movie} not one of the available movies.')

    class InsertDVD(dojobber.Job):
        DEPS = (ValidateMovie,)

        def Check(self, *args, **kwargs):
            pass

    class PrepareRoom(dojobber.DummyJob):
        DEPS = (CleanCouch, FluffPillows)

    class PopcornBowl(dojobber.DummyJob):
        TRIES = 8
        RETRY_DELAY = 0.001

        def Check(self, *args, **kwargs):
            if self.global_storage.get('bowl_failcount', 0) < bowl_success:
                raise RuntimeError('Dishwasher cycle not done yet.')

        def Run(self, *args, **kwargs):
            count = self.global_storage.get('bowl_failcount', 0)
            self.global_storage['bowl_failcount'] = count + 1

    class Pizza(dojobber.RunonlyJob):
        TRIES = 3

        def Run(self, *args, **kwargs):
            count = self.global_storage.get('pizza_failcount', 0) + 1
            self.global_storage['pizza_failcount'] = count
            if count < pizza_success:
                raise RuntimeError("Giordano's did not arrive yet.")
            return 'pepperoni'

    class Popcorn(dojobber.Job):
        DEPS = (PopcornBowl,)
        TRIES = PopcornBowl.TRIES - 3

        def Check(self, *args, **kwargs):
            if self.global_storage.get('pop_failcount', 0) < pop_success:
                raise RuntimeError('Still popping...')

        def Run(self, *args, **kwargs):
            count = self.global_storage.get('pop_failcount', 0)
            self.global_storage['pop_failcount'] = count + 1

    class Food(dojobber.DummyJob):
        DEPS = (Popcorn, Pizza)

    class SitOnCouch(dojobber.Job):
        DEPS = (PrepareRoom,)

        def Check(self, *args, **kwargs):
            if not couch_space:
                raise RuntimeError('No space on couch.')

    class DetermineDetails(dojobber.DummyJob):
        DEPS = (ValidateMovie, PickTimeAndDate)

    class InviteFriends(dojobber.DummyJob):
        DEPS = [DetermineDetails]

    class SendInvite(dojobber.Job):
        DEPS = (DetermineDetails,)
        FRIEND = None
        EMAIL = None

        def Check(self, *args, **kwargs):
            if not self.global_storage.get(f'sent {self.FRIEND}'):
                raise RuntimeError(f'{self.FRIEND} not invited yet.')

        def Run(self, *args, **kwargs):
            when = self.global_storage['Start-DateTime']
            state.log.append(
                f'Come and watch {movie} at {when} with me! '
                f'to {self.FRIEND} {self.EMAIL}'
            )
            self.global_storage[f'sent {self.FRIEND}'] = True

    for friend, email in (('Wendell Bagg', 'bagg@example.com'),
                          ('Lawyer Cat', 'lawyercat@example.com')):
        InviteFriends.DEPS.append(
            type(f'Invite {friend}', (SendInvite,),
                 {'FRIEND': friend, 'EMAIL': email})
        )

    class FriendsArrive(dojobber.Job):
        DEPS = (InviteFriends,)

        def Check(self, *args, **kwargs):
            pass

    class TurnOnTV(dojobber.Job):
        DEPS = (FindTVRemote,)

        def Check(self, *args, **kwargs):
            if battery != 'charged':
                raise RuntimeError('Remote batteries are dead.')

    class StartMovie(dojobber.Job):
        DEPS = (FriendsArrive, PrepareRoom, TurnOnTV, InsertDVD, SitOnCouch,
                Food)

        def Check(self, *args, **kwargs):
            pass

    class WatchMovie(dojobber.Job):
        DEPS = (StartMovie,)

        def Check(self, *args, **kwargs):
            return f'watching {movie}'

    return [WatchMovie]


# --- running a case ----------------------------------------------------------

def _exception(err):
    return [type(err).__name__, str(err)]


def run_case(case):
    """Runs one case; returns what both implementations must agree on."""
    if case['suite'] == 'whoami':
        return {'file': dojobber.__file__, 'has_report': hasattr(dojobber, 'Report')}
    state = _State()
    if case['suite'] == 'movie':
        classes = _movie_classes(case, state)
    else:
        classes = _random_classes(case, state)
    root = classes[-1]
    options = case.get('configure', {})
    out = {}
    captured = io.StringIO()
    # Each DoJobber adds a handler to the 'DoJobber' logger: start from none.
    logging.getLogger('DoJobber').handlers.clear()
    with contextlib.redirect_stderr(captured):
        dojob = dojobber.DoJobber()
        try:
            dojob.configure(root, **options)
            dojob.set_args(*case.get('args', []), **case.get('kwargs', {}))
            dojob.checknrun()
        except Exception as err:  # pylint:disable=broad-except
            out['raised'] = _exception(err)
    lines = captured.getvalue().splitlines()
    out.update({
        'nodestatus': dojob.nodestatus,
        'nodestatus_order': list(dojob.nodestatus),
        'nodeexceptions': {k: _exception(v) for k, v in dojob.nodeexceptions.items()},
        'noderesults': {k: repr(v) for k, v in dojob.noderesults.items()},
        'success': bool(dojob.success()),
        'partial_success': bool(dojob.partial_success()),
        'failure': bool(dojob.failure()),
        # Traceback lines (debug) are indented: they name each package's
        # own files, so only the lines DoJobber writes itself are compared.
        'stderr': [line for line in lines if not line.startswith('  ')],
        'tracebacks': sum(1 for line in lines if line.startswith('  Error was')
                          or line.startswith('  Could not create job')),
        'log': state.log,
    })
    return out


def serve():
    for line in sys.stdin:
        result = run_case(json.loads(line))
        sys.stdout.write(json.dumps(result) + '\n')
        sys.stdout.flush()


if __name__ == '__main__':
    if sys.argv[1:] == ['--serve']:
        serve()
    else:
        sys.exit('usage: suite_runner.py --serve')
