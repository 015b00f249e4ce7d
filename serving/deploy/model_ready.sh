#!/bin/sh
# Readiness check of a TF Serving container: ready when every model named in the model
# config file has a version in state AVAILABLE. GET /v1/models/NAME alone is not enough:
# it answers 200 as soon as the model is known, while its first version still loads.
#
#   model_ready.sh [CONFIG [REST_ADDRESS]]   (defaults: /models/models.config 127.0.0.1:8501)
config="${1:-/models/models.config}"
address="${2:-127.0.0.1:8501}"
names=$(sed -n 's/^[[:space:]]*name:[[:space:]]*"\([^"]*\)".*/\1/p' "$config") || exit 1
[ -n "$names" ] || { echo "no model named in $config" >&2; exit 1; }
for name in $names; do
    status=$(curl --silent --show-error --max-time 2 "http://$address/v1/models/$name") || exit 1
    if ! printf '%s' "$status" | grep -Eq '"state"[[:space:]]*:[[:space:]]*"AVAILABLE"'; then
        echo "model $name is not AVAILABLE yet" >&2
        exit 1
    fi
done
