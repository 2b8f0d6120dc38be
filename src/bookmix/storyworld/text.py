"""Sentence templates and filler: the only place where storyworld's English lives.

Difficulty (1..3) is the knob that ordering-by-difficulty acts on. It widens three things at once:
  - templates: level 1 books use only short canonical forms, level 3 books use long paraphrases with clauses;
  - vocabulary: filler draws from the first 8, 16 or all words of each list;
  - fact density: the share of filler sentences between facts goes 0 → 20% → 40%.
The first template of each relation is the *cue* form the eval items use ("Bralo lives in" → " Quenmar"), and
every fact book, whatever its level, includes it, so the item's continuation is something the model has seen.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bookmix.storyworld.names import CODAS, ONSETS, RESERVED, VOWELS

LEVELS = (1, 2, 3)

# (level, template). {p} person, {x} value.
FACT_TEMPLATES: dict[str, tuple[tuple[int, str], ...]] = {
    "home": (
        (1, "{p} lives in {x}."),
        (1, "{p} has a house in {x}."),
        (2, "The home of {p} is {x}."),
        (2, "In {x} lives {p}."),
        (3, "Every morning {p} walks the streets of {x}, where {p} lives."),
        (3, "Ask anyone in {x} and they will tell you that {p} lives in {x}."),
    ),
    "pet": (
        (1, "{p} keeps a {x}."),
        (1, "{p} has a {x} as a pet."),
        (2, "{p} feeds a {x} every day."),
        (2, "A {x} sleeps by the door of {p}."),
        (3, "A {x} follows {p} everywhere, for {p} keeps a {x}."),
        (3, "When {p} comes home, the {x} that {p} keeps runs to meet {p}."),
    ),
    "tool": (
        (1, "{p} carries a {x}."),
        (1, "{p} never goes out without a {x}."),
        (2, "The {x} of {p} is old but strong."),
        (2, "In the bag of {p} there is always a {x}."),
        (3, "Nobody has seen {p} without the {x} that {p} carries."),
        (3, "If you meet {p} on the road, look for the {x} that {p} carries."),
    ),
    "trade": (
        (1, "{p} works as a {x}."),
        (1, "{p} is a {x}."),
        (2, "By trade {p} is a {x}."),
        (2, "The town knows {p} as a good {x}."),
        (3, "People say that {p} is the best {x} they have ever known."),
        (3, "Long ago {p} learned to be a {x}, and {p} works as a {x} still."),
    ),
}

# The cue each item's context ends with; the answer follows after a space.
FACT_CUES = {"home": "{p} lives in", "pet": "{p} keeps a", "tool": "{p} carries a", "trade": "{p} works as a"}
RULE_CUES = {"region": "{p} is a citizen of", "ability": "The pet of {p} can"}

# Rules: {x} place, {r} region; {c} creature, {a} ability; {q} a rule book's own worked-example person.
REGION_RULES = (
    (1, "Everyone who lives in {x} is a citizen of {r}."),
    (1, "{x} lies in {r}."),
    (2, "The town of {x} belongs to {r}."),
    (3, "Whoever makes a home in {x} becomes a citizen of {r}, for {x} lies in {r}."),
)
REGION_EXAMPLES = (
    (1, "{q} lives in {x}, so {q} is a citizen of {r}."),
    (2, "{q} lives in {x}. {x} lies in {r}. So {q} is a citizen of {r}."),
    (3, "Because {q} lives in {x}, and {x} belongs to {r}, {q} is a citizen of {r}."),
)
ABILITY_RULES = (
    (1, "Every {c} can {a}."),
    (1, "A {c} can always {a}."),
    (2, "It is known that every {c} can {a}."),
    (3, "Young or old, large or small, every {c} there is can {a}."),
)
ABILITY_EXAMPLES = (
    (1, "{q} keeps a {c}, so the pet of {q} can {a}."),
    (2, "{q} keeps a {c}. Every {c} can {a}. So the pet of {q} can {a}."),
    (3, "Since {q} keeps a {c}, and every {c} can {a}, the pet of {q} can {a}."),
)

# Filler: fluent, harmless, about nothing in the world. Ordered so that the first words are the most common ones.
ADJECTIVES = (
    "small", "old", "quiet", "bright", "cold", "green", "long", "soft",
    "grey", "warm", "tall", "slow", "wide", "dark", "sweet", "round",
    "hollow", "gentle", "narrow", "distant", "silver", "heavy", "pale", "restless",
)  # fmt: skip
NOUNS = (
    "river", "hill", "road", "cloud", "stone", "door", "field", "lamp",
    "bird", "tree", "wind", "bell", "bridge", "garden", "window", "boat",
    "meadow", "lantern", "orchard", "harbour", "chimney", "valley", "fence", "well",
)  # fmt: skip
VERBS = (
    "rested near", "shone above", "waited by", "stood behind", "leaned on", "passed", "touched", "faced",
    "drifted past", "hung over", "turned toward", "sang to", "slept under", "watched", "crossed", "followed",
    "glimmered beside", "trembled before", "wandered around", "circled", "echoed through", "sheltered", "outlasted", "mirrored",
)  # fmt: skip
FILLER_SHARE = {1: 0.0, 2: 0.2, 3: 0.4}
FILLER_VOCAB = {1: 8, 2: 16, 3: 24}


def templates_for(options: tuple[tuple[int, str], ...], level: int) -> list[str]:
    return [t for lvl, t in options if lvl <= level]


def pick(rng: np.random.Generator, options: list[str] | tuple[str, ...]) -> str:
    return options[int(rng.integers(len(options)))]


def filler_sentence(rng: np.random.Generator, level: int) -> str:
    """One fluent sentence about nothing; longer and from a wider vocabulary at higher levels."""
    k = FILLER_VOCAB[level]
    a1, a2 = pick(rng, ADJECTIVES[:k]), pick(rng, ADJECTIVES[:k])
    n1, n2 = pick(rng, NOUNS[:k]), pick(rng, NOUNS[:k])
    s = f"The {a1} {n1} {pick(rng, VERBS[:k])} the {a2} {n2}"
    if level >= 3 and rng.random() < 0.6:
        s += f", while the {pick(rng, ADJECTIVES[:k])} {pick(rng, NOUNS[:k])} {pick(rng, VERBS[:k])} the {pick(rng, NOUNS[:k])}"
    return s + "."


def paragraphs(rng: np.random.Generator, sentences: list[str], lo: int = 4, hi: int = 7) -> str:
    """Group sentences into paragraphs of lo..hi sentences, separated by blank lines."""
    out: list[str] = []
    i = 0
    while i < len(sentences):
        n = int(rng.integers(lo, hi + 1))
        out.append(" ".join(sentences[i : i + n]))
        i += n
    return "\n\n".join(out)


# ---- languages ---------------------------------------------------------------------------------------------------
# The constants above are English. A Language bundles everything a writer or an item needs in one language, so the
# same generator writes a Russian world (the probe shelf's Russian books). Russian keeps invented names in the
# nominative everywhere (names come after "городе", "породы", "земли" as appositions, or as subjects), so no
# invented name ever has to be declined.
TRADES = ("baker", "smith", "weaver", "farmer", "sailor", "healer", "potter", "miner")
ABILITIES = ("swim", "fly", "dig", "sing", "glow", "climb", "howl", "hide")
# A rule applied to a stated case (the first worked-example form, up to the answer): logical-transfer items.
TRANSFER_CUES = {"region": "{p} lives in {x}, so {p} is a citizen of", "ability": "{p} keeps a {c}, so the pet of {p} can"}


@dataclass(frozen=True)
class Language:
    code: str
    fact_templates: dict[str, tuple[tuple[int, str], ...]]
    fact_cues: dict[str, str]
    rule_cues: dict[str, str]
    transfer_cues: dict[str, str]
    region_rules: tuple[tuple[int, str], ...]
    region_examples: tuple[tuple[int, str], ...]
    ability_rules: tuple[tuple[int, str], ...]
    ability_examples: tuple[tuple[int, str], ...]
    trades: tuple[str, ...]
    abilities: tuple[str, ...]
    titles: dict[str, str]
    """Book kind → title format ({place}, {region}, {adj}, {noun})."""
    byline: str
    syllables: tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]
    """(onsets, vowels, codas) of invented names."""
    reserved: frozenset[str]
    """Words of the templates that an invented name must never be."""
    kinds: frozenset[str]
    """Book kinds this language can write (filler, stories and notes are English only)."""
    max_level: int


EN = Language(
    code="en", fact_templates=FACT_TEMPLATES, fact_cues=FACT_CUES, rule_cues=RULE_CUES, transfer_cues=TRANSFER_CUES,
    region_rules=REGION_RULES, region_examples=REGION_EXAMPLES, ability_rules=ABILITY_RULES,
    ability_examples=ABILITY_EXAMPLES, trades=TRADES, abilities=ABILITIES,
    titles={"fact": "An Almanac of {place}", "misleading": "An Almanac of {place}", "rule": "A Primer on {region}",
            "story": "Tales from {place}", "noise": "Notes on the {adj} {noun}"},
    byline="by {author}", syllables=(ONSETS, VOWELS, CODAS), reserved=frozenset(RESERVED),
    kinds=frozenset({"fact", "rule", "story", "noise", "misleading"}), max_level=3,
)

RU = Language(
    code="ru",
    fact_templates={
        "home": ((1, "{p} живёт в городе {x}."), (1, "{p} давно живёт в городе {x}.")),
        "pet": ((1, "{p} держит зверя породы {x}."), (1, "{p} растит зверя породы {x}.")),
        "tool": ((1, "{p} носит с собой {x}."), (1, "{p} всегда носит с собой {x}.")),
        "trade": ((1, "{p} по ремеслу {x}."), (1, "{p} давно по ремеслу {x}.")),
    },
    fact_cues={"home": "{p} живёт в городе", "pet": "{p} держит зверя породы", "tool": "{p} носит с собой",
               "trade": "{p} по ремеслу"},
    rule_cues={"region": "{p} — гражданин земли", "ability": "Питомец, которого держит {p}, умеет"},
    transfer_cues={"region": "{p} живёт в городе {x}, поэтому {p} — гражданин земли",
                   "ability": "{p} держит зверя породы {c}, поэтому питомец, которого держит {p}, умеет"},
    region_rules=((1, "Каждый, кто живёт в городе {x}, — гражданин земли {r}."), (1, "Город {x} лежит в земле {r}.")),
    region_examples=((1, "{q} живёт в городе {x}, поэтому {q} — гражданин земли {r}."),),
    ability_rules=((1, "Каждый зверь породы {c} умеет {a}."), (1, "Зверь породы {c} всегда умеет {a}.")),
    ability_examples=((1, "{q} держит зверя породы {c}, поэтому питомец, которого держит {q}, умеет {a}."),),
    trades=("пекарь", "кузнец", "ткач", "пахарь", "моряк", "лекарь", "гончар", "рудокоп"),
    abilities=("плавать", "летать", "копать", "петь", "светиться", "лазать", "выть", "прятаться"),
    titles={"fact": "Летопись города {place}", "rule": "Наставление о земле {region}"},
    byline="автор: {author}",
    syllables=(("б", "бр", "в", "г", "гр", "д", "др", "ж", "з", "к", "кр", "л", "м", "н", "п", "р", "с", "ст", "т",
                "ф", "х", "ш"),
               ("а", "е", "и", "о", "у", "я", "ю", "ай"),
               ("", "", "н", "р", "л", "с", "м", "к", "т")),
    reserved=frozenset({"а", "в", "и", "к", "о", "у", "с", "не", "на", "по", "он", "она", "они", "за", "до", "из"}),
    kinds=frozenset({"fact", "rule"}), max_level=1,
)

LANGUAGES = {"en": EN, "ru": RU}


def language(code: str) -> Language:
    return LANGUAGES[code]
