"""The books: a plan (who writes what, at which difficulty) and one pure writer per kind.

Every writer is a pure function of (world, plan, settings) with its own seeded generator, so one book can be
regenerated alone and the same seed always gives the same bytes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from bookmix.errors import BookmixError
from bookmix.storyworld import text as T
from bookmix.storyworld.settings import KINDS, GeneratorSettings
from bookmix.storyworld.world import RELATIONS, RULE_PEOPLE_PER_BOOK, TRADES, World

GENRES = {"fact": "almanac", "rule": "primer", "story": "tale", "noise": "notes", "misleading": "almanac"}
# Misleading books look like fact books from the outside (same genre, same templates): only the manifest knows.

_KIND_SEED = {k: i + 10 for i, k in enumerate(KINDS)}


@dataclass(frozen=True)
class Contradiction:
    person: str
    relation: str
    true: str
    false: str


@dataclass
class BookPlan:
    file: str
    kind: str
    index: int
    """Position among the books of its kind (fact_003 → 3)."""
    title: str
    author: str
    year: int
    difficulty: int
    holdout: bool = False
    people: list[str] = field(default_factory=list)
    """Fact books: the people whose facts the book states."""
    places: list[str] = field(default_factory=list)
    creatures: list[str] = field(default_factory=list)
    """Rule books: the places and creature kinds whose rules the book teaches."""
    contradictions: list[Contradiction] = field(default_factory=list)
    """Misleading books: the false facts they state."""
    target: str | None = None
    """Misleading books: the fact book whose facts they contradict."""


@dataclass(frozen=True)
class Chapter:
    """One story arc, kept so held-out books can yield items whose answers are in their own text."""

    hero: str
    companion: str
    helpers: tuple[str, ...]
    lost_at: str
    visited: tuple[str, ...]
    thing: str
    scene_context: str
    """Chapter text up to "At last {hero} went back to" — the answer is where the thing was lost."""
    entity_context: str
    """Chapter text up to "{hero} thanked" — the answer is the companion from the first scene."""


def book_rng(settings: GeneratorSettings, kind: str, index: int, purpose: int = 0) -> np.random.Generator:
    return np.random.default_rng([settings.seed, _KIND_SEED[kind], index, purpose])


def plan_books(settings: GeneratorSettings, world: World) -> list[BookPlan]:
    counts = settings.counts()
    if counts["misleading"] and not counts["fact"]:
        raise BookmixError(
            f"storyworld.mix: misleading books contradict fact books, so they need fact books too; the mix gives {counts}"
        )
    rng = np.random.default_rng([settings.seed, 2])
    plans: list[BookPlan] = []
    seen_titles: dict[str, int] = {}
    places, creatures = list(world.places), list(world.creatures)
    n_holdout = 0
    if counts["story"] >= 2 and settings.holdout_fraction > 0:
        n_holdout = max(1, int(round(settings.holdout_fraction * counts["story"])))
        n_holdout = min(n_holdout, counts["story"] - 1)  # keep at least one story to train on
    holdout_idx = set(rng.permutation(counts["story"])[:n_holdout].tolist())
    for kind in KINDS:
        n = counts[kind]
        levels = list(settings.difficulties)
        offset = int(rng.integers(len(levels)))
        levels = [levels[(i + offset) % len(levels)] for i in range(n)]  # each kind spread evenly over the levels
        for i in range(n):
            title = _title(rng, world, kind, T.language(settings.lang))
            seen_titles[title] = seen_titles.get(title, 0) + 1
            if seen_titles[title] > 1:  # titles repeat in a small world; number the later volumes
                title = f"{title}, Volume {seen_titles[title]}"
            plan = BookPlan(
                file=f"{kind}_{i:03d}.txt",
                kind=kind,
                index=i,
                title=title,
                author=world.authors[int(rng.integers(len(world.authors)))],
                year=int(1800 + rng.integers(0, 220)),
                difficulty=levels[i],
                holdout=kind == "story" and i in holdout_idx,
            )
            if kind == "fact":
                k = settings.people_per_fact_book
                plan.people = [p.name for p in world.people[i * k : (i + 1) * k]]
            elif kind == "rule":
                plan.places = places[i::n]
                plan.creatures = creatures[i::n]
            elif kind == "misleading":
                plan.target = f"fact_{i % counts['fact']:03d}.txt"
                plan.contradictions = _contradictions(
                    settings, world, i % counts["fact"], book_rng(settings, kind, i, 1)
                )
            plans.append(plan)
    return plans


def _title(rng: np.random.Generator, world: World, kind: str, lang: T.Language = T.EN) -> str:
    # The same draws in every language and for every kind, so a world's other books do not depend on the titles.
    place = T.pick(rng, list(world.places))
    fmt = lang.titles[kind]
    if kind == "rule":
        return fmt.format(region=T.pick(rng, world.regions))
    if kind == "noise":
        return fmt.format(adj=T.pick(rng, T.ADJECTIVES).title(), noun=T.pick(rng, T.NOUNS).title())
    return fmt.format(place=place)


def _contradictions(
    settings: GeneratorSettings, world: World, fact_book: int, rng: np.random.Generator
) -> list[Contradiction]:
    k = settings.people_per_fact_book
    people = world.people[fact_book * k : (fact_book + 1) * k]
    n = max(1, int(round(settings.misleading_fraction * len(people)))) if settings.misleading_fraction > 0 else 0
    out: list[Contradiction] = []
    for j in sorted(rng.permutation(len(people))[:n].tolist()):
        person = people[j]
        for rel in RELATIONS:
            true = person.value(rel)
            wrong = [v for v in world.pool(rel) if v != true]
            out.append(Contradiction(person.name, rel, true, T.pick(rng, wrong)))
    return out


def target_chars(settings: GeneratorSettings) -> int:
    return 4 * settings.tokens_per_book  # ~4 characters per BPE token


def _header(plan: BookPlan, lang: T.Language = T.EN) -> list[str]:
    return [plan.title, lang.byline.format(author=plan.author)]


def _fact_sentences(
    rng: np.random.Generator, facts: list[tuple[str, str, str]], level: int, target: int, lang: T.Language = T.EN
) -> list[str]:
    """Cycle through the facts (person, relation, value) in fresh random orders until ``target`` characters.

    The cue template gets 30% of the draws (the rest spread over the level's paraphrases), so even a level-3 book
    states each fact in the exact form the item continues ~10 times.
    """
    out: list[str] = []
    chars = 0
    share = T.FILLER_SHARE[level]
    while chars < target:
        for j in rng.permutation(len(facts)):
            person, rel, value = facts[int(j)]
            options = T.templates_for(lang.fact_templates[rel], level)
            tmpl = options[0] if rng.random() < 0.3 else T.pick(rng, options)
            s = tmpl.format(p=person, x=value)
            if share and rng.random() < share:
                s = T.filler_sentence(rng, level) + " " + s
            out.append(s)
            chars += len(s) + 1
    return out


def write_fact(world: World, plan: BookPlan, settings: GeneratorSettings) -> str:
    rng = book_rng(settings, plan.kind, plan.index)
    by_name = {p.name: p for p in world.people}
    facts = [(name, rel, by_name[name].value(rel)) for name in plan.people for rel in RELATIONS]
    lang = T.language(settings.lang)
    body = _fact_sentences(rng, facts, plan.difficulty, target_chars(settings), lang)
    return "\n\n".join(_header(plan, lang)) + "\n\n" + T.paragraphs(rng, body) + "\n"


def write_misleading(world: World, plan: BookPlan, settings: GeneratorSettings) -> str:
    """States false facts, in the fact books' own templates; fewer facts, so each is repeated more than the truth."""
    rng = book_rng(settings, plan.kind, plan.index)
    facts = [(c.person, c.relation, c.false) for c in plan.contradictions]
    body = _fact_sentences(rng, facts, plan.difficulty, target_chars(settings))
    return "\n\n".join(_header(plan)) + "\n\n" + T.paragraphs(rng, body) + "\n"


def write_rule(world: World, plan: BookPlan, settings: GeneratorSettings) -> str:
    """States each rule in varied forms and works examples on the book's own people (never fact-book people)."""
    rng = book_rng(settings, plan.kind, plan.index)
    level = plan.difficulty
    lang = T.language(settings.lang)
    own = list(world.rule_people[plan.index * RULE_PEOPLE_PER_BOOK : (plan.index + 1) * RULE_PEOPLE_PER_BOOK])
    units: list[tuple[str, dict[str, str]]] = [("region", {"x": x, "r": world.places[x]}) for x in plan.places]
    units += [("ability", {"c": c, "a": world.creatures[c]}) for c in plan.creatures]
    out: list[str] = []
    chars, target = 0, target_chars(settings)
    while chars < target and units:
        for j in rng.permutation(len(units)):
            family, slots = units[int(j)]
            rules, examples = (
                (lang.region_rules, lang.region_examples) if family == "region"
                else (lang.ability_rules, lang.ability_examples)
            )
            s = T.pick(rng, T.templates_for(rules, level)).format(**slots)
            s += " " + T.pick(rng, T.templates_for(examples, level)).format(q=T.pick(rng, own), **slots)
            if T.FILLER_SHARE[level] and rng.random() < T.FILLER_SHARE[level]:
                s += " " + T.filler_sentence(rng, level)
            out.append(s)
            chars += len(s) + 1
    return "\n\n".join(_header(plan, lang)) + "\n\n" + T.paragraphs(rng, out, 2, 4) + "\n"


def write_noise(world: World, plan: BookPlan, settings: GeneratorSettings) -> str:
    """Fluent sentences about nothing, with stretches where one sentence repeats: low value by construction."""
    rng = book_rng(settings, plan.kind, plan.index)
    out: list[str] = []
    chars, target = 0, target_chars(settings)
    while chars < target:
        s = T.filler_sentence(rng, plan.difficulty)
        reps = int(rng.integers(2, 6)) if rng.random() < 0.3 else 1
        out.extend([s] * reps)
        chars += reps * (len(s) + 1)
    return "\n\n".join(_header(plan)) + "\n\n" + T.paragraphs(rng, out) + "\n"


def write_story(world: World, plan: BookPlan, settings: GeneratorSettings) -> tuple[str, list[Chapter]]:
    """Chapters of one recurring hero: lose a thing in one place, visit others, go back to the first place.

    The first scene names the companion and the place; the middle scenes bring other names and places (in-context
    distractors); the last scene returns. So "went back to ___" and "thanked ___" need the first scene, not the last.
    """
    rng = book_rng(settings, plan.kind, plan.index)
    level = plan.difficulty
    cast = list(world.story_cast)
    hero = cast[int(rng.integers(len(cast)))]
    others = [c for c in cast if c != hero]
    places = list(world.places)
    chapters: list[Chapter] = []
    parts: list[str] = ["\n\n".join(_header(plan))]
    chars, target = len(parts[0]), target_chars(settings)
    while chars < target:
        # Two or three middle scenes; two at level 3, whose filler makes scenes longer: an item's context (a whole
        # chapter but its end) must fit a nano model's 256-token window with room to spare, or the scorer's left
        # truncation would cut off the first scene, where the answer is.
        n_mid = 2 if level >= 3 else int(rng.integers(2, 4))
        pick_people = rng.permutation(len(others))[: 1 + n_mid]
        companion, helpers = others[int(pick_people[0])], tuple(others[int(j)] for j in pick_people[1:])
        pick_places = rng.permutation(len(places))[: 1 + n_mid]
        lost_at, visited = places[int(pick_places[0])], tuple(places[int(j)] for j in pick_places[1:])
        thing = T.pick(rng, world.objects)
        # Filler without the level-3 extra clause: it would lengthen contexts, not make linking harder.
        filler = (lambda: " " + T.filler_sentence(rng, min(level, 2))) if level >= 2 else (lambda: "")
        scenes = [
            f"Chapter {len(chapters) + 1}.",
            f"{hero} and {companion} came to {lost_at}.{filler()} In {lost_at}, {hero} lost the {thing}. "
            f"{companion} said that they would find the {thing} together.",
        ]
        for name, place in zip(helpers, visited, strict=True):
            trade = T.pick(rng, TRADES)
            scenes.append(
                f"{hero} and {companion} walked on to {place}.{filler()} There they met {name}, a {trade}. {name} had not seen the {thing}."
            )
        body = "\n\n".join(scenes)
        scene_cue = f"At last {hero} went back to"
        entity_cue = f"{scene_cue} {lost_at} and found the {thing}. {hero} thanked"
        ending = f"{entity_cue} {companion}, and they rested."
        chapter_text = body + "\n\n" + ending
        chapters.append(
            Chapter(
                hero, companion, helpers, lost_at, visited, thing, body + "\n\n" + scene_cue, body + "\n\n" + entity_cue
            )
        )
        parts.append(chapter_text)
        chars += len(chapter_text) + 2
    return "\n\n".join(parts) + "\n", chapters
