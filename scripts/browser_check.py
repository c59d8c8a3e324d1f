#!/usr/bin/env python3
"""Opens an HTML file in headless Chromium and fails on console errors or broken images.

Talks to the browser over the DevTools protocol on a pipe (--remote-debugging-pipe:
the browser reads commands on fd 3 and writes replies on fd 4, one JSON message per
NUL-terminated chunk), so only the Python standard library is needed.

usage: browser_check.py PAGE.html SCREENSHOT.png [--min-images N] [--chromium PATH] [--timeout S] [--first-screen]
(--first-screen: a 1000 px screenshot and "first_screen_text", the text visible there)
Prints one JSON line {"images": n, "broken_images": [...], "errors": [...], "title": ...}
and exits 0 only when there are no errors, no broken images and at least N figures (images
plus inline SVG elements; "svgs" counts the latter).
"""
import argparse
import base64
import fcntl
import json
import os
import pathlib
import select
import shutil
import subprocess
import sys
import tempfile
import time


# The text of every text node with a visible box inside the first viewport (folded
# <details> content has no box), in document order.
FIRST_SCREEN_TEXT = """(() => {
  const walk = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  const out = [];
  for (let n = walk.nextNode(); n; n = walk.nextNode()) {
    const range = document.createRange();
    range.selectNodeContents(n);
    const box = range.getBoundingClientRect();
    if (box.height > 0 && box.top < window.innerHeight && box.bottom > 0 && n.textContent.trim())
      out.push(n.textContent.trim());
  }
  return out.join(' ');
})()"""


class DevTools:
    def __init__(self, write_fd, read_fd, timeout):
        self.write_fd, self.read_fd = write_fd, read_fd
        self.buffer = b""
        self.next_id = 0
        self.events = []
        self.deadline = time.monotonic() + timeout

    def _read_message(self, wait):
        while b"\0" not in self.buffer:
            remaining = min(wait, self.deadline - time.monotonic())
            if remaining <= 0:
                return None
            ready, _, _ = select.select([self.read_fd], [], [], remaining)
            if not ready:
                return None
            chunk = os.read(self.read_fd, 1 << 20)
            if not chunk:
                raise RuntimeError("browser closed the DevTools pipe")
            self.buffer += chunk
        message, self.buffer = self.buffer.split(b"\0", 1)
        return json.loads(message)

    def send(self, method, params=None, session=None):
        self.next_id += 1
        request = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            request["sessionId"] = session
        os.write(self.write_fd, json.dumps(request).encode() + b"\0")
        while True:
            message = self._read_message(wait=3600)
            if message is None:
                raise RuntimeError(f"timed out waiting for {method}")
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})
            self.events.append(message)

    def wait_event(self, method, seconds):
        end = time.monotonic() + seconds
        for i, event in enumerate(self.events):
            if event.get("method") == method:
                return self.events.pop(i)
        while time.monotonic() < end:
            message = self._read_message(wait=end - time.monotonic())
            if message is None:
                break
            if message.get("method") == method:
                return message
            self.events.append(message)
        return None

    def drain(self, seconds):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            message = self._read_message(wait=end - time.monotonic())
            if message is None:
                break
            self.events.append(message)


def errors_in(events):
    errors = []
    for event in events:
        method, params = event.get("method"), event.get("params", {})
        if method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            errors.append("exception: " + details.get("exception", {}).get("description", details.get("text", "")))
        elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            args = [a.get("value", a.get("description", "")) for a in params.get("args", [])]
            errors.append("console." + params["type"] + ": " + " ".join(map(str, args)))
        elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
            entry = params["entry"]
            errors.append(f"log ({entry.get('source')}): {entry.get('text')} {entry.get('url', '')}".strip())
    return errors


IMAGE_CHECK = """(() => {
  const images = Array.from(document.images);
  return JSON.stringify({
    title: document.title,
    images: images.length,
    svgs: document.querySelectorAll('svg').length,
    broken: images.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.alt || i.src.slice(0, 60)),
    height: Math.ceil(document.documentElement.scrollHeight),
  });
})()"""


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("page")
    parser.add_argument("screenshot")
    parser.add_argument("--min-images", type=int, default=1)
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--timeout", type=float, default=90)
    parser.add_argument("--width", type=int, default=1400)
    parser.add_argument("--max-height", type=int, default=7000)
    parser.add_argument("--first-screen", action="store_true",
                        help="screenshot only the first 1000 px and report the text visible there")
    args = parser.parse_args()

    page = pathlib.Path(args.page).resolve()
    if not page.is_file():
        print(json.dumps({"errors": [f"{page}: no such file"]}))
        return 1
    profile = tempfile.mkdtemp(prefix="rhead-browser-")
    to_browser_r, to_browser_w = os.pipe()
    from_browser_r, from_browser_w = os.pipe()
    command = [args.chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--disable-extensions", "--no-first-run",
               "--no-default-browser-check", "--mute-audio", "--hide-scrollbars",
               f"--user-data-dir={profile}", "--remote-debugging-pipe", "about:blank"]

    # The browser's ends move above fd 9 first so that placing them on 3 and 4 cannot
    # overwrite one with the other.
    child_read = fcntl.fcntl(to_browser_r, fcntl.F_DUPFD, 10)
    child_write = fcntl.fcntl(from_browser_w, fcntl.F_DUPFD, 10)

    def wire_fds():
        os.dup2(child_read, 3)
        os.dup2(child_write, 4)

    log = open(os.path.join(profile, "browser.log"), "wb")
    browser = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                               pass_fds=(3, 4), preexec_fn=wire_fds)
    os.close(child_read)
    os.close(child_write)
    os.close(to_browser_r)
    os.close(from_browser_w)
    result = {"page": str(page), "errors": []}
    try:
        tools = DevTools(to_browser_w, from_browser_r, args.timeout)
        target = tools.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = tools.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Runtime.enable", "Log.enable", "Page.enable"):
            tools.send(domain, session=session)
        tools.send("Emulation.setDeviceMetricsOverride",
                   {"width": args.width, "height": 1000, "deviceScaleFactor": 1, "mobile": False}, session=session)
        tools.send("Page.navigate", {"url": page.as_uri()}, session=session)
        if tools.wait_event("Page.loadEventFired", args.timeout) is None:
            result["errors"].append("page did not finish loading")
        tools.drain(1.0)  # late console messages
        check = json.loads(tools.send("Runtime.evaluate", {"expression": IMAGE_CHECK, "returnByValue": True},
                                      session=session)["result"]["value"])
        result.update(title=check["title"], images=check["images"], svgs=check["svgs"], broken_images=check["broken"])
        if args.first_screen:
            result["first_screen_text"] = tools.send("Runtime.evaluate", {"expression": FIRST_SCREEN_TEXT,
                                                                          "returnByValue": True},
                                                     session=session)["result"]["value"]
        height = 1000 if args.first_screen else max(600, min(check["height"], args.max_height))
        tools.send("Emulation.setDeviceMetricsOverride",
                   {"width": args.width, "height": height, "deviceScaleFactor": 1, "mobile": False}, session=session)
        tools.drain(0.5)
        shot = tools.send("Page.captureScreenshot", {"format": "png"}, session=session)
        pathlib.Path(args.screenshot).write_bytes(base64.b64decode(shot["data"]))
        result["screenshot"] = str(pathlib.Path(args.screenshot).resolve())
        result["errors"] += errors_in(tools.events)
        try:
            tools.send("Browser.close")
        except RuntimeError:
            pass
    except Exception as e:  # report, never hang
        result["errors"].append(f"driver: {e}")
    finally:
        try:
            browser.wait(timeout=10)
        except subprocess.TimeoutExpired:
            browser.kill()
            browser.wait()
        os.close(to_browser_w)
        os.close(from_browser_r)
        shutil.rmtree(profile, ignore_errors=True)

    print(json.dumps(result))
    ok = (not result["errors"] and not result.get("broken_images")
          and result.get("images", 0) + result.get("svgs", 0) >= args.min_images)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
