"""scripts/download_coco.sh checks each zip's SHA-1 before unpacking it (no network: the downloads
are laid in place with their completion markers, as an interrupted earlier run leaves them)."""
import shutil
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "download_coco.sh"

pytestmark = pytest.mark.skipif(not all(shutil.which(tool) for tool in ("bash", "unzip", "sha1sum")),
                                reason="needs bash, unzip and sha1sum")


def test_a_zip_with_the_wrong_sha1_is_removed_and_the_script_stops(tmp_path):
    downloads = tmp_path / "coco" / "downloads"
    downloads.mkdir(parents=True)
    damaged = downloads / "annotations_trainval2017.zip"
    damaged.write_bytes(b"not the published annotations")
    (downloads / "annotations_trainval2017.zip.complete").touch()
    result = subprocess.run(["bash", str(SCRIPT), str(tmp_path / "coco")], capture_output=True, text=True,
                            env={"PATH": "/usr/bin:/bin", "COCO_BASE_URL": "http://127.0.0.1:9"})
    assert result.returncode == 2
    actual = "5652217ff6f5ecabd5a0ead470e8aaab023943a8"  # sha1sum of the bytes above
    assert result.stderr == (f"error: {damaged}: SHA-1 {actual}, expected 8551ee4bb5860311e79dace7e79cb91e432e78b3; "
                             f"the file was removed, run the script again\n")
    assert not damaged.exists() and not (downloads / "annotations_trainval2017.zip.complete").exists()
    assert not (tmp_path / "coco" / "annotations").exists()  # nothing unpacked
