"""The Hugging Face Hub, both ways: a dataset id to import, a snapshot to push.

Owns: failing fast and clearly when the hub cannot be used (offline mode,
no network, no token, unknown repo), reading a hub dataset into rows, and
pushing a snapshot (parquet per split, the dataset card, the manifest) as
one commit to a dataset repo, private by default.

Invariants: a failed push never touches the local snapshot, and its message
says where the local snapshot is; the token is never logged or stored.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path

from alignui import config
from alignui.data.readers import SourceData, dataset_rows
from alignui.data.records import SourceError
from alignui.errors import UserError

REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


class PushError(UserError):
    """The snapshot could not be pushed; the local snapshot is intact (the message says where)."""


def hub_offline() -> bool:
    return config.hub_offline()


def _why(exc: Exception) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    name = type(exc).__name__
    if "offline" in name.lower() or "offline" in text.lower():
        return "offline mode is on (HF_HUB_OFFLINE=1)"
    if any(k in name for k in ("Connect", "Timeout", "Network", "Transport")):
        return f"the Hugging Face Hub cannot be reached ({text or name})"
    return f"{name}: {text}"[:300]


def read_hub(dataset_id: str, split: str | None) -> SourceData:
    """Rows of a hub dataset (one split), or a one-line SourceError when the hub cannot be used."""
    advice = (f"download it where the hub is reachable (datasets.load_dataset('{dataset_id}').save_to_disk(DIR)) "
              "and import DIR")
    if hub_offline():
        raise SourceError(f"cannot download {dataset_id}: offline mode is on (HF_HUB_OFFLINE=1); {advice}")
    from huggingface_hub import HfApi
    from huggingface_hub.errors import RepositoryNotFoundError

    try:
        HfApi().dataset_info(dataset_id)  # one quick request: fails fast when the hub is unreachable
    except RepositoryNotFoundError as exc:
        raise SourceError(f"there is no dataset {dataset_id} on the hub (or it is private: set HF_TOKEN)") from exc
    except Exception as exc:  # network layer: any failure means "cannot download", said in one line
        raise SourceError(f"cannot download {dataset_id}: {_why(exc)}; {advice}") from exc
    from datasets import load_dataset

    try:
        data = load_dataset(dataset_id)
    except Exception as exc:  # the datasets library raises many types for one cause
        raise SourceError(f"cannot load {dataset_id} from the hub: {_why(exc)}; {advice}") from exc
    return dataset_rows(data, dataset_id, split)


def resolve_token(token: str | None) -> str | None:
    """The token given (UI), else HF_TOKEN, else the one `huggingface-cli login` saved."""
    if token and token.strip():
        return token.strip()
    if config.hub_token():
        return config.hub_token()
    from huggingface_hub import get_token

    return get_token()


def _stage(ref, card: str) -> Path:
    """A folder laid out the way the hub's dataset viewer reads it: data/<split>-*.parquet, README.md, manifest."""
    from alignui.data.snapshot import MANIFEST, load_snapshot

    folder = Path(tempfile.mkdtemp(prefix="alignui-push-"))
    (folder / "data").mkdir()
    for split, part in load_snapshot(ref).items():
        part.to_parquet(str(folder / "data" / f"{split}-00000-of-00001.parquet"))
    (folder / "README.md").write_text(card)
    shutil.copy(ref.path / MANIFEST, folder / MANIFEST)
    return folder


def upload(repo: str, folder: Path, token: str, private: bool) -> str:
    """Create the dataset repo (private unless asked) and upload the folder as one commit; returns its URL."""
    from huggingface_hub import HfApi

    api = HfApi(token=token)
    api.create_repo(repo, repo_type="dataset", private=private, exist_ok=True)
    api.upload_folder(repo_id=repo, repo_type="dataset", folder_path=str(folder),
                      commit_message="alignui snapshot")
    return f"https://huggingface.co/datasets/{repo}"


def push_snapshot(ref, repo: str, *, card: str, token: str | None = None, private: bool = True) -> str:
    """Push a snapshot to `repo`; PushError (saying where the local copy is) on any failure."""
    local = f"the local snapshot {ref.id} is saved at {ref.path}"
    if not REPO_ID.match(repo or ""):
        raise PushError(f"{repo!r} is not a hub dataset repo id; use owner/name ({local})")
    token = resolve_token(token)
    if not token:
        raise PushError(f"no Hugging Face token: set HF_TOKEN (or paste a token in the Export panel) and push again; "
                        f"{local}")
    if hub_offline():
        raise PushError(f"cannot push to {repo}: offline mode is on (HF_HUB_OFFLINE=1); {local}")
    folder = _stage(ref, card)
    try:
        return upload(repo, folder, token, private)
    except Exception as exc:  # network/auth layer: every failure becomes one line that keeps the local path
        raise PushError(f"pushing to {repo} failed: {_why(exc)}; {local}") from exc
    finally:
        shutil.rmtree(folder, ignore_errors=True)
