/* STQ dashboard, shared core: text-only DOM helpers, formatting, the API client.
 *
 * Loaded first; the views and the shell use ``StqCore``. Data from the server only
 * ever becomes text nodes: there is no innerHTML anywhere in the dashboard.
 */
'use strict';

const StqCore = (() => {
  const API = '/api/v1';
  const TOKEN_KEY = 'stq.token';
  const STATES = ['todo', 'in_process', 'completed', 'failed'];
  const LABEL = { todo: 'To Do', in_process: 'In Process', completed: 'Completed', failed: 'Failed' };
  /** Figures the tests read: bytes and time per refresh, time to the first render. */
  const stats = (window.stqStats = { refreshes: 0, lastRefreshBytes: 0, maxRefreshBytes: 0, lastRefreshMs: 0, firstRenderMs: null });
  /** Response bytes read since the shell last reset it (one refresh). */
  const meter = { bytes: 0 };

  // --- DOM helpers: text only ---------------------------------------------------

  function h(tag, attrs, ...kids) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
      else if (k === 'dataset') Object.assign(el.dataset, v);
      else el.setAttribute(k, v === true ? '' : String(v));
    }
    for (const kid of kids.flat()) {
      if (kid === null || kid === undefined || kid === false) continue;
      el.appendChild(kid instanceof Node ? kid : document.createTextNode(String(kid)));
    }
    return el;
  }

  const $ = (sel) => document.querySelector(sel);

  /** Replace ``el``'s children only when ``sig`` changed: no needless DOM churn. */
  function patch(el, sig, build) {
    if (el.dataset.sig === sig) return;
    el.dataset.sig = sig;
    el.replaceChildren(...[build()].flat().filter((k) => k !== null && k !== undefined && k !== false));
  }

  /** Keep a tbody's rows keyed by ``key``; rebuild a row only when its cells changed. */
  function syncRows(tbody, items, key, cells) {
    const old = new Map([...tbody.children].map((tr) => [tr.dataset.key, tr]));
    let prev = null;
    for (const item of items) {
      const k = key(item);
      const values = cells(item);
      const sig = values.map((v) => (v instanceof Element ? v.outerHTML : String(v))).join('\u0000');
      let tr = old.get(k);
      if (!tr || tr.dataset.sig !== sig) {
        const tip = (v) => (typeof v === 'string' && v.length > 24 ? { title: v } : {});
        const fresh = h('tr', { dataset: { key: k, sig } }, values.map((v) => h('td', tip(v), v)));
        if (tr) tr.replaceWith(fresh);
        tr = fresh;
      }
      old.delete(k);
      const want = prev ? prev.nextSibling : tbody.firstChild;
      if (want !== tr) tbody.insertBefore(tr, want);
      prev = tr;
    }
    for (const tr of old.values()) tr.remove();
  }

  // --- time and numbers ---------------------------------------------------------

  function ms(t) {
    if (t === null || t === undefined || t === '') return null;
    if (typeof t === 'number') return t < 1e12 ? t * 1000 : t;
    const v = Date.parse(t);
    return Number.isNaN(v) ? null : v;
  }

  function seconds(d) {
    if (d === null || d === undefined) return null;
    if (typeof d === 'number') return d;
    const m = /^\s*(?:(\d+)h)?\s*(?:(\d+)m)?\s*(?:(\d+)s)?\s*$/.exec(String(d));
    if (/^\s*\d+(\.\d+)?\s*$/.test(String(d))) return Number(d);
    return m ? (+m[1] || 0) * 3600 + (+m[2] || 0) * 60 + (+m[3] || 0) : null;
  }

  function fmtDuration(s) {
    if (s === null || s === undefined || !Number.isFinite(s)) return '';
    s = Math.max(0, Math.round(s));
    if (s < 60) return `${s}s`;
    if (s < 3600) return `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, '0')}s`;
    return `${Math.floor(s / 3600)}h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
  }

  function fmtTime(t) {
    const v = ms(t);
    if (v === null) return '';
    const d = new Date(v);
    const time = d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false });
    if (new Date().toDateString() === d.toDateString()) return time;
    return `${d.toISOString().slice(0, 10)} ${time}`;
  }

  function timeCell(t) {
    const v = ms(t);
    return v === null ? '' : h('time', { datetime: new Date(v).toISOString(), title: new Date(v).toISOString() }, fmtTime(t));
  }

  function fmtCommand(c) {
    if (Array.isArray(c)) return c.map((a) => (/^[\w./=:,@+-]+$/.test(a) ? a : JSON.stringify(a))).join(' ');
    return c === null || c === undefined ? '' : String(c);
  }

  // --- the API --------------------------------------------------------------------

  class Unauthorized extends Error {}
  class Unreachable extends Error {}
  class ApiError extends Error {
    constructor(message, status) {
      super(message);
      this.status = status;
    }
  }

  let token = sessionStorage.getItem(TOKEN_KEY);

  /** Keep the token for this tab only, or forget it with null. */
  function setToken(value) {
    token = value || null;
    if (token) sessionStorage.setItem(TOKEN_KEY, token);
    else sessionStorage.removeItem(TOKEN_KEY);
  }

  /** Whether a token can go in a header: the browser refuses any other character unsent. */
  const sendable = (value) => /^[\x20-\x7e\xa0-\xff]*$/.test(value);

  async function call(path, { method = 'GET', as = 'json' } = {}) {
    const headers = { Accept: as === 'json' ? 'application/json' : 'text/plain' };
    if (token && !sendable(token)) throw new Unauthorized(); // ask again, not "unreachable"
    if (token) headers.Authorization = `Bearer ${token}`;
    let resp;
    try {
      resp = await fetch(API + path, { method, headers, cache: 'no-store' });
    } catch (ex) {
      throw new Unreachable(String(ex));
    }
    const body = await resp.text().catch(() => '');
    meter.bytes += body.length;
    if (resp.status === 401) throw new Unauthorized();
    if (resp.status >= 502 && resp.status <= 504) throw new Unreachable(`HTTP ${resp.status}`);
    if (!resp.ok) {
      let msg = `HTTP ${resp.status}`;
      try { msg = JSON.parse(body).error.message || msg; } catch (_) { /* not our error body */ }
      throw new ApiError(msg, resp.status);
    }
    if (as !== 'json') return body;
    return body ? JSON.parse(body) : null;
  }

  // --- shared pieces --------------------------------------------------------------

  function badge(st, text) {
    return h('span', { class: `badge state-${st}` }, text || LABEL[st] || st);
  }

  function progressBar(counts) {
    const total = STATES.reduce((a, s) => a + (counts[s] || 0), 0) || 1;
    const order = ['completed', 'failed', 'in_process', 'todo'];
    return h('div', { class: 'progress', role: 'img', 'aria-label': order.map((s) => `${LABEL[s]} ${counts[s] || 0}`).join(', ') },
      order.filter((s) => counts[s]).map((s) => h('span', { class: `seg state-${s}`, style: `width:${(100 * counts[s]) / total}%` })));
  }

  function countsText(counts) {
    const total = STATES.reduce((a, s) => a + (counts[s] || 0), 0);
    return h('span', { class: 'counts' },
      h('b', {}, `${counts.completed || 0}/${total}`), ' done',
      counts.in_process ? h('span', { class: 'c-in_process' }, ` · ${counts.in_process} running`) : null,
      counts.failed ? h('span', { class: 'c-failed' }, ` · ${counts.failed} failed`) : null);
  }

  /**
   * Why a ``todo`` task waits (its ``waiting_for``), as the words that follow
   * "Waiting for": text and nodes. ``dep`` makes each dependency's name (a link
   * where the caller knows its id); null when the task is not waiting.
   */
  function waitingFor(w, dep = (name) => name) {
    if (!w) return null;
    if (w.kind === 'dependencies') {
      const names = (w.tasks || []).flatMap((name, i) => (i ? [', ', dep(name)] : [dep(name)]));
      return ['dependencies', names.length ? ': ' : '', ...names, w.more ? ` (and ${w.more} more)` : ''];
    }
    if (w.kind === 'retry_delay') return ['its retry delay, until ', timeCell(w.until)];
    if (w.kind === 'labels') {
      return [`a runner with labels ${(w.labels || []).join(', ')}: no runner seen in the last 10 minutes has them all`];
    }
    if (w.kind === 'runner') return ['a free runner'];
    return [String(w.kind)];
  }

  /** ``waitingFor`` as plain text, for a table cell or a tooltip. */
  function waitingText(w) {
    const parts = waitingFor(w);
    return parts ? parts.map((p) => (p instanceof Node ? p.textContent : p)).join('') : '';
  }

  function elapsed(wf, now) {
    const start = ms(wf.created);
    if (start === null) return null;
    const end = wf.state === 'running' ? now : ms(wf.finished) || now;
    return (end - start) / 1000;
  }
  let flashTimer = null;

  function flash(text) {
    const el = $('#flash');
    el.textContent = text;
    el.hidden = false;
    clearTimeout(flashTimer); // the message stays 6 s after its last showing, without flicker
    flashTimer = setTimeout(() => { el.hidden = true; }, 6000);
  }

  return {
    STATES, LABEL, stats, meter, h, $, patch, syncRows, ms, seconds, fmtDuration, fmtTime, timeCell,
    fmtCommand, Unauthorized, Unreachable, ApiError, call, setToken, sendable, hasToken: () => Boolean(token),
    badge, progressBar, countsText, waitingFor, waitingText, elapsed, flash,
  };
})();
