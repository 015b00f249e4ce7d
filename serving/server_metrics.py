"""The local server's request metrics, in Prometheus' text format and TF Serving's names.

TF Serving exports its TensorFlow monitoring metrics at ``/monitoring/prometheus/metrics``
on the REST port (``monitoring.config``), each name with ``/`` turned into ``:``. The two
that describe requests are kept here under the same names and labels, so one dashboard
reads the local server and TF Serving alike:

- ``:tensorflow:serving:request_count{model_name, status}``: every request, by its
  status code name (``OK``, ``INVALID_ARGUMENT``, ...);
- ``:tensorflow:serving:request_latency{model_name, API, entrypoint}``: a histogram of
  the wall time of successful requests, in microseconds, on TF Serving's buckets
  (10 µs growing by 1.8, 33 of them: up to about 20 minutes). ``API`` is ``predict``
  (``classify``, ``regress``) over REST and ``Predict`` over gRPC, ``entrypoint``
  ``REST`` or ``GRPC``, as in TF Serving.

Only the configured model names become label values; a request naming any other model
is counted under ``model_name=""``, so clients cannot grow the metrics without bound.
"""

import bisect
import threading
from collections.abc import Iterable

import grpc

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
REQUEST_COUNT = ":tensorflow:serving:request_count"
REQUEST_LATENCY = ":tensorflow:serving:request_latency"
# monitoring::Buckets::Exponential(10, 1.8, 33) of servables/tensorflow/util.cc.
LATENCY_BOUNDS_US = tuple(10 * 1.8**i for i in range(33))


class ServerMetrics:
    """Request counts and latency histograms per model, safe to share between threads.

    Args:
        model_names: the configured models (the only names kept as label values).
    """

    def __init__(self, model_names: Iterable[str]):
        self._model_names = frozenset(model_names)
        self._lock = threading.Lock()
        self._counts: dict[tuple[str, str], int] = {}
        # (model, API, entrypoint) -> [per-bucket counts (+Inf last), sum of µs]
        self._latencies: dict[tuple[str, str, str], list] = {}

    def record(
        self, model_name: str, api: str, entrypoint: str, code: grpc.StatusCode, seconds: float
    ) -> None:
        """Counts one request; a successful one also adds its latency to the histogram."""
        model = model_name if model_name in self._model_names else ""
        micros = seconds * 1e6
        with self._lock:
            key = (model, code.name)
            self._counts[key] = self._counts.get(key, 0) + 1
            if code != grpc.StatusCode.OK:
                return
            entry = self._latencies.setdefault(
                (model, api, entrypoint), [[0] * (len(LATENCY_BOUNDS_US) + 1), 0.0]
            )
            # Prometheus buckets are "less than or equal": a value on a bound is in it.
            entry[0][bisect.bisect_left(LATENCY_BOUNDS_US, micros)] += 1
            entry[1] += micros

    def exposition(self) -> bytes:
        """All metrics in Prometheus' text exposition format (version 0.0.4)."""
        with self._lock:
            counts = sorted(self._counts.items())
            latencies = [
                (key, list(buckets), total) for key, (buckets, total) in self._latencies.items()
            ]
        latencies.sort()
        lines = [
            f"# HELP {REQUEST_COUNT} The total number of requests.",
            f"# TYPE {REQUEST_COUNT} counter",
        ]
        for (model, status), count in counts:
            lines.append(f"{REQUEST_COUNT}{_labels(model_name=model, status=status)} {count}")
        lines += [
            f"# HELP {REQUEST_LATENCY} Distribution of wall time (in microseconds) for "
            "Tensorflow Serving request.",
            f"# TYPE {REQUEST_LATENCY} histogram",
        ]
        for (model, api, entrypoint), buckets, total in latencies:
            labels = {"model_name": model, "API": api, "entrypoint": entrypoint}
            cumulative = 0
            for bound, count in zip((*LATENCY_BOUNDS_US, None), buckets, strict=True):
                cumulative += count
                le = "+Inf" if bound is None else f"{bound:.6g}"
                lines.append(f"{REQUEST_LATENCY}_bucket{_labels(**labels, le=le)} {cumulative}")
            lines.append(f"{REQUEST_LATENCY}_sum{_labels(**labels)} {total!r}")
            lines.append(f"{REQUEST_LATENCY}_count{_labels(**labels)} {cumulative}")
        return ("\n".join(lines) + "\n").encode()


def _labels(**labels: str) -> str:
    return "{" + ",".join(f'{key}="{_escape(value)}"' for key, value in labels.items()) + "}"


def _escape(value: str) -> str:
    # The exposition format's three escapes inside a label value.
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
