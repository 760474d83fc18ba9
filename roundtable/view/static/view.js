// roundtable viewer: live updates and replay for a run page. The page is complete
// without this script; it only adds. Fragments come escaped from the server, and
// everything else is set with textContent.
"use strict";
(function () {
  const items = document.getElementById("items");
  if (!items) return;

  // Parse a server-rendered fragment into nodes without running anything in it.
  function nodes(html) {
    const t = document.createElement("template");
    t.innerHTML = html;
    return t.content;
  }

  function setText(id, value) {
    const el = document.getElementById(id);
    if (el) el.textContent = String(value);
  }

  // ----- live: follow the transcript through server-sent events -----
  function follow() {
    if (items.dataset.live !== "true" || !window.EventSource) return;
    const url = items.dataset.events + "?offset=" + encodeURIComponent(items.dataset.offset || "0");
    const source = new EventSource(url);
    source.addEventListener("items", function (e) {
      const data = JSON.parse(e.data);
      for (const it of data.items) {
        if (document.getElementById(it.id)) continue;  // already shown (a reconnect)
        const frag = nodes(it.html);
        const el = frag.firstElementChild;
        const before = it.before && document.getElementById(it.before);
        if (before && before.parentNode === items) items.insertBefore(frag, before);
        else items.appendChild(frag);
        if (el) {
          el.classList.add("fresh");
          if (replay.running) el.classList.add("replay-hidden");
        }
      }
      setText("turn-count", data.turns);
      setText("token-count", data.tokens);
      const jump = document.getElementById("jump");
      if (jump) jump.max = String(Math.max(1, data.turns));
      if (data.new_turn && !replay.running && nearBottom()) {
        window.scrollTo({ top: document.body.scrollHeight, behavior: "smooth" });
      }
    });
    source.addEventListener("end", function (e) {
      const data = JSON.parse(e.data);
      const status = document.getElementById("status");
      if (status) {
        status.textContent = String(data.status);
        status.className = "status status-" + String(data.status).replace(/[^a-z_-]/gi, "");
      }
      const note = document.getElementById("live-note");
      if (note) note.remove();
      source.close();
    });
  }

  function nearBottom() {
    return window.innerHeight + window.scrollY >= document.body.scrollHeight - 400;
  }

  // ----- replay: show the items one by one at a chosen speed; jump to a turn -----
  const replay = { running: false, timer: null, next: 0 };

  function all() { return Array.from(items.querySelectorAll(":scope > .item")); }

  function step() {
    const list = all();
    if (replay.next >= list.length) { stop(); return; }
    const el = list[replay.next++];
    el.classList.remove("replay-hidden");
    el.scrollIntoView({ block: "nearest", behavior: "smooth" });
    const speed = parseFloat(document.getElementById("speed").value) || 1;
    replay.timer = window.setTimeout(step, 1000 / speed);
  }

  function play() {
    window.clearTimeout(replay.timer);
    for (const el of all()) el.classList.add("replay-hidden");
    replay.running = true;
    replay.next = 0;
    document.getElementById("show-all").hidden = false;
    window.scrollTo({ top: 0 });
    step();
  }

  function stop() {
    window.clearTimeout(replay.timer);
    replay.running = false;
    for (const el of all()) el.classList.remove("replay-hidden");
    document.getElementById("show-all").hidden = true;
  }

  function jump() {
    const n = parseInt(document.getElementById("jump").value, 10);
    const target = items.querySelector('.turn[data-turn="' + String(n) + '"]');
    const note = document.getElementById("jump-note");
    let last = 0;
    items.querySelectorAll(".turn[data-turn]").forEach(function (t) {
      last = Math.max(last, parseInt(t.dataset.turn, 10) || 0);
    });
    // Say why nothing moved rather than ignore the click.
    note.textContent = target ? "" : (last ? "no turn " + (isNaN(n) ? "there" : n) +
      "; the last is turn " + last : "no turns yet");
    if (!target) return;
    if (replay.running) {
      const list = all();
      const at = list.indexOf(target);
      for (let i = 0; i <= at; i++) list[i].classList.remove("replay-hidden");
      replay.next = at + 1;
    }
    target.scrollIntoView({ block: "center" });
    const facts = target.querySelector("details.facts");
    if (facts) facts.open = true;
    target.classList.add("flash");
    window.setTimeout(function () { target.classList.remove("flash"); }, 1500);
  }

  const controls = document.getElementById("replay");
  if (controls) {
    controls.hidden = false;
    document.getElementById("play").addEventListener("click", play);
    document.getElementById("show-all").addEventListener("click", stop);
    document.getElementById("go").addEventListener("click", jump);
    document.getElementById("jump").addEventListener("keydown", function (e) {
      if (e.key === "Enter") jump();
    });
  }
  follow();
})();
