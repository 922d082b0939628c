#!/usr/bin/python3
"""Drives a reviewer's page in headless Chromium, as a reviewer with a keyboard would.

Usage: review-page.py URL DECISIONS [--screenshot FILE]

DECISIONS is a JSON object of item number to "keep" or "revoke". The script opens URL,
decides each item by its radio button and a note, submits each form, reloads the page and
prints, as JSON, what the reloaded page says: each item's decision, the page's title, and
whether it has any script. It exits 1 when the browser cannot be started.
"""
import json
import sys

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as conditions
from selenium.webdriver.support.ui import WebDriverWait


def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1100,1400"):
        options.add_argument(argument)
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)


def main():
    url, decisions = sys.argv[1], json.loads(sys.argv[2])
    screenshot = sys.argv[sys.argv.index("--screenshot") + 1] if "--screenshot" in sys.argv else None
    driver = None
    for attempt in range(3):
        try:
            driver = browser()
            break
        except Exception as error:  # the browser or its driver is missing, or slow to start
            print(f"cannot start headless Chromium (attempt {attempt + 1}): {error}", file=sys.stderr)
    if driver is None:
        return 1
    try:
        return drive(driver, url, decisions, screenshot)
    except Exception:
        # What the browser saw, for whoever reads the failure.
        print(f"at {driver.current_url}: {driver.title}\n{driver.page_source[:4000]}", file=sys.stderr)
        raise
    finally:
        driver.quit()


def drive(driver, url, decisions, screenshot):
    """Decides each item, reloads, and prints what the page says; 0 when done."""
    driver.get(url)
    for number, verdict in decisions.items():
        section = driver.find_element(By.ID, f"item-{number}")
        # The keyboard path: focus the radio button, choose it with the space bar.
        radio = section.find_element(By.CSS_SELECTOR, f"input[name=decision][value={verdict}]")
        radio.send_keys(Keys.SPACE)
        note = section.find_element(By.CSS_SELECTOR, "textarea[name=note]")
        note.send_keys(f"{verdict} after talking to the team")
        button = section.find_element(By.CSS_SELECTOR, "button[type=submit]")
        button.click()
        # The answer is a redirect back to the page: wait until the new page is in place.
        wait = WebDriverWait(driver, 20)
        wait.until(conditions.staleness_of(button))
        wait.until(lambda d: f"saved={number}" in d.current_url
                   and d.execute_script("return document.readyState") == "complete")
    driver.refresh()
    WebDriverWait(driver, 20).until(lambda d: d.execute_script("return document.readyState") == "complete")
    decided = {}
    for section in driver.find_elements(By.CSS_SELECTOR, "section.item"):
        number = section.get_attribute("id").removeprefix("item-")
        marks = section.find_elements(By.CSS_SELECTOR, ".decided")
        decided[number] = marks[0].get_attribute("data-decision") if marks else None
    labels = [label.text for label in driver.find_elements(By.CSS_SELECTOR, "legend")]
    result = {
        "title": driver.title,
        "decided": decided,
        "notice": [element.text for element in driver.find_elements(By.CSS_SELECTOR, "[role=status]")],
        "scripts": len(driver.find_elements(By.TAG_NAME, "script")),
        "legends": labels,
        "url": driver.current_url,
    }
    if screenshot:
        driver.execute_script("window.scrollTo(0, 0)")
        driver.save_screenshot(screenshot)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
