"""The private TRL API alignui reaches into (alignui.training.trl_internals) still looks as assumed.

These fail loudly on a TRL upgrade that moves what the DPO prompt truncation or the rollout log read."""

import pytest

from alignui.training import trl_internals


def test_the_pinned_trl_matches_every_private_reach():
    assert trl_internals.problems() == []
    trl_internals.require_compatible()  # no error


def test_a_changed_trl_is_one_line_naming_the_trl_to_install(monkeypatch):
    monkeypatch.setattr(trl_internals, "PREPARE_DATASET_PARAMS", ("self", "dataset"))
    found = trl_internals.problems()
    assert len(found) == 1 and "DPOTrainer._prepare_dataset" in found[0]
    with pytest.raises(RuntimeError, match=r"install trl==1\.16\.0") as info:
        trl_internals.require_compatible()
    assert "\n" not in str(info.value)


def test_the_dpo_trainer_keeps_the_prompt_end_hook():
    cls = trl_internals.keep_prompt_end_dpo_trainer()
    assert "_prepare_dataset" in cls.__dict__ and cls.__mro__[1].__name__ == "DPOTrainer"
