"""The Bookinfo stand-ins' answers, without a network: the shapes Istio's tutorials read."""

from __future__ import annotations

import json
from typing import Any

import pytest

from sailmesh.apps import bookinfo


def _body(reply: bookinfo.Reply) -> Any:
    return json.loads(reply[2])


def test_session_cookie_round_trips_and_rejects_tampering() -> None:
    cookie = bookinfo.sign_session("jason")
    assert bookinfo.session_user(f"a=b; session={cookie}") == "jason"
    _, _, mac = cookie.partition(".")
    forged = bookinfo.sign_session("admin").partition(".")[0] + "." + mac
    assert bookinfo.session_user(f"session={forged}") == ""
    assert bookinfo.session_user(None) == ""


def test_details_and_ratings_answer_as_the_real_services() -> None:
    assert _body(bookinfo.details_app("/details/0", {}))["ISBN-10"] == "1234567890"
    assert bookinfo.details_app("/details/x", {})[0] == 400
    assert _body(bookinfo.ratings_app("/ratings/0", {})) == {
        "id": 0, "ratings": {"Reviewer1": 5, "Reviewer2": 4}}
    assert _body(bookinfo.ratings_app("/health", {})) == {"status": "Ratings is healthy"}


@pytest.mark.parametrize("enabled,color,ratings,want", [
    ("", "black", (0, None), [None, None]),
    ("true", "black", (200, {"ratings": {"Reviewer1": 5, "Reviewer2": 4}}),
     [{"stars": 5, "color": "black"}, {"stars": 4, "color": "black"}]),
    ("true", "red", (503, None), [{"error": "Ratings service is currently unavailable"}] * 2),
])
def test_reviews_versions(monkeypatch: pytest.MonkeyPatch, enabled: str, color: str,
                          ratings: tuple[int, Any], want: list[Any]) -> None:
    monkeypatch.setenv("ENABLE_RATINGS", enabled)
    monkeypatch.setenv("STAR_COLOR", color)
    calls: list[tuple[str, dict[str, str], float]] = []
    monkeypatch.setattr(bookinfo, "fetch_json",
                        lambda url, h, t: calls.append((url, dict(h), t)) or ratings)
    body = _body(bookinfo.reviews_app("/reviews/0", {"x-request-id": "r1", "end-user": "jason"}))
    assert [r.get("rating") for r in body["reviews"]] == want
    if enabled:
        (url, headers, timeout), = calls
        assert url == "http://ratings:9080/ratings/0"
        assert headers == {"x-request-id": "r1", "end-user": "jason"}
        assert timeout == (10.0 if color == "black" else 2.5)
    else:
        assert calls == []


def test_productpage_forwards_the_signed_in_user_and_renders_errors(
        monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[dict[str, str]] = []

    def fake(url: str, headers: dict[str, str], timeout: float) -> tuple[int, Any]:
        seen.append(dict(headers))
        if "/details/" in url:
            return 0, None
        return 200, {"reviews": [{"reviewer": "Reviewer1", "text": "t",
                                  "rating": {"stars": 5, "color": "red"}}]}

    monkeypatch.setattr(bookinfo, "fetch_json", fake)
    cookie = f"session={bookinfo.sign_session('jason')}"
    status, ctype, page, _ = bookinfo.productpage_app(
        "/productpage", {"cookie": cookie, "x-b3-traceid": "abc"})
    text = page.decode()
    assert status == 200 and ctype.startswith("text/html")
    assert "<title>Simple Bookstore App</title>" in text
    assert "Sorry, product details are currently unavailable for this book." in text
    assert '<font color="red">' in text and text.count('glyphicon-star"') == 5
    assert all(h["end-user"] == "jason" and h["x-b3-traceid"] == "abc" for h in seen)


def test_login_sets_the_session_and_redirects_back() -> None:
    status, _, _, headers = bookinfo.productpage_login("username=jason&passwd=password", {})
    assert status == 302 and headers["Location"] == "/productpage"
    cookie = headers["Set-Cookie"].split(";", 1)[0]
    assert bookinfo.session_user(cookie) == "jason"
