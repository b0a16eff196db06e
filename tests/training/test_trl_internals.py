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
    assert len(found) == 2 and "DPOTrainer._prepare_dataset" in found[0] and "KTOTrainer._prepare_dataset" in found[1]
    with pytest.raises(RuntimeError, match=r"install trl==1\.16\.0") as info:
        trl_internals.require_compatible()
    assert "\n" not in str(info.value)


def test_the_dpo_trainer_keeps_the_prompt_end_hook():
    cls = trl_internals.keep_prompt_end_dpo_trainer()
    assert "_prepare_dataset" in cls.__dict__ and cls.__mro__[1].__name__ == "DPOTrainer"


def test_orpo_and_cpo_row_tokenizers_are_checked_and_wrapped(monkeypatch):
    monkeypatch.setattr(trl_internals, "TOKENIZE_ROW_PARAMS", ("self", "row"))
    assert [p.split(".")[0] for p in trl_internals.problems()] == ["ORPOTrainer", "CPOTrainer"]
    monkeypatch.undo()
    for cls in trl_internals._row_tokenizing_trainers():
        wrapped = trl_internals.keep_prompt_end_row_trainer(cls, tokenizer=None, limit=8)
        assert "tokenize_row" in wrapped.__dict__ and wrapped.__mro__[1] is cls
    kto = trl_internals.keep_prompt_end_trainer(__import__("trl").KTOTrainer)
    assert "_prepare_dataset" in kto.__dict__ and kto.__name__ == "AlignKTOTrainer"
