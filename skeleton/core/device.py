"""Device selection shared by every stage: ``auto`` means CUDA when present, else CPU."""

from __future__ import annotations

import torch

from skeleton.core.errors import SkeletonError


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """Turn a user's ``--device`` value into a ``torch.device``.

    Args:
        device: ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"mps"``.

    Returns:
        The device; ``auto`` picks CUDA when available, then MPS, else CPU.
    """
    if isinstance(device, torch.device):
        return device
    name = device.strip().lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        resolved = torch.device(name)
    except RuntimeError as error:
        raise SkeletonError(f"unknown device {device!r}: use auto, cpu, cuda or cuda:N") from error
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise SkeletonError(f"device {device!r} asked for, but CUDA is not available on this machine")
    mps = getattr(torch.backends, "mps", None)
    if resolved.type == "mps" and (mps is None or not mps.is_available()):
        raise SkeletonError(f"device {device!r} asked for, but MPS (Apple silicon) is not available on this machine")
    return resolved
