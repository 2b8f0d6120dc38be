"""Storyworld's items, read by the jsonl tasks, follow its manifest: one metric breakdown per manifest group, with
exactly the manifest's item count, and an untrained model at chance on them."""

from __future__ import annotations

import pytest

from bookmix.evals import Suite, evaluate
from bookmix.models.model import LM


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from bookmix.storyworld import generate

    return generate(tmp_path_factory.mktemp("sw"), books=10, seed=0, tokens_per_book=2000)


def test_storyworld_groups_match_the_manifest(world, story_library, tiny_cfg):
    items = world.root / "items"
    tasks = sorted({g.task for g in world.groups.values()})
    suite = Suite.from_dict({
        "tasks": [
            {"name": "sw", "type": "multiple_choice", "path": [str(items / f"{t}.jsonl") for t in tasks], "group_depth": 2},
            {"name": "swpairs", "type": "minimal_pairs", "path": str(items / "*_pairs.jsonl"), "group_depth": 2},
        ],
        "objective": "sw/acc",
    })
    r = evaluate(LM(tiny_cfg, seed=2), suite, story_library)
    groups = {k.split("@group=")[1]: m.n for k, m in r.metrics.items() if k.startswith("sw/acc@group=")}
    assert groups == {name: g.items for name, g in world.groups.items()}
    assert r.tasks["sw"]["items"] == sum(g.items for g in world.groups.values())
    pair_groups = {k.split("@group=")[1] for k in r.metrics if k.startswith("swpairs/acc@group=")}
    assert pair_groups and pair_groups <= set(world.groups)
    chance = r.tasks["sw"]["chance"]
    m = r.metrics["sw/acc"]
    assert abs(m.value - chance) <= 3 * m.stderr + 0.02, (m, chance)
