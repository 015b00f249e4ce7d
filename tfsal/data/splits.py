"""Deterministic, seeded train/validation/test splits of image identifiers."""

from collections.abc import Mapping, Sequence

import numpy as np


def split_ids(
    ids: Sequence[str],
    sizes: Mapping[str, int | float],
    seed: int = 0,
) -> dict[str, list[str]]:
    """Splits image identifiers into named, disjoint subsets.

    The identifiers are sorted first, so the split depends only on the set of
    identifiers, ``sizes`` and ``seed`` (never on the order a reader lists them).
    Subsets are taken in the order of ``sizes`` from one seeded permutation, and each
    subset keeps the sorted order.

    Args:
        ids: the identifiers, without duplicates.
        sizes: subset name -> number of images (int) or fraction of all images
            (float in (0, 1]); e.g. ``{"train": 320, "val": 80}`` or
            ``{"train": 0.8, "val": 0.2}``. Fractions are rounded; when they add up
            to 1 the last subset takes the remainder so every identifier is used.
        seed: seed of the permutation.

    Returns:
        Subset name -> sorted list of identifiers.

    Raises:
        ValueError: for duplicate identifiers, negative or mixed sizes, or sizes
            adding up to more than there are identifiers.
    """
    ids = [str(image_id) for image_id in ids]
    if len(set(ids)) != len(ids):
        raise ValueError("ids must not contain duplicates.")
    if not sizes:
        raise ValueError("sizes must name at least one subset, e.g. {'train': 0.8, 'val': 0.2}.")
    counts = _counts(sizes, len(ids))
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(ids))
    ordered = sorted(ids)
    splits, start = {}, 0
    for name, count in counts.items():
        chosen = order[start : start + count]
        splits[name] = sorted(ordered[index] for index in chosen)
        start += count
    return splits


def _counts(sizes: Mapping[str, int | float], total: int) -> dict[str, int]:
    values = list(sizes.values())
    are_fractions = [isinstance(value, float) for value in values]
    if any(are_fractions) and not all(are_fractions):
        raise ValueError(
            f"sizes must be all counts (int) or all fractions (float). Received: sizes={sizes}"
        )
    if any(value < 0 for value in values):
        raise ValueError(f"sizes must be >= 0. Received: sizes={sizes}")
    if all(are_fractions):
        fraction_sum = sum(values)
        if fraction_sum > 1.0 + 1e-9 or any(value > 1.0 for value in values):
            raise ValueError(
                f"Fractions in sizes must add up to at most 1. Received: sizes={sizes}"
            )
        counts = {name: int(round(value * total)) for name, value in sizes.items()}
        if abs(fraction_sum - 1.0) <= 1e-9:
            last = list(counts)[-1]
            counts[last] = total - sum(counts.values()) + counts[last]
            if counts[last] < 0:
                raise ValueError(
                    f"Rounding sizes={sizes} to whole images of {total} leaves "
                    f"{counts[last]} for {last!r}; give counts (ints) instead of fractions."
                )
    else:
        counts = {name: int(value) for name, value in sizes.items()}
    if sum(counts.values()) > total or min(counts.values()) < 0:
        raise ValueError(
            f"sizes ask for {sum(counts.values())} images but there are only {total}. "
            f"Received: sizes={sizes}"
        )
    return counts
