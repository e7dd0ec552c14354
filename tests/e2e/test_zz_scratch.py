import httpx
from tests.support.graphql_client import post


async def test_scratch(live_server):
    url = live_server(api_keys={"ka": "ta"})
    print((await post(url, "{ sessions { nodes { id } } }")).text)
    print((await post(url, "{ sessions { nodes { id } } }", key="zz")).text)
    r = await post(url, "{ sessions { nodes { id bogus } } }", key="ka"); print(r.status_code, r.text)
    r = await post(url, "{ sessions { ", key="ka"); print(r.status_code, r.text)
    r = await post(url, '{ session(id: "bad id!") { id } }', key="ka"); print(r.status_code, r.text)
    r = await post(url, '{ session(id: "x") { messages(after: "zzz") { nodes { id } } } }', key="ka"); print(r.status_code, r.text)
    r = await post(url, 'mutation { addMessages(input: {sessionId: "x", messages: [{role: USER, content: "hi"}]}) { sessionId } }', key="ka"); print(r.status_code, r.text)
    r = await post(url, '{ session(id: "x") { messages(after: "zzz") { nodes { id } } } }', key="ka"); print(r.status_code, r.text)
    r = await post(url, '{ session(id: "x") { messages(after: "bTpx") { nodes { id } } } }', key="ka"); print(r.status_code, r.text)
    async with httpx.AsyncClient(base_url=url) as c:
        r = await c.get("/graphql", params={"query": "{ sessions { nodes { id } } }"}, headers={"Authorization": "Bearer ka"}); print(r.status_code, r.text)
        r = await c.get("/graphql", params={"query": 'mutation { deleteSession(input: {sessionId: "x"}) { sessionId } }'}, headers={"Authorization": "Bearer ka"}); print(r.status_code, r.text)
        r = await c.post("/graphql", content=b"x" * 20000000, headers={"Authorization": "Bearer ka", "content-type": "application/json"}); print(r.status_code, r.text)
    url2 = live_server(redis_url="redis://127.0.0.1:1/0")
    r = await post(url2, '{ session(id: "x") { id } }'); print(r.status_code, r.text)
    r = await post(url2, 'mutation { addMessages(input: {sessionId: "x", messages: [{role: USER, content: "hi"}]}) { sessionId } }'); print(r.status_code, r.text)
    async with httpx.AsyncClient(base_url=url2) as c:
        r = await c.get("/health/ready"); print(r.status_code, r.text)
    assert 0
