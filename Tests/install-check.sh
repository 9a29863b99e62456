#!/usr/bin/env bash
# `make install` (its file-copying half) into a scratch prefix: the installed binary, started from
# another directory, must find the installed default model (not the source tree's) and draw.
# Usage: Tests/install-check.sh BINARY (make test passes the binary it built).
set -euo pipefail
bin="$(realpath "$1")"
cd "$(dirname "$0")/.."
prefix="$(mktemp -d)"
trap 'rm -rf "$prefix"' EXIT
make -s install-files PREFIX="$prefix" BIN="$bin" >/dev/null
for f in bin/sfumato share/sfumato/sfumato-shapes/model_index.json share/bash-completion/completions/sfumato \
         share/zsh/site-functions/_sfumato share/fish/vendor_completions.d/sfumato.fish; do
    [ -s "$prefix/$f" ] || { echo "install-check: make install did not write $f" >&2; exit 1; }
done
cd "$prefix"
found="$(env -u SFUMATO_MODEL bin/sfumato doctor --size 64 | sed -n 's/^Default model: *//p')"
[ "$found" = "$prefix/share/sfumato/sfumato-shapes" ] || { echo "install-check: installed binary uses '$found'" >&2; exit 1; }
env -u SFUMATO_MODEL bin/sfumato generate "a red circle" --steps 2 --seed 1 --quiet --output "$prefix/out.png"
[ -s "$prefix/out.png" ] || { echo "install-check: no image from the installed binary" >&2; exit 1; }
version="$(bin/sfumato --version)"
[ -n "$version" ] || { echo "install-check: --version printed nothing" >&2; exit 1; }
echo "install-check: PREFIX layout, default model, image and --version ($version) ok"
