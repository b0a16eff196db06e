"""The Train tab's RLHF method in headless Chromium, end to end with the quick CPU presets: pick RLHF, start it,
watch the reward model train (held-out accuracy and the margin histogram), then the RL stage (live mean reward,
KL and length curves, rollouts with their rewards), see it finish with a verdict, what was resident in memory,
and the policy adapter listed for the arena (the reward model is registered, not served)."""

import pytest

from alignui.training.app.runner import job_runner
from alignui.training.synthetic import closer_snapshot
from conftest import screenshot

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
LONG = 900_000  # ms: two jobs, each importing torch/trl first, on a busy 2-core machine


@pytest.fixture
def snapshot(storage):
    return closer_snapshot(storage, "closer", train_rows=200, test_rows=40, held_out=110, seed=0)


@pytest.fixture
def rlhf_page(snapshot, server, page):
    yield page
    job_runner(server.ctx).shutdown(cancel=True)  # never leave a training process behind


def chart_marks(page, elem_id: str) -> int:
    """Marks drawn by the Vega chart of one plot (0 while it is empty)."""
    return page.evaluate(f"""() => {{
        const root = document.querySelector('#{elem_id}');
        return root ? root.querySelectorAll('path[aria-roledescription="line mark"], .mark-line path, '
                                            + '.mark-rect path, path[aria-roledescription="bar"]').length : 0;
    }}""")


def stage_line(page, n: int) -> str:
    return page.locator("#rlhf-stages li").nth(n).inner_text()


def test_rlhf_end_to_end_from_the_train_tab(rlhf_page, server):
    page = rlhf_page
    page.goto(server.url)
    page.get_by_role("tab", name="Train").click()
    page.locator("#train-method").wait_for()
    page.locator("#train-method input").click()
    page.get_by_role("option", name="RLHF (reward model + online RL)").click()
    page.locator("#rlhf-start").wait_for(state="visible")
    assert not page.locator("#train-start").is_visible()  # RLHF starts both stages with its own button
    assert page.locator("#train-preset input").input_value() == "cpu-demo"
    # the RLHF preset's values replaced DPO's cpu-demo values (same preset name, other method)
    page.wait_for_function("() => document.querySelector('#train-max_steps input').value === '20'")
    assert page.locator("#rlhf-reward-source input").input_value().startswith("Train a new reward model")
    assert page.locator("#rlhf-reward-preset input").input_value() == "cpu-demo"
    assert "share ONE copy" in page.locator("#rlhf-memory-note").inner_text()
    screenshot(page, "train-rlhf-options")

    page.locator("#rlhf-start").click()
    page.locator("#train-message").get_by_text("RLHF queued").wait_for(timeout=LONG)
    page.locator("#rlhf-stages li").nth(1).wait_for(timeout=LONG)
    assert "reward model" in stage_line(page, 0) and "RL" in stage_line(page, 1)
    page.locator("#rlhf-reward-summary").get_by_text("held-out accuracy").wait_for(timeout=LONG)
    page.wait_for_function("() => document.querySelector('#rlhf-stages li')?.innerText.includes('done')",
                           timeout=LONG)
    page.wait_for_function("() => document.querySelectorAll('#rlhf-rollouts tbody tr').length > 0", timeout=LONG)
    page.wait_for_function("() => document.querySelector('#rlhf-resident')?.innerText.includes('ONE copy')",
                           timeout=LONG)
    assert chart_marks(page, "rlhf-plot-reward") > 0 and chart_marks(page, "rlhf-histogram") > 0
    screenshot(page, "train-rlhf-running")

    page.locator("#rlhf-verdict").get_by_text("the policy earns more reward than the base").wait_for(timeout=LONG)
    assert "done" in stage_line(page, 1)
    screenshot(page, "train-rlhf-done")
    store = server.ctx.store
    job_runner(server.ctx).sync_all()
    rewards = store.list_runs(method="reward", status="done")
    policies = store.list_adapters()
    assert len(rewards) == 1 and [p.method for p in policies] == ["rlhf"]
    assert policies[0].metrics["eval"]["reward_policy"] > policies[0].metrics["eval"]["reward_base"]


def test_ppo_picked_in_the_train_tab_trains_a_policy_with_its_value_adapter(rlhf_page, server):
    """The RLHF row's PPO: the cpu-demo-ppo preset in the form selects algorithm=ppo and shows PPO's knobs; Start
    RLHF trains the reward model, then PPO; the live panel names the value adapter and the run's config says ppo."""
    page = rlhf_page
    page.goto(server.url)
    page.get_by_role("tab", name="Train").click()
    page.locator("#train-method input").click()
    page.get_by_role("option", name="RLHF (reward model + online RL)").click()
    page.locator("#rlhf-start").wait_for(state="visible")
    page.locator("#train-preset input").click()
    page.get_by_role("option", name="cpu-demo-ppo").click()
    page.wait_for_function("() => document.querySelector('#train-algorithm input')?.value === 'ppo'")
    page.locator("#train-more-settings").get_by_text("More settings").click()  # PPO's own knobs are in there
    for knob, value in (("ppo_epochs", "2"), ("cliprange", "0.2"), ("lam", "0.95")):
        assert page.locator(f"#train-{knob} input").first.input_value() == value, knob
    screenshot(page, "train-ppo-options")

    page.locator("#rlhf-start").click()
    page.locator("#train-message").get_by_text("RLHF queued").wait_for(timeout=LONG)
    page.wait_for_function("() => document.querySelector('#rlhf-resident')?.innerText.includes('value')",
                           timeout=LONG)
    page.wait_for_function("() => document.querySelectorAll('#rlhf-stages li')[1]?.innerText.includes('done')",
                           timeout=LONG)
    page.locator("#rlhf-verdict").get_by_text("reward").first.wait_for(timeout=LONG)
    screenshot(page, "train-ppo-done")
    job_runner(server.ctx).sync_all()
    policies = server.ctx.store.list_adapters()
    assert [p.method for p in policies] == ["rlhf"] and policies[0].config["algorithm"] == "ppo"
    assert policies[0].metrics["eval"]["reward_policy"] > policies[0].metrics["eval"]["reward_base"]
