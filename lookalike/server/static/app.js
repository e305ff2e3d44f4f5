// The lookalike page: plain DOM, no framework, no network beyond this server.
// With a token, the page is opened once as /#token=T (or the token is typed into the banner); it is
// kept in localStorage and sent as a bearer header. Images are fetched with that header too and shown
// as blob: URLs, since an <img src> cannot carry one.
"use strict";

const TOKEN_KEY = "lookalike-token";
const $ = (id) => document.getElementById(id);

function takeTokenFromUrl() {
  // The token comes in the fragment (/#token=T): browsers never send a fragment to the server, so it
  // stays out of access logs and Referer headers.
  const url = new URL(window.location.href);
  const fragment = new URLSearchParams(url.hash.replace(/^#/, ""));
  const token = fragment.get("token");
  if (token) {
    localStorage.setItem(TOKEN_KEY, token);
    fragment.delete("token");
    const rest = fragment.toString();
    history.replaceState(null, "", url.pathname + url.search + (rest ? `#${rest}` : "")); // out of history
  }
}

class Unauthorised extends Error {}

async function api(path, options = {}) {
  const token = localStorage.getItem(TOKEN_KEY);
  const headers = token ? { Authorization: `Bearer ${token}` } : {};
  const response = await fetch(path, { ...options, headers });
  if (response.status === 401) {
    $("token-form").hidden = false;
    throw new Unauthorised("this server needs a token");
  }
  if (!response.ok) {
    let message = `${response.status} ${response.statusText}`;
    try {
      message = (await response.json()).error || message;
    } catch {
      // not JSON: keep the status line
    }
    throw new Error(message);
  }
  return response;
}

function showError(error) {
  $("error").hidden = !error;
  $("error").textContent = error ? error.message : "";
}

// -- thumbnails: fetched with the token, shown as blob URLs, freed when a new answer replaces them --

let blobUrls = [];

function thumbnail(img, id, size = 256) {
  img.alt = `image ${id}`;
  api(`/images/${id}/thumbnail?size=${size}`)
    .then((response) => response.blob())
    .then((blob) => {
      const url = URL.createObjectURL(blob);
      blobUrls.push(url);
      img.src = url;
    })
    .catch(() => img.classList.add("broken"));
}

function clearBlobs() {
  blobUrls.forEach((url) => URL.revokeObjectURL(url));
  blobUrls = [];
}

function baseName(path) {
  return path.split(/[\\/]/).pop();
}

function labelText(label) {
  return `${label.name} ${(label.probability * 100).toFixed(0)}%`;
}

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

// -- search ------------------------------------------------------------------------------------------

function k() {
  return Math.min(1000, Math.max(1, parseInt($("k").value, 10) || 24));
}

function showQuery(title, labels, setImage) {
  $("query").hidden = false;
  $("query-title").textContent = title;
  setImage($("query-image"));
  const list = $("query-labels");
  list.replaceChildren(...labels.map((label) => element("li", "", labelText(label))));
}

function card(image, caption) {
  const item = element("button", "card");
  item.type = "button";
  item.title = `${image.path}\n${image.width} x ${image.height} ${image.format}\nclick: search from it`;
  const img = element("img");
  img.loading = "lazy";
  thumbnail(img, image.id);
  item.append(img, element("span", "score", caption), element("span", "name", baseName(image.path)));
  if (image.labels.length) item.append(element("span", "label", labelText(image.labels[0])));
  item.addEventListener("click", () => searchId(image));
  return item;
}

function showResults(cards, status) {
  $("results").replaceChildren(...cards);
  $("status").textContent = status;
}

async function run(task) {
  showError(null);
  $("status").textContent = "searching...";
  try {
    await task();
  } catch (error) {
    $("status").textContent = "";
    showError(error);
  }
}

function showSearch(result) {
  const cards = result.neighbours.map((n) => card(n.image, `#${n.rank}  ${n.score.toFixed(3)}`));
  showResults(cards, cards.length ? `${cards.length} nearest images` : "no neighbours");
}

function searchFile(file) {
  return run(async () => {
    const form = new FormData();
    form.append("file", file);
    const response = await api(`/search?k=${k()}`, { method: "POST", body: form });
    const result = await response.json();
    clearBlobs();
    showQuery(file.name, result.query_labels, (img) => {
      const url = URL.createObjectURL(file);
      blobUrls.push(url);
      img.src = url;
    });
    showSearch(result);
  });
}

function searchId(image) {
  return run(async () => {
    const result = await (await api(`/images/${image.id}/similar?k=${k()}`)).json();
    clearBlobs();
    showQuery(baseName(image.path), result.query_labels, (img) => thumbnail(img, image.id));
    showSearch(result);
    window.scrollTo({ top: 0, behavior: "smooth" });
  });
}

function findText(text) {
  return run(async () => {
    const hits = await (await api(`/find?q=${encodeURIComponent(text)}&limit=${k()}`)).json();
    clearBlobs();
    $("query").hidden = true;
    const cards = hits.map((hit) =>
      card(hit.image, hit.matched_label ? labelText({ name: hit.matched_label, probability: hit.probability }) : "path"),
    );
    showResults(cards, `${cards.length} images match "${text}"`);
  });
}

// -- duplicates: each cluster side by side, the keeper first ------------------------------------------

function fileSize(bytes) {
  return bytes < 2 ** 20 ? `${Math.ceil(bytes / 1024)} KB` : `${(bytes / 2 ** 20).toFixed(1)} MB`;
}

function member(image, keeper) {
  const item = element("button", keeper ? "card member keeper" : "card member");
  item.type = "button";
  item.title = `${image.path}\nclick: search from it`;
  const img = element("img");
  img.loading = "lazy";
  thumbnail(img, image.id);
  const caption = keeper ? "keep" : image.exact ? "identical" : `similarity ${image.similarity.toFixed(3)}`;
  item.append(
    img,
    element("span", "score", caption),
    element("span", "name", baseName(image.path)),
    element("span", "label", `${image.width} x ${image.height} · ${fileSize(image.size)}`),
  );
  item.addEventListener("click", () => {
    document.querySelector('.tab[data-view="search"]').click();
    searchId(image);
  });
  return item;
}

async function findDuplicates() {
  showError(null);
  $("duplicates-status").textContent = "looking for duplicates...";
  try {
    const threshold = $("threshold").value;  // empty: the library's calibrated default
    const query = threshold ? `?threshold=${encodeURIComponent(threshold)}` : "";
    const clusters = await (await api(`/duplicates${query}`)).json();
    clearBlobs();
    $("clusters").replaceChildren(
      ...clusters.map((cluster) => {
        const box = element("div", "cluster");
        const freed = cluster.copies.reduce((sum, copy) => sum + copy.size, 0);
        const copies = cluster.copies.length;
        box.append(element("h3", "", `${copies} ${copies === 1 ? "copy" : "copies"} · ${fileSize(freed)} to free`));
        const row = element("div", "members");
        row.append(member(cluster.keeper, true), ...cluster.copies.map((copy) => member(copy, false)));
        box.append(row);
        return box;
      }),
    );
    $("duplicates-status").textContent = clusters.length ? `${clusters.length} clusters` : "no duplicates";
  } catch (error) {
    $("duplicates-status").textContent = "";
    showError(error);
  }
}

// -- wiring ------------------------------------------------------------------------------------------

function wireDrop() {
  const drop = $("drop");
  $("file").addEventListener("change", (event) => {
    if (event.target.files.length) searchFile(event.target.files[0]);
  });
  drop.addEventListener("dragover", (event) => {
    event.preventDefault();
    drop.classList.add("over");
  });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    if (event.dataTransfer.files.length) searchFile(event.dataTransfer.files[0]);
  });
}

function wireTabs() {
  document.querySelectorAll(".tab").forEach((tab) =>
    tab.addEventListener("click", () => {
      document.querySelectorAll(".tab").forEach((t) => t.classList.toggle("active", t === tab));
      $("search-view").hidden = tab.dataset.view !== "search";
      $("duplicates-view").hidden = tab.dataset.view !== "duplicates";
    }),
  );
}

async function loadInfo() {
  try {
    const info = await (await api("/info")).json();
    $("info").textContent = `${info.images} images · ${info.model || "no model yet"}`;
    $("token-form").hidden = true;
    const schema = await (await fetch("/openapi.json")).json();
    $("duplicates-tab").hidden = !("/duplicates" in schema.paths);
  } catch (error) {
    showError(error);
  }
}

document.addEventListener("DOMContentLoaded", () => {
  takeTokenFromUrl();
  wireDrop();
  wireTabs();
  $("find-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const text = $("find-text").value.trim();
    if (text) findText(text);
  });
  $("duplicates-form").addEventListener("submit", (event) => {
    event.preventDefault();
    findDuplicates();
  });
  $("token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    localStorage.setItem(TOKEN_KEY, $("token-input").value);
    $("token-input").value = "";
    loadInfo();
  });
  loadInfo();
});
