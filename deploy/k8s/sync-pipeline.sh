#!/usr/bin/env bash
# Rewrite pipeline-configmap.yaml from the repository's pipelines.yaml (tests/it/deploy_files.rs
# checks the two are equal). Run from anywhere: bash deploy/k8s/sync-pipeline.sh
set -euo pipefail
cd "$(dirname "$0")"
out=pipeline-configmap.yaml
{
  sed -n '1,/^  pipelines.yaml: |$/p' "$out"
  sed -e 's/^/    /' -e 's/^    $//' ../../pipelines.yaml
} >"$out.new"
mv "$out.new" "$out"
echo "$out: synced with pipelines.yaml"
