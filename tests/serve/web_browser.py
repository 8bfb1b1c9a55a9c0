"""Drives the Keratrack web page in headless Chromium (Debian's chromium + chromedriver, selenium):
sign up, save a diet assessment and read the plan off the dashboard, then (with a model) upload a
real photo and read the stage, its probability bars and the history chart off the page.
Run by test_web_browser.sh with /usr/bin/python3:  web_browser.py URL IMAGE|- """
import json
import os
import sys
import urllib.request

from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import Select, WebDriverWait

url, image = sys.argv[1], sys.argv[2]
classes = json.load(urllib.request.urlopen(url + "/health"))["classes"]

opts = Options()
for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1200,2000"):
    opts.add_argument(a)
opts.binary_location = "/usr/bin/chromium"
driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
wait = WebDriverWait(driver, 60)


def fail(msg):
    print("FAIL:", msg)
    print("page message:", driver.find_element(By.ID, "message").text)
    for entry in driver.get_log("browser"):
        print("console:", entry)
    sys.exit(1)


try:
    driver.get(url + "/")
    driver.find_element(By.ID, "signup-name").send_keys("Browser Tester")
    driver.find_element(By.ID, "signup-email").send_keys("browser@example.com")
    driver.find_element(By.ID, "signup-password").send_keys("browser-pass-1")
    driver.find_element(By.ID, "signup-btn").click()
    wait.until(ec.visibility_of_element_located((By.ID, "app-section")))
    if driver.find_element(By.ID, "whoami-email").text != "browser@example.com":
        fail("not signed in as browser@example.com")

    # Assessment and plan first: a fresh account has no history (severity 0.5, h = 1.5, u = 1).
    driver.find_element(By.ID, "as-age").send_keys("30")
    Select(driver.find_element(By.ID, "as-gender")).select_by_value("female")
    driver.find_element(By.ID, "as-weight").send_keys("65")
    driver.find_element(By.ID, "as-height").send_keys("165")
    driver.find_element(By.CSS_SELECTOR, "input[name=restriction][value=vegetarian]").click()
    driver.find_element(By.ID, "assessment-btn").click()
    wait.until(ec.visibility_of_element_located((By.ID, "plan")))
    iron = driver.find_element(By.ID, "target-iron").text
    if "40.5 mg" not in iron:  # 18 x 1.5 x 1.5 x 1.0
        fail("iron row: " + iron)
    if len(driver.find_elements(By.CSS_SELECTOR, "#targets-table tbody tr")) != 7:
        fail("targets table does not have 7 nutrients")
    if len(driver.find_elements(By.CSS_SELECTOR, "#mealplan-table tbody tr")) != 7:
        fail("meal plan does not have 7 days")
    print("plan:", driver.find_element(By.ID, "plan-summary").text)
    print("iron:", iron)

    def check_console():
        # Content-Security-Policy violations and script errors show up as SEVERE console entries.
        severe = [e for e in driver.get_log("browser") if e.get("level") == "SEVERE" and "favicon" not in e.get("message", "")]
        if severe:
            fail("browser console errors: " + "; ".join(e["message"] for e in severe))

    check_console()
    if image == "-":
        print("no model: the upload part is not run")
        sys.exit(0)
    driver.find_element(By.ID, "photo-file").send_keys(os.path.realpath(image))  # chromedriver wants a canonical path
    driver.find_element(By.ID, "predict-btn").click()
    wait.until(lambda d: d.find_element(By.ID, "predict-stage").text.strip() != "")
    stage = driver.find_element(By.ID, "predict-stage").text.strip()
    if stage not in classes:
        fail(f"stage on the page '{stage}' is not one of the model's classes {classes}")
    bars = driver.find_elements(By.CSS_SELECTOR, "#prob-chart rect.bar")
    if len(bars) != len(classes):
        fail(f"{len(bars)} probability bars for {len(classes)} classes")
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#history-chart circle.dot")) == 1)
    check_console()
    if os.environ.get("KT_WEB_SCREENSHOT"):  # for a human look at the page
        driver.save_screenshot(os.environ["KT_WEB_SCREENSHOT"])
    print("stage read off the page:", stage, driver.find_element(By.ID, "predict-confidence").text)
finally:
    driver.quit()
