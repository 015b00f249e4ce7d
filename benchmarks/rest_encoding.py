"""What the JSON of a REST answer costs, and the ways of writing it faster that were tried.

Run ``python benchmarks/rest_encoding.py [--rounds 40] [--out results.json]``.

A REST predict answer of ``serving_default`` for a 288x384 image is a JSON text of
110,592 float32 numbers. The local server writes it with ``serving.rest_json.dumps``
(orjson, each float32 in its shortest round-trip form); a client reads it back with
``serving.rest_answers``. Against a direct call of 26-37 ms for the explainable model,
the 10% the server may add is 2.6-3.7 ms, so this cost is the floor of REST's overhead.
The writers compared, each on the same map, in turns (order rotated every round, so
the machine's drift hits them alike), median ms over the rounds:

- ``orjson float32`` — the server's: ``rest_json.dumps`` of the answer;
- ``orjson float64`` — the map cast to float64 first (orjson's double path): the same
  values, printed with the double's digits (``0.2`` becomes ``0.20000000298023224``);
- ``shortest decimal, then float64`` — numpy rounds each value to the fewest of 6 or 9
  significant digits that give back the same float32 (TF Serving's own rule), so that
  orjson's double path prints short numbers;
- ``two processes`` — half the rows written by a worker process (spawned once; the
  rows and the text pass through shared memory) while this process writes the other
  half, then spliced with ``orjson.Fragment``;
- ``json (standard library)`` — ``numpy.tolist`` and ``json.dumps``, for scale.

Every writer's text is read back and checked to hold exactly the map's float32 values.
The map is a smooth, peaked density (a blurred random field through a softmax), like a
saliency model's; the number of digits, hence the cost, depends on the values.
"""

import argparse
import json
import multiprocessing
import statistics
import time
from multiprocessing import shared_memory

import numpy as np
import orjson
from scipy import ndimage

MAP_SIZE = (288, 384)
_NUMPY = orjson.OPT_SERIALIZE_NUMPY


def saliency_like_map(seed: int = 0) -> np.ndarray:
    """A (1, H, W) float32 density: a blurred random field through a softmax."""
    field = ndimage.gaussian_filter(np.random.default_rng(seed).normal(size=MAP_SIZE), 12)
    logits = 8.0 * field / field.std()
    density = np.exp(logits - logits.max())
    return (density / density.sum()).astype(np.float32)[None]


def shortest_decimal(values: np.ndarray, digits=(6, 9)) -> np.ndarray:
    """float64 values nearest to the fewest-digit decimals that give back each float32."""
    wide = values.astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        exponents = np.floor(np.log10(np.abs(wide)))
    out = wide.copy()
    pending = np.isfinite(exponents)
    for count in digits:
        shift = (count - 1) - exponents
        usable = pending & (np.abs(shift) <= 22)  # 10**k is exact in a double up to 22
        shift = np.where(usable, shift, 0)
        scale = 10.0 ** np.abs(shift)
        up = shift >= 0
        mantissa = np.rint(np.where(up, wide * scale, wide / scale))
        rounded = np.where(up, mantissa / scale, mantissa * scale)
        exact = usable & (rounded.astype(np.float32) == values)
        out = np.where(exact, rounded, out)
        pending &= ~exact
    return out


def _worker(connection, rows_name: str, text_name: str) -> None:
    rows = shared_memory.SharedMemory(rows_name)
    text = shared_memory.SharedMemory(text_name)
    try:
        while (shape := connection.recv()) is not None:
            encoded = orjson.dumps(np.ndarray(shape, np.float32, buffer=rows.buf), option=_NUMPY)
            text.buf[: len(encoded)] = encoded
            connection.send(len(encoded))
    finally:
        rows.close()
        text.close()


class TwoProcessWriter:
    """Writes the lower half of a (1, H, W) map's rows in a worker process."""

    def __init__(self, max_values: int):
        context = multiprocessing.get_context("spawn")
        self._rows = shared_memory.SharedMemory(create=True, size=4 * max_values)
        self._text = shared_memory.SharedMemory(create=True, size=32 * max_values)
        self._connection, theirs = context.Pipe()
        self._process = context.Process(
            target=_worker, args=(theirs, self._rows.name, self._text.name), daemon=True
        )
        self._process.start()

    def __call__(self, values: np.ndarray) -> bytes:
        """The columnar answer ``{"predictions": values}``, as orjson writes it."""
        rows = values[0]
        half = rows.shape[0] // 2
        lower = rows[half:]
        np.ndarray(lower.shape, np.float32, buffer=self._rows.buf)[...] = lower
        self._connection.send(lower.shape)
        upper = orjson.dumps(rows[:half], option=_NUMPY)
        size = self._connection.recv()
        # "[[" + upper rows + "," + lower rows + "]": the batch's list around the rows.
        spliced = b"".join((b"[[", upper[1:-1], b",", self._text.buf[1:size], b"]"))
        return orjson.dumps({"predictions": orjson.Fragment(spliced)})

    def close(self) -> None:
        """Stops the worker and frees the shared memory."""
        self._connection.send(None)
        self._process.join(timeout=10)
        for block in (self._rows, self._text):
            block.close()
            block.unlink()


def writers(values: np.ndarray, two_processes: TwoProcessWriter) -> dict:
    # serving (and with it TensorFlow) is imported here, not at the top: the spawned
    # worker imports this script, and needs only numpy and orjson.
    from serving import rest_json

    answer = {"saliency": values}
    return {
        "orjson float32": lambda: rest_json.predict_response(answer, row_format=False),
        "orjson float64": lambda: orjson.dumps(
            {"outputs": values.astype(np.float64)}, option=_NUMPY
        ),
        "shortest decimal, then float64": lambda: orjson.dumps(
            {"outputs": shortest_decimal(values)}, option=_NUMPY
        ),
        "two processes": lambda: two_processes(values),
        "json (standard library)": lambda: json.dumps({"outputs": values.tolist()}).encode(),
    }


def read_back(text: bytes) -> np.ndarray:
    answer = json.loads(text)
    return np.asarray(answer.get("outputs", answer.get("predictions")), np.float32)


def run(rounds: int) -> dict:
    from serving import rest_answers, rest_json

    values = saliency_like_map()
    two_processes = TwoProcessWriter(values.size)
    try:
        ways = writers(values, two_processes)
        checks = {}
        for name, write in ways.items():
            text = write()
            checks[name] = {
                "bytes": len(text),
                "exact": bool(np.array_equal(read_back(text), values)),
            }
        times = {name: [] for name in ways}
        names = list(ways)
        for index in range(rounds):
            for name in names[index % len(names) :] + names[: index % len(names)]:
                start = time.perf_counter()
                ways[name]()
                times[name].append(1e3 * (time.perf_counter() - start))
    finally:
        two_processes.close()
    served = rest_json.predict_response({"saliency": values}, row_format=True)
    reads = []
    for _ in range(rounds):
        start = time.perf_counter()
        rest_answers.read_predict_answer(served)
        reads.append(1e3 * (time.perf_counter() - start))
    return {
        "map": list(values.shape),
        "rounds": rounds,
        "writers": {
            name: {"median_ms": statistics.median(times[name]), **checks[name]} for name in ways
        },
        "client_read_ms": statistics.median(reads),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--out", help="also write the results as JSON here")
    args = parser.parse_args()
    results = run(args.rounds)
    print(f"A {results['map']} float32 map, median of {results['rounds']} rounds:")
    print("| writer | ms | bytes | exact float32 values |")
    print("|---|---:|---:|---|")
    for name, result in results["writers"].items():
        print(f"| {name} | {result['median_ms']:.2f} | {result['bytes']} | {result['exact']} |")
    print(
        f"Client read of the server's answer (serving.rest_answers): "
        f"{results['client_read_ms']:.2f} ms"
    )
    if args.out:
        with open(args.out, "w") as file:
            json.dump(results, file, indent=2)


if __name__ == "__main__":
    main()
