"""A run folder: every file in it tied to one run, so that nothing stale is ever reused.

A run is identified by four parts (`identity`): the SHA-256 of the dense model's
state, the SHA-256 of the data (training, validation, test), the seed, and the
settings (pruning and fine-tuning configuration, reference, hardware). ``run.json``
is written first, before any long phase; every checkpoint in the folder
(``reference.pt``, ``reference-training.pt``, ``pruner-state.pt``) stores the same
identity and is refused when it differs, with one line that names the file and the
part (``check_identity``). A folder is used for a new run only when it is empty, new,
or already one of ours (``open_run``): a user's files are never overwritten.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from nnjoules.errors import InputError
from nnjoules.io import write_text_atomic

RUN_FILE = "run.json"
FORMAT = "nnjoules-prune-run"
PARTS = ("model", "data", "seed", "settings")
# Settings added after run folders were first written, with the value an older folder
# (which lacks them) was run with: such a folder still resumes.
LATER_SETTINGS = {"dataflow": "row-stationary"}


def model_digest(model: nn.Module) -> str:
    """SHA-256 of a model's state (names, dtypes, shapes and values), hex."""
    h = hashlib.sha256()
    for name, value in model.state_dict().items():
        _update(h, name, value)
    return h.hexdigest()


def data_digest(*datasets: Any) -> str:
    """SHA-256 of datasets (None allowed), hex: every image and label of an
    `ImageTensorDataset`, else the size and 64 evenly spread items."""
    h = hashlib.sha256()
    for data in datasets:
        if data is None:
            h.update(b"none")
            continue
        h.update(str(len(data)).encode())
        keys = ("images", "labels", "mean", "std")
        tensors = {k: t for k in keys if isinstance(t := getattr(data, k, None), Tensor)}
        if len(tensors) == len(keys):
            for key, t in tensors.items():
                _update(h, key, t)
            continue
        count = min(64, len(data))
        for i in range(count):
            item = data[i * len(data) // count]
            for j, part in enumerate(item if isinstance(item, (tuple, list)) else (item,)):
                _update(h, f"{i}.{j}", torch.as_tensor(part))
    return h.hexdigest()


def _update(h: Any, name: str, value: Tensor) -> None:
    t = value.detach().cpu().contiguous()
    h.update(f"{name}:{t.dtype}:{tuple(t.shape)};".encode())
    if t.numel():
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())


def identity(model: nn.Module, datasets: tuple[Any, ...], seed: int,
             settings: dict[str, Any]) -> dict[str, Any]:
    """The identity of a run (plain values; ``settings`` JSON-ready, seed left out)."""
    plain = json.loads(json.dumps(settings, sort_keys=True, default=str))
    return {"model": model_digest(model), "data": data_digest(*datasets), "seed": int(seed),
            "settings": plain}


def check_identity(path: Path, saved: Any, current: dict[str, Any]) -> None:
    """Refuse ``path`` when the identity it stores is not ``current``.

    Raises:
        InputError: ``"{path}: written by another run (seed 1 there, 0 now); ..."``.
    """
    if not isinstance(saved, dict):
        raise InputError(f"{path}: written by another run or another version of nnjoules "
                         "(it records no run identity); use a new folder")
    for part in PARTS:
        was, now = saved.get(part), current[part]
        if part == "settings" and isinstance(was, dict):
            was = {**LATER_SETTINGS, **was}
        if was == now:
            continue
        if part == "settings" and isinstance(was, dict):
            # what kind of pruning differs is named first: it explains the rest
            keys = sorted(set(was) | set(now),
                          key=lambda k: (k not in ("granularity", "method"), str(k)))
            key = next(k for k in keys if was.get(k) != now.get(k))
            what = f"setting {key}: {was.get(key)!r} there, {now.get(key)!r} now"
        elif part in ("model", "data"):
            what = f"{part} SHA-256 {str(was)[:12]}... there, {now[:12]}... now"
        else:
            what = f"{part} {was!r} there, {now!r} now"
        raise InputError(f"{path}: written by another run ({what}); use a new folder or the "
                         "run's own inputs")


def read_manifest(folder: Path) -> dict[str, Any]:
    """The ``run.json`` of ``folder``.

    Raises:
        InputError: the folder is not a run folder of nnjoules.
    """
    path = folder / RUN_FILE
    if not folder.is_dir():
        raise InputError(f"{folder}: no such run folder")
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise InputError(f"{folder}: not a pruning run folder (no {RUN_FILE})") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise InputError(f"{path}: unreadable ({type(err).__name__})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise InputError(f"{path}: not the manifest of a pruning run")
    return data


def check_new_folder(folder: Path) -> None:
    """Refuse ``folder`` for a new run unless it is new or empty.

    Raises:
        InputError: it holds a run (resume it) or other files (never overwritten).
    """
    if folder.exists() and not folder.is_dir():
        raise InputError(f"{folder}: exists and is not a folder")
    if not folder.is_dir() or not any(folder.iterdir()):
        return
    if (folder / RUN_FILE).is_file():
        raise InputError(f"{folder} already holds a run; continue it with --resume {folder} "
                         "or choose another --out")
    raise InputError(f"{folder}: not empty and not a pruning run folder (no {RUN_FILE}); "
                     "choose a new or empty folder (its files are never overwritten)")


def check_run(folder: Path, ident: dict[str, Any], *, resume: bool) -> bool:
    """Whether ``folder`` already holds this run; writes nothing (see `open_run`).

    Raises:
        InputError: see `check_new_folder` and `check_identity`.
    """
    if (folder / RUN_FILE).is_file():
        manifest = read_manifest(folder)
        check_identity(folder / RUN_FILE, manifest.get("identity"), ident)
        if not resume and (folder / "pruner-state.pt").is_file():
            raise InputError(f"{folder} already holds a run; continue it with resume=True "
                             "(--resume) or choose another folder")
        return True
    check_new_folder(folder)
    return False


def open_run(folder: Path, ident: dict[str, Any], *, resume: bool,
             extra: dict[str, Any] | None = None) -> None:
    """Start a run in ``folder`` (write ``run.json``) or check that it is this run.

    ``resume=False`` needs a new or empty folder, or one whose ``run.json`` is this
    run and holds no pruning state yet (a caller that wrote the manifest itself).

    Raises:
        InputError: see `check_new_folder` and `check_identity`.
    """
    if check_run(folder, ident, resume=resume):
        return
    folder.mkdir(parents=True, exist_ok=True)
    manifest = {"format": FORMAT, "identity": ident, **(extra or {})}
    write_text_atomic(folder / RUN_FILE, json.dumps(manifest, indent=2, default=str) + "\n")
