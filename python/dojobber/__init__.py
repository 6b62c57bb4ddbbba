"""DoJobber's API on the dojobber Rust engine.

A drop-in for the ``dojobber`` package (DoJobber 0.6.3) from PyPI: the same
``Job``, ``DummyJob``, ``RunonlyJob`` and ``DoJobber`` classes, with the same
behaviour (statuses, exceptions, results, verbose and debug lines, retries in
rounds, cleanups last-in first-out), scheduled by the Rust engine. Opt-in
extras: ``configure(workers=, deadline=, report_json=, html=, graph=)``,
``TIME_LIMIT`` on a job class, ``DoJobber.report`` (a :class:`Report`), and
:func:`main`, the command line of a Rust dojobber program for a Python root job.
"""

import gc
import logging
import math
import os
import shutil
import subprocess
import sys
import traceback

from ._engine import Report, Suite

__all__ = ['DummyJob', 'DoJobber', 'Job', 'Report', 'RunonlyJob', 'main']

# pylint:disable=invalid-name,too-few-public-methods,protected-access


class Job:  # pylint:disable=too-many-instance-attributes
    """A job: ``Check`` that the world is right, ``Run`` to make it so.

    Class attributes: ``DEPS`` (job classes, or their names as strings),
    ``TRIES``, ``RETRY_DELAY`` (seconds) and, with this package only,
    ``TIME_LIMIT`` (seconds a phase may take before its try fails).
    Each try makes a new instance; ``self.storage`` is the try's own dict,
    ``self.global_storage`` the run's, shared by every job.
    """

    TRIES = None  # Override in your Job if desired
    RETRY_DELAY = None  # Override in your Job if desired
    TIME_LIMIT = None  # Seconds a phase may take (this package only)
    # No Cleanup unless a job defines one (found without an AttributeError,
    # which costs more than a phase's own work on a large suite).
    Cleanup = None

    def __init__(self):
        self.storage = None
        self.global_storage = None
        # As in DoJobber: 'check' or 'recheck', and what each phase gave.
        self._check_phase = None
        self._check_results = None
        self._check_exception = None
        self._run_results = None
        self._run_exception = None
        self._recheck_results = None
        self._recheck_exception = None

    def _set_storage(self, storage, global_storage):
        """Set the try's storage and the run's (done by DoJobber)."""
        self.storage = storage
        self.global_storage = global_storage


class RunonlyJob(Job):
    """A Job that only does the 'run' phase.

    Its first Check fails, so its Run runs once a try; the recheck passes
    with the Run's result or raises the Run's exception. In no-act mode it
    fails, since nothing can tell whether the Run would succeed.
    """

    _run_err = None

    def Check(self, *_, **__):
        """Fail if Run not run, else return Run result."""
        if self._check_phase == 'check':
            raise RuntimeError(
                'Runonly node check intentionally fails first time.'
            )
        if self._run_exception:
            raise self._run_exception  # pylint:disable=raising-bad-type
        return self._run_results


class DummyJob(Job):
    """A Job with no Check nor Run, always succeeds.

    Useful for creating a node that only has dependencies.
    """

    def Check(self, *dummy_args, **dummy_kwargs):
        """Always pass."""

    def Run(self, *dummy_args, **dummy_kwargs):
        """Always pass."""


def _message(err):
    """An exception as one line for the engine's report."""
    text = str(err)
    return f'{type(err).__name__}: {text}' if text else type(err).__name__


def _indented_traceback():
    return traceback.format_exc().strip().replace('\n', '\n  ')


class DoJobber:  # pylint:disable=too-many-instance-attributes
    """Runs a root job and everything it needs: ``configure``, then ``checknrun``."""

    def __init__(self, **kwargs):
        self.nodestatus = {}
        self.nodeexceptions = {}
        self.noderesults = {}
        #: The engine's :class:`Report` of the last ``checknrun``.
        self.report = None
        self._retry = {}
        self._default_tries = None
        self._default_retry_delay = None
        self._args = []
        self._kwargs = {}
        self._root = None
        self._checknrun_cwd = None
        self._checknrun_storage = None
        self._classmap = {}
        self._cleanup = True
        self._verbose = False
        self._debug = False
        self._no_act = False
        self._deps = {}
        self._objsrun = []
        self._suite = None
        self._names = []
        self._index = {}
        self._live = []
        self._extras = {}

        self._log = logging.getLogger('DoJobber')
        logtarget = logging.StreamHandler()
        logtarget.setFormatter(
            logging.Formatter('DoJobber %(levelname)-19s: %(message)s')
        )
        if kwargs.get('dojobber_loglevel'):
            self._log.setLevel(kwargs['dojobber_loglevel'])
        else:
            self._log.setLevel(logging.CRITICAL)
        self._log.addHandler(logtarget)

    def cleanup(self):
        """Run all Cleanup methods for jobs made, last made first.

        A Cleanup that raises stops the others and the exception goes on.
        checknrun calls this at its end unless configured with cleanup=False.
        """
        for obj in reversed(self._objsrun):
            if callable(getattr(obj, 'Cleanup', None)):
                if self._debug:
                    sys.stderr.write(f'{type(obj).__name__}.cleanup running\n')
                try:
                    obj.Cleanup()
                    if self._debug:
                        sys.stderr.write(
                            f'{type(obj).__name__}.cleanup: pass\n'
                        )
                except Exception as err:
                    sys.stderr.write(
                        f'{type(obj).__name__}.cleanup: fail "{err}"\n'
                    )
                    raise

    def partial_success(self):
        """Returns T/F if any checknrun nodes were succesfull."""
        return self.nodestatus and any(self.nodestatus.values())

    def success(self):
        """Returns T/F if the checknrun hit all nodes with 100% success."""
        return self.nodestatus and all(self.nodestatus.values())

    def failure(self):
        """Returns T/F if the checknrun had any failure nodes."""
        return not self.success()

    def configure(  # pylint:disable=too-many-arguments
        self,
        root,
        no_act=False,
        verbose=False,
        debug=False,
        cleanup=True,
        default_tries=3,
        default_retry_delay=1,
        *,
        workers=1,
        deadline=None,
        report_json=None,
        html=None,
        graph=None,
    ):
        """Configure the graph for a specified root Job.

        As DoJobber: no_act (only Checks), verbose (a line per phase),
        debug (tracebacks too), cleanup (Cleanup methods at the end),
        default_tries, default_retry_delay (seconds).

        This package's extras, keyword only: workers (phases at once, each
        on a thread of its own; 1 keeps DoJobber's order), deadline (seconds
        after which no phase starts), report_json, html, graph (files the
        run writes at its end: the JSON report, the HTML page, the picture
        as .png, .svg or .dot).
        """
        if not isinstance(workers, int) or isinstance(workers, bool) or workers < 1:
            raise ValueError(f'workers must be an int >= 1, not {workers!r}')
        if deadline is not None:
            deadline = float(deadline)
            if not math.isfinite(deadline) or deadline < 0:
                raise ValueError(f'deadline must be seconds >= 0, not {deadline!r}')
        self._no_act = no_act
        self._debug = debug
        self._verbose = self._debug or verbose
        self._root = root
        self._default_tries = default_tries
        self._default_retry_delay = default_retry_delay
        self._cleanup = cleanup
        self._extras = {
            'workers': workers,
            'deadline': deadline,
            'report_json': report_json,
            'html': html,
            'graph': graph,
        }
        self._load_class()

    def set_args(self, *args, **kwargs):
        """Set the arguments that will be sent to all Check/Run methods."""
        self._args = args
        self._kwargs = kwargs

    def _class_name(self, theclass):
        """Returns a class from a class or string rep."""
        if isinstance(theclass, str):
            return theclass
        return theclass.__name__

    def _node_failed(self, nodename, err):
        self.nodestatus[nodename] = False
        self.nodeexceptions[nodename] = err

    def _node_succeeded(self, nodename, results):
        self.nodestatus[nodename] = True
        self.noderesults[nodename] = results

    def checknrun(self, node=None):
        """Check and run each job the root (or ``node``) needs.

        Before each Check and Run, and before returning, the working
        directory is set back to the one checknrun was called in.
        A KeyboardInterrupt (or another exception that is not an
        ``Exception``) raised by a job stops the run: phases under way
        finish, cleanups run, nodestatus and the report are kept, and the
        exception is raised again.
        """
        if self._suite is None:
            raise RuntimeError('call configure(root) before checknrun()')
        self._checknrun_cwd = os.path.realpath(os.curdir)
        self._checknrun_storage = {'__global': {}}
        self.nodestatus = {}
        if not node:
            node = self._root
        start = self._index[self._class_name(node)]
        self._live = [None] * len(self._names)
        extras = self._extras
        # What exists before the run (the job classes, the caller's data)
        # stays out of the cyclic collector's passes while the run adds
        # the instances, storages and exceptions DoJobber keeps: on a
        # large suite those passes cost more than the phases themselves.
        # Left alone when the caller froze objects of their own.
        freeze = gc.get_freeze_count() == 0
        if freeze:
            gc.freeze()
        try:
            report, escaped = self._suite.run(
                start,
                (self._check, self._run, self._recheck),
                workers=extras['workers'],
                no_act=self._no_act,
                deadline=extras['deadline'],
            )
        finally:
            if freeze:
                gc.unfreeze()
        self.report = report
        reached = self.nodestatus
        self.nodestatus = {name: reached.get(name) for name in report.names()}
        for name in report.timed_out():
            # A phase past its TIME_LIMIT failed its try, whatever it did
            # when it came back.
            if self.nodestatus[name] is not False:
                self._node_failed(
                    name, TimeoutError(f'{name}: {report.error(name)}')
                )
        os.chdir(self._checknrun_cwd)
        try:
            if extras['report_json'] is not None:
                report.write_json(os.fspath(extras['report_json']))
            if extras['html'] is not None:
                report.write_html(os.fspath(extras['html']))
            if extras['graph'] is not None:
                report.write_graph(os.fspath(extras['graph']))
            if self._cleanup:
                self.cleanup()
        finally:
            if escaped is not None:
                raise escaped

    def _check(self, index):
        nodename = self._names[index]
        try:
            obj = self._classmap[nodename]()
        except Exception as err:  # pylint: disable=broad-except
            self._log.error(
                'Could not create Job "%s" - check its __init__', nodename
            )
            if self._verbose:
                sys.stderr.write(f'{nodename}.check: fail\n')
            if self._debug:
                sys.stderr.write(
                    '  Could not create job, error was {}\n'.format(
                        _indented_traceback()
                    )
                )
            self._node_failed(nodename, err)
            self._live[index] = None
            return _message(err)

        storage = self._checknrun_storage[nodename] = {}
        obj._set_storage(storage, self._checknrun_storage['__global'])
        self._objsrun.append(obj)
        self._live[index] = obj
        try:
            os.chdir(self._checknrun_cwd)
            obj._check_phase = 'check'
            obj._check_results = obj.Check(*self._args, **self._kwargs)
            self._node_succeeded(nodename, obj._check_results)
            if self._verbose:
                sys.stderr.write(f'{nodename}.check: pass\n')
            return None
        except Exception as err:  # pylint:disable=broad-except
            obj._check_exception = err
            if self._verbose:
                sys.stderr.write(f'{nodename}.check: fail\n')
            # In no_act mode, the first check is all there is.
            if self._no_act:
                self._node_failed(nodename, err)
                if self._debug:
                    sys.stderr.write(
                        f'  Error was:\n  {_indented_traceback()}\n'
                    )
            return _message(err)

    def _run(self, index):
        obj = self._live[index]
        if obj is None:
            # Its __init__ failed: DoJobber neither runs nor rechecks it.
            return 'the job could not be created'
        try:
            os.chdir(self._checknrun_cwd)
            obj._run_results = obj.Run(*self._args, **self._kwargs)
            if self._verbose:
                sys.stderr.write(f'{self._names[index]}.run: pass\n')
            return None
        except Exception as err:  # pylint:disable=broad-except
            obj._run_exception = err
            if self._verbose:
                sys.stderr.write(f'{self._names[index]}.run: fail\n')
            if self._debug:
                sys.stderr.write(f'  Error was:\n  {_indented_traceback()}\n')
            return _message(err)

    def _recheck(self, index):
        obj = self._live[index]
        nodename = self._names[index]
        if obj is None:
            return _message(self.nodeexceptions[nodename])
        try:
            os.chdir(self._checknrun_cwd)
            obj._check_phase = 'recheck'
            obj._recheck_results = obj.Check(*self._args, **self._kwargs)
            self._node_succeeded(nodename, obj._recheck_results)
            if self._verbose:
                sys.stderr.write(f'{nodename}.recheck: pass\n')
            return None
        except Exception as err:  # pylint:disable=broad-except
            obj._recheck_exception = err
            if self._verbose:
                sys.stderr.write(f'{nodename}.recheck: fail "{err}"\n')
            if self._debug:
                sys.stderr.write(f'  Error was:\n  {_indented_traceback()}\n')
            self._node_failed(nodename, err)
            return _message(err)

    def _load_class(self, defaults=True):
        """Read the job classes from the root down and hand them to the
        engine; without ``defaults``, jobs that set no TRIES or RETRY_DELAY
        take the engine's (the command line's, for :func:`main`)."""
        self._classmap = {}
        self._deps = {}
        self._retry = {}
        self._init_deps(self._root, defaults)
        self._names = list(self._classmap)
        self._index = {name: i for i, name in enumerate(self._names)}
        deps = []
        for name in self._names:
            mine = []
            for dep in self._deps[name]:
                if self._index[dep] in mine:
                    raise RuntimeError(f'DEPS of {name} names {dep} twice')
                mine.append(self._index[dep])
            deps.append(mine)
        self._suite = Suite(
            self._names,
            deps,
            [self._retry[n]['tries'] for n in self._names],
            [self._retry[n]['retry_delay'] for n in self._names],
            [self._retry[n]['time_limit'] for n in self._names],
        )
        try:
            self._suite.order(self._index[self._class_name(self._root)])
        except ValueError as err:
            raise RuntimeError(
                f'Programmer error: graph contains cycles "{err}"'
            ) from None

    def _init_deps(self, root, defaults):
        """Read each class's DEPS, TRIES and RETRY_DELAY, depth first from
        the root, deps in their order (as DoJobber, without recursion)."""
        stack = [iter((root,))]
        while stack:
            theclass = next(stack[-1], _END)
            if theclass is _END:
                stack.pop()
                continue
            classname = self._class_name(theclass)
            self._log.debug('processing dependencies for %s', classname)
            if classname in self._classmap:
                self._log.debug(' already processed %s', classname)
                continue
            self._classmap[classname] = theclass
            deps = getattr(theclass, 'DEPS', [])
            self._retry[classname] = self._retry_of(theclass, defaults)
            # Check for the common error of DEPS being a single thing.
            try:
                deps = list(deps)
            except TypeError:
                self._log.critical(
                    'DEPS for %s is not iterable; is "%s"', classname, deps
                )
                raise
            self._deps[classname] = [self._class_name(x) for x in deps]
            stack.append(iter(deps))

    def _retry_of(self, theclass, defaults):
        """A class's tries, retry delay and time limit, checked as DoJobber does."""
        tries = getattr(theclass, 'TRIES', None)
        if tries is None and defaults:
            tries = self._default_tries
        delay = getattr(theclass, 'RETRY_DELAY', None)
        if delay is None and defaults:
            delay = self._default_retry_delay
        if delay is not None and delay < 0:
            raise RuntimeError(f'RETRY_DELAY "{delay}" cannot be negative')
        if tries is not None and int(tries) < 1:
            raise RuntimeError(f'TRIES "{tries}" must be >= 1.')
        limit = getattr(theclass, 'TIME_LIMIT', None)
        if limit is not None and not (isinstance(limit, (int, float)) and limit > 0):
            raise RuntimeError(f'TIME_LIMIT "{limit}" must be seconds > 0')
        return {
            # DoJobber counts tries down by one while more than zero are left.
            'tries': None if tries is None else min(math.ceil(tries), 2**32 - 1),
            'retry_delay': None if delay is None else float(delay),
            'time_limit': None if limit is None else float(limit),
        }

    def write_graph(self, filed, fmt='png'):
        """Write the graph (after checknrun, coloured by outcome) to the file
        object ``filed`` as ``fmt``: 'png', 'svg' or 'dot'. No Graphviz needed."""
        if self._suite is None:
            raise RuntimeError('call configure(root) before write_graph()')
        root = self._index[self._class_name(self._root)]
        filed.write(self._suite.draw(root, fmt, self.report))

    def display_graph(self):
        """Show the graph with ImageMagick's ``display``, as DoJobber does
        (nothing happens when it is not installed)."""
        if self._suite is None or shutil.which('display') is None:
            return
        root = self._index[self._class_name(self._root)]
        image = self._suite.draw(root, 'png', self.report)
        with subprocess.Popen(['display'], stdin=subprocess.PIPE) as proc:
            proc.communicate(image)
            if proc.returncode != 0:
                raise RuntimeError('Cannot show graph using "display"')


_END = object()


class _Main:
    """The phases for :func:`main`: the command line prints and reports."""

    def __init__(self, classes, names):
        self._classes = classes
        self._names = names
        self._live = [None] * len(names)
        self._global = {}
        self._args = ()

    def phases(self):
        return tuple(
            lambda index, which=which: self.phase(index, which) for which in range(4)
        )

    def phase(self, index, which):
        try:
            if which == 0:
                obj = self._live[index] = self._classes[self._names[index]]()
                obj._set_storage({}, self._global)
                obj._check_phase = 'check'
                obj._check_results = obj.Check()
                return None
            obj = self._live[index]
            if obj is None:
                return 'the job could not be created'
            if which == 1:
                try:
                    obj._run_results = obj.Run()
                except Exception as err:
                    obj._run_exception = err
                    raise
                return None
            if which == 2:
                obj._check_phase = 'recheck'
                obj._recheck_results = obj.Check()
                return None
            if callable(getattr(obj, 'Cleanup', None)):
                obj.Cleanup()
            return None
        except Exception as err:  # pylint:disable=broad-except
            return _message(err)


def main(root, argv=None):
    """Run ``root`` and what it needs with the command line of a Rust
    dojobber program, then exit with its code (0 all passed, 1 some job
    failed or is blocked, 2 the suite could not start).

    Flags: -n, -v, -d, -q, -j N, --deadline, --tries, --retry-delay,
    --only JOB, --list, --report-json, --events-json, --graph, --html, ...
    (``--help`` lists them). Ctrl-C and SIGTERM stop the run, keep the
    report and run the cleanups. Jobs without TRIES or RETRY_DELAY take
    the command line's. Check and Run get no arguments.
    """
    if argv is None:
        argv = sys.argv[1:]
    dojob = DoJobber()
    dojob._root = root
    try:
        dojob._load_class(defaults=False)
    except (RuntimeError, TypeError, AttributeError) as err:
        sys.stderr.write(f'error: {err}\n')
        sys.exit(2)
    runner = _Main(dojob._classmap, dojob._names)
    prog = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else 'dojobber'
    code = dojob._suite.main(
        dojob._index[dojob._class_name(root)], [prog, *argv], runner.phases()
    )
    sys.stdout.flush()
    sys.exit(code)
