#!/usr/bin/env bash
# Placeholder: `make bench` runs this script; replace it with the real one.
set -euo pipefail
echo "bench not written yet"
