/* STQ dashboard: one task, why it waits while To Do, its attempts and each attempt's output. */
'use strict';

const StqTask = (() => {
  const {
    h, patch, syncRows, fmtDuration, fmtLimit, timeCell, fmtCommand, ApiError, call, stateLabel, badge,
    attemptsText, attemptReason, failureReason, ranSeconds, waitingFor,
  } = StqCore;

  // --- task view ---------------------------------------------------------------------

  function taskView(id) {
    const head = h('div', { class: 'view-head' });
    const waiting = h('p', { class: 'waiting', hidden: true });
    const facts = h('dl', { class: 'facts' });
    const tbody = h('tbody');
    const outputs = h('div', { class: 'outputs' });
    const cache = new Map();
    /** Task name -> id in the task's workflow, read once, when a dependency wait needs links. */
    let siblings = null;
    const crumbs = h('nav', { class: 'crumbs' });
    const root = h('section', { class: 'view task' }, crumbs, head, waiting, facts,
      h('h2', {}, 'Attempts'),
      h('table', { class: 'list' }, h('thead', {}, h('tr', {}, ['#', 'Status', 'Runner', 'Started', 'Finished', 'Exit code', 'Reason'].map((c) => h('th', {}, c)))), tbody),
      outputs);

    async function loadOutputs(attempts) {
      await Promise.all(attempts.map(async (a) => {
        if (cache.has(a.id) && cache.get(a.id).final) return;
        const text = await call(`/attempts/${encodeURIComponent(a.id)}/output`, { as: 'text' }).catch((ex) => {
          if (ex instanceof ApiError) return '';
          throw ex;
        });
        cache.set(a.id, { text, final: a.status !== 'running' });
      }));
    }

    async function loadSiblings(t) {
      if (siblings || t.waiting_for?.kind !== 'dependencies') return;
      try {
        const listed = await call(`/tasks?workflow=${encodeURIComponent(t.workflow_id)}`);
        siblings = new Map((listed.tasks || []).map((s) => [s.name, s.id]));
      } catch (ex) {
        if (!(ex instanceof ApiError)) throw ex;
        siblings = new Map(); // the names alone still say what it waits for
      }
    }

    function dependencyLink(name) {
      const found = siblings?.get(name);
      return found ? h('a', { href: `#/tasks/${encodeURIComponent(found)}` }, name) : name;
    }

    function outputBlock(a) {
      let block = outputs.querySelector(`[data-attempt="${CSS.escape(a.id)}"]`);
      if (!block) {
        block = h('section', { class: 'output', dataset: { attempt: a.id } },
          h('h3', {}, `Attempt ${a.number} output`), h('pre', { tabindex: 0 }));
      }
      const pre = block.querySelector('pre');
      const text = cache.get(a.id)?.text ?? '';
      const atEnd = pre.scrollHeight - pre.scrollTop - pre.clientHeight < 24 || !pre.dataset.filled;
      if (pre.textContent !== text) pre.textContent = text;
      pre.classList.toggle('empty', !text);
      if (atEnd && pre.isConnected) { pre.scrollTop = pre.scrollHeight; pre.dataset.filled = '1'; }
      return block;
    }

    function render(t) {
      document.title = `${t.name} · STQ`;
      patch(crumbs, t.workflow_id, () => [h('a', { href: '#/' }, '← Workflows'), ' / ',
        h('a', { href: `#/workflows/${encodeURIComponent(t.workflow_id)}` }, 'workflow ', h('code', {}, t.workflow_id))]);
      const why = t.state === 'failed' ? failureReason(t) : '';
      patch(head, JSON.stringify([t.name, t.state, why]), () => h('div', {}, h('h1', {}, t.name), badge(t.state),
        why ? h('span', { class: 'reason' }, why) : null));
      waiting.hidden = !t.waiting_for;
      patch(waiting, JSON.stringify([t.waiting_for, Boolean(siblings)]), () => {
        const why = waitingFor(t.waiting_for, dependencyLink);
        return why ? ['Waiting for ', ...why] : [];
      });
      const fact = (k, v) => (v === '' || v === null || v === undefined ? [] : [h('dt', {}, k), h('dd', {}, v)]);
      const ran = fmtDuration(ranSeconds(t, Date.now()));
      patch(facts, JSON.stringify([t.command, t.depends_on, attemptsText(t), t.duration, ran, t.labels, t.priority]), () => [
        fact('Command', h('code', {}, fmtCommand(t.command))),
        fact('Depends on', (t.depends_on || []).join(', ') || '—'),
        fact('Attempts', attemptsText(t)),
        fact('Limit', fmtLimit(t)),
        fact('Ran', ran),
        fact('Labels', (t.labels || []).join(', ')),
        fact('Priority', t.priority ? String(t.priority) : ''),
      ].flat());
      const attempts = [...(t.attempts || [])].sort((a, b) => a.number - b.number);
      syncRows(tbody, attempts, (a) => a.id, (a) => [String(a.number), badge(a.status === 'running' ? 'in_process' : a.status === 'timed_out' ? 'failed' : a.status, stateLabel(a.status)),
        a.runner || '', timeCell(a.started), timeCell(a.finished), a.exit_code === null || a.exit_code === undefined ? '' : String(a.exit_code), attemptReason(a)]);
      const blocks = attempts.slice().reverse().map(outputBlock);
      blocks.forEach((b, i) => { if (outputs.children[i] !== b) outputs.insertBefore(b, outputs.children[i] || null); });
      while (outputs.children.length > blocks.length) outputs.lastChild.remove();
      for (const b of blocks) {
        const pre = b.querySelector('pre');
        if (!pre.dataset.filled) { pre.scrollTop = pre.scrollHeight; pre.dataset.filled = '1'; }
      }
    }

    return {
      root,
      title: 'Task',
      async refresh() {
        const t = await call(`/tasks/${encodeURIComponent(id)}`);
        await Promise.all([loadOutputs(t.attempts || []), loadSiblings(t)]);
        render(t);
      },
    };
  }

  return { taskView };
})();
