// The page's side of the `browser` e2e group (tests/e2e/browser_test.py): what a web application does with
// the URLs and form fields its server side made. Each function returns plain facts (statuses, headers it
// could read, digests) for the test to judge, and draws a card so the screenshots show what happened.
"use strict";

document.getElementById("page-origin").textContent = location.origin;

async function sha256hex(buf) {
  const d = await crypto.subtle.digest("SHA-256", buf);
  return [...new Uint8Array(d)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

function card(title, ok, lines, imgUrl) {
  const c = document.createElement("div");
  c.className = "card " + (ok ? "ok" : "err");
  const h = document.createElement("h2");
  h.textContent = title;
  const p = document.createElement("pre");
  p.textContent = lines.join("\n");
  c.append(h, p);
  if (imgUrl) {
    const i = document.createElement("img");
    i.src = imgUrl;
    c.append(i);
  }
  document.getElementById("cards").append(c);
}

function short(url) {
  const u = new URL(url);
  return u.origin + u.pathname + (u.search ? "?…" : "");
}

function chosenFile() {
  const f = document.getElementById("file").files[0];
  if (!f) throw new Error("no file chosen");
  return f;
}

// An <img> of the URL: resolves with its natural size, or {error} when it does not load.
function loadImage(url) {
  return new Promise((resolve) => {
    const i = new Image();
    i.onload = () => resolve({ loaded: true, width: i.naturalWidth, height: i.naturalHeight });
    i.onerror = () => resolve({ loaded: false, error: "img error event" });
    i.src = url;
  });
}

// fetch that reports instead of throwing: a CORS refusal is a TypeError here.
async function tryFetch(url, init) {
  try {
    const r = await fetch(url, init);
    const body = await r.arrayBuffer();
    return {
      status: r.status,
      etag: r.headers.get("ETag"),
      contentType: r.headers.get("Content-Type"),
      location: r.headers.get("Location"),
      size: body.byteLength,
      sha256: await sha256hex(body),
      text: new TextDecoder().decode(body.slice(0, 2000)),
    };
  } catch (e) {
    return { error: `${e.name}: ${e.message}` };
  }
}

// Step 1 (and 4): the chosen file PUT to a presigned URL, then shown with a presigned GET.
async function presignedPutThenGet({ title, putUrl, getUrl }) {
  const f = chosenFile();
  const put = await tryFetch(putUrl, { method: "PUT", body: f });
  const res = { file: { name: f.name, size: f.size }, put };
  if (getUrl && !put.error) {
    res.img = await loadImage(getUrl);
    res.get = await tryFetch(getUrl);
  }
  const ok = put.status === 200 && (!getUrl || (res.img.loaded && res.get.status === 200));
  const lines = [`PUT ${short(putUrl)}`, put.error ? `  -> ${put.error}` : `  -> HTTP ${put.status}, ETag ${put.etag}`];
  if (res.get) {
    lines.push(`GET ${short(getUrl)}`,
      res.get.error ? `  -> ${res.get.error}`
        : `  -> HTTP ${res.get.status}, ${res.get.size} bytes, sha256 ${res.get.sha256}`,
      `<img> ${res.img.loaded ? `${res.img.width}x${res.img.height}` : res.img.error}`);
  }
  card(title, ok, lines, res.img && res.img.loaded ? getUrl : null);
  return res;
}

// Step 2, by fetch: the chosen file in a multipart form with the policy fields (file last, as S3 requires).
async function postForm({ title, url, fields }) {
  const fd = new FormData();
  for (const [k, v] of fields) fd.append(k, v);
  fd.append("file", chosenFile());
  const r = await tryFetch(url, { method: "POST", body: fd });
  card(title, r.status >= 200 && r.status < 300, [
    `POST ${short(url)} (multipart/form-data, ${fields.length} fields + file)`,
    r.error ? `  -> ${r.error}` : `  -> HTTP ${r.status}`, r.text || ""]);
  return r;
}

// Step 3: bytes made in the page PUT to a presigned URL; the ETag read from JavaScript.
async function putText({ title, putUrl, text }) {
  const r = await tryFetch(putUrl, { method: "PUT", body: new Blob([text], { type: "text/plain" }) });
  card(title, r.status === 200 && !!r.etag, [`PUT ${short(putUrl)} (${text.length} bytes made in the page)`,
    r.error ? `  -> ${r.error}` : `  -> HTTP ${r.status}`, `response.headers.get("ETag") = ${r.etag}`]);
  return r;
}

// Step 5: an unsigned cross-origin GET with a custom header (so the browser sends a preflight first).
async function getWithHeader({ title, url, headers }) {
  const r = await tryFetch(url, { headers });
  card(title, r.status === 200, [`GET ${url} with ${JSON.stringify(headers)}`,
    r.error ? `  -> ${r.error}` : `  -> HTTP ${r.status}, ${r.size} bytes, sha256 ${r.sha256}`]);
  return r;
}

// Step 5: a plain <img src> of a public object, no signature.
async function showImage({ title, url }) {
  const r = await loadImage(url);
  card(title, r.loaded, [`<img src="${url}">`, r.loaded ? `  -> ${r.width}x${r.height}` : `  -> ${r.error}`],
    r.loaded ? url : null);
  return r;
}
