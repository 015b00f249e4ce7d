"""Sums and gathers across the workers of a ``tf.distribute`` strategy.

The derivation runs in every worker of a ``MultiWorkerMirroredStrategy`` on that
worker's shard of the images; the statistics it accumulates (normal equations,
scores, readout gradients) are summed with the strategy's own all-reduce, so every
worker solves the same equations and ends with the same model. Under any other
strategy there is one worker and the values pass through unchanged (a
``MirroredStrategy`` on one host feeds the derivation from one process).
"""

import numpy as np
import tensorflow as tf


def num_workers(strategy: tf.distribute.Strategy | None) -> int:
    """How many processes take part (1 unless ``MultiWorkerMirroredStrategy``)."""
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return 1
    return strategy.num_replicas_in_sync // max(1, len(strategy.extended.worker_devices))


def _all_reduce(strategy, values, reduce):
    def replica_fn(tensors):
        return reduce(tf.distribute.get_replica_context(), tensors)

    result = strategy.run(replica_fn, args=(values,))
    return tf.nest.map_structure(
        lambda value: strategy.experimental_local_results(value)[0].numpy(), result
    )


def sum_over_workers(strategy, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Element-wise sums of every worker's ``arrays`` (same keys and shapes everywhere)."""
    if num_workers(strategy) == 1:
        return arrays
    local_replicas = len(strategy.extended.worker_devices)
    tensors = {key: tf.constant(value) for key, value in arrays.items()}
    summed = _all_reduce(
        strategy, tensors, lambda context, t: context.all_reduce(tf.distribute.ReduceOp.SUM, t)
    )
    # Each local replica contributed the worker's value once.
    return {key: value / local_replicas for key, value in summed.items()}


def concat_over_workers(strategy, rows: np.ndarray) -> np.ndarray:
    """Every worker's rows, concatenated in worker order (cut to the shortest count)."""
    if num_workers(strategy) == 1:
        return rows
    local_replicas = len(strategy.extended.worker_devices)

    def gather(values):
        gathered = _all_reduce(
            strategy, tf.constant(values), lambda context, t: context.all_gather(t, axis=0)
        )
        # One block per replica; keep one block per worker.
        blocks = gathered.reshape(-1, *np.shape(values))
        return blocks[::local_replicas].reshape(-1, *np.shape(values)[1:])

    shortest = int(gather(np.array([len(rows)], np.int64)).min())
    return gather(np.asarray(rows)[:shortest])
