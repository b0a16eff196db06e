"""AppConfig: what the running app needs to know, from flags and environment.

Owns: the precedence flag > environment > default, the data-root choice
(explicit, else /data on a Space with persistent storage, else ./storage),
validation with messages that say how to fix the value, and the one-line
description printed at start.

Invariant: an AppConfig that exists is valid (frozen, checked in __post_init__).
"""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path

from alignui.errors import UserError

DEFAULT_MODEL = "HuggingFaceTB/SmolLM2-135M-Instruct"
DEMO_MODEL = "demo"
DEVICES = ("auto", "cpu", "cuda", "mps")


NAME_PATTERN = re.compile(r"^[\w .@+-]{1,64}$")  # a user name: what a sign-in, an admin list or a typed name may hold
ENDPOINT_NAME = re.compile(r"^[A-Za-z0-9][\w.-]{0,63}$")  # a generator name: short, no spaces, ',', '=' or '#'
ENDPOINT_PREFIX = "endpoint:"  # --model endpoint:NAME serves a registered endpoint as THE model
ENDPOINT_FORM = "NAME=BASE_URL#MODEL, e.g. vllm=http://localhost:8000/v1#Qwen/Qwen2.5-0.5B-Instruct"


class ConfigError(ValueError):
    """A setting the user gave is wrong; the message says which and what to do."""


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


def default_cache_dir(env: Mapping[str, str] | None = None) -> Path:
    """ALIGNUI_CACHE_DIR, else $XDG_CACHE_HOME/alignui, else ~/.cache/alignui: what one machine builds once
    (the demo model) and every data root, test and training job reuses."""
    env = os.environ if env is None else env
    if env.get("ALIGNUI_CACHE_DIR"):
        return Path(env["ALIGNUI_CACHE_DIR"]).expanduser()
    base = Path(env["XDG_CACHE_HOME"]).expanduser() if env.get("XDG_CACHE_HOME") else Path.home() / ".cache"
    return base / "alignui"


def default_storage(env: Mapping[str, str]) -> Path:
    """ALIGNUI_STORAGE, else /data on a Space with persistent storage, else ./storage."""
    if env.get("ALIGNUI_STORAGE"):
        return Path(env["ALIGNUI_STORAGE"])
    data = Path("/data")
    if env.get("SPACE_ID") and data.is_dir() and os.access(data, os.W_OK):
        return data / "alignui"
    return Path("storage")


@dataclass(frozen=True)
class EndpointSpec:
    """One OpenAI-compatible endpoint registered as a generator (`--endpoint NAME=BASE_URL#MODEL`). Holds no key."""

    name: str
    base_url: str
    model: str

    def __str__(self) -> str:
        return f"{self.name}={self.base_url}#{self.model}"


def parse_endpoint(text: str) -> EndpointSpec:
    """`NAME=BASE_URL#MODEL` -> EndpointSpec; ConfigError (one line, with the expected form) otherwise."""
    from urllib.parse import urlsplit

    name, _, rest = text.strip().partition("=")
    url, _, model = rest.rpartition("#")
    name, url, model = name.strip(), url.strip(), model.strip()
    shown = text.strip()[:80]
    if not (name and url and model):
        raise ConfigError(f"endpoint {shown!r} is not {ENDPOINT_FORM}")
    if not ENDPOINT_NAME.match(name) or name == "base":
        raise ConfigError(f"endpoint name {name!r} must be 1-64 letters, digits, '.', '-' or '_' (and not 'base')")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"endpoint {name!r}: {url[:60]!r} is not an http(s) URL; write {ENDPOINT_FORM}")
    if parts.username or parts.password or parts.query:
        raise ConfigError(f"endpoint {name!r}: put no credentials or query in the URL; the key comes from "
                          "ALIGNUI_ENDPOINT_API_KEY (else HF_TOKEN, else OPENAI_API_KEY)")
    return EndpointSpec(name, url.rstrip("/"), model)


def parse_endpoints(flags: list[str] | None, env_value: str | None) -> tuple[EndpointSpec, ...]:
    """The --endpoint flags if any were given, else ALIGNUI_ENDPOINTS (comma-separated); names must be unique."""
    texts = list(flags or []) or [t for t in (env_value or "").split(",") if t.strip()]
    specs = tuple(parse_endpoint(t) for t in texts)
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise ConfigError(f"endpoint names must be unique, got {names}; give each --endpoint its own NAME")
    return specs


def needs_local_weights(model: str, spec: EndpointSpec | None = None) -> str:
    """The one line for a training run whose base model would be `--model endpoint:NAME` (no weights here)."""
    shown = model + (f" ({spec.model})" if spec is not None else "")
    return (f"the served model is {shown}; training needs local weights: set base_model to a hub id or path "
            "(the Train tab's Base model, or --set base_model=...)")


@dataclass(frozen=True)
class AppConfig:
    storage: Path = field(default=Path("storage"), metadata={"help": "data root: database, snapshots, runs, models"})
    model: str = field(default=DEFAULT_MODEL, metadata={
        "help": "hub id or local path of the base model; 'demo' for the built-in offline model; endpoint:NAME "
                "for a registered --endpoint as the served model (no local weights)"})
    host: str = field(default="127.0.0.1", metadata={"help": "interface the web server binds to"})
    port: int = field(default=7860, metadata={"help": "port of the web server"})
    device: str = field(default="auto", metadata={"help": "auto, cpu, cuda or mps"})
    load_in_4bit: bool = field(default=False, metadata={"help": "load the base model in 4-bit (CUDA + bitsandbytes)"})
    offline: bool = field(default=False, metadata={"help": "never contact the Hugging Face Hub"})
    cpu_batch_parallel: bool = field(default=False, metadata={
        "help": "on CPU, run the two rows of a paired decode step on two cores (alignui.serving.cpu_decode; "
                "same outputs; measure it with bench/pair_generation.py first: it pays on some hosts only)"})
    cpu_threads: int = field(default=0, metadata={
        "help": "threads torch runs the served model on, on CPU (--cpu-threads, ALIGNUI_CPU_THREADS); 0: automatic: "
                "one for the built-in demo model (its decode steps are too small to split, and an idle OpenMP "
                "thread spins on the other core: bench/cpu_threads.py), torch's default (one per core) otherwise"})
    batching: bool = field(default=True, metadata={
        "help": "join concurrent generations (all annotators, the arena) into shared decode steps "
                "(alignui.serving.scheduler); off (--no-batching, ALIGNUI_BATCHING=0): one request at a time"})
    decode_process: bool = field(default=False, metadata={
        "help": "CPU only: run the shared decode steps in a process of their own (alignui.serving.decode_process), "
                "off the web server's GIL; it holds a second copy of the weights (--decode-process, "
                "ALIGNUI_DECODE_PROCESS=1; measure with bench/concurrent_annotators.py)"})
    cache_dir: Path = field(default_factory=default_cache_dir, metadata={
        "help": "per-machine cache: the demo model is built here once (ALIGNUI_CACHE_DIR; default "
                "$XDG_CACHE_HOME/alignui or ~/.cache/alignui)"})
    hf_endpoint: str = field(default="https://huggingface.co", metadata={
        "help": "the Hub's address, probed once at start to tell offline from online (HF_ENDPOINT)"})
    space_id: str | None = field(default=None, metadata={"help": "set by Hugging Face Spaces"})
    # -- identity, roles, limits and Spaces (issue 8; parsing lives in alignui/team/identity.py) --------------
    admins: frozenset[str] = field(default=frozenset(), metadata={
        "help": "names with the admin role (ALIGNUI_ADMINS, comma-separated; on a Space the owner by default); "
                "empty: nobody configured, everyone is admin (a single-user local install)"})
    users: tuple[tuple[str, str], ...] = field(default=(), repr=False, metadata={
        "help": "login accounts as (name, password) (ALIGNUI_USERS: 'ann:pw,bob:pw' or a file, one per line); "
                "empty: no login page", "secret": True})
    oauth: bool = field(default=False, metadata={
        "help": "sign in with Hugging Face (on a Space whose README says hf_oauth: true)"})
    max_prompt_chars: int = field(default=4000, metadata={
        "help": "longest prompt accepted, in characters (ALIGNUI_MAX_PROMPT_CHARS)"})
    rate_limit_per_minute: int = field(default=60, metadata={
        "help": "generations one user may start per minute (ALIGNUI_RATE_LIMIT); 0 turns the limit off"})
    max_upload_mb: float = field(default=50.0, metadata={
        "help": "largest file the web app accepts, in MB (ALIGNUI_MAX_UPLOAD_MB)"})
    backup_repo: str | None = field(default=None, metadata={
        "help": "private hub dataset that snapshots are backed up to (ALIGNUI_BACKUP_REPO, e.g. me/alignui-backup)"})
    backup_every_minutes: int = field(default=0, metadata={
        "help": "back up to backup_repo every N minutes (ALIGNUI_BACKUP_EVERY); 0: no timer"})
    backup_every_votes: int = field(default=50, metadata={
        "help": "with backup_repo: also back up once N votes were saved since the last backup "
                "(ALIGNUI_BACKUP_EVERY_VOTES); 0: no vote trigger"})
    import_dirs: tuple[Path, ...] = field(default=(), metadata={
        "help": "server folders the web app's import may read typed paths from (ALIGNUI_IMPORT_DIRS, separated by "
                f"'{os.pathsep}'); empty: uploads and hub dataset ids only. The command line is not confined"})
    hf_token: str | None = field(default=None, repr=False, metadata={
        "help": "Hugging Face token for pushing (HF_TOKEN, a Space secret)", "secret": True})
    # -- OpenAI-compatible endpoints as generators (issue 14; alignui/serving/endpoints.py) -------------------
    endpoints: tuple[EndpointSpec, ...] = field(default=(), metadata={
        "help": "generators served elsewhere: --endpoint NAME=BASE_URL#MODEL (repeatable; ALIGNUI_ENDPOINTS, "
                "comma-separated)"})
    endpoint_api_key: str | None = field(default=None, repr=False, metadata={
        "help": "key sent to the endpoints (ALIGNUI_ENDPOINT_API_KEY, else HF_TOKEN, else OPENAI_API_KEY)",
        "secret": True})

    def __post_init__(self):
        object.__setattr__(self, "storage", Path(self.storage).expanduser())
        object.__setattr__(self, "cache_dir", Path(self.cache_dir).expanduser())
        if not isinstance(self.port, int) or not 1 <= self.port <= 65535:
            raise ConfigError(f"port must be a number from 1 to 65535, got {self.port!r}; pass --port 7860")
        if self.device not in DEVICES:
            raise ConfigError(f"device must be one of {', '.join(DEVICES)}, got {self.device!r}")
        if not str(self.model).strip():
            raise ConfigError(f"model is empty; pass --model with a hub id, a local path or '{DEMO_MODEL}'")
        if not self.host.strip():
            raise ConfigError("host is empty; pass --host 127.0.0.1 (or 0.0.0.0 to listen on all interfaces)")
        object.__setattr__(self, "admins", frozenset(self.admins))
        object.__setattr__(self, "import_dirs", tuple(Path(d).expanduser().resolve() for d in self.import_dirs))
        for folder in self.import_dirs:
            if not folder.is_dir():
                raise ConfigError(f"ALIGNUI_IMPORT_DIRS lists {folder}, which is not a directory; list existing "
                                  f"folders separated by '{os.pathsep}'")
        object.__setattr__(self, "users", tuple(tuple(u) for u in self.users))
        if not isinstance(self.cpu_threads, int) or isinstance(self.cpu_threads, bool) or self.cpu_threads < 0:
            raise ConfigError(f"cpu_threads must be a whole number >= 0 (0: automatic), got {self.cpu_threads!r}; "
                              "e.g. --cpu-threads 2")
        for name, low in (("max_prompt_chars", 1), ("rate_limit_per_minute", 0), ("backup_every_minutes", 0),
                          ("backup_every_votes", 0)):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < low:
                raise ConfigError(f"{name} must be a whole number >= {low}, got {getattr(self, name)!r}")
        if not self.max_upload_mb > 0:
            raise ConfigError(f"max_upload_mb must be above 0, got {self.max_upload_mb!r}; e.g. ALIGNUI_MAX_UPLOAD_MB=50")
        object.__setattr__(self, "endpoints", tuple(
            e if isinstance(e, EndpointSpec) else parse_endpoint(str(e)) for e in self.endpoints))
        if len({e.name for e in self.endpoints}) != len(self.endpoints):
            raise ConfigError("endpoint names must be unique; give each --endpoint its own NAME")
        if str(self.model).startswith(ENDPOINT_PREFIX):
            self._check_served_endpoint()
        if self.backup_every_minutes and not self.backup_repo:
            raise ConfigError("ALIGNUI_BACKUP_EVERY needs ALIGNUI_BACKUP_REPO (a private dataset id such as me/backup)")

    def _check_served_endpoint(self) -> None:
        """`--model endpoint:NAME` names a registered endpoint (one line listing them otherwise)."""
        name = str(self.model)[len(ENDPOINT_PREFIX):].strip()
        if any(e.name == name for e in self.endpoints):
            object.__setattr__(self, "model", ENDPOINT_PREFIX + name)
            return
        known = ", ".join(e.name for e in self.endpoints)
        raise ConfigError(f"--model {self.model!r} names no registered endpoint "
                          + (f"(registered: {known}); use --model endpoint:<one of them>" if known else
                             f"(none is registered); add it with --endpoint {ENDPOINT_FORM}"))

    @property
    def served_endpoint(self) -> EndpointSpec | None:
        """The endpoint that IS the served model (`--model endpoint:NAME`: no local weights), else None."""
        name = str(self.model).removeprefix(ENDPOINT_PREFIX) if str(self.model).startswith(ENDPOINT_PREFIX) else None
        return next((e for e in self.endpoints if e.name == name), None)

    @property
    def demo_model_dir(self) -> Path:
        """Where the built-in demo model lives: once per machine, shared by every data root."""
        return self.cache_dir / "models" / "demo"

    @property
    def persistent(self) -> bool:
        """False on a Space whose data root is not persistent storage: data vanishes on restart."""
        return not self.space_id or str(self.storage.resolve()).startswith("/data")

    def describe(self) -> str:
        def value(name: str):
            return "[" + ", ".join(map(str, self.endpoints)) + "]" if name == "endpoints" else getattr(self, name)

        shown = [f"{f.name}={value(f.name)}" for f in fields(self)
                 if f.name != "space_id" and not f.metadata.get("secret")]  # never print passwords or tokens
        shown.append(f"login_accounts={len(self.users)}")
        return "alignui config: " + ", ".join(shown) + (f", space={self.space_id}" if self.space_id else "")


def config_from(args: argparse.Namespace | None = None, env: Mapping[str, str] | None = None, *,
                team: bool = True) -> AppConfig:
    """Build the config: flag, else environment variable, else default. `team=False` leaves out accounts, admins
    and limits (a training job or an export needs the model settings only: a malformed ALIGNUI_USERS must not
    fail it)."""
    env = os.environ if env is None else env
    get = (lambda name: getattr(args, name, None)) if args is not None else (lambda name: None)
    space_id = env.get("SPACE_ID") or None
    host = get("host") or env.get("ALIGNUI_HOST") or env.get("GRADIO_SERVER_NAME") or (
        "0.0.0.0" if space_id else "127.0.0.1")
    port_text = get("port") or env.get("ALIGNUI_PORT") or env.get("GRADIO_SERVER_PORT") or "7860"
    try:
        port = int(port_text)
    except ValueError:
        raise ConfigError(f"port must be a number, got {port_text!r}; pass --port 7860") from None
    four_bit = get("load_in_4bit")
    threads_text = get("cpu_threads") or env.get("ALIGNUI_CPU_THREADS") or "0"
    try:
        cpu_threads = int(threads_text)
    except ValueError:
        raise ConfigError(f"cpu threads (--cpu-threads, ALIGNUI_CPU_THREADS) must be a whole number, got "
                          f"{threads_text!r}; e.g. --cpu-threads 2 (0: automatic)") from None
    return AppConfig(
        storage=Path(get("storage")) if get("storage") else default_storage(env),
        model=get("model") or env.get("ALIGNUI_MODEL") or DEFAULT_MODEL,
        host=host, port=port,
        device=get("device") or env.get("ALIGNUI_DEVICE", "auto"),
        load_in_4bit=bool(four_bit) if four_bit is not None else _truthy(env.get("ALIGNUI_4BIT")),
        offline=_truthy(env.get("HF_HUB_OFFLINE")) or _truthy(env.get("ALIGNUI_OFFLINE")),
        cpu_batch_parallel=bool(get("cpu_batch_parallel")) or _truthy(env.get("ALIGNUI_CPU_BATCH_PARALLEL")),
        cpu_threads=cpu_threads,
        batching=not get("no_batching") and (env.get("ALIGNUI_BATCHING") is None or _truthy(env.get("ALIGNUI_BATCHING"))),
        decode_process=bool(get("decode_process")) or _truthy(env.get("ALIGNUI_DECODE_PROCESS")),
        cache_dir=default_cache_dir(env),
        hf_endpoint=(env.get("HF_ENDPOINT") or "https://huggingface.co").rstrip("/"),
        space_id=space_id,
        endpoints=parse_endpoints(get("endpoint"), env.get("ALIGNUI_ENDPOINTS")),
        endpoint_api_key=(env.get("ALIGNUI_ENDPOINT_API_KEY") or env.get("HF_TOKEN") or env.get("OPENAI_API_KEY")
                          or None),
        **(_identity_settings(env, space_id) if team else {}),
    )


def _identity_settings(env: Mapping[str, str], space_id: str | None) -> dict:
    """Accounts, admins, limits and backup settings from the environment (issue 8)."""
    def number(name: str, default, kind=int):
        text = env.get(name)
        try:
            return kind(text) if text not in (None, "") else default
        except ValueError:
            raise ConfigError(f"{name} must be a number, got {text!r}") from None

    try:
        users = parse_accounts(env.get("ALIGNUI_USERS", ""))
        admins = parse_admins(env.get("ALIGNUI_ADMINS"), space_author=env.get("SPACE_AUTHOR_NAME") if space_id else None)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    return dict(
        users=users, admins=admins, oauth=bool(space_id and env.get("OAUTH_CLIENT_ID")),
        max_prompt_chars=number("ALIGNUI_MAX_PROMPT_CHARS", 4000),
        rate_limit_per_minute=number("ALIGNUI_RATE_LIMIT", 60),
        max_upload_mb=number("ALIGNUI_MAX_UPLOAD_MB", 50.0, float),
        backup_repo=env.get("ALIGNUI_BACKUP_REPO") or None,
        backup_every_minutes=number("ALIGNUI_BACKUP_EVERY", 0),
        backup_every_votes=number("ALIGNUI_BACKUP_EVERY_VOTES", 50),
        hf_token=env.get("HF_TOKEN") or None,
        import_dirs=tuple(d for d in env.get("ALIGNUI_IMPORT_DIRS", "").split(os.pathsep) if d.strip()),
    )


# -- accounts and admins (ALIGNUI_USERS, ALIGNUI_ADMINS) ------------------------------------------
def parse_accounts(text: str | None) -> tuple[tuple[str, str], ...]:
    """ALIGNUI_USERS: 'ann:pw,bob:pw' (commas or newlines), or the path of a file with one name:password a line
    (there a password may hold commas). Blank lines and lines starting with '#' are ignored; a name may appear once.
    """
    text = (text or "").strip()
    if not text:
        return ()
    where, separators = "ALIGNUI_USERS", r"[,\n]"
    if ":" not in text or Path(text).is_file():
        path = Path(text).expanduser()
        if not path.is_file():
            raise UserError(f"ALIGNUI_USERS is neither name:password pairs nor a readable file: {text!r}")
        text, where, separators = path.read_text(encoding="utf-8"), str(path), r"\n"
    accounts: dict[str, str] = {}
    for n, entry in enumerate(re.split(separators, text), 1):
        entry = entry.strip()
        if not entry or entry.startswith("#"):
            continue
        name, sep, password = entry.partition(":")
        name = name.strip()
        if not sep or not name or not password:
            raise UserError(f"{where}: entry {n} is not name:password (got {name or entry[:20]!r}); "
                            "write e.g. ann:secret1,bob:secret2")
        if not NAME_PATTERN.match(name):
            raise UserError(f"{where}: the name {name!r} may hold only letters, digits, spaces and . @ + - _")
        if name in accounts:
            raise UserError(f"{where}: the name {name!r} appears twice; keep one password per name")
        accounts[name] = password
    return tuple(accounts.items())


def parse_admins(text: str | None, *, space_author: str | None = None) -> frozenset[str]:
    """ALIGNUI_ADMINS as a set of names; unset on a Space: the Space's owner (SPACE_AUTHOR_NAME)."""
    if text is None:
        return frozenset({space_author}) if space_author else frozenset()
    names = [n.strip() for n in text.split(",") if n.strip()]
    bad = [n for n in names if not NAME_PATTERN.match(n)]
    if bad:
        raise UserError(f"ALIGNUI_ADMINS holds names that cannot sign in: {bad}; use comma-separated user names")
    return frozenset(names)


# -- the few settings read outside an AppConfig (a library call with no app around it) ----------------------
JUDGE_VARIABLES = ("ALIGNUI_JUDGE_URL", "ALIGNUI_JUDGE_MODEL", "ALIGNUI_JUDGE_API_KEY", "OPENAI_API_KEY")


def hub_offline(env: Mapping[str, str] | None = None) -> bool:
    """HF_HUB_OFFLINE / ALIGNUI_OFFLINE: never contact the Hub."""
    env = os.environ if env is None else env
    return _truthy(env.get("HF_HUB_OFFLINE")) or _truthy(env.get("ALIGNUI_OFFLINE"))


def hub_token(env: Mapping[str, str] | None = None) -> str | None:
    """HF_TOKEN when set (else None: huggingface_hub's saved login is the caller's fallback)."""
    env = os.environ if env is None else env
    return env.get("HF_TOKEN") or None


def judge_settings(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The LLM judge's defaults from the environment (ALIGNUI_JUDGE_URL, _MODEL, _API_KEY, OPENAI_API_KEY)."""
    env = os.environ if env is None else env
    return {name: env.get(name, "") for name in JUDGE_VARIABLES}

