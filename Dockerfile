# tfsal training and evaluation image.
#
#   docker build -t tfsal .
#   docker run --rm -v "$PWD/runs:/app/runs" tfsal                      # main job, built-in data
#   docker run --rm --gpus all -v /data:/data -v "$PWD/runs:/app/runs" tfsal \
#       python -m training.fit --model unisal --data nus:/data/nus-scene
#
# The GPU variant of the base image is chosen with --build-arg BASE=tensorflow/tensorflow:2.21.0-gpu.
# Serving uses the TensorFlow Serving image instead (see serving/).
ARG BASE=tensorflow/tensorflow:2.21.0
FROM ${BASE}

ENV PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    TF_CPP_MIN_LOG_LEVEL=2

WORKDIR /app
COPY setup.py pyproject.toml README.md ./
COPY tfsal ./tfsal
COPY training ./training
COPY serving ./serving
RUN python -m pip install --upgrade pip && python -m pip install .

CMD ["python", "-m", "training.fit"]
