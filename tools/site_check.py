"""Open the built book site in headless Chromium with the network off and check what a reader sees.

Usage: python tools/site_check.py [--site build/html] [--screenshots build/site-screenshots]

Checks, page by page (every .html the site has, after MathJax has run):
  * nothing is fetched from the network: no http(s) script, stylesheet, image or font in the
    files, and Chromium's network log shows no request from the pages (DNS and direct
    connections are blocked, so a page that needed one would also fail the math check);
  * math rendered: pages with math have MathJax output (<mjx-container>), no MathJax error, and
    no raw TeX (`$$`, `\\(`, `\\[`, `\\begin{`) left in the visible text outside code;
  * navigation: every page has a title of its own, a sidebar listing every page, and
    previous/next links; every internal link resolves to an existing file; following "next"
    from the index visits every page once;
  * search: the search page finds pages for a query.
With --screenshots DIR it also writes PNGs of a few pages (for maintainers to look at).
Exits non-zero, naming each failure, when a check fails.
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

ROOT = Path(__file__).resolve().parents[1]
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run",
         "--disable-default-apps", "--hide-scrollbars"]
# The network is off: no name resolves and no direct connection gets out.
OFFLINE = ["--host-resolver-rules=MAP * ~NOTFOUND", "--proxy-server=127.0.0.1:9"]
# Chromium's own housekeeping requests (they never succeed here); everything else counts.
BROWSER_HOSTS = re.compile(r"(^|\.)(google\.com|googleapis\.com|gvt1\.com|gstatic\.com)$")
REMOTE_REF = re.compile(r"""(?:<(?:script|img|iframe|source)[^>]*\ssrc|<link[^>]*\shref)\s*=\s*["']?(?:https?:)?//""", re.I)
REMOTE_CSS = re.compile(r"""(?:url\(\s*["']?|@import\s+["'])(?:https?:)?//""", re.I)
RAW_TEX = re.compile(r"\$\$|\\\(|\\\)|\\\[|\\\]|\\begin\{|\$[^$\s][^$]*\\[a-zA-Z]+[^$]*\$")


def find_chromium():
    for name in (os.environ.get("CHROMIUM"), "chromium", "chromium-browser", "google-chrome"):
        if name and shutil.which(name):
            return shutil.which(name)
    sys.exit("site_check: no Chromium found (apt-get install chromium, or set CHROMIUM=...)")


def chromium(browser, args, netlog=None, timeout=120, offline=True):
    with tempfile.TemporaryDirectory() as profile:
        cmd = [browser, *FLAGS, *(OFFLINE if offline else []), f"--user-data-dir={profile}", *args]
        if netlog:
            cmd.insert(1, f"--log-net-log={netlog}")
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    return done.stdout


class Page(HTMLParser):
    """What a reader sees of a rendered page: visible text, links, MathJax output, title."""
    HIDDEN = {"script", "style", "pre", "code", "mjx-container", "textarea", "svg", "noscript"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.hidden, self.text, self.title, self.in_title = 0, [], "", False
        self.math = self.math_errors = 0
        self.links, self.prev, self.next, self.sidebar = [], None, None, []
        self.in_sidebar = 0

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        cls = set((a.get("class") or "").split())
        if tag in self.HIDDEN:
            self.hidden += 1
        if tag == "mjx-container":
            self.math += 1
        if tag == "mjx-merror" or "data-mjx-error" in a:
            self.math_errors += 1
        if tag == "title":
            self.in_title = True
        if tag == "nav" and "bd-docs-nav" in cls:
            self.in_sidebar = 1
        elif tag == "nav" and self.in_sidebar:
            self.in_sidebar += 1
        if tag == "a" and a.get("href"):
            self.links.append(a["href"])
            if "left-prev" in cls:
                self.prev = a["href"]
            if "right-next" in cls:
                self.next = a["href"]
            if self.in_sidebar and "reference" in cls:
                self.sidebar.append(a["href"])

    def handle_endtag(self, tag):
        if tag in self.HIDDEN and self.hidden:
            self.hidden -= 1
        if tag == "title":
            self.in_title = False
        if tag == "nav" and self.in_sidebar:
            self.in_sidebar -= 1

    def handle_data(self, data):
        if self.in_title:
            self.title += data
        elif not self.hidden:
            self.text.append(data)


def resolve(page, href):
    """The file an internal link points to, or None for an external or in-page link."""
    parts = urlsplit(href)
    if parts.scheme or parts.netloc or not parts.path:
        return None
    return (page.parent / unquote(parts.path)).resolve()


def check_sources(site):
    """No page, stylesheet or script of the site names a remote resource."""
    problems = []
    for path in sorted(site.rglob("*")):
        if path.suffix in (".html", ".css") and path.is_file():
            text = path.read_text(encoding="utf-8", errors="replace")
            for pattern in (REMOTE_REF, REMOTE_CSS):
                for m in pattern.finditer(text):
                    problems.append(f"{path.relative_to(site)}: remote resource: "
                                    f"{text[m.start():m.end() + 60]!r}")
    return problems


def remote_requests(netlog):
    """URLs other than file:// that Chromium was asked to load, from its network log."""
    try:
        text = Path(netlog).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    urls = set(re.findall(r'"url":"((?:https?|wss?|ftp)://[^"]+)"', text))
    return sorted(u for u in urls if not BROWSER_HOSTS.search(urlsplit(u).hostname or ""))


def render(browser, path, workdir):
    netlog = Path(workdir) / f"{abs(hash(str(path)))}.netlog.json"
    dom = chromium(browser, ["--virtual-time-budget=15000", "--dump-dom", path.as_uri()],
                   netlog=netlog)
    return dom, remote_requests(netlog)


def check_site(site, browser, jobs=2):
    problems = check_sources(site)
    pages = sorted(p for p in site.rglob("*.html")
                   if p.name not in ("search.html", "genindex.html") and "_static" not in p.parts)
    with tempfile.TemporaryDirectory() as work, ThreadPoolExecutor(jobs) as pool:
        rendered = dict(zip(pages, pool.map(lambda p: render(browser, p, work), pages)))
        search_dom = chromium(browser, ["--virtual-time-budget=15000", "--dump-dom",
                                        (site / "search.html").as_uri() + "?q=momentum"])
    parsed, titles = {}, {}
    for path, (dom, requests) in rendered.items():
        rel = path.relative_to(site)
        page = Page()
        page.feed(dom)
        parsed[path] = page
        if not dom.strip():
            problems.append(f"{rel}: Chromium returned no page")
            continue
        for url in requests:
            problems.append(f"{rel}: asked the network for {url}")
        has_math = 'class="math' in path.read_text(encoding="utf-8")
        if has_math and page.math == 0:
            problems.append(f"{rel}: has math but no MathJax output (MathJax did not run)")
        if page.math_errors:
            problems.append(f"{rel}: {page.math_errors} MathJax errors")
        visible = " ".join(" ".join(page.text).split())
        for m in RAW_TEX.finditer(visible):
            problems.append(f"{rel}: raw TeX in the text: {visible[max(0, m.start() - 40):m.end() + 40]!r}")
            break
        title = page.title.strip()
        if not title or title.lower().startswith("notebook"):
            problems.append(f"{rel}: no title of its own ({title!r})")
        titles.setdefault(title, []).append(str(rel))
        for href in page.links:
            target = resolve(path, href)
            if target is not None and not target.exists():
                problems.append(f"{rel}: link to a missing file: {href}")
        sidebar = {resolve(path, h) for h in page.sidebar} - {None}
        missing = [str(p.relative_to(site)) for p in pages if p not in sidebar and p != path
                   and p.name != "index.html"]
        if missing:
            problems.append(f"{rel}: sidebar lacks {', '.join(missing)}")
    problems += [f"pages share the title {t!r}: {', '.join(ps)}" for t, ps in titles.items()
                 if len(ps) > 1]
    # The previous/next chain from the index visits every page once, and "previous" walks back.
    index, seen, path = site / "index.html", [], site / "index.html"
    while path is not None and path not in seen and path in parsed:
        seen.append(path)
        nxt = parsed[path].next and resolve(path, parsed[path].next)
        if nxt is not None and parsed.get(nxt) and resolve(nxt, parsed[nxt].prev or "") != path:
            problems.append(f"{nxt.relative_to(site)}: 'previous' does not lead back to "
                            f"{path.relative_to(site)}")
        path = nxt
    unvisited = [str(p.relative_to(site)) for p in pages if p not in seen]
    if unvisited:
        problems.append(f"following 'next' from the index never reaches {', '.join(unvisited)}")
    search = re.search(r"found (\d+) page", search_dom)
    if not search or int(search.group(1)) == 0:
        problems.append("search.html?q=momentum found nothing (search index not loaded?)")
    n_math = sum(p.math for p in parsed.values())
    print(f"site_check: {len(pages)} pages, {n_math} formulas rendered by MathJax, "
          f"{len(seen)} pages in the previous/next chain, search "
          f"{'found ' + search.group(1) + ' pages' if search else 'failed'}")
    return problems


SHOTS = [  # (file name, page, window size): what a maintainer looks at
    ("index.png", "index.html", "1280,900"),
    ("gd-math-figure.png", "chapters/03-gd.html", "1280,2600"),
    ("adam.png", "chapters/10-adam.html", "1280,1600"),
    ("search.png", "search.html?q=momentum", "1280,900"),
    ("gd-narrow.png", "chapters/03-gd.html", "420,900"),
]


def screenshots(site, browser, out):
    out.mkdir(parents=True, exist_ok=True)
    for name, page, size in SHOTS:
        target = out / name
        path, _, query = page.partition("?")
        url = (site / path).as_uri() + (f"?{query}" if query else "")
        chromium(browser, ["--virtual-time-budget=15000", f"--window-size={size}",
                           f"--screenshot={target}", url])
        print(f"wrote {target}" if target.exists() else f"no screenshot of {page}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--site", type=Path, default=ROOT / "build" / "html")
    parser.add_argument("--screenshots", type=Path, metavar="DIR",
                        help="also write PNGs of a few pages into DIR")
    parser.add_argument("--no-check", action="store_true", help="only take the screenshots")
    args = parser.parse_args(argv)
    site = args.site.resolve()
    if not (site / "index.html").is_file():
        sys.exit(f"site_check: {site / 'index.html'} does not exist (make html)")
    browser = find_chromium()
    problems = [] if args.no_check else check_site(site, browser)
    if args.screenshots:
        screenshots(site, browser, args.screenshots.resolve())
    for problem in problems:
        print("FAIL", problem)
    if not args.no_check:
        print("site_check: " + (f"{len(problems)} problems" if problems else "all checks passed"))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
