"""MCP tool failures carry GraphQL's error codes; unexpected ones are masked and logged with an
id. Through the SDK's own tool machinery, in process (no transport needed)."""

from __future__ import annotations

import logging

import pytest

from maas.mcp_errors import CodedToolErrors
from services.errors import LimitExceeded, NotFound


def server() -> CodedToolErrors:
    tools = CodedToolErrors("test")

    @tools.tool()
    async def missing() -> dict[str, str]:
        raise NotFound("No session 'x'.", field="sessionId")

    @tools.tool()
    async def limited() -> dict[str, str]:
        raise LimitExceeded("Too many.", retryAfterSeconds=1.5)

    @tools.tool()
    async def broken() -> dict[str, str]:
        raise RuntimeError("secret detail of the failure")

    @tools.tool()
    async def typed(count: int) -> dict[str, int]:
        return {"count": count}

    return tools


@pytest.mark.parametrize(
    ("tool", "expected"),
    [
        ("missing", {"code": "NOT_FOUND", "message": "No session 'x'.", "field": "sessionId"}),
        ("limited", {"code": "LIMIT_EXCEEDED", "message": "Too many.", "retryAfterSeconds": 1.5}),
        ("nope", {"code": "BAD_USER_INPUT", "message": "Unknown tool: nope"}),
    ],
)
async def test_a_service_error_keeps_its_code_message_and_details(
    tool: str, expected: dict[str, object]
) -> None:
    result = await server().call_tool(tool, {})
    assert result.is_error
    assert result.structured_content == expected
    assert [block.text for block in result.content] == [
        f"{expected['code']}: {expected['message']}"
    ]


async def test_arguments_the_schema_refuses_are_bad_user_input_without_their_value() -> None:
    result = await server().call_tool("typed", {"count": "secret-value"})
    assert result.is_error
    assert result.structured_content == {
        "code": "BAD_USER_INPUT",
        "message": "Invalid arguments: count: Input should be a valid integer, unable to parse "
        "string as an integer.",
    }


async def test_an_unexpected_failure_is_masked_and_logged_with_its_id(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.ERROR, logger="maas.mcp"):
        result = await server().call_tool("broken", {})
    assert result.is_error
    error = result.structured_content
    assert error is not None
    assert error["code"] == "INTERNAL"
    assert error["message"] == f"Internal error (id {error['errorId']})."
    assert "secret" not in repr(result)
    [record] = [r for r in caplog.records if r.name == "maas.mcp"]
    assert error["errorId"] in record.getMessage()
    assert "secret detail" in str(record.exc_info[1])
