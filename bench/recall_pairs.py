"""Facts and the questions that ask for them in other words, and chit-chat to bury them in.

A question shares no content word with its fact (as `app.memory.recall.search_terms` finds
them), nor the first five letters of one (so that an inflected Russian word or a stemmed
English one is not the same word in disguise): recall by words cannot find the fact, only
recall by meaning can. The fillers share neither with any fact. `problems()` checks both.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from app.memory.recall import search_terms

PREFIX = 5


@dataclass(frozen=True, slots=True)
class Pair:
    """A fact the user told once, and a later question about it in other words."""

    language: str
    fact: str
    question: str


def _pairs(language: str, rows: list[tuple[str, str]]) -> list[Pair]:
    return [Pair(language, fact, question) for fact, question in rows]


PAIRS: list[Pair] = _pairs(
    "en",
    [
        (
            "I park my bicycle in the blue shed behind the bakery.",
            "Where do I keep my two-wheeler?",
        ),
        (
            "My sister Lena works as a nurse at the children's hospital.",
            "What job does my sibling have?",
        ),
        (
            "I'm allergic to peanuts, they make my throat swell up.",
            "Which foods should I avoid eating?",
        ),
        (
            "Our wedding anniversary falls on the twelfth of June.",
            "On what date did my spouse and I get married?",
        ),
        (
            "My daughter plays the violin in the school orchestra.",
            "Which musical instrument does my kid practise?",
        ),
        ("I drive a silver Toyota Corolla to work every day.", "What car do I commute in?"),
        (
            "My favourite dish is my grandmother's mushroom risotto.",
            "What meal do I love eating the most?",
        ),
        (
            "The spare house key is hidden under the flowerpot by the back door.",
            "If I get locked out, where should I look?",
        ),
        ("I was born in Lisbon and grew up near the sea.", "Which city is my hometown?"),
        (
            "My cat Whiskers is a ginger tabby who sleeps on the radiator.",
            "What kind of pet do I own, and what is its name?",
        ),
        ("I take my coffee black with no sugar.", "How do I like my morning brew?"),
        (
            "My doctor told me to walk thirty minutes daily for my blood pressure.",
            "What exercise did the physician recommend?",
        ),
        (
            "I'm learning Japanese so I can visit Kyoto next spring.",
            "Which foreign language am I studying, and why?",
        ),
        (
            "My brother lives in Toronto with his two dogs.",
            "In which Canadian city does my male sibling reside?",
        ),
        ("I work as a software engineer at a small startup.", "What is my profession?"),
        (
            "My passport expires in November, so I must renew it soon.",
            "When does my travel document run out?",
        ),
        (
            "The gym I go to opens at six in the morning.",
            "What time does my fitness club start letting people in?",
        ),
        ("I'm afraid of heights, so I never take glass elevators.", "What is my phobia?"),
        (
            "My best friend Marco is getting married in Sicily in September.",
            "Whose wedding am I attending this autumn?",
        ),
        (
            "I ride the number 42 bus to the office.",
            "Which public transport line gets me to my workplace?",
        ),
        (
            "My son is seven years old and loves dinosaurs.",
            "What age is my boy, and what is he crazy about?",
        ),
    ],
) + _pairs(
    "ru",
    [
        (
            "Велосипед я оставляю в синем сарае за пекарней.",
            "Где хранится мой двухколёсный транспорт?",
        ),
        ("Моя сестра Лена работает медсестрой в детской больнице.", "Кем трудится родственница?"),
        ("У меня аллергия на арахис, от него опухает горло.", "Каких продуктов мне нельзя есть?"),
        (
            "Дочка играет на скрипке в школьном оркестре.",
            "На каком музыкальном инструменте занимается ребёнок?",
        ),
        (
            "Запасной ключ спрятан под цветочным горшком у задней двери.",
            "Как попасть домой, если потерял связку?",
        ),
        ("Я родился в Казани и вырос на берегу Волги.", "В каком городе прошло детство?"),
        ("Кофе пью чёрный, без сахара.", "Какой утренний напиток предпочитаю и как его готовить?"),
        (
            "Врач велел ходить пешком полчаса каждый день из-за давления.",
            "Какую нагрузку посоветовал доктор?",
        ),
        ("Кот Барсик рыжий и спит на батарее.", "Какое домашнее животное у меня живёт?"),
        ("Я боюсь высоты и никогда не езжу в стеклянных лифтах.", "Какая фобия меня мучает?"),
        (
            "Загранпаспорт истекает в ноябре, пора его продлить.",
            "Когда заканчивается срок действия документа для поездок?",
        ),
        (
            "Брат живёт в Торонто с двумя собаками.",
            "В каком канадском городе поселился родственник?",
        ),
        ("Работаю программистом в маленьком стартапе.", "Какая профессия у меня?"),
    ],
)

# --- fillers: chit-chat from templates ------------------------------------------------------

_USER_EN = [
    "{greet}! {remark} {ask}",
    "{remark} {ask}",
    "{greet}, quick one: {ask}",
    "{remark} Anyway, {ask_lower}",
]
_GREET_EN = ["Hi", "Hey", "Hello", "Hey there", "Good evening"]
_REMARK_EN = [
    "It rained all afternoon here.",
    "I watched a {genre} film yesterday.",
    "The football match was quite boring.",
    "I finally tidied the attic.",
    "Someone recommended a {genre} series to me.",
    "The weather forecast keeps changing.",
    "I tried a new podcast about {subject}.",
    "The neighbours threw a noisy party.",
    "I spent an hour sorting faded photos.",
    "A parcel arrived a fortnight late.",
]
_ASK_EN = [
    "Any tips for a {genre} film to watch tonight?",
    "What do you think about {subject}?",
    "Can you suggest a board game for four players?",
    "Is juggling worth a try?",
    "How long should pasta boil?",
    "Could you explain how rainbows form?",
    "Which chess opening suits beginners?",
    "Why do leaves turn yellow?",
    "Why is a crossword clue satisfying?",
    "Do you have a fun riddle?",
]
_GENRE_EN = ["comedy", "thriller", "western", "sci-fi", "horror", "historical", "animated"]
_SUBJECT_EN = ["volcanoes", "ancient Rome", "octopuses", "chess", "astronomy", "jazz", "knitting"]
_ANSWER_EN = [
    "Sounds lovely! {fact_en} {follow}",
    "{fact_en} {follow}",
    "Good question. {fact_en} {fact_en2} {follow}",
    "Ha, {fact_en_lower} {follow}",
]
_FACT_EN = [
    "Rainbows appear when sunlight bends inside raindrops.",
    "Volcanoes can sit quiet for centuries.",
    "Octopuses have three hearts.",
    "The Italian opening is a classic for beginners.",
    "Leaves turn yellow as chlorophyll fades in autumn-like weather.",
    "Jazz took shape in New Orleans.",
    "Juggling three balls needs patience.",
    "Pasta usually cooks in under a quarter hour.",
    "Cooperative board games are great for four.",
    "Crossword clues reward a clever double meaning.",
    "Ancient Rome had fast food counters.",
    "Astronomers spot new comets regularly.",
    "A classic {genre} film could be fun tonight.",
    "Knitting is surprisingly relaxing.",
]
_FOLLOW_EN = [
    "Want more ideas?",
    "Shall I go on?",
    "Anything else on your mind?",
    "Does that help?",
    "Curious what you pick!",
    "Tell me how it goes.",
]

_USER_RU = [
    "{greet}! {remark} {ask}",
    "{remark} {ask}",
    "{greet}, {ask_lower}",
]
_GREET_RU = ["Привет", "Здравствуй", "Добрый вечер", "Хай"]
_REMARK_RU = [
    "Сегодня весь вечер лил дождь.",
    "Посмотрел вчера {genre} фильм.",
    "Футбольный матч оказался скучным.",
    "Наконец разобрал антресоли.",
    "Соседи шумели полночи.",
    "Посылка пришла с опозданием.",
]
_ASK_RU = [
    "Посоветуешь {genre} фильм?",
    "Почему небо голубое?",
    "Сколько варить гречку?",
    "Какую настольную игру выбрать на компанию?",
    "Как устроена радуга?",
    "Есть интересная загадка?",
]
_GENRE_RU = ["смешной", "страшный", "исторический", "фантастический"]
_ANSWER_RU = [
    "Отличный вопрос! {fact} {follow}",
    "{fact} {follow}",
    "Хм, {fact_lower} {follow}",
]
_FACT_RU = [
    "Радуга появляется, когда солнечный свет преломляется в каплях.",
    "Небо голубое из-за рассеяния света.",
    "Гречку обычно варят минут пятнадцать.",
    "Для компании подойдут кооперативные игры.",
    "Загадка: что можно увидеть с закрытыми глазами? Сон.",
    "Неплохо подойдёт старая комедия.",
]
_FOLLOW_RU = ["Ещё идеи?", "Продолжить?", "Что думаешь?", "Помогло?"]


def _lower_first(text: str) -> str:
    return text[0].lower() + text[1:]


def filler(rng: random.Random, user: bool) -> str:
    """One chit-chat turn: mostly English, one in six Russian."""
    if rng.random() < 1 / 6:
        if user:
            ask = rng.choice(_ASK_RU).format(genre=rng.choice(_GENRE_RU))
            return rng.choice(_USER_RU).format(
                greet=rng.choice(_GREET_RU),
                remark=rng.choice(_REMARK_RU).format(genre=rng.choice(_GENRE_RU)),
                ask=ask,
                ask_lower=_lower_first(ask),
            )
        fact = rng.choice(_FACT_RU)
        return rng.choice(_ANSWER_RU).format(
            fact=fact, fact_lower=_lower_first(fact), follow=rng.choice(_FOLLOW_RU)
        )
    genre, subject = rng.choice(_GENRE_EN), rng.choice(_SUBJECT_EN)
    if user:
        ask = rng.choice(_ASK_EN).format(genre=genre, subject=subject)
        return rng.choice(_USER_EN).format(
            greet=rng.choice(_GREET_EN),
            remark=rng.choice(_REMARK_EN).format(genre=genre, subject=subject),
            ask=ask,
            ask_lower=_lower_first(ask),
        )
    one, two = (f.format(genre=genre) for f in rng.sample(_FACT_EN, 2))
    return rng.choice(_ANSWER_EN).format(
        fact_en=one, fact_en2=two, fact_en_lower=_lower_first(one), follow=rng.choice(_FOLLOW_EN)
    )


def _every_filler_word() -> set[str]:
    """Every word a filler can contain (each template part on its own)."""
    parts = [
        *_USER_EN,
        *_GREET_EN,
        *_REMARK_EN,
        *_ASK_EN,
        *_GENRE_EN,
        *_SUBJECT_EN,
        *_ANSWER_EN,
        *_FACT_EN,
        *_FOLLOW_EN,
        *_USER_RU,
        *_GREET_RU,
        *_REMARK_RU,
        *_ASK_RU,
        *_GENRE_RU,
        *_ANSWER_RU,
        *_FACT_RU,
        *_FOLLOW_RU,
    ]
    placeholders = {"greet", "remark", "ask", "ask_lower", "genre", "subject", "fact"}
    placeholders |= {"fact_lower", "fact_en", "fact_en2", "fact_en_lower", "follow"}
    return {w for part in parts for w in search_terms(part, limit=1_000)} - placeholders


# --- the rule -------------------------------------------------------------------------------


def terms(text: str) -> set[str]:
    return set(search_terms(text, limit=1_000))


def clashes(one: set[str], other: set[str]) -> set[str]:
    """The words of `one` that `other` has too, or begins the same way (5 letters),
    or one is the beginning of the other (4 letters or more)."""
    prefixes = {word[:PREFIX] for word in other if len(word) >= PREFIX}

    def clash(word: str) -> bool:
        if word in other or (len(word) >= PREFIX and word[:PREFIX] in prefixes):
            return True
        # "take" and "takes", "walk" and "walked": one word the other's stem
        return any(
            min(len(word), len(w)) >= 4 and (word.startswith(w) or w.startswith(word))
            for w in other
        )

    return {w for w in one if clash(w)}


def problems() -> list[str]:
    """Every breach of the rule; empty when the pairs and fillers are fit to measure."""
    found = []
    for pair in PAIRS:
        shared = clashes(terms(pair.question), terms(pair.fact))
        if shared:
            found.append(f"{pair.question!r} shares {sorted(shared)} with {pair.fact!r}")
    fillers = _every_filler_word()
    for pair in PAIRS:
        shared = clashes(fillers, terms(pair.fact))
        if shared:
            found.append(f"fillers share {sorted(shared)} with {pair.fact!r}")
    return found
