#!/usr/bin/env bash
# Download and unpack COCO 2017 (train + val images, instance annotations) into data/coco/:
#   data/coco/train2017/*.jpg   data/coco/val2017/*.jpg
#   data/coco/annotations/instances_{train,val}2017.json
# About 19 GB of zips (18 GB train, 0.8 GB val, 0.25 GB annotations) and 20 GB unpacked.
# Downloads resume where they stopped (wget -c / curl -C -); finished steps are remembered with
# marker files in data/coco/downloads/, so running the script again only does what is left.
# Usage: scripts/download_coco.sh [DEST]   (DEST defaults to data/coco next to this script;
#        set COCO_BASE_URL to use a mirror of images.cocodataset.org)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEST="${1:-$ROOT/data/coco}"
BASE_URL="${COCO_BASE_URL:-http://images.cocodataset.org}"  # override for a mirror
mkdir -p "$DEST/downloads"
if ! command -v unzip >/dev/null 2>&1; then
    echo "error: unzip is not installed" >&2
    exit 1
fi

fetch() {  # fetch URL FILE: resumable download, skipped once complete
    local url="$1" file="$2"
    if [ -e "$file.complete" ]; then
        echo "$(basename "$file") already downloaded"
        return
    fi
    echo "downloading $url"
    if command -v wget >/dev/null 2>&1; then
        wget -c -P "$(dirname "$file")" "$url"  # saves as the URL's file name, which is $file
    elif command -v curl >/dev/null 2>&1; then
        curl -fL -C - -o "$file" "$url"
    else
        echo "error: neither wget nor curl is installed" >&2
        exit 1
    fi
    touch "$file.complete"
}

unpack() {  # unpack ZIP: unzip into DEST once (an interrupted unzip is redone)
    local zip="$1"
    if [ -e "$zip.unpacked" ]; then
        echo "$(basename "$zip") already unpacked"
        return
    fi
    echo "unpacking $(basename "$zip")"
    unzip -q -o "$zip" -d "$DEST"
    touch "$zip.unpacked"
}

fetch "$BASE_URL/annotations/annotations_trainval2017.zip" "$DEST/downloads/annotations_trainval2017.zip"
unpack "$DEST/downloads/annotations_trainval2017.zip"
for split in val2017 train2017; do
    fetch "$BASE_URL/zips/$split.zip" "$DEST/downloads/$split.zip"
    unpack "$DEST/downloads/$split.zip"
done

echo "done: $DEST/{train2017,val2017,annotations}; the zips in $DEST/downloads can be deleted"
