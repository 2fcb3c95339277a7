#!/bin/sh
set -eu
out="$("$(dirname "$0")/hello.sh")"
[ "$out" = "hello from the example monorepo" ]
