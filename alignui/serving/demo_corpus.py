"""The bundled synthetic chat corpus that the offline demo model is pre-trained on.

Owns: a small world of entities with facts, and templated user questions with
assistant answers in several styles (terse, plain, detailed, listed, with a
polite opener or closer). The styles are deliberately mixed so that two samples
for one prompt differ in ways a person (or a program) can prefer: length,
politeness, structure. Everything is a pure function of the seed.

Invariant: `chat_corpus(seed)` returns the same conversations for the same seed
on every machine (only `random.Random` is used, no hashing of sets).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

#: The phrase some answers end with; preference tests check for it programmatically.
POLITE_CLOSER = "Hope this helps!"


@dataclass(frozen=True)
class Entity:
    name: str
    kind: str
    color: str
    place: str
    size: str
    trait: str


ENTITIES: tuple[Entity, ...] = (
    Entity("the sky", "view", "blue", "above us", "huge", "changes with the weather"),
    Entity("grass", "plant", "green", "in fields and parks", "small", "grows back after it is cut"),
    Entity("a banana", "fruit", "yellow", "in warm countries", "small", "is sweet and soft"),
    Entity("an apple", "fruit", "red", "on trees in orchards", "small", "is crisp and sweet"),
    Entity("the sun", "star", "bright yellow", "at the center of our solar system", "enormous",
           "gives us light and heat"),
    Entity("the moon", "moon", "grey", "in orbit around the earth", "large", "shines with reflected light"),
    Entity("a cat", "animal", "often black or orange", "in many homes", "small", "likes to sleep a lot"),
    Entity("a dog", "animal", "brown, black or white", "in many homes", "medium", "is loyal and friendly"),
    Entity("an elephant", "animal", "grey", "in Africa and Asia", "very large", "has a long trunk"),
    Entity("a whale", "animal", "blue or grey", "in the ocean", "very large", "breathes air"),
    Entity("a rose", "flower", "red or pink", "in gardens", "small", "has a sweet smell"),
    Entity("snow", "weather", "white", "in cold places", "made of tiny flakes", "melts when it gets warm"),
    Entity("the ocean", "place", "blue", "across most of the earth", "vast", "is full of salt water"),
    Entity("a forest", "place", "green", "in many countries", "large", "is home to many animals"),
    Entity("a carrot", "vegetable", "orange", "in gardens and farms", "small", "grows under the ground"),
    Entity("a tomato", "fruit", "red", "in gardens", "small", "is often used in salads"),
    Entity("coffee", "drink", "dark brown", "in cafes and kitchens", "a cup at a time", "helps people wake up"),
    Entity("tea", "drink", "brown or green", "in cups all over the world", "a cup at a time", "is made from leaves"),
    Entity("bread", "food", "golden brown", "in bakeries", "a loaf", "is made from flour and water"),
    Entity("cheese", "food", "yellow or white", "in kitchens", "a block or a slice", "is made from milk"),
    Entity("a mountain", "place", "grey and white", "in high ranges", "very tall", "can have snow on top"),
    Entity("a river", "place", "blue or brown", "in valleys", "long", "flows toward the sea"),
    Entity("a bicycle", "machine", "any color", "on roads and paths", "small", "has two wheels"),
    Entity("a train", "machine", "many colors", "on railway tracks", "long", "carries many people"),
    Entity("a book", "object", "many colors", "in libraries and homes", "small", "is full of words"),
    Entity("a computer", "machine", "grey or black", "in offices and homes", "small", "runs programs"),
    Entity("a piano", "instrument", "black or white", "in music rooms", "large", "has many keys"),
    Entity("a guitar", "instrument", "brown", "in music rooms", "medium", "has six strings"),
    Entity("rain", "weather", "clear", "falling from clouds", "made of drops", "helps plants grow"),
    Entity("a lemon", "fruit", "yellow", "in warm countries", "small", "tastes sour"),
    Entity("a penguin", "animal", "black and white", "in cold southern seas", "small", "cannot fly but swims well"),
    Entity("a frog", "animal", "green", "near ponds", "small", "can jump far"),
    Entity("a bee", "insect", "yellow and black", "near flowers", "tiny", "makes honey"),
    Entity("an owl", "bird", "brown", "in forests", "small", "is awake at night"),
    Entity("a city", "place", "many colors", "all over the world", "large", "has many people and buildings"),
    Entity("the desert", "place", "sandy yellow", "in dry regions", "vast", "gets very little rain"),
)

QUESTIONS: tuple[str, ...] = (
    "What color is {name}?",
    "Tell me about {name}.",
    "Can you describe {name}?",
    "Where can I find {name}?",
    "Give me a fact about {name}.",
    "What do you know about {name}?",
    "Is {name} big or small?",
    "Why do people like {name}?",
    "Explain {name} to a child.",
    "Write one sentence about {name}.",
)

OPENERS: tuple[str, ...] = ("Sure! ", "Of course. ", "Great question. ", "Happy to help. ")


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _facts(e: Entity) -> list[str]:
    return [
        f"{_cap(e.name)} is {e.color}.",
        f"You can find {e.name} {e.place}.",
        f"{_cap(e.name)} is {e.size}.",
        f"{_cap(e.name)} {e.trait}.",
        f"{_cap(e.name)} is a kind of {e.kind}.",
    ]


def _lead_fact(question: str, e: Entity) -> str:
    """The fact that answers the question most directly."""
    facts = _facts(e)
    if "color" in question:
        return facts[0]
    if "Where" in question:
        return facts[1]
    if "big or small" in question:
        return facts[2]
    if "like" in question:
        return f"People like {e.name} because it {e.trait}."
    return facts[3]


def answer(question: str, e: Entity, rng: random.Random) -> str:
    """One assistant reply in a randomly chosen style."""
    lead = _lead_fact(question, e)
    others = [f for f in _facts(e) if f != lead]
    rng.shuffle(others)
    style = rng.random()
    if style < 0.25:
        body = lead
    elif style < 0.6:
        body = " ".join([lead] + others[:1])
    elif style < 0.85:
        body = " ".join([lead] + others[: rng.randint(2, 3)])
    else:
        items = [lead] + others[:2]
        body = "Here are some facts:\n" + "\n".join(f"{i + 1}. {t}" for i, t in enumerate(items))
    if rng.random() < 0.3:
        body = rng.choice(OPENERS) + body
    if rng.random() < 0.15:
        body = body + " " + POLITE_CLOSER
    return body


def question(e: Entity, rng: random.Random) -> str:
    return rng.choice(QUESTIONS).format(name=e.name)


def chat_corpus(n: int, seed: int = 0) -> list[list[dict[str, str]]]:
    """`n` single-turn conversations (user question, assistant answer); some get a system line."""
    rng = random.Random(seed)
    convs = []
    for _ in range(n):
        e = rng.choice(ENTITIES)
        q = question(e, rng)
        conv = [{"role": "user", "content": q}, {"role": "assistant", "content": answer(q, e, rng)}]
        if rng.random() < 0.1:
            conv.insert(0, {"role": "system", "content": "You are a helpful assistant."})
        convs.append(conv)
    return convs


def sample_prompts(n: int, seed: int = 1) -> list[str]:
    """Questions in the corpus's style, for prompt pools, tests and benchmarks."""
    rng = random.Random(seed)
    return [question(rng.choice(ENTITIES), rng) for _ in range(n)]
