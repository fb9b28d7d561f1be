#!/usr/bin/env bash
# Re-vendor Swagger UI, ReDoc and KaTeX from the npm registry at the pinned versions below,
# keeping only the files /docs, /redoc (app/api/routes/docs.py) and /playground
# (app/api/routes/playground.py) serve, and print their sha256 for README.md. To upgrade: change
# a version here, in app/api/routes/docs.py (SWAGGER_UI, REDOC) or playground.py (KATEX),
# run this script, update README.md's table, delete the old folder, and run
# `.venv/bin/pytest tests/api/test_docs_offline.py` (it fails on any new external URL).
set -euo pipefail
cd "$(dirname "$0")"

SWAGGER_UI_VERSION=5.35.0
REDOC_VERSION=2.5.4
KATEX_VERSION=0.19.1

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

vendor() {  # package version dest-folder source-path...
  local package=$1 version=$2 dest=$3
  shift 3
  (cd "$tmp" && npm pack --silent "$package@$version" >/dev/null && mkdir -p "$package" && tar xzf "$package-$version.tgz" -C "$package")
  rm -rf "$dest" && mkdir -p "$dest"
  for path in "$@"; do
    cp "$tmp/$package/package/$path" "$dest/"
  done
}

vendor swagger-ui-dist "$SWAGGER_UI_VERSION" "swagger-ui-dist-$SWAGGER_UI_VERSION" \
  LICENSE NOTICE swagger-ui-bundle.js swagger-ui-bundle.js.LICENSE.txt swagger-ui.css favicon-32x32.png
vendor redoc "$REDOC_VERSION" "redoc-$REDOC_VERSION" \
  LICENSE bundles/redoc.standalone.js bundles/redoc.standalone.js.LICENSE.txt
vendor katex "$KATEX_VERSION" "katex-$KATEX_VERSION" \
  LICENSE dist/katex.min.js dist/katex.min.css
cp -r "$tmp/katex/package/dist/fonts" "katex-$KATEX_VERSION/fonts"

sha256sum "swagger-ui-dist-$SWAGGER_UI_VERSION"/* "redoc-$REDOC_VERSION"/* "katex-$KATEX_VERSION"/LICENSE \
  "katex-$KATEX_VERSION"/*.* "katex-$KATEX_VERSION"/fonts/*
