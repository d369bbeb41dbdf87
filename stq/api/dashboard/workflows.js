/* STQ dashboard: the workflows list and one workflow (graph, four lists, actions).
 *
 * Each view is ``{root, refresh()}``: the shell mounts ``root`` once and calls
 * ``refresh`` every 2 s; refresh patches rows and nodes in place.
 */
'use strict';

const StqWorkflows = (() => {
  const {
    STATES, LABEL, stats, h, patch, syncRows, fmtDuration, fmtLimit, timeCell, fmtCommand,
    ApiError, call, stateLabel, badge, progress, progressBar, countsText, isSkipped, withSkipped, runIfText,
    matrixText, pairs, attemptsText, failureReason, ranSeconds, waitingText, timeLeftText, elapsed, flash,
  } = StqCore;
  const LIST_PAGE = 50;
  const TABLE_PAGE = 200;
  /** At most this many failed tasks are read per refresh to learn why they failed. */
  const REASON_READS = 20;
  /** Workflow states that can be deleted. */
  const TERMINAL = ['completed', 'failed'];
  /** Characters of a description a task list shows; its tooltip has the whole text. */
  const DESCRIPTION_SHOWN = 160;
  /** Past this many tasks a refresh asks only for what can still change. */
  const INCREMENTAL_FROM = 300;
  /** ...and re-reads the whole workflow every this many refreshes all the same. */
  const FULL_EVERY = 15;

  /** Running workflows whose time left the list reads, at most, per refresh. */
  const LIST_ESTIMATES = 10;

  /**
   * Time left for the list's running workflows. The list answer carries no tasks, so no
   * estimate: the list reads each running workflow's own answer (its ``time_left``) as its
   * page does, each refresh under INCREMENTAL_FROM tasks and every FULL_EVERY refreshes
   * past that, at most LIST_ESTIMATES per refresh (those read longest ago first).
   */
  class ListEstimates {
    constructor() {
      this.known = new Map(); // workflow id -> {timeLeft, round}
      this.round = 0;
    }

    due(w) {
      const seen = this.known.get(w.id);
      if (!seen) return true;
      return progress(w.counts || {}).total < INCREMENTAL_FROM || this.round - seen.round >= FULL_EVERY;
    }

    async load(rows) {
      this.round += 1;
      const readAt = (w) => this.known.get(w.id)?.round ?? -1;
      const wanted = rows.filter((w) => w.state === 'running' && this.due(w))
        .sort((a, b) => readAt(a) - readAt(b)).slice(0, LIST_ESTIMATES);
      await Promise.all(wanted.map(async (w) => {
        try {
          const read = await call(`/workflows/${encodeURIComponent(w.id)}`);
          this.known.set(w.id, { timeLeft: read.time_left, round: this.round });
        } catch (ex) {
          if (!(ex instanceof ApiError)) throw ex; // deleted meanwhile: the list drops it
        }
      }));
    }

    text(w) {
      const seen = this.known.get(w.id);
      return seen ? timeLeftText({ state: w.state, time_left: seen.timeLeft }) : '';
    }
  }

  // --- workflows view ---------------------------------------------------------------

  function workflowsView(ctx) {
    let limit = LIST_PAGE;
    let filter = sessionStorage.getItem('stq.filter') || 'all';
    let rows = [];
    const estimates = new ListEstimates();
    const tbody = h('tbody');
    const empty = h('p', { class: 'empty', hidden: true }, 'No workflows yet. Submit one with: stq submit FILE');
    const more = h('button', { class: 'more', hidden: true, onclick: () => { limit += LIST_PAGE; ctx.refresh(); } }, 'Show older workflows');
    const filters = h('div', { class: 'filters', role: 'group', 'aria-label': 'Filter by state' },
      ['all', 'running', 'completed', 'failed'].map((f) => h('button', {
        class: 'filter', dataset: { filter: f }, 'aria-pressed': String(f === filter),
        onclick: () => { filter = f; sessionStorage.setItem('stq.filter', f); render(); },
      }, f[0].toUpperCase() + f.slice(1))));
    const root = h('section', { class: 'view workflows' },
      h('div', { class: 'view-head' }, h('h1', {}, 'Workflows'), filters),
      h('table', { class: 'list' },
        h('thead', {}, h('tr', {}, ['Workflow', 'State', 'Progress', 'Tasks', 'Started', 'Elapsed', 'Time left'].map((c) => h('th', {}, c)))),
        tbody),
      empty, more);

    const shownRows = () => rows.filter((w) => filter === 'all' || w.state === filter);

    function render() {
      const now = Date.now();
      for (const b of filters.children) b.setAttribute('aria-pressed', String(b.dataset.filter === filter));
      const shown = shownRows();
      syncRows(tbody, shown, (w) => w.id, (w) => [
        h('a', { href: `#/workflows/${encodeURIComponent(w.id)}`, class: 'wf-name' }, w.name),
        badge(w.state === 'running' ? 'in_process' : w.state, stateLabel(w.state)),
        progressBar(w.counts || {}),
        countsText(w.counts || {}),
        timeCell(w.created),
        fmtDuration(elapsed(w, now)),
        estimates.text(w),
      ]);
      empty.hidden = shown.length > 0;
      empty.textContent = rows.length ? `No ${filter} workflows.` : 'No workflows yet. Submit one with: stq submit FILE';
    }

    return {
      root,
      title: 'Workflows',
      async refresh() {
        const data = await call(`/workflows?limit=${limit}`);
        rows = data.workflows || [];
        more.hidden = rows.length < limit;
        await estimates.load(shownRows());
        render();
      },
    };
  }

  // --- workflow view -------------------------------------------------------------------

  /** Reads one workflow; past INCREMENTAL_FROM tasks, only what can still change. */
  /** Whether two workflows (or summaries) have the same state and counts per task state. */
  function sameCounts(a, b) {
    return a.state === b.state && STATES.every((s) => (a.counts || {})[s] === (b.counts || {})[s]);
  }

  class WorkflowSource {
    constructor(id) {
      this.id = id;
      this.wf = null;
      this.round = 0;
    }

    async read() {
      this.round += 1;
      const big = this.wf && this.wf.tasks.length >= INCREMENTAL_FROM;
      if (!big || this.round % FULL_EVERY === 0) return this.full();
      // The summary's counts say whether anything moved that the in-process list cannot
      // show (tasks that started and ended between two reads, a cancel, a retry from
      // elsewhere): then the whole workflow is read again. A deleted one answers 404 here.
      const summary = await call(`/workflows/${encodeURIComponent(this.id)}?tasks=false`);
      if (summary.state !== 'running') return sameCounts(summary, this.wf) ? this.wf : this.full();
      const running = await call(`/tasks?workflow=${encodeURIComponent(this.id)}&state=in_process`);
      const now = new Map((running.tasks || []).map((t) => [t.id, t]));
      const left = this.wf.tasks.filter((t) => t.state === 'in_process' && !now.has(t.id));
      if (left.length > 40) return this.full();
      const ended = await Promise.all(left.map((t) => call(`/tasks/${encodeURIComponent(t.id)}`)));
      if (ended.some((t) => t.state === 'failed')) return this.full(); // fan-out: re-read all
      for (const t of ended) now.set(t.id, t);
      this.wf.tasks = this.wf.tasks.map((t) => now.get(t.id) || t);
      this.recount();
      return sameCounts(summary, this.wf) ? this.wf : this.full();
    }

    async full() {
      this.wf = await call(`/workflows/${encodeURIComponent(this.id)}`);
      this.wf.tasks = this.wf.tasks || [];
      return this.wf;
    }

    recount() {
      const counts = { todo: 0, in_process: 0, completed: 0, failed: 0 };
      for (const t of this.wf.tasks) counts[t.state] += 1;
      this.wf.counts = counts;
      if (!counts.todo && !counts.in_process) this.round = FULL_EVERY - 1; // settle on a full read
    }
  }

  /**
   * Why each failed task failed, for the Failed list's Reason column. A listed task
   * carries no attempts, so a task that failed by its own attempts is read once (again
   * after a retry gave it more), a few per refresh.
   */
  class FailureReasons {
    constructor() {
      this.known = new Map();
    }

    static key(t) {
      return `${t.id}:${t.attempts_used}`;
    }

    /** Whether the reason of ``t`` needs its attempts read. */
    unknown(t) {
      return t.state === 'failed' && !t.reason && !t.attempts && !this.known.has(FailureReasons.key(t));
    }

    async load(tasks) {
      const wanted = tasks.filter((t) => this.unknown(t)).slice(0, REASON_READS);
      await Promise.all(wanted.map(async (t) => {
        try {
          this.known.set(FailureReasons.key(t), failureReason(await call(`/tasks/${encodeURIComponent(t.id)}`)));
        } catch (ex) {
          if (!(ex instanceof ApiError)) throw ex; // gone meanwhile: the next full read says so
        }
      }));
    }

    text(t) {
      return failureReason(t) || this.known.get(FailureReasons.key(t)) || '';
    }
  }

  /** The To Do list's short "Waiting for" cell; the whole sentence is its tooltip. */
  function waitingCell(w) {
    const text = waitingText(w);
    return text ? h('span', { class: 'waiting', title: `Waiting for ${text}` }, text) : '';
  }

  /**
   * A list's Task cell: the name (a link), a Skipped badge and when it runs if not on
   * success; under it the description (cut short, whole in its tooltip) and, for an
   * expansion of a matrix task, that task's name and the values.
   */
  function taskCell(t) {
    const desc = t.description || '';
    const cut = desc.length > DESCRIPTION_SHOWN ? `${desc.slice(0, DESCRIPTION_SHOWN - 1)}…` : desc;
    const matrix = matrixText(t);
    const runIf = runIfText(t);
    return h('span', { class: 'task-cell' },
      h('span', { class: 'line' }, h('a', { href: `#/tasks/${encodeURIComponent(t.id)}` }, t.name),
        isSkipped(t) ? badge('skipped') : null,
        runIf ? h('span', { class: 'run-if', title: `This task ${runIf}.` }, runIf) : null),
      desc ? h('span', { class: 'line task-desc', title: desc }, cut) : null,
      matrix ? h('span', { class: 'line task-matrix', title: `Matrix task ${t.matrix_of || ''}: ${matrix}` },
        t.matrix_of ? `${t.matrix_of} · ` : '', matrix) : null);
  }

  function taskTable(st, reasons) {
    const cols = ['Task', 'Created', 'Started', 'Command', 'Limit', 'Ran', 'Depends on', 'Attempts', 'Runner'];
    if (st === 'failed') cols.push('Reason');
    if (st === 'todo') cols.push('Waiting for');
    const tbody = h('tbody');
    const count = h('span', { class: 'n' }, '0');
    const skipped = h('span', { class: 'unrun', hidden: true });
    const more = h('button', { class: 'more', hidden: true }, '');
    const none = h('p', { class: 'none' }, 'None.');
    let cap = TABLE_PAGE;
    let last = [];
    const section = h('details', { class: `tasks state-${st}`, open: true, dataset: { state: st } },
      h('summary', {}, h('span', { class: `dot state-${st}` }), LABEL[st], ' ', count, skipped),
      none, h('div', { class: 'table-wrap' }, h('table', { class: 'list' }, h('thead', {}, h('tr', {}, cols.map((c) => h('th', {}, c)))), tbody)),
      more);
    more.addEventListener('click', () => { cap += 10 * TABLE_PAGE; update(last); });

    function update(tasks) {
      last = tasks;
      const now = Date.now();
      count.textContent = String(tasks.length);
      const unrun = tasks.filter(isSkipped).length;
      skipped.hidden = unrun === 0;
      skipped.textContent = unrun ? `(${unrun} skipped)` : '';
      none.hidden = tasks.length > 0;
      none.nextSibling.hidden = tasks.length === 0;
      more.hidden = tasks.length <= cap;
      more.textContent = `Show ${Math.min(tasks.length - cap, 10 * TABLE_PAGE)} more of ${tasks.length}`;
      syncRows(tbody, tasks.slice(0, cap), (t) => t.id, (t) => {
        const row = [
          taskCell(t),
          timeCell(t.created), timeCell(t.started),
          h('code', { title: fmtCommand(t.command) }, fmtCommand(t.command)),
          fmtLimit(t),
          fmtDuration(ranSeconds(t, now)),
          (t.depends_on || []).join(', '),
          h('span', { title: `Attempts: ${attemptsText(t)}` }, attemptsText(t, true)),
          t.runner || '',
        ];
        if (st === 'failed') row.push(reasons.text(t));
        if (st === 'todo') row.push(waitingCell(t.waiting_for));
        return row;
      });
    }
    return { section, update };
  }

  function confirmDialog(question, yes) {
    return new Promise((resolve) => {
      const dlg = h('dialog', { class: 'confirm' },
        h('p', {}, question),
        h('div', { class: 'actions' },
          h('button', { class: 'no', onclick: () => { dlg.close(); resolve(false); } }, 'Keep it'),
          h('button', { class: 'yes danger', onclick: () => { dlg.close(); resolve(true); } }, yes)));
      dlg.addEventListener('close', () => { dlg.remove(); resolve(false); });
      document.body.appendChild(dlg);
      dlg.showModal();
    });
  }

  function workflowView(id, ctx) {
    const source = new WorkflowSource(id);
    const title = h('h1', {}, '…');
    const stateBadge = h('span');
    const desc = h('p', { class: 'desc' });
    const params = h('p', { class: 'params', hidden: true });
    const summary = h('div', { class: 'summary' });
    const note = h('p', { class: 'note' });
    const graphBox = h('div', { class: 'graph' });
    const graph = new StqGraph.Graph(graphBox, (t) => { location.hash = `#/tasks/${encodeURIComponent(t.id)}`; });
    const collapse = h('button', { class: 'small', id: 'collapse', hidden: true, onclick: () => graph.collapseAll() }, 'Collapse groups');
    graph.onLayout = (g) => { collapse.hidden = g.expanded.size === 0; };
    const reasons = new FailureReasons();
    const tables = Object.fromEntries(STATES.map((s) => [s, taskTable(s, reasons)]));
    const action = (verb, question, yes) => async () => {
      if (!(await confirmDialog(question, yes))) return;
      try {
        await call(`/workflows/${encodeURIComponent(id)}/${verb}`, { method: 'POST' });
        source.round = FULL_EVERY - 1;
        await ctx.refresh();
      } catch (ex) {
        flash(ex instanceof ApiError ? ex.message : `Could not ${verb}: ${ex.message}`);
      }
    };
    const cancelBtn = h('button', { class: 'danger', id: 'cancel', onclick: action('cancel', 'Cancel this workflow? Every task not yet finished becomes Failed (cancelled).', 'Cancel workflow') }, 'Cancel workflow');
    const retryBtn = h('button', { id: 'retry', onclick: action('retry', 'Retry every failed task of this workflow (and the tasks that depend on them)?', 'Retry failed tasks') }, 'Retry failed');
    let deleted = false;
    const deleteBtn = h('button', { class: 'danger', id: 'delete', hidden: true, onclick: () => remove() }, 'Delete workflow');

    /** Forget the (finished) workflow, then back to the list; a refusal (409, 404) is shown. */
    async function remove() {
      const name = title.textContent;
      const question = `Delete workflow ${name}? Its tasks, their attempts and output are forgotten for good.`;
      if (!(await confirmDialog(question, 'Delete workflow'))) return;
      try {
        await call(`/workflows/${encodeURIComponent(id)}`, { method: 'DELETE' });
      } catch (ex) {
        flash(`Could not delete workflow ${name}: ${ex.message}`);
        source.round = FULL_EVERY - 1;
        await ctx.refresh();
        return;
      }
      deleted = true; // a refresh due before the list shows must not read it (404)
      flash(`Deleted workflow ${name}.`);
      location.hash = '#/';
    }
    const root = h('section', { class: 'view workflow' },
      h('nav', { class: 'crumbs' }, h('a', { href: '#/' }, '← Workflows')),
      h('div', { class: 'view-head' }, h('div', {}, title, stateBadge), h('div', { class: 'buttons' }, retryBtn, cancelBtn, deleteBtn)),
      desc, params, summary,
      h('h2', {}, 'Graph ', h('span', { class: 'legend' }, [...STATES, 'skipped'].map((s) => h('span', {}, h('span', { class: `dot state-${s}` }), stateLabel(s)))), collapse),
      note, graphBox,
      h('h2', {}, 'Tasks'),
      STATES.map((s) => tables[s].section));

    function render(wf) {
      const now = Date.now();
      document.title = `${wf.name} · STQ`;
      if (title.textContent !== wf.name) title.textContent = wf.name;
      patch(stateBadge, wf.state, () => badge(wf.state === 'running' ? 'in_process' : wf.state, stateLabel(wf.state)));
      desc.textContent = wf.description || '';
      desc.hidden = !wf.description;
      params.hidden = !Object.keys(wf.params || {}).length;
      patch(params, JSON.stringify(wf.params || {}), () => ['Params ', ...pairs(wf.params)]);
      const left = timeLeftText(wf);
      const counts = withSkipped(wf.counts, wf.tasks);
      patch(summary, JSON.stringify([counts, wf.created, Math.round(elapsed(wf, now)), left]), () => [
        progressBar(counts), countsText(counts),
        h('span', { class: 'meta' }, 'started ', timeCell(wf.created)),
        h('span', { class: 'meta' }, wf.state === 'running' ? 'elapsed ' : 'took ', fmtDuration(elapsed(wf, now))),
        left ? h('span', { class: 'meta' }, 'time left ', left) : null,
        h('span', { class: 'meta id' }, wf.id)]);
      cancelBtn.disabled = wf.state !== 'running';
      deleteBtn.hidden = !TERMINAL.includes(wf.state); // the server refuses (409) to forget a running one
      retryBtn.disabled = !(wf.counts.failed > 0);
      graph.update(wf.tasks);
      note.textContent = graph.grouped
        ? `${wf.tasks.length} tasks: tasks of one layer sharing a name prefix are grouped; click a group to expand it.` : '';
      const by = { todo: [], in_process: [], completed: [], failed: [] };
      for (const t of wf.tasks) (by[t.state] || by.todo).push(t);
      for (const s of STATES) tables[s].update(by[s]);
      if (stats.firstRenderMs === null) stats.firstRenderMs = performance.now();
    }

    async function refresh() {
      if (deleted) return;
      const wf = await source.read();
      await reasons.load(wf.tasks);
      render(wf);
    }

    return { root, title: 'Workflow', refresh };
  }

  return { workflowsView, workflowView };
})();
