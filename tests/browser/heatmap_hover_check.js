// Opens an `rhead report` page in Debian's chromium (driven by playwright-core) and rests the
// pointer on the centre of every heatmap cell that has a tooltip: the element under the
// pointer must be that cell (no label drawn over it takes the hover), so the browser shows
// the cell's own <title>. Folded <details> are opened first, as a reader would. Fails on
// console errors, page errors and requests outside the page.
// usage: node heatmap_hover_check.js PAGE.html
// Prints one JSON line {"ok": bool, "errors": [...], "cells": n, "figures": n, "titles": [...]}.
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');
const url = require('url');
const { chromium } = require('playwright-core');

async function main() {
  const pageUrl = url.pathToFileURL(path.resolve(process.argv[2])).href;
  const errors = [];
  const titles = [];
  let cells = 0, figures = 0;
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'rhead-report-browser-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.RHEAD_CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
           '--disable-component-update', '--disable-sync', '--no-first-run'],
    viewport: { width: 1400, height: 1000 },
  });
  try {
    await context.route('**/*', (route) => {
      const u = route.request().url();
      if (u === pageUrl) return route.continue();
      errors.push('request outside the page: ' + u);
      return route.abort();
    });
    const page = context.pages()[0] || await context.newPage();
    page.on('console', (m) => { if (m.type() === 'error') errors.push('console.error: ' + m.text()); });
    page.on('pageerror', (e) => errors.push('page error: ' + e.message));
    await page.goto(pageUrl, { waitUntil: 'load' });
    // The report folds its details (<details>); a reader opens them to see those figures.
    await page.$$eval('details', (ds) => ds.forEach((d) => { d.open = true; }));
    figures = await page.$$eval('figure svg', (els) => els.length);
    const handles = await page.$$('figure svg rect:has(> title)');
    for (const cell of handles) {
      await cell.scrollIntoViewIfNeeded();
      const box = await cell.boundingBox();
      if (!box) { errors.push('a heatmap cell has no box'); continue; }
      const x = box.x + box.width / 2, y = box.y + box.height / 2;
      await page.mouse.move(x, y);
      const hit = await page.evaluate(([px, py]) => {
        const el = document.elementFromPoint(px, py);
        const t = el && el.querySelector(':scope > title');
        return t ? t.textContent : null;
      }, [x, y]);
      const own = await cell.evaluate((el) => el.querySelector(':scope > title').textContent);
      if (hit !== own) errors.push(`pointer on cell "${own}" hits ${JSON.stringify(hit)}`);
      titles.push(own);
      ++cells;
    }
  } catch (e) {
    errors.push('driver: ' + e.message);
  } finally {
    await context.close();
    fs.rmSync(profile, { recursive: true, force: true });
  }
  console.log(JSON.stringify({ ok: errors.length === 0 && cells > 0, errors: errors.slice(0, 20), cells, figures, titles }));
  process.exit(errors.length === 0 && cells > 0 ? 0 : 1);
}

main().catch((e) => { console.log(JSON.stringify({ ok: false, errors: ['driver: ' + e.message] })); process.exit(1); });
