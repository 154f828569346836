// aevae: the pair's models run in this page (onnxruntime-web, WebAssembly, one thread), so the
// latent space answers the pointer at display rate without asking the server. The server sends
// what it needs once per pair (aevae/live.py): the models' ONNX files and their code maps' PCA.
// Where WebAssembly or a file is missing, the panel says so and the server's sliders remain.
(function () {
  "use strict";
  if (window.aevaeLive) return;
  const ROOT = new URL("aevae-web/", document.baseURI).href;
  const PALETTE = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1",
    "#ff9da7", "#9c755f", "#bab0ac"];
  const MAP = 260; // map canvas size, CSS pixels
  const PIC = 192; // decoded picture size
  const live = {
    data: null, // the pair's payload
    models: {}, // kind -> {dec, enc, mean, axes, spread, coords, D, shape, dimMean, dimStd}
    z: [], // the point, in standard deviations along each leading direction (shared by both maps)
    codes: null, // kind -> Float32Array, the codes drawn last
    frames: 0, // pictures drawn since the pair was loaded (the tests and the rate readout)
    point: null, // kind -> [x, y], the last point on each map in its own PC units
    ready: false,
    error: "",
    busy: false,
    again: false,
    runtime: null,
    sessions: new Map(),
  };
  window.aevaeLive = live;

  const panel = () => document.getElementById("aevae-live");
  const part = (role) => { const p = panel(); return p && p.querySelector(`[data-role="${role}"]`); };
  const text = (key, fill) => {
    let s = (live.data && live.data.texts && live.data.texts[key]) || "";
    for (const [k, v] of Object.entries(fill || {})) s = s.split(`{${k}}`).join(String(v));
    return s;
  };

  function floats(b64) {
    const bin = atob(b64);
    const bytes = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
    return new Float32Array(bytes.buffer);
  }

  function runtime() {
    if (!live.runtime) {
      live.runtime = new Promise((resolve, reject) => {
        if (typeof WebAssembly !== "object") { reject(new Error("this browser has no WebAssembly")); return; }
        const s = document.createElement("script");
        s.src = ROOT + "ort/ort.wasm.min.js";
        s.onload = () => {
          const ort = window.ort;
          if (!ort) { reject(new Error("the runtime did not start")); return; }
          ort.env.wasm.numThreads = 1; // no cross-origin isolation needed, and one core each
          ort.env.wasm.wasmPaths = ROOT + "ort/";
          ort.env.logLevel = "error";
          resolve(ort);
        };
        s.onerror = () => reject(new Error("the runtime's file did not load"));
        document.head.appendChild(s);
      });
      live.runtime.catch(() => { live.runtime = null; }); // a later pair tries again
    }
    return live.runtime;
  }

  function session(name) {
    if (!live.sessions.has(name)) {
      const p = runtime().then((ort) => ort.InferenceSession.create(ROOT + "models/" + name,
        { executionProviders: ["wasm"], graphOptimizationLevel: "all" }));
      p.catch(() => live.sessions.delete(name));
      live.sessions.set(name, p);
    }
    return live.sessions.get(name);
  }

  async function run(name, input, data, shape) {
    const s = await session(name);
    const out = await s.run({ [input]: new window.ort.Tensor("float32", data, shape) });
    return out;
  }

  // codes (n x D) -> images (n x 3 x H x W) in [0, 1]
  async function decode(kind, codes, n) {
    const m = live.models[kind];
    const out = await run(m.dec, "z", codes, [n, ...m.shape]);
    return out.x.data;
  }

  // images (n x 3 x H x W) in [0, 1] -> {code} or {mu, sigma}
  async function encode(kind, images, n) {
    const m = live.models[kind];
    const size = live.data.image_size;
    const out = await run(m.enc, "x", images, [n, 3, size, size]);
    return kind === "ae" ? { mu: out.code.data } : { mu: out.mu.data, sigma: out.sigma.data };
  }

  // one decoded image as RGBA bytes, rounded as the server's to_uint8 rounds
  function rgba(img, index, size) {
    const plane = size * size;
    const px = new Uint8ClampedArray(plane * 4);
    const base = index * 3 * plane;
    for (let i = 0; i < plane; i++) {
      for (let c = 0; c < 3; c++) px[4 * i + c] = Math.round(Math.min(1, Math.max(0, img[base + c * plane + i])) * 255);
      px[4 * i + 3] = 255;
    }
    return new ImageData(px, size, size);
  }

  // draws an image into canvas at (x, y, w, h), nearest neighbour (square pixels)
  function put(canvas, image, x, y, w, h) {
    const tmp = document.createElement("canvas");
    tmp.width = image.width; tmp.height = image.height;
    tmp.getContext("2d").putImageData(image, 0, 0);
    const g = canvas.getContext("2d");
    g.imageSmoothingEnabled = false;
    g.drawImage(tmp, x, y, w, h);
  }

  function range(m, i) {
    const flat = Math.max(1e-5, 1e-4 * Math.max(m.spread[0], m.spread[1]));
    const s = m.spread[i] > flat ? m.spread[i] : (Math.max(m.spread[0], m.spread[1]) > flat ? Math.max(m.spread[0], m.spread[1]) : 1 / 3);
    return 3 * s;
  }

  // the code at the current point: mean + sum of z_i * spread_i * direction_i
  function codeAt(kind) {
    const m = live.models[kind];
    const code = Float32Array.from(m.mean);
    for (let i = 0; i < m.k; i++) {
      const zi = live.z[i] || 0;
      if (!zi) continue;
      const step = i < 2 ? zi * range(m, i) / 3 : zi * m.spread[i];
      const off = i * m.D;
      for (let d = 0; d < m.D; d++) code[d] += step * m.axes[off + d];
    }
    return code;
  }

  function drawMap(kind) {
    const canvas = part("map-" + kind);
    const m = live.models[kind];
    if (!canvas || !m) return;
    const g = canvas.getContext("2d");
    const w = canvas.width, h = canvas.height, rx = range(m, 0), ry = range(m, 1);
    g.clearRect(0, 0, w, h);
    g.fillStyle = "rgba(127,127,127,0.08)"; g.fillRect(0, 0, w, h);
    g.strokeStyle = "rgba(127,127,127,0.5)"; g.lineWidth = 1;
    g.beginPath(); g.moveTo(w / 2, 0); g.lineTo(w / 2, h); g.moveTo(0, h / 2); g.lineTo(w, h / 2); g.stroke();
    const labels = live.data.labels;
    for (let i = 0; i < m.coords.length / 2; i++) {
      g.fillStyle = PALETTE[labels[i] % PALETTE.length];
      g.fillRect((m.coords[2 * i] / rx + 1) / 2 * w - 1.5, (1 - m.coords[2 * i + 1] / ry) / 2 * h - 1.5, 3, 3);
    }
    const x = (live.z[0] || 0) / 3, y = (live.z[1] || 0) / 3; // the point, in the map's +-3 sd
    const cx = (x + 1) / 2 * w, cy = (1 - y) / 2 * h;
    g.strokeStyle = "#000"; g.lineWidth = 3;
    g.beginPath(); g.arc(cx, cy, 7, 0, 2 * Math.PI); g.stroke();
    g.strokeStyle = "#fff"; g.lineWidth = 1.5;
    g.beginPath(); g.arc(cx, cy, 7, 0, 2 * Math.PI); g.stroke();
  }

  // draws the current point with both models; one frame at a time, the latest point wins
  async function frame() {
    if (!live.ready) return;
    if (live.busy) { live.again = true; return; }
    live.busy = true;
    try {
      do {
        live.again = false;
        const codes = { ae: codeAt("ae"), vae: codeAt("vae") };
        const [ae, vae] = await Promise.all([decode("ae", codes.ae, 1), decode("vae", codes.vae, 1)]);
        const size = live.data.image_size;
        for (const [kind, img] of [["ae", ae], ["vae", vae]]) {
          const c = part("pic-" + kind);
          if (c) put(c, rgba(img, 0, size), 0, 0, c.width, c.height);
          drawMap(kind);
        }
        live.codes = codes;
        live.point = {};
        for (const kind of ["ae", "vae"]) {
          const m = live.models[kind];
          live.point[kind] = [(live.z[0] || 0) * range(m, 0) / 3, (live.z[1] || 0) * range(m, 1) / 3];
        }
        live.frames += 1;
        showSliders();
      } while (live.again);
    } catch (e) {
      fail(e);
    } finally {
      live.busy = false;
    }
  }

  function fail(e) {
    live.ready = false;
    live.error = String((e && e.message) || e).slice(0, 200);
    const p = panel();
    if (p) p.classList.add("failed");
    const s = part("status");
    if (s) s.textContent = text("failed", { why: live.error });
  }

  function status() {
    const s = part("status");
    if (s) s.textContent = live.ready ? text("ready") : text("loading");
  }

  // sliders: one per leading direction, in standard deviations; one per code value (short vectors)
  function buildSliders() {
    const box = part("sliders");
    if (!box) return;
    box.replaceChildren();
    const k = Math.min(live.models.ae.k, live.models.vae.k);
    for (let i = 0; i < k; i++) {
      const label = document.createElement("label");
      const name = document.createElement("span");
      name.textContent = text("pc", { i: i + 1 });
      const input = document.createElement("input");
      Object.assign(input, { type: "range", min: "-3", max: "3", step: "0.01", value: String(live.z[i] || 0) });
      input.dataset.pc = String(i);
      const value = document.createElement("output");
      label.append(name, input, value);
      box.append(label);
    }
    const dims = part("dims");
    const dimsBox = part("dims-box");
    if (!dims || !dimsBox) return;
    dims.replaceChildren();
    const m = live.models.vae;
    dimsBox.hidden = !m.dimMean;
    if (!m.dimMean) return;
    for (let d = 0; d < m.D; d++) {
      const label = document.createElement("label");
      const name = document.createElement("span");
      name.textContent = text("dim", { i: d + 1 });
      const input = document.createElement("input");
      Object.assign(input, { type: "range", min: "-3", max: "3", step: "0.01", value: "0" });
      input.dataset.dim = String(d);
      label.append(name, input);
      dims.append(label);
    }
  }

  function showSliders() {
    const box = part("sliders");
    if (!box) return;
    for (const input of box.querySelectorAll("input[data-pc]")) {
      const v = live.z[Number(input.dataset.pc)] || 0;
      if (document.activeElement !== input) input.value = String(v);
      input.nextElementSibling.textContent = (v >= 0 ? "+" : "") + v.toFixed(2);
    }
  }

  // a code value set on its own: both models' codes move from the current point (dims mode)
  async function dimFrame(d, v) {
    if (!live.ready) return;
    const codes = live.codes || { ae: codeAt("ae"), vae: codeAt("vae") };
    for (const kind of ["ae", "vae"]) {
      const m = live.models[kind];
      if (m.dimMean) codes[kind][d] = m.dimMean[d] + v * m.dimStd[d];
    }
    const [ae, vae] = await Promise.all([decode("ae", codes.ae, 1), decode("vae", codes.vae, 1)]);
    const size = live.data.image_size;
    for (const [kind, img] of [["ae", ae], ["vae", vae]]) {
      const c = part("pic-" + kind);
      if (c) put(c, rgba(img, 0, size), 0, 0, c.width, c.height);
    }
    live.codes = codes;
    live.frames += 1;
  }

  // n draws z ~ N(0, I) (Box-Muller on the page's own random numbers), through both decoders
  function normals(n) {
    const out = new Float32Array(n);
    const u = new Uint32Array(n + 1);
    crypto.getRandomValues(u);
    for (let i = 0; i < n; i += 2) {
      const a = (u[i] + 1) / 4294967297, b = (u[i + 1] + 1) / 4294967297;
      const r = Math.sqrt(-2 * Math.log(a));
      out[i] = r * Math.cos(2 * Math.PI * b);
      if (i + 1 < n) out[i + 1] = r * Math.sin(2 * Math.PI * b);
    }
    return out;
  }

  async function prior() {
    if (!live.ready) return;
    const n = 12, m = live.models.vae;
    const z = normals(n * m.D);
    const [vae, ae] = await Promise.all([decode("vae", z, n), decode("ae", z.slice(), n)]);
    const c = part("prior-grid");
    if (!c) return;
    const size = live.data.image_size, cell = Math.floor(c.width / n);
    c.height = 2 * cell;
    const g = c.getContext("2d");
    g.clearRect(0, 0, c.width, c.height);
    for (let i = 0; i < n; i++) {
      put(c, rgba(vae, i, size), i * cell, 0, cell, cell);
      put(c, rgba(ae, i, size), i * cell, cell, cell, cell);
    }
    live.priorDraws = (live.priorDraws || 0) + 1;
  }

  function labelAll() {
    for (const [role, key] of [["title", "title"], ["note", "note"], ["cap-map-ae", "map_ae"], ["cap-map-vae", "map_vae"],
      ["cap-pic-ae", "pic_ae"], ["cap-pic-vae", "pic_vae"], ["prior", "prior_btn"], ["prior-note", "prior_note"],
      ["dims-title", "dims"], ["centre", "centre"]]) {
      const el = part(role);
      if (el) el.textContent = text(key);
    }
    status();
    const p = panel();
    if (p) { // the sliders' names, in the payload's language (a language switch sends them anew)
      for (const input of p.querySelectorAll("input[data-pc]")) input.previousElementSibling.textContent = text("pc", { i: Number(input.dataset.pc) + 1 });
      for (const input of p.querySelectorAll("input[data-dim]")) input.previousElementSibling.textContent = text("dim", { i: Number(input.dataset.dim) + 1 });
    }
    const legend = part("legend");
    if (legend && live.data) {
      legend.replaceChildren(...live.data.label_names.map((name, i) => {
        const item = document.createElement("span");
        const dot = document.createElement("i");
        dot.style.background = PALETTE[i % PALETTE.length];
        item.append(dot, document.createTextNode(name));
        return item;
      }));
    }
  }

  // a new payload from the server (a new pair, or the same pair in another language)
  live.load = async function (json) {
    let data;
    try { data = typeof json === "string" ? (json ? JSON.parse(json) : null) : json; } catch (e) { return; }
    if (!data || !data.ae || !data.vae) return;
    const same = live.data && live.data.ae.decoder === data.ae.decoder && live.data.vae.decoder === data.vae.decoder;
    live.data = data;
    labelAll();
    if (same && live.ready) return;
    live.ready = false;
    live.error = "";
    live.frames = 0;
    const p = panel();
    if (p) p.classList.remove("failed");
    for (const kind of ["ae", "vae"]) {
      const d = data[kind];
      const mean = floats(d.mean);
      live.models[kind] = {
        dec: d.decoder, enc: d.encoder, mean, D: mean.length, shape: d.latent_shape, k: d.k,
        axes: floats(d.axes), spread: d.spread, coords: floats(d.coords),
        dimMean: d.dim_mean ? floats(d.dim_mean) : null, dimStd: d.dim_std ? floats(d.dim_std) : null,
      };
    }
    live.z = new Array(Math.min(data.ae.k, data.vae.k)).fill(0);
    buildSliders();
    status();
    try {
      await Promise.all([data.ae.decoder, data.vae.decoder].map(session)); // the map only decodes
      if (live.data !== data) return; // a newer pair came meanwhile
      live.ready = true;
      status();
      await frame();
    } catch (e) {
      if (live.data === data) fail(e);
    }
  };

  // the pointer on a map: the point under it, in that map's standard deviations
  function pointTo(canvas, event) {
    const r = canvas.getBoundingClientRect();
    const x = ((event.clientX - r.left) / r.width) * 2 - 1, y = 1 - ((event.clientY - r.top) / r.height) * 2;
    live.z[0] = Math.max(-3, Math.min(3, 3 * x));
    live.z[1] = Math.max(-3, Math.min(3, 3 * y));
    frame();
  }

  const isMap = (t) => t instanceof HTMLCanvasElement && t.closest("#aevae-live") && (t.dataset.role || "").startsWith("map-");
  document.addEventListener("pointermove", (e) => { if (isMap(e.target)) pointTo(e.target, e); });
  document.addEventListener("pointerdown", (e) => {
    if (!isMap(e.target)) return;
    e.target.setPointerCapture(e.pointerId); // a drag keeps going past the map's edge
    pointTo(e.target, e);
  });
  document.addEventListener("input", (e) => {
    const t = e.target;
    if (!(t instanceof HTMLInputElement) || !t.closest("#aevae-live")) return;
    if (t.dataset.pc !== undefined) { live.z[Number(t.dataset.pc)] = Number(t.value); frame(); }
    else if (t.dataset.dim !== undefined) dimFrame(Number(t.dataset.dim), Number(t.value));
  });
  document.addEventListener("click", (e) => {
    const t = e.target;
    if (!(t instanceof HTMLElement) || !t.closest("#aevae-live")) return;
    if (t.dataset.role === "prior") prior().catch(fail);
    if (t.dataset.role === "centre") { live.z = live.z.map(() => 0); frame(); }
  });
  async function decodeWith(name, codes, n, shape) {
    const out = await run(name, "z", codes, [n, ...shape]);
    return out.x.data;
  }

  // for the other panels (live_more.js)
  live.lib = { floats, run, session, decodeWith, rgba, put };
  live.prior = prior;
  live.encode = encode;
  live.decode = decode;
  live.session = session;
})();
