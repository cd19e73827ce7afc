// Draw-a-digit page: sends the canvas as a PNG data URL to POST /predict while you draw.
"use strict";

const DEBOUNCE_MS = 150; // wait this long after the last stroke change before asking
const INK_WIDTH = 20; // pen width in canvas pixels (canvas is 280x280, MNIST strokes ~2/28)

const pad = document.getElementById("pad");
const ink = pad.getContext("2d");
const seen = document.getElementById("seen").getContext("2d");
const digitView = document.getElementById("digit");
const confidenceView = document.getElementById("confidence");
const message = document.getElementById("message");
const bars = [];

for (let digit = 0; digit < 10; digit++) {
  const row = document.createElement("li");
  row.innerHTML =
    `<span class="label">${digit}</span><span class="track"><span class="fill"></span></span>` +
    `<span class="value"></span>`;
  document.getElementById("bars").append(row);
  bars.push({ row, fill: row.querySelector(".fill"), value: row.querySelector(".value") });
}

let drawing = false;
let last = null;
let timer = null;
let inFlight = false;
let dirty = false;
let generation = 0; // bumped by Clear, so an answer for an old drawing is dropped

function updateState() {
  document.body.dataset.state = inFlight || dirty || timer ? "busy" : "idle";
}

function showMessage(text, isError = false) {
  message.textContent = text;
  message.classList.toggle("error", isError);
}

function resetResult() {
  digitView.textContent = "–";
  confidenceView.textContent = "";
  for (const bar of bars) {
    bar.fill.style.width = "0";
    bar.value.textContent = "";
    bar.row.classList.remove("top");
  }
  seen.clearRect(0, 0, 28, 28);
}

function clearPad() {
  ink.fillStyle = "#fff";
  ink.fillRect(0, 0, pad.width, pad.height);
  generation++;
  dirty = false;
  clearTimeout(timer);
  timer = null;
  resetResult();
  showMessage("Draw a digit 0–9 with the mouse or a finger.");
  updateState();
}

function render(result) {
  digitView.textContent = String(result.digit);
  confidenceView.textContent = `${(100 * result.confidence).toFixed(1)}% sure`;
  result.probabilities.forEach((p, digit) => {
    bars[digit].fill.style.width = `${(100 * p).toFixed(1)}%`;
    bars[digit].value.textContent = `${(100 * p).toFixed(1)}%`;
    bars[digit].row.classList.toggle("top", digit === result.digit);
  });
  const pixels = seen.createImageData(28, 28);
  result.preprocessed.flat().forEach((v, i) => {
    const level = Math.round(255 * v);
    pixels.data.set([level, level, level, 255], 4 * i);
  });
  seen.putImageData(pixels, 0, 0);
  showMessage("");
}

async function send() {
  if (inFlight || !dirty) return;
  dirty = false;
  inFlight = true;
  updateState();
  const asked = generation;
  try {
    const response = await fetch("/predict", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ image: pad.toDataURL("image/png") }),
    });
    const body = await response.json();
    if (asked !== generation) return;
    if (response.ok) {
      render(body);
    } else {
      resetResult();
      showMessage(body.detail || `error ${response.status}`, response.status !== 422);
    }
  } catch (error) {
    if (asked === generation) showMessage("cannot reach the server", true);
  } finally {
    inFlight = false;
    if (dirty && !timer) send();
    updateState();
  }
}

function schedule() {
  dirty = true;
  clearTimeout(timer);
  timer = setTimeout(() => {
    timer = null;
    send();
    updateState();
  }, DEBOUNCE_MS);
  updateState();
}

function point(event) {
  const box = pad.getBoundingClientRect();
  return {
    x: ((event.clientX - box.left) * pad.width) / box.width,
    y: ((event.clientY - box.top) * pad.height) / box.height,
  };
}

function strokeTo(p) {
  ink.beginPath();
  ink.moveTo(last.x, last.y);
  ink.lineTo(p.x, p.y);
  ink.stroke();
  last = p;
}

pad.addEventListener("pointerdown", (event) => {
  event.preventDefault();
  pad.setPointerCapture(event.pointerId);
  drawing = true;
  ink.strokeStyle = "#000";
  ink.lineWidth = INK_WIDTH;
  ink.lineCap = "round";
  ink.lineJoin = "round";
  last = point(event);
  strokeTo(last); // a dot for a tap
  schedule();
});

pad.addEventListener("pointermove", (event) => {
  if (!drawing) return;
  const events = event.getCoalescedEvents ? event.getCoalescedEvents() : [event];
  for (const e of events.length ? events : [event]) strokeTo(point(e));
  schedule();
});

for (const type of ["pointerup", "pointercancel"]) {
  pad.addEventListener(type, () => {
    if (drawing) schedule();
    drawing = false;
  });
}

document.getElementById("clear").addEventListener("click", clearPad);
clearPad();
