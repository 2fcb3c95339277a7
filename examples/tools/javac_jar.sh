#!/bin/sh
# Compiles Java sources into a reproducible jar with the system JDK (javac, jar).
# Usage: javac_jar.sh OUT.jar CLASSPATH SOURCE...
set -eu
out="$1"
classpath="$2"
shift 2
classes="$(mktemp -d)"
trap 'rm -rf "$classes"' EXIT
javac -nowarn -d "$classes" ${classpath:+-cp "$classpath"} "$@"
jar --create --file "$out" --date=1980-01-01T00:00:02Z -C "$classes" .
