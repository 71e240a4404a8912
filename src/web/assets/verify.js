// Verifies a certificate in the browser, without trusting the page's text
// about it: the Ed25519 signature over the certificate body against the
// pinned service key (WebCrypto), and the log entry's hash recomputed from
// the entry shown, compared with the hash the certificate signed.
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const b64 = (s) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
  const hex = (buf) => Array.from(new Uint8Array(buf), (x) => x.toString(16).padStart(2, "0")).join("");
  const utf8 = (s) => new TextEncoder().encode(s);
  function show(id, ok, text) {
    const el = $(id);
    el.textContent = text;
    el.className = ok ? "ok" : "bad";
  }
  async function entryHash(d, body) {
    const pre = d.hashVersion === "1"
      ? d.prevHash + "\n" + body
      : "lethe-log/2\n" + d.tenant + "\n" + d.seq + "\n" + d.kind + "\n" + d.job + "\n" + d.subjectHash + "\n" +
        d.createdAt + "\n" + d.prevHash + "\n" + body;
    return hex(await crypto.subtle.digest("SHA-256", utf8(pre)));
  }
  async function run() {
    const data = $("verify-data");
    if (!data) return;
    const d = data.dataset;
    const certBody = $("cert-body").textContent;
    let sigOk = false;
    try {
      const key = await crypto.subtle.importKey("raw", b64(d.pinnedKey), { name: "Ed25519" }, false, ["verify"]);
      sigOk = await crypto.subtle.verify({ name: "Ed25519" }, key, b64(d.signature), utf8(certBody));
    } catch (e) {
      show("sig-status", false, "could not verify: " + e);
    }
    if ($("sig-status").textContent === "checking…") {
      show("sig-status", sigOk, sigOk ? "valid: signed by the pinned service key" : "INVALID: the signature does not match the pinned key");
    }
    let cert = {};
    try { cert = JSON.parse(certBody); } catch (e) { /* an unreadable body fails below */ }
    const h = await entryHash(d, $("entry-body").textContent);
    const entryOk = h === d.entryHash && cert.log_entry_hash === h && String(cert.log_seq) === d.seq;
    show("entry-status", entryOk, entryOk
      ? "valid: the entry hashes to " + h + ", the hash the certificate signed"
      : "INVALID: the entry hashes to " + h + ", the certificate signed " + cert.log_entry_hash);
    const ok = sigOk && entryOk;
    show("verdict", ok, ok ? "valid" : "invalid");
  }
  document.addEventListener("DOMContentLoaded", () => { run(); });
})();
