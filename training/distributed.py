"""Distribution strategies and per-worker data sharding for the main job.

- one process, several GPUs: ``tf.distribute.MirroredStrategy``;
- several processes or hosts: ``tf.distribute.MultiWorkerMirroredStrategy``, the
  cluster read from the ``TF_CONFIG`` environment variable (set it on every worker,
  same ``cluster``, its own ``task``);
- otherwise the default (no-op) strategy.

Each worker reads only its own share of the training images
(``image_ids[worker::num_workers]``, cut to equal lengths so every worker runs the
same number of synchronised steps) and batches it at its per-replica batch size.
"""

import json
import os
from collections.abc import Callable, Sequence

import tensorflow as tf

from training import keras_private


def _cluster_size() -> int:
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        return 0
    try:
        cluster = json.loads(raw).get("cluster", {})
    except json.JSONDecodeError:
        raise ValueError(f"TF_CONFIG is not valid JSON. Received: TF_CONFIG={raw!r}") from None
    return sum(len(addresses) for role, addresses in cluster.items() if role in ("chief", "worker"))


def choose_strategy(name: str = "auto") -> tf.distribute.Strategy:
    """Returns the distribution strategy for ``name``.

    Args:
        name: ``"auto"`` (multi-worker when ``TF_CONFIG`` lists several workers,
            mirrored with several GPUs, else default), ``"mirrored"``,
            ``"multi_worker"`` or ``"default"``.

    Raises:
        ValueError: for an unknown name, or ``"multi_worker"`` without ``TF_CONFIG``.
    """
    if name == "auto":
        if _cluster_size() > 1:
            name = "multi_worker"
        elif len(tf.config.list_logical_devices("GPU")) > 1:
            name = "mirrored"
        else:
            name = "default"
    if name == "multi_worker":
        if not _cluster_size():
            raise ValueError(
                "strategy 'multi_worker' needs the TF_CONFIG environment variable "
                '(e.g. {"cluster": {"worker": ["host1:port", "host2:port"]}, '
                '"task": {"type": "worker", "index": 0}}).'
            )
        keras_private.patch_multi_worker_log_reduction()
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "default":
        return tf.distribute.get_strategy()
    raise ValueError(
        "strategy must be 'auto', 'mirrored', 'multi_worker' or 'default'. "
        f"Received: strategy={name!r}"
    )


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """Whether this process writes checkpoints, exports and reports."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return True
    if resolver.task_type == "chief":
        return True
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return resolver.task_type == "worker" and resolver.task_id == 0 and not has_chief


def is_distributed(strategy: tf.distribute.Strategy) -> bool:
    """Whether ``strategy`` spans several replicas or workers."""
    return strategy.num_replicas_in_sync > 1 or isinstance(
        strategy, tf.distribute.MultiWorkerMirroredStrategy
    )


def distributed_epochs(
    strategy: tf.distribute.Strategy,
    make_epoch: Callable[[Sequence[str], int, int], tf.data.Dataset],
    image_ids: Sequence[str],
    global_batch_size: int,
    epochs: range,
):
    """Builds the training input for ``epochs``, sharded per worker when distributed.

    Args:
        strategy: the distribution strategy.
        make_epoch: ``(image_ids, epoch, batch_size) -> tf.data.Dataset`` of one
            epoch's batches in a fixed, epoch-dependent order.
        image_ids: all training images.
        global_batch_size: the batch size summed over all replicas.
        epochs: the (0-based) epochs to cover, e.g. ``range(initial_epoch, epochs)``.

    Returns:
        ``(dataset, steps_per_epoch)``: a ``tf.data.Dataset`` (default strategy) or
        a distributed dataset holding the epochs back to back.

    Raises:
        ValueError: if there are too few images for one step on every replica.
    """
    if not is_distributed(strategy):
        steps = -(-len(image_ids) // global_batch_size)
        epoch_datasets = [make_epoch(image_ids, epoch, global_batch_size) for epoch in epochs]
        return _concatenate(epoch_datasets), steps

    replicas = strategy.num_replicas_in_sync
    if global_batch_size % replicas:
        raise ValueError(
            f"batch_size must be a multiple of the {replicas} replicas. "
            f"Received: batch_size={global_batch_size}"
        )
    steps = len(image_ids) // global_batch_size
    if steps < 1:
        raise ValueError(
            f"{len(image_ids)} training images are too few for one step of "
            f"batch_size={global_batch_size}; lower --batch-size."
        )

    def dataset_fn(context: tf.distribute.InputContext) -> tf.data.Dataset:
        worker_ids = list(image_ids)[context.input_pipeline_id :: context.num_input_pipelines]
        batch = context.get_per_replica_batch_size(global_batch_size)
        local_replicas = replicas // context.num_input_pipelines
        worker_ids = worker_ids[: steps * batch * local_replicas]
        # Each local replica takes every local_replicas-th batch of this worker.
        return _concatenate(
            [make_epoch(worker_ids, epoch, batch).take(steps * local_replicas) for epoch in epochs]
        )

    options = tf.distribute.InputOptions(experimental_fetch_to_device=True)
    return strategy.distribute_datasets_from_function(dataset_fn, options), steps


def _concatenate(datasets: Sequence[tf.data.Dataset]) -> tf.data.Dataset:
    combined = datasets[0]
    for dataset in datasets[1:]:
        combined = combined.concatenate(dataset)
    return combined
