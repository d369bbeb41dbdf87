/* STQ dashboard: the runners the server heard from in the last 10 minutes.
 *
 * The API names a busy runner's task by id only; the names come from one
 * ``GET /tasks?state=in_process``, asked only when a task id not seen before shows up.
 */
'use strict';

const StqRunners = (() => {
  const { h, syncRows, ms, ApiError, call, stateLabel } = StqCore;
  const EMPTY = 'No runner was heard from in the last 10 minutes. Start one with: stq worker URL';

  /** "3 s ago", "4 min ago", "2 h ago": how long since ``t`` (never in the future). */
  function ago(t, now) {
    const at = ms(t);
    if (at === null) return '';
    const s = Math.max(0, Math.round((now - at) / 1000));
    if (s < 60) return `${s} s ago`;
    if (s < 3600) return `${Math.floor(s / 60)} min ago`;
    return `${Math.floor(s / 3600)} h ago`;
  }

  function lastSeen(t, now) {
    const at = ms(t);
    if (at === null) return '';
    const iso = new Date(at).toISOString();
    return h('time', { datetime: iso, title: iso }, ago(t, now));
  }

  function labelList(labels) {
    if (!labels || !labels.length) return h('span', { class: 'muted' }, '—');
    return h('span', { class: 'labels' }, labels.map((l) => h('span', { class: 'label' }, l)));
  }

  function runnersView() {
    const names = new Map(); // task id -> task name, for the busy runners' links
    let rows = [];
    const tbody = h('tbody');
    const empty = h('p', { class: 'empty', hidden: true }, EMPTY);
    const table = h('table', { class: 'list runners' },
      h('thead', {}, h('tr', {}, ['Runner', 'Labels', 'State', 'Current task', 'Last seen'].map((c) => h('th', {}, c)))),
      tbody);
    const root = h('section', { class: 'view runners' },
      h('div', { class: 'view-head' }, h('h1', {}, 'Runners')),
      h('p', { class: 'note' }, 'Runners heard from in the last 10 minutes: busy while running a task, idle while asking for work, gone when no longer heard from.'),
      table, empty);

    /** Learn the names of the running tasks when a busy runner holds one not yet named. */
    async function nameTasks() {
      const ids = rows.map((r) => r.task_id).filter(Boolean);
      if (ids.every((id) => names.has(id))) return;
      try {
        const running = await call('/tasks?state=in_process');
        for (const t of running.tasks || []) names.set(t.id, t.name);
      } catch (ex) {
        if (!(ex instanceof ApiError)) throw ex;
      }
      for (const id of ids) if (!names.has(id)) names.set(id, null); // ended meanwhile: show its id
      for (const id of [...names.keys()]) if (!ids.includes(id)) names.delete(id);
    }

    function currentTask(r) {
      if (!r.task_id) return '';
      const name = names.get(r.task_id);
      return h('a', { href: `#/tasks/${encodeURIComponent(r.task_id)}`, class: 'task-link', title: r.task_id },
        name || r.task_id);
    }

    function render() {
      const now = Date.now();
      syncRows(tbody, rows, (r) => r.name, (r) => [
        h('span', { class: 'runner-name', title: r.name }, r.name),
        labelList(r.labels),
        h('span', { class: `badge runner-${r.state}` }, stateLabel(r.state)),
        currentTask(r),
        lastSeen(r.last_seen, now),
      ]);
      table.hidden = rows.length === 0;
      empty.hidden = rows.length > 0;
    }

    return {
      root,
      title: 'Runners',
      async refresh() {
        const data = await call('/runners');
        rows = data.runners || [];
        await nameTasks();
        render();
      },
    };
  }

  return { runnersView };
})();
