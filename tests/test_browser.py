"""A real browser (headless Chromium through selenium) signs in, searches, sees highlighted
results and opens a document. With SBSEARCH_SCREENSHOT=PATH it also saves a screenshot of the
results page (scripts/screenshot.sh makes the one in docs/)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from sbsearch.cli import cli
from test_serve import Server

REPO = Path(__file__).resolve().parents[1]


def chrome():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or shutil.which("chromium-browser") or ""
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1100,900",
                "--lang=en-US"):
        options.add_argument(arg)
    return webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)


@pytest.fixture
def site(tmp_path):
    docs = tmp_path / "docs"
    for folder in ("it", "handbooks", "support", "intranet"):
        shutil.copytree(REPO / "sample_docs" / folder, docs / folder)
    index = tmp_path / "idx"
    model = os.environ.get("SBSEARCH_BROWSER_MODEL", "fake")
    for args in (["index", docs, "-i", index, "-m", model, "-q"],
                 ["users", "add", "erin", "-i", index, "--groups", "staff", "--password-stdin"]):
        result = CliRunner().invoke(cli, [str(a) for a in args], input="a good password\n")
        assert result.exit_code == 0, result.output
    server = Server(index, "--all-may-read-everything")  # sample documents, no access rules
    yield server
    server.stop()


@pytest.mark.slow  # starts Chromium
def test_sign_in_search_and_open_a_document_in_a_browser(site):
    if not (shutil.which("chromium") and shutil.which("chromedriver")):
        pytest.fail("the browser test needs chromium and chromedriver: run scripts/setup.sh as root")
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser = chrome()
    try:
        browser.get(site.base + "/?q=E-4012")
        assert "/login" in browser.current_url  # signed out: sent to the sign-in page
        browser.find_element(By.NAME, "user").send_keys("erin")
        browser.find_element(By.NAME, "password").send_keys("a good password")
        browser.find_element(By.CSS_SELECTOR, "form.login button").click()
        # The click returns before the results page has finished loading (a busy CI machine caught
        # it half-parsed): wait for the whole page, footer included, before reading it.
        WebDriverWait(browser, 30).until(
            lambda b: b.execute_script("return document.readyState") == "complete"
            and b.find_elements(By.CSS_SELECTOR, "footer.quality"))
        results = browser.find_elements(By.CSS_SELECTOR, "li.result")
        assert results, browser.page_source[:2000]
        first = results[0]
        assert "halden-link-error-and-warning-codes.md" in first.text
        marks = [m.text for m in first.find_elements(By.TAG_NAME, "mark")]
        assert "E-4012" in marks
        assert "mode: hybrid" in browser.find_element(By.CSS_SELECTOR, "footer.quality").text
        search = browser.find_element(By.NAME, "q")
        search.clear()
        search.send_keys("how do I set up the vpn\n")
        WebDriverWait(browser, 20).until(lambda b: "vpn" in b.current_url and b.find_elements(By.CSS_SELECTOR, "li.result"))
        paths = [p.text for p in browser.find_elements(By.CSS_SELECTOR, "li.result .path")]
        assert len(paths) == len(set(paths))  # a document once, its other passages listed under it
        links = [a for a in browser.find_elements(By.CSS_SELECTOR, "li.result a.title") if a.text.endswith(".md")]
        assert links and links[0].text == "vpn-setup.md"
        if os.environ.get("SBSEARCH_SCREENSHOT"):
            browser.save_screenshot(os.environ["SBSEARCH_SCREENSHOT"])
        name = links[0].text
        links[0].click()
        WebDriverWait(browser, 30).until(
            lambda b: "/doc/" in b.current_url and b.execute_script("return document.readyState") == "complete")
        body = browser.find_element(By.TAG_NAME, "body").text
        assert "Halden Connect VPN: Setup" in body and not browser.find_elements(By.CSS_SELECTOR, "form.login"), name
    finally:
        browser.quit()
