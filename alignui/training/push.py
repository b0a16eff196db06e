"""Pushing a run's adapter to the Hugging Face Hub with a model card that states its lineage and metrics.

Owns: `model_card(run)` (YAML front matter the hub reads: base_model, library peft, tags; then the lineage:
snapshot id and sha256, base model, parent run, method and every setting; the held-out metrics, verdict and
watch-outs) and `push_adapter`, which stages adapter/ + README.md in a temporary folder and uploads it as
one commit to a (private by default) model repo.

Invariants: privileged (`require(identity, "push")`); only finished runs with an adapter are pushed; a
failure says what happened and leaves the local adapter untouched.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

from alignui.errors import UserError
from alignui.team.identity import Identity, require
from alignui.runs import RunDir

REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]{0,95}/[A-Za-z0-9][\w.-]{0,95}$")
CARD_METRICS = (("eval_rewards/accuracies", "held-out reward accuracy"), ("eval_rewards/margins", "held-out margin"),
                ("eval_loss", "held-out loss"), ("train_loss", "train loss"))


def model_card(run: RunDir) -> str:
    """README.md for the adapter repo."""
    method, settings = run.read_config()
    lineage, status = run.read_lineage(), run.read_status()
    summary = status.get("summary") or {}
    metrics: dict[str, Any] = {**(summary.get("train") or {}), **(summary.get("eval") or {})}
    base = lineage.get("base_model") or settings.get("base_model") or "unknown"
    front = ["---", "library_name: peft", f"base_model: {base}" if "/" in str(base) else "", "tags:", "- alignui",
             f"- {method or 'lora'}", "- lora", "---"]
    lines = [*[f for f in front if f], "", f"# {run.id}", "",
             f"A LoRA adapter trained with **{(method or '?').upper()}** by alignui on human preference votes.", "",
             "## Lineage", "",
             f"- snapshot: `{lineage.get('snapshot')}` (sha256 `{lineage.get('snapshot_sha256')}`)",
             f"- base model: `{base}`", f"- parent run: `{lineage.get('parent_run') or 'none'}`",
             f"- trained: {lineage.get('created_at')} -> {status.get('finished_at')}, {summary.get('steps')} steps", "",
             "## Results", ""]
    lines += [f"- {label}: {metrics[key]:.4g}" for key, label in CARD_METRICS if isinstance(metrics.get(key), float)]
    lines += [f"- verdict: {summary.get('verdict') or 'n/a'}", *[f"- watch-out: {w}" for w in summary.get("watchouts")
                                                                  or []], "", "## Settings", "", "```yaml"]
    lines += [f"{k}: {v}" for k, v in settings.items()] + ["```", "", "## Use", "", "```python",
                                                            "from peft import PeftModel",
                                                            "model = PeftModel.from_pretrained(base_model, "
                                                            "\"<this repo>\")", "```", ""]
    return "\n".join(lines)


def push_adapter(run: RunDir, repo: str, identity: Identity, *, token: str | None = None,
                 private: bool = True) -> str:
    """Upload the run's adapter and card to `repo` (owner/name); returns the repo URL."""
    require(identity, "push")
    repo = (repo or "").strip()
    if not REPO_ID.match(repo):
        raise UserError(f"{repo!r} is not a hub model repo id; use owner/name (the adapter stays at {run.adapter_dir})")
    if run.state != "done" or not run.has_adapter:
        raise UserError(f"run {run.id} has no finished adapter to push (state {run.state}); wait for it to finish")
    from alignui.data.hub_datasets import resolve_token

    token = resolve_token(token)
    if not token:
        raise UserError("no Hugging Face token: paste one, set HF_TOKEN, or run `huggingface-cli login`")
    folder = Path(tempfile.mkdtemp(prefix="alignui-adapter-"))
    try:
        shutil.copytree(run.adapter_dir, folder, dirs_exist_ok=True)
        (folder / "README.md").write_text(model_card(run))
        return _upload(repo, folder, token, private)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _upload(repo: str, folder: Path, token: str, private: bool) -> str:
    from huggingface_hub import HfApi

    api = HfApi(token=token)
    try:
        api.create_repo(repo, repo_type="model", private=private, exist_ok=True)
        api.upload_folder(repo_id=repo, repo_type="model", folder_path=str(folder),
                          commit_message="alignui adapter")
    except Exception as exc:  # the hub client raises many types for one cause (network, auth, quota)
        raise UserError(f"pushing to {repo} failed ({type(exc).__name__}: {str(exc)[:200]}); the adapter is "
                        f"still saved locally") from exc
    return f"https://huggingface.co/{repo}"
