// The web page at /: analyse a PDF as a job (live progress from its event stream), look at every page with its
// regions drawn over it, download the results, and group sentences. Plain JavaScript, no build step, no CDN.
"use strict";

// The same colours as the annotated PNGs (serve_app/core/annotate.py): PubLayNet's five, then a palette.
const LABEL_COLOURS = {text: "#1f77b4", title: "#d62728", list: "#2ca02c", table: "#ff7f0e", figure: "#9467bd"};
const PALETTE = ["#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf", "#aec7e8", "#ffbb78", "#98df8a",
                 "#ff9896", "#c5b0d5", "#c49c94", "#f7b6d2", "#c7c7c7", "#dbdb8d", "#9edae5"];
const SVG = "http://www.w3.org/2000/svg";
const $ = (id) => document.getElementById(id);

function colours(labels) {
  const out = {};
  let next = 0;
  for (const label of labels) out[label] = LABEL_COLOURS[label] || PALETTE[next++ % PALETTE.length];
  return out;
}

function headers(extra) {
  const key = $("api-key").value.trim();
  return Object.assign(key ? {Authorization: `Bearer ${key}`} : {}, extra || {});
}

function showError(message) {
  const box = $("error");
  box.textContent = message;
  box.hidden = !message;
  if (message) box.scrollIntoView({block: "nearest"});
}

// Every error the API returns is {"error": {"code", "message"}}: show its message as it is.
async function call(url, options) {
  let response;
  try {
    response = await fetch(url, Object.assign({}, options, {headers: headers(options && options.headers)}));
  } catch (e) {
    throw new Error(`The service cannot be reached (${e.message}). Is it running?`);
  }
  if (!response.ok) {
    let message = `HTTP ${response.status}`;
    try {
      const body = await response.json();
      if (body.error) message = `${body.error.message} (${body.error.code}, HTTP ${response.status})`;
    } catch (e) { /* not JSON: keep the status */ }
    throw new Error(message);
  }
  return response;
}

// Images and downloads of /v1 routes: plain URLs when no API key is set; with a key (an <img> or a link cannot
// send it), fetched with it and shown from a blob URL.
function keyed() {
  return $("api-key").value.trim() !== "";
}

async function showImage(img, url) {
  if (!keyed()) {
    img.src = url;
    return;
  }
  try {
    img.src = URL.createObjectURL(await (await call(url)).blob());
  } catch (e) {
    showError(e.message);
  }
}

function keyedDownload(a) {
  a.addEventListener("click", async (event) => {
    if (!keyed() || a.dataset.blob) return;
    event.preventDefault();
    try {
      a.dataset.blob = "1";
      a.href = URL.createObjectURL(await (await call(a.href)).blob());
      a.click();
    } catch (e) {
      delete a.dataset.blob;
      showError(e.message);
    }
  });
}

// ---- the PDF form ------------------------------------------------------------------------------------

function chosenFile() {
  const files = $("file").files;
  return files && files.length ? files[0] : null;
}

function setupDrop() {
  const drop = $("drop");
  $("file").addEventListener("change", () => {
    const file = chosenFile();
    $("drop-text").textContent = file ? `${file.name} (${Math.ceil(file.size / 1024)} KiB)` : "Drop a PDF here, or choose one";
  });
  for (const name of ["dragenter", "dragover"]) {
    drop.addEventListener(name, (e) => { e.preventDefault(); drop.classList.add("over"); });
  }
  for (const name of ["dragleave", "drop"]) {
    drop.addEventListener(name, () => drop.classList.remove("over"));
  }
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    if (e.dataTransfer.files.length) {
      $("file").files = e.dataTransfer.files;
      $("file").dispatchEvent(new Event("change"));
    }
  });
}

async function loadModels() {
  try {
    const listed = await (await call("/v1/models")).json();
    const options = listed.models.map((m) => {
      const option = document.createElement("option");
      option.value = m.default ? "" : m.name;
      option.textContent = `${m.name}${m.default ? " (default)" : ""}: ${m.labels.join(", ")}`;
      return option;
    });
    options.sort((a, b) => (a.value === "" ? 0 : 1) - (b.value === "" ? 0 : 1));  // the default first
    $("model").replaceChildren(...options);
    showError("");
  } catch (e) {
    showError(`Models could not be listed: ${e.message}`);
  }
}

async function analyse(event) {
  event.preventDefault();
  showError("");
  const file = chosenFile();
  if (!file) { showError("Choose a PDF first."); return; }
  const params = new URLSearchParams({cluster: $("cluster").checked, masks: $("masks").checked});
  if ($("model").value) params.set("model", $("model").value);
  const body = new FormData();
  body.append("file", file, file.name);
  $("analyze-button").disabled = true;
  $("results").hidden = true;
  try {
    const job = await (await call(`/v1/jobs?${params}`, {method: "POST", body})).json();
    const state = await follow(job);
    if (state.status !== "succeeded") throw new Error(`The job ${state.status}: ${state.error || "no result"}`);
    const result = await (await call(`/v1/jobs/${job.id}/result`)).json();
    await show(job.id, result);
  } catch (e) {
    showError(e.message);
  } finally {
    $("analyze-button").disabled = false;
  }
}

// ---- live progress: the job's Server-Sent Events, read with fetch (so the API key header goes along) ----

function progressText(state, started) {
  const done = state.pages_done, total = state.pages_total;
  const seconds = (performance.now() - started) / 1000;
  const rate = done > 0 ? done / seconds : 0;
  const left = rate > 0 ? Math.ceil((total - done) / rate) : null;
  let text = `${state.status}: ${done} of ${total} pages`;
  if (rate > 0) text += `, ${rate.toFixed(2)} pages/s`;
  if (left !== null && done < total) text += `, about ${left} s left`;
  return text;
}

async function follow(job) {
  $("progress").hidden = false;
  const bar = $("progress-bar");
  bar.max = job.pages_total;
  const started = performance.now();
  let state = job;
  const render = () => { bar.value = state.pages_done; $("progress-text").textContent = progressText(state, started); };
  render();
  const over = () => ["succeeded", "failed", "cancelled"].includes(state.status);
  while (!over()) {
    // A stream lasts a bounded time: reconnect from the pages already seen until the job ends.
    const response = await call(`/v1/jobs/${job.id}/events`, {headers: {"Last-Event-ID": String(state.pages_done)}});
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const {value, done} = await reader.read();
      if (done) break;
      buffer += value;
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        let name = "", data = "";
        for (const line of block.split("\n")) {
          if (line.startsWith("event: ")) name = line.slice(7);
          else if (line.startsWith("data: ")) data = line.slice(6);
        }
        if (!name) continue;
        const payload = JSON.parse(data);
        state = name === "page" ? Object.assign({}, state, {pages_done: payload.pages_done}) : payload;
        render();
      }
      if (over()) { await reader.cancel(); break; }
    }
  }
  return state;
}

// ---- the pages and their regions -------------------------------------------------------------------------

function show(jobId, result) {
  const labels = result.model.labels;
  const colour = colours(labels);
  const hidden = new Set();
  const legend = $("legend");
  legend.querySelectorAll("label").forEach((l) => l.remove());
  for (const label of labels) {
    const item = document.createElement("label");
    const box = document.createElement("input");
    box.type = "checkbox";
    box.checked = true;
    box.dataset.label = label;
    box.addEventListener("change", () => {
      if (box.checked) hidden.delete(label); else hidden.add(label);
      document.querySelectorAll(`svg .label-${CSS.escape(label)}`).forEach((el) => el.classList.toggle("hidden", !box.checked));
    });
    const swatch = document.createElement("span");
    swatch.className = "swatch";
    swatch.style.background = colour[label];
    item.append(box, swatch, document.createTextNode(label));
    legend.appendChild(item);
  }

  const downloads = $("downloads");
  downloads.replaceChildren();
  const link = (text, url, name) => {
    const a = document.createElement("a");
    a.href = url;
    a.textContent = text;
    if (name) a.download = name;
    keyedDownload(a);
    downloads.appendChild(a);
  };
  link("Result JSON", `/v1/jobs/${jobId}/result`, `${jobId}.json`);
  link("Markdown", `/v1/jobs/${jobId}/result.md`, `${jobId}.md`);

  const pages = $("pages");
  pages.replaceChildren();
  for (const page of result.pages) {
    const figure = document.createElement("figure");
    figure.className = "page";
    figure.style.aspectRatio = `${page.width} / ${page.height}`;
    const img = document.createElement("img");
    showImage(img, `/v1/jobs/${jobId}/pages/${page.number}/image.png`);
    img.alt = `Page ${page.number}`;
    img.loading = "lazy";
    const svg = document.createElementNS(SVG, "svg");
    svg.setAttribute("viewBox", `0 0 ${page.width} ${page.height}`);
    svg.setAttribute("preserveAspectRatio", "none");
    svg.setAttribute("role", "group");
    svg.setAttribute("aria-label", `Regions of page ${page.number}`);
    page.regions.forEach((region, index) => {
      const [x0, y0, x1, y1] = region.box;
      const rect = document.createElementNS(SVG, "rect");
      Object.entries({x: x0, y: y0, width: x1 - x0, height: y1 - y0}).forEach(([k, v]) => rect.setAttribute(k, v));
      rect.setAttribute("class", `region label-${region.label}`);
      rect.setAttribute("stroke", colour[region.label]);
      rect.setAttribute("fill", colour[region.label]);
      rect.setAttribute("tabindex", "0");
      rect.setAttribute("aria-label", `${region.label} ${region.score.toFixed(2)}`);
      rect.dataset.page = page.number;
      rect.dataset.region = index;
      const title = document.createElementNS(SVG, "title");
      title.textContent = `${region.label} ${region.score.toFixed(2)}\n${region.text}`;
      rect.appendChild(title);
      const pick = () => detail(page.number, region, rect);
      rect.addEventListener("mouseenter", pick);
      rect.addEventListener("focus", pick);
      rect.addEventListener("click", pick);
      svg.appendChild(rect);
      for (const polygon of region.mask || []) {
        const outline = document.createElementNS(SVG, "polygon");
        outline.setAttribute("points", polygon.map(([x, y]) => `${x},${y}`).join(" "));
        outline.setAttribute("class", `mask label-${region.label}`);
        outline.setAttribute("stroke", colour[region.label]);
        svg.appendChild(outline);
      }
    });
    const caption = document.createElement("figcaption");
    caption.textContent = `Page ${page.number}: ${page.regions.length} regions. `;
    const annotated = document.createElement("a");
    annotated.href = `/v1/jobs/${jobId}/pages/${page.number}.png`;
    annotated.textContent = "annotated PNG";
    annotated.download = `page-${page.number}.png`;
    keyedDownload(annotated);
    caption.appendChild(annotated);
    figure.append(img, svg, caption);
    pages.appendChild(figure);
  }
  showClusters(result);
  $("results").hidden = false;
}

function detail(pageNumber, region, rect) {
  document.querySelectorAll("svg .picked").forEach((el) => el.classList.remove("picked"));
  rect.classList.add("picked");
  const text = region.text ? region.text : "(no text: a picture, or a page without a text layer)";
  $("details-text").textContent = `Page ${pageNumber}, ${region.label}, score ${region.score.toFixed(3)}\n\n${text}`;
  $("details-text").style.whiteSpace = "pre-wrap";
}

function showClusters(result) {
  const list = $("cluster-list");
  list.replaceChildren();
  $("clusters").hidden = !result.clusters;
  if (!result.clusters) return;
  for (const group of result.clusters.clusters) {
    const item = document.createElement("li");
    const rep = document.createElement("span");
    rep.className = "rep";
    rep.textContent = `${group.size} regions like: ${group.representative.text.slice(0, 160)}`;
    const members = document.createElement("ul");
    for (const m of group.members) {
      const li = document.createElement("li");
      const button = document.createElement("button");
      button.type = "button";
      button.className = "linkish";
      button.textContent = `page ${m.page}, region ${m.region + 1}`;
      button.addEventListener("click", () => {
        const rect = document.querySelector(`svg rect[data-page="${m.page}"][data-region="${m.region}"]`);
        if (rect) { rect.scrollIntoView({block: "center"}); rect.focus(); }
      });
      li.append(button, document.createTextNode(` ${m.text.slice(0, 120)}`));
      members.appendChild(li);
    }
    item.append(rep, members);
    list.appendChild(item);
  }
}

// ---- the sentence playground ----------------------------------------------------------------------------

async function group(event) {
  event.preventDefault();
  showError("");
  const sentences = $("sentences").value.split("\n").map((s) => s.trim()).filter(Boolean);
  const list = $("groups");
  list.replaceChildren();
  $("cluster-button").disabled = true;
  try {
    const answer = await (await call("/v1/cluster", {
      method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify({sentences}),
    })).json();
    for (const cluster of answer.clusters) {
      const item = document.createElement("li");
      const rep = document.createElement("span");
      rep.className = "rep";
      rep.textContent = cluster.representative.text;
      const members = document.createElement("ul");
      for (const m of cluster.members) {
        const li = document.createElement("li");
        li.textContent = m.text;
        members.appendChild(li);
      }
      item.append(rep, members);
      list.appendChild(item);
    }
    if (answer.unclustered.length) {
      const item = document.createElement("li");
      item.textContent = `Unclustered: ${answer.unclustered.map((m) => m.text).join("; ")}`;
      list.appendChild(item);
    }
  } catch (e) {
    showError(e.message);
  } finally {
    $("cluster-button").disabled = false;
  }
}

document.addEventListener("DOMContentLoaded", () => {
  setupDrop();
  loadModels();
  $("api-key").addEventListener("change", loadModels);  // keys on: the models are listed once a key is in
  $("pdf-form").addEventListener("submit", analyse);
  $("cluster-form").addEventListener("submit", group);
});
