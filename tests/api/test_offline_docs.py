"""/docs and /redoc work on a network cut off from the internet: every script, style and image they load
is served by the app itself."""

from __future__ import annotations

import re

import pytest


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_api_docs_load_nothing_from_outside_the_app(api, page):
    html = api.client.get(page)
    assert html.status_code == 200 and "text/html" in html.headers["content-type"]
    assets = re.findall(r'(?:src|href)\s*=\s*["\']([^"\']+)["\']', html.text)
    assets += re.findall(r'url\s*:\s*["\']([^"\']+)["\']', html.text)
    assert assets, "the page names the assets it loads"
    for asset in assets:
        assert not re.match(r"(https?:)?//", asset), f"{page} loads {asset} from outside the app"
        assert api.client.get(asset).status_code == 200, asset
    assert "fonts.googleapis" not in html.text and "cdn.jsdelivr" not in html.text


def test_swagger_ui_asks_no_outside_validator(api):
    assert '"validatorUrl": null' in api.client.get("/docs").text
