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
  const headers = { ...(options.headers || {}), ...(token ? { Authorization: `Bearer ${token}` } : {}) };
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

// -- duplicates: each cluster side by side, the keeper first; review and move like Immich's ----------
// A cluster's state: its keeper, its copies (with their similarity to that keeper), the copies under
// the threshold against it (`below`), those whose colours or pixels say they are not its copies
// (`unlike`; neither is ever moved for it) and the copies a person unticked. Clicking a copy's picture
// makes it the keeper: the server recomputes every similarity to it.

const UNDO_KEY = "lookalike-last-move";
const review = { threshold: null, quarantine: false };

// Sizes exactly as the command line and the HTML report print them (lookalike.index.report.human_size):
// decimal units, one decimal place. tests/test_page_sizes.py holds the two to the same answers.
function fileSize(bytes) {
  let size = bytes;
  let unit = "B";
  for (const bigger of ["KB", "MB", "GB"]) {
    if (size < 1000) break;
    size /= 1000;
    unit = bigger;
  }
  return unit === "B" ? `${bytes} B` : `${size.toFixed(1)} ${unit}`;
}

function movable(state, copy) {
  return review.quarantine && !copy.same_file && !state.below.has(copy.id) && !state.unlike.has(copy.id);
}

function picked(state) {
  return state.copies.filter((copy) => movable(state, copy) && !state.unticked.has(copy.id));
}

function caption(state, image, keeper) {
  if (keeper) return "keep";
  if (image.same_file) return "same file (hard link)";
  if (state.below.has(image.id)) return `below ${state.threshold}: ${image.similarity.toFixed(3)}`;
  if (state.unlike.has(image.id)) return "not a copy: colours or details differ";
  return image.exact ? "identical" : `similarity ${image.similarity.toFixed(3)}`;
}

function member(state, image, keeper) {
  const below = !keeper && (state.below.has(image.id) || state.unlike.has(image.id));
  const classes = ["card", "member", keeper && "keeper", below && "below", image.same_file && "link"];
  const item = element("div", classes.filter(Boolean).join(" "));
  item.dataset.id = image.id;
  const pick = element("button", "thumb");
  pick.type = "button";
  pick.title = keeper ? `${image.path}\nkept` : `${image.path}\nclick: keep this one instead`;
  pick.disabled = keeper;
  const img = element("img");
  img.loading = "lazy";
  thumbnail(img, image.id);
  pick.append(img);
  if (!keeper) pick.addEventListener("click", () => changeKeeper(state, image.id));
  item.append(
    pick,
    element("span", "score", caption(state, image, keeper)),
    element("span", "name", baseName(image.path)),
    element("span", "label", `${image.width} x ${image.height} · ${fileSize(image.size)}`),
  );
  const actions = element("span", "actions");
  if (!keeper && review.quarantine) {
    const label = element("label", "pick");
    const box = element("input", "pick-box");
    box.type = "checkbox";
    box.disabled = !movable(state, image);
    box.checked = movable(state, image) && !state.unticked.has(image.id);
    box.addEventListener("change", () => {
      if (box.checked) state.unticked.delete(image.id);
      else state.unticked.add(image.id);
      renderCluster(state);
    });
    label.title = image.same_file
      ? "the keeper's own file under another name: moving it frees nothing"
      : below
        ? "not a copy of this keeper (at this threshold, or by its colours): never moved for it"
        : "move this copy to the quarantine";
    label.append(box, document.createTextNode(" move"));
    actions.append(label);
  }
  const similar = element("button", "similar", "similar");
  similar.type = "button";
  similar.title = "search from this image";
  similar.addEventListener("click", () => {
    document.querySelector('.tab[data-view="search"]').click();
    searchId(image);
  });
  actions.append(similar);
  item.append(actions);
  return item;
}

function renderCluster(state) {
  const chosen = picked(state);
  const copies = state.copies.length;
  const heading = copies
    ? `${copies} ${copies === 1 ? "copy" : "copies"} · ${fileSize(chosen.reduce((sum, c) => sum + c.size, 0))} to free`
    : "no copies left";
  const head = element("div", "cluster-head");
  head.append(element("h3", "", heading));
  if (review.quarantine && copies) {
    const move = element("button", "move-button", `Move ${chosen.length} to quarantine`);
    move.type = "button";
    move.disabled = !chosen.length || state.busy;
    move.addEventListener("click", () => moveCopies(state));
    head.append(move);
  }
  const row = element("div", "members");
  row.append(member(state, state.keeper, true), ...state.copies.map((copy) => member(state, copy, false)));
  state.box.replaceChildren(head, row, state.note);
  state.box.classList.toggle("resolved", !copies);
}

function clusterState(cluster) {
  const box = element("div", "cluster");
  const note = element("p", "note muted");
  return {
    box, note, keeper: cluster.keeper, copies: cluster.copies,
    below: new Set(), unlike: new Set(), unticked: new Set(), threshold: review.threshold, busy: false,
  };
}

async function changeKeeper(state, id) {
  showError(null);
  try {
    const others = [state.keeper, ...state.copies].filter((m) => m.id !== id);
    const query = new URLSearchParams({ keeper: id });
    others.forEach((m) => query.append("member", m.id));
    if (review.threshold !== null) query.set("threshold", review.threshold);
    const result = await (await api(`/duplicates/cluster?${query}`)).json();
    state.keeper = result.cluster.keeper;
    state.copies = result.cluster.copies;
    state.below = new Set(result.below);
    state.unlike = new Set(result.unlike);
    state.threshold = result.threshold;
    state.note.textContent = "";
    renderCluster(state);
  } catch (error) {
    showError(error);
  }
}

function problemText(problems) {
  return problems.map((p) => `${baseName(p.path)}: ${p.reason}`).join("; ");
}

async function postJson(path, body) {
  return (await api(path, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  })).json();
}

async function moveCopies(state) {
  showError(null);
  const copies = picked(state).map((copy) => copy.id);
  if (!copies.length) return;
  state.busy = true;
  renderCluster(state);
  try {
    const result = await postJson("/duplicates/move", {
      keeper: state.keeper.id, copies, threshold: review.threshold,
    });
    const moved = new Set(result.moved.map((m) => m.id));
    state.copies = state.copies.filter((copy) => !moved.has(copy.id));
    const count = result.moved.length;
    state.note.textContent = `moved ${count} ${count === 1 ? "copy" : "copies"} to the quarantine` +
      (result.problems.length ? `; left alone: ${problemText(result.problems)}` : "");
    if (count) rememberMove({ manifest: result.manifest, count });
  } catch (error) {
    showError(error);
  } finally {
    state.busy = false;
    renderCluster(state);
  }
}

function rememberMove(move) {
  if (move) sessionStorage.setItem(UNDO_KEY, JSON.stringify(move));
  else sessionStorage.removeItem(UNDO_KEY);
  showUndo();
}

function lastMove() {
  try {
    return JSON.parse(sessionStorage.getItem(UNDO_KEY));
  } catch {
    return null;
  }
}

function showUndo() {
  const move = review.quarantine ? lastMove() : null;
  $("undo-bar").hidden = !move;
  if (move) {
    $("undo-text").textContent =
      `Moved ${move.count} ${move.count === 1 ? "copy" : "copies"} to the quarantine (${move.manifest}).`;
  }
}

async function undoLastMove() {
  const move = lastMove();
  if (!move) return;
  showError(null);
  $("undo-button").disabled = true;
  try {
    const result = await postJson("/duplicates/undo", { manifest: move.manifest });
    const waiting = result.unindexed.length;
    rememberMove(waiting ? move : null); // files back but not indexed: the same undo indexes them later
    const count = result.restored.length + result.caught_up.length;
    await findDuplicates();
    $("duplicates-status").textContent = `put back ${count} ${count === 1 ? "file" : "files"}` +
      (waiting ? `; ${waiting} not indexed yet (another lookalike is writing the index): Undo again later` : "") +
      (result.problems.length ? `; left in the quarantine: ${problemText(result.problems)}` : "") +
      ` · ${$("duplicates-status").textContent}`;
  } catch (error) {
    showError(error);
  } finally {
    $("undo-button").disabled = false;
  }
}

async function findDuplicates() {
  showError(null);
  $("duplicates-status").textContent = "looking for duplicates...";
  try {
    const threshold = $("threshold").value;  // empty: the library's calibrated default
    const query = threshold ? `?threshold=${encodeURIComponent(threshold)}` : "";
    const clusters = await (await api(`/duplicates${query}`)).json();
    review.threshold = threshold ? Number(threshold) : null;
    clearBlobs();
    const states = clusters.map(clusterState);
    states.forEach(renderCluster);
    $("clusters").replaceChildren(...states.map((state) => state.box));
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
    if ("/quarantine" in schema.paths) review.quarantine = (await (await api("/quarantine")).json()).enabled;
    showUndo();
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
  $("undo-button").addEventListener("click", undoLastMove);
  $("token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    localStorage.setItem(TOKEN_KEY, $("token-input").value);
    $("token-input").value = "";
    loadInfo();
  });
  loadInfo();
});
