#!/usr/bin/env bash
# Download and unpack COCO 2017 (train + val images, instance annotations) into data/coco/:
#   data/coco/train2017/*.jpg   data/coco/val2017/*.jpg
#   data/coco/annotations/instances_{train,val}2017.json
# About 19 GB of zips (18 GB train, 0.8 GB val, 0.25 GB annotations) and 20 GB unpacked.
# Downloads resume where they stopped (wget -c / curl -C -); finished steps are remembered with
# marker files in data/coco/downloads/, so running the script again only does what is left.
# Each zip is checked against the SHA-1 the COCO site publishes before it is unpacked; a
# mismatch removes the download and stops (run the script again to fetch it anew).
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

declare -A SHA1=(  # as published for the COCO 2017 zips
    [annotations_trainval2017.zip]=8551ee4bb5860311e79dace7e79cb91e432e78b3
    [val2017.zip]=4950dc9d00dbe1c933ee0170f5797584351d2a41
    [train2017.zip]=10ad623668ab00c62c096f0ed636d6aff41faca5
)

verify() {  # verify FILE: its SHA-1 against the published one, checked once
    local file="$1" name expected actual
    name="$(basename "$file")"
    expected="${SHA1[$name]}"
    if [ -e "$file.verified" ]; then
        return
    fi
    echo "checking the SHA-1 of $name"
    actual="$(sha1sum "$file" | cut -d' ' -f1)"
    if [ "$actual" != "$expected" ]; then
        rm -f "$file" "$file.complete"
        echo "error: $file: SHA-1 $actual, expected $expected; the file was removed, run the script again" >&2
        exit 2
    fi
    touch "$file.verified"
}

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
    verify "$zip"
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
