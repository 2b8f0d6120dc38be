"""The world: invented entities, their facts, and two rules — a pure function of the settings and the seed.

Facts are about *people* (stated by fact books, contradicted by misleading books):
    home  (a place)      "Bralo lives in Quenmar."
    pet   (a creature)   "Bralo keeps a vesh."
    tool  (an object)    "Bralo carries a glimmet."
    trade (a trade word) "Bralo works as a baker."
Rules are about *places and creatures* (taught by rule books with worked examples on people of their own):
    every one who lives in a place is a citizen of that place's region;
    every creature of a kind can do that kind's ability (inheritance: the pet of Bralo can swim).
Two-hop items join a person's fact from a fact book with a rule from a rule book.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from bookmix.storyworld.names import cap
from bookmix.storyworld.names import make_names as _make_names
from bookmix.storyworld.settings import GeneratorSettings

# Plain words of the book's language for the closed-class answers: their tokens are shared with the templates, so
# only the association (who → which) has to be learned, not the word itself.
from bookmix.storyworld.text import ABILITIES, TRADES, language  # noqa: E402,F401  (TRADES, ABILITIES: English)

RELATIONS = ("home", "pet", "tool", "trade")

# Worked-example people per rule book: enough to show each rule a few times with different names.
RULE_PEOPLE_PER_BOOK = 8


@dataclass(frozen=True)
class Person:
    name: str
    home: str
    pet: str
    tool: str
    trade: str

    def value(self, relation: str) -> str:
        return getattr(self, relation)


@dataclass(frozen=True)
class World:
    regions: tuple[str, ...]
    places: dict[str, str]
    """place → region."""
    creatures: dict[str, str]
    """creature kind → ability."""
    objects: tuple[str, ...]
    people: tuple[Person, ...]
    """The people fact books talk about, in fact-book order (people_per_fact_book each)."""
    rule_people: tuple[str, ...]
    """Names used only in rule books' worked examples."""
    story_cast: tuple[str, ...]
    """Names used only in stories."""
    authors: tuple[str, ...]
    trades: tuple[str, ...] = TRADES
    abilities: tuple[str, ...] = ABILITIES

    def pool(self, relation: str) -> tuple[str, ...]:
        """All possible values of a relation: the choices a multiple-choice item draws distractors from."""
        return {
            "home": tuple(self.places),
            "pet": tuple(self.creatures),
            "tool": self.objects,
            "trade": self.trades,
            "region": self.regions,
            "ability": self.abilities,
        }[relation]

    def to_dict(self) -> dict[str, Any]:
        return {
            "regions": list(self.regions),
            "places": dict(self.places),
            "creatures": dict(self.creatures),
            "objects": list(self.objects),
            "trades": list(self.trades),
            "abilities": list(self.abilities),
            "people": [asdict(p) for p in self.people],
            "rule_people": list(self.rule_people),
            "story_cast": list(self.story_cast),
            "authors": list(self.authors),
        }


def make_world(settings: GeneratorSettings, n_fact_books: int, n_rule_books: int) -> World:
    """The world for these settings; the same settings give the same world."""
    rng = np.random.default_rng([settings.seed, 1])
    taken: set[str] = set()
    lang = language(settings.lang)
    trades, abilities = lang.trades, lang.abilities

    def make_names(rng, n, syllables, taken):  # noqa: ANN001,ANN202 - the language's syllables and reserved words
        return _make_names(rng, n, syllables, taken, alphabet=lang.syllables, reserved=lang.reserved)

    regions = tuple(cap(n) for n in make_names(rng, settings.regions, (2, 2), taken))
    place_names = [cap(n) for n in make_names(rng, settings.places, (2, 3), taken)]
    # Every region gets places before any gets a second round, so each region is an answer somewhere.
    region_of = [regions[i % len(regions)] for i in rng.permutation(len(place_names))]
    places = dict(zip(place_names, region_of, strict=True))
    creature_names = make_names(rng, settings.creatures, (1, 2), taken)
    creatures = {
        c: abilities[int(i) % len(abilities)]
        for c, i in zip(creature_names, rng.permutation(len(creature_names)), strict=True)
    }
    objects = tuple(make_names(rng, settings.objects, (2, 2), taken))

    n_people = n_fact_books * settings.people_per_fact_book
    people_names = [cap(n) for n in make_names(rng, n_people, (2, 2), taken)]
    people = tuple(
        Person(
            name=name,
            home=place_names[int(rng.integers(len(place_names)))],
            pet=creature_names[int(rng.integers(len(creature_names)))],
            tool=objects[int(rng.integers(len(objects)))],
            trade=trades[int(rng.integers(len(trades)))],
        )
        for name in people_names
    )
    rule_people = tuple(cap(n) for n in make_names(rng, n_rule_books * RULE_PEOPLE_PER_BOOK, (2, 2), taken))
    story_cast = tuple(cap(n) for n in make_names(rng, settings.story_cast, (2, 2), taken))
    authors = tuple(
        f"{cap(a)} {cap(b)}"
        for a, b in zip(make_names(rng, 16, (2, 2), taken), make_names(rng, 16, (2, 3), taken), strict=True)
    )
    return World(regions, places, creatures, objects, people, rule_people, story_cast, authors, trades, abilities)
