// Real-browser test of `nst-cli serve` (run it through run.sh, which starts the server).
// Opens the page in headless Chromium, checks that a non-image upload is refused with the server's
// message, uploads a content image and a style image, asks for the instant picture, refines it
// (an optimisation job starting from it), watches it from a second tab
// too, waits for the preview to change and the download link to appear, checks the downloaded
// PNG, saves a screenshot, and sends two photos in one form (two jobs queued).
//
// Environment: NST_URL (the server, required), CHROMIUM (default /usr/bin/chromium),
// NST_CONTENT / NST_STYLE (image files to upload), NST_SIZE (px, default 128),
// NST_ITERATIONS (default 30), NST_SCREENSHOT (default out/web.png), NST_TIMEOUT_S (default 600).

import { chromium } from 'playwright-core';
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '../..');
const base = process.env.NST_URL;
if (!base) throw new Error('set NST_URL to the server address (run.sh does)');
const contentFile = process.env.NST_CONTENT || join(root, 'assets/chelsea.png');
const styleFile = process.env.NST_STYLE || join(root, 'assets/the_scream.jpg');
const size = process.env.NST_SIZE || '128';
const iterations = process.env.NST_ITERATIONS || '30';
const screenshot = resolve(process.env.NST_SCREENSHOT || join(here, 'out/web.png'));
const timeout = Number(process.env.NST_TIMEOUT_S || 600) * 1000;

const t0 = Date.now();
const log = (msg) => console.log(`[${((Date.now() - t0) / 1000).toFixed(1)} s] ${msg}`);
function check(cond, msg) {
  if (!cond) throw new Error(`check failed: ${msg}`);
}

const profile = mkdtempSync(join(tmpdir(), 'nst-chromium-'));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  viewport: { width: 1280, height: 860 },
  args: [
    '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--disable-quic',
  ],
});
const problems = [];
function watchPage(page, name) {
  page.on('pageerror', (e) => problems.push(`${name}: page error: ${e.message}`));
  page.on('console', (m) => {
    // The deliberate 415 shows up as a failed resource load; anything else is a problem.
    if (m.type() === 'error' && !/status of 415/.test(m.text())) problems.push(`${name}: console: ${m.text()}`);
  });
}

try {
  const page = context.pages()[0] || (await context.newPage());
  page.setDefaultTimeout(timeout);
  watchPage(page, 'tab 1');
  await page.goto(base);
  await page.waitForSelector('#content-gallery .card input:checked');
  await page.waitForSelector('#style-gallery .card input:checked');
  check((await page.locator('#device option[value=cuda]').getAttribute('disabled')) !== null,
    'cuda is offered as unavailable');
  log('page loaded with the gallery');

  // A text file as the content: the server's 415 message is shown.
  await page.setInputFiles('#content-file', { name: 'notes.txt', mimeType: 'text/plain', buffer: Buffer.from('not an image') });
  await page.click('#start');
  await page.waitForFunction(() => /not an image/.test(document.getElementById('form-error').textContent));
  log('a non-image upload is refused: ' + (await page.textContent('#form-error')));

  // The real uploads: a content photo and a second style beside the preselected painting.
  await page.setInputFiles('#content-file', contentFile);
  await page.setInputFiles('#style-files', styleFile);
  check((await page.locator('#content-gallery .card').count()) === 2, 'the upload joins the content choices');
  check((await page.locator('#style-gallery .card input:checked').count()) === 2, 'two styles are selected');
  check((await page.locator('#blend .blend-row').count()) === 2, 'blend weights for two styles');
  await page.locator('#blend input[type=range]').first().fill('0.4');
  await page.selectOption('#size', size);
  await page.fill('#iterations', iterations);
  await page.locator('details summary').click();
  await page.fill('#preview_every', '3');
  await page.locator('details summary').click();

  // Instant: the feed-forward picture is shown within seconds, with a Refine button.
  const tInstant = Date.now();
  await page.click('#instant');
  await page.waitForFunction(() => document.getElementById('job-status').textContent === 'instant');
  await page.waitForFunction(() => {
    const img = document.getElementById('preview');
    return img.complete && img.naturalWidth > 0 && img.src.startsWith('blob:');
  });
  const instantMs = Date.now() - tInstant;
  const instantText = await page.textContent('#job-progress-text');
  check(/\d+ ms/.test(instantText), `instant timing shown: ${instantText}`);
  check(await page.isVisible('#refine'), 'the refine button is offered');
  check(await page.isVisible('#download'), 'the instant picture can be downloaded');
  log(`instant picture in ${instantMs} ms (${instantText})`);

  // Refine: the optimisation starts from the instant picture (init=fast).
  await page.click('#refine');
  check((await page.inputValue('#init')) === 'fast', 'refine starts from the instant picture');
  await page.waitForFunction(() => /^#job=[0-9a-f]{16}$/.test(location.hash));
  const jobUrl = page.url();
  log(`job started: ${jobUrl}`);

  // A second tab watches the same job.
  const page2 = await context.newPage();
  page2.setDefaultTimeout(timeout);
  watchPage(page2, 'tab 2');
  await page2.goto(jobUrl);

  // The preview changes while the job runs.
  await page.waitForFunction(() => document.getElementById('preview').getAttribute('src'));
  const first = await page.getAttribute('#preview', 'src');
  log(`first preview: ${first}`);
  await page.waitForFunction((f) => {
    const s = document.getElementById('preview').getAttribute('src');
    return s && s !== f;
  }, first);
  log(`preview changed: ${await page.getAttribute('#preview', 'src')}`);

  // Done: the download link appears in both tabs.
  await page.waitForSelector('#download:not([hidden])');
  await page2.waitForSelector('#download:not([hidden])');
  check((await page.textContent('#job-status')) === 'done', 'status done');
  check((await page2.textContent('#job-status')) === 'done', 'status done in the second tab');
  const href = await page.getAttribute('#download', 'href');
  const resp = await page.request.get(new URL(href, base).toString());
  check(resp.status() === 200, `result status ${resp.status()}`);
  const png = await resp.body();
  check(png.subarray(1, 4).toString() === 'PNG', 'the result is a PNG');
  const w = png.readUInt32BE(16), h = png.readUInt32BE(20);
  check(Math.max(w, h) === Number(size), `result ${w}×${h} has longest side ${size}`);
  log(`result ${href}: ${w}×${h} PNG, ${png.length} bytes`);
  const progress = await page.textContent('#job-progress-text');
  // `iterations` per scale, over as many scales as the size allows (the stopping rule may end
  // a scale early, so the last step can be below the total).
  const m = progress.match(/iteration (\d+)\/(\d+)/);
  check(m && Number(m[2]) % Number(iterations) === 0 && Number(m[1]) >= 1 && Number(m[1]) <= Number(m[2]),
    `final progress text: ${progress}`);
  check((await page.locator('#loss-chart polyline').count()) === 1, 'the loss curve is drawn');
  check((await page.locator('#job-list li.current').count()) === 1, 'the job is listed and highlighted');
  await page2.close();

  // Let the last preview image and the list settle, then take the screenshot.
  await page.waitForFunction(() => {
    const img = document.getElementById('preview');
    return img.complete && img.naturalWidth > 0;
  });
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.waitForTimeout(300);
  mkdirSync(dirname(screenshot), { recursive: true });
  await page.screenshot({ path: screenshot });
  log(`screenshot: ${screenshot}`);

  // Several photos in one form: a job each, queued in order.
  const listed = await page.locator('#job-list li').count();
  await page.setInputFiles('#content-file', [contentFile, join(root, 'assets/rocket.jpg')]);
  check(/2 photos/.test(await page.textContent('#content-gallery')), 'two photos chosen');
  await page.evaluate(() => { document.getElementById('init').value = 'content'; }); // inside the closed 'more' section
  await page.fill('#iterations', '2');
  await page.click('#start');
  await page.waitForFunction(() => /2 jobs queued/.test(document.getElementById('form-note').textContent));
  await page.waitForFunction((n) => document.querySelectorAll('#job-list li').length === n + 2, listed);
  log('two photos in one form: two jobs queued');
  check(problems.length === 0, `no page errors:\n${problems.join('\n')}`);
  log('browser test passed');
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
