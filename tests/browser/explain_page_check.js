// Opens an `rhead explain --html` page in Debian's chromium (driven by playwright-core) and
// checks it against the explanation that `rhead explain --json` printed for the same run:
//   - hovering each answer token highlights exactly the context tokens of its sources, and
//     the details panel lists each source's head;
//   - clicking a token pins it: the highlight stays after the pointer leaves;
//   - every unsupported token is marked as such;
//   - no console error, no page error, and no request to anything but the page itself.
// usage: node explain_page_check.js PAGE.html EXPLAIN.json [SCREENSHOT.png]
// Prints one JSON line {"ok": bool, "errors": [...], "tokens_checked": n} and exits 0 only when ok.
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');
const url = require('url');
const { chromium } = require('playwright-core');

async function main() {
  const [pagePath, jsonPath, screenshot] = process.argv.slice(2);
  const expected = JSON.parse(fs.readFileSync(jsonPath, 'utf8'));
  const pageUrl = url.pathToFileURL(path.resolve(pagePath)).href;
  const errors = [];
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'rhead-explain-browser-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.RHEAD_CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
           '--disable-component-update', '--disable-sync', '--no-first-run'],
    viewport: { width: 1300, height: 900 },
  });
  let tokensChecked = 0;
  try {
    // Anything but the page itself is an outside request: record it and refuse it.
    await context.route('**/*', (route) => {
      const u = route.request().url();
      if (u === pageUrl) return route.continue();
      errors.push('request outside the page: ' + u);
      return route.abort();
    });
    const page = context.pages()[0] || await context.newPage();
    page.on('console', (m) => { if (m.type() === 'error' || m.type() === 'assert') errors.push('console.' + m.type() + ': ' + m.text()); });
    page.on('pageerror', (e) => errors.push('page error: ' + e.message));
    await page.goto(pageUrl, { waitUntil: 'load' });

    const highlighted = () => page.$$eval('#context .ctx.src', (els) => els.map((e) => Number(e.dataset.pos)).sort((a, b) => a - b));
    const tokens = await page.$$eval('#answer .tok', (els) => els.map((e) => ({ i: Number(e.dataset.i), cls: e.className, text: e.textContent })));
    if (tokens.length !== expected.tokens.length) errors.push(`page shows ${tokens.length} answer tokens, the JSON has ${expected.tokens.length}`);
    if ((await highlighted()).length !== 0) errors.push('context highlighted before any token was hovered');

    for (let i = 0; i < expected.tokens.length && i < tokens.length; ++i) {
      const want = expected.tokens[i];
      const shown = tokens[i];
      if (shown.text !== want.piece) errors.push(`token ${i}: page shows ${JSON.stringify(shown.text)}, JSON has ${JSON.stringify(want.piece)}`);
      const marked = shown.cls.split(/\s+/).includes('unsupported');
      if (marked !== (want.support === 'unsupported')) errors.push(`token ${i}: support ${want.support} but page class "${shown.cls}"`);
      await page.hover(`#answer .tok[data-i="${i}"]`);
      const got = await highlighted();
      const wantPos = [...new Set(want.sources.map((s) => s.pos))].sort((a, b) => a - b);
      if (JSON.stringify(got) !== JSON.stringify(wantPos))
        errors.push(`token ${i}: hover highlights positions ${JSON.stringify(got)}, its sources are ${JSON.stringify(wantPos)}`);
      const detail = await page.textContent('#details');
      for (const s of want.sources)
        if (!detail.includes(s.head)) errors.push(`token ${i}: details do not list head ${s.head}`);
      // The highlighted context text is the source's piece (up to SentencePiece's implied leading space).
      for (const s of want.sources) {
        const text = await page.textContent(`#context .ctx[data-pos="${s.pos}"]`);
        if (text !== s.piece && ' ' + text !== s.piece) errors.push(`token ${i}: context at ${s.pos} reads ${JSON.stringify(text)}, source piece ${JSON.stringify(s.piece)}`);
      }
      ++tokensChecked;
    }
    // Click pins the token: its sources stay highlighted after the pointer leaves.
    const pinnedIndex = expected.tokens.findIndex((t) => t.sources.length > 0);
    if (pinnedIndex >= 0) {
      await page.click(`#answer .tok[data-i="${pinnedIndex}"]`);
      await page.hover('h1');
      const got = await highlighted();
      const wantPos = [...new Set(expected.tokens[pinnedIndex].sources.map((s) => s.pos))].sort((a, b) => a - b);
      if (JSON.stringify(got) !== JSON.stringify(wantPos)) errors.push(`clicked token ${pinnedIndex}: highlight after leaving is ${JSON.stringify(got)}, want ${JSON.stringify(wantPos)}`);
    }
    if (screenshot) await page.screenshot({ path: screenshot, fullPage: true });
  } catch (e) {
    errors.push('driver: ' + e.message);
  } finally {
    await context.close();
    fs.rmSync(profile, { recursive: true, force: true });
  }
  console.log(JSON.stringify({ ok: errors.length === 0, errors, tokens_checked: tokensChecked }));
  process.exit(errors.length === 0 ? 0 : 1);
}

main().catch((e) => { console.log(JSON.stringify({ ok: false, errors: ['driver: ' + e.message] })); process.exit(1); });
