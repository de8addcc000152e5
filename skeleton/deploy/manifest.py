"""An exported directory (``DIR/onnx/``): finding it and reading its manifest, every file checked
against its sha256."""

from __future__ import annotations

import hashlib
from pathlib import Path

from skeleton.core.errors import SkeletonError
from skeleton.core.file_names import MANIFEST_FILE, ONNX_DIR
from skeleton.core.reports import Manifest


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def resolve_onnx_dir(directory: str | Path) -> Path:
    """Accept either a compressed model directory (with ``onnx/``) or the ``onnx/`` directory itself."""
    directory = Path(directory)
    if (directory / MANIFEST_FILE).is_file():
        return directory
    if (directory / ONNX_DIR / MANIFEST_FILE).is_file():
        return directory / ONNX_DIR
    if not directory.exists():
        raise SkeletonError(f"directory not found: {directory}")
    raise SkeletonError(
        f"{directory} holds no exported model ({ONNX_DIR}/{MANIFEST_FILE}); run 'skeleton export {directory}'"
    )


def read_manifest(onnx_dir: Path, verify: bool = True) -> Manifest:
    """The manifest, with every listed file's sha256 checked when ``verify``."""
    manifest = Manifest.load(onnx_dir / MANIFEST_FILE)
    if verify:
        for name, expected in manifest.files.items():
            path = onnx_dir / name
            if not path.is_file():
                raise SkeletonError(f"{path} is missing (listed in {MANIFEST_FILE})")
            if sha256_file(path) != expected:
                raise SkeletonError(
                    f"{path} does not match its checksum in {MANIFEST_FILE}: the file was changed or damaged"
                )
    return manifest
