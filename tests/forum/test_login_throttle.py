"""Brute force on the account pages: logging in, signing up, asking for a reset link."""

import re
import time

import pytest
from django.contrib.auth.hashers import MD5PasswordHasher
from django.core import mail
from django.test import override_settings

from forum import login_throttle
from forum.models import User
from tests.conftest import PASSWORD, make_user

LOGIN = "/accounts/login/"
HOME = "10.0.0.1"
ELSEWHERE = "10.0.0.2"


class CountingHasher(MD5PasswordHasher):
    """The test hasher, counting how often a password is hashed (checking one hashes it)."""

    calls = 0

    def encode(self, *args, **kwargs):
        CountingHasher.calls += 1
        return super().encode(*args, **kwargs)


@pytest.fixture
def lockout(settings):
    settings.KINSHIP_LOGIN_LOCKOUT = (5, 900)
    settings.KINSHIP_LOGIN_COOLOFF_SECONDS = 900
    return settings


def log_in(client, handle, password, address=HOME):
    return client.post(LOGIN, {"username": handle, "password": password}, REMOTE_ADDR=address)


def error_text(response) -> str:
    """The form's error messages, as the visitor reads them."""
    return " ".join(re.findall(r'role="alert">(?:<p>)?([^<]+)<', response.content.decode()))


def signed_in(client) -> bool:
    return client.get("/").context["user"].is_authenticated


@pytest.mark.django_db
@pytest.mark.usefixtures("lockout")
def test_five_failures_lock_the_handle_from_that_address(client):
    make_user("river")
    for _ in range(4):
        response = log_in(client, "river", "wrong-guess")
        assert "do not match" in error_text(response)
    fifth = log_in(client, "river", "wrong-guess")
    assert fifth.status_code == 200
    assert "Too many attempts" in error_text(fifth)
    # Even the right password is refused from here until the cool-off ends.
    response = log_in(client, "river", PASSWORD)
    assert response.status_code == 200
    assert "Too many attempts" in error_text(response)
    assert "15 minutes" in error_text(response)
    assert not signed_in(client)


@pytest.mark.django_db
@pytest.mark.usefixtures("lockout")
def test_a_lock_does_not_shut_the_member_out_everywhere(client):
    """Someone hammering a known handle cannot keep its owner from logging in."""
    make_user("river")
    for _ in range(6):
        log_in(client, "River", "wrong-guess", address=ELSEWHERE)  # any case, one handle
    assert "Too many attempts" in error_text(log_in(client, "river", PASSWORD, ELSEWHERE))
    response = log_in(client, "river", PASSWORD, address=HOME)
    assert response.status_code == 302
    assert signed_in(client)


@pytest.mark.django_db
@pytest.mark.usefixtures("lockout")
def test_other_handles_from_the_same_address_are_not_locked(client):
    make_user("river")
    make_user("meadow")
    for _ in range(5):
        log_in(client, "river", "wrong-guess")
    assert log_in(client, "meadow", PASSWORD).status_code == 302


@pytest.mark.django_db
def test_after_the_cool_off_the_member_can_log_in_again(client, settings):
    settings.KINSHIP_LOGIN_LOCKOUT = (3, 900)
    settings.KINSHIP_LOGIN_COOLOFF_SECONDS = 1
    make_user("river")
    for _ in range(3):
        log_in(client, "river", "wrong-guess")
    locked = log_in(client, "river", PASSWORD)
    assert "Too many attempts" in error_text(locked)
    assert "1 second" in error_text(locked)
    time.sleep(2.1)  # the cache's expiry has whole-second resolution
    # A fresh allowance: one more mistake does not lock again, the password works.
    assert "do not match" in error_text(log_in(client, "river", "wrong-again"))
    assert log_in(client, "river", PASSWORD).status_code == 302


@pytest.mark.django_db
@pytest.mark.usefixtures("lockout")
def test_a_successful_login_clears_the_failures(client):
    make_user("river")
    for _ in range(4):
        log_in(client, "river", "wrong-guess")
    assert log_in(client, "river", PASSWORD).status_code == 302
    client.post("/accounts/logout/")
    for _ in range(4):
        assert "do not match" in error_text(log_in(client, "river", "wrong-guess"))


@pytest.mark.django_db
@pytest.mark.usefixtures("lockout")
def test_answers_do_not_tell_whether_a_handle_exists(client):
    make_user("river")
    known = [error_text(log_in(client, "river", "wrong-guess")) for _ in range(6)]
    unknown = [error_text(log_in(client, "nobody-here", "wrong-guess")) for _ in range(6)]
    assert known == unknown
    assert "do not match" in known[0]
    assert "Too many attempts" in known[-1]


@pytest.mark.django_db
@pytest.mark.usefixtures("lockout")
@pytest.mark.parametrize("handle", ["river", "nobody-here"])
def test_every_attempt_runs_the_password_hasher(client, settings, handle):
    """Known handle or not, locked or not, each answer costs one hash: timing tells nothing."""
    settings.PASSWORD_HASHERS = [f"{__name__}.CountingHasher"]
    make_user("river")
    for attempt in range(7):  # four wrong, the locking fifth, then two while locked
        CountingHasher.calls = 0
        log_in(client, handle, "wrong-guess")
        assert CountingHasher.calls == 1, f"attempt {attempt + 1}"


@pytest.mark.django_db
@pytest.mark.usefixtures("lockout")
def test_failures_still_lock_while_the_shared_cache_is_unreachable(client, unused_tcp_port):
    """With Redis gone each worker counts on its own: no 500, and no free guesses."""
    make_user("river")
    gone = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{unused_tcp_port}/0",
        }
    }
    try:
        with override_settings(CACHES=gone):
            answers = [log_in(client, "river", "wrong-guess") for _ in range(5)]
            assert {response.status_code for response in answers} == {200}
            assert "Too many attempts" in error_text(answers[-1])
            assert "Too many attempts" in error_text(log_in(client, "river", PASSWORD))
    finally:
        login_throttle._local.clear()  # the process's fallback outlives the test


@pytest.mark.django_db
@pytest.mark.usefixtures("lockout")
@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"username": "river"}, "This field is required"),
        ({"password": "x"}, "This field is required"),
        ({"username": "r" * 5000, "password": "x"}, "do not match"),
        ({"username": "bad\x00nul", "password": "x"}, "Null characters are not allowed"),
    ],
)
def test_bad_login_input_gets_a_clear_error(client, data, message):
    response = client.post(LOGIN, data, REMOTE_ADDR=HOME)
    assert response.status_code == 200
    assert message in response.content.decode()


# --- sign-up and password reset, per client address --------------------------------------


def sign_up(client, n: int, address=HOME):
    return client.post(
        "/accounts/signup/",
        {
            "handle": f"newcomer-{n}",
            "email": f"newcomer-{n}@example.test",
            "password1": PASSWORD,
            "password2": PASSWORD,
        },
        REMOTE_ADDR=address,
    )


@pytest.mark.django_db
def test_signups_are_limited_per_address(client, settings):
    settings.KINSHIP_RATE_LIMITS = {**settings.KINSHIP_RATE_LIMITS, "signup": (2, 3600)}
    for n in range(2):
        assert sign_up(client, n).status_code == 302
        client.post("/accounts/logout/")
    response = sign_up(client, 2)
    assert response.status_code == 200
    assert "faster than Kinship allows" in error_text(response)
    assert not User.objects.filter(handle="newcomer-2").exists()
    assert sign_up(client, 3, address=ELSEWHERE).status_code == 302


@pytest.mark.django_db
def test_failed_signups_count_too(client, settings):
    """Refused attempts count, so the "handle is taken" answer cannot sweep for members."""
    settings.KINSHIP_RATE_LIMITS = {**settings.KINSHIP_RATE_LIMITS, "signup": (2, 3600)}
    make_user("river")
    for _ in range(2):
        body = client.post(
            "/accounts/signup/", {"handle": "river"}, REMOTE_ADDR=HOME
        ).content.decode()
        assert "That handle is taken" in body
    response = client.post("/accounts/signup/", {"handle": "river"}, REMOTE_ADDR=HOME)
    assert response.status_code == 200
    assert "faster than Kinship allows" in error_text(response)
    # Past the limit the form says nothing about the handle, taken or free.
    assert "That handle is taken" not in response.content.decode()


def ask_reset(client, email, address=HOME):
    return client.post("/accounts/password_reset/", {"email": email}, REMOTE_ADDR=address)


@pytest.mark.django_db
def test_reset_requests_are_limited_per_address(client, settings):
    settings.KINSHIP_RATE_LIMITS = {**settings.KINSHIP_RATE_LIMITS, "password_reset": (2, 3600)}
    make_user("river")
    for n in range(2):
        assert ask_reset(client, f"someone-{n}@example.test").status_code == 302
    response = ask_reset(client, "river@example.test")
    assert response.status_code == 200
    assert "faster than Kinship allows" in error_text(response)
    assert mail.outbox == []
    assert ask_reset(client, "river@example.test", address=ELSEWHERE).status_code == 302
    assert len(mail.outbox) == 1


@pytest.mark.django_db
def test_reset_links_to_one_address_are_limited_without_revealing_the_account(client, settings):
    settings.KINSHIP_RATE_LIMITS = {
        **settings.KINSHIP_RATE_LIMITS,
        "password_reset": (100, 3600),
        "password_reset_email": (2, 3600),
    }
    make_user("river")
    answers = []
    for n in range(4):
        for email in ("River@example.test", "nobody@example.test"):
            response = ask_reset(client, email, address=f"10.0.1.{n}")
            answers.append((response.status_code, response.get("Location")))
    # The same answer every time, for the account and for the address nobody has...
    assert set(answers) == {(302, "/accounts/password_reset/done/")}
    # ...but the member's inbox gets two links, not four.
    assert [message.to for message in mail.outbox] == [["river@example.test"]] * 2
