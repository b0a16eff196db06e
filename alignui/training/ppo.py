"""PPO for the RLHF method (`train rlhf --set algorithm=ppo`): its settings and the parts of the algorithm.

TRL removed PPOTrainer in 1.13, so this is PPO written here (the classic RLHF recipe of Ziegler et al. 2019 /
Ouyang et al. 2022, in the shape of TRL's former PPOv2 / OpenRLHF's PPO), built for LoRA on one backbone:
the policy is the base + the 'default' LoRA adapter, the critic is the base + a 'value' LoRA adapter + its own
value head, the reference is the base with adapters off. The loop that drives these pieces (rollouts, the
PPO epochs, checkpoints) is alignui.training.ppo_loop.

Owns:
- `PPOSettings`: the PPO knobs (epochs, minibatches, clip ranges, GAE gamma/lambda, value-loss weight,
  adaptive KL target); a mixin of alignui.training.rlhf.RLHFTrainConfig, validated by `check_ppo`.
- The maths, as pure tensor functions (no model, no torch import: tensors carry their own methods), each
  unit-tested against hand-computed values: `kl_k1` and `token_rewards` (per-token KL penalty, the score on
  the last real token), `gae` (advantages and returns), `masked_mean` / `masked_whiten`, `policy_loss` and
  `value_loss` (the clipped PPO objectives), `AdaptiveKL` (Ziegler et al.'s proportional controller).

Invariants:
- Every mean is over real completion tokens only (`mask` = 1): prompt and padding positions never change a
  loss, an advantage or a metric.
- Hand-written (no public TRL/PEFT equivalent exists any more): GAE, whitening, the clipped losses and the KL
  controller were in trl.core/ppo_trainer and left with PPOTrainer.
"""

from __future__ import annotations

from dataclasses import dataclass

from alignui.training.config import _require, knob


@dataclass(frozen=True)
class PPOSettings:
    """The PPO knobs (used only when algorithm=ppo; `beta` of the RLHF config is the KL coefficient)."""

    ppo_epochs: int = knob(4, group="ppo", help="PPO: passes over each batch of rollouts (each pass = "
                           "num_mini_batches optimiser updates)", guide="1-4; more reuses samples, but drifts "
                           "off-policy (watch clip_fraction)")
    num_mini_batches: int = knob(2, group="ppo", help="PPO: minibatches per pass over a batch of rollouts")
    cliprange: float = knob(0.2, group="ppo", help="PPO: clip range of the policy ratio", guide="0.1-0.3")
    cliprange_value: float = knob(0.2, group="ppo", help="PPO: clip range of the value update around the "
                                  "rollout's value", guide="same scale as the rewards")
    vf_coef: float = knob(0.1, group="ppo", help="PPO: weight of the value loss beside the policy loss")
    gamma: float = knob(1.0, group="ppo", help="PPO: discount per token (GAE gamma)", guide="1.0 for RLHF")
    lam: float = knob(0.95, group="ppo", help="PPO: GAE lambda (bias/variance trade-off of the advantages)",
                      guide="0.9-1.0")
    kl_target: float = knob(0.0, group="ppo", help="PPO: adaptive KL: the per-sequence KL (nats) to hold by "
                            "adjusting beta; 0 = beta stays fixed", guide="e.g. 6 (Ziegler et al.)")
    kl_horizon: int = knob(10000, group="ppo", help="PPO: adaptive KL horizon in samples (how fast beta moves)")

    def check_ppo(self, rollout_batch: int) -> None:
        """Validation of the PPO knobs (RLHFTrainConfig.__post_init__ calls it when algorithm=ppo)."""
        for name in ("ppo_epochs", "num_mini_batches", "kl_horizon"):
            _require(getattr(self, name) >= 1, f"{name} must be at least 1, got {getattr(self, name)}")
        _require(rollout_batch % self.num_mini_batches == 0,
                 f"per_device_train_batch_size x gradient_accumulation_steps ({rollout_batch}) must be a multiple "
                 f"of num_mini_batches ({self.num_mini_batches}): each rollout batch splits into equal minibatches")
        for name in ("cliprange", "cliprange_value"):
            _require(getattr(self, name) > 0, f"{name} must be positive (0.2 is the default), got "
                                              f"{getattr(self, name)}")
        _require(self.vf_coef >= 0, f"vf_coef must be 0 or more, got {self.vf_coef}")
        _require(0 < self.gamma <= 1, f"gamma must be in (0, 1], got {self.gamma}")
        _require(0 <= self.lam <= 1, f"lam must be in [0, 1], got {self.lam}")
        _require(self.kl_target >= 0, f"kl_target must be 0 (fixed beta) or more, got {self.kl_target}")


# -- masked statistics ---------------------------------------------------------------------------------------------
def masked_mean(values, mask):
    """Mean of `values` where `mask` is 1 (0 when nothing is unmasked)."""
    mask = mask.to(values.dtype)
    return (values * mask).sum() / mask.sum().clamp(min=1)


def masked_whiten(values, mask, shift_mean: bool = True):
    """`values` scaled to unit variance (and zero mean) over the unmasked positions; masked positions -> 0."""
    mean = masked_mean(values, mask)
    centred = values - mean
    var = masked_mean(centred ** 2, mask)
    n = mask.sum()
    if n > 1:
        var = var * n / (n - 1)  # unbiased, as trl.core.masked_var had it
    out = centred * (var + 1e-8).rsqrt()
    if not shift_mean:
        out = out + mean
    return out * mask.to(values.dtype)


# -- rewards and advantages ----------------------------------------------------------------------------------------
def kl_k1(logprobs, ref_logprobs, mask):
    """Per-token k1 KL estimate log pi(a) - log pi_ref(a) of the sampled tokens (0 where masked): its mean
    over samples from the policy is KL(pi || pi_ref) >= 0; one token's value can be negative."""
    return (logprobs - ref_logprobs) * mask.to(logprobs.dtype)


def last_index(mask):
    """Index of the last real completion token per row (0 for an empty row)."""
    positions = mask.new_ones(mask.shape).long().cumsum(-1) - 1
    return (positions * mask.long()).max(dim=-1).values


def token_rewards(scores, kl, mask, beta: float):
    """Per-token rewards: -beta * KL on every real token, plus the reward model's score on the last one."""
    rewards = -beta * kl * mask.to(kl.dtype)
    rows = rewards.new_ones(scores.shape[0]).long().cumsum(0) - 1
    rewards[rows, last_index(mask)] += scores.to(rewards.dtype) * (mask.sum(-1) > 0).to(rewards.dtype)
    return rewards


def gae(rewards, values, mask, gamma: float, lam: float):
    """(advantages, returns) by generalised advantage estimation over each row's real tokens.

    delta_t = r_t + gamma * V_{t+1} - V_t and A_t = delta_t + gamma * lam * A_{t+1}, with V and A zero past
    the last real token; returns = A + V. Masked positions hold 0 in both outputs."""
    maskf = mask.to(values.dtype)
    values, rewards = values * maskf, rewards * maskf
    advantages = values.new_zeros(values.shape)
    next_value = values.new_zeros(values.shape[0])
    next_adv = values.new_zeros(values.shape[0])
    for t in reversed(range(values.shape[1])):
        delta = rewards[:, t] + gamma * next_value - values[:, t]
        advantages[:, t] = (delta + gamma * lam * next_adv) * maskf[:, t]
        next_value, next_adv = values[:, t], advantages[:, t]
    return advantages, (advantages + values) * maskf


# -- the clipped losses --------------------------------------------------------------------------------------------
def policy_loss(logprobs, old_logprobs, advantages, mask, cliprange: float):
    """(loss, clip fraction): PPO's clipped surrogate -min(r A, clip(r, 1-e, 1+e) A), r = pi/pi_old, averaged
    over real tokens. Where the clip binds, the token's gradient is zero."""
    ratio = (logprobs - old_logprobs).exp()
    unclipped = -advantages * ratio
    clipped = -advantages * ratio.clamp(1.0 - cliprange, 1.0 + cliprange)
    loss = masked_mean(unclipped.maximum(clipped), mask)
    return loss, masked_mean((clipped > unclipped).to(ratio.dtype), mask)


def value_loss(values, old_values, returns, mask, cliprange_value: float):
    """(loss, clip fraction): 0.5 * max((V - R)^2, (V_clipped - R)^2), V_clipped = V_old + clip(V - V_old, +-e),
    averaged over real tokens."""
    clipped_values = old_values + (values - old_values).clamp(-cliprange_value, cliprange_value)
    unclipped_err = (values - returns) ** 2
    clipped_err = (clipped_values - returns) ** 2
    loss = 0.5 * masked_mean(unclipped_err.maximum(clipped_err), mask)
    return loss, masked_mean((clipped_err > unclipped_err).to(values.dtype), mask)


@dataclass
class AdaptiveKL:
    """beta, adapted to hold the per-sequence KL near `target` (Ziegler et al. 2019); target 0 = fixed beta."""

    beta: float
    target: float = 0.0
    horizon: int = 10000

    def update(self, kl_per_sequence: float, n_samples: int) -> float:
        """The new beta after a batch of `n_samples` whose mean per-sequence KL was `kl_per_sequence`."""
        if self.target > 0:
            error = min(max(kl_per_sequence / self.target - 1.0, -0.2), 0.2)
            self.beta *= 1.0 + error * n_samples / self.horizon
        return self.beta
