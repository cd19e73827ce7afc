// Draw-a-digit page: sends the canvas as a PNG data URL to POST /predict while you draw, or
// a chosen photo as a multipart upload (field "image"), and shows the same answer for both.
"use strict";

const DEBOUNCE_MS = 150; // wait this long after the last stroke change before asking
const INK_WIDTH = 20; // pen width in canvas pixels (canvas is 280x280, MNIST strokes ~2/28)
// Phone photos are 2-12 MB: a photo file larger than this is re-encoded before it is sent, so
// it uploads in a moment on a slow link and fits under any --max-body-bytes from 2 MB up
// (default 20 MB); preprocess reduces every picture to 28x28 anyway.
const PHOTO_MAX_BYTES = 1_500_000;
// Longest side, in pixels, of a re-encoded photo: preprocess reduces every picture to 28x28,
// so a digit filling a tenth of the frame still arrives 160 px tall, 8x what the model sees.
const PHOTO_MAX_SIDE = 1600;
const PHOTO_JPEG_QUALITY = 0.9; // 0-1; artefacts at 0.9 are far below the ink/paper contrast
const DRAW_HINT = "Draw a digit 0–9 with the mouse or a finger.";

const pad = document.getElementById("pad");
const ink = pad.getContext("2d");
const seen = document.getElementById("seen").getContext("2d");
const digitView = document.getElementById("digit");
const confidenceView = document.getElementById("confidence");
const reasonView = document.getElementById("reason");
const message = document.getElementById("message");
const photoInput = document.getElementById("photo");
const thumb = document.getElementById("thumb");
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
let inFlight = false; // a drawing's request is out (one at a time; the latest strokes follow)
let pending = 0; // requests out, drawings and photos
let dirty = false;
let generation = 0; // bumped by Clear, a photo or drawing after one: older answers are dropped
let thumbUrl = null; // object URL of the photo shown, revoked when it goes

function updateState() {
  document.body.dataset.state = pending || dirty || timer ? "busy" : "idle";
}

function showMessage(text, isError = false) {
  message.textContent = text;
  message.classList.toggle("error", isError);
}

function resetResult() {
  digitView.textContent = "–";
  digitView.classList.remove("unsure");
  confidenceView.textContent = "";
  reasonView.textContent = "";
  for (const bar of bars) {
    bar.fill.style.width = "0";
    bar.value.textContent = "";
    bar.row.classList.remove("top");
  }
  seen.clearRect(0, 0, 28, 28);
}

function whitenPad() {
  ink.fillStyle = "#fff";
  ink.fillRect(0, 0, pad.width, pad.height);
}

function hidePhoto() {
  if (thumbUrl) URL.revokeObjectURL(thumbUrl);
  thumbUrl = null;
  thumb.removeAttribute("src");
  thumb.hidden = true;
}

// A new question: answers still on their way are dropped, the old answer is blanked.
function startOver(text) {
  generation++;
  dirty = false;
  clearTimeout(timer);
  timer = null;
  resetResult();
  showMessage(text);
  updateState();
}

function clearPad() {
  whitenPad();
  hidePhoto();
  photoInput.value = ""; // choosing the same file again is a change again
  startOver(DRAW_HINT);
}

function percent(p) {
  return `${(100 * p).toFixed(1)}%`;
}

// `result.digit` is null when the model abstains; `reason` then says why.
function render(result) {
  const likeliest = result.probabilities.indexOf(Math.max(...result.probabilities));
  if (result.digit === null) {
    digitView.textContent = "not sure";
    digitView.classList.add("unsure");
    confidenceView.textContent = `best guess ${likeliest}, ${percent(result.confidence)}`;
    reasonView.textContent = result.reason || "";
  } else {
    digitView.textContent = String(result.digit);
    digitView.classList.remove("unsure");
    confidenceView.textContent = `${percent(result.confidence)} sure`;
    reasonView.textContent = "";
  }
  result.probabilities.forEach((p, digit) => {
    bars[digit].fill.style.width = percent(p);
    bars[digit].value.textContent = percent(p);
    bars[digit].row.classList.toggle("top", digit === likeliest);
  });
  const pixels = seen.createImageData(28, 28);
  result.preprocessed.flat().forEach((v, i) => {
    const level = Math.round(255 * v);
    pixels.data.set([level, level, level, 255], 4 * i);
  });
  seen.putImageData(pixels, 0, 0);
  showMessage("");
}

// POST /predict and show its answer, unless a newer question came meanwhile. "No digit found"
// (a stroke too small, a blank photo: no probabilities) is a status; any 4xx/5xx an error.
async function ask(request) {
  const asked = generation;
  pending++;
  updateState();
  try {
    const response = await fetch("/predict?include=preprocessed", { method: "POST", ...request });
    const body = await response.json().catch(() => ({})); // a proxy's HTML error page
    if (asked !== generation) return;
    if (response.ok && body.probabilities === null) {
      resetResult();
      showMessage(body.reason);
    } else if (response.ok) {
      render(body);
    } else {
      resetResult();
      showMessage(body.detail || `error ${response.status}`, true);
    }
  } catch (error) {
    if (asked === generation) showMessage("cannot reach the server", true);
  } finally {
    pending--;
    updateState();
  }
}

async function send() {
  if (inFlight || !dirty) return;
  dirty = false;
  inFlight = true;
  try {
    await ask({
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ image: pad.toDataURL("image/png") }),
    });
  } finally {
    inFlight = false;
    if (dirty && !timer) send();
    updateState();
  }
}

// A photo over PHOTO_MAX_BYTES as a JPEG of at most PHOTO_MAX_SIDE px (EXIF rotation applied,
// transparency on white paper); the file itself if it is small or the browser cannot decode
// it, so that the server says what is wrong with it.
async function photoToSend(file) {
  if (file.size <= PHOTO_MAX_BYTES) return file;
  try {
    const bitmap = await createImageBitmap(file);
    const scale = Math.min(1, PHOTO_MAX_SIDE / Math.max(bitmap.width, bitmap.height));
    const canvas = document.createElement("canvas");
    canvas.width = Math.max(1, Math.round(bitmap.width * scale));
    canvas.height = Math.max(1, Math.round(bitmap.height * scale));
    const context = canvas.getContext("2d");
    context.fillStyle = "#fff";
    context.fillRect(0, 0, canvas.width, canvas.height);
    context.drawImage(bitmap, 0, 0, canvas.width, canvas.height);
    bitmap.close();
    const blob = await new Promise((resolve) =>
      canvas.toBlob(resolve, "image/jpeg", PHOTO_JPEG_QUALITY),
    );
    return blob || file;
  } catch (error) {
    return file;
  }
}

async function sendPhoto(file) {
  whitenPad(); // the answer will be the photo's, not an old drawing's
  hidePhoto();
  startOver(`Reading ${file.name}…`);
  const asked = generation;
  thumbUrl = URL.createObjectURL(file);
  thumb.src = thumbUrl;
  thumb.hidden = false;
  pending++; // busy while the photo is being re-encoded too
  updateState();
  let upload;
  try {
    upload = await photoToSend(file);
  } finally {
    pending--;
  }
  if (asked !== generation) return updateState();
  const form = new FormData(); // the browser sets the multipart Content-Type and boundary
  form.append("image", upload, upload === file ? file.name : `${file.name}.jpg`);
  await ask({ body: form });
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
  if (thumbUrl) {
    // drawing after a photo: the answer becomes the drawing's
    hidePhoto();
    photoInput.value = "";
    startOver("");
  }
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
photoInput.addEventListener("change", () => {
  if (photoInput.files.length) sendPhoto(photoInput.files[0]);
});
clearPad();
