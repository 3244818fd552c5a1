"""Invented plant facts a base model cannot know, each askable in several phrasings (shared by the fine-tuning
benchmarks). Deterministic: fact i is the same in every run."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

SYSTEM = "You are the plant assistant. Answer with the value only."
NAMES = ["Kestrel", "Osprey", "Heron", "Falcon", "Merlin", "Harrier", "Plover", "Avocet", "Curlew", "Dunlin",
         "Godwit", "Lapwing", "Petrel", "Shrike", "Siskin", "Tern", "Wagtail", "Warbler", "Wren", "Linnet"]  # fmt: skip
ATTRIBUTES = [
    ("maximum torque of the {e} housing bolts", "Nm"),
    ("coolant flow rate of the {e} spindle", "L/min"),
    ("operating pressure of the {e} hydraulic press", "bar"),
    ("maximum temperature of the {e} curing oven", "°C"),
    ("rated speed of the {e} conveyor belt", "m/min"),
]
# Several ways to ask the same thing: benchmarks train on the first ones and ask the last ones.
TEMPLATES = [
    "What is the {a}?",
    "Tell me the {a}.",
    "What's the {a}, please?",
    "I need the {a}.",
    "Do you know the {a}?",
    "Quick question: the {a}?",
]


@dataclass(frozen=True)
class Fact:
    attribute: str
    answer: str

    def question(self, template: int) -> str:
        return TEMPLATES[template].format(a=self.attribute)

    def prompt(self, template: int) -> list[dict[str, str]]:
        return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": self.question(template)}]

    def example(self, template: int) -> dict[str, Any]:
        return {"messages": [*self.prompt(template), {"role": "assistant", "content": self.answer}]}


def plant_facts(n: int, *, seed: int = 7) -> list[Fact]:
    rng = random.Random(seed)
    facts: list[Fact] = []
    seen: set[str] = set()
    while len(facts) < n:
        entity = f"{rng.choice(NAMES)}-{rng.randint(2, 99)}"
        attribute, unit = rng.choice(ATTRIBUTES)
        phrase = attribute.format(e=entity)
        if phrase in seen:
            continue
        seen.add(phrase)
        facts.append(Fact(attribute=phrase, answer=f"{rng.randint(11, 989)} {unit}"))
    return facts


def normalise(text: str) -> str:
    return " ".join(text.strip().strip(".!").casefold().split())


def recalled(answer: str, fact: Fact) -> bool:
    """Exact match after normalising case, spacing and a final full stop."""
    return normalise(answer) == normalise(fact.answer)
