"""The probe shelf: a few small generated books per language whose facts, rules and two-hop chains are known, and
the probes that ask about them. A campaign mixes the shelf into every recipe at one small token share
(:mod:`bookmix.recipes.shelf`), so the real books are what varies between trials and a book's effect on the probes
says whether it makes a model better at taking in and combining new knowledge.

Per language: ``fact_books`` almanacs stating four facts (home, pet, tool, trade) of ``people_per_book`` invented
people each, and ``rule_books`` primers teaching two rules (each of four places lies in its region, each of four
creature kinds has its ability) with worked examples on people of their own. Every two-hop chain joins a person's fact (an almanac) with a
rule (a primer): its halves always live in different books. Three kinds of probe, each a multiple choice scored as a
continuation:

    fact_recall       "Bralo keeps a" → " vesh"                                        needs the almanac
    logical_transfer  "Bralo keeps a vesh, so the pet of Bralo can" → " swim"           needs the primer: its rule
                      applied to a case it never names (the case is stated, as it is in the almanac)
    synthesis         the same question with nothing stated: the model first answers "Bralo keeps a" itself, then
                      the rule is applied to *its* answer; right only when both hops are   needs both books

Pure: the same settings give the same books and probes, byte for byte, on any machine.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from bookmix.errors import BookmixError
from bookmix.storyworld import books as B
from bookmix.storyworld import text as T
from bookmix.storyworld.items import fact_items, two_hop_items
from bookmix.storyworld.settings import GeneratorSettings
from bookmix.storyworld.world import make_world

KINDS = ("fact_recall", "logical_transfer", "synthesis")
# What a two-hop chain goes through: derived relation → the fact it needs.
_VIA = {"region": "home", "ability": "pet"}


@dataclass(frozen=True)
class Question:
    context: str
    choices: tuple[str, ...]
    answer: int


@dataclass(frozen=True)
class Probe:
    id: str
    kind: str
    lang: str
    book: str
    """The book the probe is about (breakdowns, ablations): the almanac for fact recall, the primer otherwise."""
    helps: tuple[str, ...]
    """The shelf books the probe needs."""
    question: Question
    """The question scored last (for synthesis: the second hop with the true middle)."""
    first: Question | None = None
    """Synthesis only: the first hop, answered by the model itself."""
    second_contexts: tuple[str, ...] = ()
    """Synthesis only: the second hop's context for each choice of the first hop."""


@dataclass(frozen=True)
class ShelfBook:
    name: str
    """``<lang>/<kind>_<nnn>`` (en/fact_000, ru/rule_001): how ``exclude`` and probes name it."""
    lang: str
    kind: str
    text: str


@dataclass
class Shelf:
    books: list[ShelfBook] = field(default_factory=list)
    probes: list[Probe] = field(default_factory=list)

    @property
    def names(self) -> list[str]:
        return [b.name for b in self.books]


def _settings(
    lang: str, seed: int, fact_books: int, people_per_book: int, rule_books: int, tokens_per_book: int
) -> GeneratorSettings:
    n = fact_books + rule_books
    return GeneratorSettings(
        books=n,
        seed=seed,
        tokens_per_book=tokens_per_book,
        mix={"fact": fact_books / n, "rule": rule_books / n},
        people_per_fact_book=people_per_book,
        places=4,
        regions=4,
        creatures=4,
        objects=8,
        story_cast=8,
        choices=4,
        holdout_fraction=0.0,
        misleading_fraction=0.0,
        chat_pairs=0,
        difficulties=[1],
        lang=lang,
    )


def build_shelf(
    langs: list[str],
    seed: int = 0,
    fact_books: int = 3,
    people_per_book: int = 4,
    rule_books: int = 2,
    tokens_per_book: int = 1200,
) -> Shelf:
    """The shelf's books and probes for these settings (languages in the given order)."""
    if fact_books < 1 or rule_books < 1 or people_per_book < 1:
        raise BookmixError("shelf: needs at least one fact book, one rule book and one person per book")
    shelf = Shelf()
    for lang in langs:
        settings = _settings(lang, seed, fact_books, people_per_book, rule_books, tokens_per_book)
        counts = settings.counts()
        if counts["fact"] != fact_books or counts["rule"] != rule_books:  # apportionment cannot miss, but be sure
            raise BookmixError(f"shelf: {lang}: could not plan {fact_books} fact and {rule_books} rule books")
        world = make_world(settings, counts["fact"], counts["rule"])
        plans = B.plan_books(settings, world)
        # Primers twice as long as almanacs: a primer's rules and worked examples are longer sentences than facts, and
        # each rule should be read about as often as each fact (~10 times per read of the shelf).
        rule_settings = replace(settings, tokens_per_book=2 * tokens_per_book)
        for plan in plans:
            text = (
                B.write_fact(world, plan, settings) if plan.kind == "fact" else B.write_rule(world, plan, rule_settings)
            )
            shelf.books.append(ShelfBook(_name(lang, plan.file), lang, plan.kind, text))
        shelf.probes += _probes(lang, settings, world, plans)
    return shelf


def _name(lang: str, file: str) -> str:
    return f"{lang}/{file.removesuffix('.txt')}"


def _probes(lang: str, settings: GeneratorSettings, world, plans) -> list[Probe]:  # noqa: ANN001
    L = T.language(lang)
    facts = fact_items(settings, world, plans)
    out = [
        Probe(
            id=f"{lang}/{it.id}",
            kind="fact_recall",
            lang=lang,
            book=_name(lang, it.helps[0]),
            helps=(_name(lang, it.helps[0]),),
            question=Question(it.context, tuple(it.choices), it.answer),
        )
        for it in facts
    ]
    by_fact = {(it.info["person"], it.info["relation"]): it for it in facts}
    for it in two_hop_items(settings, world, plans):
        person, derived = it.info["person"], it.info["relation"]
        fact_book, rule_book = (_name(lang, b) for b in it.helps)
        first = by_fact[(person, _VIA[derived])]
        cue = L.transfer_cues[derived]
        seconds = tuple(cue.format(p=person, x=c.strip(), c=c.strip()) for c in first.choices)
        true = Question(seconds[first.answer], tuple(it.choices), it.answer)
        out.append(
            Probe(
                id=f"{lang}/logical_transfer/{person}/{derived}",
                kind="logical_transfer",
                lang=lang,
                book=rule_book,
                helps=(rule_book,),
                question=true,
            )
        )
        out.append(
            Probe(
                id=f"{lang}/synthesis/{person}/{derived}",
                kind="synthesis",
                lang=lang,
                book=rule_book,
                helps=(fact_book, rule_book),
                question=true,
                first=Question(first.context, tuple(first.choices), first.answer),
                second_contexts=seconds,
            )
        )
    return out
