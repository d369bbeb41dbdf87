/* STQ dashboard: one task, why it waits while To Do, its attempts and each attempt's output, live. */
'use strict';

const StqTask = (() => {
  const {
    h, patch, syncRows, fmtDuration, fmtLimit, timeCell, fmtCommand, ApiError, call, stateLabel, badge,
    isSkipped, taskLook, runIfText, matrixText, attemptsText, attemptReason, failureReason, ranSeconds, waitingFor,
  } = StqCore;
  /** How often a running attempt's output is read: runners send what is new every second. */
  const TAIL_MS = 1000;
  /** Characters of output a block keeps, the oldest dropped first (the server keeps 1 MiB). */
  const KEEP_CHARS = 1024 * 1024;
  /** Within this many pixels of its end, an output block counts as scrolled to the end. */
  const AT_END_PX = 24;
  /** What a skipped task's page says beside its badge. */
  const SKIPPED_WHY = 'never ran: it runs only when a dependency fails, and every one completed';
  /** The Runs fact of a task that does not run on success alone. */
  const RUN_IF_WHEN = {
    on_failure: 'on failure: once every dependency is finished and at least one failed',
    always: 'always: once every dependency is finished, however they ended',
  };

  // --- one attempt's output, followed live ---------------------------------------------

  /**
   * One attempt's output block, filled as the command prints.
   *
   * Reads ``GET /attempts/ID/output?offset=N`` from the byte after the last one it has
   * (the answer's ``STQ-Output-End``): every second while the attempt runs, until the
   * answer says it finished (``STQ-Attempt-Finished``), then ``onFinished``. Text only
   * ever becomes text nodes; past KEEP_CHARS the oldest goes. An answer that starts past
   * the byte asked for (``STQ-Output-Start``: the server keeps the last 1 MiB) means
   * bytes in between are gone, so the block starts again under a marker saying so. The
   * block stays at its end as text arrives until the user scrolls up, and again once
   * they scroll back down. A read that fails waits for the page's next refresh.
   */
  class OutputTail {
    constructor(attempt, onFinished) {
      this.id = attempt.id;
      this.onFinished = onFinished;
      this.offset = 0;
      this.kept = 0;
      this.finished = false;
      this.follow = true;
      this.timer = null;
      this.reading = false;
      this.dropped = h('p', { class: 'dropped', hidden: true }, '… earlier output not kept');
      this.pre = h('pre', { tabindex: 0 });
      this.pre.addEventListener('scroll', () => { this.follow = this.atEnd(); });
      this.block = h('section', { class: 'output', dataset: { attempt: attempt.id } },
        h('h3', {}, `Attempt ${attempt.number} output`), this.dropped, this.pre);
    }

    atEnd() {
      return this.pre.scrollHeight - this.pre.scrollTop - this.pre.clientHeight < AT_END_PX;
    }

    /** Read on unless finished or already reading; the page calls it at every refresh. */
    resume(running) {
      this.pre.classList.toggle('live', running);
      if (!this.finished && this.timer === null && !this.reading) this.read();
    }

    async read() {
      this.timer = null;
      if (!this.block.isConnected) return; // the page moved on
      if (document.hidden) { this.timer = setTimeout(() => this.read(), TAIL_MS); return; }
      this.reading = true;
      try {
        const got = await call(`/attempts/${encodeURIComponent(this.id)}/output?offset=${this.offset}`, { as: 'raw' });
        this.take(got.text, got.headers);
      } catch (ex) {
        if (ex instanceof ApiError && ex.status === 404) this.finished = true;
        return; // else unreachable, or the token refused: the page's refresh resumes it
      } finally {
        this.reading = false;
      }
      if (!this.finished) this.timer = setTimeout(() => this.read(), TAIL_MS);
      else if (this.block.isConnected) this.onFinished();
    }

    take(text, headers) {
      const start = Number(headers.get('STQ-Output-Start') ?? 0);
      const end = Number(headers.get('STQ-Output-End') ?? this.offset + text.length);
      if (start > this.offset) this.restart();
      this.append(text);
      this.offset = end;
      this.finished = headers.get('STQ-Attempt-Finished') !== 'false';
      this.pre.classList.toggle('empty', this.kept === 0);
    }

    /** Bytes between what is shown and what arrived are gone: show only what follows. */
    restart() {
      this.pre.replaceChildren();
      this.kept = 0;
      this.dropped.hidden = false;
    }

    append(text) {
      if (!text) return;
      this.pre.append(text); // a text node: output is anyone's bytes
      this.kept += text.length;
      this.trim();
      if (this.follow) this.pre.scrollTop = this.pre.scrollHeight;
    }

    /** Drop the oldest text past KEEP_CHARS (never half a surrogate pair). */
    trim() {
      let excess = this.kept - KEEP_CHARS;
      if (excess <= 0) return;
      this.dropped.hidden = false;
      while (excess > 0 && this.pre.firstChild) {
        const node = this.pre.firstChild;
        let cut = Math.min(excess, node.length);
        if (cut < node.length && /[\udc00-\udfff]/.test(node.data.charAt(cut))) cut += 1;
        if (cut === node.length) node.remove();
        else node.deleteData(0, cut);
        this.kept -= cut;
        excess -= cut;
      }
    }
  }

  // --- task view ---------------------------------------------------------------------

  function taskView(id, ctx) {
    const head = h('div', { class: 'view-head' });
    const desc = h('p', { class: 'desc task', hidden: true });
    const waiting = h('p', { class: 'waiting', hidden: true });
    const facts = h('dl', { class: 'facts' });
    const tbody = h('tbody');
    const outputs = h('div', { class: 'outputs' });
    /** Attempt id -> its OutputTail; a finished attempt reads a new attempt list at once. */
    const tails = new Map();
    /** Task name -> id in the task's workflow, read once, when a dependency wait needs links. */
    let siblings = null;
    const crumbs = h('nav', { class: 'crumbs' });
    const root = h('section', { class: 'view task' }, crumbs, head, desc, waiting, facts,
      h('h2', {}, 'Attempts'),
      h('table', { class: 'list' }, h('thead', {}, h('tr', {}, ['#', 'Status', 'Runner', 'Started', 'Finished', 'Exit code', 'Reason'].map((c) => h('th', {}, c)))), tbody),
      outputs);

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

    function tailOf(a) {
      if (!tails.has(a.id)) tails.set(a.id, new OutputTail(a, () => ctx.refresh()));
      return tails.get(a.id);
    }

    function render(t) {
      document.title = `${t.name} · STQ`;
      patch(crumbs, t.workflow_id, () => [h('a', { href: '#/' }, '← Workflows'), ' / ',
        h('a', { href: `#/workflows/${encodeURIComponent(t.workflow_id)}` }, 'workflow ', h('code', {}, t.workflow_id))]);
      const why = t.state === 'failed' ? failureReason(t) : '';
      const look = taskLook(t);
      patch(head, JSON.stringify([t.name, look, why]), () => h('div', {}, h('h1', {}, t.name), badge(look),
        why ? h('span', { class: 'reason' }, why) : null,
        isSkipped(t) ? h('span', { class: 'reason skipped' }, SKIPPED_WHY) : null));
      desc.hidden = !t.description;
      if (desc.textContent !== (t.description || '')) desc.textContent = t.description || '';
      waiting.hidden = !t.waiting_for;
      patch(waiting, JSON.stringify([t.waiting_for, Boolean(siblings)]), () => {
        const why = waitingFor(t.waiting_for, dependencyLink);
        return why ? ['Waiting for ', ...why] : [];
      });
      const fact = (k, v) => (v === '' || v === null || v === undefined ? [] : [h('dt', {}, k), h('dd', {}, v)]);
      const ran = fmtDuration(ranSeconds(t, Date.now()));
      const declared = [runIfText(t), matrixText(t), t.matrix_of];
      patch(facts, JSON.stringify([t.command, t.depends_on, attemptsText(t), t.duration, ran, t.labels, t.priority, declared]), () => [
        fact('Command', h('code', {}, fmtCommand(t.command))),
        fact('Matrix task', t.matrix_of || ''),
        fact('Matrix', matrixText(t) ? h('code', {}, matrixText(t)) : ''),
        fact('Runs', runIfText(t) ? RUN_IF_WHEN[t.run_if] || runIfText(t) : ''),
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
      const newest = attempts.slice().reverse();
      const blocks = newest.map((a) => tailOf(a).block);
      blocks.forEach((b, i) => { if (outputs.children[i] !== b) outputs.insertBefore(b, outputs.children[i] || null); });
      while (outputs.children.length > blocks.length) outputs.lastChild.remove();
      for (const a of newest) tailOf(a).resume(a.status === 'running');
    }

    return {
      root,
      title: 'Task',
      async refresh() {
        const t = await call(`/tasks/${encodeURIComponent(id)}`);
        await loadSiblings(t);
        render(t);
      },
    };
  }

  return { taskView };
})();
