"""Memories and questions for the long-term-memory benchmark: sentences of the kind mem0 extracts
from conversations (short third-person facts), made from templates and slot values, and
questions an agent would ask about a user. Deterministic for a given seed."""

from __future__ import annotations

import random
import string

SLOTS: dict[str, tuple[str, ...]] = {
    "drink": ("green tea", "black coffee", "oat milk lattes", "sparkling water", "espresso",
              "chamomile tea", "orange juice", "hot chocolate", "matcha", "cold brew"),
    "daypart": ("morning", "afternoon", "evening", "late night"),
    "job": ("nurse", "software engineer", "teacher", "architect", "accountant", "chef",
            "product manager", "data analyst", "pharmacist", "civil engineer", "lawyer",
            "graphic designer"),
    "city": ("Berlin", "Lisbon", "Porto", "Tokyo", "Montreal", "Nairobi", "Buenos Aires",
             "Copenhagen", "Seoul", "Edinburgh", "Melbourne", "Vienna", "Austin", "Kyoto"),
    "allergen": ("peanuts", "shellfish", "gluten", "lactose", "penicillin", "cats", "pollen",
                 "sesame", "eggs", "tree nuts"),
    "pet": ("dog", "cat", "parrot", "rabbit", "tortoise", "hamster"),
    "name": ("Max", "Luna", "Olive", "Pepper", "Milo", "Nala", "Biscuit", "Ziggy", "Clara",
             "Jonas", "Amara", "Theo", "Ines", "Ravi", "Sofia", "Kenji"),
    "month": ("January", "February", "March", "April", "May", "June", "July", "August",
              "September", "October", "November", "December"),
    "hobby": ("hiking", "rock climbing", "baking sourdough", "playing chess", "birdwatching",
              "painting watercolours", "cycling", "gardening", "woodworking", "photography"),
    "language": ("Spanish", "Japanese", "German", "Portuguese", "Korean", "Italian", "Swahili"),
    "freq": ("every morning", "twice a week", "on the train", "before bed", "at lunch"),
    "cuisine": ("Thai", "Ethiopian", "Mexican", "Japanese", "Lebanese", "Italian", "Indian"),
    "dish": ("green curry", "injera", "tacos al pastor", "ramen", "falafel", "risotto",
             "masala dosa"),
    "sport": ("football", "basketball", "tennis", "volleyball", "hockey", "swimming"),
    "weekday": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"),
    "car": ("an electric hatchback", "an old Volvo estate", "a hybrid SUV", "a motorbike"),
    "minutes": ("10", "15", "20", "30", "45", "60"),
    "day": ("3rd", "9th", "12th", "17th", "21st", "28th"),
    "year": ("2015", "2017", "2019", "2020", "2021", "2023"),
    "food": ("red meat", "sugar", "fried food", "dairy", "spicy food", "mushrooms", "olives"),
    "genre": ("science fiction", "crime", "historical", "fantasy", "literary"),
    "author": ("Ursula K. Le Guin", "Haruki Murakami", "Chimamanda Ngozi Adichie",
               "Kazuo Ishiguro", "Tana French", "Ted Chiang"),
    "tool": ("Jira", "Linear", "Trello", "Asana", "a paper notebook", "Notion"),
    "race": ("half marathon", "10k run", "triathlon", "marathon", "cycling sportive"),
    "music": ("lo-fi beats", "classical piano", "jazz", "ambient electronica", "film scores"),
    "channel": ("email", "SMS", "Slack", "push notifications", "phone calls"),
    "n": ("3", "6", "12"),
}  # fmt: skip

MEMORY_TEMPLATES = (
    "Prefers {drink} in the {daypart}.",
    "Works as a {job} in {city}.",
    "Is allergic to {allergen}.",
    "Has a {pet} named {name}.",
    "Is planning a trip to {city} in {month}.",
    "Enjoys {hobby} on weekends.",
    "Is learning {language} and practises {freq}.",
    "Favourite cuisine is {cuisine}, especially {dish}.",
    "Their child {name} plays {sport} every {weekday}.",
    "Drives {car} and commutes {minutes} minutes to work.",
    "Birthday is on {month} {day}.",
    "Avoids {food} for health reasons.",
    "Reads {genre} novels before bed and is currently reading {author}.",
    "Wants meeting reminders {minutes} minutes in advance.",
    "Uses {tool} to track projects at work.",
    "Moved to {city} in {year}.",
    "Is training for a {race} in {month}.",
    "Listens to {music} while working.",
    "Prefers {channel} for notifications, never {channel}.",
    "Has a dentist appointment every {n} months, usually on a {weekday}.",
    "Has been a {job} since {year} and enjoys {hobby} to relax.",
    "Partner {name} is a {job} who loves {cuisine} food.",
    "Drinks {drink} but stopped eating {food} in {year}.",
    "Goes {hobby} with {name} in {city} every {month}.",
)

QUESTION_TEMPLATES = (
    "What does the user like to drink in the {daypart}?",
    "Where does the user work and what is their job?",
    "Does the user have any allergies I should know about?",
    "What is the name of the user's {pet}?",
    "Is the user travelling to {city} soon?",
    "What does the user like to do on weekends?",
    "Which language is the user learning?",
    "Can you suggest a {cuisine} restaurant the user would like?",
    "When is the user's birthday?",
    "How long is the user's commute?",
    "What book is the user reading at the moment?",
    "Which tool does the user use to track projects?",
    "How should I send notifications to the user?",
    "Is the user training for a {race}?",
    "What music helps the user focus?",
    "Does the user eat {food}?",
    "Does any of the user's children play {sport}?",
    "When did the user move to {city}?",
    "Should I book the user a table somewhere that serves {dish}?",
    "How early does the user want to be reminded of a meeting?",
    "Would the user enjoy {hobby} in {city}?",
    "Is the user free on {weekday} afternoons for {sport}?",
    "Should I offer the user {drink} at the {daypart} meeting?",
    "Is {name} the name of the user's {pet}?",
    "Does the user speak any {language}?",
    "Did the user say they moved to {city} in {year}?",
    "Would a {genre} book by {author} make a good gift for the user?",
)


def _fill(template: str, rng: random.Random) -> str:
    fields = [f for _, f, _, _ in string.Formatter().parse(template) if f]
    values = {f: rng.choice(SLOTS[f]) for f in set(fields)}
    # A slot named twice (channel ... never channel) gets two different values.
    out = template
    for field in fields:
        out = out.replace("{" + field + "}", values.pop(field, None) or rng.choice(SLOTS[field]), 1)
    return out


def unique_sentences(templates: tuple[str, ...], count: int, seed: int) -> list[str]:
    """`count` distinct sentences made from the templates (fewer if they cannot make that many)."""
    rng = random.Random(seed)
    seen: dict[str, None] = {}
    attempts = 0
    while len(seen) < count and attempts < count * 50:
        attempts += 1
        seen.setdefault(_fill(rng.choice(templates), rng), None)
    return list(seen)


def memory_sentences(count: int, seed: int = 1) -> list[str]:
    return unique_sentences(MEMORY_TEMPLATES, count, seed)


def questions(count: int, seed: int = 2) -> list[str]:
    return unique_sentences(QUESTION_TEMPLATES, count, seed)
