#!/usr/bin/env python3
"""The dashboard in a real headless Chromium, as a new collector uses it.

    dashboard.py BASE_URL SCREENSHOTS_DIR OPERATOR_CREDENTIAL

BASE_URL is a running dashboard (the web target) in front of a mesh whose market produces
listings. The collector signs up, deposits paper funds, creates a strategy from a template
(first with a mistake, named beside its field), activates it, watches the agents' decisions
arrive in the live feed, opens one and reads why, changes a limit through the two steps,
engages and releases the emergency stop, follows the live listing feed, backtests the strategy
and sees its chart, visits every other page, signs out, and signs in again with the keyboard
alone. Every page is checked for labels, names, contrast and a phone's
width, and photographed into SCREENSHOTS_DIR. Any failure ends the run with a message naming
the page and what was wrong, and exit status 1.
"""

import os
import shutil
import sys
import time
import urllib.parse
import uuid

from selenium import webdriver
from selenium.common.exceptions import TimeoutException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

DESKTOP = (1280, 1000)
PHONE = (390, 844)
PASSWORD = "correct horse battery staple"

# One script the browser runs on every page: what a basic accessibility audit looks for.
AUDIT = r"""
function luminance(rgb) {
  var c = rgb.map(function (v) { v = v / 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); });
  return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2];
}
function parse(color) {
  var m = color.match(/rgba?\(([^)]+)\)/);
  if (!m) return null;
  var p = m[1].split(',').map(function (x) { return parseFloat(x); });
  return { rgb: p.slice(0, 3), alpha: p.length > 3 ? p[3] : 1 };
}
function background(el) {
  for (; el; el = el.parentElement) {
    var c = parse(getComputedStyle(el).backgroundColor);
    if (c && c.alpha > 0.5) return c.rgb;
  }
  return [255, 255, 255];
}
function visible(el) {
  var s = getComputedStyle(el);
  var r = el.getBoundingClientRect();
  return s.visibility !== 'hidden' && s.display !== 'none' && r.width > 0 && r.height > 0;
}
function describe(el) {
  return el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') + (el.name ? '[name=' + el.name + ']' : '') +
    ' "' + (el.textContent || '').trim().slice(0, 40) + '"';
}
var problems = [];
if (!document.documentElement.lang) problems.push('the page names no language (html lang)');
if (!document.title.trim()) problems.push('the page has no title');
if (document.querySelectorAll('h1').length !== 1) problems.push('the page has ' + document.querySelectorAll('h1').length + ' h1 headings, not one');
document.querySelectorAll('input, select, textarea').forEach(function (el) {
  if (el.type === 'hidden') return;
  var labelled = (el.id && document.querySelector('label[for="' + el.id + '"]')) || el.closest('label') ||
    el.getAttribute('aria-label') || el.getAttribute('aria-labelledby');
  if (!labelled) problems.push('no label for ' + describe(el));
});
document.querySelectorAll('a, button').forEach(function (el) {
  var name = (el.textContent || '').trim() || el.getAttribute('aria-label') || el.getAttribute('title');
  if (!name) problems.push('no accessible name for ' + describe(el));
});
document.querySelectorAll('img, svg').forEach(function (el) {
  var named = el.getAttribute('alt') !== null || el.getAttribute('aria-label') || el.getAttribute('aria-labelledby') ||
    el.getAttribute('aria-hidden') === 'true' || el.querySelector('title') || el.getAttribute('role') === 'presentation';
  if (!named && !el.closest('svg[aria-label], svg[aria-labelledby]')) problems.push('no text alternative for ' + describe(el));
});
var checked = 0;
document.querySelectorAll('body *').forEach(function (el) {
  var own = Array.prototype.some.call(el.childNodes, function (n) { return n.nodeType === 3 && n.textContent.trim(); });
  if (!own || !visible(el) || el.closest('svg')) return;
  var s = getComputedStyle(el);
  var fg = parse(s.color);
  if (!fg) return;
  var bg = background(el);
  var a = luminance(fg.rgb), b = luminance(bg);
  var ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
  var size = parseFloat(s.fontSize), bold = parseInt(s.fontWeight, 10) >= 700;
  var large = size >= 24 || (bold && size >= 18.66);
  checked++;
  if (ratio < (large ? 3 : 4.5)) problems.push('contrast ' + ratio.toFixed(2) + ':1 for ' + describe(el));
});
var wide = document.documentElement.scrollWidth > window.innerWidth + 1;
return { problems: problems, checked: checked, wide: wide, scrollWidth: document.documentElement.scrollWidth, width: window.innerWidth };
"""


class Failed(Exception):
    """A check that did not hold, with the page it was on."""


class Dashboard:
    def __init__(self, base, shots, operator):
        self.base = base.rstrip("/")
        self.shots = shots
        self.operator = operator
        self.audited = []
        options = webdriver.ChromeOptions()
        options.binary_location = browser_binary()
        for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                         "--window-size=%d,%d" % DESKTOP, "--lang=en-US"):
            options.add_argument(argument)
        self.driver = webdriver.Chrome(service=Service(executable_path=driver_binary()), options=options)
        self.driver.set_page_load_timeout(30)
        self.wait = WebDriverWait(self.driver, 20)

    # The page and its parts.
    def open(self, path):
        self.driver.get(self.base + path)

    def path(self):
        url = self.driver.current_url
        return url[len(self.base):] if url.startswith(self.base) else url

    def text(self):
        return self.driver.find_element(By.TAG_NAME, "body").text

    def heading(self):
        return self.driver.find_element(By.TAG_NAME, "h1").text

    def expect(self, condition, what):
        if not condition:
            raise Failed("%s (on %s, h1 %r): %s" % (what, self.path(), self.safe_heading(), self.text()[:1500]))

    def safe_heading(self):
        try:
            return self.heading()
        except WebDriverException:
            return None

    def until(self, what, check, seconds=20):
        try:
            return WebDriverWait(self.driver, seconds, poll_frequency=0.2).until(lambda _: check())
        except TimeoutException:
            raise Failed("%s: not within %d s (on %s): %s" % (what, seconds, self.path(), self.text()[:1500]))

    def at(self, heading):
        self.until("the page %r" % heading, lambda: self.safe_heading() == heading)

    def fill(self, name, value):
        box = self.driver.find_element(By.NAME, name)
        box.clear()
        box.send_keys(value)

    def press(self, text):
        """Clicks the button (or link) showing `text`, and waits for the page it leads to."""
        literal = '"%s"' % text if "'" in text else "'%s'" % text
        for selector in ("//button[normalize-space()=%s]" % literal, "//a[normalize-space()=%s]" % literal):
            found = self.driver.find_elements(By.XPATH, selector)
            if found:
                old = self.driver.find_element(By.TAG_NAME, "html")
                found[0].click()
                self.until("the page after %r" % text, lambda: stale(old))
                return
        raise Failed("no button or link %r on %s" % (text, self.path()))

    # What every page is checked for.
    def audit(self, name):
        """Checks the page (desktop and phone widths) and photographs it as NAME.png."""
        found = self.driver.execute_script(AUDIT)
        self.expect(not found["problems"], "accessibility: " + "; ".join(found["problems"][:10]))
        self.expect(found["checked"] > 0, "the contrast check found no text")
        self.screenshot(name)
        self.driver.set_window_size(*PHONE)
        try:
            narrow = self.driver.execute_script(AUDIT)
            self.expect(not narrow["problems"], "accessibility at a phone's width: "
                        + "; ".join(narrow["problems"][:10]))
            self.expect(not narrow["wide"], "a phone's width (%d px): the page is %d px wide"
                        % (narrow["width"], narrow["scrollWidth"]))
            self.screenshot(name + "-phone")
        finally:
            self.driver.set_window_size(*DESKTOP)
        self.audited.append(name)

    def screenshot(self, name):
        height = self.driver.execute_script("return document.documentElement.scrollHeight")
        width = self.driver.execute_script("return window.innerWidth")
        self.driver.set_window_size(self.driver.get_window_size()["width"], min(max(height + 140, 600), 4000))
        path = os.path.join(self.shots, name + ".png")
        if not self.driver.save_screenshot(path):
            raise Failed("could not write %s" % path)
        self.driver.set_window_size(self.driver.get_window_size()["width"], DESKTOP[1] if width > PHONE[0] else PHONE[1])

    def audit_can_fail(self):
        """The audit, on a page made to fail it, names each fault (or it would prove nothing)."""
        bad = ("<html><head><title>t</title></head><body><h1>One</h1>"
               "<p style='color:#bbb;background:#fff'>faint</p><input id=lonely type=text>"
               "<button></button><div style='width:3000px'>wide</div></body></html>")
        self.driver.get("data:text/html;charset=utf-8," + urllib.parse.quote(bad))
        self.driver.set_window_size(*PHONE)
        found = self.driver.execute_script(AUDIT)
        self.driver.set_window_size(*DESKTOP)
        joined = "; ".join(found["problems"])
        for fault in ("no language", "no label for input#lonely", "no accessible name for button", "contrast 1.9"):
            if fault not in joined:
                raise Failed("the audit missed %r on a page made to fail it: %s" % (fault, joined))
        if not found["wide"]:
            raise Failed("the audit missed a page wider than a phone")

    # The collector's afternoon.
    def run(self):
        self.audit_can_fail()
        email = "browser-%s@example.com" % uuid.uuid4().hex[:12]
        self.sign_up(email)
        self.deposit()
        strategy = self.create_strategy()
        self.activate(strategy)
        self.watch_decisions()
        self.read_a_decision()
        self.approve_a_purchase(strategy)
        self.change_a_limit()
        self.emergency_stop()
        self.market()
        self.backtest(strategy)
        self.the_rest()
        self.sign_out()
        self.sign_in_by_keyboard(email)

    def sign_up(self, email):
        self.open("/portfolio")
        self.at("Sign in")
        self.expect(self.path() == "/sign-in", "a visitor signed out is sent to sign in")
        self.audit("sign-in")
        self.open("/sign-up")
        self.at("Create your account")
        self.audit("sign-up")
        self.fill("display_name", "Browser collector")
        self.fill("email", email)
        self.fill("password", "short")
        self.press("Create account")
        self.expect("password" in self.text() and self.path() == "/sign-up",
                    "a short password is named on the sign-up page")
        self.fill("password", PASSWORD)
        self.press("Create account")
        self.at("Portfolio")

    def deposit(self):
        self.fill("amount_cents", "twelve")
        self.press("Deposit")
        error = self.driver.find_elements(By.ID, "field-amount_cents-error")
        self.expect(error and "amount_cents must be an amount in dollars" in error[0].text,
                    "a bad amount is named beside its field")
        self.fill("amount_cents", "2,500")
        self.press("Deposit")
        self.at("Portfolio")
        self.expect("$2,500.00" in self.text(), "the deposit shows in the cash")
        self.fill("flow_address", "0x" + uuid.uuid4().hex[:16])
        self.press("Register wallet")
        self.at("Portfolio")
        self.expect("connected" in self.text() and "trading is on" in self.text(), "the wallet is connected")
        self.audit("portfolio")

    def create_strategy(self):
        self.open("/strategies")
        self.at("Strategies")
        self.driver.find_element(By.CSS_SELECTOR, "a[aria-label='Use the template Post-game spike']").click()
        self.at("New strategy: Post-game spike")
        name = "Any player who played"
        self.fill("display_name", name)
        self.fill("priority", "5")
        self.fill("min_confidence", "1.5")
        self.fill("min_discount_bps", "0")
        self.fill("max_price_cents", "200")
        self.fill("min_game_score", "1")
        self.fill("buy_window_minutes", "4320")
        self.press("Create strategy (paused)")
        error = self.driver.find_elements(By.ID, "field-min_confidence-error")
        self.expect(error and error[0].text.startswith("min_confidence "),
                    "a confidence of 1.5 is named beside its field")
        self.expect(self.driver.find_element(By.NAME, "display_name").get_attribute("value") == name,
                    "what was typed is kept when the form comes back")
        self.audit("strategy-form")
        self.fill("min_confidence", "0.1")
        self.press("Create strategy (paused)")
        self.at("Strategies")
        self.expect(name in self.text(), "the new strategy is listed")
        return name

    def activate(self, name):
        self.driver.find_element(By.CSS_SELECTOR, "button[aria-label='Activate %s']" % name).click()
        self.until("the strategy active", lambda: self.driver.find_elements(
            By.CSS_SELECTOR, "button[aria-label='Pause %s']" % name))
        self.audit("strategies")

    def watch_decisions(self):
        self.open("/decisions")
        self.at("Decisions")
        self.driver.execute_script("window.stillThisPage = true;")
        shown = lambda: [a.get_attribute("href") for a in
                         self.driver.find_elements(By.CSS_SELECTOR, "#decision-rows a[href^='/decisions/']")]
        at_load = set(shown())
        state = lambda: self.driver.find_element(By.ID, "feed-state").text
        self.until("a decision arriving by the live feed", lambda: state().startswith("Live:"), seconds=90)
        self.until("a decision the page did not have", lambda: set(shown()) - at_load)
        self.expect(self.driver.execute_script("return window.stillThisPage === true;"),
                    "the decision arrived without the page being loaded again")
        links = shown()
        twice = sorted({link for link in links if links.count(link) > 1})
        self.expect(not twice, "the feed sends each decision once; twice: %s" % twice[:5])
        rows = self.driver.find_elements(By.CSS_SELECTOR, "#decision-rows tr")
        self.expect(rows and "Any player who played" in rows[0].text, "the newest row names the strategy")
        # A purchase keeps its weighted factors: wait for one in the feed.
        bought = lambda: self.driver.find_elements(
            By.XPATH, "//tbody[@id='decision-rows']/tr[.//span[contains(@class,'buy')]]//a[starts-with(@href,'/decisions/')]")
        self.until("a purchase in the feed", bought, seconds=60)
        self.audit("decisions")

    def read_a_decision(self):
        self.driver.find_element(
            By.XPATH, "//tbody[@id='decision-rows']/tr[.//span[contains(@class,'buy')]]//a[starts-with(@href,'/decisions/')]"
        ).click()
        self.at("Decision")
        self.expect("bought" in self.text(), "the decision opened is a purchase")
        reasons = self.driver.find_elements(By.XPATH, "//h2[.='Why']/following-sibling::ul[1]/li")
        self.expect(reasons and all(r.text.strip() for r in reasons), "the decision lists its reasons")
        factors = self.driver.find_elements(
            By.XPATH, "//h2[.='Weighted factors']/following-sibling::div[1]//tbody/tr")
        self.expect(factors and all(f.find_elements(By.TAG_NAME, "code") for f in factors),
                    "the purchase shows its weighted factors, each named")
        self.audit("decision")

    def approve_a_purchase(self, name):
        """Manual approval turned on in the strategy's form; a purchase then waits, and is
        approved from its page."""
        self.open("/strategies")
        self.driver.find_element(By.LINK_TEXT, name).click()
        self.at(name)
        self.fill("manual_approval.expire_after_minutes", "0")
        self.press("Save changes")
        error = self.driver.find_elements(By.ID, "field-manual_approval.expire_after_minutes-error")
        self.expect(error and "between 1 and 1440" in error[0].text, "a wait of 0 minutes is named beside its field")
        self.fill("manual_approval.expire_after_minutes", "30")
        self.fill("max_purchases_per_day", "1000")
        self.press("Save changes")
        self.at(name)
        self.expect(self.driver.find_element(By.NAME, "manual_approval.expire_after_minutes").get_attribute("value") == "30",
                    "the approval's wait is kept")
        self.expect("Reset the protections" in self.text(), "a strategy with protections can reset them")
        self.audit("strategy-protections")
        self.open("/decisions?outcome=awaiting")
        self.at("Decisions")
        waiting = lambda: self.driver.find_elements(
            By.XPATH, "//tbody[@id='decision-rows']/tr[.//span[contains(@class,'awaiting')]]//a[starts-with(@href,'/decisions/')]")
        self.until("a purchase waiting for approval", waiting, seconds=90)
        waiting()[0].click()
        self.at("Decision")
        self.expect("Your approval" in self.text() and "awaits your approval" in self.text(),
                    "the decision asks for approval")
        self.audit("decision-awaiting")
        approve = self.driver.find_element(By.XPATH, "//button[starts-with(normalize-space(), 'Approve and buy for')]")
        old = self.driver.find_element(By.TAG_NAME, "html")
        approve.click()
        self.until("the page after approving", lambda: stale(old))
        self.at("Decision")
        text = self.text()
        # Approved, it is bought (or refused by trading when the listing went meanwhile); it no
        # longer waits either way.
        self.expect("awaits your approval" not in text and ("Bought on your approval" in text or "refused" in text),
                    "the approval ends the wait")

    def change_a_limit(self):
        self.open("/budget")
        self.at("Budget")
        self.audit("budget")
        self.fill("daily_cents", "-5")
        self.press("Review the change")
        error = self.driver.find_elements(By.ID, "field-daily_cents-error")
        self.expect(error, "a negative daily limit is named beside its field")
        self.fill("daily_cents", "150")
        self.press("Review the change")
        self.expect("$150.00" in self.text(), "the proposed change shows the new daily limit")
        self.screenshot("budget-review")
        self.press("Confirm the change")
        self.at("Budget")
        self.expect(self.driver.find_element(By.NAME, "daily_cents").get_attribute("value") == "150.00",
                    "the confirmed daily limit is the form's value")

    def emergency_stop(self):
        self.press("Engage the emergency stop")
        self.at("Budget")
        self.expect(self.driver.find_elements(By.XPATH, "//button[.='Release the emergency stop']"),
                    "an engaged stop offers its release")
        self.screenshot("budget-stopped")
        self.press("Release the emergency stop")
        self.at("Budget")
        self.expect(self.driver.find_elements(By.XPATH, "//button[.='Engage the emergency stop']"),
                    "a released stop can be engaged again")

    def market(self):
        self.open("/market")
        self.at("Market")
        self.driver.execute_script("window.stillThisPage = true;")
        state = lambda: self.driver.find_element(By.ID, "market-state").text
        self.until("a listing event arriving by the live feed", lambda: state().startswith("Live:"), seconds=60)
        self.expect(self.driver.execute_script("return window.stillThisPage === true;"),
                    "the listing arrived without the page being loaded again")
        self.audit("market")
        links = self.driver.find_elements(By.CSS_SELECTOR, "a[href^='/market/moments/']")
        self.expect(links, "the market links to moments")
        links[0].click()
        self.until("a moment's page", lambda: self.path().startswith("/market/moments/"))
        self.expect(self.driver.find_elements(By.XPATH, "//h2[starts-with(.,'Price history')]"),
                    "the moment's page has its price history")
        self.expect(self.driver.find_elements(By.CSS_SELECTOR, "figure.chart svg[role='img']")
                    or "Nothing to draw yet" in self.text(), "the price history is a chart (or says it has none)")
        self.expect(self.driver.find_elements(By.XPATH, "//h2[.='Valuation']"), "the moment's page has its valuation")
        self.expect(self.driver.find_elements(By.XPATH, "//h2[.='Valuation']/following::tbody[1]/tr/td/code")
                    or self.driver.find_elements(By.XPATH, "//section[@aria-labelledby='valuation']"
                                                 "//*[contains(@class,'problem') or contains(@class,'unavailable')]"),
                    "the valuation shows its factors (or says why it has none)")
        self.audit("moment")

    def backtest(self, name):
        self.open("/backtests")
        self.at("Backtests")
        self.audit("backtests")
        box = self.driver.find_elements(By.XPATH, "//label[contains(normalize-space(), '%s')]/input[@name='strategy_ids']" % name)
        self.expect(box, "the strategy is offered for a backtest")
        box[0].click()
        self.fill("days", "3")
        self.press("Run the backtest")
        self.at("Backtest")

        def succeeded():
            try:
                return "succeeded" in self.text()
            except WebDriverException:
                return False  # the page was refreshing
        self.until("the backtest's page refreshing until it has succeeded", succeeded, seconds=60)
        self.at("Backtest")
        chart = self.driver.find_elements(By.CSS_SELECTOR, "figure.chart img")
        self.expect(chart, "the backtest's page shows its chart")
        self.until("the chart drawn", lambda: self.driver.execute_script(
            "return arguments[0].complete && arguments[0].naturalWidth > 0;", chart[0]))
        table = self.driver.find_element(By.TAG_NAME, "table").text
        for ledger in (name, "buy every listing under fair value", "hold nothing"):
            self.expect(ledger in table, "the figures of %r are shown" % ledger)
        self.audit("backtest")

    def the_rest(self):
        for path, heading, name in (("/notifications", "Notifications", "notifications"),
                                    ("/leaderboards", "Leaderboards", "leaderboards")):
            self.open(path)
            self.at(heading)
            self.audit(name)
        self.open("/operators")
        self.at("Operators")
        self.fill("credential", self.operator)
        self.press("Show the system's health")
        self.at("Operators")
        self.expect("The system is serving" in self.text(), "the operators' page says the system is serving")
        for service in ("user", "strategy", "risk", "marketplace", "scouting", "trading", "notification", "agents"):
            row = self.driver.find_elements(By.XPATH, "//tbody/tr[td/strong[.='%s']]" % service)
            self.expect(row and "serving" in row[0].text and "not serving" not in row[0].text,
                        "%s's endpoint is shown serving" % service)
        self.audit("operators")

    def sign_out(self):
        self.press("Sign out")
        self.at("Sign in")
        self.open("/portfolio")
        self.at("Sign in")
        self.open("/operators")
        self.expect(self.driver.find_elements(By.NAME, "credential"),
                    "signed out, the operator credential is forgotten too")
        self.open("/sign-in")
        self.at("Sign in")

    def sign_in_by_keyboard(self, email):
        """Tab to each field, type, and press Enter: no mouse."""
        body = self.driver.find_element(By.TAG_NAME, "body")
        body.click()
        focused = lambda: self.driver.switch_to.active_element.get_attribute("id")
        for _ in range(20):
            if focused() == "field-email":
                break
            self.driver.switch_to.active_element.send_keys(Keys.TAB)
        self.expect(focused() == "field-email", "Tab reaches the email field")
        self.driver.switch_to.active_element.send_keys(email, Keys.TAB)
        self.expect(focused() == "field-password", "Tab goes from the email to the password")
        old = self.driver.find_element(By.TAG_NAME, "html")
        self.driver.switch_to.active_element.send_keys(PASSWORD, Keys.ENTER)
        self.until("the page after Enter", lambda: stale(old))
        self.at("Portfolio")
        self.expect("$2,500.00" in self.text(), "signed in again, the same cash")


def stale(element):
    try:
        element.is_enabled()
        return False
    except WebDriverException:
        return True


def browser_binary():
    for candidate in (os.environ.get("CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium")):
        if candidate and os.path.exists(candidate):
            return candidate
    sys.exit("Chromium is not installed: `apt-get install chromium chromium-driver` (.ci/run does)")


def driver_binary():
    for candidate in (os.environ.get("CHROMEDRIVER"), "/usr/bin/chromedriver", shutil.which("chromedriver")):
        if candidate and os.path.exists(candidate):
            return candidate
    sys.exit("chromedriver is not installed: `apt-get install chromium-driver` (.ci/run does)")


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    base, shots, operator = sys.argv[1:]
    os.makedirs(shots, exist_ok=True)
    # Selenium never reaches the network for a driver: the installed one is named.
    os.environ.setdefault("SE_OFFLINE", "true")
    started = time.monotonic()
    dashboard = Dashboard(base, shots, operator)
    try:
        dashboard.run()
    except Failed as failure:
        dashboard.screenshot("failure")
        print("FAILED: %s" % failure, file=sys.stderr)
        print("(the page as it was: %s)" % os.path.join(shots, "failure.png"), file=sys.stderr)
        sys.exit(1)
    finally:
        dashboard.driver.quit()
    print("the collector's flow passed in %.1f s; pages checked: %s" % (time.monotonic() - started,
                                                                        ", ".join(dashboard.audited)))
    print("screenshots: %s" % shots)


if __name__ == "__main__":
    main()
