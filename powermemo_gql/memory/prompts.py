"""Prompts of each pipeline step, in English and Chinese.

Every step answers in JSON, parsed strictly (memory/parsing.py); the shapes are
spelled out in the prompts so that any instruction-following model can comply.
"""

from __future__ import annotations

from dataclasses import dataclass

from powermemo_gql.profiles.config import Language, ProfileConfig


@dataclass(frozen=True)
class Prompts:
    summarize: str
    tags_hint: str  # appended to summarize when the project has event tags
    extract: str
    prefer_slots: str  # extract, lenient mode
    only_slots: str  # extract, strict mode
    existing_keys: str  # extract, when the user has entries
    merge: str
    tag_event: str
    organize: str
    shorten: str
    keep_language: str
    output_language: str
    app_frame: str  # prefixed to every call when a system prompt is set


EN = Prompts(
    summarize=(
        "You read what a user said and wrote, and note what it tells about the user: facts, "
        "preferences, plans and events. Be brief and factual; leave out small talk and anything "
        "said only by the assistant. Lines are dated ([YYYY-MM-DD Day] headers, HH:MM times). "
        "Write one note per line, ending with the date it was said: "
        "'- <note> [said YYYY-MM-DD]'. Turn relative times (yesterday, next month, last "
        "summer) into absolute dates from that date, and write in the note when the thing "
        "itself happens or happened, when that is another time.\n"
        '{tags_hint}Answer with JSON only: {"summary": "<the notes, one per line>"}'
    ),
    tags_hint="Note especially anything about: {tags}.\n",
    extract=(
        "You keep a structured profile of a user. From the notes below, list each fact about "
        "the user as a topic, a sub_topic and a short content (keep its dates).\n{slot_rule}"
        "{existing_keys}Leave out guesses.\n"
        'Answer with JSON only: {"facts": [{"topic": "...", "sub_topic": "...", '
        '"content": "..."}]}; use {"facts": []} when there is nothing.'
    ),
    prefer_slots=(
        "Prefer these topics and sub-topics:\n{slots}\n"
        "Use a new topic or sub_topic (short snake_case) only when none fits.\n"
    ),
    only_slots=(
        "Use only these topics and sub-topics; facts that fit none are dropped:\n{slots}\n"
    ),
    existing_keys=(
        "The profile already has these entries (topic: sub_topics); file a fact under one of "
        "them when it is about the same thing, rather than a new name: {keys}\n"
    ),
    merge=(
        "You maintain a user profile. For each numbered item you get the current value of a "
        "profile entry (or null when the entry is new) and a new observation (a list when there "
        "are several). Decide:\n"
        '- "update": give the merged content, keeping what is still true from both, newest '
        "first when they conflict, and the dates; merge lists into one list without repeats;\n"
        '- "add": for a new entry worth keeping, give its content;\n'
        '- "abort": the observations add nothing, contradict themselves, or do not fit the '
        "entry's topic description.\n"
        'An item with "observed_as" was filed under that other sub_topic, close to this '
        'entry: "update" merges it into this entry, "add" keeps it apart under observed_as.\n'
        "{slot_descriptions}"
        'Answer with JSON only: {"decisions": [{"index": 0, "action": "update", '
        '"content": "..."}]}, one decision per item.'
    ),
    tag_event=(
        "You tag an event in a user's life. Tags:\n{tags}\n"
        "Give a value for each tag that applies, from the event summary below.\n"
        'Answer with JSON only: {"tags": [{"tag": "...", "value": "..."}]}'
    ),
    organize=(
        "A topic of a user profile has too many sub-topics. Regroup its entries into at most "
        "{limit} sub-topics: merge related entries, keep every fact that matters and its "
        "dates, drop duplicates. Use short snake_case sub-topic names.\n"
        'Answer with JSON only: {"entries": [{"sub_topic": "...", "content": "..."}]}'
    ),
    shorten=(
        "Shorten each numbered profile entry to about {words} words, keeping the facts "
        "that matter most and their dates.\n"
        'Answer with JSON only: {"entries": [{"index": 0, "content": "..."}]}, one per item.'
    ),
    keep_language="Write every content in the language the user used.",
    output_language="Write every content in English.",
    app_frame="About the app these memories serve: {system_prompt}\n\n",
)

ZH = Prompts(
    summarize=(
        "你将阅读用户说过和写过的内容，记录其中关于用户的信息：事实、偏好、计划和事件。"
        "请简洁、客观；略去寒暄以及仅由助手说出的内容。每行内容都带有日期"
        "（[YYYY-MM-DD 星期] 标题，HH:MM 时间）。每条记录占一行，并以说出的日期结尾："
        "'- <记录> [said YYYY-MM-DD]'。请根据该日期把相对时间（昨天、下个月、去年夏天）"
        "换算成具体日期；若事情本身发生在另一时间，请在记录中写明。\n"
        '{tags_hint}只用 JSON 回答：{"summary": "<记录，每行一条>"}'
    ),
    tags_hint="尤其留意以下方面：{tags}。\n",
    extract=(
        "你负责维护用户的结构化档案。请从下面的记录中，把关于用户的每一条事实整理为"
        "topic、sub_topic 和简短的 content（保留其日期）。\n{slot_rule}{existing_keys}"
        "不要猜测。\n"
        '只用 JSON 回答：{"facts": [{"topic": "...", "sub_topic": "...", "content": "..."}]}；'
        '没有内容时回答 {"facts": []}。'
    ),
    prefer_slots=(
        "优先使用以下主题和子主题：\n{slots}\n只有在没有合适的主题时才新建（简短的 snake_case）。\n"
    ),
    only_slots="只能使用以下主题和子主题，不符合任何一个的事实会被丢弃：\n{slots}\n",
    existing_keys=(
        "档案中已有以下条目（topic: sub_topic）；事实涉及同一件事时，请归入已有条目，"
        "不要另起新名：{keys}\n"
    ),
    merge=(
        "你负责维护用户档案。每个编号条目给出档案中的当前值（新条目为 null）"
        "和新的观察（有多条时为列表）。请决定：\n"
        '- "update"：给出合并后的内容，保留两者中仍然成立的部分，冲突时以较新的为准，'
        "保留日期；列表合并为一个不重复的列表；\n"
        '- "add"：新条目值得保留时，给出其内容；\n'
        '- "abort"：新观察没有新信息、自相矛盾，或不符合该主题的描述。\n'
        '带有 "observed_as" 的条目原本记在与此条目相近的另一个子主题下："update" 表示并入此条目，'
        '"add" 表示以 observed_as 单独保存。\n{slot_descriptions}'
        '只用 JSON 回答：{"decisions": [{"index": 0, "action": "update", "content": "..."}]}，'
        "每个条目一个决定。"
    ),
    tag_event=(
        "你为用户生活中的一个事件打标签。标签：\n{tags}\n"
        "根据下面的事件摘要，为适用的每个标签给出值。\n"
        '只用 JSON 回答：{"tags": [{"tag": "...", "value": "..."}]}'
    ),
    organize=(
        "用户档案中的一个主题包含过多子主题。请把其中的条目重新归纳为至多 {limit} 个子主题："
        "合并相关条目，保留所有重要事实及其日期，去掉重复。子主题名称使用简短的 snake_case。\n"
        '只用 JSON 回答：{"entries": [{"sub_topic": "...", "content": "..."}]}'
    ),
    shorten=(
        "请把每个编号的档案条目缩短到大约 {words} 个字，保留最重要的事实及其日期。\n"
        '只用 JSON 回答：{"entries": [{"index": 0, "content": "..."}]}，每个条目一个。'
    ),
    keep_language="每条内容都使用用户所用的语言书写。",
    output_language="每条内容都用中文书写。",
    app_frame="这些记忆所服务的应用：{system_prompt}\n\n",
)

_PROMPTS: dict[Language, Prompts] = {"en": EN, "zh": ZH}


def prompts_for(language: Language) -> Prompts:
    return _PROMPTS[language]


def describe_slots(config: ProfileConfig) -> str:
    lines = []
    for slot in config.slots:
        head = f"- {slot.topic}" + (f": {slot.description}" if slot.description else "")
        subs = ", ".join(
            s.name + (f" ({s.description})" if s.description else "") for s in slot.sub_topics
        )
        lines.append(f"{head} [{subs}]" if subs else head)
    return "\n".join(lines)


def describe_tags(config: ProfileConfig) -> str:
    return "\n".join(
        f"- {t.name}" + (f": {t.description}" if t.description else "") for t in config.event_tags
    )
