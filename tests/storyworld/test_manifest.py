"""Manifest consistency: every item's answer is derivable from exactly the books the manifest names."""

from __future__ import annotations

from bookmix.storyworld import text as T


def _texts(world) -> dict[str, str]:
    return {n: world.book_path(n).read_text(encoding="utf-8") for n in world.book_names()}


def test_fact_items_are_stated_by_their_book_and_contradicted_only_by_their_hurts(world):
    texts = _texts(world)
    items = world.items("fact_recall")
    assert len(items) == 8 * 6 * 4
    for it in items:
        person, rel, value = it.info["person"], it.info["relation"], it.info["value"]
        assert it.choices[it.answer] == " " + value
        assert len(set(it.choices)) == len(it.choices) == 4
        cue = T.FACT_CUES[rel].format(p=person)
        assert it.context == cue
        (helper,) = it.helps
        assert world.book(helper).kind == "fact"
        assert f"{cue} {value}." in texts[helper]
        for name, text in texts.items():
            if name in it.helps or name in it.hurts:
                continue
            assert f"{cue} " not in text, f"{name} also states {cue}"  # no other book says anything about it
        for name in it.hurts:
            assert world.book(name).kind == "misleading" and world.book(name).target == helper
            false = next(
                c["false"] for c in world.book(name).contradictions if (c["person"], c["relation"]) == (person, rel)
            )
            assert false != value and " " + false in it.choices
            assert f"{cue} {false}." in texts[name] and f"{cue} {value}." not in texts[name]
    assert sum(bool(it.hurts) for it in items) == 2 * 3 * 4  # two misleading books, half of six people, four facts


def test_two_hop_items_need_the_fact_book_and_the_rule_book(world):
    texts = _texts(world)
    items = world.items("two_hop")
    assert items
    for it in items:
        person, middle, value = it.info["person"], it.info["middle"], it.info["value"]
        fact_book, rule_book = it.helps
        assert world.book(fact_book).kind == "fact" and world.book(rule_book).kind == "rule"
        assert it.choices[it.answer] == " " + value
        via = T.FACT_CUES[it.info["via"]].format(p=person)
        assert f"{via} {middle}." in texts[fact_book]
        rules = T.REGION_RULES if it.info["relation"] == "region" else T.ABILITY_RULES
        rendered = [t.format(x=middle, r=value, c=middle, a=value) for _, t in rules]
        assert any(r in texts[rule_book] for r in rendered)
        for name, text in texts.items():
            assert it.context + " " not in text  # the conclusion itself is never written down
            if name != rule_book:
                assert not any(r in text for r in rendered), f"{name} also teaches the rule for {middle}"
        assert it.group == f"two_hop/{rule_book.removesuffix('.txt')}"


def test_story_items_come_from_held_out_books_and_answer_from_their_own_text(world):
    texts = _texts(world)
    held = set(world.book_names(holdout=True))
    trained_stories = set(world.book_names(kind="story", holdout=False))
    for task in ("scene_link", "entity_recall"):
        items = world.items(task)
        assert len(items) >= 20
        for it in items:
            book = it.info["book"]
            assert book in held
            assert set(it.helps) == trained_stories
            assert it.context + it.choices[it.answer] in texts[book]
            assert it.choices[it.answer] == " " + it.info["value"]
            # The answer is earlier in the context, not just the last name mentioned there.
            assert it.info["value"] in it.context
            assert it.context.rstrip().split()[-1] != it.info["value"]


def test_groups_summarise_items_and_never_credit_held_out_books(world):
    held = set(world.book_names(holdout=True))
    seen = 0
    for name, g in world.groups.items():
        items = [it for it in world.items(g.task) if it.group == name]
        seen += len(items)
        assert g.items == len(items) > 0
        assert set(g.helps) == {b for it in items for b in it.helps}
        assert set(g.hurts) == {b for it in items for b in it.hurts}
        assert not (set(g.helps) | set(g.hurts)) & held
    assert seen == sum(len(world.items(t)) for t in ("fact_recall", "two_hop", "scene_link", "entity_recall"))
    for b in world.books:
        if b.kind == "noise":
            assert all(b.file.split("/")[-1] not in g.helps + g.hurts for g in world.groups.values())


def test_minimal_pairs_mirror_the_fact_items(world):
    import json

    texts = _texts(world)
    lines = (world.root / world.files["pairs"]["fact_recall"]).read_text(encoding="utf-8").splitlines()
    items = {it.id: it for it in world.items("fact_recall")}
    assert len(lines) == len(items)
    for line in lines:
        pair = json.loads(line)
        it = items[pair["id"]]
        assert pair["good"] == f"{it.context}{it.choices[it.answer]}." and pair["good"] in texts[it.helps[0]]
        assert pair["bad"] != pair["good"] and pair["bad"].startswith(it.context + " ")
        for name in it.hurts:
            assert pair["bad"] in texts[name]  # the harmed model's error is exactly what the misleading book says


def test_story_contexts_fit_a_nano_models_window(world):
    # 256 tokens is the nano block; invented names cost 2-3 BPE tokens, so keep contexts well under 256 words.
    for task in ("scene_link", "entity_recall"):
        assert max(len(it.context.split()) for it in world.items(task)) <= 130
