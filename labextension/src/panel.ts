/**
 * The jobs panel: the jobs of the current notebook's kernel (cell, name, state, uptime,
 * checkpoints, recorded paths), with buttons to take a savepoint, stop with a savepoint and
 * cancel (requests through the jobs comm; the kernel records the savepoint in the cell's
 * metadata as %flink.savepoint does), a link to the job's page in Flink's web UI, and a click
 * on the job that scrolls to its cell.
 */
import { Notification } from '@jupyterlab/apputils';
import { INotebookTracker, NotebookPanel } from '@jupyterlab/notebook';
import { LabIcon } from '@jupyterlab/ui-components';
import { IDisposable } from '@lumino/disposable';
import { Message } from '@lumino/messaging';
import { Widget } from '@lumino/widgets';

import { formatDuration, formatTime, shortenMiddle } from './format';
import { IJobPayload, NotebookJobs, TERMINAL_STATES, notebookJobs } from './jobs';
import { flinkUiUrl } from './renderer';

export const flinkIcon = new LabIcon({
  name: 'jupyter-flink:jobs',
  svgstr:
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24" width="16" height="16">' +
    '<g class="jp-icon3" fill="#616161">' +
    '<path d="M3 17h3v4H3zM8.5 12h3v9h-3zM14 14h3v7h-3zM19.5 8h2v13h-2z"/>' +
    '<path d="M3 12.5 8.8 7l4.6 3.4L21 3.5l1 1.1-8.5 7.8-4.6-3.4L4 13.8z"/></g></svg>'
});

const ACTIONS: { action: string; label: string; title: string; confirm?: boolean }[] = [
  { action: 'savepoint', label: 'Savepoint', title: 'Take a savepoint; the job keeps running' },
  { action: 'stop', label: 'Stop', title: 'Stop the job with a savepoint' },
  {
    action: 'cancel',
    label: 'Cancel',
    title: "Cancel the job (with a savepoint if its cell set savepointDir)"
  }
];

export class JobsPanel extends Widget {
  constructor(private readonly _tracker: INotebookTracker) {
    super();
    this.id = 'jupyter-flink-jobs';
    this.addClass('jf-panel');
    this.title.icon = flinkIcon;
    this.title.caption = 'Flink jobs';
    this._header = document.createElement('div');
    this._header.className = 'jf-panel-header';
    this._list = document.createElement('div');
    this._list.className = 'jf-panel-list';
    this.node.append(this._header, this._list);
    _tracker.currentChanged.connect(this._follow, this);
  }

  dispose(): void {
    this._unfollow();
    this._tracker.currentChanged.disconnect(this._follow, this);
    super.dispose();
  }

  protected onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    this._follow();
    this._timer = window.setInterval(() => this._tick(), 1000);
  }

  protected onAfterHide(msg: Message): void {
    window.clearInterval(this._timer);
    this._unfollow(); // nobody looks: no subscription
    super.onAfterHide(msg);
  }

  /** Move the uptimes of running jobs on (the list itself changes only with the jobs). */
  private _tick(): void {
    this._list.querySelectorAll<HTMLElement>('.jf-panel-uptime').forEach(span => {
      const start = Number(span.dataset.start);
      span.textContent = `up ${formatDuration((Date.now() - start) / 1000)}`;
    });
  }

  /** Follow the current notebook's jobs (only while the panel is shown). */
  private _follow(): void {
    const panel = this._tracker.currentWidget;
    if (!this.isVisible || (panel && panel === this._panel)) {
      this._render();
      return;
    }
    this._unfollow();
    this._panel = panel;
    if (panel) {
      this._jobs = notebookJobs(panel.sessionContext);
      this._jobs.changed.connect(this._render, this);
      this._watch = this._jobs.watchList();
    }
    this._render();
  }

  private _unfollow(): void {
    this._watch?.dispose();
    this._watch = null;
    this._jobs?.changed.disconnect(this._render, this);
    this._jobs = null;
    this._panel = null;
  }

  private _render(): void {
    const panel = this._panel;
    const jobs = this._jobs;
    this._header.replaceChildren();
    this._list.replaceChildren();
    const title = document.createElement('div');
    title.className = 'jf-panel-title';
    title.textContent = panel ? `Flink jobs \u00b7 ${panel.context.localPath}` : 'Flink jobs';
    this._header.appendChild(title);
    if (!panel || !jobs) {
      this._say('Open a notebook to see the Flink jobs of its kernel.');
      return;
    }
    if (jobs.state !== 'live') {
      this._say(
        {
          'no-kernel': 'The kernel is not running.',
          restarting: 'The kernel is restarting\u2026',
          connecting: 'Asking the kernel\u2026',
          unavailable: 'Another view of this page talks to this kernel.',
          live: ''
        }[jobs.state]
      );
      return;
    }
    const all = jobs.allJobs();
    if (!all.length) {
      this._say('No Flink job in this kernel yet.');
      return;
    }
    const order = (job: IJobPayload): number => job.start_time_ms ?? job.observed_ms;
    for (const job of all.sort((a, b) => order(b) - order(a))) {
      this._list.appendChild(this._row(panel, jobs, job));
    }
  }

  private _say(text: string): void {
    const note = document.createElement('div');
    note.className = 'jf-panel-note';
    note.textContent = text;
    this._list.appendChild(note);
  }

  private _row(panel: NotebookPanel, jobs: NotebookJobs, job: IJobPayload): HTMLElement {
    const row = document.createElement('div');
    row.className = 'jf-panel-job';
    row.dataset.jobId = job.job_id;
    const head = document.createElement('div');
    head.className = 'jf-panel-head';
    const name = document.createElement('a');
    name.className = 'jf-panel-name';
    name.textContent = job.name;
    const cellIndex = panel.content.widgets.findIndex(
      cell => cell.model.sharedModel.getId() === job.cell_id
    );
    name.title = cellIndex >= 0 ? 'Show its cell' : 'Its cell is not in this notebook';
    name.onclick = () => this._scrollTo(panel, cellIndex);
    const state = document.createElement('span');
    state.className = `jf-state jf-state-${job.state}`;
    state.textContent = job.state;
    head.append(state, name);
    row.appendChild(head);

    const facts = document.createElement('div');
    facts.className = 'jf-panel-facts';
    const first = document.createElement('div');
    first.textContent = cellIndex >= 0 ? `cell ${cellIndex + 1}` : 'cell not in this notebook';
    if (job.start_time_ms !== null) {
      const ticking = job.state === 'RUNNING' && job.end_time_ms === null;
      const end = job.end_time_ms ?? job.observed_ms;
      const uptime = document.createElement('span');
      uptime.className = ticking ? 'jf-panel-uptime' : '';
      // the kernel's clock, carried over to this page's
      uptime.dataset.start = String(job.start_time_ms + (Date.now() - job.observed_ms));
      uptime.textContent = `up ${formatDuration(
        ((ticking ? job.observed_ms : end) - job.start_time_ms) / 1000
      )}`;
      first.append(' \u00b7 ', uptime);
    }
    if (job.state_detail) {
      first.append(` \u00b7 ${job.state_detail}`);
    }
    facts.appendChild(first);
    const c = job.checkpoints;
    const second = document.createElement('div');
    second.textContent =
      `${c.completed} checkpoint${c.completed === 1 ? '' : 's'}, ${c.failed} failed` +
      (c.failure && c.failed ? ` (last: ${c.failure})` : '') +
      (c.last_ms ? `, last at ${formatTime(c.last_ms)}` : '');
    facts.appendChild(second);
    for (const [label, path] of [
      ['checkpoint', job.latest_checkpoint_path],
      ['savepoint', job.savepoint_path]
    ] as const) {
      if (path) {
        // shortened in the middle, so that its chk-N / savepoint-... end shows
        const line = document.createElement('div');
        line.className = 'jf-panel-path';
        const name = document.createElement('span');
        name.className = 'jf-panel-label';
        name.textContent = label;
        const value = document.createElement('code');
        value.textContent = shortenMiddle(path, 34);
        line.append(name, value);
        line.title = path;
        facts.appendChild(line);
      }
    }
    row.appendChild(facts);

    const buttons = document.createElement('div');
    buttons.className = 'jf-panel-buttons';
    const busy = this._busy.get(job.job_id);
    // An ended job has nothing left to act on: only its page in Flink's UI
    const actions = TERMINAL_STATES.has(job.state) ? [] : ACTIONS;
    for (const { action, label, title } of actions) {
      const button = document.createElement('button');
      button.className = 'jp-Button jp-mod-styled jp-mod-reject jf-panel-button';
      button.dataset.action = action;
      button.textContent = busy === action ? `${label}\u2026` : label;
      button.title = title;
      button.disabled = busy !== undefined;
      button.onclick = () => void this._act(jobs, job, action, label);
      buttons.appendChild(button);
    }
    const kernelId = jobs.kernelId;
    if (kernelId) {
      const link = document.createElement('a');
      link.className = 'jf-ui';
      link.textContent = 'Flink UI \u2197';
      link.href = flinkUiUrl(kernelId, job);
      link.target = '_blank';
      link.rel = 'noopener';
      buttons.appendChild(link);
    }
    row.appendChild(buttons);
    const said = this._said.get(job.job_id);
    if (said) {
      const note = document.createElement('div');
      note.className = said.ok ? 'jf-panel-said' : 'jf-panel-said jf-error';
      note.textContent = said.message;
      row.appendChild(note);
    }
    return row;
  }

  private async _act(
    jobs: NotebookJobs,
    job: IJobPayload,
    action: string,
    label: string
  ): Promise<void> {
    this._busy.set(job.job_id, action);
    this._said.delete(job.job_id);
    this._render();
    const reply = await jobs.request(action, job.job_id);
    this._busy.delete(job.job_id);
    this._said.set(job.job_id, reply);
    if (reply.ok) {
      Notification.success(reply.message, { autoClose: 5000 });
    } else {
      Notification.error(`${label} of ${job.name} failed: ${reply.message}`, {
        autoClose: false
      });
    }
    this._render();
  }

  private _scrollTo(panel: NotebookPanel, index: number): void {
    if (index < 0) {
      return;
    }
    const notebook = panel.content;
    notebook.activeCellIndex = index;
    void notebook.scrollToItem(index, 'center');
    const cell = notebook.widgets[index];
    cell?.node.classList.add('jf-flash');
    window.setTimeout(() => cell?.node.classList.remove('jf-flash'), 1500);
  }

  private readonly _header: HTMLElement;
  private readonly _list: HTMLElement;
  private _panel: NotebookPanel | null = null;
  private _jobs: NotebookJobs | null = null;
  private _watch: IDisposable | null = null;
  private _timer = 0;
  private _busy = new Map<string, string>();
  private _said = new Map<string, { ok: boolean; message: string }>();
}
