#!/usr/bin/env bash
# Refresh the dashboard's vendored JavaScript and CSS from npm, with their licences.
#
# Run by a maintainer when upgrading (the files are committed; installing mailtally never
# runs this, and the dashboard loads nothing from a CDN):
#
#     bash src/mailtally/web/vendor.sh
#
# Pinned versions: htmx 2 (the 2.x attribute names; htmx 4 renamed them) and uPlot 1.6.
set -euo pipefail
HTMX=2.0.11
UPLOT=1.6.32

here="$(cd "$(dirname "$0")" && pwd)"
out="$here/static/vendor"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

cd "$work"
npm pack --silent "htmx.org@$HTMX" "uplot@$UPLOT" >/dev/null
mkdir htmx uplot
tar -xzf "htmx.org-$HTMX.tgz" -C htmx --strip-components=1
tar -xzf "uplot-$UPLOT.tgz" -C uplot --strip-components=1

mkdir -p "$out"
cp htmx/dist/htmx.min.js "$out/htmx.min.js"
cp htmx/LICENSE "$out/htmx.LICENSE"
cp uplot/dist/uPlot.iife.min.js "$out/uPlot.iife.min.js"
cp uplot/dist/uPlot.min.css "$out/uPlot.min.css"
cp uplot/LICENSE "$out/uPlot.LICENSE"
printf 'htmx.org %s\nuplot %s\n' "$HTMX" "$UPLOT" > "$out/VERSIONS"
echo "vendored into $out:"
ls -l "$out"
