// chainrule serve: draw on #canvas, send it as a PNG to api/predict while drawing,
// show the probabilities (#bars), the 28x28 image the network saw (#seen) and
// the first hidden layer's activations (#activations).
"use strict";

(() => {
  const PEN_WIDTH = 22; // pixels of the 280x280 canvas
  const THROTTLE_MS = 150; // at most one prediction this often while drawing

  const canvas = document.getElementById("canvas");
  const ctx = canvas.getContext("2d");
  const seen = document.getElementById("seen");
  const seenCtx = seen.getContext("2d");
  const bars = document.getElementById("bars");
  const prediction = document.getElementById("prediction");
  const confidence = document.getElementById("confidence");
  const status = document.getElementById("status");
  const activationsBlock = document.getElementById("activations-block");
  const activations = document.getElementById("activations");
  const activationsCaption = document.getElementById("activations-caption");

  let classes = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];
  let drawing = false; // a pointer is down on the canvas
  let last = null; // the pointer's previous position
  let hasInk = false; // something was drawn since the last clear
  let dirty = false; // the canvas changed since the last prediction was sent
  let inFlight = false;
  let lastSent = -Infinity;
  let timer = null;
  let generation = 0; // bumped by Clear, so late answers are dropped

  // ------------------------------------------------------------------ drawing
  function clearCanvas() {
    ctx.fillStyle = "#ffffff";
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    ctx.strokeStyle = "#000000";
    ctx.fillStyle = "#000000";
    ctx.lineWidth = PEN_WIDTH;
    ctx.lineCap = "round";
    ctx.lineJoin = "round";
  }

  function position(event) {
    const box = canvas.getBoundingClientRect();
    return {
      x: ((event.clientX - box.left) * canvas.width) / box.width,
      y: ((event.clientY - box.top) * canvas.height) / box.height,
    };
  }

  function dot(p) {
    ctx.beginPath();
    ctx.arc(p.x, p.y, PEN_WIDTH / 2, 0, 2 * Math.PI);
    ctx.fill();
  }

  function stroke(from, to) {
    ctx.beginPath();
    ctx.moveTo(from.x, from.y);
    ctx.lineTo(to.x, to.y);
    ctx.stroke();
  }

  canvas.addEventListener("pointerdown", (event) => {
    if (event.pointerType === "mouse" && event.button !== 0) return;
    event.preventDefault();
    canvas.setPointerCapture(event.pointerId);
    drawing = true;
    hasInk = true;
    last = position(event);
    dot(last);
    schedule();
  });

  canvas.addEventListener("pointermove", (event) => {
    if (!drawing) return;
    event.preventDefault();
    const coalesced = event.getCoalescedEvents ? event.getCoalescedEvents() : [];
    for (const e of coalesced.length ? coalesced : [event]) {
      const p = position(e);
      stroke(last, p);
      last = p;
    }
    schedule();
  });

  function finishStroke() {
    if (!drawing) return;
    drawing = false;
    flush();
  }
  canvas.addEventListener("pointerup", finishStroke);
  canvas.addEventListener("pointercancel", finishStroke);

  // -------------------------------------------------------------- predicting
  // body[data-busy] is "true" until the latest drawing has its prediction shown
  function updateBusy() {
    document.body.dataset.busy = String(inFlight || dirty || timer !== null);
  }

  // while drawing: one request every THROTTLE_MS at most, one in flight at a time
  function schedule() {
    dirty = true;
    if (timer !== null) return;
    const wait = Math.max(0, lastSent + THROTTLE_MS - performance.now());
    timer = setTimeout(() => {
      timer = null;
      send();
    }, wait);
    updateBusy();
  }

  // when a stroke ends: predict now (or as soon as the request in flight returns)
  function flush() {
    dirty = true;
    if (timer !== null) {
      clearTimeout(timer);
      timer = null;
    }
    send();
  }

  function toPng() {
    return new Promise((resolve) => canvas.toBlob(resolve, "image/png"));
  }

  async function send() {
    if (!dirty || !hasInk || inFlight) {
      updateBusy();
      return;
    }
    dirty = false;
    inFlight = true;
    updateBusy();
    lastSent = performance.now();
    const mine = generation;
    try {
      const body = await toPng();
      const response = await fetch("api/predict?activations=1", {
        method: "POST",
        headers: { "Content-Type": "image/png" },
        body,
      });
      const answer = await response.json();
      if (mine !== generation) return;
      if (!response.ok) {
        showStatus(`The server refused the drawing: ${answer.error}`, true);
      } else if (answer.blank) {
        resetResults();
        showStatus("Nothing to classify yet: the drawing has no ink.");
      } else {
        showAnswer(answer);
      }
    } catch (error) {
      if (mine === generation) showStatus(`No answer from the server (${error}).`, true);
    } finally {
      inFlight = false;
      // drawn on meanwhile (even after a Clear): predict the newest drawing
      if (dirty) schedule();
      updateBusy();
    }
  }

  // ----------------------------------------------------------------- showing
  function percent(p) {
    return `${(100 * p).toFixed(1)}%`;
  }

  function buildBars() {
    bars.replaceChildren();
    classes.forEach((name, i) => {
      const item = document.createElement("li");
      item.className = "bar";
      item.dataset.index = String(i);
      const label = document.createElement("span");
      label.className = "label";
      label.textContent = name;
      const track = document.createElement("span");
      track.className = "track";
      const fill = document.createElement("span");
      fill.className = "fill";
      track.append(fill);
      const value = document.createElement("span");
      value.className = "value";
      item.append(label, track, value);
      bars.append(item);
    });
    setBars(null, -1);
  }

  function setBars(probabilities, top) {
    bars.querySelectorAll(".bar").forEach((item, i) => {
      const p = probabilities ? probabilities[i] : 0;
      // clamped: a model trained with MSE gives raw outputs, maybe below 0
      const width = Math.min(Math.max(p, 0), 1);
      item.querySelector(".fill").style.width = probabilities ? percent(width) : "0%";
      item.querySelector(".value").textContent = probabilities ? percent(p) : "";
      item.classList.toggle("top", i === top);
      item.setAttribute(
        "aria-label",
        probabilities ? `${classes[i]}: ${percent(p)}` : `${classes[i]}: no prediction`,
      );
    });
  }

  function drawSeen(pixels) {
    const image = seenCtx.createImageData(28, 28);
    pixels.forEach((v, i) => {
      image.data.set([v, v, v, 255], 4 * i);
    });
    seenCtx.putImageData(image, 0, 0);
  }

  // a dark-to-bright ramp (black, indigo, magenta, orange, pale yellow)
  const RAMP = (() => {
    const stops = [
      [0, 0, 4],
      [60, 15, 112],
      [183, 55, 121],
      [252, 137, 97],
      [252, 253, 191],
    ];
    const table = [];
    for (let v = 0; v < 256; v++) {
      const t = (v / 255) * (stops.length - 1);
      const i = Math.min(Math.floor(t), stops.length - 2);
      const f = t - i;
      table.push(stops[i].map((c, k) => Math.round(c + f * (stops[i + 1][k] - c))));
    }
    return table;
  })();

  // feature maps (C, H, W) side by side, or units (U) as a square grid
  function drawActivations(act) {
    if (!act) {
      activationsBlock.hidden = true;
      return;
    }
    const maps = act.shape.length === 3;
    const [count, h, w] = maps ? act.shape : [1, ...gridOf(act.shape[0])];
    const cols = maps ? (count <= 8 ? count : Math.ceil(Math.sqrt(2 * count))) : 1;
    const rows = Math.ceil(count / cols);
    const gap = maps ? 2 : 0;
    const width = cols * w + (cols - 1) * gap;
    const height = rows * h + (rows - 1) * gap;
    if (activations.width !== width || activations.height !== height) {
      activations.width = width;
      activations.height = height;
    }
    const actx = activations.getContext("2d");
    const image = actx.createImageData(width, height);
    image.data.fill(255); // the gaps: white, opaque
    const size = h * w;
    act.values.forEach((v, i) => {
      const m = Math.floor(i / size);
      const y = Math.floor((i % size) / w);
      const x = i % w;
      const px = (m % cols) * (w + gap) + x;
      const py = Math.floor(m / cols) * (h + gap) + y;
      image.data.set([...RAMP[v], 255], 4 * (py * width + px));
    });
    actx.putImageData(image, 0, 0);
    const what = maps
      ? `${count} feature maps of ${h}×${w}`
      : `${act.shape[0]} units`;
    activationsCaption.textContent = `${act.layer}: ${what}, brightest = ${act.max.toPrecision(3)}`;
    activationsBlock.hidden = false;
  }

  function gridOf(units) {
    const w = Math.ceil(Math.sqrt(units));
    return [Math.ceil(units / w), w];
  }

  function showAnswer(answer) {
    const k = answer.prediction;
    prediction.textContent = answer.label;
    prediction.dataset.state = "predicted";
    confidence.textContent = `${percent(answer.probabilities[k])} sure`;
    setBars(answer.probabilities, k);
    drawSeen(answer.image);
    drawActivations(answer.activations);
    showStatus("Keep drawing, or Clear to start again.");
  }

  function resetResults() {
    prediction.textContent = "–";
    prediction.dataset.state = "empty";
    confidence.textContent = "";
    setBars(null, -1);
    seenCtx.fillStyle = "#000000";
    seenCtx.fillRect(0, 0, seen.width, seen.height);
    activationsBlock.hidden = true;
  }

  function showStatus(text, isError = false) {
    status.textContent = text;
    status.classList.toggle("error", isError);
  }

  function clearAll() {
    generation += 1;
    if (timer !== null) {
      clearTimeout(timer);
      timer = null;
    }
    drawing = false;
    hasInk = false;
    dirty = false;
    clearCanvas();
    resetResults();
    showStatus("Draw one digit, large, in the box.");
    updateBusy();
  }

  document.getElementById("clear").addEventListener("click", clearAll);
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape") clearAll();
  });

  // ----------------------------------------------------------------- start
  async function describeModel() {
    const info = document.getElementById("model-info");
    try {
      const response = await fetch("api/model");
      const model = await response.json();
      if (!response.ok) throw new Error(model.error);
      classes = model.classes;
      buildBars();
      const parts = [model.file];
      if (model.preset) parts.push(`${model.preset} preset`);
      parts.push(`${model.parameters.toLocaleString("en")} parameters`);
      if (typeof model.test_accuracy === "number") {
        const data = model.dataset ? `${model.dataset.toUpperCase()} ` : "";
        parts.push(`${(100 * model.test_accuracy).toFixed(2)}% on the ${data}test set`);
      }
      info.textContent = parts.join(" · ");
      document.body.dataset.ready = "true";
    } catch (error) {
      info.textContent = `Could not describe the model (${error}).`;
    }
  }

  clearAll();
  buildBars();
  describeModel();
})();
