"""Random academic-sounding text and greedy line breaking (with justification) for Base-14 fonts."""

from __future__ import annotations

import random
from dataclasses import dataclass

from serve_app.training.synth.canvas import text_width

_WORD_TEXT = """
    the of and to in is that for with as on by this are be from at an which or we it our not can these
    model data results method analysis system performance approach between each both however also used
    using based two three several first second new different large small significant important study
    process structure function value values sample samples table figure section shown observed reported
    measured estimated proposed previous recent general specific high low higher lower increase decrease
    effect effects response control group groups time period rate rates level levels number total average
    mean standard error distribution network training learning feature features layer layers input output
    document documents page pages text layout region regions detection accuracy precision recall score
    experiment experiments evaluation dataset datasets benchmark baseline baselines state art task tasks
    information knowledge language structure sequence temperature pressure energy surface material growth
    patients clinical treatment outcome outcomes survey population economic policy market cost costs price
    signal frequency image images resolution parameter parameters estimate theory model models framework
    design implementation algorithm algorithms efficient robust simple complex linear nonlinear optimal
    under over across within without during after before while when where because since therefore thus
    further more most less least often usually typically generally particularly respectively finally
    provide provides describe describes present presents demonstrate demonstrates suggest suggests indicate
    consider considered compare compared obtain obtained require required improve improved achieve achieved
    across range ranges condition conditions case cases example examples application applications
    community regional national global local individual collective physical chemical biological social
"""
WORDS: tuple[str, ...] = tuple(dict.fromkeys(_WORD_TEXT.split()))
SECTION_NAMES: tuple[str, ...] = (
    "Introduction",
    "Related Work",
    "Background",
    "Methods",
    "Materials and Methods",
    "Experimental Setup",
    "Data Collection",
    "Results",
    "Evaluation",
    "Analysis",
    "Discussion",
    "Limitations",
    "Conclusion",
    "Future Work",
    "Implementation Details",
    "Case Study",
)


# ---------------------------------------------------------------------------------------------- words


def random_word(rng: random.Random) -> str:
    return rng.choice(WORDS)


def _sentence(rng: random.Random, lo: int = 6, hi: int = 20) -> str:
    words = [random_word(rng) for _ in range(rng.randint(lo, hi))]
    words[0] = words[0].capitalize()
    for i in range(2, len(words) - 2):
        roll = rng.random()
        if roll < 0.05:
            words[i] += ","
        elif roll < 0.07:
            words[i] = f"{rng.randint(2, 99)}.{rng.randint(0, 9)}%"
        elif roll < 0.085:
            words[i] = f"[{rng.randint(1, 48)}]"
    return " ".join(words) + "."


def random_sentences(rng: random.Random, count: int) -> str:
    return " ".join(_sentence(rng) for _ in range(count))


def random_title(rng: random.Random, n: int) -> str:
    small = {"of", "and", "to", "in", "for", "with", "on", "by", "the", "an", "at", "or", "from"}
    words = [random_word(rng) for _ in range(n)]
    return " ".join(w if (i and w in small) else w.capitalize() for i, w in enumerate(words))


# ---------------------------------------------------------------------------------------------- lines


@dataclass(frozen=True)
class Line:
    """A laid-out line of text: offset from the block's left edge, natural width and word spacing."""

    text: str
    x: float
    width: float
    word_spacing: float = 0.0


def wrap(
    text: str, font: str, size: float, width: float, *, justify: bool, indent: float = 0.0
) -> list[Line]:
    """Greedy line breaking; justified lines get PDF word spacing (``Tw``) to fill ``width``."""
    space = text_width(" ", font, size)
    lines: list[Line] = []
    current: list[str] = []
    current_w = 0.0
    for word in text.split():
        w = text_width(word, font, size)
        avail = width - (indent if not lines else 0.0)
        if current and current_w + space + w > avail:
            lines.append(_make_line(current, current_w, avail, indent if not lines else 0.0, justify))
            current, current_w = [], 0.0
        current_w = current_w + space + w if current else w
        current.append(word)
    if current:
        lines.append(_make_line(current, current_w, width, indent if not lines else 0.0, False))
    return lines


def _make_line(words: list[str], natural: float, avail: float, x: float, justify: bool) -> Line:
    gaps = len(words) - 1
    spacing = (avail - natural) / gaps if justify and gaps > 0 else 0.0
    return Line(" ".join(words), x, natural + spacing * gaps, spacing)


def centered(lines: list[Line], width: float) -> list[Line]:
    return [Line(ln.text, (width - ln.width) / 2, ln.width) for ln in lines]
