"""The client's reading of a user's memory for a prompt: events, search, the context."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from gql import gql

from powermemo_gql.client.models import Context, Event, SearchResults
from powermemo_gql.client.ops_base import (
    INVALID,
    ChatMessage,
    Operation,
    chat_message,
    payload,
    request,
    user_of,
)
from powermemo_gql.client.ops_base import as_list as _list

EVENT = """
    id summary tags { tag value } happenedFrom happenedTo createdAt
    profileDelta { action topic subTopic content previous }
"""
ENTRY_OF_HIT = "id topic subTopic content"
CONTEXT = gql("""
query Context(
  $userId: ID!, $maxTokens: Int!, $preferTopics: [String!], $onlyTopics: [String!],
  $profileEventRatio: Float!, $includeBuffer: Boolean!, $query: String,
  $chats: [ChatMessageInput!]
) {
  user(userId: $userId) {
    context(
      maxTokens: $maxTokens, preferTopics: $preferTopics, onlyTopics: $onlyTopics,
      profileEventRatio: $profileEventRatio, includeBuffer: $includeBuffer, query: $query,
      chats: $chats
    ) { text tokens profileEntries events }
  }
}""")
EVENTS = gql(f"""
query Events($userId: ID!, $first: Int, $after: String, $search: String) {{
  user(userId: $userId) {{
    events(first: $first, after: $after, search: $search) {{ nodes {{ {EVENT} }} }}
  }}
}}""")
SEARCH = gql(f"""
query Search(
  $userId: ID!, $query: String!, $first: Int!, $kinds: [SearchKind!], $topics: [String!],
  $tags: [String!], $mode: SearchMode!
) {{
  user(userId: $userId) {{
    search(query: $query, first: $first, kinds: $kinds, topics: $topics, tags: $tags,
           mode: $mode) {{
      __typename
      ... on SearchResults {{
        mode fallback reason
        hits {{
          kind score vectorRank keywordRank
          entry {{ {ENTRY_OF_HIT} }}
          event {{ id summary }}
          fact {{ id content eventId }}
        }}
      }}
      {INVALID}
    }}
  }}
}}""")


def context(
    user_id: str,
    max_tokens: int,
    prefer_topics: Sequence[str] | None,
    only_topics: Sequence[str] | None,
    profile_event_ratio: float,
    include_buffer: bool,
    query: str | None = None,
    chats: Sequence[ChatMessage] | None = None,
) -> Operation[Context]:
    variables = {
        "userId": user_id,
        "maxTokens": max_tokens,
        "preferTopics": _list(prefer_topics),
        "onlyTopics": _list(only_topics),
        "profileEventRatio": profile_event_ratio,
        "includeBuffer": include_buffer,
        "query": query,
        "chats": None if chats is None else [chat_message(m, i) for i, m in enumerate(chats)],
    }
    return Operation(
        request(CONTEXT, **variables),
        lambda d: Context.from_json(user_of(d, user_id)["context"]),
    )


def events(
    user_id: str, first: int | None, after: str | None, search: str | None
) -> Operation[list[Event]]:
    def parse(data: dict[str, Any]) -> list[Event]:
        return [Event.from_json(e) for e in user_of(data, user_id)["events"]["nodes"]]

    return Operation(
        request(EVENTS, userId=user_id, first=first, after=after, search=search), parse
    )


def search(
    user_id: str,
    query: str,
    first: int,
    kinds: Sequence[str] | None,
    topics: Sequence[str] | None,
    tags: Sequence[str] | None,
    mode: str,
) -> Operation[SearchResults]:
    def parse(data: dict[str, Any]) -> SearchResults:
        return SearchResults.from_json(payload(user_of(data, user_id), "search", "SearchResults"))

    variables = {
        "userId": user_id,
        "query": query,
        "first": first,
        "kinds": None if kinds is None else [k.upper() for k in _list(kinds) or []],
        "topics": _list(topics),
        "tags": _list(tags),
        "mode": mode.upper(),
    }
    return Operation(request(SEARCH, **variables), parse)
