// ci/browser's checks: every page of the built book opened in headless Chromium through
// puppeteer-core (the DevTools protocol client that Chrome's team maintains; it drives the
// browser the machine has and downloads none).
//
//   node ci/browser-check/check.mjs --book target/book --out target/browser --chrome /usr/bin/chromium
//
// Fails on: a console error or an uncaught exception, a request that failed or answered 4xx/5xx,
// an image that did not load, a KaTeX error or TeX left unrendered, an empty code listing, a
// link to a page of the book that does not exist or to an anchor that page does not have, a
// search that does not find a chapter's word. Saves one screenshot per page.
import fs from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import puppeteer from "puppeteer-core";

const args = Object.fromEntries(
  process.argv.slice(2).reduce((pairs, a, i, all) => (a.startsWith("--") ? [...pairs, [a.slice(2), all[i + 1]]] : pairs), []),
);
const book = path.resolve(args.book ?? "target/book");
const out = path.resolve(args.out ?? "target/browser");
const shots = path.join(out, "screenshots");
fs.rmSync(out, { recursive: true, force: true });
fs.mkdirSync(shots, { recursive: true });

const types = { ".html": "text/html", ".js": "text/javascript", ".css": "text/css", ".png": "image/png", ".jpg": "image/jpeg",
  ".gif": "image/gif", ".svg": "image/svg+xml", ".woff2": "font/woff2", ".woff": "font/woff", ".ttf": "font/ttf", ".json": "application/json", ".txt": "text/plain" };
/** The file a URL path names in the book, or null. */
function fileOf(urlPath) {
  let p = decodeURIComponent(urlPath);
  if (p.endsWith("/")) p += "index.html";
  const f = path.join(book, p);
  return f.startsWith(book) && fs.existsSync(f) && fs.statSync(f).isFile() ? f : null;
}
// The book served on the loopback interface, as a web host serves it.
const server = http.createServer((req, res) => {
  const f = fileOf(new URL(req.url, "http://127.0.0.1").pathname);
  if (!f) {
    res.writeHead(404).end();
    return;
  }
  res.writeHead(200, { "Content-Type": types[path.extname(f)] ?? "application/octet-stream" });
  fs.createReadStream(f).pipe(res);
});
await new Promise((ok) => server.listen(0, "127.0.0.1", ok));
const origin = `http://127.0.0.1:${server.address().port}`;

const pages = fs
  .readdirSync(book)
  .filter((f) => f.endsWith(".html") && !["print.html", "toc.html", "404.html"].includes(f))
  .sort();
const browser = await puppeteer.launch({
  executablePath: args.chrome,
  headless: true,
  userDataDir: fs.mkdtempSync(path.join(os.tmpdir(), "book-chromium-")),
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"],
});

const failures = [];
const ids = new Map(); // page → the ids it has
const links = []; // [page, href]
let images = 0, formulas = 0, listings = 0;
for (const name of pages) {
  const page = await browser.newPage();
  await page.setViewport({ width: 1280, height: 1000 });
  const fail = (what) => failures.push(`${name}: ${what}`);
  // A resource that failed to load is reported with its address by the response handler.
  page.on("console", (m) => m.type() === "error" && !m.text().startsWith("Failed to load resource") && fail(`console error: ${m.text()}`));
  page.on("pageerror", (e) => fail(`uncaught exception: ${e.message}`));
  page.on("requestfailed", (r) => fail(`request failed: ${r.url()} (${r.failure()?.errorText})`));
  page.on("response", (r) => r.status() >= 400 && fail(`${r.status()} for ${r.url()}`));
  await page.goto(`${origin}/${name}`, { waitUntil: "networkidle0", timeout: 60000 });
  const info = await page.evaluate(async () => {
    // Every image loaded (lazy ones too).
    const imgs = [...document.querySelectorAll("img")];
    for (const img of imgs) img.loading = "eager";
    await Promise.all(imgs.map((img) => (img.complete ? null : new Promise((r) => { img.onload = img.onerror = r; }))));
    const main = document.querySelector("main") ?? document.body;
    const prose = main.cloneNode(true);
    for (const e of prose.querySelectorAll("pre, code, .katex, script, style")) e.remove();
    const text = prose.textContent;
    const tex = text.match(/\$\$|\\\(|\\\[|\$[^$\s][^$\n]{0,80}?\\[a-zA-Z]+[^$\n]{0,80}?\$|\\(frac|sum|mathbb|mathcal|lVert|odot|partial)\b/);
    return {
      images: imgs.map((i) => ({ src: i.getAttribute("src"), ok: i.complete && i.naturalWidth > 0 })),
      formulas: document.querySelectorAll(".katex").length,
      katexErrors: [...document.querySelectorAll(".katex-error")].map((e) => e.getAttribute("title") ?? e.textContent),
      rawTex: tex ? tex[0] : null,
      listings: [...document.querySelectorAll("pre code")].map((c) => c.textContent.trim().length),
      links: [...document.querySelectorAll("a[href]")].map((a) => a.getAttribute("href")),
      ids: [...document.querySelectorAll("[id]")].map((e) => e.id),
    };
  });
  for (const img of info.images) if (!img.ok) fail(`image did not load: ${img.src}`);
  for (const e of info.katexErrors) fail(`KaTeX error: ${e}`);
  if (info.rawTex) fail(`TeX left unrendered: ${info.rawTex}`);
  const empty = info.listings.filter((n) => n === 0).length;
  if (empty) fail(`${empty} empty code listing(s)`);
  images += info.images.length;
  formulas += info.formulas;
  listings += info.listings.length;
  ids.set(name, new Set(info.ids));
  for (const href of info.links) links.push([name, href]);
  await page.screenshot({ path: path.join(shots, name.replace(/\.html$/, ".png")) });
  await page.close();
}

// Links inside the book: the page exists, and so does the anchor on it.
let internal = 0;
for (const [name, href] of links) {
  if (/^[a-z]+:/i.test(href) || href.startsWith("//")) continue;
  const url = new URL(href, `${origin}/${name}`);
  if (url.origin !== origin) continue;
  internal++;
  const target = decodeURIComponent(url.pathname).replace(/^\//, "") || "index.html";
  if (!fileOf(url.pathname)) {
    failures.push(`${name}: broken link ${href}`);
  } else if (url.hash && target.endsWith(".html") && ids.has(target) && !ids.get(target).has(decodeURIComponent(url.hash.slice(1)))) {
    failures.push(`${name}: link ${href}: ${target} has no anchor ${url.hash}`);
  }
}

// The search box finds a word that only a chapter uses, and links to that chapter.
const search = await browser.newPage();
await search.goto(`${origin}/index.html`, { waitUntil: "networkidle0" });
await search.click("#mdbook-search-toggle");
await search.type("#mdbook-searchbar", "Grad-CAM");
let found = [];
try {
  await search.waitForSelector("#mdbook-searchresults li a", { timeout: 15000 });
  found = await search.$$eval("#mdbook-searchresults li a", (as) => as.map((a) => a.getAttribute("href")));
} catch {
  // No results: reported below.
}
if (!found.some((h) => h.includes("chapter-02-saliency-gradcam"))) {
  failures.push(`search for "Grad-CAM" did not list chapter 2 (results: ${found.slice(0, 5).join(", ") || "none"})`);
}
await search.screenshot({ path: path.join(shots, "search-grad-cam.png") });

await browser.close();
server.close();
const summary = `${pages.length} pages, ${images} images, ${formulas} formulas, ${listings} code listings, ${internal} internal links, search: ${found.length} result(s) for "Grad-CAM"`;
fs.writeFileSync(path.join(out, "summary.txt"), `${summary}\n${failures.join("\n")}\n`);
console.log(summary);
console.log(`screenshots in ${path.relative(process.cwd(), shots)}/`);
if (failures.length) {
  for (const f of new Set(failures)) console.log(`FAILED ${f}`);
  process.exit(1);
}
console.log("browser: every page passed");
