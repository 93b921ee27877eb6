// kit live's page: the camera (or the server's --video) in, MediaPipe's landmarks drawn over each tracked picture,
// the model's answer to each sign, and the takes recorded. Plain JavaScript, served by the kit (no CDN).
// The server (kit/live/server.py) tracks the pictures; this page only captures, draws and controls.
"use strict";

const $ = (id) => document.getElementById(id);
const canvas = $("picture"), ctx = canvas.getContext("2d");
const camera = $("camera");
const grab = document.createElement("canvas"), grabCtx = grab.getContext("2d");
const MAX_UNANSWERED = 2;  // pictures sent and not yet answered: beyond this, camera frames are skipped
const TRANSCRIPT_WORDS = 30;
const SLOW_FPS = 10;  // a third of the competition's 30 fps: below it a short sign keeps only a few frames

// What tests and the benchmark read (the page's own counts): frames drawn, answers, takes, problems.
const kit = window.__kit = {frames: 0, answers: [], takes: [], notes: [], problems: [], fps: 0, skipped: 0, dropped: 0};
let ws, style = null, videoMode = false, mode = "hands";
let nextId = 0, answeredId = -1;
const pictures = new Map();  // id -> ImageBitmap sent, drawn with its landmarks when they come back
const sentAt = new Map();    // id -> performance.now() when sent: the answer's latency is measured from it
let keyDown = false, keyUpAt = null, armed = false;
const replies = [];
const transcript = [];

function connect() {
  ws = new WebSocket(`ws://${location.host}/ws`);
  ws.onmessage = (event) => handle(JSON.parse(event.data));
  ws.onclose = () => problem("the kit live server stopped (or refused this page): start kit live again and reload");
}

function handle(m) {
  switch (m.type) {
    case "hello": return hello(m);
    case "frame": return frame(m);
    case "sign": return answer(m);
    case "take": return take(m);
    case "record": return recordState(m);
    case "settings": mode = m.mode; return status(false);
    case "ended": $("status").textContent = "the video ended"; $("status").className = ""; return;
    case "note": kit.notes.push(m.text); $("note").textContent = m.text; return;
    case "error":
      if (m.id != null && !videoMode) answeredId = Math.max(answeredId, m.id);  // that frame is answered: send more
      return problem(m.text);
  }
}

function hello(m) {
  style = m.style;
  mode = m.mode;
  $("model").textContent = `${m.model} (${m.signs})`;
  $("gap").value = m.gap;
  document.querySelector(`input[name=mode][value=${m.mode}]`).checked = true;
  if (m.record) {
    $("record-where").textContent = `into ${m.record.data}` + (m.record.vocabulary ? ` (${m.record.vocabulary} vocabulary)` : "");
    counts(m.record.counts);
  } else {
    $("record-where").textContent = "start kit live with --data DIR to record takes into a competition folder";
    $("record-form").querySelectorAll("input, button").forEach((e) => { e.disabled = true; });
  }
  if (m.video) {
    videoMode = true;
    $("status").textContent = `playing ${m.video}`;
    $("replay").hidden = false;
  } else {
    startCamera();
  }
}

async function startCamera() {
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    return problem("this browser gives this page no camera (open it at the address kit live printed, " +
                   "http://127.0.0.1:...); or play a recording instead: kit live MODEL --video FILE");
  }
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({video: {width: {ideal: 640}, height: {ideal: 480}}, audio: false});
  } catch (err) {
    return problem(`no camera (${err.name}: ${err.message}): connect one, allow this page to use it and reload; ` +
                   "or play a recording instead: kit live MODEL --video FILE");
  }
  camera.srcObject = stream;
  await camera.play();
  $("mirror").checked = true;
  mirror();
  status(false);
  const next = () => {
    send().finally(() => {
      if (camera.requestVideoFrameCallback) camera.requestVideoFrameCallback(next);
      else setTimeout(next, 1000 / 30);
    });
  };
  next();
}

// One camera frame to the server, unless two are still unanswered (then it is skipped: the page keeps up).
async function send() {
  if (!ws || ws.readyState !== WebSocket.OPEN || camera.readyState < 2 || !camera.videoWidth) return;
  if (nextId - 1 - answeredId >= MAX_UNANSWERED) { kit.skipped++; return; }
  const id = nextId++;
  const t = performance.now() / 1000;
  grab.width = camera.videoWidth;
  grab.height = camera.videoHeight;
  grabCtx.drawImage(camera, 0, 0);
  pictures.set(id, await createImageBitmap(grab));
  const blob = await new Promise((resolve) => grab.toBlob(resolve, "image/jpeg", 0.9));
  const jpeg = new Uint8Array(await blob.arrayBuffer());
  const header = new TextEncoder().encode(JSON.stringify({id, t, key: keyDown}));
  const message = new Uint8Array(4 + header.length + jpeg.length);
  new DataView(message.buffer).setUint32(0, header.length, true);
  message.set(header, 4);
  message.set(jpeg, 4 + header.length);
  sentAt.set(id, performance.now());
  ws.send(message);
}

function frame(m) {
  const now = performance.now();
  replies.push(now);
  while (replies.length && replies[0] < now - 2000) replies.shift();
  kit.fps = replies.length > 1 ? 1000 * (replies.length - 1) / (now - replies[0]) : 0;
  kit.dropped = m.dropped;
  if (m.image) {
    const image = new Image();
    image.onload = () => draw(image, m.points);
    image.src = m.image;
  } else {
    answeredId = Math.max(answeredId, m.id);
    const picture = pictures.get(m.id);
    if (picture) draw(picture, m.points);
    for (const [id, bitmap] of pictures) if (id <= m.id) { bitmap.close(); pictures.delete(id); }
    for (const id of sentAt.keys()) if (id < m.id - 300) sentAt.delete(id);
  }
  status(m.signing);
  const what = videoMode ? "the video plays at its own speed" : `the camera gives ${cameraRate()}`;
  $("rate").textContent = `${kit.fps.toFixed(1)} landmark frames a second (MediaPipe ${m.ms} ms a frame); ${what}, ` +
    `frames in between are skipped (${kit.skipped} here, ${m.dropped} at the server)`;
  const slow = replies.length > 10 && kit.fps < SLOW_FPS;
  $("rate").classList.toggle("slow", slow);
  if (slow) $("rate").textContent += `: slow (under ${SLOW_FPS} a second), a quick sign may be missed or cut short`;
}

function cameraRate() {
  const track = camera.srcObject && camera.srcObject.getVideoTracks()[0];
  const rate = track && track.getSettings().frameRate;
  return rate ? `${Math.round(rate)} a second` : "frames as it can";
}

function status(signing) {
  const s = $("status");
  s.className = signing ? "signing" : "";
  s.textContent = signing ? "signing..." : mode === "hands" ? "waiting for a hand" : "hold the space bar to sign";
}

// The landmarks as kit show --overlay draws them (kit/seeing/overlay.py: draw; its style() is sent in hello).
function draw(image, points) {
  canvas.width = image.width;
  canvas.height = image.height;
  ctx.drawImage(image, 0, 0);
  const w = canvas.width, h = canvas.height, colors = style.colors;
  const radius = Math.max(style.min_radius, Math.round(w / style.pixels_per_radius));
  const small = Math.max(1, Math.floor(radius / 2));
  const at = (i) => (points[i] ? [points[i][0] * w, points[i][1] * h] : null);
  const dots = (indices, color, size) => {
    ctx.fillStyle = color;
    for (const i of indices) {
      const p = at(i);
      if (p) { ctx.beginPath(); ctx.arc(p[0], p[1], size, 0, 2 * Math.PI); ctx.fill(); }
    }
  };
  const bones = (pairs, color) => {
    ctx.strokeStyle = color;
    ctx.lineWidth = Math.floor(radius / 2) + 1;
    ctx.beginPath();
    for (const [a, b] of pairs) {
      const p = at(a), q = at(b);
      if (p && q) { ctx.moveTo(p[0], p[1]); ctx.lineTo(q[0], q[1]); }
    }
    ctx.stroke();
  };
  dots(style.face, colors.face, small);
  dots(style.lips, colors.lips, small);
  bones(style.pose_bones, colors.pose);
  dots(style.pose, colors.pose, radius);
  for (const name of ["left", "right"]) {
    const hand = style.hands[name];
    bones(style.hand_bones.map(([a, b]) => [hand[a], hand[b]]), colors[name]);
    dots(hand, colors[name], radius);
  }
  kit.frames++;
}

function answer(m) {
  const now = performance.now();
  let after = m.latency_ms, how = "after the cut";
  if (m.closed_by != null && sentAt.has(m.closed_by)) { after = now - sentAt.get(m.closed_by); how = "after the sign ended"; }
  else if (m.closed_by == null && keyUpAt != null && mode === "key") { after = now - keyUpAt; how = "after the key was let go"; }
  m.page_ms = after;
  kit.answers.push(m);
  const top = $("top");
  top.replaceChildren(...m.top.map(({sign, p}) => {
    const li = document.createElement("li");
    li.textContent = `${sign} ${(100 * p).toFixed(1)}%`;
    const bar = document.createElement("span");
    bar.className = "bar";
    bar.style.width = `${Math.round(120 * p)}px`;
    li.append(bar);
    return li;
  }));
  $("answer-info").textContent = `sign ${m.number}: ${m.frames} frame${m.frames === 1 ? "" : "s"}, model ${m.ms} ms, shown ${Math.round(after)} ms ${how}`;
  $("note").textContent = m.note || "";
  transcript.push(m.top[0].sign);
  $("transcript").textContent = transcript.slice(-TRANSCRIPT_WORDS).join(" ");
}

function take(m) {
  kit.takes.push(m);
  $("record-state").textContent = `take of ${m.sign} by signer ${m.participant} written: ${m.path}` + (m.note ? ` (${m.note})` : "");
  counts(m.counts);
}

function recordState(m) {
  $("problem").hidden = true;  // a sign or signer refused before is now accepted
  armed = m.armed;
  $("record").classList.toggle("armed", armed);
  $("record").textContent = armed ? "stop recording" : "record takes";
  $("record-state").textContent = armed ? `recording: each sign cut is a take of ${m.sign} by signer ${m.participant}` : "";
  counts(m.counts);
}

function counts(byName) {
  $("counts").tBodies[0].replaceChildren(...Object.entries(byName).map(([sign, n]) => {
    const row = document.createElement("tr");
    for (const text of [sign, String(n)]) { const cell = document.createElement("td"); cell.textContent = text; row.append(cell); }
    return row;
  }));
}

function problem(text) {
  kit.problems.push(text);
  $("problem").hidden = false;
  $("problem").textContent = text;
}

function settings() {
  mode = document.querySelector("input[name=mode]:checked").value;
  ws.send(JSON.stringify({type: "settings", mode, gap: parseFloat($("gap").value)}));
}

function key(down) {
  if (down === keyDown) return;
  keyDown = down;
  if (!down) keyUpAt = performance.now();
  ws.send(JSON.stringify({type: "key", down}));
}

function mirror() { canvas.classList.toggle("mirrored", $("mirror").checked); }

document.querySelectorAll("input[name=mode]").forEach((e) => e.addEventListener("change", settings));
$("gap").addEventListener("change", settings);
$("mirror").addEventListener("change", mirror);
$("replay").addEventListener("click", () => ws.send(JSON.stringify({type: "play"})));
$("record").addEventListener("click", () => ws.send(JSON.stringify(
  {type: "record", sign: $("sign").value, participant: $("participant").value, armed: !armed})));
$("hold").addEventListener("pointerdown", () => key(true));
$("hold").addEventListener("pointerup", () => key(false));
$("hold").addEventListener("pointerleave", () => key(false));
const typing = (e) => e.target instanceof HTMLInputElement && e.target.type !== "radio" && e.target.type !== "checkbox";
document.addEventListener("keydown", (e) => { if (e.code === "Space" && !typing(e)) { e.preventDefault(); if (!e.repeat) key(true); } });
document.addEventListener("keyup", (e) => { if (e.code === "Space" && !typing(e)) { e.preventDefault(); key(false); } });
connect();
