#!/usr/bin/env bash
# Installs what rules_release's demo and test suite need on Debian (as root): Debian
# packages, the Python packages of pyproject.toml into the checkout's virtual environment
# (.venv: a machine-wide Python and its releasekit are never touched), and buildifier from npm.
# Idempotent and quiet when everything is already there.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
BASE_PYTHON="${BASE_PYTHON:-python3}"  # the interpreter the virtual environment is made from
VENV=.venv
PYTHON="$VENV/bin/python3"

DEBIAN_PACKAGES=(
  git
  python3-venv                                   # `python3 -m venv` (Debian leaves ensurepip out of python3)
  jq                                             # what `gh --jq` runs, for the pipeline runner's stand-in of gh
  bazel-bootstrap bazel-rules-java bazel-skylib  # Bazel 4.2.3 and what it needs offline
  docker-registry skopeo umoci apache2-utils     # a real OCI registry, real clients (umoci edits layouts), htpasswd
  nginx-light                                    # a real HTTP PUT (WebDAV) artifact store
  default-jdk-headless                           # javac and jar for the example's jars
  maven libmaven-dependency-plugin-java libmaven-deploy-plugin-java junit4  # a real Maven client, offline
  chromium chromium-driver                       # a real browser for the insight page's test
)

missing=()
for package in "${DEBIAN_PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$package")
  fi
done
if ((${#missing[@]})); then
  echo "install: Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [[ ! -x "$PYTHON" ]]; then
  echo "install: a virtual environment in $VENV"
  "$BASE_PYTHON" -m venv "$VENV"
fi

# releasekit and its test dependencies, editable so the checkout is what runs, in the checkout's own environment.
if ! "$PYTHON" - <<'PY' 2>/dev/null
import importlib.metadata, os, sys
import releasekit, requests, yaml, docker, boto3, moto, kubernetes_validate, jsonschema, re2, celpy, pytest, check_jsonschema
import matplotlib, selenium, ruff, cryptography, securesystemslib, in_toto_attestation, oras, grpc, buildgrid
sys.exit(0 if os.path.realpath(os.path.dirname(releasekit.__file__)) == os.path.realpath("tools/releasekit") else 1)
PY
then
  echo "install: Python packages into $VENV (pip install -e .[test])"
  "$PYTHON" -m pip install -q --disable-pip-version-check -e ".[test]"
fi

# Bytecode for the command line: with PYTHONDONTWRITEBYTECODE (common in CI images) nothing caches it,
# and every releasekit command would compile its modules again. Sources edited later fall back to themselves.
"$PYTHON" -m compileall -q tools/releasekit >/dev/null

if [[ ! -x .tools/node_modules/.bin/buildifier ]]; then
  echo "install: buildifier (npm @bazel/buildifier)"
  npm install --prefix .tools --no-audit --no-fund --silent --no-save @bazel/buildifier@8.2.1 >/dev/null
fi
