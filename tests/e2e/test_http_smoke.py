import httpx

from tests.support.patience import patience

ADD = """mutation { addMessages(input: {sessionId: "s", messages: [{role: USER, content: "hi"}]})
  { messages { seq } } }"""


async def test_health_and_a_round_trip(live_server):
    url = live_server()
    async with httpx.AsyncClient(base_url=url, timeout=patience()) as client:
        assert (await client.get("/health")).json() == {"status": "ok"}
        ready = await client.get("/health/ready")
        assert ready.status_code == 200
        reply = await client.post("/graphql", json={"query": ADD})
        assert reply.json() == {"data": {"addMessages": {"messages": [{"seq": 1}]}}}
