"""Optuna searches (`-m hparams_search=...`), on Optuna's ask/tell API and Hydra's launchers.

One study, in one storage, shared by every worker that runs the same command against it: SQLite on one
machine, a journal file on a shared filesystem (`journal:PATH`), or PostgreSQL. The trial budget
`n_trials` is the study's, not a worker's: a worker claims a trial, and gives it back (marked
`over_budget`) when others have taken the last slots. Re-running a command resumes the study. Failed
trials are recorded (FAIL, with the error); interrupted ones too, and they do not use up the budget.
Why not hydra-optuna-sweeper: its 1.4 line, the one on a current Optuna, needs release candidates of
hydra-core and omegaconf; and a shared budget and interrupted trials would need its sweep loop replaced.
"""

from __future__ import annotations

import logging
import re
import threading
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import optuna
import sqlalchemy
from hydra.core.plugins import Plugins
from hydra.core.utils import JobReturn, JobStatus
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf
from optuna.storages.journal import JournalFileBackend
from optuna.study import StudyDirection
from optuna.trial import TrialState

from mnist_classifier.errors import ConfigValueError
from mnist_classifier.runtime.metrics_file import read_metrics
from mnist_classifier.runtime.run_checks import check_integer
from mnist_classifier.sweeps.search_space import search_space, trial_overrides
from mnist_classifier.sweeps.study_report import write_study_report
from mnist_classifier.utils.atomic import write_text
from mnist_classifier.utils.numbers import is_number

log = logging.getLogger(__name__)
STATUS = "status"  # the user attribute each finished trial carries
OPTIMIZED_METRIC = "optimized_metric"  # the study's user attribute: the metric its trials' values are
NOT_COUNTED = ("interrupted", "over_budget")


def open_storage(url: str, heartbeat_interval: int | None) -> optuna.storages.BaseStorage:
    """`journal:PATH` (a file on a shared filesystem, no server), or a database URL (sqlite:///PATH,
    postgresql+psycopg://user@host/db); databases also get heartbeats, so a trial whose worker was killed
    without warning is marked failed after a while instead of holding a slot forever."""
    if url.startswith("journal:"):
        path = Path(url.removeprefix("journal:").removeprefix("//"))
        path.parent.mkdir(parents=True, exist_ok=True)
        return optuna.storages.JournalStorage(JournalFileBackend(str(path)))
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    engine = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else None
    try:
        with heartbeats_without_warnings():
            return optuna.storages.RDBStorage(url, engine_kwargs=engine, heartbeat_interval=heartbeat_interval)
    except (sqlalchemy.exc.ArgumentError, sqlalchemy.exc.NoSuchModuleError, ImportError) as err:  # no such driver
        raise ConfigValueError(
            f"hydra.sweeper.storage={url} is not a database SQLAlchemy can open here ({err}). Use sqlite:///PATH, "
            f"postgresql+psycopg://user@host/db, or journal:PATH."
        ) from err


@contextmanager
def heartbeats_without_warnings() -> Iterator[None]:
    """Optuna marks heartbeats experimental (they are what failure detection needs) and expects them only
    inside Study.optimize, where it beats itself; this sweeper asks and tells (a trial is a Hydra job) and
    beats for its trials in `_heartbeats`. Neither warning is for a user of the sweeper."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
        warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used with Study.optimize")
        yield


def counts_toward_budget(trial: optuna.trial.FrozenTrial) -> bool:
    """Finished, failed and running trials use the budget; interrupted, given back and stale ones do not
    (a stale trial is one Optuna failed for a silent worker: it has no status of ours)."""
    status = trial.user_attrs.get(STATUS)
    if status in NOT_COUNTED:
        return False
    return not (trial.state == TrialState.FAIL and status is None)


def suggest(trial: optuna.Trial, distributions: dict[str, optuna.distributions.BaseDistribution]) -> dict[str, Any]:
    """The trial's value for each swept parameter, through Optuna's public suggest API."""
    values: dict[str, Any] = {}
    for name, dist in distributions.items():
        if isinstance(dist, optuna.distributions.CategoricalDistribution):
            values[name] = trial.suggest_categorical(name, dist.choices)
        elif isinstance(dist, optuna.distributions.IntDistribution):
            values[name] = trial.suggest_int(name, dist.low, dist.high, step=dist.step, log=dist.log)
        else:
            assert isinstance(dist, optuna.distributions.FloatDistribution)
            values[name] = trial.suggest_float(name, dist.low, dist.high, step=dist.step, log=dist.log)
    return values


class OptunaSearch:
    """The search behind hydra_plugins/mnist_classifier_sweeper (Hydra's plugin, which imports this only
    when a sweep runs: Optuna stays out of every run's start-up)."""

    def __init__(
        self,
        study_name: str,
        storage: str,
        direction: str = "maximize",
        n_trials: int = 20,
        n_jobs: int = 1,
        max_failure_rate: float = 1.0,
        sampler: Any = None,
        params: DictConfig | None = None,
        heartbeat_interval: int | None = 60,
        study_summary: bool = False,
    ) -> None:
        self.study_name, self.storage_url, self.direction = study_name, storage, direction
        self.n_trials, self.n_jobs, self.max_failure_rate = n_trials, n_jobs, max_failure_rate
        self.sampler, self.params = sampler, params
        self.heartbeat_interval, self.study_summary = heartbeat_interval, study_summary
        self.job_idx = 0
        self._check_settings()

    def _check_settings(self) -> None:
        """hydra.sweeper.* values: a bad one was a traceback from Optuna or SQLAlchemy, or a search that ran
        no trial and said so with exit 0."""
        for key, value in (("n_trials", self.n_trials), ("n_jobs", self.n_jobs)):
            check_integer(value, f"hydra.sweeper.{key}", 1)
        if str(self.direction).lower() not in ("maximize", "minimize"):
            raise ConfigValueError(f"hydra.sweeper.direction must be maximize or minimize; got {self.direction!r}.")
        rate = self.max_failure_rate
        if not is_number(rate) or not 0 <= rate <= 1:
            raise ConfigValueError(f"hydra.sweeper.max_failure_rate must be a number from 0 to 1; got {rate!r}.")
        beat = self.heartbeat_interval
        if beat is not None and (isinstance(beat, bool) or not isinstance(beat, int) or beat < 1):
            raise ConfigValueError(
                f"hydra.sweeper.heartbeat_interval must be a whole number of seconds >= 1, or null for none; got "
                f"{beat!r}."
            )
        url = self.storage_url
        if not isinstance(url, str) or not (url.startswith("journal:") or re.match(r"[\w+]+://", url)):
            raise ConfigValueError(
                f"hydra.sweeper.storage must be journal:PATH or a database URL (sqlite:///PATH, "
                f"postgresql+psycopg://user@host/db); got {self.storage_url!r}."
            )

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.config: DictConfig | None = config
        self.launcher: Launcher = Plugins.instance().instantiate_launcher(
            config=config, hydra_context=hydra_context, task_function=task_function
        )

    # --- the study ------------------------------------------------------------------------------
    def _open_study(self) -> optuna.Study:
        self.storage = storage = open_storage(self.storage_url, self.heartbeat_interval)
        sampler = self.sampler  # built by Hydra with the sweeper, from `sampler: {_target_: ...}`
        direction = StudyDirection[self.direction.upper()]
        study = optuna.create_study(
            study_name=self.study_name, storage=storage, sampler=sampler, direction=direction, load_if_exists=True
        )
        self._check_same_goal(study, direction)
        if study.get_trials(deepcopy=False) and hasattr(study.sampler, "reseed_rng"):
            study.sampler.reseed_rng()  # resumed, or another worker is at it: do not repeat its suggestions
        return study

    def _check_same_goal(self, study: optuna.Study, direction: StudyDirection) -> None:
        """A study is resumed for the metric and direction it was started with: trials of val/acc_best and of
        val/loss in one study made a loss of 2.06 its best trial. Optuna keeps the direction it was created
        with and ignores another; the metric is recorded here."""
        assert self.config is not None
        metric = str(self.config.get("optimized_metric"))
        started = study.user_attrs.get(OPTIMIZED_METRIC)
        if started is None:  # a new study (or one started before this check): it is this metric's from now on
            if study.get_trials(deepcopy=False):
                log.warning(
                    "Study %r has trials from before it recorded its metric; it is taken to be %s. If they were "
                    "of another metric, start a new study (hydra.sweeper.study_name).",
                    self.study_name,
                    metric,
                )
            study.set_user_attr(OPTIMIZED_METRIC, metric)
            started = metric
        wanted = f"{direction.name.lower()} {metric}"
        recorded = f"{study.direction.name.lower()} {started}"
        if wanted != recorded:
            raise ConfigValueError(
                f"The Optuna study {self.study_name!r} in {self.storage_url} was started to {recorded}; this "
                f"search asks to {wanted}, and one study cannot rank trials by both. Choose another "
                f"hydra.sweeper.study_name for the new goal, or resume with optimized_metric={started} and "
                f"hydra.sweeper.direction={study.direction.name.lower()}."
            )

    def _slots_left(self, study: optuna.Study) -> int:
        if isinstance(self.storage, optuna.storages.RDBStorage) and self.heartbeat_interval:
            with heartbeats_without_warnings():
                optuna.storages.fail_stale_trials(study)
        return self.n_trials - sum(counts_toward_budget(t) for t in study.get_trials(deepcopy=False))

    def _claim(self, study: optuna.Study) -> optuna.Trial | None:
        """A new trial, if it is within the budget: counted by trial number, so that concurrent workers
        agree on which trials are in and which one is over."""
        with heartbeats_without_warnings():
            trial = study.ask()
        earlier = [t for t in study.get_trials(deepcopy=False) if t.number <= trial.number]
        if sum(counts_toward_budget(t) for t in earlier) <= self.n_trials:
            return trial
        trial.set_user_attr(STATUS, "over_budget")
        study.tell(trial, state=TrialState.FAIL)
        return None

    @contextmanager
    def _heartbeats(self, study: optuna.Study, trials: Sequence[optuna.Trial]) -> Iterator[None]:
        """While trials run, tell a database storage that their worker is alive."""
        storage, interval = self.storage, self.heartbeat_interval
        if not isinstance(storage, optuna.storages.RDBStorage) or not interval:
            yield
            return
        stop = threading.Event()

        def beat() -> None:
            while True:
                for trial in trials:
                    storage.record_heartbeat(trial._trial_id)  # Optuna's id of the trial: what heartbeats use
                if stop.wait(interval / 2):
                    return

        thread = threading.Thread(target=beat, daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()

    # --- the sweep ----------------------------------------------------------------------------------
    def sweep(self, arguments: list[str]) -> None:
        params = [f"{key!s}={value}" for key, value in (self.params or {}).items()]
        distributions, fixed = search_space([*params, *arguments])
        study = self._open_study()
        assert self.config is not None
        sweep_dir = Path(self.config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        done = self.n_trials - self._slots_left(study)
        log.info("Study %r in %s: %d of %d trials used", self.study_name, self.storage_url, done, self.n_trials)
        while self._slots_left(study) > 0:
            trials = [t for t in (self._claim(study) for _ in range(self.n_jobs)) if t is not None]
            if not trials:
                break
            overrides = [trial_overrides(suggest(trial, distributions), fixed) for trial in trials]
            try:
                with self._heartbeats(study, trials):
                    returns = self.launcher.launch(overrides, initial_job_idx=self.job_idx)
            except BaseException:  # an interrupt ends the sweep: record the batch, then let it go on up
                for number, trial in enumerate(trials):
                    self._record(study, trial, None, sweep_dir / str(self.job_idx + number))
                raise
            failures = [
                self._record(study, trial, ret, Path(ret.hydra_cfg.hydra.runtime.output_dir) if ret.hydra_cfg else None)
                for trial, ret in zip(trials, returns, strict=True)
            ]
            self.job_idx += len(returns)
            if sum(failures) / len(returns) > self.max_failure_rate:
                raise RuntimeError(
                    f"{sum(failures)} of {len(returns)} trials failed, more than max_failure_rate="
                    f"{self.max_failure_rate}; see {sweep_dir}."
                )
        self._write_results(study, sweep_dir)

    def _record(self, study: optuna.Study, trial: optuna.Trial, ret: JobReturn | None, job_dir: Path | None) -> bool:
        """Tell the study how the trial ended (from its metrics.json); True if it failed."""
        metrics = read_metrics(job_dir, missing={}) if job_dir is not None else {}
        value = ret.return_value if ret is not None and ret.status == JobStatus.COMPLETED else None
        status = metrics.get("status") or ("failed" if ret is not None else "interrupted")
        finished = status == "ok" and value is not None
        attributes = {STATUS: "ok" if finished else status, "error": metrics.get("error"), "job_dir": job_dir}
        for key, attribute in attributes.items():
            if attribute is not None:
                trial.set_user_attr(key, str(attribute)[:500])
        if finished and value is not None:
            study.tell(trial, float(value), skip_if_finished=True)
        else:
            study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)
        return not finished and status != "interrupted"

    def _write_results(self, study: optuna.Study, sweep_dir: Path) -> None:
        completed = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if completed:
            best = study.best_trial
            results = {"name": "optuna", "best_params": best.params, "best_value": best.value,
                       "best_trial": best.number, "trials_used": self.n_trials - self._slots_left(study)}  # fmt: skip
            write_text(sweep_dir / "optimization_results.yaml", OmegaConf.to_yaml(OmegaConf.create(results)))
            log.info("Best of the study so far: %s = %s (trial %d)", best.params, best.value, best.number)
        if self.study_summary:
            write_study_report(study, sweep_dir)
