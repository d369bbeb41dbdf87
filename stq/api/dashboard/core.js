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
  /** The one display form of every state the dashboard shows: tasks, workflows, attempts, runners. */
  const LABEL = {
    todo: 'To Do', in_process: 'In Process', completed: 'Completed', failed: 'Failed',
    running: 'Running', timed_out: 'Timed out', idle: 'Idle', busy: 'Busy', gone: 'Gone', skipped: 'Skipped',
  };
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

  /** A task's declared ``duration`` (its limit); a limit under a second keeps its fraction. */
  function fmtLimit(task) {
    const s = seconds(task.duration);
    if (!s) return '';
    return s < 1 ? `${s}s` : fmtDuration(s);
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

  /**
   * One API call with the token. ``as``: 'json' (the default), 'text' (the body), or
   * 'raw' (``{text, headers}``, for answers whose headers say something, like output's).
   */
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
    if (as === 'raw') return { text: body, headers: resp.headers };
    if (as !== 'json') return body;
    return body ? JSON.parse(body) : null;
  }

  // --- shared pieces --------------------------------------------------------------

  /** A state as every table and badge writes it ("Completed", "Timed out"). */
  function stateLabel(st) {
    if (LABEL[st]) return LABEL[st];
    const words = humanize(st);
    return words.charAt(0).toUpperCase() + words.slice(1);
  }

  /** A machine word as words: ``duration_exceeded`` -> "duration exceeded". */
  function humanize(word) {
    return word === null || word === undefined ? '' : String(word).replaceAll('_', ' ');
  }

  function badge(st, text) {
    return h('span', { class: `badge state-${st}` }, text || stateLabel(st));
  }

  /**
   * Progress by one rule everywhere: done means terminal (completed or failed) out of
   * all tasks, so a finished workflow reads "11/11 done" and says apart how many failed.
   * ``counts.skipped``, where the caller knows it (from the tasks: the API's counts have
   * no such state), is the part of ``completed`` that never ran.
   */
  function progress(counts) {
    const n = (s) => counts[s] || 0;
    const total = STATES.reduce((a, s) => a + n(s), 0);
    return {
      total, done: n('completed') + n('failed'), failed: n('failed'), skipped: n('skipped'), running: n('in_process'),
    };
  }

  /** ``progress`` in words: "11/11 done · 4 failed · 1 skipped · 2 running" (zeros left out). */
  function progressText(counts, withRunning = true) {
    const p = progress(counts);
    const running = withRunning && p.running ? `${p.running} running` : null;
    return [`${p.done}/${p.total} done`, p.failed ? `${p.failed} failed` : null,
      p.skipped ? `${p.skipped} skipped` : null, running].filter(Boolean).join(' · ');
  }

  /** The filled parts of a progress bar, in order: [look, share of all tasks]. */
  function barParts(counts) {
    const { total, skipped, failed } = progress(counts);
    const ran = (counts.completed || 0) - skipped;
    return [['completed', ran], ['skipped', skipped], ['failed', failed]]
      .filter(([, n]) => n > 0).map(([look, n]) => [look, n / (total || 1)]);
  }

  /** A bar filled by the terminal tasks: completed green, skipped pale green, then failed red. */
  function progressBar(counts) {
    return h('div', { class: 'progress', role: 'img', 'aria-label': progressText(counts) },
      barParts(counts).map(([look, share]) => h('span', { class: `seg state-${look}`, style: `width:${100 * share}%` })));
  }

  function countsText(counts) {
    const p = progress(counts);
    return h('span', { class: 'counts' },
      h('b', {}, `${p.done}/${p.total}`), ' done',
      p.failed ? h('span', { class: 'c-failed' }, ` · ${p.failed} failed`) : null,
      p.skipped ? h('span', { class: 'c-skipped' }, ` · ${p.skipped} skipped`) : null,
      p.running ? h('span', { class: 'c-in_process' }, ` · ${p.running} running`) : null);
  }

  // --- what a task declares: skipped, run_if, description, matrix -----------------

  /** A task that completed without running: ``on_failure``, and every dependency completed. */
  function isSkipped(task) {
    return task.state === 'completed' && task.reason === 'skipped';
  }

  /** What a task is drawn as: its state, or ``skipped`` (completed, but never ran). */
  function taskLook(task) {
    return isSkipped(task) ? 'skipped' : task.state;
  }

  /** ``counts`` with ``skipped`` counted from ``tasks`` (the API's counts fold it into completed). */
  function withSkipped(counts, tasks) {
    return { ...counts, skipped: tasks.filter(isSkipped).length };
  }

  /** When a task runs, in words; '' for the default (``on_success``, or an older server's none). */
  function runIfText(task) {
    if (task.run_if === 'on_failure') return 'runs on failure';
    if (task.run_if === 'always') return 'always runs';
    return task.run_if && task.run_if !== 'on_success' ? `runs ${humanize(task.run_if)}` : '';
  }

  /** An expansion's matrix values as "PY=311 OS=linux"; '' for a task written as itself. */
  function matrixText(task) {
    return task.matrix ? Object.entries(task.matrix).map(([k, v]) => `${k}=${v}`).join(' ') : '';
  }

  /** Params (or env) as "K=V" chips, in the order given, a space apart (so they copy as such). */
  function pairs(mapping) {
    return Object.entries(mapping || {}).flatMap(([k, v], i) => [i ? ' ' : null, h('code', { class: 'pair' }, `${k}=${v}`)]);
  }

  /**
   * A task's attempts: ``round`` of this round's ``budget`` (``max_attempts``, fresh at each
   * retry) and ``total`` of all rounds, as the server counts them (an older server that
   * does not count rounds has them all counted as this round's).
   */
  function attemptCounts(task) {
    const budget = task.max_attempts || 1;
    const total = task.attempts_used || 0;
    const round = task.attempts_this_round ?? total;
    return { round, budget, total };
  }

  /** "1 of 1 this round, 2 in all"; "1 of 3" while all attempts are of this round. */
  function attemptsText(task, short = false) {
    const { round, budget, total } = attemptCounts(task);
    if (round === total) return `${round} of ${budget}`;
    return short ? `${round} of ${budget} · ${total} in all` : `${round} of ${budget} this round, ${total} in all`;
  }

  /** Why an attempt failed: its reason in words, with its exit code when the reason omits it. */
  function attemptReason(a) {
    const why = humanize(a.reason);
    if (a.status === 'completed' || a.status === 'running') return why;
    if (a.exit_code === null || a.exit_code === undefined || /exit code/.test(why)) return why;
    return why ? `${why} (exit code ${a.exit_code})` : `exit code ${a.exit_code}`;
  }

  /**
   * Why a failed task failed: its own reason (upstream failed, cancelled), else
   * its latest attempt's; '' when neither is known (a listed task carries no attempts).
   */
  function failureReason(task) {
    if (task.reason) return humanize(task.reason);
    const attempts = task.attempts || [];
    if (!attempts.length) return '';
    return attemptReason(attempts.reduce((a, b) => (b.number > a.number ? b : a)));
  }

  /**
   * How long the task's latest attempt ran, or has run so far; null when unknown. From
   * the attempts when the task carries them; a listed task has only ``started`` (its
   * latest attempt's) and ``finished`` (when the task ended), which match only while it
   * runs or when its own attempt ended it (a task reason means no attempt did).
   */
  function ranSeconds(task, now) {
    if (task.attempts && task.attempts.length) {
      const a = task.attempts.reduce((x, y) => (y.number > x.number ? y : x));
      const end = a.status === 'running' ? now : ms(a.finished);
      return ms(a.started) === null || end === null ? null : (end - ms(a.started)) / 1000;
    }
    const start = ms(task.started);
    if (start === null) return null;
    if (task.state === 'in_process') return (now - start) / 1000;
    const ownEnd = task.state === 'completed' || (task.state === 'failed' && !task.reason);
    return ownEnd && ms(task.finished) !== null ? (ms(task.finished) - start) / 1000 : null;
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

  /**
   * A running workflow's time left, "~2m 16s": the server's ``time_left`` (one estimate
   * for every view and the command line), '' when it has none or was not read with it.
   */
  function timeLeftText(wf) {
    if (wf.state !== 'running' || typeof wf.time_left !== 'number') return '';
    return `~${fmtDuration(wf.time_left)}`;
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
    STATES, LABEL, stats, meter, h, $, patch, syncRows, ms, seconds, fmtDuration, fmtLimit, fmtTime, timeCell,
    fmtCommand, Unauthorized, Unreachable, ApiError, call, setToken, sendable, hasToken: () => Boolean(token),
    stateLabel, humanize, badge, progress, progressText, barParts, progressBar, countsText, isSkipped, taskLook,
    withSkipped, runIfText, matrixText, pairs, attemptCounts, attemptsText, attemptReason, failureReason,
    ranSeconds, waitingFor, waitingText, timeLeftText, elapsed, flash,
  };
})();
