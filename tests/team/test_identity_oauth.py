"""Sign in with Hugging Face, end to end on a real server set up as a Space with hf_oauth: true.

Gradio installs its OAuth routes and Starlette's SessionMiddleware; the test forges the signed session
cookie that Gradio's /login/callback would set after a real HF login (the only faked part: there is no
hub here), then calls the API with it. The name must reach identity_of through the queue, and decide
the role."""

import hashlib
import json
from base64 import b64encode

import itsdangerous
import pytest
from gradio_client import Client

from conftest import served

SECRET = "oauth-client-secret"
# With SYSTEM=spaces Gradio starts its Spaces hot-reload watcher, which needs the `spaces` package a real
# Space has; its thread fails here and that says nothing about sign-in.
pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")


def session_cookie(username: str) -> str:
    """The cookie gradio.oauth's callback sets: the session JSON, base64, signed like SessionMiddleware does."""
    import time

    session = {"oauth_info": {"access_token": "hf_oauth_x", "token_type": "bearer", "scope": "openid profile",
                              "expires_at": int(time.time()) + 3600,
                              "userinfo": {"sub": "1", "name": username.title(), "preferred_username": username,
                                           "profile": f"https://huggingface.co/{username}", "picture": ""}}}
    key = hashlib.sha256((SECRET + "-v4").encode()).hexdigest()  # gradio.oauth.attach_oauth's session secret
    signed = itsdangerous.TimestampSigner(key).sign(b64encode(json.dumps(session).encode()))
    return f"session={signed.decode()}"


@pytest.fixture
def space_server(config, monkeypatch):
    import gradio.oauth as gradio_oauth


    monkeypatch.setenv("SYSTEM", "spaces")  # what gradio.utils.get_space() looks for
    monkeypatch.setenv("SPACE_ID", "owner/alignui")
    for name, value in {"OAUTH_CLIENT_ID": "client-id", "OAUTH_CLIENT_SECRET": SECRET,
                        "OAUTH_SCOPES": "openid profile", "OPENID_PROVIDER_URL": "http://127.0.0.1:9"}.items():
        monkeypatch.setenv(name, value)
        monkeypatch.setattr(gradio_oauth, name, value)  # gradio read them at import time
    with served(config, space_id="owner/alignui", oauth=True, admins=frozenset({"owner"})) as app:
        yield app


def as_user(server, username: str | None) -> Client:
    headers = {"Cookie": session_cookie(username)} if username else {}
    return Client(server.url, headers=headers, verbose=False)


def test_the_hugging_face_login_names_the_annotator_and_decides_the_role(space_server):
    store = space_server.ctx.store
    assert any(getattr(b, "elem_id", None) == "login-button" for b in space_server.demo.blocks.values())

    ann = as_user(space_server, "ann-hf")
    _, _, pair_id = ann.predict("What is DPO?", api_name="/generate_pair")
    ann.predict(pair_id, "a", api_name="/submit_vote")
    assert store.get_comparison(pair_id).annotator == "ann-hf"
    with pytest.raises(Exception, match="ann-hf may not manage users: only admins can"):
        ann.predict("ann-hf", "admin", api_name="/admin_set_role")

    owner = as_user(space_server, "owner")  # the Space owner is the admin by default
    message, _ = owner.predict("ann-hf", "admin", api_name="/admin_set_role")
    assert message == "ann-hf is now an admin." and store.admin_names() == {"ann-hf"}

    nobody = as_user(space_server, None)  # not signed in: anonymous, never an admin
    with pytest.raises(Exception, match="anonymous may not delete: only admins can \\(sign in"):
        nobody.predict("ann-hf", api_name="/admin_remove_votes")


def test_a_forged_cookie_with_a_wrong_signature_is_ignored(space_server):
    cookie = session_cookie("owner")
    tampered = cookie[:-3] + ("aaa" if not cookie.endswith("aaa") else "bbb")
    client = Client(space_server.url, headers={"Cookie": tampered}, verbose=False)
    with pytest.raises(Exception, match="anonymous may not manage users"):
        client.predict("eve", "admin", api_name="/admin_set_role")
