"""The unmodified PyPI ``supabase`` client (2.34.1) against a real ``wexlot serve`` subprocess."""

from __future__ import annotations

from pathlib import Path

import pytest
from supabase import create_client
from supabase_auth.errors import AuthApiError

from support.live_server import LiveServer, keys
from wexlot.auth import users

pytestmark = pytest.mark.compat

PASSWORD = "supabase-py-pass-1"


def test_supabase_py_signs_in_refreshes_and_signs_out(live_server: LiveServer, data_dir: Path) -> None:
    key = keys(data_dir, live_server.database_url)
    with users.transaction(live_server.database_url) as conn:
        ann = users.create_staff_user(conn, "ann@example.com", PASSWORD, "admin", "Ann Admin")

    client = create_client(live_server.url, key["anon_key"])
    with pytest.raises(AuthApiError) as wrong:
        client.auth.sign_in_with_password({"email": "ann@example.com", "password": "not it"})
    assert (wrong.value.code, wrong.value.status) == ("invalid_credentials", 400)

    signed_in = client.auth.sign_in_with_password({"email": "ann@example.com", "password": PASSWORD})
    assert signed_in.session is not None and signed_in.user is not None
    assert signed_in.user.id == ann.id
    assert signed_in.user.app_metadata["role"] == "admin"

    fetched = client.auth.get_user()
    assert fetched is not None and fetched.user.email == "ann@example.com"

    refreshed = client.auth.refresh_session()
    assert refreshed.session is not None
    assert refreshed.session.refresh_token != signed_in.session.refresh_token
    assert client.auth.get_session().access_token == refreshed.session.access_token  # type: ignore[union-attr]

    updated = client.auth.update_user({"data": {"theme": "dark"}})
    assert updated.user.user_metadata["theme"] == "dark"

    client.auth.sign_out()
    assert client.auth.get_session() is None
    with pytest.raises(AuthApiError) as gone:
        client.auth.get_user(refreshed.session.access_token)
    assert gone.value.code == "session_not_found"
    with pytest.raises(AuthApiError) as stale:
        client.auth.refresh_session(refreshed.session.refresh_token)
    assert stale.value.code == "session_not_found"

    logs = live_server.logs()
    secret = (data_dir / "jwt-secret").read_text().strip()
    for value in (PASSWORD, secret, signed_in.session.refresh_token, refreshed.session.refresh_token):
        assert value not in logs


def test_supabase_py_admin_api_with_the_service_key(live_server: LiveServer, data_dir: Path) -> None:
    key = keys(data_dir, live_server.database_url)
    admin = create_client(live_server.url, key["service_role_key"]).auth.admin

    created = admin.create_user(
        {
            "email": "bo@example.com",
            "password": PASSWORD,
            "email_confirm": True,
            "user_metadata": {"full_name": "Bo Rep"},
            "app_metadata": {"role": "rep"},
        }
    )
    assert created.user.email == "bo@example.com"
    assert created.user.app_metadata["role"] == "rep"
    listed = admin.list_users()
    assert [u.email for u in listed] == ["bo@example.com"]
    assert admin.list_users(page=2, per_page=1) == []

    fetched = admin.get_user_by_id(created.user.id)
    assert fetched.user.user_metadata == {"full_name": "Bo Rep"}
    promoted = admin.update_user_by_id(created.user.id, {"app_metadata": {"role": "manager"}})
    assert promoted.user.app_metadata["role"] == "manager"

    # The new login works from a browser-style client with the anon key.
    anon = create_client(live_server.url, key["anon_key"])
    session = anon.auth.sign_in_with_password({"email": "bo@example.com", "password": PASSWORD})
    assert session.user is not None and session.user.app_metadata["role"] == "manager"
    anon.auth.sign_out()

    admin.delete_user(created.user.id)
    assert admin.list_users() == []
    with pytest.raises(AuthApiError) as missing:
        admin.get_user_by_id(created.user.id)
    assert missing.value.code == "user_not_found"
