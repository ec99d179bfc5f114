#!/usr/bin/env bash
# Look at a project's job summary as a reviewer does: run db-ci on it as GitHub Actions would
# (GITHUB_ACTIONS=true, GITHUB_STEP_SUMMARY set), render the markdown with cmark-gfm (GitHub's
# own GFM parser: tables, raw <details>/<code> HTML), and take a full-page screenshot with
# headless Chromium. Use it when changing the summary, beside the snapshot tests.
#
# Usage: scripts/summary-screenshot.sh PROJECT_DIR [OUT.png] [db-ci args…]
#   e.g. scripts/summary-screenshot.sh fixtures/polaris /tmp/polaris.png --backend local
# Needs (Debian): apt-get install cmark-gfm chromium fonts-noto-color-emoji
# Env: DB_CI (default: target/debug/db-ci, built when missing), WIDTH (default 1012, GitHub's
# summary column), HEIGHT (default: measured from the page, at most 16000).
set -euo pipefail

[ $# -ge 1 ] || { sed -n '2,11p' "$0" >&2; exit 2; }
project=$1
out=${2:-summary.png}
shift $(( $# >= 2 ? 2 : 1 ))
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
db_ci=${DB_CI:-$here/target/debug/db-ci}
width=${WIDTH:-1012}

for tool in cmark-gfm chromium; do
  command -v "$tool" >/dev/null || { echo "[summary-screenshot] $tool missing: apt-get install cmark-gfm chromium" >&2; exit 3; }
done
[ -x "$db_ci" ] || (cd "$here" && cargo build --quiet)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
summary=$work/summary.md
# The verdict does not matter here: a failing project is the interesting one.
GITHUB_ACTIONS=true GITHUB_STEP_SUMMARY=$summary "$db_ci" run "$project" "$@" >"$work/log" 2>&1 || true
[ -s "$summary" ] || { echo "[summary-screenshot] no summary written; the run said:" >&2; cat "$work/log" >&2; exit 1; }

# GitHub's look, roughly: its fonts, table borders, code background, the summary's width.
{
  cat <<'HTML'
<!doctype html><meta charset="utf-8"><style>
body{font-family:-apple-system,"Segoe UI","Noto Sans",Helvetica,Arial,sans-serif,"Noto Color Emoji";
font-size:14px;line-height:1.5;color:#1f2328;margin:16px;max-width:980px}
table{border-collapse:collapse;margin:0 0 16px;display:block;overflow:auto}
th,td{border:1px solid #d1d9e0;padding:6px 13px}tr:nth-child(2n){background:#f6f8fa}
code,pre{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,"Liberation Mono",monospace;font-size:85%}
code{background:#eff1f3;border-radius:6px;padding:.2em .4em}pre{background:#f6f8fa;padding:16px;overflow:auto}
pre code{background:none;padding:0}h2{border-bottom:1px solid #d1d9e0;padding-bottom:.3em}
details{margin:0 0 8px}summary{cursor:pointer}
</style>
HTML
  cmark-gfm --unsafe --extension table --extension strikethrough --extension autolink "$summary"
  # Chromium cannot size a screenshot to the page: the page writes its height into the DOM.
  echo '<script>document.body.dataset.height=Math.ceil(document.body.getBoundingClientRect().bottom)</script>'
} >"$work/summary.html"

height=${HEIGHT:-}
if [ -z "$height" ]; then
  height=$(chromium --headless --no-sandbox --disable-gpu --window-size="$width,200" \
    --dump-dom "file://$work/summary.html" 2>/dev/null | grep -o 'data-height="[0-9]*"' | grep -o '[0-9]*' || true)
  height=${height:-4000}
  height=$(( height + 16 ))
  [ "$height" -le 16000 ] || height=16000
fi
chromium --headless --no-sandbox --disable-gpu --hide-scrollbars \
  --window-size="$width,$height" --screenshot="$work/shot.png" "file://$work/summary.html" \
  >"$work/chromium.log" 2>&1 || { cat "$work/chromium.log" >&2; exit 1; }
mv "$work/shot.png" "$out"
echo "[summary-screenshot] $out (${width}x${height}) from $(wc -c <"$summary") bytes of summary"
