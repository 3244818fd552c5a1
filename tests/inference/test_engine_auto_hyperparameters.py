"""The automatic fine-tuning defaults and the convergence verdict (pure functions of the engine)."""

from __future__ import annotations

import pytest

from inference.engine.auto_hyperparameters import (
    auto_batch_size,
    auto_epochs,
    choose_hyperparameters,
    convergence_warnings,
    hold_back_count,
)

LLAMA_ALL = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def test_small_datasets_get_more_epochs_and_large_ones_fewer() -> None:
    assert [auto_epochs(n) for n in (8, 20, 54, 60, 200, 1000, 5000, 30_000)] == [20, 20, 8, 7, 6, 6, 5, 1]
    assert [auto_batch_size(n) for n in (8, 60, 200, 400, 1000, 5000)] == [4, 4, 8, 16, 32, 32]
    with pytest.raises(ValueError):
        auto_epochs(0)


def test_left_out_values_are_chosen_and_given_ones_kept() -> None:
    chosen = choose_hyperparameters(given={"n_epochs": 3}, n_examples=54, model_type="llama", max_lora_rank=8)
    assert chosen.values["n_epochs"] == 3 and chosen.values["batch_size"] == 4
    assert chosen.values["lora_r"] == 8 and chosen.values["lora_alpha"] == 16
    assert chosen.values["target_modules"] == LLAMA_ALL
    assert "n_epochs" not in chosen.automatic and "learning_rate_multiplier" in chosen.automatic
    # "auto" is the same as leaving it out; a smaller rank keeps the measured update scale (lr x alpha / r).
    halved = choose_hyperparameters(
        given={"batch_size": "auto", "lora_r": 4, "lora_alpha": 16}, n_examples=54, model_type="llama", max_lora_rank=8
    )
    base = choose_hyperparameters(given={}, n_examples=54, model_type="llama", max_lora_rank=8)
    assert halved.values["learning_rate_multiplier"] == base.values["learning_rate_multiplier"] / 2
    assert "batch_size" in halved.automatic
    # An architecture we know nothing of falls back to the attention projections every PEFT model has.
    assert choose_hyperparameters(given={}, n_examples=54, model_type="?", max_lora_rank=8).values[
        "target_modules"
    ] == ["q_proj", "v_proj"]


@pytest.mark.parametrize(
    "given, fragment",
    [
        ({"warp": 9}, "Unknown hyperparameters: warp"),
        ({"lora_r": 16}, "largest servable rank 8"),
        ({"n_epochs": "3"}, "n_epochs must be an integer"),
        ({"learning_rate_multiplier": True}, "learning_rate_multiplier must be a number"),
        ({"target_modules": "q_proj"}, "target_modules must be a non-empty list"),
    ],
)
def test_bad_values_are_refused_by_name(given: dict, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        choose_hyperparameters(given=given, n_examples=54, model_type="llama", max_lora_rank=8)


def test_hold_back_is_a_tenth_between_one_and_twenty_five() -> None:
    assert [hold_back_count(n) for n in (10, 11, 60, 200, 1000)] == [0, 1, 6, 20, 25]


HP = {"n_epochs": 3, "learning_rate_multiplier": 10.0}


def test_a_training_that_learned_has_no_warning() -> None:
    assert not convergence_warnings(train_losses=[3.0, 2.0, 0.5, 0.1, 0.05], valid_accuracy_before=0.3,
                                    valid_accuracy_after=0.95, exact_match_base=0.0, exact_match_fine_tuned=1.0,
                                    hyperparameters=HP)  # fmt: skip


def test_the_issues_failed_run_is_flagged_with_what_to_try() -> None:
    """Loss 4.3 -> 2.8, token accuracy flat at 0.33, none of the answers learned (the run issue #21 describes)."""
    warnings = convergence_warnings(train_losses=[4.3, 4.0, 3.6, 3.2, 2.9, 2.8], valid_accuracy_before=0.33,
                                    valid_accuracy_after=0.33, exact_match_base=0.0, exact_match_fine_tuned=0.0,
                                    hyperparameters=HP)  # fmt: skip
    assert [w.code for w in warnings] == ["loss_flat", "accuracy_unchanged", "held_back_not_learned"]
    assert all("n_epochs 3 -> 6" in w.advice and "10.0 -> 20.0" in w.advice for w in warnings)
    # Learned the training data but not the held-back answers: the advice names the phrasing.
    overfit = convergence_warnings(train_losses=[3.0, 0.01], valid_accuracy_before=0.3, valid_accuracy_after=0.95,
                                   exact_match_base=0.0, exact_match_fine_tuned=0.2, hyperparameters=HP)  # fmt: skip
    assert [w.code for w in overfit] == ["held_back_not_learned"] and "ways of asking" in overfit[0].advice
