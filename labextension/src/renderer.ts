/**
 * Renderers of our MIME types: a job's status (`application/vnd.jupyter-flink.job+json`) with
 * its health charts, and a live table (`application/vnd.jupyter-flink.table+json`, whose
 * bundle's `text/html` is the table). Both subscribe to the kernel through the notebook's
 * `NotebookJobs`, so they show the live state whatever the page saw before; when the kernel is
 * gone or was restarted they say so instead of showing a frozen RUNNING.
 */
import { PageConfig, URLExt } from '@jupyterlab/coreutils';
import { IRenderMime } from '@jupyterlab/rendermime-interfaces';
import { ReadonlyJSONObject } from '@lumino/coreutils';
import { IDisposable } from '@lumino/disposable';
import { Message } from '@lumino/messaging';
import { Widget } from '@lumino/widgets';

import {
  formatBytes,
  formatClock,
  formatDuration,
  formatMillis,
  formatRate,
  formatShare,
  formatTime
} from './format';
import {
  ICellRecord,
  IJobPayload,
  ITablePayload,
  JOB_MIME,
  NotebookJobs,
  TABLE_MIME,
  TERMINAL_STATES
} from './jobs';
import { sparkline } from './sparkline';

const PERSIST_EVERY_MS = 60000;

/**
 * The job's page in Flink's web UI, served through the Jupyter server for this kernel. The
 * dashboard files a job under "running" until it ends, then under "completed".
 */
export function flinkUiUrl(kernelId: string, job: IJobPayload): string {
  const list = TERMINAL_STATES.has(job.state) ? 'completed' : 'running';
  return (
    URLExt.join(PageConfig.getBaseUrl(), 'jupyter-flink', 'ui', kernelId) +
    `/#/job/${list}/${job.job_id}/overview`
  );
}

function element<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  className?: string,
  text?: string
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  if (className) {
    node.className = className;
  }
  if (text !== undefined) {
    node.textContent = text;
  }
  return node;
}

/** What to show, and what to say about where it comes from. */
interface IShown {
  payload: IJobPayload;
  live: boolean; // the kernel follows this job now
  receivedAt: number; // Date.now() when it arrived
  banner: { text: string; kind: 'info' | 'warn' } | null;
}

/**
 * The savepoint the cell's record got after the output's last state: the kernel took it as
 * it shut down (its last display update may not have reached this page, its record did).
 */
export function laterSavepoint(saved: IJobPayload, record: ICellRecord | null): string | null {
  if (!record || record.job_id !== saved.job_id || !record.savepoint_path) {
    return null;
  }
  const updated = record.updated ? Date.parse(record.updated) : NaN;
  const later = isNaN(updated) || updated >= saved.observed_ms;
  return later && record.savepoint_path !== saved.savepoint_path ? record.savepoint_path : null;
}

/** What the previous kernel said last, when this one does not know the job. */
export function restartedText(saved: IJobPayload, record: ICellRecord | null = null): string {
  const at = formatClock(saved.observed_ms);
  const savepoint = laterSavepoint(saved, record);
  if (savepoint) {
    return `Kernel restarted: this job was stopped with savepoint ${savepoint}.`;
  }
  if (TERMINAL_STATES.has(saved.state)) {
    if (saved.notice) {
      return `Kernel restarted. Before that: ${saved.notice}`;
    }
    const ended = `this job ended ${saved.state} at ${formatClock(saved.end_time_ms ?? saved.observed_ms)}`;
    const kept = saved.savepoint_path
      ? `; its savepoint: ${saved.savepoint_path}`
      : saved.latest_checkpoint_path
        ? `; its latest checkpoint: ${saved.latest_checkpoint_path}`
        : '';
    return `Kernel restarted: ${ended}${kept}.`;
  }
  if (saved.cluster === 'remote') {
    return (
      `Kernel restarted: this kernel does not follow this job (last known ${saved.state} at ` +
      `${at}); it may still run on the cluster: a %%flink.conf cell pointing at it reattaches it.`
    );
  }
  const resume = saved.latest_checkpoint_path
    ? ` Its latest checkpoint, ${saved.latest_checkpoint_path}, is recorded: ` +
      'resumeFromLatestCheckpoint=true resumes from it.'
    : '';
  return (
    `Kernel restarted: this job stopped with the old kernel, whose embedded cluster ran it ` +
    `(last known ${saved.state} at ${at}).${resume}`
  );
}

/** Renders a job's status output. */
export class JobRenderer extends Widget implements IRenderMime.IRenderer {
  constructor(
    options: IRenderMime.IRendererOptions,
    private readonly _jobs: NotebookJobs | null
  ) {
    super();
    this.addClass('jf-job');
    _jobs?.changed.connect(this._onChanged, this);
  }

  renderModel(model: IRenderMime.IMimeModel): Promise<void> {
    const saved = model.data[JOB_MIME] as unknown as IJobPayload | undefined;
    if (!saved || typeof saved.job_id !== 'string') {
      this.node.textContent = 'jupyter-flink: a job output without a job id';
      return Promise.resolve();
    }
    if (saved.job_id !== this._saved?.job_id) {
      this._watch?.dispose();
      this._watch = this._jobs ? this._jobs.watchJob(saved.job_id) : null;
    }
    this._saved = saved;
    this._savedAt = Date.now();
    this._model = model;
    this._render();
    return Promise.resolve();
  }

  /**
   * Keep the live state in the output (so the saved notebook knows it when the kernel is
   * gone): on a change of state or savepoint, else once a minute. The kernel's own display
   * updates do not reach an output after a reload; the charts' points stay out of the file.
   */
  private _persist(live: IJobPayload): void {
    const model = this._model;
    const saved = this._saved;
    if (
      !model ||
      !saved ||
      (live.job_id === saved.job_id &&
        live.state === saved.state &&
        live.savepoint_path === saved.savepoint_path &&
        live.observed_ms - saved.observed_ms < PERSIST_EVERY_MS)
    ) {
      return;
    }
    const health = live.health
      ? { latest: live.health.latest, busiest: live.health.busiest }
      : null;
    model.setData({
      data: { ...model.data, [JOB_MIME]: { ...live, health } as unknown as ReadonlyJSONObject }
    });
  }

  dispose(): void {
    if (this.isDisposed) {
      return;
    }
    this._watch?.dispose();
    this._stopTicking();
    this._jobs?.changed.disconnect(this._onChanged, this);
    super.dispose();
  }

  protected onAfterAttach(msg: Message): void {
    super.onAfterAttach(msg);
    this._render();
  }

  protected onBeforeDetach(msg: Message): void {
    this._stopTicking();
    super.onBeforeDetach(msg);
  }

  private _onChanged(_: NotebookJobs, ids: Set<string> | null): void {
    if (this._saved && (ids === null || ids.has(this._saved.job_id))) {
      this._render();
    }
  }

  private _shown(): IShown | null {
    const saved = this._saved;
    if (!saved) {
      return null;
    }
    const jobs = this._jobs;
    const live = jobs?.job(saved.job_id);
    if (live) {
      const stale = live.kernel === saved.kernel && saved.observed_ms > live.observed_ms;
      if (live !== this._live) {
        this._live = live;
        this._liveAt = Date.now();
      }
      if (stale) {
        return { payload: saved, live: true, receivedAt: this._savedAt, banner: null };
      }
      window.setTimeout(() => {
        if (!this.isDisposed && this._live === live) {
          this._persist(live); // not while rendering: the output re-renders on it
        }
      }, 0);
      return { payload: live, live: true, receivedAt: this._liveAt, banner: null };
    }
    const record = jobs ? jobs.record(saved.cell_id) : null;
    const savepoint = laterSavepoint(saved, record);
    const shown: IShown = {
      payload: savepoint ? { ...saved, savepoint_path: savepoint } : saved,
      live: false,
      receivedAt: this._savedAt,
      banner: null
    };
    if (live === null) {
      shown.banner = { text: restartedText(saved, record), kind: 'warn' };
    } else if (jobs === null) {
      // rendered outside a notebook: the saved facts, as they are
    } else if (jobs.state === 'restarting') {
      shown.banner = { text: 'Kernel restarting\u2026', kind: 'info' };
    } else if (jobs.state === 'no-kernel' && !TERMINAL_STATES.has(saved.state)) {
      shown.banner = {
        text:
          `Kernel not running: last known state at ${formatClock(saved.observed_ms)}` +
          (savepoint ? `; the job was stopped with savepoint ${savepoint}.` : '.'),
        kind: 'warn'
      };
    }
    return shown;
  }

  private _render(): void {
    const shown = this._shown();
    if (!shown) {
      return;
    }
    const job = shown.payload;
    const running = job.state === 'RUNNING' && shown.live;
    const node = this.node;
    node.replaceChildren();
    node.dataset.state = job.state;
    node.dataset.live = String(shown.live);

    const head = element('div', 'jf-head');
    const name = element('span', 'jf-name', job.name);
    name.title = job.name;
    head.appendChild(name);
    const state = element('span', `jf-state jf-state-${job.state}`, job.state);
    if (!shown.live && !TERMINAL_STATES.has(job.state)) {
      state.classList.add('jf-state-stale');
      state.title = 'last known state';
    }
    head.appendChild(state);
    if (job.state_detail && shown.live) {
      head.appendChild(element('span', 'jf-detail', job.state_detail));
    }
    this._uptime = element('span', 'jf-uptime');
    head.appendChild(this._uptime);
    const id = element('code', 'jf-id', job.job_id.slice(0, 8));
    id.title = `job id ${job.job_id}`;
    head.appendChild(id);
    const kernelId = this._jobs?.kernelId;
    if (kernelId && shown.live) {
      const link = element('a', 'jf-ui', 'Flink UI \u2197');
      link.href = flinkUiUrl(kernelId, job);
      link.target = '_blank';
      link.rel = 'noopener';
      link.title = "This job's page in Flink's web UI";
      head.appendChild(link);
    }
    node.appendChild(head);

    if (shown.banner) {
      node.appendChild(element('div', `jf-banner jf-banner-${shown.banner.kind}`, shown.banner.text));
    }
    if (running && job.health) {
      node.appendChild(healthCharts(job));
    }
    node.appendChild(factsTable(job, running));
    this._tick(shown);
  }

  /** The uptime ticks in the page, without asking the kernel. */
  private _tick(shown: IShown): void {
    this._stopTicking();
    const job = shown.payload;
    const update = (): void => {
      if (!this._uptime || job.start_time_ms === null) {
        if (this._uptime) {
          this._uptime.textContent = '';
        }
        return;
      }
      const end = job.end_time_ms ?? job.observed_ms;
      const extra =
        shown.live && job.end_time_ms === null && job.state === 'RUNNING'
          ? Date.now() - shown.receivedAt
          : 0;
      const ran = TERMINAL_STATES.has(job.state) ? 'ran' : 'up';
      const uptime = `${ran} ${formatDuration((end - job.start_time_ms + extra) / 1000)}`;
      // A state this output no longer follows: its uptime is as of then, not now
      const stale = !shown.live && !TERMINAL_STATES.has(job.state);
      this._uptime.textContent = stale ? `${uptime} when last seen` : uptime;
    };
    update();
    if (shown.live && job.state === 'RUNNING' && this.isAttached) {
      this._timer = window.setInterval(update, 1000);
    }
  }

  private _stopTicking(): void {
    if (this._timer !== null) {
      window.clearInterval(this._timer);
      this._timer = null;
    }
  }

  private _saved: IJobPayload | null = null;
  private _savedAt = 0;
  private _model: IRenderMime.IMimeModel | null = null;
  private _live: IJobPayload | null = null;
  private _liveAt = 0;
  private _watch: IDisposable | null = null;
  private _uptime: HTMLElement | null = null;
  private _timer: number | null = null;
}

/** The small charts under a running job: rates, busiest task, watermark lag, checkpoints. */
function healthCharts(job: IJobPayload): HTMLElement {
  const health = job.health!;
  const box = element('div', 'jf-health');
  const latest = health.latest;
  const series = health.series;
  const chart = (label: string, value: string, svg: SVGSVGElement | null, title?: string): void => {
    const cell = element('div', 'jf-chart');
    cell.appendChild(element('div', 'jf-chart-label', label));
    if (svg) {
      cell.appendChild(svg);
    }
    cell.appendChild(element('div', 'jf-chart-value', value));
    if (title) {
      cell.title = title;
    }
    box.appendChild(cell);
  };
  const has = (values: (number | null)[] | undefined): boolean =>
    !!values && values.some(value => value !== null);
  if (latest && (latest.in !== null || latest.out !== null || has(series?.in))) {
    chart(
      'records / s',
      `in ${formatRate(latest.in)} \u00b7 out ${formatRate(latest.out)}`,
      series
        ? sparkline(series.t, [
            { values: series.in, className: 'jf-line-in' },
            { values: series.out, className: 'jf-line-out' }
          ], { label: 'records in and out per second' })
        : null,
      'in: records the sources read; out: records that reach the sinks'
    );
  }
  if (latest && (latest.busy !== null || latest.backpressured !== null)) {
    chart(
      'busiest task',
      `${formatShare(latest.busy)} busy \u00b7 ${formatShare(latest.backpressured)} backpressured`,
      series
        ? sparkline(series.t, [
            { values: series.busy, className: 'jf-line-busy' },
            { values: series.backpressured, className: 'jf-line-back' }
          ], { max: 1, label: 'busy and backpressured share of the busiest task' })
        : null,
      health.busiest ? `busiest: ${health.busiest}` : undefined
    );
  }
  if (latest?.watermark_lag_ms !== null && latest?.watermark_lag_ms !== undefined) {
    chart(
      'watermark lag',
      formatMillis(latest.watermark_lag_ms),
      series
        ? sparkline(series.t, [{ values: series.watermark_lag_ms, className: 'jf-line-lag' }], {
            label: 'watermark lag'
          })
        : null,
      'how far event time lags behind the clock, at the slowest input'
    );
  }
  const checkpoints = health.checkpoints;
  if (checkpoints && checkpoints.t.length) {
    const last = checkpoints.t.length - 1;
    chart(
      'checkpoint duration',
      formatMillis(checkpoints.duration_ms[last]),
      sparkline(checkpoints.t, [{ values: checkpoints.duration_ms, className: 'jf-line-chk' }], {
        label: 'checkpoint duration'
      })
    );
    chart(
      'checkpoint size',
      formatBytes(checkpoints.size[last]),
      sparkline(checkpoints.t, [{ values: checkpoints.size, className: 'jf-line-size' }], {
        label: 'checkpoint size'
      })
    );
  }
  return box;
}

function factsTable(job: IJobPayload, running: boolean): HTMLElement {
  const table = element('table', 'jf-facts');
  const row = (label: string, value: string, className = ''): void => {
    const tr = element('tr', className);
    tr.appendChild(element('th', undefined, label));
    const td = element('td');
    td.appendChild(element('code', undefined, value));
    tr.appendChild(td);
    table.appendChild(tr);
  };
  const c = job.checkpoints;
  let checkpoints = `${c.completed} completed, ${c.failed} failed, last at ${formatTime(c.last_ms)}`;
  if (c.duration_ms !== null && c.completed) {
    checkpoints += ` (took ${formatMillis(c.duration_ms)}, ${formatBytes(c.size)})`;
  }
  row('checkpoints', checkpoints);
  if (c.failure && c.failed) {
    // Triggered while tasks were still starting: expected once at each start, no warning
    const harmless = c.failure === 'not all tasks running yet';
    row(
      'last failed checkpoint',
      `${formatTime(c.failure_ms)}: ${c.failure}`,
      harmless ? '' : 'jf-warn'
    );
  }
  row('latest checkpoint', job.latest_checkpoint_path ?? '-');
  row('savepoint', job.savepoint_path ?? '-');
  if (job.restored_from) {
    row('restored from', `${job.restored_from} (${job.restore_reason ?? ''})`);
  }
  if (job.auto_savepoint_s) {
    row('automatic savepoints', `every ${formatDuration(job.auto_savepoint_s)}`);
  }
  if (job.restarts) {
    row('restarts', String(job.restarts));
  }
  if (job.failure) {
    row('failure', job.failure, 'jf-error');
  }
  if (job.notice) {
    row('note', job.notice);
  }
  if (job.recording_problem) {
    row('recording', job.recording_problem, 'jf-warn');
  }
  if (!running && job.health?.latest && job.state === 'RUNNING') {
    // no charts without the kernel: the figures the output was saved with
    const latest = job.health.latest;
    row('health', `in ${formatRate(latest.in)} \u00b7 out ${formatRate(latest.out)}`);
  }
  return table;
}

/** Renders a live table: the bundle's HTML, or the newer one the kernel pushed. */
export class TableRenderer extends Widget implements IRenderMime.IRenderer {
  constructor(
    private readonly _options: IRenderMime.IRendererOptions,
    private readonly _jobs: NotebookJobs | null
  ) {
    super();
    this.addClass('jf-table');
    this._banner = element('div', 'jf-banner');
    this._body = element('div', 'jf-table-body');
    this.node.appendChild(this._banner);
    this.node.appendChild(this._body);
    _jobs?.changed.connect(this._onChanged, this);
  }

  renderModel(model: IRenderMime.IMimeModel): Promise<void> {
    const meta = model.data[TABLE_MIME] as unknown as
      | { job_id: string; final: boolean; observed_ms: number }
      | undefined;
    const html = model.data['text/html'];
    if (!meta || typeof html !== 'string') {
      this._body.textContent = 'jupyter-flink: a live table without its HTML';
      return Promise.resolve();
    }
    if (meta.job_id !== this._saved?.job_id) {
      this._watch?.dispose();
      this._watch = this._jobs ? this._jobs.watchTable(meta.job_id) : null;
    }
    this._saved = { ...meta, html };
    this._trusted = model.trusted;
    this._render();
    return Promise.resolve();
  }

  dispose(): void {
    if (this.isDisposed) {
      return;
    }
    this._watch?.dispose();
    this._jobs?.changed.disconnect(this._onChanged, this);
    super.dispose();
  }

  private _onChanged(_: NotebookJobs, ids: Set<string> | null): void {
    if (this._saved && (ids === null || ids.has(this._saved.job_id))) {
      this._render();
    }
  }

  private _render(): void {
    const saved = this._saved;
    if (!saved) {
      return;
    }
    const pushed = this._jobs?.table(saved.job_id);
    const shown: ITablePayload =
      pushed && pushed.observed_ms >= saved.observed_ms ? pushed : saved;
    let banner = '';
    if (!shown.final && this._jobs) {
      if (pushed === null) {
        banner =
          'Kernel restarted: this query stopped with the old kernel; the table shows its ' +
          `last rows (refreshed ${formatClock(saved.observed_ms)}).`;
      } else if (this._jobs.state === 'restarting') {
        banner = 'Kernel restarting\u2026';
      } else if (this._jobs.state === 'no-kernel') {
        banner = `Kernel not running: the table as refreshed at ${formatClock(saved.observed_ms)}.`;
      }
    }
    this._banner.textContent = banner;
    this._banner.className = banner ? 'jf-banner jf-banner-warn' : 'jf-banner jf-hidden';
    if (shown.html !== this._html) {
      this._html = shown.html;
      this._body.innerHTML = this._trusted
        ? shown.html
        : this._options.sanitizer.sanitize(shown.html);
    }
  }

  private _saved: ITablePayload | null = null;
  private _trusted = false;
  private _html = '';
  private _watch: IDisposable | null = null;
  private readonly _banner: HTMLElement;
  private readonly _body: HTMLElement;
}

/** Renderer factories for one notebook's outputs (or, with null, outside notebooks). */
export function rendererFactories(jobs: NotebookJobs | null): IRenderMime.IRendererFactory[] {
  return [
    {
      safe: true, // built from text nodes; no markup of the payload is interpreted
      mimeTypes: [JOB_MIME],
      defaultRank: 20,
      createRenderer: options => new JobRenderer(options, jobs)
    },
    {
      safe: true, // untrusted HTML is sanitized, as JupyterLab's own HTML renderer does
      mimeTypes: [TABLE_MIME],
      defaultRank: 20,
      createRenderer: options => new TableRenderer(options, jobs)
    }
  ];
}
