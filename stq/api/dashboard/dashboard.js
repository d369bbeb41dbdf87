/* STQ dashboard shell: hash routing, the 2 s refresh loop, the banner, the token prompt.
 *
 * Routes: #/ (workflows), #/workflows/ID, #/tasks/ID, #/runners. A refresh never overlaps the
 * previous one; a 401 stops the loop and shows only the token prompt; a network
 * error keeps the last data on screen under a banner.
 */
'use strict';

(() => {
  const {
    $, h, stats, meter, fmtTime, Unauthorized, Unreachable, ApiError, setToken, sendable, hasToken, flash,
  } = StqCore;
  const REFRESH_MS = 2000;

  let view = null;
  let timer = null;
  let running = null;
  let again = false;
  let lastContact = null;

  function route() {
    const hash = location.hash.replace(/^#\/?/, '');
    const [kind, ...rest] = hash.split('/');
    const id = decodeURIComponent(rest.join('/'));
    const ctx = { refresh: tick };
    markNav(kind === 'runners' ? 'runners' : 'workflows');
    if (kind === 'workflows' && id) return StqWorkflows.workflowView(id, ctx);
    if (kind === 'tasks' && id) return StqTask.taskView(id, ctx);
    if (kind === 'runners') return StqRunners.runnersView(ctx);
    return StqWorkflows.workflowsView(ctx);
  }

  /** Mark the header link of the section shown (a workflow and a task are under Workflows). */
  function markNav(section) {
    for (const a of document.querySelectorAll('nav.views a')) {
      if (a.dataset.view === section) a.setAttribute('aria-current', 'page');
      else a.removeAttribute('aria-current');
    }
  }

  function show() {
    view = route();
    document.title = `${view.title} · STQ`;
    $('#main').replaceChildren(view.root);
    window.scrollTo(0, 0);
    $('#main').setAttribute('aria-busy', 'true');
    tick();
  }

  function banner(text) {
    const el = $('#banner');
    el.hidden = !text;
    if (text && el.textContent !== text) el.textContent = text;
  }

  async function tick() {
    clearTimeout(timer);
    if (running) { again = true; return running; }
    const current = view;
    if (document.hidden && lastContact) { // a hidden tab waits; visibilitychange wakes it
      timer = setTimeout(tick, REFRESH_MS);
      return null;
    }
    running = (async () => {
      meter.bytes = 0;
      const t0 = performance.now();
      try {
        await current.refresh();
        lastContact = new Date();
        banner('');
        $('#login').hidden = true;
        $('#app').hidden = false;
        $('#main').removeAttribute('aria-busy');
        $('#updated').textContent = `updated ${fmtTime(lastContact.toISOString())}`;
        $('#forget').hidden = !hasToken();
        stats.refreshes += 1;
        stats.lastRefreshBytes = meter.bytes;
        stats.maxRefreshBytes = Math.max(stats.maxRefreshBytes, meter.bytes);
        stats.lastRefreshMs = performance.now() - t0;
      } catch (ex) {
        if (ex instanceof Unauthorized) { askToken(); return; }
        if (current === view) failed(ex, current); // else the page moved on (e.g. deleted from it)
      } finally {
        running = null;
      }
      if (again) { again = false; tick(); } else if (current === view && !current.gone) timer = setTimeout(tick, REFRESH_MS);
    })();
    return running;
  }

  /** Say why a refresh of the view on screen failed: offline banner, gone page, or a flash. */
  function failed(ex, current) {
    if (ex instanceof Unreachable) {
      banner(`Cannot reach the STQ server at ${location.origin}. Retrying every ${REFRESH_MS / 1000} s` +
        (lastContact ? ` (last contact ${fmtTime(lastContact.toISOString())}).` : '.'));
    } else if (ex instanceof ApiError && ex.status === 404) { // deleted, or a mistyped link
      banner('');
      current.gone = true; // nothing left to refresh: its old content must not stay up
      $('#main').replaceChildren(h('p', { class: 'none gone' },
        `${ex.message} It may have been deleted. `, h('a', { href: '#/' }, 'All workflows')));
      $('#main').removeAttribute('aria-busy');
    } else {
      banner('');
      flash(ex.message);
    }
  }

  const REFUSED = 'That token was refused. Try again.';

  function askToken(message = REFUSED) {
    $('#app').hidden = true;
    $('#login').hidden = false;
    $('#login-error').textContent = message;
    $('#login-error').hidden = !hasToken();
    const input = $('#token');
    input.value = '';
    input.focus();
  }

  function init() {
    $('#login').addEventListener('submit', (ev) => {
      ev.preventDefault();
      const value = $('#token').value.trim();
      if (!value) return;
      setToken(value);
      if (!sendable(value)) {
        askToken('A token has only letters, digits and the like (ASCII or Latin-1): check what was pasted.');
        return;
      }
      $('#login').hidden = true;
      tick();
    });
    $('#forget').addEventListener('click', () => { setToken(null); tick(); });
    window.addEventListener('hashchange', show);
    document.addEventListener('visibilitychange', () => { if (!document.hidden) tick(); });
    show();
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
  else init();
})();
