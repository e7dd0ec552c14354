"""GraphQL documents and helpers of long-term memory for end-to-end tests."""

from __future__ import annotations

import json
from typing import Any

from gql.client import AsyncClientSession

from tests.support.graphql_client import execute

# Settings of a server whose embedding provider never answers (port 9: discard, closed).
EMBEDDING_PROVIDER_DOWN = {
    "embedding_provider": "openai",
    "embedding_base_url": "http://127.0.0.1:9/v1",
    "embedding_api_key": "k",
    "embedding_dims": 1536,
}

MEMORY_FIELDS = "id text category userId agentId sessionId metadata createdAt updatedAt expiresAt"
HISTORY_FIELDS = "history { event previousText newText at }"

ADD_MEMORY = f"""
mutation Add($input: AddMemoryInput!) {{
  addMemory(input: $input) {{ added {{ {MEMORY_FIELDS} }} updated {{ id }} deleted }}
}}
"""
ADD_MEMORIES = f"""
mutation AddMany($items: [AddMemoryInput!]!) {{
  addMemories(input: {{items: $items}}) {{
    results {{ index ok error {{ code message }} result {{ added {{ {MEMORY_FIELDS} }} }} }}
  }}
}}
"""
SEARCH = f"""
query Search($input: SearchMemoriesInput!) {{
  searchMemories(input: $input) {{
    score scores {{ semantic keyword recency }} memory {{ {MEMORY_FIELDS} }}
  }}
}}
"""
SEARCH_BATCH = """
query SearchMany($items: [SearchMemoriesInput!]!) {
  searchMemoriesBatch(input: {items: $items}) {
    results {
      index ok error { code message }
      hits { score scores { semantic keyword recency } memory { id text } }
    }
  }
}
"""
GET = f"""
query Get($id: ID!) {{ memory(id: $id) {{ {MEMORY_FIELDS} {HISTORY_FIELDS} }} }}
"""
LIST = f"""
query List($userId: String, $agentId: String, $sessionId: String,
           $categories: [MemoryCategory!], $metadata: JSON, $first: Int! = 20, $after: String) {{
  memories(userId: $userId, agentId: $agentId, sessionId: $sessionId, categories: $categories,
           metadata: $metadata, first: $first, after: $after) {{
    nodes {{ {MEMORY_FIELDS} }}
    pageInfo {{ hasNextPage endCursor }}
  }}
}}
"""
UPDATE = f"""
mutation Update($input: UpdateMemoryInput!) {{
  updateMemory(input: $input) {{ memory {{ {MEMORY_FIELDS} {HISTORY_FIELDS} }} }}
}}
"""
DELETE = "mutation Delete($id: ID!) { deleteMemory(input: {id: $id}) { id } }"
DELETE_MANY = """
mutation DeleteMany($ids: [ID!]!) {
  deleteMemories(input: {ids: $ids}) { results { index id ok error { code message } } }
}
"""
DELETE_EXPIRED = "mutation { deleteExpiredMemories { deletedCount } }"
MEMORY_EVENTS = f"""
subscription Events($userId: String, $agentId: String, $sessionId: String, $after: String) {{
  memoryEvents(userId: $userId, agentId: $agentId, sessionId: $sessionId, after: $after) {{
    eventId type memoryId at userId agentId sessionId memory {{ {MEMORY_FIELDS} }}
  }}
}}
"""


async def remember(
    session: AsyncClientSession, text: str, user_id: str = "alice", **fields: Any
) -> dict[str, Any]:
    """Stores `text` verbatim (infer: false) for a user; returns the memory."""
    result = await execute(
        session, ADD_MEMORY, input={"text": text, "userId": user_id, "infer": False, **fields}
    )
    (memory,) = result["addMemory"]["added"]
    return memory


async def search(
    session: AsyncClientSession, query: str, user_id: str = "alice", **fields: Any
) -> list[dict[str, Any]]:
    result = await execute(session, SEARCH, input={"query": query, "userId": user_id, **fields})
    return result["searchMemories"]


async def list_all(session: AsyncClientSession, **variables: Any) -> list[dict[str, Any]]:
    result = await execute(session, LIST, first=100, **variables)
    return result["memories"]["nodes"]


def extraction(*facts: str) -> str:
    """A scripted reply of mem0's extraction step."""
    return json.dumps({"memory": [{"text": fact} for fact in facts]})
