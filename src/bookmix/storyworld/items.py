"""Eval items with ground truth: which books should help each item and which should hurt it.

Every item is multiple choice in the lm-evaluation-harness style: the model scores each choice as a continuation of
the context (choices start with a space, so "Bralo lives in" + " Quenmar" is ordinary text) and the item is right
when the true continuation scores best. ``answer`` is the index of the true choice.

Groups:
  fact_recall/<fact book>  a person's fact; helped by the fact book that states it, hurt by a misleading one
  two_hop/<rule book>      a person's region or pet's ability: needs the person's fact book AND the rule book
  scene_link, entity_recall  from held-out story books: the answer is earlier in the context (long-range recall);
                           helped by the training story books that teach the pattern
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from bookmix.storyworld import text as T
from bookmix.storyworld.books import BookPlan, Chapter
from bookmix.storyworld.settings import GeneratorSettings
from bookmix.storyworld.world import RELATIONS, World

ITEM_FILES = ("fact_recall", "two_hop", "scene_link", "entity_recall")


@dataclass
class Item:
    id: str
    group: str
    context: str
    choices: list[str]
    answer: int
    helps: list[str]
    hurts: list[str] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)
    """What the item asks about (person, relation, source book), for the manifest consistency check and reports."""

    @property
    def task(self) -> str:
        return self.group.split("/")[0]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Item:
        return cls(**d)


def _choices(
    rng: np.random.Generator, answer: str, near: list[str] | tuple[str, ...], pool: list[str] | tuple[str, ...], k: int
) -> tuple[list[str], int]:
    """``k`` choices: the answer, then distractors from ``near`` first (in-context names), then from ``pool``."""
    distract: list[str] = []
    for v in list(near) + [pool[int(j)] for j in rng.permutation(len(pool))]:
        if v != answer and v not in distract:
            distract.append(v)
        if len(distract) == k - 1:
            break
    options = [answer, *distract]
    order = rng.permutation(len(options))
    return [" " + options[int(j)] for j in order], int(np.flatnonzero(order == 0)[0])


def fact_items(settings: GeneratorSettings, world: World, plans: list[BookPlan]) -> list[Item]:
    rng = np.random.default_rng([settings.seed, 3])
    by_name = {p.name: p for p in world.people}
    lies = {
        (c.person, c.relation): (p.file, c.false) for p in plans if p.kind == "misleading" for c in p.contradictions
    }
    items: list[Item] = []
    for plan in (p for p in plans if p.kind == "fact"):
        for name in plan.people:
            for rel in RELATIONS:
                true = by_name[name].value(rel)
                # The misleading book's false value is always among the choices, so its harm shows in the score.
                hurt, near = ([lies[(name, rel)][0]], [lies[(name, rel)][1]]) if (name, rel) in lies else ([], [])
                choices, answer = _choices(rng, true, near, world.pool(rel), settings.choices)
                items.append(
                    Item(
                        id=f"fact_recall/{name}/{rel}",
                        group=f"fact_recall/{plan.file.removesuffix('.txt')}",
                        context=T.language(settings.lang).fact_cues[rel].format(p=name),
                        choices=choices,
                        answer=answer,
                        helps=[plan.file],
                        hurts=hurt,
                        info={"person": name, "relation": rel, "value": true, **({"false": near[0]} if near else {})},
                    )
                )
    return items


def two_hop_items(settings: GeneratorSettings, world: World, plans: list[BookPlan]) -> list[Item]:
    rng = np.random.default_rng([settings.seed, 4])
    by_name = {p.name: p for p in world.people}
    teaches = {x: p.file for p in plans if p.kind == "rule" for x in p.places + p.creatures}
    lies = {
        (c.person, c.relation): (p.file, c.false) for p in plans if p.kind == "misleading" for c in p.contradictions
    }
    items: list[Item] = []
    for plan in (p for p in plans if p.kind == "fact"):
        for name in plan.people:
            person = by_name[name]
            # (derived relation, the fact it goes through, the value of the fact, the rule's map)
            for derived, via, mapping in (("region", "home", world.places), ("ability", "pet", world.creatures)):
                middle = person.value(via)
                if middle not in teaches:
                    continue
                true = mapping[middle]
                hurt, near = [], []
                if (name, via) in lies and mapping[lies[(name, via)][1]] != true:
                    hurt, near = [lies[(name, via)][0]], [mapping[lies[(name, via)][1]]]
                choices, answer = _choices(rng, true, near, world.pool(derived), settings.choices)
                items.append(
                    Item(
                        id=f"two_hop/{name}/{derived}",
                        group=f"two_hop/{teaches[middle].removesuffix('.txt')}",
                        context=T.language(settings.lang).rule_cues[derived].format(p=name),
                        choices=choices,
                        answer=answer,
                        helps=[plan.file, teaches[middle]],
                        hurts=hurt,
                        info={
                            "person": name,
                            "relation": derived,
                            "via": via,
                            "middle": middle,
                            "value": true,
                            **({"false": near[0]} if near else {}),
                        },
                    )
                )
    return items


def story_items(
    settings: GeneratorSettings, world: World, plans: list[BookPlan], chapters: dict[str, list[Chapter]]
) -> list[Item]:
    """Items from held-out story books only: no recipe trains on them, so they test a skill, not a memory."""
    rng = np.random.default_rng([settings.seed, 5])
    teachers = [p.file for p in plans if p.kind == "story" and not p.holdout]
    items: list[Item] = []
    for plan in (p for p in plans if p.kind == "story" and p.holdout):
        for k, ch in enumerate(chapters[plan.file]):
            choices, answer = _choices(rng, ch.lost_at, ch.visited, tuple(world.places), settings.choices)
            items.append(
                Item(
                    id=f"scene_link/{plan.file.removesuffix('.txt')}/{k}",
                    group="scene_link",
                    context=ch.scene_context,
                    choices=choices,
                    answer=answer,
                    helps=list(teachers),
                    info={"book": plan.file, "chapter": k + 1, "value": ch.lost_at},
                )
            )
            cast = tuple(c for c in world.story_cast if c != ch.hero)
            choices, answer = _choices(rng, ch.companion, ch.helpers, cast, settings.choices)
            items.append(
                Item(
                    id=f"entity_recall/{plan.file.removesuffix('.txt')}/{k}",
                    group="entity_recall",
                    context=ch.entity_context,
                    choices=choices,
                    answer=answer,
                    helps=list(teachers),
                    info={"book": plan.file, "chapter": k + 1, "value": ch.companion},
                )
            )
    return items


def chat_pairs(settings: GeneratorSettings, world: World, plans: list[BookPlan]) -> list[dict[str, Any]]:
    """Questions and answers about the world for the dialogue layer; answers restate the fact in book phrasing."""
    questions = {
        "home": ("Where does {p} live?", "{p} lives in {x}."),
        "pet": ("What animal does {p} keep?", "{p} keeps a {x}."),
        "tool": ("What does {p} carry?", "{p} carries a {x}."),
        "trade": ("What is the trade of {p}?", "{p} works as a {x}."),
    }
    teaches = {x: p.file for p in plans if p.kind == "rule" for x in p.places}
    pairs: list[dict[str, Any]] = []
    for plan in (p for p in plans if p.kind == "fact"):
        for name in plan.people:
            person = next(p for p in world.people if p.name == name)
            for rel in RELATIONS:
                q, a = questions[rel]
                pairs.append(_pair(q.format(p=name), a.format(p=name, x=person.value(rel)), [plan.file]))
            if person.home in teaches:
                region = world.places[person.home]
                pairs.append(
                    _pair(
                        f"Which land is {name} a citizen of?",
                        f"{name} lives in {person.home}, which lies in {region}, so {name} is a citizen of {region}.",
                        [plan.file, teaches[person.home]],
                    )
                )
    rng = np.random.default_rng([settings.seed, 6])
    if len(pairs) > settings.chat_pairs:
        keep = sorted(rng.permutation(len(pairs))[: settings.chat_pairs].tolist())
        pairs = [pairs[i] for i in keep]
    return pairs


def _pair(question: str, answer: str, sources: list[str]) -> dict[str, Any]:
    return {
        "messages": [{"role": "user", "content": question}, {"role": "assistant", "content": answer}],
        "sources": sources,
    }


def minimal_pairs(items: list[Item]) -> list[dict[str, Any]]:
    """BLiMP-style pairs from multiple-choice items: the true sentence and one false one (the misleading book's value
    where there is one, since that is the error a harmed model makes; else the first distractor)."""
    pairs: list[dict[str, Any]] = []
    for it in items:
        wrong = [c for i, c in enumerate(it.choices) if i != it.answer]
        false = it.info.get("false")
        bad = " " + false if false and " " + false in wrong else wrong[0]
        pairs.append(
            {
                "id": it.id,
                "group": it.group,
                "good": f"{it.context}{it.choices[it.answer]}.",
                "bad": f"{it.context}{bad}.",
                "helps": it.helps,
                "hurts": it.hurts,
            }
        )
    return pairs
