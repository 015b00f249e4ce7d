"""Which models the local server serves (``--model_base_path`` or a config file).

Either ``--model_name``/``--model_base_path`` or a TF Serving ``--model_config_file``. The
config file is TF Serving's text-format ``ModelServerConfig`` (the same file the
production server reads, e.g. the exporter's ``models.config``): for each model a name,
a base path holding one folder per integer version, a version policy (``latest``
``num_versions`` — the default, one — or ``all`` or ``specific``) and version labels.
"""

import dataclasses
import os
from pathlib import Path

from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2


@dataclasses.dataclass(frozen=True)
class ModelSource:
    """One model to serve.

    Attributes:
        name: the name clients ask for (``/v1/models/<name>``, ``ModelSpec.name``).
        base_path: the folder holding the version folders ``<base_path>/<int>/``.
        policy: ``"latest"``, ``"all"`` or ``"specific"``.
        num_versions: how many of the newest versions ``"latest"`` serves.
        versions: the versions ``"specific"`` serves.
        labels: version labels (``"stable" -> 1``).
    """

    name: str
    base_path: Path
    policy: str = "latest"
    num_versions: int = 1
    versions: frozenset[int] = frozenset()
    labels: tuple[tuple[str, int], ...] = ()

    def __post_init__(self):
        if not self.name:
            raise ValueError("A model needs a name. Received: name=''")
        if self.policy not in ("latest", "all", "specific"):
            raise ValueError(
                f"policy must be 'latest', 'all' or 'specific'. Received: policy={self.policy!r}"
            )
        if self.num_versions < 1:
            raise ValueError(f"num_versions must be >= 1. Received: {self.num_versions}")

    def wanted(self, available: list[int]) -> list[int]:
        """The versions to serve out of those found on disk, newest first."""
        newest_first = sorted(available, reverse=True)
        if self.policy == "latest":
            return newest_first[: self.num_versions]
        if self.policy == "specific":
            return [v for v in newest_first if v in self.versions]
        return newest_first


def single_model(name: str, base_path: str | os.PathLike) -> list[ModelSource]:
    """The model of ``--model_name``/``--model_base_path`` (latest version)."""
    return [ModelSource(name=name, base_path=Path(base_path).absolute())]


def read_model_config_file(path: str | os.PathLike) -> list[ModelSource]:
    """The models of a TF Serving ``ModelServerConfig`` text file.

    Relative base paths are taken relative to the file's folder.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: the file is not a ``model_config_list`` config, or names a model
            twice, or uses a platform other than TensorFlow.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"--model_config_file {path} does not exist.")
    config = model_server_config_pb2.ModelServerConfig()
    try:
        text_format.Parse(path.read_text(encoding="utf-8"), config)
    except text_format.ParseError as error:
        raise ValueError(
            f"{path} is not a text-format ModelServerConfig ({error}). See TF Serving's "
            "serving_config.md for the format."
        ) from None
    if config.WhichOneof("config") != "model_config_list":
        raise ValueError(f"{path} has no model_config_list; it is the only form served.")
    sources = []
    for model in config.model_config_list.config:
        if model.model_platform not in ("", "tensorflow"):
            raise ValueError(
                f"Model {model.name!r} in {path} has model_platform "
                f"{model.model_platform!r}; only 'tensorflow' SavedModels are served."
            )
        policy = model.model_version_policy.WhichOneof("policy_choice") or "latest"
        base_path = Path(model.base_path)
        sources.append(
            ModelSource(
                name=model.name,
                base_path=base_path if base_path.is_absolute() else path.parent / base_path,
                policy=policy,
                num_versions=model.model_version_policy.latest.num_versions or 1,
                versions=frozenset(model.model_version_policy.specific.versions),
                labels=tuple(sorted(model.version_labels.items())),
            )
        )
    names = [source.name for source in sources]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ValueError(f"{path} names these models more than once: {duplicates}.")
    if not sources:
        raise ValueError(f"{path} lists no model.")
    return sources
