#!/usr/bin/env bash
# Download MosaicML's Evaluation Gauntlet data (llm-foundry's scripts/eval/local_data) at a pinned
# commit and check it against scripts/gauntlet-sha256.txt. Needs internet (GitHub).
# Usage: bash scripts/fetch-gauntlet.sh [DEST]   (default: data/gauntlet/local_data)
# then: export GAUNTLET_DATA_DIR=DEST
set -euo pipefail
commit=8c8dd48f72168c5d51e2f7b151595892a8fba43d
here="$(cd "$(dirname "$0")" && pwd)"
dest="${1:-data/gauntlet/local_data}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
url="https://codeload.github.com/mosaicml/llm-foundry/tar.gz/$commit"
echo "fetching llm-foundry@$commit ..." >&2
curl -fsSL "$url" -o "$tmp/foundry.tar.gz"
tar -xzf "$tmp/foundry.tar.gz" -C "$tmp" "llm-foundry-$commit/scripts/eval/local_data"
src="$tmp/llm-foundry-$commit/scripts/eval/local_data"
bad=0
while read -r sum path; do
  case "$sum" in \#*|"") continue ;; esac
  if [ ! -f "$src/$path" ]; then echo "missing: $path" >&2; bad=1; continue; fi
  echo "$sum  $src/$path" | sha256sum -c --quiet - || { echo "checksum mismatch: $path" >&2; bad=1; }
done < "$here/gauntlet-sha256.txt"
[ "$bad" = 0 ] || { echo "fetch-gauntlet: verification failed; nothing installed" >&2; exit 1; }
unpinned=$(cd "$src" && find . -name '*.jsonl' | sed 's#^\./##' | sort | comm -23 - <(grep -v '^#' "$here/gauntlet-sha256.txt" | awk '{print $2}' | sort) | wc -l)
mkdir -p "$(dirname "$dest")"
rm -rf "$dest.tmp" && cp -r "$src" "$dest.tmp" && rm -rf "$dest" && mv "$dest.tmp" "$dest"
echo "installed $dest ($unpinned file(s) without a pinned checksum, e.g. squad/coqa/mmlu); export GAUNTLET_DATA_DIR=$dest" >&2
