import pytest

from alignui.errors import UserError
from alignui.team.identity import ANONYMOUS, PermissionDenied, require, resolve


def test_strongest_source_wins():
    assert resolve(oauth_name="hf-user", login_name="bob", typed_name="typed").source == "oauth"
    assert resolve(login_name="bob", typed_name="typed").name == "bob"
    assert resolve(typed_name="  Ann  ").name == "Ann"
    anon = resolve(typed_name="   ")
    assert (anon.name, anon.source) == (ANONYMOUS, "anonymous")


def test_without_configured_admins_everyone_is_admin_and_with_them_only_they_are():
    assert resolve(typed_name="ann").is_admin
    admins = frozenset({"root"})
    assert resolve(login_name="root", admins=admins).is_admin
    ann = resolve(typed_name="ann", admins=admins)
    with pytest.raises(PermissionDenied, match="ann may not train: only admins"):
        require(ann, "train")
    require(ann, "annotate")  # not an admin action


def test_odd_typed_names_are_refused():
    with pytest.raises(UserError, match="a name may hold"):
        resolve(typed_name="../../etc/passwd")


# -- signed-in names, accounts and admins (issue 8) -----------------------------------------------
import time  # noqa: E402

import gradio as gr  # noqa: E402
from gradio.helpers import special_args  # noqa: E402
from starlette.requests import Request as StarletteRequest  # noqa: E402

from alignui.config import AppConfig, ConfigError, config_from  # noqa: E402
from alignui.config import parse_accounts, parse_admins  # noqa: E402
from alignui.team.identity import LOCAL_OPERATOR, login_checker  # noqa: E402
from alignui.ui.signin import identity_of, oauth_username  # noqa: E402


def test_a_typed_name_never_claims_the_admin_role():
    admins = frozenset({"root"})
    typed = resolve(typed_name="root", admins=admins)
    assert (typed.name, typed.role, typed.source) == ("root", "annotator", "typed")
    with pytest.raises(PermissionDenied, match="sign in with an admin account"):
        require(typed, "delete")
    assert resolve(oauth_name="root", admins=admins).is_admin
    assert LOCAL_OPERATOR.is_admin and LOCAL_OPERATOR.signed_in


def test_accounts_parse_from_pairs_or_a_file(tmp_path):
    assert parse_accounts("ann:pw1, bob:p:w2") == (("ann", "pw1"), ("bob", "p:w2"))
    f = tmp_path / "users.txt"
    f.write_text("# team\nann:pw1\n\nbob:s3cret, with a comma\n")
    assert parse_accounts(str(f)) == (("ann", "pw1"), ("bob", "s3cret, with a comma"))
    assert parse_accounts("") == ()


@pytest.mark.parametrize("text, fragment", [
    ("ann", "neither name:password pairs nor a readable file"),
    ("ann:pw,bob", "entry 2 is not name:password"),
    ("ann:pw,ann:other", "appears twice"),
    ("../x:pw", "may hold only letters"),
    ("ann:", "entry 1 is not name:password"),
])
def test_bad_accounts_say_what_to_write(text, fragment):
    with pytest.raises(UserError, match=fragment):
        parse_accounts(text)


def test_admins_default_to_the_space_owner_only_on_a_space():
    assert parse_admins(None) == frozenset()
    assert parse_admins(None, space_author="owner") == {"owner"}
    assert parse_admins("ann, bob ,") == {"ann", "bob"}
    assert parse_admins("", space_author="owner") == frozenset()  # explicitly empty: everyone is admin
    env = {"SPACE_ID": "owner/alignui", "SPACE_AUTHOR_NAME": "owner", "ALIGNUI_USERS": "ann:pw",
           "OAUTH_CLIENT_ID": "x", "HF_TOKEN": "hf_secret"}
    cfg = config_from(None, env=env)
    assert cfg.admins == {"owner"} and cfg.users == (("ann", "pw"),) and cfg.oauth
    assert "pw" not in cfg.describe() and "hf_secret" not in cfg.describe() and "login_accounts=1" in cfg.describe()
    assert not config_from(None, env={"OAUTH_CLIENT_ID": "x"}).oauth  # OAuth only exists on a Space
    with pytest.raises(ConfigError, match="ALIGNUI_USERS: entry 1"):
        config_from(None, env={"ALIGNUI_USERS": "ann:"})
    with pytest.raises(ConfigError, match="needs ALIGNUI_BACKUP_REPO"):
        AppConfig(backup_every_minutes=5)


def test_login_check_accepts_only_the_right_password():
    check = login_checker((("ann", "pw1"), ("bob", "pw2")))
    assert check("ann", "pw1") and check("bob", "pw2")
    assert not check("ann", "pw2") and not check("eve", "pw1") and not check("ann", "")
    assert login_checker(()) is None


def _request_with_session(session: dict | None) -> gr.Request:
    scope = {"type": "http", "method": "POST", "path": "/", "headers": [], "query_string": b""}
    if session is not None:
        scope["session"] = session  # what Starlette's SessionMiddleware puts there from the signed cookie
    return gr.Request(request=StarletteRequest(scope))


def _oauth_session(username: str, expires_in: float = 3600) -> dict:
    # the shape gradio.oauth's /login/callback stores (see _add_oauth_routes / _add_mocked_oauth_routes)
    return {"oauth_info": {"access_token": "hf_oauth_xxx", "scope": "openid profile", "token_type": "bearer",
                           "expires_at": int(time.time() + expires_in),
                           "userinfo": {"sub": "1", "name": "Ann Example", "preferred_username": username,
                                        "profile": f"https://huggingface.co/{username}", "picture": "", "website": None,
                                        "aud": "x", "eat": 0, "iss": "https://huggingface.co"}}}


def test_oauth_identity_is_read_from_the_profile_gradio_hands_over(ctx):
    request = _request_with_session(_oauth_session("ann-hf"))

    def callback(text: str, profile: gr.OAuthProfile | None, request: gr.Request):
        return text

    # Gradio's own injection of gr.OAuthProfile from the same request ...
    inputs, *_ = special_args(callback, ["hello"], request)
    profile = inputs[1]
    assert isinstance(profile, gr.OAuthProfile) and profile.username == "ann-hf"
    # ... and alignui's reading agree; the OAuth name beats a login name and a typed one
    assert oauth_username(request) == profile.username
    request.username = "login-name"
    who = identity_of(ctx, request, "typed")
    assert (who.name, who.source, who.role) == ("ann-hf", "oauth", "admin")  # no admins configured: everyone


def test_expired_or_missing_oauth_sessions_are_not_signed_in(ctx):
    assert oauth_username(_request_with_session(_oauth_session("ann-hf", expires_in=-10))) is None
    assert oauth_username(_request_with_session(None)) is None  # an app without SessionMiddleware
    assert oauth_username(None) is None
    who = identity_of(ctx, _request_with_session({}), "Typed Name")
    assert (who.name, who.source) == ("Typed Name", "typed")


def test_admin_role_granted_in_the_store_counts_for_signed_in_names(ctx):
    ctx.store.set_role("bob", "admin", by="local")
    login = gr.Request(username="bob")
    assert identity_of(ctx, login).is_admin
    ann = identity_of(ctx, gr.Request(username="ann"))
    assert not ann.is_admin  # admins now exist (bob), so ann is an annotator
    assert not identity_of(ctx, None, "bob").is_admin  # typing bob is not being bob
