from maas.auth import LOCAL_TENANT, ApiKeyAuth


def test_keys_map_to_their_tenants():
    auth = ApiKeyAuth({"key-a": "acme", "key-b": "globex"})
    assert auth.tenant_for("Bearer key-a") == "acme"
    assert auth.tenant_for("bearer  key-b ") == "globex"


def test_missing_malformed_or_unknown_keys_have_no_tenant():
    auth = ApiKeyAuth({"key-a": "acme"})
    for header in (None, "", "Bearer", "Bearer ", "Basic key-a", "key-a", "Bearer key-b"):
        assert auth.tenant_for(header) is None


def test_without_keys_everyone_is_the_local_tenant():
    auth = ApiKeyAuth({})
    assert auth.open
    assert auth.tenant_for(None) == LOCAL_TENANT
