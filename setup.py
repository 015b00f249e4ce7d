"""Installs tfsal: explainable deep visual saliency models in TensorFlow/Keras."""

from pathlib import Path

from setuptools import find_packages, setup

setup(
    name="tfsal",
    version="0.1.0",
    description=(
        "Explainable deep visual saliency models: deep saliency networks whose "
        "intermediate layers are rebuilt from log-Gabor filter responses."
    ),
    long_description=Path(__file__).with_name("README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.11,<3.13",
    packages=find_packages(include=["tfsal*", "training*", "serving*"]),
    install_requires=[
        "tensorflow>=2.21,<2.22",
        "keras>=3.10,<4",
        "numpy>=1.26,<3",
        "scipy>=1.11,<2",
        "opencv-contrib-python-headless>=4.8",
        "tensorflow-serving-api>=2.19,<3",
        "grpcio>=1.60,<2",
        # google.protobuf (text-format configs, JSON of the status and metadata messages);
        # tensorflow-serving-api's generated code needs at least 6.31.1.
        "protobuf>=6.31.1,<8",
        # The local model server: gRPC health checking, its HTTP server, fast JSON
        # (3.13 writes a float32 map 15-30% faster than 3.8: BENCHMARKS.md).
        "grpcio-health-checking>=1.60,<2",
        "werkzeug>=3,<4",
        "orjson>=3.13,<4",
        # serving.client reads REST answers' number arrays without Python floats.
        "pysimdjson>=7,<8",
        "tf-explain==0.3.1",  # unmaintained: pinned, used only by serving/attribution.py
        "matplotlib>=3.8,<4",
        "tqdm>=4.66,<5",
        "tensorboard>=2.21,<2.22",
        "pyyaml>=6,<7",
        "h5py>=3.10,<4",  # read directly by tfsal.weights (Keras needs it too)
    ],
    extras_require={
        # Peer libraries used only to check results, never at run time.
        "test": [
            "pytest>=8",
            "ruff>=0.6",
            "phasepack>=1.5",
            "phasecongruency>=1.0.5",
            "pysaliency>=0.2.22",
            "scikit-image>=0.22",
        ],
    },
)
