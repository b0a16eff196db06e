"""vLLM rollouts for the RL stage (RLOO/GRPO): the settings, what they hand to TRL, and what pre-flight refuses.

Owns: `VLLMRolloutSettings` (a dataclass mixin of RLHFTrainConfig: use_vllm, vllm_mode, the memory share, the
server's host/port), `trl_arguments(config)` (the RLOOConfig/GRPOConfig fields of the installed trl: use_vllm,
vllm_mode, vllm_gpu_memory_utilization, vllm_server_host, vllm_server_port) and `check(report, config, setup)`
(pre-flight: vllm must import and the job must be on CUDA).

Generation is most of an RL step; TRL generates with vLLM itself (colocate: inside the training process,
sharing its GPU; server: asking a separate `trl vllm-serve` process and pushing weights to it after each step),
so alignui only passes the settings through; nothing here is home-made.

Invariants:
- use_vllm=false hands TRL nothing (its defaults: generation with model.generate).
- vLLM is an optional extra (requirements-vllm.txt / `alignui[vllm]`): it pins its own torch, so it lives in a
  separate environment or one whose torch matches; this module never imports it (find_spec only).
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from typing import Any

from alignui.training.config import _require, knob

VLLM_MODES = ("colocate", "server")
#: The RL algorithms whose TRL trainer generates with vLLM (RLOOTrainer, GRPOTrainer).
VLLM_ALGORITHMS = ("rloo", "grpo")
INSTALL = ("pip install -r requirements-vllm.txt (or pip install 'alignui[vllm]') in a separate environment: "
           "vLLM pins its own CUDA torch, so install it where torch matches it")


@dataclass(frozen=True)
class VLLMRolloutSettings:
    """RLOO/GRPO rollouts on vLLM (TRL's use_vllm); a mixin placed before TrainConfig in a config's bases."""

    use_vllm: bool = knob(False, group="vllm", help="generate the rollouts with vLLM (TRL's use_vllm): much "
                          "faster sampling, the usual bottleneck of an RL step; needs a CUDA GPU and " + INSTALL)
    vllm_mode: str = knob("colocate", group="vllm", choices=VLLM_MODES,
                          help="colocate = vLLM inside the training process, sharing its GPU (one GPU is enough); "
                               "server = a separate `trl vllm-serve` process on its own GPU (the trainer sends it "
                               "the weights after each step)")
    vllm_gpu_memory_utilization: float = knob(0.3, group="vllm", help="colocate: the share of the GPU's memory "
                                              "vLLM reserves for its weights copy and KV cache; training gets the "
                                              "rest (server mode: pass --gpu_memory_utilization to trl vllm-serve)",
                                              guide="0.2-0.5; higher = bigger rollout batches, less for training")
    vllm_server_host: str = knob("127.0.0.1", group="vllm", help="server mode: host of the running `trl "
                                 "vllm-serve`")
    vllm_server_port: int = knob(8000, group="vllm", help="server mode: port of the running `trl vllm-serve`")

    def check_vllm(self, algorithm: str) -> None:
        """Validation (cheap: no import of vllm); called by the config's __post_init__."""
        _require(self.vllm_mode in VLLM_MODES, f"vllm_mode must be one of {', '.join(VLLM_MODES)}, "
                                               f"got {self.vllm_mode!r}")
        _require(0 < self.vllm_gpu_memory_utilization < 1,
                 f"vllm_gpu_memory_utilization is a share of the GPU's memory, in (0, 1); got "
                 f"{self.vllm_gpu_memory_utilization} (0.3 is TRL's default)")
        _require(1 <= self.vllm_server_port <= 65535, f"vllm_server_port must be a port number (1-65535), got "
                                                     f"{self.vllm_server_port}")
        _require(self.vllm_server_host.strip() != "", "vllm_server_host is empty; use 127.0.0.1 or the server's "
                                                      "address")
        _require(not self.use_vllm or algorithm in VLLM_ALGORITHMS,
                 f"use_vllm works with algorithm={' or '.join(VLLM_ALGORITHMS)} (TRL's RLOO/GRPO trainers), not "
                 f"{algorithm!r}; set use_vllm=false or pick rloo/grpo")


def trl_arguments(config: VLLMRolloutSettings) -> dict[str, Any]:
    """The RLOOConfig/GRPOConfig keyword arguments (trl 1.16 names); {} when vLLM is off."""
    if not config.use_vllm:
        return {}
    out: dict[str, Any] = {"use_vllm": True, "vllm_mode": config.vllm_mode}
    if config.vllm_mode == "colocate":
        out["vllm_gpu_memory_utilization"] = config.vllm_gpu_memory_utilization
    else:
        out.update(vllm_server_host=config.vllm_server_host.strip(), vllm_server_port=config.vllm_server_port)
    return out


def installed() -> bool:
    return importlib.util.find_spec("vllm") is not None


def check(report, config, setup) -> None:
    """Pre-flight: refusals when vLLM rollouts cannot run here, and a line on what they change."""
    if not isinstance(config, VLLMRolloutSettings) or not config.use_vllm:
        return
    if not installed():
        report.refusals.append(f"use_vllm needs vLLM, which is not installed here: {INSTALL}")
    if setup.device != "cuda":
        report.refusals.append(f"use_vllm needs a CUDA GPU (vLLM generates on CUDA only), this job runs on "
                               f"{setup.device}: set use_vllm=false")
    if config.vllm_mode == "colocate":
        report.tradeoffs.append(f"vLLM rollouts (colocate): vLLM reserves {config.vllm_gpu_memory_utilization:.0%} "
                                "of the GPU for its copy of the weights and KV cache; training must fit in the rest")
    else:
        report.tradeoffs.append(f"vLLM rollouts (server): the job asks the `trl vllm-serve` at "
                                f"{config.vllm_server_host}:{config.vllm_server_port} for rollouts and pushes the "
                                "policy's weights to it after each step; start that server first on another GPU "
                                "(docs/scale.md)")
