/* STQ dashboard: the workflow DAG as an SVG graph, layered left to right by depth.
 *
 * Small workflows get one node per task. Past DETAIL_LIMIT tasks the graph groups
 * tasks of a layer that share a name prefix ("shard-0001".."shard-2000" -> "shard-*")
 * into one node with a bar of their states, so 2,000 tasks stay a few dozen SVG
 * elements; a click on a group expands it. An edge that spans layers runs through a
 * lane of its own in each layer it passes (lanes take room in the layer like boxes do),
 * so no edge is drawn across a box it does not join. Layout happens once per set of
 * tasks; refreshes only recolour nodes, so the picture never jumps. A skipped task
 * (completed, never run) is drawn apart, and so are the edges into it; edges into a
 * task that runs on failure or always are dashed or dotted.
 * Every name reaches the DOM through createTextNode: nothing here parses HTML.
 */
'use strict';

const StqGraph = (() => {
  const SVG_NS = 'http://www.w3.org/2000/svg';
  const DETAIL_LIMIT = 250;
  const MAX_GROUPS_PER_LAYER = 40;
  const MAX_EXPANDED = 300;
  const NODE_W = 184;
  const NODE_H = 38;
  const GAP_X = 64;
  const GAP_Y = 10;
  /** The room an edge takes where it passes a layer. */
  const LANE_H = 6;
  const PAD = 16;
  const MIN_SCALE = 0.7;

  function svg(tag, attrs, ...kids) {
    const el = document.createElementNS(SVG_NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, String(v));
    for (const kid of kids) {
      el.appendChild(typeof kid === 'string' ? document.createTextNode(kid) : kid);
    }
    return el;
  }

  /** Depth of each task: 0 without dependencies, else 1 + the deepest dependency. */
  function depths(tasks) {
    const byName = new Map(tasks.map((t) => [t.name, t]));
    const depth = new Map();
    const pending = new Map();
    const children = new Map();
    for (const t of tasks) {
      const deps = (t.depends_on || []).filter((d) => byName.has(d));
      pending.set(t.name, deps.length);
      for (const d of deps) {
        if (!children.has(d)) children.set(d, []);
        children.get(d).push(t.name);
      }
    }
    const queue = tasks.filter((t) => pending.get(t.name) === 0).map((t) => t.name);
    for (const name of queue) depth.set(name, 0);
    for (let i = 0; i < queue.length; i++) {
      const name = queue[i];
      for (const child of children.get(name) || []) {
        depth.set(child, Math.max(depth.get(child) || 0, depth.get(name) + 1));
        pending.set(child, pending.get(child) - 1);
        if (pending.get(child) === 0) queue.push(child);
      }
    }
    for (const t of tasks) if (!depth.has(t.name)) depth.set(t.name, 0); // never for a valid DAG
    return depth;
  }

  function prefixOf(name) {
    const stripped = name.replace(/[-_.]?\d+$/, '');
    return stripped && stripped !== name ? stripped : null;
  }

  /**
   * Which node each task belongs to: itself, its prefix group, or its whole layer
   * when a layer still has too many nodes. Tasks the user expanded stay single.
   */
  function assignNodes(tasks, depth, expanded) {
    const grouping = tasks.length > DETAIL_LIMIT;
    const keyOf = new Map();
    const crowd = new Map();
    for (const t of tasks) {
      const d = depth.get(t.name);
      const prefix = grouping ? prefixOf(t.name) : null;
      const group = prefix === null ? null : `g:${d}:${prefix}`;
      const opened = expanded.has(`l:${d}`) || (group !== null && expanded.has(group));
      const key = group && !opened ? group : `t:${t.name}`;
      keyOf.set(t.name, { key, d, group, prefix, opened });
      if (!opened) {
        if (!crowd.has(d)) crowd.set(d, new Set());
        crowd.get(d).add(key);
      }
    }
    if (grouping) {
      for (const info of keyOf.values()) {
        if (!info.opened && crowd.get(info.d).size > MAX_GROUPS_PER_LAYER) {
          Object.assign(info, { key: `l:${info.d}`, group: `l:${info.d}` });
        }
      }
    }
    return keyOf;
  }

  function buildNodes(tasks, keyOf) {
    const nodes = new Map();
    for (const t of tasks) {
      const info = keyOf.get(t.name);
      if (!nodes.has(info.key)) {
        const kind = info.key[0] === 't' ? 'task' : 'group';
        const label = info.key[0] === 'l' ? `layer ${info.d}` : info.key[0] === 'g' ? `${info.prefix}-*` : t.name;
        nodes.set(info.key, { key: info.key, kind, label, depth: info.d, tasks: [], parents: new Set(), group: info.group });
      }
      nodes.get(info.key).tasks.push(t);
    }
    const edges = new Map();
    for (const t of tasks) {
      const to = keyOf.get(t.name).key;
      for (const dep of t.depends_on || []) {
        const fromInfo = keyOf.get(dep);
        if (!fromInfo || fromInfo.key === to) continue;
        nodes.get(to).parents.add(fromInfo.key);
        edges.set(`${fromInfo.key}\n${to}`, { from: fromInfo.key, to });
      }
    }
    return { nodes, edges: [...edges.values()] };
  }

  /**
   * The lanes of the edges that span more than one layer: one per layer passed, shared
   * by the edges of one bundle (the edges out of a node, or into it when it has more such
   * edges in than its sources have out). Each edge gets its route: the lanes it runs through.
   */
  function addLanes(nodes, edges) {
    const longOut = new Map();
    const longIn = new Map();
    const spans = (e) => nodes.get(e.to).depth - nodes.get(e.from).depth > 1;
    for (const e of edges.filter(spans)) {
      longOut.set(e.from, (longOut.get(e.from) || 0) + 1);
      longIn.set(e.to, (longIn.get(e.to) || 0) + 1);
    }
    const lanes = new Map();
    for (const e of edges) {
      e.route = [];
      if (!spans(e)) continue;
      const bundle = longOut.get(e.from) >= longIn.get(e.to) ? `from:${e.from}` : `to:${e.to}`;
      let prev = e.from;
      for (let d = nodes.get(e.from).depth + 1; d < nodes.get(e.to).depth; d++) {
        const key = `lane:${bundle}:${d}`;
        if (!lanes.has(key)) lanes.set(key, { key, kind: 'lane', depth: d, parents: new Set() });
        lanes.get(key).parents.add(prev);
        e.route.push(lanes.get(key));
        prev = key;
      }
    }
    return lanes;
  }

  const heightOf = (item) => (item.kind === 'lane' ? LANE_H : NODE_H);

  /** Place nodes and lanes in columns by depth; order each column by its parents' positions. */
  function place(items) {
    const columns = [];
    for (const item of items.values()) {
      (columns[item.depth] = columns[item.depth] || []).push(item);
    }
    const extent = (column) => column.reduce((a, item) => a + heightOf(item), 0) + GAP_Y * (column.length - 1);
    const centre = (key) => items.get(key).y + heightOf(items.get(key)) / 2;
    columns.forEach((column, d) => {
      if (!column) return;
      if (d > 0) {
        const bary = (n) => {
          const ys = [...n.parents].map(centre).filter((y) => !Number.isNaN(y));
          return ys.length ? ys.reduce((a, b) => a + b, 0) / ys.length : Infinity;
        };
        column.forEach((n, i) => { n.bary = bary(n); n.order = i; });
        column.sort((a, b) => (a.bary - b.bary) || (a.order - b.order));
      }
      placeColumn(column, d, 0); // provisional: the next column orders by these
    });
    const tallest = Math.max(...columns.map((c) => (c ? extent(c) : 0)));
    columns.forEach((column, d) => { if (column) placeColumn(column, d, (tallest - extent(column)) / 2); });
    return {
      width: 2 * PAD + columns.length * (NODE_W + GAP_X) - GAP_X,
      height: 2 * PAD + tallest,
    };
  }

  /** Stack one column's items from ``top`` down, ``GAP_Y`` apart. */
  function placeColumn(column, d, top) {
    let y = PAD + top;
    for (const item of column) {
      item.x = PAD + d * (NODE_W + GAP_X);
      item.y = y;
      y += heightOf(item) + GAP_Y;
    }
  }

  /** A curve across the gap between two layers: x only grows, so it never enters a box. */
  function across(x1, y1, x2, y2) {
    const mid = (x1 + x2) / 2;
    return `C${mid},${y1} ${mid},${y2} ${x2},${y2}`;
  }

  /** From ``a``'s right side through the edge's lanes (straight across each layer) to ``b``'s left. */
  function edgePath(a, b, route) {
    let x = a.x + NODE_W;
    let y = a.y + NODE_H / 2;
    const parts = [`M${x},${y}`];
    for (const lane of route) {
      const ly = lane.y + LANE_H / 2;
      parts.push(across(x, y, lane.x, ly), `L${lane.x + NODE_W},${ly}`);
      [x, y] = [lane.x + NODE_W, ly];
    }
    parts.push(across(x, y, b.x, b.y + NODE_H / 2));
    return parts.join(' ');
  }

  function clip(label, max) {
    return label.length > max ? `${label.slice(0, max - 1)}…` : label;
  }

  function drawNode(node, onOpen) {
    const g = svg('g', { class: `node ${node.kind}`, transform: `translate(${node.x},${node.y})`, tabindex: 0 });
    g.dataset.key = node.key;
    if (node.kind === 'task') g.dataset.task = node.tasks[0].name;
    else g.dataset.size = String(node.tasks.length);
    const hint = node.tasks.length <= MAX_EXPANDED ? 'click to expand' : 'too many to expand: see the lists below';
    const title = node.kind === 'task' ? taskTitle(node.tasks[0]) : `${node.label}: ${node.tasks.length} tasks (${hint})`;
    g.append(svg('title', {}, title), svg('rect', { class: 'box', width: NODE_W, height: NODE_H, rx: 6 }));
    if (node.kind === 'group') {
      g.appendChild(svg('g', { class: 'bar', transform: `translate(8,${NODE_H - 7})` }));
    }
    g.append(
      svg('text', { class: 'name', x: 10, y: 15 }, clip(node.kind === 'task' ? node.label : `${node.label} ×${node.tasks.length}`, 24)),
      svg('text', { class: 'sub', x: 10, y: node.kind === 'group' ? 27 : 29 }, ''),
      svg('circle', { class: 'pulse', cx: NODE_W - 12, cy: 12, r: 4 }),
    );
    g.addEventListener('click', () => onOpen(node));
    g.addEventListener('keydown', (ev) => { if (ev.key === 'Enter') onOpen(node); });
    return g;
  }

  /** A task node's tooltip: its name, and what it declares beyond the default. */
  function taskTitle(task) {
    const matrix = StqCore.matrixText(task);
    return [task.name, StqCore.runIfText(task), matrix ? `${task.matrix_of || 'matrix'}: ${matrix}` : '',
      task.description || ''].filter(Boolean).join('\n');
  }

  function subText(task) {
    if (StqCore.isSkipped(task)) return 'skipped · never ran';
    if (task.state === 'failed') {
      if (task.reason === 'upstream_failed') return 'upstream failed';
      if (task.reason === 'cancelled') return 'cancelled';
      return `failed · ${task.attempts_used} attempt${task.attempts_used === 1 ? '' : 's'}`;
    }
    if (task.state === 'in_process') return task.runner ? `running · ${task.runner}` : 'running';
    if (task.state === 'completed') return 'completed';
    const runIf = StqCore.runIfText(task);
    const waits = task.attempts_used ? `to do · retry ${task.attempts_used + 1}` : 'to do';
    return runIf ? `${waits} · ${runIf}` : waits;
  }

  /** The colour of a group: failed wins, then running, then to do, then completed, else skipped. */
  function groupState(counts) {
    if (counts.failed) return 'failed';
    if (counts.in_process) return 'in_process';
    if (counts.todo) return 'todo';
    return counts.completed > counts.skipped ? 'completed' : 'skipped';
  }

  /** Colour a node and write its second line; what it is drawn as (a state, or skipped). */
  function paintNode(node, el) {
    const sub = el.querySelector('text.sub');
    let st;
    let line;
    if (node.kind === 'task') {
      const task = node.tasks[0];
      st = StqCore.taskLook(task);
      line = subText(task);
    } else {
      const counts = { todo: 0, in_process: 0, completed: 0, failed: 0 };
      for (const t of node.tasks) counts[t.state] = (counts[t.state] || 0) + 1;
      counts.skipped = node.tasks.filter(StqCore.isSkipped).length;
      st = groupState(counts);
      line = StqCore.progressText(counts, false); // its colour and bar say it runs: the line stays short
      paintBar(el.querySelector('g.bar'), counts);
    }
    const cls = `node ${node.kind} state-${st}`;
    if (el.getAttribute('class') !== cls) el.setAttribute('class', cls);
    const clipped = clip(line, 30);
    if (sub.textContent !== clipped) sub.textContent = clipped;
    el.dataset.state = st;
    return st;
  }

  /** The group's progress bar, filled as the dashboard's others: by terminal tasks. */
  function paintBar(bar, counts) {
    const width = NODE_W - 16;
    bar.replaceChildren(svg('rect', { class: 'track', x: 0, y: 0, width, height: 4 }));
    let x = 0;
    for (const [look, share] of StqCore.barParts(counts)) {
      bar.appendChild(svg('rect', { class: `seg state-${look}`, x, y: 0, width: share * width, height: 4 }));
      x += share * width;
    }
  }

  /** An edge's class: muted into a skipped node, dashed or dotted into one that runs on failure or always. */
  function edgeClass(to, look) {
    if (look === 'skipped') return 'to-skipped';
    const runIf = to.kind === 'task' ? to.tasks[0].run_if : null;
    return runIf === 'on_failure' || runIf === 'always' ? `run-if-${runIf}` : '';
  }

  /**
   * A graph bound to one container. ``update(tasks)`` lays out when the set of tasks
   * or expanded groups changed, otherwise only recolours.
   */
  class Graph {
    constructor(container, onOpenTask) {
      this.container = container;
      this.onOpenTask = onOpenTask;
      this.expanded = new Set();
      this.signature = null;
      this.elements = new Map();
      this.nodes = new Map();
      /** Each edge's path, by the key of the node it leads to. */
      this.edgesTo = new Map();
      this.tasks = [];
      this.grouped = false;
      /** Called after each layout, e.g. to show a collapse button. */
      this.onLayout = () => {};
    }

    update(tasks) {
      this.tasks = tasks;
      const signature = `${tasks.length}|${tasks.map((t) => t.name).join('\n')}|${[...this.expanded].join(',')}`;
      if (signature !== this.signature) this.layout(tasks, signature);
      const byName = new Map(tasks.map((t) => [t.name, t]));
      for (const [key, node] of this.nodes) {
        node.tasks = node.tasks.map((t) => byName.get(t.name) || t);
        const look = paintNode(node, this.elements.get(key));
        const cls = edgeClass(node, look);
        for (const path of this.edgesTo.get(key) || []) {
          if ((path.getAttribute('class') || '') !== cls) path.setAttribute('class', cls);
        }
      }
    }

    layout(tasks, signature) {
      this.signature = signature;
      const depth = depths(tasks);
      const keyOf = assignNodes(tasks, depth, this.expanded);
      const { nodes, edges } = buildNodes(tasks, keyOf);
      const lanes = addLanes(nodes, edges);
      const size = place(new Map([...nodes, ...lanes]));
      this.nodes = nodes;
      this.grouped = [...nodes.values()].some((n) => n.kind === 'group');
      this.elements = new Map();
      const root = svg('svg', { class: 'dag', width: size.width, height: size.height, viewBox: `0 0 ${size.width} ${size.height}` });
      const edgeLayer = svg('g', { class: 'edges' });
      this.edgesTo = new Map();
      for (const e of edges) {
        const path = svg('path', { d: edgePath(nodes.get(e.from), nodes.get(e.to), e.route) });
        path.dataset.from = nodes.get(e.from).label;
        path.dataset.to = nodes.get(e.to).label;
        edgeLayer.appendChild(path);
        if (!this.edgesTo.has(e.to)) this.edgesTo.set(e.to, []);
        this.edgesTo.get(e.to).push(path);
      }
      const nodeLayer = svg('g', { class: 'nodes' });
      for (const node of nodes.values()) {
        const el = drawNode(node, (n) => this.open(n));
        this.elements.set(node.key, el);
        nodeLayer.appendChild(el);
      }
      root.append(edgeLayer, nodeLayer);
      this.container.replaceChildren(root);
      this.fit(root, size);
      this.onLayout(this);
    }

    /** Shrink a slightly too wide graph to the box; a much wider one scrolls instead. */
    fit(root, size) {
      const room = this.container.clientWidth - 2;
      const scale = room / size.width;
      if (scale < 1 && scale >= MIN_SCALE) {
        root.setAttribute('width', String(room));
        root.setAttribute('height', String(Math.ceil(size.height * scale)));
      }
    }

    open(node) {
      if (node.kind === 'task') {
        this.onOpenTask(node.tasks[0]);
      } else if (node.tasks.length <= MAX_EXPANDED) {
        this.expanded.add(node.group);
        this.update(this.tasks);
      }
    }

    collapseAll() {
      this.expanded.clear();
      this.update(this.tasks);
    }
  }

  return { Graph, depths, DETAIL_LIMIT };
})();
