"""Finds, loads, swaps and unloads model versions, as TF Serving's manager does.

A background thread polls each model's base path every
``--file_system_poll_wait_seconds``: integer-named folders holding a ``saved_model.pb``
are versions (anything else, such as an exporter's temporary folder, is ignored). The
versions the model's policy wants are loaded (and their warmup records replayed, as
TF Serving does) while the old ones keep serving; only when
a wanted version is AVAILABLE are the versions no longer wanted dropped. A request
holds the ``Servable`` it resolved, so a swap never fails a request in flight: the old
version is freed when its last request returns. A version that fails to load is
retried on later polls (an export copied in place without a rename may be incomplete),
at most ``max_load_retries`` times; meanwhile the policy is applied to the versions that
do load, so the versions already serving stay up (or the next newest one loads).

Version states are TF Serving's (``ModelVersionStatus.State``): START, LOADING,
AVAILABLE, UNLOADING, END; a failed load ends in END with the error.
"""

import dataclasses
import logging
import threading
from collections.abc import Callable, Sequence

import grpc
from tensorflow_serving.apis import get_model_status_pb2

from serving import errors
from serving.model_config import ModelSource
from serving.servable import Servable

State = get_model_status_pb2.ModelVersionStatus.State
_LOG = logging.getLogger(__name__)
# Versions that ended (unloaded or failed) stay visible in the status this long.
_ENDED_KEPT = 8


@dataclasses.dataclass
class VersionStatus:
    """What the status API reports for one version."""

    state: int = State.START
    error_code: grpc.StatusCode = grpc.StatusCode.OK
    error_message: str = ""


class ModelManager:
    """Serves the versions of each model that its policy wants.

    Args:
        sources: the models to serve.
        poll_wait_seconds: the time between polls of the base paths; 0 or less polls
            once at start-up only (``--file_system_poll_wait_seconds``).
        max_load_retries: how many more polls may retry a version that failed to load.
        on_poll: called after every poll (the gRPC health service uses it).
        warm_up: replay each version's warmup records before it serves
            (``--enable_model_warmup``).
    """

    def __init__(
        self,
        sources: Sequence[ModelSource],
        poll_wait_seconds: float = 1.0,
        max_load_retries: int = 5,
        on_poll: Callable[["ModelManager"], None] | None = None,
        warm_up: bool = True,
    ):
        self._warm_up = warm_up
        self._sources = {source.name: source for source in sources}
        self._poll_wait_seconds = poll_wait_seconds
        self._max_load_retries = max_load_retries
        self._on_poll = on_poll
        self._lock = threading.Lock()
        self._serving: dict[str, dict[int, Servable]] = {name: {} for name in self._sources}
        self._status: dict[str, dict[int, VersionStatus]] = {name: {} for name in self._sources}
        self._failures: dict[tuple[str, int], int] = {}
        self._stopping = threading.Event()
        self._first_poll = threading.Event()
        self._thread = threading.Thread(target=self._poll_loop, name="model-poller", daemon=True)

    @property
    def model_names(self) -> list[str]:
        """The configured model names."""
        return sorted(self._sources)

    def start(self) -> None:
        """Starts polling in the background; requests get UNAVAILABLE until loaded."""
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stops polling (a load under way finishes first, up to ``timeout``)."""
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def wait_for_first_poll(self, timeout: float) -> bool:
        """Blocks until the first poll has loaded what it found; False on timeout."""
        return self._first_poll.wait(timeout)

    def all_available(self) -> bool:
        """Whether every configured model has a version serving."""
        with self._lock:
            return all(self._serving[name] for name in self._sources)

    def resolve(self, name: str, version: int | None = None, label: str | None = None) -> Servable:
        """The servable a request names.

        Args:
            name: the model name.
            version: a version number; None means the newest serving version.
            label: a version label from the model config (instead of ``version``).

        Raises:
            ServingError: NOT_FOUND for an unknown model or version, UNAVAILABLE while
                it loads, INVALID_ARGUMENT for an unknown label.
        """
        source = self._sources.get(name)
        if source is None:
            raise errors.not_found(f"Servable not found for request: Latest({name})")
        if label is not None:
            labels = dict(source.labels)
            if label not in labels:
                raise errors.invalid_argument(
                    f"Unrecognized servable version label: {label}. "
                    f"Model {name!r} has labels {sorted(labels)}."
                )
            version = labels[label]
        with self._lock:
            serving = self._serving[name]
            loading = sorted(
                v for v, s in self._status[name].items() if s.state in (State.START, State.LOADING)
            )
            if version is None and serving:
                return serving[max(serving)]
            if version is not None and version in serving:
                return serving[version]
        if version is None:
            if loading:
                raise errors.unavailable(f"Model {name!r} is loading version {loading[-1]}.")
            raise errors.not_found(
                f"Servable not found for request: Latest({name}). No version folder with a "
                f"SavedModel was found under {source.base_path}."
            )
        if version in loading:
            raise errors.unavailable(f"Version {version} of model {name!r} is loading.")
        raise errors.not_found(f"Servable not found for request: Specific({name}, {version})")

    def status(self, name: str, version: int | None = None) -> list[tuple[int, VersionStatus]]:
        """The tracked versions of a model (or one of them), newest first.

        Raises:
            ServingError: NOT_FOUND for an unknown model or untracked version.
        """
        if name not in self._sources:
            raise errors.not_found(f"Could not find any versions of model {name}")
        with self._lock:
            tracked = {v: dataclasses.replace(s) for v, s in self._status[name].items()}
        if not tracked:
            raise errors.not_found(
                f"Could not find any versions of model {name}: no version folder with a "
                f"SavedModel was found under {self._sources[name].base_path} yet."
            )
        if version is not None:
            if version not in tracked:
                raise errors.not_found(f"Could not find version {version} of model {name}")
            return [(version, tracked[version])]
        return sorted(tracked.items(), reverse=True)

    def poll(self) -> None:
        """Looks at every base path once; loads, swaps and unloads versions."""
        for source in self._sources.values():
            if self._stopping.is_set():
                return
            self._poll_model(source)
        if self._on_poll is not None:
            self._on_poll(self)

    def _poll_loop(self) -> None:
        try:
            self.poll()
        finally:
            self._first_poll.set()
        while self._poll_wait_seconds > 0 and not self._stopping.wait(self._poll_wait_seconds):
            try:
                self.poll()
            except Exception:  # A poll must never kill the poller; the next one retries.
                _LOG.exception("Polling the model base paths failed")

    def _poll_model(self, source: ModelSource) -> None:
        available = _versions_on_disk(source)
        for version in source.wanted(available):
            self._load_unless_serving(source, version)
        # A version that does not load does not count: the policy falls back to the
        # versions that do (latest-1 serves version 1 while version 2 is broken).
        loadable = [v for v in available if (source.name, v) not in self._failures]
        wanted = source.wanted(loadable)
        for version in wanted:
            self._load_unless_serving(source, version)
        with self._lock:
            serving = dict(self._serving[source.name])
            if not any(version in serving for version in wanted):
                return  # Keep what serves until a wanted version is up.
            dropped = [version for version in serving if version not in wanted]
            for version in dropped:
                self._status[source.name][version].state = State.UNLOADING
                del serving[version]
            self._serving[source.name] = serving  # Swapped in one assignment.
        for version in dropped:
            # In-flight requests still hold their Servable; it is freed after them.
            self._set_state(source.name, version, State.END)
            _LOG.info("Unloaded %s version %d", source.name, version)

    def _load_unless_serving(self, source: ModelSource, version: int) -> None:
        failures = self._failures.get((source.name, version), 0)
        if version not in self._serving[source.name] and failures <= self._max_load_retries:
            self._load(source, version)

    def _load(self, source: ModelSource, version: int) -> None:
        key = (source.name, version)
        self._set_state(source.name, version, State.LOADING)
        _LOG.info("Loading %s version %d", source.name, version)
        try:
            servable = Servable.load(source.name, version, source.base_path / str(version))
            if self._warm_up:
                replayed = servable.warm_up()
                _LOG.info("Replayed %d warmup requests on %s version %d", replayed, *key)
        except Exception as error:  # Any unloadable folder: report it, keep serving.
            self._failures[key] = self._failures.get(key, 0) + 1
            self._set_state(source.name, version, State.END, grpc.StatusCode.UNKNOWN, str(error))
            _LOG.error("Loading %s version %d failed: %s", source.name, version, error)
            return
        self._failures.pop(key, None)
        with self._lock:
            self._serving[source.name] = {**self._serving[source.name], version: servable}
            self._status[source.name][version] = VersionStatus(State.AVAILABLE)
        _LOG.info("Serving %s version %d", source.name, version)

    def _set_state(self, name, version, state, code=grpc.StatusCode.OK, message="") -> None:
        with self._lock:
            statuses = self._status[name]
            statuses[version] = VersionStatus(state, code, message)
            ended = sorted(v for v, s in statuses.items() if s.state == State.END)
            for old in ended[:-_ENDED_KEPT]:
                del statuses[old]


def _versions_on_disk(source: ModelSource) -> list[int]:
    if not source.base_path.is_dir():
        return []
    return [
        int(child.name)
        for child in source.base_path.iterdir()
        if child.name.isascii() and child.name.isdigit() and (child / "saved_model.pb").is_file()
    ]
