import pytest

from alignui.errors import UserError
from alignui.identity import ANONYMOUS, PermissionDenied, require, resolve


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
