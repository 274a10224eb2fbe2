#!/usr/bin/python3
"""Drives vgate's status page in headless Chromium (Selenium, chromedriver): run by
tests/browser_status.rs against a vgate with simulated vehicles driving.

Checks, in order: the page asks for the API token and works once given it; the counters show
the vehicles online and events/s moves; the chart draws; searching a prefix lists only matching
vehicles and finds the one asked for; its view shows its session, its track (an SVG polyline)
and its recent events; a command sent from the form is accepted; a screenshot is taken; the
kick button closes its connection; and the browser logged no console error all along.

Exit 0 when every check passed; otherwise 1 with the failed check on stderr. Prints one JSON
line of what it saw on stdout.
"""

import argparse
import json
import sys
import time

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--token", required=True)
    ap.add_argument("--vehicle", required=True, help="the vehicle to search, open and kick")
    ap.add_argument("--prefix", required=True, help="a prefix of it that another vehicle lacks")
    ap.add_argument("--online", type=int, required=True, help="vehicles online to expect")
    ap.add_argument("--screenshot", required=True)
    ap.add_argument("--settle", type=float, default=0, help="seconds to let the chart and track grow before the screenshot")
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    ap.add_argument("--chromedriver", default="/usr/bin/chromedriver")
    a = ap.parse_args()

    opts = webdriver.ChromeOptions()
    opts.binary_location = a.chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1280,1400", "--hide-scrollbars"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    d = webdriver.Chrome(service=Service(a.chromedriver), options=opts)
    seen = {}
    try:
        def wait(what, cond, limit=30.0):
            end = time.time() + limit
            last = None
            while time.time() < end:
                try:
                    last = cond()
                    if last:
                        return last
                except Exception as e:  # the page is being re-rendered: try again
                    last = repr(e)
                time.sleep(0.25)
            raise AssertionError(f"{what} (last: {last!r})")

        def card(label):
            for c in d.find_elements(By.CSS_SELECTOR, ".card"):
                if c.get_attribute("data-k") == label:
                    return c.find_element(By.TAG_NAME, "b").text
            return None

        d.get(a.url)
        # The API wants a token: the page asks for it.
        wait("the token prompt shows", lambda: d.find_element(By.ID, "auth").is_displayed())
        d.find_element(By.ID, "token").send_keys(a.token)
        d.find_element(By.ID, "save").click()

        online = wait("vehicles online shown", lambda: card("vehicles online") and int(card("vehicles online")) >= a.online and card("vehicles online"))
        seen["vehicles_online"] = int(online)
        assert card("connections jt808") is not None, "connections per listener"
        assert card("memory (RSS)") and "MiB" in card("memory (RSS)"), "process memory shown"
        # Events/s comes from two samples of the counters, 5 s apart: it moves within ~10 s.
        rate = wait("events/s moves above 0", lambda: float(card("events/s")) > 0 and card("events/s"), 25)
        seen["events_per_s"] = float(rate)
        types = wait("events/s by type", lambda: (lambda t: t if "location" in t else None)(d.find_element(By.ID, "types").text))
        seen["types"] = types
        pts = wait("the chart draws", lambda: d.find_element(By.ID, "line").get_attribute("points"))
        seen["chart_points"] = len(pts.split())

        # Search: only the matching vehicles, the one asked for among them.
        s = d.find_element(By.ID, "search")
        s.clear()
        s.send_keys(a.prefix)

        def rows():
            return [r.find_elements(By.TAG_NAME, "td")[0].text
                    for r in d.find_elements(By.CSS_SELECTOR, "#vehicles tr")]

        ids = wait("search finds the vehicle", lambda: (lambda r: r if a.vehicle in r and all(i.startswith(a.prefix) for i in r) else None)(rows()))
        seen["search_rows"] = len(ids)

        # The vehicle's view: session, track, recent events.
        for r in d.find_elements(By.CSS_SELECTOR, "#vehicles tr"):
            if r.find_elements(By.TAG_NAME, "td")[0].text == a.vehicle:
                r.click()
                break
        wait("the vehicle's session shows", lambda: a.vehicle in d.find_element(By.ID, "vinfo").text and '"online": true' in d.find_element(By.ID, "vinfo").text)
        track = wait("its track is drawn", lambda: (lambda p: p if len(p.split()) >= 3 else None)(d.find_element(By.ID, "trackline").get_attribute("points")), 30)
        seen["track_points"] = len(track.split())
        n = wait("its recent events are listed", lambda: len(d.find_elements(By.CSS_SELECTOR, "#vevents tr")) >= 3 and len(d.find_elements(By.CSS_SELECTOR, "#vevents tr")))
        seen["recent_events"] = n

        # The chart kept moving meanwhile (a point every 2 s).
        more = wait("the chart grows", lambda: (lambda n: n if n > seen["chart_points"] else None)(len(d.find_element(By.ID, "line").get_attribute("points").split())))
        seen["chart_points_later"] = more

        # A command from the form.
        cmd = d.find_element(By.ID, "command")
        cmd.clear()
        cmd.send_keys(json.dumps({"id": "browser-1", "type": "query_location"}))
        d.find_element(By.ID, "send").click()
        out = wait("the command is accepted", lambda: (lambda t: t if "browser-1:" in t else None)(d.find_element(By.ID, "vout").text))
        seen["command"] = out.strip()

        time.sleep(a.settle)
        d.execute_script("window.scrollTo(0, 0)")
        d.save_screenshot(a.screenshot)

        # The kick: the connection closes, the view says offline.
        d.find_element(By.ID, "kick").click()
        wait("the kick is done", lambda: "kicked" in d.find_element(By.ID, "vout").text)
        wait("the vehicle shows offline", lambda: '"online": false' in d.find_element(By.ID, "vinfo").text, 15)

        errors = [e for e in d.get_log("browser") if e.get("level") == "SEVERE"]
        assert not errors, f"console errors: {errors}"
        seen["console_errors"] = 0
        print(json.dumps(seen))
        return 0
    except AssertionError as e:
        print(json.dumps(seen))
        print(f"status page check failed: {e}", file=sys.stderr)
        try:
            d.save_screenshot(a.screenshot + ".failed.png")
            print(d.find_element(By.TAG_NAME, "body").text[:3000], file=sys.stderr)
            print(d.get_log("browser"), file=sys.stderr)
        except Exception:
            pass
        return 1
    finally:
        d.quit()


if __name__ == "__main__":
    sys.exit(main())
