"""The hand-written material of the recall set (bench/recall_data.py assembles it per user).

Each variant is one memory and the questions an app would ask about it: a paraphrase
(sharing no content word with the memory: recall_data checks that, and fails if not) and a
lexical question (sharing some). `{p}` is the user's pronoun (she / he), `{pos}` its
possessive (her / his). Variants of one facet are different facts on the same subject: a
user holds one variant of most facets, so the other facets of a topic are the near misses.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Variant:
    text: str  # the profile entry's content, or the note line of an event (without its date)
    paraphrase: str
    lexical: str


@dataclass(frozen=True)
class ProfileFacet:
    topic: str
    sub_topic: str
    variants: tuple[Variant, ...]


@dataclass(frozen=True)
class NoteFacet:
    name: str
    variants: tuple[Variant, ...]


@dataclass(frozen=True)
class TimedFacet:
    """Notes of one kind of happening (all answer `question`): a time-scoped query asks it
    with a window around one of them, and the variant sharing most words with it (`decoy`,
    an index) happens outside the window."""

    name: str
    question: str
    decoy: int
    variants: tuple[str, ...]


def v(text: str, paraphrase: str, lexical: str) -> Variant:
    return Variant(text, paraphrase, lexical)


# A table, one variant per line: kept as written.
# fmt: off
PROFILE_FACETS: tuple[ProfileFacet, ...] = (
    ProfileFacet("diet", "preference", (
        v("Vegetarian, loves Ethiopian cuisine",
          "Does {p} eat meat?", "Which cuisine does {p} love?"),
        v("Vegan for six years, cooks lentil stews every Sunday",
          "Does {p} consume dairy or eggs?", "What does {p} cook on Sunday?"),
        v("Keeps halal and never drinks alcohol",
          "Can I serve {pos} pork and wine?", "Does {p} drink alcohol?"),
    )),
    ProfileFacet("diet", "intolerance", (
        v("Severe peanut allergy, carries an EpiPen",
          "Is there a food that could kill {pos}?", "Does {p} carry an EpiPen?"),
        v("Lactose intolerant, milk gives stomach cramps",
          "Can {p} have cheese or cream?", "Is {p} lactose intolerant?"),
        v("Gluten-free because of coeliac disease",
          "Can {p} eat bread or pasta?", "Why is {p} gluten-free?"),
    )),
    ProfileFacet("diet", "drinks", (
        v("Drinks three espressos before noon",
          "How much caffeine does {p} have a day?", "How many espressos does {p} drink?"),
        v("Switched from coffee to green tea last spring",
          "What hot beverage does {p} prefer now?", "Does {p} still drink coffee?"),
        v("Always takes oat milk in a latte",
          "What is {pos} usual order at a café?", "Does {p} like oat milk lattes?"),
    )),
    ProfileFacet("work", "title", (
        v("Works as a pediatric nurse on night shifts",
          "What does {p} do for a living?", "Does {p} work night shifts?"),
        v("Senior backend engineer at a fintech startup",
          "What is {pos} job?", "Is {p} an engineer at a startup?"),
        v("Teaches chemistry at a secondary school",
          "What is {pos} profession?", "Which school does {p} teach at?"),
    )),
    ProfileFacet("work", "commute", (
        v("Cycles twenty kilometres to the office",
          "How does {p} get there each morning?", "Does {p} cycle to the office?"),
        v("Commutes by train for an hour each way",
          "How long is {pos} journey in?", "Does {p} commute by train?"),
        v("Works fully remote from a home studio",
          "Does {p} ever go into an office?", "Does {p} work remote?"),
    )),
    ProfileFacet("family", "household", (
        v("Married to Tomas, two daughters aged 5 and 8",
          "Does {p} have kids?", "How old are {pos} daughters?"),
        v("Single, lives with a rescue greyhound named Biscuit",
          "Is {p} in a relationship?", "What is the name of {pos} greyhound?"),
        v("Divorced, shares custody of a teenage son",
          "Does {p} have children?", "Does {p} share custody of {pos} son?"),
    )),
    ProfileFacet("family", "animals", (
        v("Owns two cats, Miso and Tofu",
          "Does {p} have furry friends at home?", "What are {pos} cats called?"),
        v("Keeps a tank of tropical fish",
          "Are there pets in {pos} household?", "What fish does {p} keep?"),
        v("Walks a border collie twice a day",
          "Does {p} look after a dog?", "How often does {p} walk the collie?"),
    )),
    ProfileFacet("background", "city", (
        v("Lives in Porto, near the river",
          "Where is {p} based?", "Does {p} live in Porto?"),
        v("Moved to Denver from Ohio in 2021",
          "Which town does {p} call home?", "When did {p} move to Denver?"),
        v("Rents a flat in central Osaka",
          "Where does {p} stay these days?", "Does {p} rent a flat in Osaka?"),
    )),
    ProfileFacet("interest", "sports", (
        v("Runs marathons, best time 3:41",
          "Does {p} do any endurance races?", "What is {pos} best marathon time?"),
        v("Plays five-a-side football on Thursdays",
          "Is {p} on a team?", "When does {p} play football?"),
        v("Bouldering at the climbing gym three times a week",
          "What keeps {p} fit?", "How often does {p} go climbing?"),
    )),
    ProfileFacet("interest", "music", (
        v("Plays jazz piano in a small band",
          "Does {p} have a musical instrument?", "Does {p} play jazz piano?"),
        v("Listens to 90s hip hop all day",
          "What songs does {p} enjoy?", "Does {p} like hip hop?"),
        v("Sings alto in a community choir",
          "Is {p} part of a vocal group?", "Does {p} sing in a choir?"),
    )),
    ProfileFacet("interest", "books", (
        v("Reads Scandinavian crime novels",
          "What kind of fiction does {p} like?", "Does {p} read crime novels?"),
        v("Listens to history audiobooks on long drives",
          "What does {p} enjoy on road trips?", "Which audiobooks does {p} listen to?"),
        v("Collects first editions of Tolkien",
          "Is {p} a fan of a fantasy author?", "Does {p} collect first editions?"),
    )),
    ProfileFacet("background", "degree", (
        v("Studied architecture at TU Delft",
          "Where did {p} go to university?", "What did {p} study at Delft?"),
        v("Finished a PhD in marine biology",
          "What qualification does {p} hold?", "What was {pos} PhD in?"),
        v("Dropped out of college to start a bakery",
          "Did {p} graduate?", "Why did {p} drop out of college?"),
    )),
    ProfileFacet("wellbeing", "plans", (
        v("Wants to run a half marathon next year",
          "What race is {p} training for?", "Does {p} want to run a half marathon?"),
        v("Saving up to buy a house by 2026",
          "What is {p} putting money aside for?", "When does {p} want to buy a house?"),
        v("Hopes to become fluent in Japanese",
          "Which language is {p} learning?", "Does {p} hope to be fluent in Japanese?"),
    )),
    ProfileFacet("wellbeing", "condition", (
        v("Sleeps badly, often awake at 3 am",
          "Does {p} suffer from insomnia?", "Does {p} sleep badly?"),
        v("Has chronic lower back pain",
          "Does {p} have any ongoing medical issues?", "Does {p} have back pain?"),
        v("Migraines when skipping meals",
          "What triggers {pos} headaches?", "When does {p} get migraines?"),
    )),
    ProfileFacet("wellbeing", "fears", (
        v("Afraid of flying, takes trains across Europe",
          "Does {p} avoid planes?", "Is {p} afraid of flying?"),
        v("Terrified of spiders",
          "What creepy crawlies make {pos} panic?", "Is {p} scared of spiders?"),
        v("Gets anxious in large crowds",
          "Would {p} enjoy a packed stadium concert?", "Does {p} get anxious in crowds?"),
    )),
    ProfileFacet("background", "spoken", (
        v("Native Portuguese speaker, fluent in English",
          "What is {pos} mother tongue?", "Does {p} speak Portuguese?"),
        v("Grew up bilingual in Welsh and English",
          "What did {p} speak as a child?", "Is {p} bilingual in Welsh?"),
        v("Speaks Mandarin with her parents",
          "What language does {p} use with mum and dad?", "Does {p} speak Mandarin?"),
    )),
)

NOTE_FACETS: tuple[NoteFacet, ...] = (
    NoteFacet("medical", (
        v("Had a knee MRI after a football injury",
          "Did {p} get any scans done?", "Why did {p} have a knee MRI?"),
        v("Got the flu vaccine at the pharmacy",
          "Has {p} had {pos} jab this winter?", "Where did {p} get the flu vaccine?"),
        v("Blood test showed low iron",
          "Any results from {pos} lab checkup?", "What did the blood test show?"),
    )),
    NoteFacet("home", (
        v("Painted the kitchen sage green",
          "Did {p} redecorate?", "What colour is the kitchen painted?"),
        v("Landlord finally fixed the leaking boiler",
          "Is the heating working again?", "Did the landlord fix the boiler?"),
        v("Bought a second-hand sofa",
          "New furniture for the lounge?", "Did {p} buy a sofa?"),
    )),
    NoteFacet("career", (
        v("Got promoted to team lead",
          "Did {p} move up at {pos} company?", "When was {p} promoted to team lead?"),
        v("Presented the quarterly results to the board",
          "How did {pos} big pitch go?", "Did {p} present the quarterly results?"),
        v("Interviewing for a job in Berlin",
          "Is {p} thinking about switching employers?", "Is {p} interviewing in Berlin?"),
    )),
    NoteFacet("relatives", (
        v("Mother had hip surgery",
          "How is {pos} mum recovering from the operation?", "What surgery did {pos} mother have?"),
        v("Sister had a baby girl",
          "Any new arrivals in the family?", "Did {pos} sister have a baby?"),
        v("Parents celebrated their 40th wedding anniversary",
          "Any big milestones for {pos} mom and dad?", "When was the wedding anniversary?"),
    )),
    NoteFacet("hobby", (
        v("Started a sourdough starter",
          "Has {p} been baking bread?", "Did {p} start a sourdough starter?"),
        v("Finished knitting a wool scarf",
          "What has {p} made with yarn?", "Did {p} finish knitting the scarf?"),
        v("Planted tomatoes on the balcony",
          "Is {p} growing any vegetables?", "What did {p} plant on the balcony?"),
    )),
    NoteFacet("errands", (
        v("Sold the old car",
          "Does {p} still own a vehicle?", "Did {p} sell the car?"),
        v("Booked flights to Tokyo for October",
          "Any trips to Japan coming up?", "When are the flights to Tokyo?"),
        v("Cancelled the gym membership",
          "Is {p} still paying for fitness classes?", "Did {p} cancel the gym membership?"),
    )),
)

TIMED_FACETS: tuple[TimedFacet, ...] = (
    TimedFacet("hike", "Where did {p} go hiking with friends?", 1, (
        "Went hiking in the Alps",
        "Spent a weekend hiking in the Dolomites with old friends",
        "Hiked the coastal path in Cornwall",
    )),
    TimedFacet("dentist", "What happened at the dentist about {pos} toothache?", 1, (
        "Visited the dentist for a cleaning",
        "Emergency dentist visit for a cracked tooth and a toothache",
        "Dentist fitted a crown",
    )),
    TimedFacet("concert", "Which concert did {p} go to with {pos} sister?", 1, (
        "Saw Radiohead live in Lisbon",
        "Went to a jazz concert at the Blue Note with a sister",
        "Watched an open-air concert in the park",
    )),
    TimedFacet("dinner", "Where did {p} have dinner with colleagues?", 1, (
        "Dinner at a new Korean barbecue place",
        "Birthday dinner at a sushi restaurant with colleagues",
        "Tried a tapas bar downtown",
    )),
)
# fmt: on
