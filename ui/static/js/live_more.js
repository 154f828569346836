// aevae: the other panels whose models run in this page (see live.js, which loads the runtime):
// the noisy variants' scale, the interpolation's scrubber, and the student's own picture.
(function () {
  "use strict";
  const live = window.aevaeLive;
  if (!live || live.variants) return;
  const { floats, run, session, decodeWith, rgba, put } = live.lib;

  // ---- Noisy variants, live: mean + scale x sigma x eps (VAE) and code + scale x eps (AE), with
  // the server's own draws eps, decoded at every move of the scale slider.
  const vpanel = () => document.getElementById("aevae-live-variants");
  const vpart = (role) => { const p = vpanel(); return p && p.querySelector(`[data-role="${role}"]`); };
  const variants = { data: null, ready: false, frames: 0, busy: false, again: false, error: "" };
  live.variants = variants;

  function vtext(key, fill) {
    let s = (variants.data && variants.data.texts && variants.data.texts[key]) || "";
    for (const [k, v] of Object.entries(fill || {})) s = s.split(`{${k}}`).join(String(v));
    return s;
  }

  async function variantFrame() {
    if (!variants.ready) return;
    if (variants.busy) { variants.again = true; return; }
    variants.busy = true;
    try {
      do {
        variants.again = false;
        const d = variants.data, scale = Number(vpart("scale").value);
        const { n, k, D } = d, size = d.image_size, z = new Float32Array(n * k * D), za = new Float32Array(n * k * D);
        for (let i = 0; i < n; i++) {
          for (let j = 0; j < k; j++) {
            const o = (i * k + j) * D;
            for (let q = 0; q < D; q++) {
              const e = d.eps[o + q];
              z[o + q] = d.mu[i * D + q] + scale * d.sigma[i * D + q] * e;
              za[o + q] = d.code[i * D + q] + scale * e;
            }
          }
        }
        const [vae, ae] = await Promise.all([decodeWith(d.vae, z, n * k, d.latent_shape),
          decodeWith(d.ae, za, n * k, d.latent_shape)]);
        const c = vpart("grid");
        if (c) {
          const cell = d.cell;
          const g = c.getContext("2d");
          g.clearRect(0, 0, c.width, c.height);
          for (let i = 0; i < n; i++) {
            const [x, y] = d.pos[i];
            put(c, d.source[i], x, y, cell, cell);
            for (let j = 0; j < k; j++) {
              put(c, rgba(vae, i * k + j, size), x + (j + 1) * cell + 6, y, cell, cell);
              put(c, rgba(ae, i * k + j, size), x + (j + 1) * cell + 6, y + cell, cell, cell);
            }
          }
        }
        const out = vpart("scale-value");
        if (out) out.textContent = scale.toFixed(2);
        variants.scale = scale;
        variants.frames += 1;
      } while (variants.again);
    } catch (e) {
      variants.ready = false;
      variants.error = String((e && e.message) || e).slice(0, 200);
      const p = vpanel();
      if (p) p.classList.add("failed");
      const st = vpart("status");
      if (st) st.textContent = vtext("failed", { why: variants.error });
    } finally {
      variants.busy = false;
    }
  }

  live.loadVariants = async function (json) {
    let d;
    try { d = typeof json === "string" ? (json ? JSON.parse(json) : null) : json; } catch (e) { return; }
    if (!d || !d.vae) return;
    const p = vpanel();
    if (!p) return;
    const D = d.latent_shape.reduce((a, b) => a * b, 1), size = d.image_size;
    const bytes = Uint8Array.from(atob(d.sources), (ch) => ch.charCodeAt(0));
    const source = [];
    for (let i = 0; i < d.n; i++) {
      const px = new Uint8ClampedArray(size * size * 4);
      for (let q = 0; q < size * size; q++) {
        for (let c = 0; c < 3; c++) px[4 * q + c] = bytes[(i * size * size + q) * 3 + c];
        px[4 * q + 3] = 255;
      }
      source.push(new ImageData(px, size, size));
    }
    variants.data = Object.assign({}, d, { D, mu: floats(d.mu), sigma: floats(d.sigma), code: floats(d.code),
      eps: floats(d.eps), source, cell: Math.max(size, Math.min(48, 2 * size)) });
    variants.ready = false;
    variants.error = "";
    p.classList.remove("failed");
    for (const [role, key] of [["title", "title"], ["note", "note"], ["scale-label", "scale"]]) {
      const el = vpart(role);
      if (el) el.textContent = vtext(key, { n: d.n, k: d.k });
    }
    const st = vpart("status");
    if (st) st.textContent = vtext("loading");
    const slider = vpart("scale");
    if (slider) slider.value = String(d.scale);
    // each image a block (source, then its k variants: VAE row over AE row), as many blocks a row
    // as the panel holds
    const cell = variants.data.cell, blockW = (d.k + 1) * cell + 6 + 14, blockH = 2 * cell + 10;
    const cols = Math.max(1, Math.min(d.n, Math.floor(((p.clientWidth || 1200) - 4) / blockW)));
    variants.data.pos = Array.from({ length: d.n }, (_, i) => [(i % cols) * blockW, Math.floor(i / cols) * blockH]);
    const c = vpart("grid");
    if (c) {
      c.width = cols * blockW - 14;
      c.height = Math.ceil(d.n / cols) * blockH - 10;
    }
    try {
      await Promise.all([session(d.vae), session(d.ae)]);
      if (variants.data.vae !== d.vae || variants.data.ae !== d.ae) return;
      variants.ready = true;
      if (st) st.textContent = vtext("ready");
      await variantFrame();
    } catch (e) {
      variants.error = String((e && e.message) || e).slice(0, 200);
      p.classList.add("failed");
      if (st) st.textContent = vtext("failed", { why: variants.error });
    }
  };
  document.addEventListener("input", (e) => {
    const t = e.target;
    if (t instanceof HTMLInputElement && t.closest("#aevae-live-variants") && t.dataset.role === "scale") variantFrame();
  });

  // ---- Interpolation, live: a scrubber between the two images' codes (AE linear, VAE linear,
  // VAE spherical as sampling.slerp), decoded as it moves.
  const ipanel = () => document.getElementById("aevae-live-interp");
  const ipart = (role) => { const p = ipanel(); return p && p.querySelector(`[data-role="${role}"]`); };
  const interp = { data: null, ready: false, frames: 0, busy: false, again: false, error: "" };
  live.interp = interp;

  function itext(key, fill) {
    let s = (interp.data && interp.data.texts && interp.data.texts[key]) || "";
    for (const [k, v] of Object.entries(fill || {})) s = s.split(`{${k}}`).join(String(v));
    return s;
  }

  function lerp(a, b, t) { return a.map((v, i) => v + t * (b[i] - v)); }

  function slerp(a, b, t) {
    let dot = 0, na = 0, nb = 0;
    for (let i = 0; i < a.length; i++) { dot += a[i] * b[i]; na += a[i] * a[i]; nb += b[i] * b[i]; }
    const omega = Math.acos(Math.max(-1, Math.min(1, dot / Math.max(Math.sqrt(na) * Math.sqrt(nb), 1e-12))));
    if (Math.abs(omega) < 1e-4) return lerp(a, b, t);
    const so = Math.sin(omega), w1 = Math.sin((1 - t) * omega) / so, w2 = Math.sin(t * omega) / so;
    return a.map((v, i) => w1 * v + w2 * b[i]);
  }

  async function interpFrame() {
    if (!interp.ready) return;
    if (interp.busy) { interp.again = true; return; }
    interp.busy = true;
    try {
      do {
        interp.again = false;
        const d = interp.data, t = Number(ipart("t").value), size = d.image_size, cell = d.cell;
        const [ae, vl, vs] = await Promise.all([
          decodeWith(d.ae, lerp(d.ac[0], d.ac[1], t), 1, d.ae_shape),
          decodeWith(d.vae, lerp(d.vc[0], d.vc[1], t), 1, d.vae_shape),
          decodeWith(d.vae, slerp(d.vc[0], d.vc[1], t), 1, d.vae_shape)]);
        const c = ipart("strip");
        if (c) {
          c.getContext("2d").clearRect(0, 0, c.width, c.height);
          put(c, d.source[0], 0, 0, cell, cell);
          [ae, vl, vs].forEach((img, i) => put(c, rgba(img, 0, size), (i + 1) * (cell + 6), 0, cell, cell));
          put(c, d.source[1], 4 * (cell + 6), 0, cell, cell);
        }
        const out = ipart("t-value");
        if (out) out.textContent = t.toFixed(2);
        interp.t = t;
        interp.frames += 1;
      } while (interp.again);
    } catch (e) {
      interp.ready = false;
      interp.error = String((e && e.message) || e).slice(0, 200);
      const p = ipanel();
      if (p) p.classList.add("failed");
      const st = ipart("status");
      if (st) st.textContent = itext("failed", { why: interp.error });
    } finally {
      interp.busy = false;
    }
  }

  live.loadInterpolation = async function (json) {
    let d;
    try { d = typeof json === "string" ? (json ? JSON.parse(json) : null) : json; } catch (e) { return; }
    const p = ipanel();
    if (!d || !d.vae || !p) return;
    const size = d.image_size, bytes = Uint8Array.from(atob(d.sources), (ch) => ch.charCodeAt(0));
    const source = [0, 1].map((i) => {
      const px = new Uint8ClampedArray(size * size * 4);
      for (let q = 0; q < size * size; q++) {
        for (let c = 0; c < 3; c++) px[4 * q + c] = bytes[(i * size * size + q) * 3 + c];
        px[4 * q + 3] = 255;
      }
      return new ImageData(px, size, size);
    });
    const ac = floats(d.ae_codes), vc = floats(d.vae_codes), na = ac.length / 2, nv = vc.length / 2;
    interp.data = Object.assign({}, d, { source, ac: [ac.slice(0, na), ac.slice(na)], vc: [vc.slice(0, nv), vc.slice(nv)],
      cell: Math.max(size, Math.min(96, 3 * size)) });
    interp.ready = false;
    interp.error = "";
    p.classList.remove("failed");
    const label = ipart("t-label");
    if (label) label.textContent = itext("t", { a: d.ids[0], b: d.ids[1] });
    const ends = ipart("ends");
    if (ends) ends.textContent = itext("ends", { a: d.ids[0], b: d.ids[1] });
    const st = ipart("status");
    if (st) st.textContent = itext("title");
    const c = ipart("strip");
    if (c) { c.width = 5 * (interp.data.cell + 6) - 6; c.height = interp.data.cell; }
    try {
      await Promise.all([session(d.vae), session(d.ae)]);
      if (interp.data.vae !== d.vae || interp.data.ae !== d.ae) return;
      interp.ready = true;
      await interpFrame();
    } catch (e) {
      interp.error = String((e && e.message) || e).slice(0, 200);
      p.classList.add("failed");
      if (st) st.textContent = itext("failed", { why: interp.error });
    }
  };
  document.addEventListener("input", (e) => {
    const t = e.target;
    if (t instanceof HTMLInputElement && t.closest("#aevae-live-interp") && t.dataset.role === "t") interpFrame();
  });

  // ---- Your picture, live: a file or the camera, cropped to a square and scaled to the pair's
  // size, encoded and decoded by both models here, with PSNR computed here. Nothing is uploaded.
  const ppanel = () => document.getElementById("aevae-live-picture");
  const ppart = (role) => { const p = ppanel(); return p && p.querySelector(`[data-role="${role}"]`); };
  const picture = { data: null, ready: false, frames: 0, busy: false, again: false, error: "", psnr: {},
    stream: null, input: null };
  live.picture = picture;

  function ptext(key, fill) {
    let s = (picture.data && picture.data.texts && picture.data.texts[key]) || "";
    for (const [k, v] of Object.entries(fill || {})) s = s.split(`{${k}}`).join(String(v));
    return s;
  }

  // the centre square of an image, video frame or canvas, scaled to size x size
  function square(source, w, h, size) {
    const c = document.createElement("canvas");
    c.width = c.height = size;
    const g = c.getContext("2d", { willReadFrequently: true });
    const side = Math.min(w, h);
    g.imageSmoothingEnabled = true;
    g.imageSmoothingQuality = "high";
    g.fillStyle = "#fff"; g.fillRect(0, 0, size, size); // transparent pixels read as white
    g.drawImage(source, (w - side) / 2, (h - side) / 2, side, side, 0, 0, size, size);
    return g.getImageData(0, 0, size, size);
  }

  function psnr(a, b) { // both RGBA bytes; the RGB values count, as the server's PSNR on uint8 does
    let se = 0, n = 0;
    for (let i = 0; i < a.length; i += 4) {
      for (let c = 0; c < 3; c++) { const d = a[i + c] - b[i + c]; se += d * d; n++; }
    }
    return se === 0 ? Infinity : 10 * Math.log10((255 * 255) / (se / n));
  }

  async function pictureFrame() {
    if (!picture.ready || !picture.input) return;
    if (picture.busy) { picture.again = true; return; }
    picture.busy = true;
    try {
      do {
        picture.again = false;
        const d = picture.data, size = d.image_size, img = picture.input, plane = size * size;
        const x = new Float32Array(3 * plane);
        for (let q = 0; q < plane; q++) for (let c = 0; c < 3; c++) x[c * plane + q] = img.data[4 * q + c] / 255;
        const inC = ppart("in");
        if (inC) put(inC, img, 0, 0, inC.width, inC.height);
        const caps = [];
        for (const kind of ["ae", "vae"]) {
          const m = d[kind];
          const code = (await run(m.encoder, "x", x, [1, 3, size, size]))[kind === "ae" ? "code" : "mu"].data;
          const out = rgba(await decodeWith(m.decoder, code, 1, m.latent_shape), 0, size);
          const c = ppart(kind);
          if (c) put(c, out, 0, 0, c.width, c.height);
          picture.psnr[kind] = psnr(img.data, out.data);
          caps.push([kind, picture.psnr[kind]]);
        }
        for (const [kind, value] of caps) {
          const cap = ppart("cap-" + kind);
          if (cap) cap.textContent = ptext("psnr", { kind: kind.toUpperCase(), psnr: value.toFixed(2) });
        }
        const capIn = ppart("cap-in");
        if (capIn) capIn.textContent = ptext("input", { size });
        picture.frames += 1;
      } while (picture.again);
    } catch (e) {
      picture.error = String((e && e.message) || e).slice(0, 200);
      const st = ppart("status");
      if (st) st.textContent = ptext("failed", { why: picture.error });
    } finally {
      picture.busy = false;
    }
  }

  async function pictureFile(file) {
    if (!picture.data) return;
    try {
      const bitmap = await createImageBitmap(file);
      picture.input = square(bitmap, bitmap.width, bitmap.height, picture.data.image_size);
      bitmap.close();
      stopCamera();
      await pictureFrame();
    } catch (e) {
      const st = ppart("status");
      if (st) st.textContent = ptext("not_image");
    }
  }

  function stopCamera() {
    if (picture.stream) picture.stream.getTracks().forEach((t) => t.stop());
    picture.stream = null;
    const b = ppart("camera");
    if (b) b.textContent = ptext("camera");
  }

  async function camera() {
    if (picture.stream) { stopCamera(); return; }
    const video = ppart("video");
    try {
      picture.stream = await navigator.mediaDevices.getUserMedia({ video: { width: 320, height: 240 }, audio: false });
    } catch (e) {
      const st = ppart("status");
      if (st) st.textContent = ptext("failed", { why: String((e && e.message) || e).slice(0, 200) });
      return;
    }
    video.srcObject = picture.stream;
    await video.play();
    const b = ppart("camera");
    if (b) b.textContent = ptext("camera_off");
    const tick = async () => {
      if (!picture.stream || !picture.data) return;
      if (video.videoWidth) {
        picture.input = square(video, video.videoWidth, video.videoHeight, picture.data.image_size);
        await pictureFrame();
      }
      requestAnimationFrame(tick);
    };
    requestAnimationFrame(tick);
  }

  // the panel's words and state; it sits in a closed accordion, which the page draws only when
  // opened, so this runs again whenever the panel appears
  function pictureLabels() {
    const p = ppanel();
    if (!p || !picture.data) return;
    for (const [role, key] of [["note", "note"], ["file", "file"], ["camera", picture.stream ? "camera_off" : "camera"]]) {
      const el = ppart(role);
      if (el) el.textContent = ptext(key);
    }
    p.classList.toggle("failed", Boolean(picture.error));
    const st = ppart("status");
    if (st) st.textContent = picture.error ? ptext("failed", { why: picture.error }) : ptext(picture.ready ? "ready" : "loading");
    p.dataset.shown = picture.data.source + picture.data.texts.note;
  }
  new MutationObserver(() => {
    const p = ppanel();
    if (p && picture.data && p.dataset.shown !== picture.data.source + picture.data.texts.note) pictureLabels();
  }).observe(document.documentElement, { childList: true, subtree: true });

  live.loadPicture = async function (json) {
    let d;
    try { d = typeof json === "string" ? (json ? JSON.parse(json) : null) : json; } catch (e) { return; }
    if (!d || !d.vae) return;
    const same = picture.data && picture.data.vae.decoder === d.vae.decoder && picture.data.ae.decoder === d.ae.decoder;
    picture.data = d;
    if (same && (picture.ready || picture.error)) { pictureLabels(); return; }
    picture.ready = false;
    picture.error = "";
    if (picture.input && picture.input.width !== d.image_size) picture.input = null; // another size: choose again
    pictureLabels();
    try {
      await Promise.all([d.ae.encoder, d.ae.decoder, d.vae.encoder, d.vae.decoder].map(session));
      if (picture.data !== d) return;
      picture.ready = true;
      pictureLabels();
      await pictureFrame();
    } catch (e) {
      picture.error = String((e && e.message) || e).slice(0, 200);
      pictureLabels();
    }
  };
  document.addEventListener("change", (e) => {
    const t = e.target;
    if (t instanceof HTMLInputElement && t.closest("#aevae-live-picture") && t.files && t.files[0]) pictureFile(t.files[0]);
  });
  document.addEventListener("click", (e) => {
    const t = e.target;
    if (t instanceof HTMLElement && t.closest("#aevae-live-picture") && t.dataset.role === "camera") camera();
  });
  document.addEventListener("dragover", (e) => { if (e.target instanceof Element && e.target.closest("#aevae-live-picture")) e.preventDefault(); });
  document.addEventListener("drop", (e) => {
    if (!(e.target instanceof Element) || !e.target.closest("#aevae-live-picture")) return;
    e.preventDefault();
    const f = e.dataTransfer && e.dataTransfer.files && e.dataTransfer.files[0];
    if (f) pictureFile(f);
  });

})();
